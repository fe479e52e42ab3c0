//! Findings → byte edits of the original file, never a re-serialisation: quote style, comments,
//! anchors, indentation, block scalars and line endings survive because only the bytes of image
//! values (and an added `jnlpregistry:` line) are touched.

use std::collections::BTreeMap;
use std::ops::Range;

use discover::{Finding, Insert, Kind, PartRole};
use imgref::Reference;
use mapping::spelled_name;

use crate::{Mapping, MappingError};

/// Replace the bytes at `span` with `replacement` (an empty span inserts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub span: Range<usize>,
    pub replacement: String,
    /// The edit adds a whole `key: value` entry (rather than changing a value).
    pub adds_entry: bool,
}

impl Edit {
    fn value(span: Range<usize>, replacement: String) -> Edit {
        Edit {
            span,
            replacement,
            adds_entry: false,
        }
    }
}

/// A finding that needs a change the tool will not make in place, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub span: Range<usize>,
    pub image: String,
    pub reason: String,
}

/// What rewriting one file would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by position, non-overlapping.
    pub edits: Vec<Edit>,
    pub skipped: Vec<Skipped>,
    /// For each finding, in order: how a scan should read it once the edits are applied.
    pub expected: Vec<Expected>,
    /// Edits whose rightness depends on what the file does not show (a Helm chart's templates).
    pub notes: Vec<crate::helm::Note>,
}

/// How a scan reads one finding: its kind and the image, compared as values (a normalised
/// reference, so `nginx` and `docker.io/library/nginx:latest` are one image).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expected {
    pub kind: Kind,
    pub image: Seen,
}

/// The image part of [`Expected`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seen {
    /// A reference, normalised.
    Reference(Reference),
    /// Text that is not a reference yet (templated), as written.
    Written(String),
}

impl Expected {
    fn reference(kind: Kind, r: &Reference) -> Expected {
        Expected {
            kind,
            image: Seen::Reference(r.normalized()),
        }
    }

    fn written(kind: Kind, text: String) -> Expected {
        Expected {
            kind,
            image: Seen::Written(text),
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.image {
            Seen::Reference(r) => write!(f, "{} {r}", self.kind),
            Seen::Written(t) => write!(f, "{} {t}", self.kind),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("the lock file's digest {digest} for {image} cannot be used: {reason}")]
    BadPin {
        image: String,
        digest: String,
        reason: String,
    },
    #[error("bytes {start}..{end} would be rewritten both to {first:?} and to {second:?}")]
    Conflict {
        start: usize,
        end: usize,
        first: String,
        second: String,
    },
}

/// Options that widen what `plan` changes.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Add the setting that moves an implicit image (a Jenkins cloud's `jnlpregistry`).
    pub fix_implicit: bool,
    /// Digests to write with each reference written out whole, by normalised reference (from
    /// `airlock.lock`).
    pub pins: BTreeMap<String, String>,
}

/// How a finding reads in a scan, for comparing a file before and after its edits.
pub(crate) fn summary(f: &Finding) -> Expected {
    match &f.reference {
        Some(r) => Expected::reference(f.kind, r),
        None => Expected::written(f.kind, f.image.clone()),
    }
}

/// Work out the edits that point every finding in `text` at the private registry.
pub fn plan(
    text: &str,
    findings: &[Finding],
    mapping: &Mapping,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    for f in findings {
        let before = (plan.edits.len(), plan.skipped.len());
        let after = edit_finding(text, f, mapping, opts, &mut plan)?;
        let edited = plan.skipped.len() == before.1 && plan.edits.len() > before.0;
        if edited {
            let edits = plan.edits[before.0..].to_vec();
            crate::helm::global_registry_notes(f, &edits, &mut plan.notes);
        }
        plan.expected.push(match after {
            Some(after) if edited => after,
            _ => summary(f),
        });
    }
    plan.normalise()?;
    Ok(plan)
}

/// Plan the edits for one finding; returns how it should read after them.
fn edit_finding(
    text: &str,
    f: &Finding,
    mapping: &Mapping,
    opts: &PlanOptions,
    plan: &mut Plan,
) -> Result<Option<Expected>, PlanError> {
    if f.kind == Kind::Built {
        return Ok(None);
    }
    let written = text.get(f.span.clone()).unwrap_or("");
    let Some(reference) = &f.reference else {
        if f.kind != Kind::Templated {
            return Ok(None);
        }
        // Split fields whose tag the chart fills in (`appVersion`): the name parts are
        // written, and are changed like any composed reference.
        if let Some(untagged) = untagged_composed(f) {
            let mapped = mapping.map(&untagged)?;
            if mapped != untagged {
                composed(text, f, &mapped, mapping, plan);
            }
            // Still templated after the edit: the scan reads the composed text as written.
            return Ok(Some(Expected::written(f.kind, mapped.to_string())));
        }
        return Ok(match rename_written(written, mapping)? {
            Some(new) => {
                plan.edits.push(Edit::value(
                    f.span.start..f.span.start + new.name_len,
                    new.name.clone(),
                ));
                Some(Expected::written(
                    f.kind,
                    format!(
                        "{}{}",
                        new.name,
                        &f.image[new.name_len.min(f.image.len())..]
                    ),
                ))
            }
            None => {
                plan.skip(
                    f,
                    "templated: the value is filled in elsewhere; map it where it is set",
                );
                None
            }
        });
    };
    let mapped = mapping.map(reference)?;
    let mapped = match f.kind {
        // Only a reference written out whole can carry a digest.
        Kind::Literal | Kind::Heuristic if f.exact => pin(mapped, reference, &opts.pins)?,
        _ => mapped,
    };
    if mapped == *reference {
        return Ok(None);
    }
    let after = Some(Expected::reference(f.kind, &mapped));
    match f.kind {
        Kind::Implicit => {
            let kind = implicit(text, f, reference, &mapped, opts, plan);
            return Ok(Some(Expected::reference(kind, &mapped)));
        }
        Kind::Composed => composed(text, f, &mapped, mapping, plan),
        _ if f.exact => plan
            .edits
            .push(Edit::value(f.span.clone(), mapped.to_string())),
        // A variable's default spells the whole reference: rewrite inside it, keeping the
        // variable (`${IMAGE:-nginx}`, `ARG BASE=golang:1.22` for `FROM ${BASE}`).
        _ if f.parts.iter().any(|p| p.role == PartRole::Default) => {
            match f
                .parts
                .iter()
                .find(|p| p.role == PartRole::Default && p.exact)
            {
                Some(d) => plan
                    .edits
                    .push(Edit::value(d.span.clone(), mapped.to_string())),
                None => plan.skip(
                    f,
                    "the variable's default is escaped or folded; edit it by hand",
                ),
            }
        }
        // Assembled from variables (`golang:${GO_VERSION}`): the name is still written out.
        _ => match rename_written(written, mapping)? {
            Some(new) => plan.edits.push(Edit::value(
                f.span.start..f.span.start + new.name_len,
                new.name,
            )),
            None => plan.skip(
                f,
                "the value is escaped, folded or assembled from variables; edit it by hand",
            ),
        },
    }
    Ok(after)
}

/// Add the locked digest to a reference that has none.
fn pin(
    mapped: Reference,
    original: &Reference,
    pins: &BTreeMap<String, String>,
) -> Result<Reference, PlanError> {
    let Some(digest) = pins.get(&original.normalized().to_string()) else {
        return Ok(mapped);
    };
    if mapped.digest().is_some() {
        return Ok(mapped);
    }
    Reference::parse(&format!("{mapped}@{digest}")).map_err(|e| PlanError::BadPin {
        image: original.to_string(),
        digest: digest.clone(),
        reason: e.to_string(),
    })
}

/// The new spelling of a written reference's name, when the name is written out literally and
/// only the tag or digest comes from a variable (`golang:${GO_VERSION}-alpine`).
pub(crate) struct RenamedName {
    /// Bytes of the written text that hold the name.
    pub name_len: usize,
    pub name: String,
}

pub(crate) fn rename_written(
    written: &str,
    mapping: &Mapping,
) -> Result<Option<RenamedName>, MappingError> {
    // Only the text before the first variable is known; the name must end inside it.
    let known = &written[..written.find('$').unwrap_or(written.len())];
    let last_slash = known.rfind('/').map_or(0, |i| i + 1);
    let Some(sep) = known[last_slash..].find([':', '@']).map(|i| last_slash + i) else {
        return Ok(None);
    };
    let Ok(name) = Reference::parse(&written[..sep]) else {
        return Ok(None);
    };
    let mapped = mapping.map(&name)?;
    Ok((mapped != name).then(|| RenamedName {
        name_len: sep,
        name: spelled_name(&mapped),
    }))
}

/// A templated finding composed from name fields only (a Helm image map without a tag).
pub(crate) fn untagged_composed(f: &Finding) -> Option<Reference> {
    if f.parts.is_empty() {
        return None;
    }
    Reference::parse(&f.image).ok()
}

/// Split fields are changed part by part: a registry field takes the new prefix and the
/// repository stays as written when it still ends the new name; otherwise the repository field
/// takes the whole new name. A chart-wide `global.imageRegistry` is preferred when the new prefix
/// is the target itself, since one edit there moves every image of the chart. Tags and digests
/// are never touched (the mapping keeps them).
fn composed(text: &str, f: &Finding, mapped: &Reference, mapping: &Mapping, plan: &mut Plan) {
    let part = |role| f.parts.iter().find(|p| p.role == role);
    let new_name = spelled_name(mapped);
    let Some(repository) = part(PartRole::Repository) else {
        if part(PartRole::Selector).is_none() {
            return plan.skip(f, "no field holds the repository");
        }
        // A kustomize `name:` only selects the image; `newName:` says what is pulled instead.
        let Some(ins) = f.insertion.as_ref().filter(|i| i.what == Insert::NewName) else {
            return plan.skip(
                f,
                "a kustomize `name:` only selects the image and the entry is not one key per \
                 line: add `newName:` with the private name by hand",
            );
        };
        let line_start = text[..ins.offset].rfind('\n').map_or(0, |i| i + 1);
        let indent = &text[line_start..ins.offset];
        if !indent.bytes().all(|b| b == b' ' || b == b'\t') {
            return plan.skip(
                f,
                "the kustomize entry is not one key per line: add `newName:` by hand",
            );
        }
        plan.edits.push(Edit {
            span: ins.offset..ins.offset,
            replacement: format!("newName: {new_name}\n{indent}"),
            adds_entry: true,
        });
        return;
    };
    let prefix = new_name
        .strip_suffix(repository.value.as_str())
        .and_then(|p| p.strip_suffix('/'));
    let registry = match (part(PartRole::GlobalRegistry), part(PartRole::Registry)) {
        (Some(global), _) if prefix == Some(mapping.target()) => Some(global),
        (_, Some(own)) => Some(own),
        _ => None,
    };
    match (registry, prefix) {
        (Some(r), Some(prefix)) if r.exact => plan
            .edits
            .push(Edit::value(r.span.clone(), prefix.to_string())),
        (Some(_), Some(_)) => plan.skip(
            f,
            "the registry field is escaped or folded; edit it by hand",
        ),
        _ if repository.exact => plan
            .edits
            .push(Edit::value(repository.span.clone(), new_name)),
        _ => plan.skip(
            f,
            "the repository field is escaped or folded; edit it by hand",
        ),
    }
}

/// The Jenkins `jnlp` agent: the plugin prefixes its default image with the cloud's
/// `jnlpregistry`, so that setting is what moves it; where a pod template has no cloud setting
/// in reach (a Jenkinsfile), an explicit `jnlp` container is added instead. Returns the kind the
/// finding has afterwards (literal once the container is written out).
fn implicit(
    text: &str,
    f: &Finding,
    reference: &Reference,
    mapped: &Reference,
    opts: &PlanOptions,
    plan: &mut Plan,
) -> Kind {
    if !opts.fix_implicit {
        plan.skip(
            f,
            "implicit image: run with --fix-implicit to set jnlpregistry, or add a jnlp container",
        );
        return Kind::Implicit;
    }
    let registry_part = f.parts.iter().find(|p| p.role == PartRole::Registry);
    let Some(ins) = f.insertion.as_ref().filter(|_| registry_part.is_none()) else {
        match (registry_part, jnlpregistry(f, mapped)) {
            (Some(part), Some(registry)) if part.exact => {
                plan.edits.push(Edit::value(part.span.clone(), registry))
            }
            (Some(_), None) => plan.skip(
                f,
                &format!("{reference} maps to {mapped}, which jnlpregistry cannot express"),
            ),
            _ => plan.skip(
                f,
                "no place to set jnlpregistry; add a jnlp container to the template",
            ),
        }
        return Kind::Implicit;
    };
    let line_start = text[..ins.offset].rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..ins.offset];
    if !indent.bytes().all(|b| b == b' ' || b == b'\t') {
        plan.skip(
            f,
            "the surrounding settings are not one per line; add it by hand",
        );
        return Kind::Implicit;
    }
    let (replacement, after) = match ins.what {
        Insert::RegistryKey(key) => match jnlpregistry(f, mapped) {
            Some(registry) => (format!("{key}: {registry}\n{indent}"), Kind::Implicit),
            None => {
                plan.skip(
                    f,
                    &format!("{reference} maps to {mapped}, which jnlpregistry cannot express"),
                );
                return Kind::Implicit;
            }
        },
        Insert::YamlJnlpContainer => (
            format!("- name: jnlp\n{indent}  image: {mapped}\n{indent}"),
            Kind::Literal,
        ),
        Insert::GroovyJnlpContainer => (
            format!("containerTemplate(name: 'jnlp', image: '{mapped}'),\n{indent}"),
            Kind::Literal,
        ),
        // Only kustomize entries (composed findings) carry it.
        Insert::NewName => {
            plan.skip(
                f,
                "no place to set jnlpregistry; add a jnlp container to the template",
            );
            return Kind::Implicit;
        }
    };
    plan.edits.push(Edit {
        span: ins.offset..ins.offset,
        replacement,
        adds_entry: true,
    });
    after
}

/// The `jnlpregistry` that makes the plugin's default image come out as `mapped`; the one
/// function `check`'s fix hint uses too.
fn jnlpregistry(f: &Finding, mapped: &Reference) -> Option<String> {
    let setting = f.parts.iter().find(|p| p.role == PartRole::Registry);
    mapping::setting_prefix(&f.image, setting.map(|p| p.value.as_str()), mapped)
}

impl Plan {
    fn skip(&mut self, f: &Finding, reason: &str) {
        self.skipped.push(Skipped {
            span: f.span.clone(),
            image: f.image.clone(),
            reason: reason.to_string(),
        });
    }

    /// Sort, merge identical edits (a shared registry field serves many images) and refuse
    /// edits that disagree or overlap.
    fn normalise(&mut self) -> Result<(), PlanError> {
        self.edits.sort_by_key(|e| (e.span.start, e.span.end));
        self.edits.dedup();
        for w in self.edits.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if b.span.start < a.span.end || (a.span == b.span) {
                return Err(PlanError::Conflict {
                    start: a.span.start,
                    end: a.span.end.max(b.span.end),
                    first: a.replacement.clone(),
                    second: b.replacement.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Apply sorted, non-overlapping edits to the original bytes.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(
        text.len() + edits.iter().map(|e| e.replacement.len()).sum::<usize>(),
    );
    let mut at = 0;
    for e in edits {
        out.push_str(&text[at..e.span.start]);
        out.push_str(&e.replacement);
        at = e.span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Where an offset of the original text lands after the edits (for offsets outside edits).
pub fn shift(offset: usize, edits: &[Edit]) -> usize {
    let mut delta: isize = 0;
    // Edits are sorted and disjoint, so their ends are sorted too; an insertion at `offset`
    // pushes what was there to after the inserted text.
    for e in edits.iter().take_while(|e| e.span.end <= offset) {
        delta += e.replacement.len() as isize - e.span.len() as isize;
    }
    offset.saturating_add_signed(delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    /// The plan's expectations are values: a kind and a normalised reference (or, for templated
    /// text, the text), never a `"{kind} {image}"` string that a reworded Display could break.
    #[test]
    fn plan_expectations_are_typed_values() {
        let text = "\
apiVersion: v1
kind: Pod
spec:
  containers:
    - name: a
      image: nginx:1.27
    - name: b
      image: \"golang:${GO}\"
";
        let report = discover::scan_file("p.yaml", text.as_bytes(), &discover::Options::default());
        let mapping = Mapping::new("r.local/mirror", Mode::ReplaceHost, vec![]).unwrap();
        let plan = plan(text, &report.findings, &mapping, &PlanOptions::default()).unwrap();
        assert_eq!(
            plan.expected,
            [
                Expected {
                    kind: Kind::Literal,
                    image: Seen::Reference(
                        Reference::parse("r.local/mirror/library/nginx:1.27").unwrap()
                    ),
                },
                Expected {
                    kind: Kind::Templated,
                    image: Seen::Written("r.local/mirror/library/golang:${GO}".into()),
                },
            ]
        );
        let new = apply(text, &plan.edits);
        crate::verify("p.yaml", text, &new, &plan, &discover::Options::default()).unwrap();
        // A rescan that reads the same text with another kind is a different finding.
        let mut wrong = plan.clone();
        wrong.expected[0].kind = Kind::Heuristic;
        let err = crate::verify("p.yaml", text, &new, &wrong, &discover::Options::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "after the edit, a scan would find [\"literal r.local/mirror/library/nginx:1.27\"] \
             instead of [\"heuristic r.local/mirror/library/nginx:1.27\"]"
        );
    }
}
