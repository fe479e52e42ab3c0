//! Image lists: plain text files with one image reference per line, the form projects publish
//! for air-gapped installs (Longhorn's `longhorn-images.txt`, `kubeadm config images list`).
//! `#` starts a comment (a whole line, or after whitespace at the end of a line).

use std::ops::Range;

use crate::{FileReport, Finding, Kind, ScanError, Source, is_templated};

/// Whether every entry is a single image reference (or a templated one) and at least one names
/// more than a bare word (has a `/` or `:`), so prose, YAML and `key: value` files never qualify.
pub(crate) fn looks_like(text: &str) -> bool {
    let mut qualified = false;
    for (_, entry) in entries(text) {
        if entry.contains(char::is_whitespace) {
            return false;
        }
        if is_templated(entry) {
            continue;
        }
        // `nginx:1.25#note` is a list entry with a comment that does not start a word: still a
        // list, so the entry is reported (as `lock -f` reports it) instead of the whole file
        // being silently taken for something else.
        let reference = entry.split_once('#').map_or(entry, |(r, _)| r);
        if imgref::Reference::parse(reference).is_err() {
            return false;
        }
        qualified |= reference.contains(['/', ':']);
    }
    qualified
}

/// One literal (or templated) finding per entry; an entry that is not a reference is an error.
pub(crate) fn scan(text: &str, out: &mut FileReport) {
    for (n, (span, entry)) in entries(text).enumerate() {
        let ctx = format!("image list entry {}", n + 1);
        match Finding::from_value(
            entry,
            span.clone(),
            true,
            Kind::Literal,
            Source::ImageList,
            ctx,
        ) {
            Some(f) => out.findings.push(f),
            None => out.errors.push(ScanError {
                offset: span.start,
                message: if entry.contains('#') {
                    format!(
                        "not an image reference: {entry} (`#` starts a comment only at the start \
                         of a line or after a space)"
                    )
                } else {
                    format!("not an image reference: {entry}")
                },
            }),
        }
    }
}

/// A file known to be an image list (given with `-f`), read without detection: the same
/// findings and errors [`crate::scan_file`] gives a file it recognises as a list, so every verb
/// reads a list the same way.
pub fn read(text: &str) -> FileReport {
    let mut report = FileReport::default();
    scan(text, &mut report);
    report
}

/// The non-empty entries of the list with their byte ranges, comments and blanks removed.
fn entries(text: &str) -> impl Iterator<Item = (Range<usize>, &str)> {
    let mut start = 0;
    text.split_inclusive('\n').filter_map(move |line| {
        let line_start = start;
        start += line.len();
        let body = strip_comment(line);
        let trimmed = body.trim();
        if trimmed.is_empty() {
            return None;
        }
        let lead = body.len() - body.trim_start().len();
        let s = line_start + lead;
        Some((s..s + trimmed.len(), trimmed))
    })
}

/// The line without its comment: from a `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let hash = bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .map(|(i, _)| i);
    match hash {
        Some(i) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_only_at_word_starts() {
        assert_eq!(strip_comment("# all\n"), "");
        assert_eq!(strip_comment("a/b:1 # note"), "a/b:1 ");
        assert_eq!(strip_comment("a/b:1\t#note"), "a/b:1\t");
        assert_eq!(strip_comment("a/b#c"), "a/b#c");
    }

    #[test]
    fn an_entry_with_an_attached_hash_is_a_list_error_not_another_format() {
        let text = "registry.corp/app:1.0\nnginx:1.25#sha256:abc\n";
        assert!(looks_like(text));
        let report = read(text);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].offset, text.find("nginx").unwrap());
        assert!(report.errors[0].message.contains("`#` starts a comment"));
    }

    #[test]
    fn entries_keep_exact_ranges() {
        let text = "# list\n\n  nginx:1.25  # pinned\r\nbusybox\n";
        let got: Vec<_> = entries(text).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(&text[got[0].0.clone()], "nginx:1.25");
        assert_eq!(got[1].1, "busybox");
    }
}
