//! A YAML document as a tree whose scalars know their exact byte range in the source text.
//!
//! saphyr-parser reports positions in characters, starts quoted scalars at the opening quote and
//! gives block scalars only the span of their content lines, so every scalar's byte range is
//! recomputed here from the source text itself. Aliases are resolved and `<<` merge keys applied
//! while building, so callers see what a YAML loader would see, with spans that still point at
//! the bytes that were written (the anchored definition).
//!
//! An alias shares its anchored node (collections are reference-counted, scalar text is shared),
//! so building stays linear in the text; but every walk over the tree sees the expansion, which grows exponentially with
//! nested aliases ("billion laughs"). An [`AliasBudget`] caps the nodes aliases may add to one
//! file, and an alias that would go past it fails the document with its position.
//!
//! Duplicate keys in one mapping are kept: walks visit every entry, so every image written is
//! found and rewritten, while lookups ([`Node::get`]) see the last one, as kubectl, Helm and other
//! Go and Python loaders do (YAML calls duplicates an error; the tools people run accept them).
//! Keys written in a mapping still win over keys merged in with `<<`, and among merged maps the
//! first one listed wins, as the merge-key specification says.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::OffsetMap;

/// How many nodes alias expansion may add to one file, nested documents included. Compose
/// anchors and merge keys add tens or hundreds; nine nested aliases of nine add 387 million.
pub const ALIAS_EXPANSION_LIMIT: u64 = 100_000;

/// Above this many entries a mapping keeps a key index, so a lookup does not scan every entry
/// (a map of 100,000 duplicate `image:` keys made sibling lookups quadratic).
const INDEX_ABOVE: usize = 8;

#[derive(Debug, Clone)]
pub enum Node {
    Scalar(Scalar),
    Map(Rc<Map>),
    Seq(Rc<[Node]>),
}

/// A mapping's entries in written order (merged entries after the mapping's own).
#[derive(Debug)]
pub struct Map {
    entries: Vec<(Node, Node)>,
    index: Option<Box<KeyIndex>>,
}

/// The position of the last entry with each string key, exactly and ASCII-case-folded.
#[derive(Debug)]
struct KeyIndex {
    exact: HashMap<Box<str>, usize>,
    folded: HashMap<Box<str>, usize>,
}

#[derive(Debug, Clone)]
pub struct Scalar {
    /// Shared by the copies an alias makes.
    pub value: Rc<str>,
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
    pub kind: YamlErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum YamlErrorKind {
    /// The text is not YAML.
    Syntax,
    /// An alias would expand the file past [`ALIAS_EXPANSION_LIMIT`] nodes.
    AliasBudget,
}

/// The nodes aliases may still add to the file being scanned, shared by all of its documents and
/// by the documents embedded in its strings, so that splitting a bomb into many small ones does
/// not multiply the allowance.
#[derive(Debug)]
pub(crate) struct AliasBudget {
    left: Cell<u64>,
}

impl AliasBudget {
    pub fn new() -> Self {
        Self::with_limit(ALIAS_EXPANSION_LIMIT)
    }

    pub fn with_limit(nodes: u64) -> Self {
        AliasBudget {
            left: Cell::new(nodes),
        }
    }

    /// Take `nodes` from the budget; false (and nothing left) when there are not that many.
    fn spend(&self, nodes: u64) -> bool {
        match self.left.get().checked_sub(nodes) {
            Some(left) => {
                self.left.set(left);
                true
            }
            None => {
                self.left.set(0);
                false
            }
        }
    }
}

impl Map {
    fn new(entries: Vec<(Node, Node)>) -> Self {
        let index = (entries.len() > INDEX_ABOVE).then(|| {
            let mut exact = HashMap::with_capacity(entries.len());
            let mut folded = HashMap::with_capacity(entries.len());
            for (i, (k, _)) in entries.iter().enumerate() {
                if let Some(k) = k.as_str() {
                    // Later entries overwrite earlier ones: the last duplicate wins.
                    exact.insert(Box::from(k), i);
                    folded.insert(k.to_ascii_lowercase().into_boxed_str(), i);
                }
            }
            Box::new(KeyIndex { exact, folded })
        });
        Map { entries, index }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        let i = match &self.index {
            Some(index) => *index.exact.get(key)?,
            None => self
                .entries
                .iter()
                .rposition(|(k, _)| k.as_str() == Some(key))?,
        };
        Some(&self.entries[i].1)
    }

    fn get_ci(&self, key: &str) -> Option<&Node> {
        let i = match &self.index {
            Some(index) => *index.folded.get(key.to_ascii_lowercase().as_str())?,
            None => self
                .entries
                .iter()
                .rposition(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(key)))?,
        };
        Some(&self.entries[i].1)
    }
}

impl Node {
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| &*s.value)
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match self {
            Node::Map(m) => Some(&m.entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match self {
            Node::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping (exact key match; the last of duplicate keys).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// The value under `key` in a mapping, ignoring ASCII case (Helm charts spell `Image` and
    /// `image` in the same file).
    pub fn get_ci(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.get_ci(key),
            _ => None,
        }
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

impl Scalar {
    /// Whether the scalar is written plain (unquoted, not a block), the only style in which
    /// YAML reads `1.0`, `true` or `~` as something other than a string.
    pub fn is_plain(&self) -> bool {
        self.style == ScalarStyle::Plain
    }

    /// Whether this scalar is YAML null (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        self.style == ScalarStyle::Plain
            && matches!(&*self.value, "" | "~" | "null" | "Null" | "NULL")
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
        // The content starts `indent` columns into its line, and those columns are spaces. The
        // span starts at the first line with content; the value's leading newlines are the
        // empty lines before it.
        let leading = self.value.len() - self.value.trim_start_matches('\n').len();
        let mut src = lines_back(bytes, self.span.start.saturating_sub(self.indent), leading);
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

/// Parse every document in `text`. Documents are returned even when a later one fails; the
/// document in which an alias overdraws `budget` is dropped and the error names that alias.
pub(crate) fn parse(text: &str, budget: &AliasBudget) -> (Vec<Node>, Option<YamlError>) {
    // The parser drops a byte-order mark from its positions; parse without it and move every
    // offset past it, so spans stay offsets into `text`.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let base = text.len() - body.len();
    let pos = Positions::new(body);
    let mut builder = Builder {
        text: body,
        base,
        pos: &pos,
        anchors: Vec::new(),
    };
    let mut parser = Parser::new_from_str(body);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                let offset = base + pos.byte(*e.marker());
                return (
                    docs,
                    Some(YamlError {
                        offset,
                        message: e.info().to_string(),
                        kind: YamlErrorKind::Syntax,
                    }),
                );
            }
        };
        let (node, size) = match event {
            Event::StreamEnd => break,
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                stack.push(Frame {
                    anchor,
                    items: Vec::new(),
                    size: 1,
                    is_map: matches!(event, Event::MappingStart(..)),
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(frame) = stack.pop() else { continue };
                let (anchor, size) = (frame.anchor, frame.size);
                let node = frame.finish();
                builder.remember(anchor, &node, size);
                (node, size)
            }
            Event::Scalar(value, style, anchor, _) => {
                let node = Node::Scalar(builder.scalar(value.into_owned(), style, span));
                builder.remember(anchor, &node, 1);
                (node, 1)
            }
            Event::Alias(id) => {
                let (node, size) = builder.alias(id);
                if !budget.spend(size) {
                    return (docs, Some(builder.overdrawn(span)));
                }
                (node, size)
            }
            _ => continue,
        };
        match stack.last_mut() {
            Some(frame) => {
                frame.items.push(node);
                frame.size = frame.size.saturating_add(size);
            }
            None => docs.push(node),
        }
    }
    (docs, None)
}

struct Frame {
    anchor: usize,
    items: Vec<Node>,
    /// Nodes in the expansion of this collection, itself included.
    size: u64,
    is_map: bool,
}

impl Frame {
    fn finish(self) -> Node {
        let items = self.items;
        if !self.is_map {
            return Node::Seq(items.into());
        }
        let mut own = Vec::with_capacity(items.len() / 2);
        let mut merged: Vec<(Node, Node)> = Vec::new();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if k.as_scalar()
                .is_some_and(|s| &*s.value == "<<" && s.style == ScalarStyle::Plain)
            {
                match &v {
                    Node::Map(m) => merged.extend(m.entries.iter().cloned()),
                    Node::Seq(s) => s
                        .iter()
                        .filter_map(|n| match n {
                            Node::Map(m) => Some(m),
                            _ => None,
                        })
                        .for_each(|m| merged.extend(m.entries.iter().cloned())),
                    _ => {}
                }
            } else {
                own.push((k, v));
            }
        }
        if !merged.is_empty() {
            // Keys written in the mapping itself override merged ones, and an earlier merged
            // map overrides a later one.
            let mut seen: HashSet<String> = own
                .iter()
                .filter_map(|(k, _)| k.as_str().map(str::to_string))
                .collect();
            for (k, v) in merged {
                if k.as_str().is_none_or(|key| seen.insert(key.to_string())) {
                    own.push((k, v));
                }
            }
        }
        Node::Map(Rc::new(Map::new(own)))
    }
}

struct Builder<'a> {
    text: &'a str,
    /// Where `text` starts in the text given to [`parse`] (after a byte-order mark).
    base: usize,
    pos: &'a Positions<'a>,
    /// Anchored nodes by the parser's anchor id, with the size of their expansion.
    anchors: Vec<Option<(Node, u64)>>,
}

impl Builder<'_> {
    fn remember(&mut self, anchor: usize, node: &Node, size: u64) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize(anchor + 1, None);
        }
        self.anchors[anchor] = Some((node.clone(), size));
    }

    fn alias(&self, id: usize) -> (Node, u64) {
        self.anchors
            .get(id)
            .cloned()
            .flatten()
            .unwrap_or((Node::Seq(Rc::from([])), 1))
    }

    /// The error for the alias at `span` that went past the budget.
    fn overdrawn(&self, span: Span) -> YamlError {
        let at = self.pos.byte(span.start);
        let name: String = self.text[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
            .collect();
        YamlError {
            offset: self.base + at,
            message: format!(
                "alias {name} would take the nodes aliases add to this file past \
                 {ALIAS_EXPANSION_LIMIT} (aliases nested to grow exponentially, a \"billion \
                 laughs\"?)"
            ),
            kind: YamlErrorKind::AliasBudget,
        }
    }

    fn scalar(&self, value: String, style: ScalarStyle, span: Span) -> Scalar {
        let mut s = self.scalar_in_body(value, style, span);
        s.span = s.span.start + self.base..s.span.end + self.base;
        s
    }

    fn scalar_in_body(&self, value: String, style: ScalarStyle, span: Span) -> Scalar {
        let text = self.text;
        let start = self.pos.byte(span.start);
        let mut indent = span.start.col();
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
                        value: value.into(),
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
                match block_content_start(text, start) {
                    Some((content, columns)) => {
                        indent = columns;
                        (content.min(end)..end, false)
                    }
                    None => (start..end, false),
                }
            }
        };
        Scalar {
            value: value.into(),
            style,
            span,
            exact,
            indent,
        }
    }
}

/// Where a block scalar's content starts when the parser's span starts at the node's anchor or
/// tag instead (`key: &a |`): the first line after the `|`/`>` header that is not blank, and its
/// indentation. None when the span already starts at the content.
fn block_content_start(text: &str, start: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    if !matches!(b.get(start), Some(b'&' | b'!')) {
        return None;
    }
    let mut i = start;
    loop {
        match b.get(i)? {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => i += memchr::memchr2(b'\n', b'\r', &b[i..])?,
            b'&' | b'!' => {
                while b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    i += 1;
                }
            }
            b'|' | b'>' => break,
            _ => return None,
        }
    }
    // The rest of the header line (indicators, a comment), then blank lines.
    let mut line = i + memchr::memchr2(b'\n', b'\r', &b[i..])?;
    loop {
        line += if b[line..].starts_with(b"\r\n") { 2 } else { 1 };
        let spaces = b[line.min(b.len())..]
            .iter()
            .take_while(|&&c| c == b' ')
            .count();
        match b.get(line + spaces) {
            Some(b'\n' | b'\r') => line += spaces,
            None => return None,
            Some(_) => return Some((line + spaces, spaces)),
        }
    }
}

/// The start of the line `n` lines before the line starting at `line` (at `\n`, `\r\n` or `\r`).
fn lines_back(b: &[u8], mut line: usize, n: usize) -> usize {
    for _ in 0..n {
        if line == 0 {
            break;
        }
        let end = if line >= 2 && &b[line - 2..line] == b"\r\n" {
            line - 2
        } else {
            line - 1
        };
        line = memchr::memrchr2(b'\n', b'\r', &b[..end]).map_or(0, |i| i + 1);
    }
    line
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
        let (mut docs, err) = parse(text, &AliasBudget::new());
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
            assert_eq!(&*s.value, want);
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
    fn anchored_or_tagged_block_scalars_map_to_their_content_lines() {
        for text in [
            "s: &s |\n  x: 1\n  image: redis:7\n",
            "s: !!str |  # c\n\n  \n  x: 1\n  image: redis:7\n",
            "s: &s\n  |\r\n    x: 1\r\n    image: redis:7\r\n",
            "s: |\n\n  x: 1\n  image: redis:7\n",
        ] {
            let d = doc(text);
            let s = d.get("s").unwrap().as_scalar().unwrap();
            let at = s.value_map(text).map(s.value.find("redis").unwrap());
            assert_eq!(&text[at..at + 7], "redis:7", "{text:?}");
            let x = s.value_map(text).map(s.value.find("x:").unwrap());
            assert_eq!(&text[x..x + 2], "x:", "{text:?}");
        }
    }

    #[test]
    fn a_syntax_error_reports_its_byte_offset() {
        let (_, err) = parse("a: [1, 2\nb: c\n", &AliasBudget::new());
        assert!(err.unwrap().offset > 0);
    }
}
