//! Executing parsed Go templates over chart values: Helm's printing rules (a missing value
//! prints as nothing), the functions image helpers use (Sprig's `default`, `ternary`, `dict`,
//! `hasKey`, …, Helm's `include`/`tpl`), bounded by [`Limits`]: include depth, output bytes and
//! steps. A function outside the subset is an error naming it, so the reference stays templated.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use discover::Definition;

use super::template::{Arg, Node, Pipeline, Step};
use crate::Limits;

/// A value: YAML/JSON data as Helm holds it. Map entries remember where a values file defines
/// them.
#[derive(Debug, Clone)]
pub enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Map(Rc<Vec<Entry>>),
    List(Rc<Vec<Val>>),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub val: Val,
    pub def: Option<Rc<Definition>>,
}

impl Val {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match self {
            Val::Map(m) => m.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Map(m) => !m.is_empty(),
            Val::List(l) => !l.is_empty(),
        }
    }

    /// How Go prints it with `{{ }}` (`%v`); Helm prints a missing value as nothing.
    pub fn print(&self) -> String {
        match self {
            Val::Nil => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => go_float(*f),
            Val::Str(s) => s.to_string(),
            Val::Map(m) => {
                let inner: Vec<String> = m
                    .iter()
                    .map(|e| format!("{}:{}", e.key, e.val.print()))
                    .collect();
                format!("map[{}]", inner.join(" "))
            }
            Val::List(l) => {
                let inner: Vec<String> = l.iter().map(Val::print).collect();
                format!("[{}]", inner.join(" "))
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Val::Nil => "invalid",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::Map(_) => "map",
            Val::List(_) => "slice",
        }
    }
}

/// `%v` of a float64 as Go prints it for the values tags hold (`1.1`, `3`, `1e+06`).
fn go_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        let i = f as i64;
        if i.unsigned_abs() < 1_000_000 {
            return i.to_string();
        }
        return format!("{f:e}").replace('e', "e+");
    }
    format!("{f}")
}

fn s(v: &str) -> Val {
    Val::Str(Rc::from(v))
}

/// The state of one evaluation: the defines it may include, the definitions it read, and its
/// budget.
pub struct Exec<'a> {
    pub defines: &'a HashMap<String, Rc<Vec<Node>>>,
    pub limits: Limits,
    pub read: Vec<Definition>,
    /// Every values path looked up, defined or not: knob candidates.
    pub looked_up: BTreeSet<String>,
    steps: usize,
    depth: usize,
}

type R<T> = Result<T, String>;

impl<'a> Exec<'a> {
    pub fn new(defines: &'a HashMap<String, Rc<Vec<Node>>>, limits: Limits) -> Self {
        Exec {
            defines,
            limits,
            read: Vec::new(),
            looked_up: BTreeSet::new(),
            steps: 0,
            depth: 0,
        }
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.reads {
            return Err(format!("needs more than {} steps", self.limits.reads));
        }
        Ok(())
    }

    /// Render `nodes` with `dot` (and `$` the root) into a string.
    pub fn render(&mut self, nodes: &[Node], dot: &Val) -> R<String> {
        let mut vars = vec![("".to_string(), dot.clone())];
        let mut out = String::new();
        self.nodes(nodes, dot, &mut vars, &mut out)?;
        Ok(out)
    }

    /// Render `nodes` where `steps` lead from the file's top (`root` as `.` and `$`): the
    /// declarations before it run, `with` moves `.`; an empty `with` means the text is never
    /// rendered, and a `range` is not followed.
    pub fn render_at(&mut self, steps: &[Step<'_>], root: &Val, nodes: &[Node]) -> R<String> {
        let mut vars = vec![("".to_string(), root.clone())];
        let mut dot = root.clone();
        for step in steps {
            match step {
                Step::Declare(p) => {
                    // A declaration that fails leaves its variable undefined, which fails the
                    // reference only if it reads it.
                    let _ = self.pipeline(p, &dot, &mut vars);
                }
                Step::With(p) => {
                    let v = self.pipeline(p, &dot, &mut vars)?;
                    if !v.truthy() {
                        return Err("inside a `with` whose value is empty: never rendered".into());
                    }
                    dot = v;
                }
                Step::Range(_) => return Err("inside a `range`: not evaluated".into()),
            }
        }
        let mut out = String::new();
        self.nodes(nodes, &dot, &mut vars, &mut out)?;
        Ok(out)
    }

    fn push(&self, out: &mut String, text: &str) -> R<()> {
        if out.len() + text.len() > self.limits.output {
            return Err(format!("output exceeds {} bytes", self.limits.output));
        }
        out.push_str(text);
        Ok(())
    }

    fn nodes(
        &mut self,
        nodes: &[Node],
        dot: &Val,
        vars: &mut Vec<(String, Val)>,
        out: &mut String,
    ) -> R<()> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.push(out, t)?,
                Node::Output(p, _) => {
                    let v = self.pipeline(p, dot, vars)?;
                    if p.vars.is_empty() {
                        self.push(out, &v.print())?;
                    }
                }
                Node::If(branches, otherwise) => {
                    let mut done = false;
                    for (cond, body) in branches {
                        if self.pipeline(cond, dot, vars)?.truthy() {
                            self.scoped(body, dot, vars, out)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.scoped(otherwise, dot, vars, out)?;
                    }
                }
                Node::With(p, body, otherwise) => {
                    let v = self.pipeline(p, dot, vars)?;
                    if v.truthy() {
                        self.scoped(body, &v, vars, out)?;
                    } else {
                        self.scoped(otherwise, dot, vars, out)?;
                    }
                }
                Node::Range(p, body, otherwise) => {
                    let v = self.pipeline(p, dot, vars)?;
                    let items: Vec<(Val, Val)> = match &v {
                        Val::List(l) => l
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Val::Int(i as i64), x.clone()))
                            .collect(),
                        Val::Map(m) => {
                            let mut e: Vec<&Entry> = m.iter().collect();
                            e.sort_by(|a, b| a.key.cmp(&b.key));
                            e.iter().map(|e| (s(&e.key), e.val.clone())).collect()
                        }
                        Val::Int(n) => (0..*n.min(&(self.limits.reads as i64)))
                            .map(|i| (Val::Int(i), Val::Int(i)))
                            .collect(),
                        Val::Nil => Vec::new(),
                        other => return Err(format!("range over {}", other.kind())),
                    };
                    if items.is_empty() {
                        self.scoped(otherwise, dot, vars, out)?;
                    }
                    for (k, x) in items {
                        let mark = vars.len();
                        match p.vars.as_slice() {
                            [v] => vars.push((v.clone(), x.clone())),
                            [a, b] => {
                                vars.push((a.clone(), k));
                                vars.push((b.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        self.nodes(body, &x, vars, out)?;
                        vars.truncate(mark);
                    }
                }
                Node::Template(name, p) => {
                    let arg = match p {
                        Some(p) => self.pipeline(p, dot, vars)?,
                        None => Val::Nil,
                    };
                    let text = self.include(name, &arg)?;
                    self.push(out, &text)?;
                }
            }
        }
        Ok(())
    }

    fn scoped(
        &mut self,
        nodes: &[Node],
        dot: &Val,
        vars: &mut Vec<(String, Val)>,
        out: &mut String,
    ) -> R<()> {
        let mark = vars.len();
        let r = self.nodes(nodes, dot, vars, out);
        // Assignments to outer variables (`$x = …`) were made in place and stay; declarations
        // end with the block.
        vars.truncate(mark);
        r
    }

    fn include(&mut self, name: &str, dot: &Val) -> R<String> {
        let Some(body) = self.defines.get(name).cloned() else {
            return Err(format!("no template named {name:?}"));
        };
        if self.depth >= self.limits.depth {
            return Err(format!(
                "includes nest more than {} deep",
                self.limits.depth
            ));
        }
        self.depth += 1;
        let r = self.render(&body, dot);
        self.depth -= 1;
        r
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Val, vars: &mut Vec<(String, Val)>) -> R<Val> {
        let mut last: Option<Val> = None;
        for cmd in &p.commands {
            self.step()?;
            last = Some(self.command(cmd, dot, vars, last)?);
        }
        let v = last.unwrap_or(Val::Nil);
        if let [name] = p.vars.as_slice() {
            if let Some(slot) = vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            } else {
                vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn fields(&mut self, mut v: Val, fields: &[String], strict: bool) -> R<Val> {
        for (i, f) in fields.iter().enumerate() {
            match &v {
                Val::Map(_) => {
                    let e = v.get(f).cloned();
                    match e {
                        Some(e) => {
                            if let Some(d) = &e.def {
                                self.looked_up.insert(d.name.clone());
                                if matches!(e.val, Val::Str(_) | Val::Int(_) | Val::Float(_))
                                    && !self.read.contains(d)
                                {
                                    self.read.push((**d).clone());
                                }
                            }
                            v = e.val;
                        }
                        None => v = Val::Nil,
                    }
                }
                Val::Nil if !strict && i == 0 => return Ok(Val::Nil),
                Val::Nil => {
                    return Err(format!(
                        "nil pointer evaluating .{}",
                        fields[..=i].join(".")
                    ));
                }
                other => return Err(format!("can't evaluate field {f} in {}", other.kind())),
            }
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Val, vars: &mut Vec<(String, Val)>) -> R<Val> {
        Ok(match a {
            Arg::Dot(f) => self.fields(dot.clone(), f, true)?,
            Arg::Var(name, f) => {
                let v = vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("undefined variable ${name}"))?;
                self.fields(v, f, true)?
            }
            Arg::Str(t) => s(t),
            Arg::Int(i) => Val::Int(*i),
            Arg::Float(f) => Val::Float(*f),
            Arg::Bool(b) => Val::Bool(*b),
            Arg::Nil => Val::Nil,
            Arg::Paren(p, f) => {
                let v = self.pipeline(p, dot, vars)?;
                self.fields(v, f, false)?
            }
            Arg::Func(name) => self.call(name, Vec::new())?,
        })
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        dot: &Val,
        vars: &mut Vec<(String, Val)>,
        piped: Option<Val>,
    ) -> R<Val> {
        let Some(Arg::Func(name)) = cmd.first() else {
            if cmd.len() > 1 || piped.is_some() {
                return Err("a value cannot take arguments".to_string());
            }
            return self.arg(&cmd[0], dot, vars);
        };
        // `and`/`or` stop at the first deciding value, as Go's do.
        if (name == "and" || name == "or") && piped.is_none() {
            let mut last = Val::Nil;
            for a in &cmd[1..] {
                last = self.arg(a, dot, vars)?;
                if last.truthy() == (name == "or") {
                    return Ok(last);
                }
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(cmd.len());
        for a in &cmd[1..] {
            args.push(self.arg(a, dot, vars)?);
        }
        args.extend(piped);
        if name == "include" || name == "tpl" {
            return self.helm_call(name, &args);
        }
        self.call(name, args)
    }

    fn helm_call(&mut self, name: &str, args: &[Val]) -> R<Val> {
        let [Val::Str(text), ctx] = args else {
            return Err(format!("{name} needs a string and a context"));
        };
        if name == "include" {
            return Ok(s(&self.include(text, ctx)?));
        }
        let parsed = super::template::parse(text).map_err(|e| format!("tpl: {e}"))?;
        if self.depth >= self.limits.depth {
            return Err(format!("tpl nests more than {} deep", self.limits.depth));
        }
        self.depth += 1;
        let r = self.render(&parsed.body, ctx);
        self.depth -= 1;
        Ok(s(&r?))
    }

    /// A function's result, refused when it is larger than any value may be (`printf` of a
    /// variable into itself in a loop doubles it each time).
    fn call(&mut self, name: &str, args: Vec<Val>) -> R<Val> {
        let v = self.call_unbounded(name, args)?;
        let len = match &v {
            Val::Str(t) => t.len(),
            _ => 0,
        };
        if len > self.limits.output {
            return Err(format!(
                "{name} makes more than {} bytes",
                self.limits.output
            ));
        }
        Ok(v)
    }

    fn call_unbounded(&mut self, name: &str, args: Vec<Val>) -> R<Val> {
        let str_arg = |i: usize| args.get(i).map(Val::print).unwrap_or_default();
        let n = args.len();
        let want = |k: usize| -> R<()> {
            if n == k {
                Ok(())
            } else {
                Err(format!("{name} takes {k} arguments, got {n}"))
            }
        };
        Ok(match name {
            "default" => {
                want(2)?;
                if args[1].truthy() {
                    args[1].clone()
                } else {
                    args[0].clone()
                }
            }
            "coalesce" => args
                .iter()
                .find(|a| a.truthy())
                .cloned()
                .unwrap_or(Val::Nil),
            "ternary" => {
                want(3)?;
                if args[2].truthy() {
                    args[0].clone()
                } else {
                    args[1].clone()
                }
            }
            "empty" => {
                want(1)?;
                Val::Bool(!args[0].truthy())
            }
            "not" => {
                want(1)?;
                Val::Bool(!args[0].truthy())
            }
            "eq" | "ne" => {
                want(2)?;
                let same = args[0].print() == args[1].print()
                    && std::mem::discriminant(&args[0]) == std::mem::discriminant(&args[1]);
                Val::Bool(same == (name == "eq"))
            }
            "print" => {
                // Go's Sprint: spaces between operands when neither is a string.
                let mut o = String::new();
                for (i, a) in args.iter().enumerate() {
                    if i > 0 && !matches!(a, Val::Str(_)) && !matches!(args[i - 1], Val::Str(_)) {
                        o.push(' ');
                    }
                    o.push_str(&a.print());
                }
                s(&o)
            }
            "printf" => {
                let Some(Val::Str(f)) = args.first() else {
                    return Err("printf needs a format string".to_string());
                };
                s(&printf(f, &args[1..])?)
            }
            "toString" => {
                want(1)?;
                s(&args[0].print())
            }
            "quote" => s(&args
                .iter()
                .filter(|a| !matches!(a, Val::Nil))
                .map(|a| format!("{:?}", a.print()))
                .collect::<Vec<_>>()
                .join(" ")),
            "squote" => s(&args
                .iter()
                .filter(|a| !matches!(a, Val::Nil))
                .map(|a| format!("'{}'", a.print()))
                .collect::<Vec<_>>()
                .join(" ")),
            "trimPrefix" => {
                want(2)?;
                let (p, t) = (str_arg(0), str_arg(1));
                s(t.strip_prefix(p.as_str()).unwrap_or(&t))
            }
            "trimSuffix" => {
                want(2)?;
                let (p, t) = (str_arg(0), str_arg(1));
                s(t.strip_suffix(p.as_str()).unwrap_or(&t))
            }
            "trim" => {
                want(1)?;
                s(str_arg(0).trim())
            }
            "lower" => {
                want(1)?;
                s(&str_arg(0).to_lowercase())
            }
            "upper" => {
                want(1)?;
                s(&str_arg(0).to_uppercase())
            }
            "replace" => {
                want(3)?;
                let (from, to, t) = (str_arg(0), str_arg(1), str_arg(2));
                // Sized before it is built: `replace "" big` multiplies.
                let hits = if from.is_empty() {
                    t.chars().count() + 1
                } else {
                    t.matches(from.as_str()).count()
                };
                if t.len() + hits.saturating_mul(to.len()) > self.limits.output {
                    return Err(format!(
                        "replace makes more than {} bytes",
                        self.limits.output
                    ));
                }
                s(&t.replace(&from, &to))
            }
            "contains" | "hasPrefix" | "hasSuffix" => {
                want(2)?;
                let (a, t) = (str_arg(0), str_arg(1));
                Val::Bool(match name {
                    "contains" => t.contains(&a),
                    "hasPrefix" => t.starts_with(&a),
                    _ => t.ends_with(&a),
                })
            }
            "dict" => {
                if !n.is_multiple_of(2) {
                    return Err("dict needs key/value pairs".to_string());
                }
                let mut entries: Vec<Entry> = Vec::new();
                for pair in args.chunks(2) {
                    let key = pair[0].print();
                    entries.retain(|e| e.key != key);
                    entries.push(Entry {
                        key,
                        val: pair[1].clone(),
                        def: None,
                    });
                }
                Val::Map(Rc::new(entries))
            }
            "list" => Val::List(Rc::new(args)),
            "hasKey" => {
                want(2)?;
                Val::Bool(args[0].get(&str_arg(1)).is_some())
            }
            "get" => {
                want(2)?;
                args[0]
                    .get(&str_arg(1))
                    .map(|e| e.val.clone())
                    .unwrap_or_else(|| s(""))
            }
            "index" => {
                let mut v = args.first().cloned().unwrap_or(Val::Nil);
                for k in args.iter().skip(1) {
                    v = match (&v, k) {
                        (Val::List(l), Val::Int(i)) => usize::try_from(*i)
                            .ok()
                            .and_then(|i| l.get(i).cloned())
                            .ok_or_else(|| format!("index {i} out of range"))?,
                        (Val::Map(_), k) => {
                            let f = [k.print()];
                            self.fields(v.clone(), &f, false)?
                        }
                        (Val::Nil, _) => Val::Nil,
                        _ => return Err("index of a value that is not a map or list".into()),
                    };
                }
                v
            }
            "len" => {
                want(1)?;
                Val::Int(match &args[0] {
                    Val::Str(t) => t.len(),
                    Val::Map(m) => m.len(),
                    Val::List(l) => l.len(),
                    _ => 0,
                } as i64)
            }
            "kindIs" => {
                want(2)?;
                Val::Bool(str_arg(0) == args[1].kind())
            }
            "required" => {
                want(2)?;
                if matches!(args[1], Val::Nil) {
                    return Err(format!("required: {}", str_arg(0)));
                }
                args[1].clone()
            }
            "nindent" | "indent" => {
                want(2)?;
                let Val::Int(k) = args[0] else {
                    return Err(format!("{name} needs a number"));
                };
                let pad = " ".repeat(usize::try_from(k).unwrap_or(0).min(256));
                let text = str_arg(1);
                if text
                    .len()
                    .saturating_add(pad.len().saturating_mul(text.lines().count() + 1))
                    > self.limits.output
                {
                    return Err(format!(
                        "{name} makes more than {} bytes",
                        self.limits.output
                    ));
                }
                let body = text
                    .lines()
                    .map(|l| format!("{pad}{l}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                s(&if name == "nindent" {
                    format!("\n{body}")
                } else {
                    body
                })
            }
            "trunc" => {
                want(2)?;
                let Val::Int(k) = args[0] else {
                    return Err("trunc needs a number".into());
                };
                let t = str_arg(1);
                let k = usize::try_from(k).unwrap_or(0);
                s(&t.chars().take(k).collect::<String>())
            }
            other => return Err(format!("function {other} is not evaluated")),
        })
    }
}

/// Go's `fmt.Sprintf` for the verbs image helpers use: `%s`, `%v`, `%d`, `%q`, `%%`.
fn printf(f: &str, args: &[Val]) -> R<String> {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("printf format ends in %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = it.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        match (verb, a) {
            (_, Val::Nil) => out.push_str(&format!("%!{verb}(<nil>)")),
            ('s' | 'v', a) => out.push_str(&a.print()),
            ('d', Val::Int(i)) => out.push_str(&i.to_string()),
            ('q', a) => out.push_str(&format!("{:?}", a.print())),
            (v, _) => return Err(format!("printf verb %{v} is not evaluated")),
        }
    }
    if it.next().is_some() {
        out.push_str("%!(EXTRA)");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::template::parse;

    fn run(src: &str, dot: &Val) -> R<String> {
        let parsed = parse(src).map_err(|e| e.to_string())?;
        let defines = parsed
            .defines
            .into_iter()
            .map(|(k, v)| (k, Rc::new(v)))
            .collect();
        let mut exec = Exec::new(&defines, Limits::default());
        exec.render(&parsed.body, dot)
    }

    #[test]
    fn a_define_that_includes_itself_ends_at_the_depth_limit() {
        let e = run(
            r#"{{ define "a" }}x{{ include "a" . }}{{ end }}{{ include "a" . }}"#,
            &Val::Nil,
        )
        .unwrap_err();
        assert!(e.contains("nest more than"), "{e}");
        let e = run(
            r#"{{ define "a" }}{{ include "a" . }}{{ include "a" . }}{{ end }}{{ include "a" . }}"#,
            &Val::Nil,
        )
        .unwrap_err();
        assert!(e.contains("steps") || e.contains("nest"), "{e}");
    }

    #[test]
    fn a_value_doubled_in_a_loop_stops_at_the_output_cap() {
        let e = run(
            r#"{{ $x := "ab" }}{{ range 10000 }}{{ $x = printf "%s%s" $x $x }}{{ end }}{{ $x }}"#,
            &Val::Nil,
        )
        .unwrap_err();
        assert!(e.contains("more than"), "{e}");
        let e = run(
            r#"{{ replace "" "0123456789" (printf "%0s" "x") }}"#,
            &Val::Nil,
        );
        assert!(e.is_err() || e.unwrap().len() <= Limits::default().output);
    }

    #[test]
    fn sprig_functions_print_as_helm_prints_them() {
        let dot = Val::Map(Rc::new(vec![Entry {
            key: "tag".into(),
            val: Val::Float(1.1),
            def: None,
        }]));
        for (src, want) in [
            (r#"{{ .tag | toString }}"#, "1.1"),
            (r#"{{ .missing | default "x" }}"#, "x"),
            (r#"{{ "v1" | trimPrefix "v" | quote }}"#, "\"1\""),
            (r#"{{ ternary "a" "b" (hasKey . "tag") }}"#, "a"),
            (
                r#"{{ $d := dict "k" "v" }}{{ $d.k }}{{ (.nothing).deeper }}"#,
                "v",
            ),
            (r#"{{ with .tag }}{{ . }}{{ else }}none{{ end }}"#, "1.1"),
            (
                r#"{{ if .missing }}a{{ else if .tag }}b{{ else }}c{{ end }}"#,
                "b",
            ),
            (r#"{{ print "a" 1 2 "b" }}"#, "a1 2b"),
        ] {
            assert_eq!(run(src, &dot).unwrap(), want, "{src}");
        }
        assert!(
            run("{{ .missing.deeper }}", &dot)
                .unwrap_err()
                .contains("nil pointer")
        );
        assert!(
            run("{{ semver .tag }}", &dot)
                .unwrap_err()
                .contains("not evaluated")
        );
    }
}
