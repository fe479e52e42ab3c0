//! Go `text/template` syntax, the subset Helm charts write around image fields: text and
//! actions (`{{- … -}}` trims), comments, pipelines of commands over fields, variables,
//! literals and parenthesised pipelines, `if`/`else if`/`else`, `with`, `range`, `define`,
//! `template`/`block`, `$x :=`/`$x =`. Parsing never panics: anything outside the subset is a
//! [`SyntaxError`] with its byte offset.

use std::fmt;

/// A parse failure at a byte offset of the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (byte {})", self.message, self.offset)
    }
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        offset,
        message: message.into(),
    })
}

/// An operand of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.` followed by fields (`.Values.image`; empty: `.` itself).
    Dot(Vec<String>),
    /// `$name` followed by fields (`$` is the root).
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// A function name.
    Func(String),
    /// `( pipeline )` followed by fields.
    Paren(Box<Pipeline>, Vec<String>),
}

/// `$a, $b := cmd | cmd`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub vars: Vec<String>,
    /// `:=` declares, `=` assigns; both bind here since scopes are not tracked finer than a
    /// template body.
    pub commands: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    /// A pipeline and the byte offset of its action in the template text.
    Output(Pipeline, usize),
    If(Vec<(Pipeline, Vec<Node>)>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipeline>),
}

/// A parsed template file: its body and the `define`d templates in it.
#[derive(Debug, Default)]
pub struct Parsed {
    pub body: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
}

/// One action's tokens.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Str(String),
    Num(String),
    Ident(String),
    Dot(Vec<String>),
    Var(String, Vec<String>),
    /// `.field` directly after `)`.
    Fields(Vec<String>),
}

enum Piece {
    Text(String),
    Action(usize, String),
}

/// Split text into text and actions, applying `{{-`/`-}}` trims and dropping comments.
fn split(src: &str) -> Result<Vec<Piece>, SyntaxError> {
    let mut out = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(open) = src[rest..].find("{{").map(|i| i + rest) {
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut start = open + 2;
        let trim_left = src[start..].starts_with("- ")
            || src[start..].starts_with("-\n")
            || src[start..].starts_with("-\t")
            || src[start..].starts_with("-\r");
        if trim_left {
            text = text.trim_end();
            start += 1;
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_string()));
        }
        let inner = src[start..].trim_start();
        let inner_start = src.len() - src[start..].len() + (src[start..].len() - inner.len());
        if inner.starts_with("/*") {
            let Some(end) = inner.find("*/") else {
                return err(open, "unclosed comment");
            };
            let after = inner_start + end + 2;
            let tail = src[after..].trim_start();
            let close_at = src.len() - tail.len();
            let (trim, len) = if tail.starts_with("-}}") {
                (true, 3)
            } else if tail.starts_with("}}") {
                (false, 2)
            } else {
                return err(open, "comment not closed by }}");
            };
            trim_next = trim;
            rest = close_at + len;
            continue;
        }
        let Some(close) = find_close(src, start) else {
            return err(open, "unclosed action");
        };
        let mut body_end = close;
        trim_next = false;
        if close > start && (src[..close].ends_with(" -") || src[..close].ends_with("\n-")) {
            body_end = close - 1;
            trim_next = true;
        }
        out.push(Piece::Action(start, src[start..body_end].to_string()));
        rest = close + 2;
    }
    let mut text = &src[rest..];
    if trim_next {
        text = text.trim_start();
    }
    if !text.is_empty() {
        out.push(Piece::Text(text.to_string()));
    }
    Ok(out)
}

/// The `}}` closing an action opened before `from`, skipping strings.
fn find_close(src: &str, from: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Read `.a.b.c` starting at a `.` (returns the fields and the end).
fn fields(s: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    while i < s.len() && s[i] == '.' {
        let start = i + 1;
        let mut j = start;
        while j < s.len() && is_ident(s[j]) {
            j += 1;
        }
        if j == start {
            break;
        }
        out.push(s[start..j].iter().collect());
        i = j;
    }
    (out, i)
}

fn lex(action: &str, at: usize) -> Result<Vec<Tok>, SyntaxError> {
    let s: Vec<char> = action.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
                if s.get(i) == Some(&'.') {
                    let (f, j) = fields(&s, i);
                    if !f.is_empty() {
                        out.push(Tok::Fields(f));
                        i = j;
                    }
                }
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if s.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match s.get(i) {
                        None => return err(at, "unterminated string"),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match s.get(i) {
                                Some('n') => v.push('\n'),
                                Some('t') => v.push('\t'),
                                Some(&c) => v.push(c),
                                None => return err(at, "unterminated string"),
                            }
                        }
                        Some(&c) => v.push(c),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '`' => {
                let start = i + 1;
                let Some(len) = s[start..].iter().position(|&c| c == '`') else {
                    return err(at, "unterminated raw string");
                };
                out.push(Tok::Str(s[start..start + len].iter().collect()));
                i = start + len + 1;
            }
            '.' => {
                let (f, j) = fields(&s, i);
                out.push(Tok::Dot(f));
                i = if j == i { i + 1 } else { j };
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                while j < s.len() && is_ident(s[j]) {
                    j += 1;
                }
                let name: String = s[start..j].iter().collect();
                let (f, k) = fields(&s, j);
                out.push(Tok::Var(name, f));
                i = k;
            }
            c if c.is_ascii_digit()
                || (c == '-' && s.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Num(s[start..i].iter().collect()));
            }
            c if is_ident(c) => {
                let start = i;
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(s[start..i].iter().collect()));
            }
            other => return err(at, format!("unexpected {other:?} in action")),
        }
    }
    Ok(out)
}

struct Toks {
    toks: Vec<Tok>,
    i: usize,
    at: usize,
}

impl Toks {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    fn pipeline(&mut self, depth: usize) -> Result<Pipeline, SyntaxError> {
        if depth > 64 {
            return err(self.at, "parentheses nest too deep");
        }
        let mut p = Pipeline::default();
        // `$a := …` / `$a, $b := …` / `$a = …`
        let mut j = self.i;
        let mut vars = Vec::new();
        while let Some(Tok::Var(name, f)) = self.toks.get(j) {
            if !f.is_empty() {
                break;
            }
            vars.push(name.clone());
            j += 1;
            if self.toks.get(j) == Some(&Tok::Comma) {
                j += 1;
            } else {
                break;
            }
        }
        if !vars.is_empty() && matches!(self.toks.get(j), Some(Tok::Declare | Tok::Assign)) {
            p.vars = vars;
            self.i = j + 1;
        }
        let mut cmd = Vec::new();
        while let Some(t) = self.peek().cloned() {
            self.i += 1;
            match t {
                Tok::RParen => {
                    self.i -= 1;
                    break;
                }
                Tok::Pipe => {
                    if cmd.is_empty() {
                        return err(self.at, "empty command in pipeline");
                    }
                    p.commands.push(std::mem::take(&mut cmd));
                }
                Tok::LParen => {
                    let inner = self.pipeline(depth + 1)?;
                    if self.peek() != Some(&Tok::RParen) {
                        return err(self.at, "unclosed (");
                    }
                    self.i += 1;
                    let f = match self.peek() {
                        Some(Tok::Fields(f)) => {
                            let f = f.clone();
                            self.i += 1;
                            f
                        }
                        _ => Vec::new(),
                    };
                    cmd.push(Arg::Paren(Box::new(inner), f));
                }
                Tok::Str(s) => cmd.push(Arg::Str(s)),
                Tok::Num(n) => cmd.push(if let Ok(i) = n.parse() {
                    Arg::Int(i)
                } else if let Ok(f) = n.parse() {
                    Arg::Float(f)
                } else {
                    return err(self.at, format!("bad number {n}"));
                }),
                Tok::Ident(name) => cmd.push(match name.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    "nil" => Arg::Nil,
                    _ => Arg::Func(name),
                }),
                Tok::Dot(f) => cmd.push(Arg::Dot(f)),
                Tok::Var(n, f) => cmd.push(Arg::Var(n, f)),
                Tok::Comma | Tok::Declare | Tok::Assign | Tok::Fields(_) => {
                    return err(self.at, "unexpected token in pipeline");
                }
            }
        }
        if cmd.is_empty() {
            return err(self.at, "missing value in pipeline");
        }
        p.commands.push(cmd);
        Ok(p)
    }
}

fn pipeline_of(toks: Vec<Tok>, at: usize) -> Result<Pipeline, SyntaxError> {
    let mut t = Toks { toks, i: 0, at };
    let p = t.pipeline(0)?;
    if t.i != t.toks.len() {
        return err(at, "unexpected ) in action");
    }
    Ok(p)
}

/// What closes a block being parsed.
enum Close {
    End,
    Else(Option<(String, Pipeline)>),
}

struct Parser {
    pieces: Vec<Piece>,
    i: usize,
    defines: Vec<(String, Vec<Node>)>,
}

impl Parser {
    /// Nodes until `{{ end }}`/`{{ else }}` (returned) or the end of input (`None`).
    fn list(&mut self, depth: usize) -> Result<(Vec<Node>, Option<Close>), SyntaxError> {
        if depth > 64 {
            return err(0, "blocks nest too deep");
        }
        let mut nodes = Vec::new();
        while self.i < self.pieces.len() {
            let i = self.i;
            self.i += 1;
            let (at, action) = match &self.pieces[i] {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Piece::Action(at, a) => (*at, a.clone()),
            };
            let mut toks = lex(&action, at)?;
            let keyword = match toks.first() {
                Some(Tok::Ident(k)) => k.clone(),
                _ => String::new(),
            };
            match keyword.as_str() {
                "end" => return Ok((nodes, Some(Close::End))),
                "else" => {
                    toks.remove(0);
                    let chained = match toks.first() {
                        Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                            let k = k.clone();
                            toks.remove(0);
                            Some((k, pipeline_of(toks, at)?))
                        }
                        _ => None,
                    };
                    return Ok((nodes, Some(Close::Else(chained))));
                }
                "if" | "with" | "range" => {
                    toks.remove(0);
                    let p = pipeline_of(toks, at)?;
                    nodes.push(self.block(&keyword, p, at, depth)?);
                }
                "define" | "block" => {
                    let Some(Tok::Str(name)) = toks.get(1).cloned() else {
                        return err(at, format!("{keyword} needs a quoted name"));
                    };
                    let (body, close) = self.list(depth + 1)?;
                    if !matches!(close, Some(Close::End)) {
                        return err(at, format!("{keyword} {name:?} is not closed by end"));
                    }
                    if keyword == "block" {
                        let p = if toks.len() > 2 {
                            Some(pipeline_of(toks[2..].to_vec(), at)?)
                        } else {
                            None
                        };
                        nodes.push(Node::Template(name.clone(), p));
                    }
                    self.defines.push((name, body));
                }
                "template" => {
                    let Some(Tok::Str(name)) = toks.get(1).cloned() else {
                        return err(at, "template needs a quoted name");
                    };
                    let p = if toks.len() > 2 {
                        Some(pipeline_of(toks[2..].to_vec(), at)?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template(name, p));
                }
                "break" | "continue" => return err(at, format!("{keyword} is not evaluated")),
                _ => nodes.push(Node::Output(pipeline_of(toks, at)?, at)),
            }
        }
        Ok((nodes, None))
    }

    fn block(
        &mut self,
        keyword: &str,
        p: Pipeline,
        at: usize,
        depth: usize,
    ) -> Result<Node, SyntaxError> {
        let (body, close) = self.list(depth + 1)?;
        let otherwise = match close {
            None => return err(at, format!("{keyword} is not closed by end")),
            Some(Close::End) => Vec::new(),
            Some(Close::Else(None)) => {
                let (e, close) = self.list(depth + 1)?;
                if !matches!(close, Some(Close::End)) {
                    return err(at, format!("else of {keyword} is not closed by end"));
                }
                e
            }
            Some(Close::Else(Some((k, p2)))) => {
                // `else if x` is `else` holding an `if x` that shares this block's `end`.
                let inner = self.block(&k, p2, at, depth + 1)?;
                vec![inner]
            }
        };
        Ok(match keyword {
            "if" => Node::If(vec![(p, body)], otherwise),
            "with" => Node::With(p, body, otherwise),
            _ => Node::Range(p, body, otherwise),
        })
    }
}

/// What leads to an action of a template: the declarations run before it and the blocks that
/// change `.` around it.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Declare(&'a Pipeline),
    With(&'a Pipeline),
    Range(&'a Pipeline),
}

/// The steps to the first action inside `target` (byte offsets of the text), or `None` when no
/// action is there. `if` conditions are not steps: every branch's images are listed, as a
/// chart's published image list lists them.
pub fn path_to<'a>(nodes: &'a [Node], target: &std::ops::Range<usize>) -> Option<Vec<Step<'a>>> {
    let mut out = Vec::new();
    walk(nodes, target, &mut out).then_some(out)
}

fn walk<'a>(nodes: &'a [Node], target: &std::ops::Range<usize>, out: &mut Vec<Step<'a>>) -> bool {
    for n in nodes {
        let mark = out.len();
        let found = match n {
            Node::Output(p, at) => {
                if target.contains(at) {
                    return true;
                }
                if !p.vars.is_empty() {
                    out.push(Step::Declare(p));
                }
                continue;
            }
            Node::If(branches, otherwise) => {
                branches.iter().any(|(_, body)| {
                    out.truncate(mark);
                    walk(body, target, out)
                }) || {
                    out.truncate(mark);
                    walk(otherwise, target, out)
                }
            }
            Node::With(p, body, otherwise) | Node::Range(p, body, otherwise) => {
                out.push(match n {
                    Node::With(..) => Step::With(p),
                    _ => Step::Range(p),
                });
                walk(body, target, out) || {
                    out.truncate(mark);
                    walk(otherwise, target, out)
                }
            }
            Node::Text(_) | Node::Template(..) => false,
        };
        if found {
            return true;
        }
        // Declarations inside a block end with it.
        out.truncate(mark);
    }
    false
}

/// Parse a template file.
pub fn parse(src: &str) -> Result<Parsed, SyntaxError> {
    let mut p = Parser {
        pieces: split(src)?,
        i: 0,
        defines: Vec::new(),
    };
    let (body, close) = p.list(0)?;
    if close.is_some() {
        return err(0, "end or else without a block");
    }
    Ok(Parsed {
        body,
        defines: p.defines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_comments_are_applied_when_splitting() {
        let p = parse("a  {{- /* c */ -}}  b {{ .X -}}\n c").unwrap();
        assert_eq!(
            p.body,
            vec![
                Node::Text("a".into()),
                Node::Text("b ".into()),
                Node::Output(
                    Pipeline {
                        vars: vec![],
                        commands: vec![vec![Arg::Dot(vec!["X".into()])]]
                    },
                    24
                ),
                Node::Text("c".into()),
            ]
        );
    }

    #[test]
    fn unclosed_blocks_and_actions_are_errors_not_panics() {
        for bad in [
            "{{ if .a }}",
            "{{ .a",
            "{{ end }}",
            "{{ (.a }}",
            "{{ \"x }}",
            "{{ define }}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
