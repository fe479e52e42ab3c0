//! Text for people: every value that comes from a scanned file, a file name or a registry goes
//! through [`escape`] before it reaches a terminal, so a hostile file cannot move the cursor,
//! retitle the window, hide text or reorder it (the class of CVE-2021-25743 in kubectl). JSON
//! and SARIF output is escaped by the serialiser instead.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1) and every Unicode bidirectional control
/// written as a visible escape (`\x1b`, `\u{202e}`); anything else unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// [`escape`] for multi-line text: each line escaped, the line breaks kept.
pub fn escape_lines(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(l) => format!("{}\n", escape(l)),
            None => escape(line).into_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_become_visible_escapes() {
        assert_eq!(escape("nginx:1.27"), "nginx:1.27");
        assert!(matches!(escape("é/ü:1"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1b[31mb\x07"), "a\\x1b[31mb\\x07");
        assert_eq!(
            escape("x\ny\tz\r\u{7f}\u{9b}"),
            "x\\x0ay\\x09z\\x0d\\x7f\\x9b"
        );
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape_lines("a\x1b\nb\n"), "a\\x1b\nb\n");
    }
}

/// `n` and the noun that goes with it: "1 image", "2 images", "0 images". Every count printed
/// for people goes through here. `many` is given, not derived: English plurals are irregular
/// ("entry"/"entries") and a rule would get one wrong.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An error and its causes on one line, `a: b: c`, leaving out a cause whose text the message
/// above it already holds (a library error that prints its source as well as returning it would
/// otherwise say everything twice).
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod chain_tests {
    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1u32, "image", "images"), "1 image");
        assert_eq!(super::count(0u32, "image", "images"), "0 images");
        assert_eq!(super::count(2u32, "entry", "entries"), "2 entries");
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let err =
            anyhow::Error::new(oci::Error::io("x.tar", io)).context("cannot read the archive");
        assert_eq!(
            super::error_chain(&err),
            "cannot read the archive: x.tar: No such file"
        );
    }
}
