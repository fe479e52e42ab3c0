//! A YAML document as a tree whose scalars know their exact byte range in the source text.
//!
//! saphyr-parser reports positions in characters, starts quoted scalars at the opening quote and
//! gives block scalars only the span of their content lines, so every scalar's byte range is
//! recomputed here from the source text itself. Aliases are expanded and `<<` merge keys applied
//! while building, so callers see what a YAML loader would see, with spans that still point at
//! the bytes that were written (the anchored definition).

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::OffsetMap;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Scalar(Scalar),
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
}

#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub value: String,
    pub style: ScalarStyle,
    /// Bytes of the value in the parsed text: inside quotes; for block scalars the first content
    /// line through the end of the content.
    pub span: Range<usize>,
    /// Whether `text[span] == value` (no escapes, no folding, no block indentation).
    pub exact: bool,
    /// For block scalars: the column of the content, so the line map can strip it.
    indent: usize,
}

/// A parse failure, with the byte offset in the parsed text.
#[derive(Debug, Clone)]
pub(crate) struct YamlError {
    pub offset: usize,
    pub message: String,
}

impl Node {
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.value.as_str())
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match self {
            Node::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping (exact key match).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value under `key` in a mapping, ignoring ASCII case (Helm charts spell `Image` and
    /// `image` in the same file).
    pub fn get_ci(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v)
    }

    /// A non-empty string scalar under `key`.
    pub fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(Node::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Iterate a mapping's entries with string keys.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.as_map()
            .unwrap_or(&[])
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }
}

impl Node {
    fn shift(&mut self, by: usize) {
        match self {
            Node::Scalar(s) => s.span = s.span.start + by..s.span.end + by,
            Node::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.shift(by);
                v.shift(by);
            }),
            Node::Seq(items) => items.iter_mut().for_each(|i| i.shift(by)),
        }
    }
}

impl Scalar {
    /// Whether this scalar is YAML null (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        self.style == ScalarStyle::Plain
            && matches!(self.value.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    /// Map offsets in this scalar's value to offsets in the parsed text.
    pub fn value_map(&self, text: &str) -> OffsetMap {
        match self.style {
            ScalarStyle::Literal => self.literal_map(text),
            // Folded and escaped scalars are not verbatim copies: positions are approximate.
            _ => OffsetMap::from_segments(vec![(0, self.span.start)], self.exact),
        }
    }

    fn literal_map(&self, text: &str) -> OffsetMap {
        let bytes = text.as_bytes();
        // The content starts `indent` columns into its line, and those columns are spaces.
        let mut src = self.span.start.saturating_sub(self.indent);
        let mut inner = 0;
        let mut segments = Vec::new();
        for line in self.value.split_inclusive('\n') {
            let content = if line == "\n" { src } else { src + self.indent };
            segments.push((inner, content.min(text.len())));
            inner += line.len();
            // The next source line starts after `\n`, `\r\n` or a lone `\r`.
            let rest = &bytes[src.min(bytes.len())..];
            src = match memchr::memchr2(b'\n', b'\r', rest) {
                Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => src + i + 2,
                Some(i) => src + i + 1,
                None => bytes.len(),
            };
        }
        OffsetMap::from_segments(segments, true)
    }
}

/// Converts saphyr's character positions to byte offsets in the text.
struct Positions<'a> {
    text: &'a str,
    ascii: bool,
    line_starts: Vec<usize>,
}

impl<'a> Positions<'a> {
    fn new(text: &'a str) -> Self {
        let ascii = text.is_ascii();
        let line_starts = if ascii {
            Vec::new()
        } else {
            // YAML breaks lines at `\n`, `\r\n` and a lone `\r`, and so do the parser's line numbers.
            let b = text.as_bytes();
            std::iter::once(0)
                .chain(
                    memchr::memchr2_iter(b'\n', b'\r', b)
                        .filter(|&i| !(b[i] == b'\r' && b.get(i + 1) == Some(&b'\n')))
                        .map(|i| i + 1),
                )
                .collect()
        };
        Positions {
            text,
            ascii,
            line_starts,
        }
    }

    fn byte(&self, m: saphyr_parser::Marker) -> usize {
        if self.ascii {
            return m.index().min(self.text.len());
        }
        let Some(&start) = self.line_starts.get(m.line().saturating_sub(1)) else {
            return self.text.len();
        };
        let line = &self.text[start..];
        start
            + line
                .char_indices()
                .nth(m.col())
                .map_or(line.len(), |(i, _)| i)
    }
}

/// Parse every document in `text`. Documents are returned even when a later one fails.
pub(crate) fn parse(text: &str) -> (Vec<Node>, Option<YamlError>) {
    // The parser drops a byte-order mark from its positions; parse without it and move every
    // span past it, so spans stay offsets into `text`.
    match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            let bom = text.len() - rest.len();
            let (mut docs, err) = parse_without_bom(rest);
            docs.iter_mut().for_each(|d| d.shift(bom));
            (
                docs,
                err.map(|e| YamlError {
                    offset: e.offset + bom,
                    ..e
                }),
            )
        }
        None => parse_without_bom(text),
    }
}

fn parse_without_bom(text: &str) -> (Vec<Node>, Option<YamlError>) {
    let pos = Positions::new(text);
    let mut builder = Builder {
        text,
        pos: &pos,
        anchors: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                let offset = pos.byte(*e.marker());
                return (
                    docs,
                    Some(YamlError {
                        offset,
                        message: e.info().to_string(),
                    }),
                );
            }
        };
        let node = match event {
            Event::StreamEnd => break,
            Event::MappingStart(anchor, _) => {
                stack.push(Frame {
                    anchor,
                    items: Vec::new(),
                    is_map: true,
                });
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame {
                    anchor,
                    items: Vec::new(),
                    is_map: false,
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(frame) = stack.pop() else { continue };
                let anchor = frame.anchor;
                let node = frame.finish();
                builder.remember(anchor, &node);
                node
            }
            Event::Scalar(value, style, anchor, _) => {
                let node = Node::Scalar(builder.scalar(value.into_owned(), style, span));
                builder.remember(anchor, &node);
                node
            }
            Event::Alias(id) => builder.alias(id),
            _ => continue,
        };
        match stack.last_mut() {
            Some(frame) => frame.items.push(node),
            None => docs.push(node),
        }
    }
    (docs, None)
}

struct Frame {
    anchor: usize,
    items: Vec<Node>,
    is_map: bool,
}

impl Frame {
    fn finish(self) -> Node {
        let items = self.items;
        if !self.is_map {
            return Node::Seq(items);
        }
        let mut own = Vec::with_capacity(items.len() / 2);
        let mut merged = Vec::new();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if k.as_scalar()
                .is_some_and(|s| s.value == "<<" && s.style == ScalarStyle::Plain)
            {
                match v {
                    Node::Map(m) => merged.extend(m),
                    Node::Seq(s) => s
                        .into_iter()
                        .filter_map(|n| match n {
                            Node::Map(m) => Some(m),
                            _ => None,
                        })
                        .for_each(|m| merged.extend(m)),
                    _ => {}
                }
            } else {
                own.push((k, v));
            }
        }
        // Keys written in the mapping itself override merged ones.
        for (k, v) in merged {
            if !own
                .iter()
                .any(|(ok, _)| ok.as_str().is_some() && ok.as_str() == k.as_str())
            {
                own.push((k, v));
            }
        }
        Node::Map(own)
    }
}

struct Builder<'a> {
    text: &'a str,
    pos: &'a Positions<'a>,
    anchors: Vec<Option<Node>>,
}

impl Builder<'_> {
    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize(anchor + 1, None);
        }
        self.anchors[anchor] = Some(node.clone());
    }

    fn alias(&self, id: usize) -> Node {
        self.anchors
            .get(id)
            .cloned()
            .flatten()
            .unwrap_or(Node::Seq(Vec::new()))
    }

    fn scalar(&self, value: String, style: ScalarStyle, span: Span) -> Scalar {
        let text = self.text;
        let start = self.pos.byte(span.start);
        let indent = span.start.col();
        let (span, exact) = match style {
            ScalarStyle::Plain => {
                if text
                    .get(start..)
                    .is_some_and(|t| t.starts_with(value.as_str()))
                {
                    (start..start + value.len(), true)
                } else {
                    (start..self.pos.byte(span.end).max(start), false)
                }
            }
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                let quote = if style == ScalarStyle::SingleQuoted {
                    b'\''
                } else {
                    b'"'
                };
                if text.as_bytes().get(start) != Some(&quote) {
                    // Never expected; a wrong span must not become a wrong edit.
                    return Scalar {
                        value,
                        style,
                        span: start..start,
                        exact: false,
                        indent,
                    };
                }
                let body = start + 1;
                let end =
                    closing_quote(&text.as_bytes()[body..], quote).map_or(text.len(), |i| body + i);
                (body..end, text.get(body..end) == Some(value.as_str()))
            }
            ScalarStyle::Literal | ScalarStyle::Folded => {
                let end = self.pos.byte(span.end).max(start);
                (start..end, false)
            }
        };
        Scalar {
            value,
            style,
            span,
            exact,
            indent,
        }
    }
}

/// Offset of the closing quote in `rest` (the bytes after the opening quote).
fn closing_quote(rest: &[u8], quote: u8) -> Option<usize> {
    let mut i = 0;
    while i < rest.len() {
        let b = rest[i];
        if quote == b'"' && b == b'\\' {
            i += 2;
            continue;
        }
        if b == quote {
            if quote == b'\'' && rest.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        let (mut docs, err) = parse(text);
        assert!(err.is_none(), "{err:?}");
        docs.remove(0)
    }

    #[test]
    fn scalar_spans_are_exact_bytes_after_non_ascii_text() {
        let text = "# é 专为\na: \"quoted ü\" # c\nb: 'it''s'\nc: plain value\n";
        let d = doc(text);
        for (key, want, exact) in [
            ("a", "quoted ü", true),
            ("b", "it's", false),
            ("c", "plain value", true),
        ] {
            let s = d.get(key).unwrap().as_scalar().unwrap();
            assert_eq!(s.value, want);
            assert_eq!(s.exact, exact, "{key}");
            if exact {
                assert_eq!(&text[s.span.clone()], want);
            }
        }
        assert_eq!(
            &text[d.get("b").unwrap().as_scalar().unwrap().span.clone()],
            "it''s"
        );
    }

    #[test]
    fn literal_block_lines_map_back_to_the_source() {
        let text = "x: 1\nd: |\n  ünï: 1\n\n  image: nginx:1.25\n";
        let d = doc(text);
        let s = d.get("d").unwrap().as_scalar().unwrap();
        let map = s.value_map(text);
        let inner = s.value.find("nginx").unwrap();
        let outer = map.map(inner);
        assert_eq!(&text[outer..outer + 10], "nginx:1.25");
    }

    #[test]
    fn aliases_and_merge_keys_resolve_to_the_anchored_bytes() {
        let text = "base: &b\n  image: redis:7\nsvc:\n  <<: *b\n  ports: [1]\nother: *b\n";
        let d = doc(text);
        let via_merge = d
            .get("svc")
            .unwrap()
            .get("image")
            .unwrap()
            .as_scalar()
            .unwrap();
        assert_eq!(&text[via_merge.span.clone()], "redis:7");
        assert_eq!(d.get("other").unwrap().str_at("image"), Some("redis:7"));
    }

    #[test]
    fn a_byte_order_mark_does_not_shift_spans() {
        let text = "\u{feff}\"=y\"\n";
        let d = doc(text);
        assert_eq!(&text[d.as_scalar().unwrap().span.clone()], "=y");
        let text = "\u{feff}image: 'nginx:1'\n";
        assert_eq!(
            &text[doc(text)
                .get("image")
                .unwrap()
                .as_scalar()
                .unwrap()
                .span
                .clone()],
            "nginx:1"
        );
    }

    #[test]
    fn lone_carriage_returns_break_lines_like_newlines() {
        let text = "a: ü\rb: 'nginx:1'\rc: |\r  x: 1\r  image: redis:7\r";
        let d = doc(text);
        assert_eq!(
            &text[d.get("b").unwrap().as_scalar().unwrap().span.clone()],
            "nginx:1"
        );
        let c = d.get("c").unwrap().as_scalar().unwrap();
        let at = c.value_map(text).map(c.value.find("redis").unwrap());
        assert_eq!(&text[at..at + 7], "redis:7");
    }

    #[test]
    fn a_syntax_error_reports_its_byte_offset() {
        let (_, err) = parse("a: [1, 2\nb: c\n");
        assert!(err.unwrap().offset > 0);
    }
}
