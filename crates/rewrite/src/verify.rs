//! Proof that an edit changed only what it meant to: every other YAML scalar keeps its value
//! and position in document order, and a fresh scan finds exactly the expected images.

use std::ops::Range;

use discover::Options;

use crate::{Edit, Expected, Plan, shift};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the edited text no longer parses at byte {offset}: {message}")]
    Unparsable { offset: usize, message: String },
    #[error("the edit would change the value at byte {offset} from {before:?} to {after:?}")]
    Changed {
        offset: usize,
        before: String,
        after: String,
    },
    #[error(
        "the edit would change the document's structure ({before} values before, {after} after)"
    )]
    Structure { before: usize, after: usize },
    #[error("after the edit, a scan would find {unexpected:?} instead of {missing:?}")]
    Findings {
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
}

/// Check `new` (= `old` with `plan` applied) against `old`. `name` is the file name, used to
/// decide the format as the scanner does.
pub fn verify(
    name: &str,
    old: &str,
    new: &str,
    plan: &Plan,
    opts: &Options,
) -> Result<(), VerifyError> {
    if discover::is_yaml(name, old) {
        same_scalars(old, new, &plan.edits)?;
    }
    let report = discover::scan_file(name, new.as_bytes(), opts);
    if let Some(e) = report.errors.first() {
        return Err(VerifyError::Unparsable {
            offset: e.offset,
            message: e.message.clone(),
        });
    }
    let mut expected = plan.expected.clone();
    let mut found: Vec<Expected> = report.findings.iter().map(crate::edit::summary).collect();
    expected.sort();
    found.sort();
    if expected != found {
        let missing = expected
            .iter()
            .filter(|e| !found.contains(e))
            .map(Expected::to_string)
            .collect();
        let unexpected = found
            .iter()
            .filter(|f| !expected.contains(f))
            .map(Expected::to_string)
            .collect();
        return Err(VerifyError::Findings {
            missing,
            unexpected,
        });
    }
    Ok(())
}

/// Every YAML scalar that no edit touches keeps its value, in the same order.
fn same_scalars(old: &str, new: &str, edits: &[Edit]) -> Result<(), VerifyError> {
    let unparsable = |e: discover::ScanError| VerifyError::Unparsable {
        offset: e.offset,
        message: e.message,
    };
    let before = discover::yaml_scalars(old).map_err(unparsable)?;
    let after = discover::yaml_scalars(new).map_err(unparsable)?;
    // Inserted lines add their own key and value; leave them out of the comparison.
    let inserted: Vec<Range<usize>> = edits
        .iter()
        .filter(|e| e.adds_entry)
        .map(|e| {
            let at = shift(e.span.start, edits) - e.replacement.len();
            at..at + e.replacement.len()
        })
        .collect();
    let after: Vec<_> = after
        .into_iter()
        .filter(|(span, _)| {
            !inserted
                .iter()
                .any(|r| r.start <= span.start && span.end <= r.end)
        })
        .collect();
    if before.len() != after.len() {
        return Err(VerifyError::Structure {
            before: before.len(),
            after: after.len(),
        });
    }
    for ((span, was), (_, now)) in before.iter().zip(&after) {
        let touched = edits.iter().any(|e| {
            if e.adds_entry {
                // An entry added inside a block scalar (JCasC in a ConfigMap) changes it.
                span.start < e.span.start && e.span.start < span.end
            } else {
                // Overlap, or an edit filling an empty value (`registry: ""`).
                e.span.start < span.end && span.start < e.span.end || e.span == *span
            }
        });
        if was != now && !touched {
            return Err(VerifyError::Changed {
                offset: span.start,
                before: was.clone(),
                after: now.clone(),
            });
        }
    }
    Ok(())
}
