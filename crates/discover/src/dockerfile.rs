//! Dockerfiles and Containerfiles: the images a build pulls — `FROM` bases, `COPY --from` and
//! `RUN --mount=…,from=…` sources, and the BuildKit frontend named by the `# syntax=` directive.
//!
//! The file is read the way BuildKit reads it: parser directives first, then logical lines
//! (continuations joined, comment lines inside them dropped, heredoc bodies skipped), so text in
//! a `RUN` script is never mistaken for an instruction. `ARG` defaults are substituted; a
//! reference that still depends on a build argument is reported as written, as templated.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::{FileReport, Finding, Kind, OffsetMap, Options, Part, PartRole, ScanError, Source};

/// Whether a file is a Dockerfile: by name (`Dockerfile`, `Containerfile`, `x.Dockerfile`,
/// `Dockerfile.dev`), or by content when its first instruction is a well-formed `FROM` or `ARG`.
pub(crate) fn looks_like(base: &str, text: &str) -> bool {
    name_says_dockerfile(base) || content_says_dockerfile(text)
}

fn name_says_dockerfile(base: &str) -> bool {
    // `Dockerfile.dockerignore` and `Dockerfile.yaml` are named after a Dockerfile, not one.
    const OTHER: &[&str] = &[
        ".yaml",
        ".yml",
        ".json",
        ".md",
        ".txt",
        ".sh",
        ".dockerignore",
    ];
    if OTHER.iter().any(|ext| base.ends_with(ext)) {
        return false;
    }
    ["dockerfile", "containerfile"].iter().any(|n| {
        base == *n
            || base.ends_with(&format!(".{n}"))
            || base
                .strip_prefix(n)
                .is_some_and(|rest| rest.starts_with(['.', '-', '_']))
    })
}

fn content_says_dockerfile(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(first) = lines.next() else {
        return false;
    };
    let (word, rest) = split_word(first);
    if word.eq_ignore_ascii_case("from") {
        return from_shape(rest);
    }
    // A Dockerfile may start with global ARGs, but it always has a FROM somewhere.
    word.eq_ignore_ascii_case("arg")
        && arg_shape(rest)
        && lines.any(|l| {
            let (w, r) = split_word(l);
            w.eq_ignore_ascii_case("from") && from_shape(r)
        })
}

/// `FROM [--flag=…] image [AS name]`, so that prose starting with "From" is not a Dockerfile.
fn from_shape(rest: &str) -> bool {
    let words: Vec<&str> = rest
        .split_whitespace()
        .filter(|w| !w.starts_with("--") && *w != "\\")
        .collect();
    match words.as_slice() {
        [image] => !image.ends_with(':'),
        [_, as_kw, _] => as_kw.eq_ignore_ascii_case("as"),
        [] => rest.trim_end().ends_with('\\'),
        _ => false,
    }
}

/// `ARG NAME[=value]`: the first word is a variable name.
fn arg_shape(rest: &str) -> bool {
    let name = rest.split_whitespace().next().unwrap_or("");
    let name = name.split('=').next().unwrap_or("");
    is_var_name(name)
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn split_word(line: &str) -> (&str, &str) {
    match line.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, ""),
    }
}

/// Scan a Dockerfile; `map` maps offsets in `text` to the file (identity for a file of its own).
pub(crate) fn scan(text: &str, map: &OffsetMap, _opts: &Options, out: &mut FileReport) {
    let (escape, body_start) = directives(text, map, out);
    let lines = logical_lines(text, body_start, escape);
    let mut scan = Scan::new(map, out, stage_names(&lines));
    for line in &lines {
        scan.instruction(line, line.text.as_str(), 0, "");
    }
}

/// Read the parser directives at the top of the file (`# syntax=…`, `# escape=…`), reporting the
/// syntax frontend image. Returns the escape character and where the directives end.
fn directives(text: &str, map: &OffsetMap, out: &mut FileReport) -> (char, usize) {
    let mut escape = '\\';
    let mut end = 0;
    for (start, line) in physical_lines(text) {
        // BuildKit stops looking at the first line that is not a directive, blank ones included.
        let Some((key, value)) = directive(line, start) else {
            break;
        };
        end = start + line.len();
        match key.to_ascii_lowercase().as_str() {
            "syntax" => {
                let written = &text[value.clone()];
                let ctx = "# syntax= parser directive".to_string();
                let (span, exact) = (map.map_range(value), map.is_exact());
                if let Some(f) = finding(written, span, exact, Kind::Literal, ctx) {
                    out.findings.push(f);
                }
            }
            "escape" => {
                escape = if text[value].starts_with('`') {
                    '`'
                } else {
                    '\\'
                };
            }
            _ => {}
        }
    }
    (escape, end)
}

/// `#\s*key\s*=\s*value` with an alphanumeric key: the key and the byte range of the value.
fn directive(line: &str, start: usize) -> Option<(&str, Range<usize>)> {
    let after_hash = line
        .trim_start_matches('\u{feff}')
        .trim_start()
        .strip_prefix('#')?;
    let hash_end = line.len() - after_hash.len();
    let (key, value) = after_hash.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value_off = hash_end + after_hash.find('=')? + 1;
    let lead = value.len() - value.trim_start().len();
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let s = start + value_off + lead;
    Some((key, s..s + v.len()))
}

/// Physical lines with their start offsets, without the line break (`\n` or `\r\n`).
fn physical_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    text.split_inclusive('\n').map(move |raw| {
        let s = start;
        start += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        (s, line.strip_suffix('\r').unwrap_or(line))
    })
}

/// One instruction with continuations joined; `segs` maps offsets in `text` to the file text
/// (one segment per physical line that contributed).
struct Logical {
    text: String,
    segs: Vec<(usize, usize)>,
}

impl Logical {
    /// The file range of `r` and whether it is a verbatim copy (it does not straddle a line break).
    fn locate(&self, r: Range<usize>, map: &OffsetMap) -> (Range<usize>, bool) {
        let seg_of = |off: usize| {
            self.segs
                .partition_point(|&(s, _)| s <= off)
                .saturating_sub(1)
        };
        let to_text = |off: usize| {
            let (s, o) = self.segs.get(seg_of(off)).copied().unwrap_or((0, 0));
            o + off.saturating_sub(s)
        };
        let last = r.end.saturating_sub(1).max(r.start);
        let one_piece = seg_of(r.start) == seg_of(last);
        let start = to_text(r.start);
        let end = if r.is_empty() {
            start
        } else {
            to_text(last) + 1
        };
        (map.map_range(start..end), one_piece && map.is_exact())
    }
}

/// Split the text after the directives into logical lines: comments and blank lines dropped,
/// continuation lines joined, heredoc bodies (`RUN <<EOF … EOF`) skipped.
fn logical_lines(text: &str, from: usize, escape: char) -> Vec<Logical> {
    let lines: Vec<(usize, &str)> = physical_lines(text).filter(|(s, _)| *s >= from).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        i += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut logical = Logical {
            text: String::new(),
            segs: Vec::new(),
        };
        let mut piece = (start, line);
        loop {
            let body = piece.1.trim_end();
            let Some(joined) = body.strip_suffix(escape) else {
                logical.segs.push((logical.text.len(), piece.0));
                logical.text.push_str(body);
                break;
            };
            logical.segs.push((logical.text.len(), piece.0));
            logical.text.push_str(joined);
            // Comment and blank lines inside a continuation are dropped, not ends of it.
            while i < lines.len() && is_blank_or_comment(lines[i].1) {
                i += 1;
            }
            let Some(&next) = lines.get(i) else { break };
            i += 1;
            piece = next;
        }
        i = skip_heredocs(&logical.text, &lines, i);
        out.push(logical);
    }
    out
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Skip the bodies of the heredocs a `RUN`/`COPY`/`ADD` line opens; returns the next line index.
fn skip_heredocs(instruction: &str, lines: &[(usize, &str)], mut i: usize) -> usize {
    // Quote-aware words: `echo "a <<EOF"` opens no heredoc.
    let mut words = words(instruction, 0).into_iter().map(|r| &instruction[r]);
    let first = words.next().unwrap_or("");
    let first = if first.eq_ignore_ascii_case("onbuild") {
        words.next().unwrap_or("")
    } else {
        first
    };
    if !["run", "copy", "add"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
    {
        return i;
    }
    for (delim, strip_tabs) in words.filter_map(heredoc_delimiter) {
        while let Some(&(_, line)) = lines.get(i) {
            i += 1;
            let line = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line.trim_end() == delim {
                break;
            }
        }
    }
    i
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`: the delimiter and whether leading tabs are stripped.
fn heredoc_delimiter(word: &str) -> Option<(&str, bool)> {
    let rest = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")?;
    if rest.starts_with('<') {
        return None; // a shell here-string, `<<<`
    }
    let (rest, strip_tabs) = match rest.strip_prefix('-') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let rest = rest.split(['<', '>', '|', '&', ';']).next().unwrap_or("");
    let delim = ['"', '\'']
        .iter()
        .find_map(|q| rest.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
        .unwrap_or(rest);
    (!delim.is_empty()).then_some((delim, strip_tabs))
}

/// Every stage alias in the file (lower case), so `COPY --from=<stage>` is never reported.
fn stage_names(lines: &[Logical]) -> HashSet<String> {
    lines
        .iter()
        .filter_map(|l| {
            let words: Vec<&str> = l.text.split_whitespace().collect();
            let first = words.first()?;
            if !first.eq_ignore_ascii_case("from") {
                return None;
            }
            let pos = words.iter().position(|w| w.eq_ignore_ascii_case("as"))?;
            words.get(pos + 1).map(|n| n.to_ascii_lowercase())
        })
        .collect()
}

/// How deep `${A:-${B:-…}}` defaults may nest.
const MAX_NESTING: usize = 8;

/// Build arguments in scope: `Some(value)` when declared with a usable default, `None` when
/// declared without one (its value comes from `--build-arg`, unknown here).
type Args = HashMap<String, Option<String>>;

/// The file span of each ARG's literal default, and whether it spells the default exactly.
type Defaults = HashMap<String, (Range<usize>, bool)>;

struct Scan<'a> {
    map: &'a OffsetMap,
    out: &'a mut FileReport,
    /// ARGs declared before the first FROM: the only ones a FROM line can use.
    global: Args,
    /// ARGs of the current stage.
    stage: Args,
    /// Where the literal defaults of `global` and `stage` ARGs are written (file span, exact).
    global_defaults: Defaults,
    stage_defaults: Defaults,
    /// Aliases of the stages seen so far (lower case), `None` for unnamed ones.
    stages: Vec<Option<String>>,
    all_stages: HashSet<String>,
}

impl<'a> Scan<'a> {
    fn new(map: &'a OffsetMap, out: &'a mut FileReport, all_stages: HashSet<String>) -> Self {
        Scan {
            map,
            out,
            global: Args::new(),
            stage: Args::new(),
            global_defaults: Defaults::new(),
            stage_defaults: Defaults::new(),
            stages: Vec::new(),
            all_stages,
        }
    }

    /// Handle one instruction; `rest` is the part of `line.text` from `off` on (after `ONBUILD`).
    fn instruction(&mut self, line: &Logical, rest: &str, off: usize, prefix: &str) {
        let words = words(rest, off);
        let Some(first) = words.first() else { return };
        let keyword = line.text[first.clone()].to_ascii_lowercase();
        let args = &words[1..];
        match keyword.as_str() {
            "from" if prefix.is_empty() => self.from(line, args, first.start),
            "arg" => self.arg(line, args),
            "copy" => self.copy(line, args, prefix),
            "run" => self.run(line, args, prefix),
            // Docker does not allow ONBUILD ONBUILD; stopping here also bounds the recursion.
            "onbuild" if prefix.is_empty() => {
                if let Some(next) = args.first() {
                    let inner = &line.text[next.start..];
                    self.instruction(line, inner, next.start, "ONBUILD ");
                }
            }
            _ => {}
        }
    }

    fn from(&mut self, line: &Logical, args: &[Range<usize>], keyword_at: usize) {
        let mut args = args
            .iter()
            .skip_while(|w| line.text[(*w).clone()].starts_with("--"));
        let image = args.next().cloned();
        let alias = match (args.next(), args.next()) {
            (Some(a), Some(name)) if line.text[a.clone()].eq_ignore_ascii_case("as") => {
                Some(line.text[name.clone()].to_ascii_lowercase())
            }
            _ => None,
        };
        let index = self.stages.len();
        let label = alias.clone().unwrap_or_else(|| index.to_string());
        let earlier: Vec<String> = self.stages.iter().flatten().cloned().collect();
        self.stages.push(alias);
        self.stage.clear();
        self.stage_defaults.clear();
        let Some(image) = image else {
            let (span, _) = line.locate(keyword_at..keyword_at + 4, self.map);
            self.error(span.start, "FROM without an image");
            return;
        };
        let written = line.text[unquoted_range(&line.text, image.clone())].to_string();
        let (value, span, exact) = self.resolve(line, image, &self.global);
        let lower = value.to_ascii_lowercase();
        if lower == "scratch" || earlier.contains(&lower) {
            return;
        }
        let default = whole_arg(&written).and_then(|n| self.global_defaults.get(n));
        let part = default.map(|(span, exact)| Part {
            role: PartRole::Default,
            value: value.clone(),
            span: span.clone(),
            exact: *exact,
        });
        let before = self.out.findings.len();
        self.push(
            &value,
            &written,
            span,
            exact,
            format!("FROM (stage {label})"),
        );
        if let (Some(part), Some(f)) = (part, self.out.findings.get_mut(before)) {
            f.parts.push(part);
        }
    }

    fn arg(&mut self, line: &Logical, args: &[Range<usize>]) {
        let in_stage = !self.stages.is_empty();
        for w in args {
            let word = &line.text[w.clone()];
            let (name, default) = match word.split_once('=') {
                Some((n, v)) => (n, Some(unquote(v))),
                None => (word, None),
            };
            if !is_var_name(name) {
                continue;
            }
            let span = match default {
                Some(v) if !v.is_empty() && !v.contains(['$', '"', '\'', '\\']) => {
                    let r = unquoted_range(&line.text, w.start + name.len() + 1..w.end);
                    Some(line.locate(r, self.map))
                }
                Some(_) => None,
                None if in_stage => self.global_defaults.get(name).cloned(),
                None => None,
            };
            let defaults = if in_stage {
                &mut self.stage_defaults
            } else {
                &mut self.global_defaults
            };
            match span {
                Some(span) => defaults.insert(name.to_string(), span),
                None => defaults.remove(name),
            };
            let scope = if in_stage { &self.stage } else { &self.global };
            let value = match default {
                Some(v) => expand(v, scope).ok(),
                // `ARG NAME` inside a stage brings the global ARG's default into scope.
                None if in_stage => self.global.get(name).cloned().flatten(),
                None => None,
            };
            let target = if in_stage {
                &mut self.stage
            } else {
                &mut self.global
            };
            target.insert(name.to_string(), value);
        }
    }

    fn copy(&mut self, line: &Logical, args: &[Range<usize>], prefix: &str) {
        for w in flags(line, args) {
            if let Some(v) = line.text[w.clone()].strip_prefix("--from=") {
                let r = unquoted_range(&line.text, w.end - v.len()..w.end);
                let ctx = format!("{prefix}COPY --from (stage {})", self.label());
                self.report_source(line, r, ctx);
            }
        }
    }

    fn run(&mut self, line: &Logical, args: &[Range<usize>], prefix: &str) {
        for w in flags(line, args) {
            let Some(spec) = line.text[w.clone()].strip_prefix("--mount=") else {
                continue;
            };
            let mut at = w.end - spec.len();
            for field in spec.split(',') {
                let r = at..at + field.len();
                at = r.end + 1;
                if let Some(v) = field.strip_prefix("from=") {
                    let r = unquoted_range(&line.text, r.end - v.len()..r.end);
                    let ctx = format!("{prefix}RUN --mount from (stage {})", self.label());
                    self.report_source(line, r, ctx);
                }
            }
        }
    }

    /// A `--from` value: a stage name or index, or else an image.
    fn report_source(&mut self, line: &Logical, r: Range<usize>, ctx: String) {
        let written = line.text[r.clone()].to_string();
        let (value, span, exact) = self.resolve(line, r, &self.stage);
        let lower = value.to_ascii_lowercase();
        if lower.chars().all(|c| c.is_ascii_digit()) || self.all_stages.contains(&lower) {
            return;
        }
        self.push(&value, &written, span, exact, ctx);
    }

    fn label(&self) -> String {
        match self.stages.last() {
            Some(Some(name)) => name.clone(),
            Some(None) => (self.stages.len() - 1).to_string(),
            None => "none".to_string(),
        }
    }

    /// The reference written at `r` with build arguments from `scope` substituted (as written
    /// when one has no known value), its file span, and whether the span spells it exactly.
    fn resolve(
        &self,
        line: &Logical,
        r: Range<usize>,
        scope: &Args,
    ) -> (String, Range<usize>, bool) {
        let r = unquoted_range(&line.text, r);
        let written = &line.text[r.clone()];
        let (span, exact) = line.locate(r, self.map);
        // BuildKit expands a word and then removes its quotes: `debian:"${RELEASE}"-slim`.
        if written.contains(['$', '"', '\''])
            && let Ok(v) = expand(written, scope)
        {
            return (v, span, false);
        }
        (written.to_string(), span, exact)
    }

    /// Report `value` (what `written` expands to); an error quotes what the user wrote.
    fn push(&mut self, value: &str, written: &str, span: Range<usize>, exact: bool, ctx: String) {
        if value.is_empty() {
            return;
        }
        match finding(value, span.clone(), exact, Kind::Literal, ctx) {
            Some(f) => self.out.findings.push(f),
            None => self.error(span.start, &format!("not an image reference: {written}")),
        }
    }

    fn error(&mut self, offset: usize, message: &str) {
        self.out.errors.push(ScanError {
            offset,
            message: message.to_string(),
        });
    }
}

fn finding(
    value: &str,
    span: Range<usize>,
    exact: bool,
    kind: Kind,
    ctx: String,
) -> Option<Finding> {
    Finding::from_value(value, span, exact, kind, Source::Dockerfile, ctx)
}

/// The leading `--flag[=value]` words of an instruction.
fn flags<'l>(
    line: &'l Logical,
    args: &'l [Range<usize>],
) -> impl Iterator<Item = &'l Range<usize>> {
    args.iter()
        .take_while(|w| line.text[(*w).clone()].starts_with("--"))
}

/// Byte ranges of the whitespace-separated words of `s` (quotes keep spaces inside a word),
/// offset by `off`.
fn words(s: &str, off: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(s0) = start.take() {
                    out.push(off + s0..off + i);
                }
            }
            (None, _) => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s0) = start {
        out.push(off + s0..off + s.len());
    }
    out
}

fn unquote(v: &str) -> &str {
    ['"', '\'']
        .iter()
        .find_map(|q| v.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
        .unwrap_or(v)
}

/// The name of the one variable a word is, when it is exactly `$NAME` or `${NAME}`.
fn whole_arg(word: &str) -> Option<&str> {
    let name = word
        .strip_prefix("${")
        .and_then(|w| w.strip_suffix('}'))
        .or_else(|| word.strip_prefix('$'))?;
    is_var_name(name).then_some(name)
}

/// `r` without surrounding quotes, if the text there is quoted.
fn unquoted_range(text: &str, r: Range<usize>) -> Range<usize> {
    let v = &text[r.clone()];
    if v.len() >= 2 && unquote(v).len() + 2 == v.len() {
        r.start + 1..r.end - 1
    } else {
        r
    }
}

/// Substitute `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`
/// from `scope`, then remove quotes the way BuildKit's shell lexer does. `Err` when a variable
/// has no known value (it comes from `--build-arg`) or a single quote is not closed.
fn expand(s: &str, scope: &Args) -> Result<String, ()> {
    expand_nested(s, scope, 0)
}

/// [`expand`] inside `depth` levels of `${…:-…}` defaults (bounded: input is untrusted).
fn expand_nested(s: &str, scope: &Args, depth: usize) -> Result<String, ()> {
    if depth > MAX_NESTING {
        return Err(());
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(['$', '\\', '"', '\'']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(quoted) = tail.strip_prefix('\'') {
            // Single quotes keep their text literally, `$` included.
            let end = quoted.find('\'').ok_or(())?;
            out.push_str(&quoted[..end]);
            rest = &quoted[end + 1..];
        } else if let Some(after) = tail.strip_prefix('"') {
            // Double quotes only group: the text inside is still expanded.
            rest = after;
        } else if let Some(escaped) = tail.strip_prefix("\\$") {
            out.push('$');
            rest = escaped;
        } else if let Some(braced) = tail.strip_prefix("${") {
            let end = matching_brace(braced).ok_or(())?;
            out.push_str(&braced_value(&braced[..end], scope, depth)?);
            rest = &braced[end + 1..];
        } else if let Some(after) = tail.strip_prefix('$') {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            out.push_str(lookup(&after[..name_len], scope)?);
            rest = &after[name_len..];
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup<'s>(name: &str, scope: &'s Args) -> Result<&'s str, ()> {
    scope.get(name).and_then(|v| v.as_deref()).ok_or(())
}

/// The value of the inside of `${…}`.
fn braced_value(inner: &str, scope: &Args, depth: usize) -> Result<String, ()> {
    let expand = |w: &str, scope: &Args| expand_nested(w, scope, depth + 1);
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_len);
    let value = scope.get(name).and_then(|v| v.as_deref());
    let (word, use_word) = if let Some(w) = op.strip_prefix(":-") {
        (w, value.is_none_or(str::is_empty))
    } else if let Some(w) = op.strip_prefix('-') {
        (w, value.is_none())
    } else if let Some(w) = op.strip_prefix(":+") {
        return if value.is_some_and(|v| !v.is_empty()) {
            expand(w, scope)
        } else {
            Ok(String::new())
        };
    } else if let Some(w) = op.strip_prefix('+') {
        return if value.is_some() {
            expand(w, scope)
        } else {
            Ok(String::new())
        };
    } else if op.is_empty() {
        return value.map(str::to_string).ok_or(());
    } else {
        // `${VAR%…}`, `${VAR/…}` and other shell forms: not worth guessing.
        return Err(());
    };
    if use_word {
        expand(word, scope)
    } else {
        value.map(str::to_string).ok_or(())
    }
}

/// Index of the `}` closing a `${` whose content starts `s` (nested `${…}` allowed).
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, Option<&str>)]) -> Args {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn expansion_follows_shell_forms() {
        let scope = args(&[("V", Some("1.2")), ("E", Some("")), ("U", None)]);
        assert_eq!(expand("go:${V}", &scope), Ok("go:1.2".into()));
        assert_eq!(expand("go:$V-alpine", &scope), Ok("go:1.2-alpine".into()));
        assert_eq!(expand("go:${U:-1.3}", &scope), Ok("go:1.3".into()));
        assert_eq!(expand("go:${E:-1.4}", &scope), Ok("go:1.4".into()));
        assert_eq!(expand("go:${E-1.4}", &scope), Ok("go:".into()));
        assert_eq!(expand("go${V:+:x}", &scope), Ok("go:x".into()));
        assert_eq!(expand("go:${U:-${V}}", &scope), Ok("go:1.2".into()));
        assert_eq!(expand("go:${U}", &scope), Err(()));
        assert_eq!(expand("go:$ARCH", &scope), Err(()));
        assert_eq!(expand("go:${V%.*}", &scope), Err(()));
    }

    #[test]
    fn heredoc_delimiters() {
        assert_eq!(heredoc_delimiter("<<EOF"), Some(("EOF", false)));
        assert_eq!(heredoc_delimiter("<<-'END'"), Some(("END", true)));
        assert_eq!(heredoc_delimiter("<<\"X\""), Some(("X", false)));
        assert_eq!(heredoc_delimiter("<<<word"), None);
        assert_eq!(heredoc_delimiter("<<"), None);
    }

    #[test]
    fn quoted_heredoc_markers_open_nothing() {
        let text = "RUN echo \"a <<EOF\"\nFROM alpine:3\nEOF\n";
        let lines = logical_lines(text, 0, '\\');
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["RUN echo \"a <<EOF\"", "FROM alpine:3", "EOF"]);
    }

    #[test]
    fn names_and_shapes() {
        for n in [
            "dockerfile",
            "containerfile",
            "app.dockerfile",
            "dockerfile.dev",
            "dockerfile-alpine",
        ] {
            assert!(name_says_dockerfile(n), "{n}");
        }
        for n in [
            "dockerfile.yaml",
            "dockerfile.dockerignore",
            "dockerfiles",
            "values.yaml",
        ] {
            assert!(!name_says_dockerfile(n), "{n}");
        }
        assert!(content_says_dockerfile("# c\nFROM alpine:3\n"));
        assert!(content_says_dockerfile("ARG V=1\nFROM alpine:$V AS base\n"));
        assert!(!content_says_dockerfile(
            "From the top of the page, read on.\n"
        ));
        assert!(!content_says_dockerfile("ARG nothing follows\n"));
        assert!(!content_says_dockerfile("from: x\nimage: y\n"));
    }
}
