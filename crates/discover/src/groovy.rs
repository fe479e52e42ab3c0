//! Jenkins pipelines (Groovy): images named in `containerTemplate`/`podTemplate` arguments,
//! declarative `docker`/`kubernetes` agents and `docker.image(…)`, pod YAML held in Groovy strings
//! (scanned by the YAML module), and the `jnlp` agent image the Kubernetes plugin injects into
//! every pod template that does not define a `jnlp` container itself.
//!
//! A small tokenizer (comments, the four Groovy string forms with escapes and `${…}`) feeds a
//! bracket tree; rules look at identifiers and the strings next to them, never at the text of
//! shell steps, so `sh 'docker build -t x .'` or a URL can not become an image.

use std::collections::HashSet;
use std::ops::Range;

use crate::nested::Nested;
use crate::{
    Container, ContainerRole, FileReport, Finding, Insert, Insertion, Kind, OffsetMap, PodKind,
    PodRef, ScanError, Site, Source,
};

/// How deep pipelines held in strings of pipelines (Job DSL `script('''…''')`) are followed.
const MAX_DEPTH: usize = 4;
/// How deep `"${ "…" }"` strings may nest before quotes inside them are taken as plain text.
const MAX_STRING_NESTING: usize = 16;
/// How many enclosing groups a context names.
const MAX_CHAIN: usize = 32;
const JNLP_NOTE: &str = "jnlp (injected by the Kubernetes plugin)";

/// Whether a file is a Jenkinsfile: named like one (`Jenkinsfile*`, `*.groovy`) or holding a
/// pipeline, and never when it starts like YAML, JSON or markdown.
pub(crate) fn looks_like(base: &str, text: &str) -> bool {
    // Content decides only for files without an extension (`Jenkinsfile`, stdin): notes and
    // docs that quote a `podTemplate(` are prose, not pipelines.
    let no_extension = !base.contains('.');
    first_code_line(text).is_none_or(groovy_start)
        && (name_says_groovy(base) || (no_extension && has_pipeline(text, 0)))
}

/// Whether a string (embedded in YAML) holds a Groovy pipeline, by content only.
pub(crate) fn looks_like_pipeline(text: &str) -> bool {
    first_code_line(text).is_some_and(groovy_start) && has_pipeline(text, 0)
}

fn name_says_groovy(base: &str) -> bool {
    let data = [".yaml", ".yml", ".json", ".md", ".txt"]
        .iter()
        .any(|e| base.ends_with(e));
    !data
        && (base.starts_with("jenkinsfile")
            || base.ends_with(".jenkinsfile")
            || base.ends_with(".groovy")
            || base.ends_with(".gvy"))
}

/// The first line that is not blank, a comment or a shebang.
fn first_code_line(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut in_block = false;
    for (n, line) in text.lines().enumerate() {
        let mut l = line.trim();
        loop {
            if in_block {
                match l.find("*/") {
                    Some(p) => (l, in_block) = (l[p + 2..].trim_start(), false),
                    None => break,
                }
            } else if let Some(rest) = l.strip_prefix("/*") {
                (l, in_block) = (rest, true);
            } else {
                break;
            }
        }
        if in_block || l.is_empty() || l.starts_with("//") || (n == 0 && l.starts_with("#!")) {
            continue;
        }
        return Some(l);
    }
    None
}

/// Groovy code starts with a word or an annotation; YAML with `key:`, `---` or `- `, JSON with
/// `{`, markdown and YAML comments with `#`.
fn groovy_start(line: &str) -> bool {
    let starts_like_code = line.starts_with(|c: char| c.is_ascii_alphabetic() || "_@$".contains(c));
    let key_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_.-/".contains(c)))
        .unwrap_or(line.len());
    let after_key = line[key_len..].trim_start();
    let yaml_key = after_key
        .strip_prefix(':')
        .is_some_and(|r| r.is_empty() || r.starts_with(' '));
    starts_like_code && !yaml_key
}

/// Whether the code calls one of the steps only pipelines have (or holds such code in a string).
fn has_pipeline(text: &str, depth: usize) -> bool {
    let (toks, _) = lex(text);
    let next_is = |i: usize, set: &[u8]| {
        toks.get(i + 1)
            .is_some_and(|t| matches!(t.tok, Tok::Punct(c) if set.contains(&c)))
    };
    toks.iter().enumerate().any(|(i, t)| match &t.tok {
        Tok::Ident => match &text[t.range.clone()] {
            "pipeline" => next_is(i, b"{"),
            "podTemplate" => next_is(i, b"("),
            "node" | "containerTemplate" => next_is(i, b"({"),
            _ => false,
        },
        Tok::Str(lit) => {
            depth < MAX_DEPTH && lit.value.contains('\n') && {
                let inner = lit.value.as_str();
                first_code_line(inner).is_some_and(groovy_start) && has_pipeline(inner, depth + 1)
            }
        }
        _ => false,
    })
}

/// Scan Groovy; `map` maps offsets in `text` to the file, `context` prefixes every context.
/// `pod` is the pod template this pipeline's pod YAML belongs to, when an enclosing document
/// says so (none does today: a pipeline is its own scope).
pub(crate) fn scan(
    text: &str,
    map: &OffsetMap,
    context: &str,
    nested: &dyn Nested,
    pod: Option<PodRef>,
    out: &mut FileReport,
) {
    scan_at_depth(text, map, context, nested, pod, out, 0);
}

fn scan_at_depth(
    text: &str,
    map: &OffsetMap,
    context: &str,
    nested: &dyn Nested,
    pod: Option<PodRef>,
    out: &mut FileReport,
    depth: usize,
) {
    let (toks, errors) = lex(text);
    let at_file = |e: ScanError| ScanError {
        offset: map.map(e.offset),
        ..e
    };
    out.errors.extend(errors.into_iter().map(at_file));
    let tree = Tree::build(text, toks);
    let mut scan = Scan {
        tree: &tree,
        map,
        prefix: context,
        nested,
        pod,
        out,
        yaml: HashSet::new(),
    };
    for i in 0..tree.toks.len() {
        scan.token(i);
    }
    if depth < MAX_DEPTH {
        scan.nested_pipelines(depth);
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug)]
enum Tok {
    Ident,
    Str(Lit),
    Punct(u8),
    Other,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    range: Range<usize>,
}

/// A string literal: its value after escapes, and how value offsets map back to the text.
#[derive(Debug)]
struct Lit {
    value: String,
    /// `(offset in value, offset in text)`, one segment more after each escape sequence.
    segs: Vec<(usize, usize)>,
    /// The text between the quotes.
    content: Range<usize>,
    /// Whether an escape sequence made the value differ from the text between the quotes.
    escaped: bool,
    /// False when the input ended (or the line, for a one-line string) before the closing quote.
    terminated: bool,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    nesting: usize,
    errors: Vec<ScanError>,
}

fn lex(src: &str) -> (Vec<Token>, Vec<ScanError>) {
    let mut lx = Lexer {
        src,
        pos: 0,
        nesting: 0,
        errors: Vec::new(),
    };
    if src.starts_with("#!") {
        lx.pos = src.find('\n').unwrap_or(src.len());
    }
    let mut toks = Vec::new();
    while let Some(t) = lx.token() {
        toks.push(t);
    }
    (toks, lx.errors)
}

impl Lexer<'_> {
    fn byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    fn token(&mut self) -> Option<Token> {
        self.skip_space_and_comments();
        let start = self.pos;
        let c = self.byte(start)?;
        let tok = if c == b'\'' || c == b'"' {
            Tok::Str(self.string())
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            self.pos = self.word_end(start);
            Tok::Ident
        } else if c.is_ascii_digit() {
            self.pos = self.word_end(start);
            Tok::Other
        } else if c.is_ascii() {
            self.pos += 1;
            Tok::Punct(c)
        } else {
            self.pos += self.src[start..].chars().next().map_or(1, char::len_utf8);
            Tok::Other
        };
        Some(Token {
            tok,
            range: start..self.pos,
        })
    }

    fn word_end(&self, start: usize) -> usize {
        let b = self.src.as_bytes();
        start
            + b[start..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'$')
                .count()
    }

    fn skip_space_and_comments(&mut self) {
        loop {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                self.pos += body.find("*/").map_or(trimmed.len(), |e| e + 4);
            } else {
                return;
            }
        }
    }

    /// A `'…'`, `"…"`, `'''…'''` or `"""…"""` literal starting at `self.pos`.
    fn string(&mut self) -> Lit {
        let start = self.pos;
        let q = self.byte(start).unwrap_or(b'\'');
        let triple = self.byte(start + 1) == Some(q) && self.byte(start + 2) == Some(q);
        let delim = if triple { 3 } else { 1 };
        self.pos += delim;
        let content_start = self.pos;
        let mut lit = Lit {
            value: String::new(),
            segs: vec![(0, content_start)],
            content: content_start..content_start,
            escaped: false,
            terminated: false,
        };
        loop {
            let i = self.pos;
            let Some(c) = self.byte(i) else {
                self.error(start, "unterminated string");
                break;
            };
            let closes =
                c == q && (!triple || (self.byte(i + 1) == Some(q) && self.byte(i + 2) == Some(q)));
            if closes {
                lit.terminated = true;
                lit.content.end = i;
                self.pos = i + delim;
                return lit;
            }
            if c == b'\n' && !triple {
                self.error(start, "unterminated string");
                break;
            }
            match c {
                b'\\' => self.escape(&mut lit),
                b'$' if q == b'"' && self.byte(i + 1) == Some(b'{') => self.interpolation(&mut lit),
                _ => {
                    let ch = self.src[i..].chars().next().unwrap_or('\u{fffd}');
                    lit.value.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
        lit.content.end = self.pos;
        lit
    }

    /// A backslash escape in a string: decoded into the value, with a new map segment after it.
    fn escape(&mut self, lit: &mut Lit) {
        lit.escaped = true;
        let after = self.pos + 1;
        let Some(n) = self.src[after..].chars().next() else {
            self.pos = after;
            return;
        };
        let mut len = n.len_utf8();
        let decoded = match n {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' if self.byte(after + 1) == Some(b'\n') => {
                len = 2;
                None
            }
            'r' => Some('\r'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            's' => Some(' '),
            '\n' => None, // a line continuation
            'u' => {
                let hex = self.src.get(after + 1..after + 5);
                let code = hex.and_then(|h| u32::from_str_radix(h, 16).ok());
                len += if code.is_some() { 4 } else { 0 };
                code.map_or(Some('u'), char::from_u32)
            }
            other => Some(other),
        };
        lit.value.extend(decoded);
        self.pos = after + len;
        lit.segs.push((lit.value.len(), self.pos));
    }

    /// `${ … }` in a double-quoted string, copied as written (it makes the value templated).
    fn interpolation(&mut self, lit: &mut Lit) {
        let start = self.pos;
        let mut i = start + 2;
        let mut depth = 0usize;
        while let Some(c) = self.byte(i) {
            match c {
                b'{' => depth += 1,
                b'}' if depth == 0 => {
                    i += 1;
                    break;
                }
                b'}' => depth -= 1,
                b'\'' | b'"' if self.nesting < MAX_STRING_NESTING => {
                    self.nesting += 1;
                    self.pos = i;
                    let _ = self.string();
                    self.nesting -= 1;
                    i = self.pos;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        // `i` is after an ASCII `}`, after a string, or at the end: always a char boundary.
        lit.value
            .push_str(self.src.get(start..i).unwrap_or_default());
        self.pos = i;
    }

    fn error(&mut self, offset: usize, message: &str) {
        self.errors.push(ScanError {
            offset,
            message: message.to_string(),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Bracket tree

/// Tokens with their bracket structure: every token knows its innermost enclosing opener.
struct Tree<'a> {
    src: &'a str,
    toks: Vec<Token>,
    parent: Vec<Option<usize>>,
    /// For an opener, the index of its closer (the token count when unclosed).
    close: Vec<usize>,
    /// For a closer, its opener.
    open: Vec<Option<usize>>,
    /// For a group, the string of its `name` argument (`name: 'x'`, `name 'x'`), if any.
    name_arg: Vec<Option<usize>>,
    /// For a group, its first token.
    first_child: Vec<Option<usize>>,
    /// For a group, whether it has an `inheritFrom` argument naming a template.
    inherits: Vec<bool>,
    /// How many `jnlp` container definitions come before each token (see [`defines_jnlp`]).
    jnlp_before: Vec<usize>,
}

impl<'a> Tree<'a> {
    fn build(src: &'a str, toks: Vec<Token>) -> Self {
        let n = toks.len();
        let (mut parent, mut close, mut open) = (vec![None; n], vec![n; n], vec![None; n]);
        let mut stack: Vec<usize> = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            parent[i] = stack.last().copied();
            let Tok::Punct(c) = t.tok else { continue };
            let opener = match c {
                b'(' | b'[' | b'{' => {
                    stack.push(i);
                    continue;
                }
                b')' => b'(',
                b']' => b'[',
                b'}' => b'{',
                _ => continue,
            };
            let is_opener = |o: &usize| matches!(toks[*o].tok, Tok::Punct(p) if p == opener);
            // Openers left unclosed inside this group end here too.
            if let Some(pos) = stack.iter().rposition(is_opener) {
                stack[pos..].iter().for_each(|&o| close[o] = i);
                open[i] = Some(stack[pos]);
                stack.truncate(pos);
            }
        }
        let mut tree = Tree {
            src,
            toks,
            parent,
            close,
            open,
            name_arg: vec![None; n],
            first_child: vec![None; n],
            inherits: vec![false; n],
            jnlp_before: vec![0; n + 1],
        };
        tree.index_groups();
        tree
    }

    /// Facts about groups computed once, so that no rule rescans a group (input stays linear).
    fn index_groups(&mut self) {
        for i in 0..self.toks.len() {
            let Some(p) = self.parent[i] else { continue };
            self.first_child[p].get_or_insert(i);
            match self.ident(i) {
                Some("name") if self.name_arg[p].is_none() => self.name_arg[p] = self.value_of(i),
                Some("inheritFrom") => {
                    // A name held in a variable counts: it is most likely not empty.
                    let named = self.value_of(i).and_then(|v| self.lit(v));
                    self.inherits[p] |= named.is_none_or(|l| !l.value.trim().is_empty());
                }
                _ => {}
            }
        }
        for i in 0..self.toks.len() {
            self.jnlp_before[i + 1] = self.jnlp_before[i] + usize::from(defines_jnlp(self, i));
        }
    }

    fn ident(&self, i: usize) -> Option<&'a str> {
        let t = self.toks.get(i)?;
        matches!(t.tok, Tok::Ident).then(|| &self.src[t.range.clone()])
    }

    fn is(&self, i: usize, c: u8) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| matches!(t.tok, Tok::Punct(p) if p == c))
    }

    /// The string literal at `i`; an unterminated one is never a value.
    fn lit(&self, i: usize) -> Option<&Lit> {
        match &self.toks.get(i)?.tok {
            Tok::Str(l) if l.terminated => Some(l),
            _ => None,
        }
    }

    /// The string given to the key or method at `i`: `key: 'v'`, `key 'v'` or `key('v')`.
    fn value_of(&self, i: usize) -> Option<usize> {
        if self.is(i + 1, b':') || self.is(i + 1, b'(') {
            self.lit(i + 2).map(|_| i + 2)
        } else {
            self.lit(i + 1).map(|_| i + 1)
        }
    }

    /// The `name` argument of group `o`.
    fn name_arg(&self, o: usize) -> Option<&Lit> {
        self.lit(self.name_arg.get(o).copied().flatten()?)
    }

    /// For `name(…)` and `name {`, and `name(…) {`: the name.
    fn group_name(&self, o: usize) -> Option<&'a str> {
        if self.is(o, b'[') {
            return None; // a list or map literal, or an index
        }
        let before = o.checked_sub(1)?;
        if let Some(name) = self.ident(before) {
            return Some(name);
        }
        let call = self.call_args(o)?;
        self.ident(call.checked_sub(1)?)
    }

    /// The `(` of the call whose closure body is the `{` at `o`.
    fn call_args(&self, o: usize) -> Option<usize> {
        let before = o.checked_sub(1)?;
        if self.is(o, b'{') && self.is(before, b')') {
            self.open[before]
        } else {
            None
        }
    }

    /// `containerTemplate(name: maven)`, `stage(Build)`, `agent`: how a person would name a group.
    fn label(&self, o: usize) -> Option<String> {
        let name = self.group_name(o)?;
        let args = if self.is(o, b'(') {
            Some(o)
        } else {
            self.call_args(o)
        };
        if let Some(n) = self
            .name_arg(o)
            .or_else(|| args.and_then(|a| self.name_arg(a)))
        {
            return Some(format!("{name}(name: {})", n.value));
        }
        let first = args
            .and_then(|a| self.first_child[a])
            .and_then(|i| self.lit(i));
        Some(match first {
            Some(l) if self.is(o, b'{') => format!("{name}({})", l.value),
            _ => name.to_string(),
        })
    }

    /// Labels of the groups enclosing token `i`, outermost first (at most [`MAX_CHAIN`] groups
    /// are walked, so deeply nested input stays linear).
    fn chain(&self, i: usize) -> Vec<String> {
        let mut labels: Vec<String> = Vec::new();
        let mut at = self.parent.get(i).copied().flatten();
        for _ in 0..MAX_CHAIN {
            let Some(o) = at else { break };
            // The body of `name(…) {` is named like its call; show the name once.
            if let Some(l) = self.label(o).filter(|l| labels.last() != Some(l)) {
                labels.push(l);
            }
            at = self.parent[o];
        }
        labels.reverse();
        labels
    }
}

// ---------------------------------------------------------------------------------------------
// Rules

struct Scan<'t, 'o> {
    tree: &'t Tree<'t>,
    map: &'o OffsetMap,
    prefix: &'o str,
    /// Scans the YAML this pipeline embeds.
    nested: &'o dyn Nested,
    /// The pod template enclosing the whole pipeline text, if any.
    pod: Option<PodRef>,
    out: &'o mut FileReport,
    /// Strings already handed to the YAML module.
    yaml: HashSet<usize>,
}

impl Scan<'_, '_> {
    fn token(&mut self, i: usize) {
        let t = self.tree;
        match t.ident(i) {
            Some("image") => self.image(i),
            Some("docker") if t.lit(i + 1).is_some() && self.parent_named(i, "agent") => {
                // Declarative shorthand: `agent { docker 'maven:3' }`.
                self.report(i, i + 1, Kind::Literal, "docker");
            }
            Some("yaml") if !(i > 0 && t.is(i - 1, b'.')) => {
                if let Some(v) = t.value_of(i) {
                    self.embedded_yaml(i, v);
                }
            }
            Some("podTemplate") if t.is(i + 1, b'(') => self.implicit_jnlp(i, i + 1),
            Some("kubernetes") if t.is(i + 1, b'{') && self.parent_named(i, "agent") => {
                self.implicit_jnlp(i, i + 1);
            }
            _ => {}
        }
    }

    fn parent_named(&self, i: usize, name: &str) -> bool {
        let t = self.tree;
        t.parent[i].and_then(|o| t.group_name(o)) == Some(name)
    }

    /// `image: '…'`, `image '…'`, `image('…')` and `docker.image('…')`.
    fn image(&mut self, i: usize) {
        let t = self.tree;
        if i > 0 && t.is(i - 1, b'.') {
            let receiver = i.checked_sub(2).and_then(|r| t.ident(r));
            if receiver == Some("docker") && t.is(i + 1, b'(') && t.lit(i + 2).is_some() {
                self.report(i, i + 2, Kind::Literal, "docker.image()");
            }
            return;
        }
        if let Some(v) = t.value_of(i) {
            self.report(i, v, Kind::Literal, ".image");
        }
    }

    /// Context for something at token `i`: the enclosing groups, then `what`, which attaches to
    /// the innermost group when it starts with `.` or a space (`containerTemplate(name: x).image`).
    fn context(&self, i: usize, what: &str) -> String {
        let chain = self.tree.chain(i).join(" › ");
        let attached = what.starts_with(['.', ' ']);
        match (chain.is_empty(), attached) {
            (true, _) => format!("{}{}", self.prefix, what.trim_start_matches(['.', ' '])),
            (false, true) => format!("{}{chain}{what}", self.prefix),
            (false, false) => format!("{}{chain} › {what}", self.prefix),
        }
    }

    /// Report the string at token `v`, the value of the key or call at token `key`, as an image.
    fn report(&mut self, key: usize, v: usize, kind: Kind, what: &str) {
        let Some(lit) = self.tree.lit(v) else { return };
        let (range, exact) = if lit.escaped {
            (lit.content.clone(), false)
        } else {
            // Unescaped, the value is the text between the quotes: trim it the way from_value does.
            let lead = lit.value.len() - lit.value.trim_start().len();
            let start = lit.content.start + lead;
            (start..start + lit.value.trim().len(), true)
        };
        let span = self.map.map_range(range);
        let exact = exact && self.map.is_exact();
        let ctx = self.context(key, what);
        if let Some(mut f) =
            Finding::from_value(&lit.value, span, exact, kind, Source::Jenkinsfile, ctx)
        {
            f.site = self.site_of(key);
            self.out.findings.push(f);
        }
    }

    /// The pod and container of an image given to the key or call at token `key`.
    fn site_of(&self, key: usize) -> Site {
        let t = self.tree;
        let container = t.parent[key]
            .filter(|&o| t.group_name(o) == Some("containerTemplate"))
            .map(|o| Container {
                name: t.name_arg(o).map(|l| l.value.trim().to_string()),
                role: ContainerRole::Regular,
            });
        Site {
            pod: self.pod_of(key),
            container,
            ..Site::default()
        }
    }

    /// The pod template token `i` is an argument of: the `podTemplate(…)` or declarative
    /// `agent { kubernetes { … } }` around it, else the one enclosing this whole pipeline.
    fn pod_of(&self, i: usize) -> Option<PodRef> {
        let t = self.tree;
        let mut at = t.parent.get(i).copied().flatten();
        while let Some(o) = at {
            if let Some(keyword) = o.checked_sub(1) {
                let template = match t.ident(keyword) {
                    Some("podTemplate") => t.is(o, b'('),
                    Some("kubernetes") => t.is(o, b'{') && self.parent_named(keyword, "agent"),
                    _ => false,
                };
                if template {
                    return Some(self.template(keyword));
                }
            }
            at = t.parent[o];
        }
        self.pod
    }

    /// The pod template declared by the keyword at token `keyword`, identified by its offset.
    fn template(&self, keyword: usize) -> PodRef {
        PodRef {
            kind: PodKind::JenkinsTemplate,
            offset: self.map.map(self.tree.toks[keyword].range.start),
        }
    }

    /// Pod YAML in a string (`yaml '''…'''`, `yaml: """…"""`): scanned by the YAML module.
    fn embedded_yaml(&mut self, key: usize, v: usize) {
        let Some(lit) = self.tree.lit(v) else { return };
        self.yaml.insert(v);
        let inner = OffsetMap::from_segments(lit.segs.clone(), !lit.escaped);
        let map = self.map.compose(&inner);
        let ctx = self.context(key, " yaml") + " › ";
        let pod = self.pod_of(key);
        self.nested.yaml(&lit.value, &map, &ctx, pod, self.out);
    }

    /// The Kubernetes plugin adds a `jnlp` container (its default agent image) to a pod template
    /// that neither defines one nor inherits from another template.
    fn implicit_jnlp(&mut self, keyword: usize, scope: usize) {
        let t = self.tree;
        let end = t.close[scope].min(t.toks.len());
        if t.inherits[scope] || t.jnlp_before[end] > t.jnlp_before[scope + 1] {
            return;
        }
        let image = self.nested.options().jnlp_image();
        let what = t.ident(keyword).unwrap_or("podTemplate");
        let mut ctx = self.context(keyword, what);
        ctx.push_str(" › ");
        ctx.push_str(JNLP_NOTE);
        let insertion = self.jnlp_insertion(scope, end);
        self.out.findings.push(Finding {
            span: self.map.map_range(t.toks[keyword].range.clone()),
            // The span is the keyword that implies the image, never text to overwrite.
            exact: false,
            reference: imgref::Reference::parse(&image).ok(),
            image,
            kind: Kind::Implicit,
            source: Source::Jenkinsfile,
            context: ctx,
            parts: Vec::new(),
            insertion,
            site: Site {
                pod: Some(self.template(keyword)),
                container: Some(Container {
                    name: Some("jnlp".to_string()),
                    role: ContainerRole::InjectedJnlp,
                }),
                ..Site::default()
            },
        });
    }

    /// Where a `jnlp` container can be added to the pod template between tokens `scope` and
    /// `end`: before the first `containerTemplate(…)` of a `containers: [...]` list, or before
    /// the first item of the `containers:` list in its pod YAML.
    fn jnlp_insertion(&self, scope: usize, end: usize) -> Option<Insertion> {
        if !self.map.is_exact() {
            return None;
        }
        let t = self.tree;
        for i in scope + 1..end {
            let in_list = t.parent[i].is_some_and(|p| t.is(p, b'['));
            if t.ident(i) == Some("containerTemplate") && t.is(i + 1, b'(') && in_list {
                let offset = self.map.map(t.toks[i].range.start);
                return Some(Insertion {
                    offset,
                    what: Insert::GroovyJnlpContainer,
                });
            }
            if let Some(lit) = t
                .lit(i)
                .filter(|l| !l.escaped && l.value.contains("containers:"))
            {
                let at = first_container_item(&lit.value)?;
                let inner = OffsetMap::from_segments(lit.segs.clone(), true);
                let offset = self.map.compose(&inner).map(at);
                return Some(Insertion {
                    offset,
                    what: Insert::YamlJnlpContainer,
                });
            }
        }
        None
    }

    /// Pipelines held in strings (Job DSL `script('''pipeline { … }''')`), scanned in turn.
    fn nested_pipelines(&mut self, depth: usize) {
        let t = self.tree;
        for (i, tok) in t.toks.iter().enumerate() {
            let Tok::Str(lit) = &tok.tok else { continue };
            if !lit.terminated
                || self.yaml.contains(&i)
                || !lit.value.contains('\n')
                || !looks_like_pipeline(&lit.value)
            {
                continue;
            }
            let map = self
                .map
                .compose(&OffsetMap::from_segments(lit.segs.clone(), !lit.escaped));
            let ctx = self.context(i, "");
            scan_at_depth(
                &lit.value,
                &map,
                &ctx,
                self.nested,
                self.pod,
                self.out,
                depth + 1,
            );
        }
    }
}

/// Offset of the `-` that starts the first item under the first `containers:` line of a pod YAML.
fn first_container_item(yaml: &str) -> Option<usize> {
    let mut offset = 0;
    let mut seen = false;
    for line in yaml.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if seen && trimmed.starts_with("- ") {
            return Some(offset + line.len() - trimmed.len());
        }
        seen |= trimmed.trim_end() == "containers:";
        offset += line.len();
    }
    None
}

/// Whether token `i` defines a `jnlp` container: a `containerTemplate` named `jnlp`, or a pod
/// YAML string with a container named `jnlp`.
fn defines_jnlp(t: &Tree, i: usize) -> bool {
    if t.ident(i) == Some("containerTemplate") && (t.is(i + 1, b'(') || t.is(i + 1, b'{')) {
        return t.name_arg(i + 1).is_some_and(|n| n.value.trim() == "jnlp");
    }
    t.lit(i).is_some_and(|l| crate::podyaml::has_jnlp(&l.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(src: &str) -> Vec<String> {
        lex(src)
            .0
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Str(l) => Some(l.value),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn strings_comments_and_escapes() {
        let src = "a 'x\\'y' // 'no'\n/* 'no' */ b \"\"\"m\n${ \"n}\" }\"\"\" '''t\\\nu'''";
        assert_eq!(values(src), ["x'y", "m\n${ \"n}\" }", "tu"]);
    }

    #[test]
    fn unterminated_strings_are_errors_not_panics() {
        let sources = [
            "'abc",
            "\"\"\"abc",
            "x('a\nb')",
            "\"${",
            "\"${'",
            "'\\",
            "'\\u12",
        ];
        for src in sources {
            let (_, errors) = lex(src);
            assert!(!errors.is_empty(), "{src:?}");
        }
    }

    #[test]
    fn first_lines() {
        assert!(groovy_start("pipeline {"));
        assert!(groovy_start("@Library('x') _"));
        assert!(!groovy_start("apiVersion: v1"));
        assert!(!groovy_start("template: |"));
        assert!(!groovy_start("# title"));
        assert_eq!(
            first_code_line("#!groovy\n/* a\n b */\n// c\nnode {"),
            Some("node {")
        );
    }

    #[test]
    fn jnlp_container_in_yaml() {
        assert!(crate::podyaml::has_jnlp(
            "containers:\n  - name: \"jnlp\"\n    image: x"
        ));
        assert!(!crate::podyaml::has_jnlp(
            "containers:\n  - name: jnlp-helper"
        ));
    }
}
