//! Helm charts: a chart directory (Chart.yaml, values.yaml, templates/, charts/ with the
//! subcharts' own values, the parent's overrides under each subchart's name, and `global` passed
//! down), and the templated image references of its templates evaluated the way `helm template`
//! would print them — `.Values`/`.Chart`/`.Release`, pipelines, `include` of the chart's
//! `define`s (Bitnami's `common.images.image` among them) — with `--values FILE` and
//! `--set a.b=c` layered as Helm layers them. What cannot be evaluated stays templated, with why.

mod eval;
pub mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use discover::{Definition, Finding, Kind, LineIndex, Resolution, YamlNode, is_templated};

use crate::ansible::FileRef;
use crate::{EvalError, Limits, Resolved};
use eval::{Entry, Exec, Val};
use template::Node;

pub use eval::Val as Value;

/// The registry stand-in a knob candidate is set to when testing whether it moves every image.
const PROBE: &str = "airlock-knob.invalid";

/// Values keys tried as the chart-wide registry knob before any other registry key the
/// templates read.
const KNOBS: &[&str] = &[
    "global.imageRegistry",
    "global.image.registry",
    "global.registry",
];

/// What `apply` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub charts: usize,
    pub resolved: usize,
    /// Templated image references of chart templates that stay templated, with why.
    pub unresolved: Vec<(String, EvalError)>,
    /// The values key that prefixes every resolved image of each top-level chart, by chart dir.
    pub knobs: BTreeMap<String, String>,
}

struct Chart {
    dir: String,
    name: String,
    meta: Val,
    values: Val,
    parent: Option<usize>,
    /// Not a chart directory: Go templates outside any chart, read with `--values` alone.
    loose: bool,
}

fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// A YAML node as a Helm value (YAML 1.2 as Helm's `sigs.k8s.io/yaml` reads it); every map key
/// remembers its `file:line:column` under its dotted values path.
fn to_val(node: &YamlNode, path: &str, file: &str, index: &LineIndex) -> Val {
    match node {
        YamlNode::Scalar(sc) if sc.is_plain() => match &*sc.value {
            "" | "~" | "null" | "Null" | "NULL" => Val::Nil,
            "true" | "True" | "TRUE" => Val::Bool(true),
            "false" | "False" | "FALSE" => Val::Bool(false),
            t => {
                if let Ok(i) = t.parse::<i64>() {
                    Val::Int(i)
                } else if t.bytes().any(|b| b.is_ascii_digit())
                    && t.bytes()
                        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
                    && let Ok(f) = t.parse::<f64>()
                {
                    Val::Float(f)
                } else {
                    Val::Str(Rc::from(t))
                }
            }
        },
        YamlNode::Scalar(sc) => Val::Str(Rc::from(&*sc.value)),
        YamlNode::Seq(items) => Val::List(Rc::new(
            items.iter().map(|i| to_val(i, path, file, index)).collect(),
        )),
        YamlNode::Map(_) => {
            let mut entries = Vec::new();
            for (k, v) in node.as_map().unwrap_or(&[]) {
                let (Some(key), Some(sc)) = (k.as_str(), k.as_scalar()) else {
                    continue;
                };
                let name = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                let (line, column) = index.position(sc.span.start);
                entries.push(Entry {
                    key: key.to_string(),
                    val: to_val(v, &name, file, index),
                    def: Some(Rc::new(Definition {
                        name: name.clone(),
                        file: file.to_string(),
                        line,
                        column,
                    })),
                });
            }
            Val::Map(Rc::new(entries))
        }
    }
}

/// The first document of a YAML text as a value (`Nil` when it is not one).
pub fn read_values(text: &str, file: &str) -> Val {
    let (docs, _) = discover::yaml_documents(text);
    let index = LineIndex::new(text);
    docs.first()
        .map(|d| to_val(d, "", file, &index))
        .unwrap_or(Val::Nil)
}

/// `over` merged into `base` as Helm coalesces values: maps merge key by key, anything else in
/// `over` replaces, `null` in `over` deletes the key.
fn merge(base: &Val, over: &Val) -> Val {
    let (Val::Map(b), Val::Map(o)) = (base, over) else {
        return if matches!(over, Val::Nil) {
            base.clone()
        } else {
            over.clone()
        };
    };
    let mut out: Vec<Entry> = b.as_ref().clone();
    for e in o.iter() {
        match out.iter().position(|x| x.key == e.key) {
            Some(i) if matches!(e.val, Val::Nil) => {
                out.remove(i);
            }
            Some(i) => {
                let merged = merge(&out[i].val, &e.val);
                let def = if matches!(e.val, Val::Map(_)) {
                    out[i].def.clone()
                } else {
                    e.def.clone()
                };
                out[i] = Entry {
                    key: e.key.clone(),
                    val: merged,
                    def,
                };
            }
            None => out.push(e.clone()),
        }
    }
    Val::Map(Rc::new(out))
}

/// `--set a.b.c=value` as a values tree, the value typed as Helm types it.
fn set_tree(name: &str, value: &str) -> Val {
    let leaf = match value {
        "true" => Val::Bool(true),
        "false" => Val::Bool(false),
        "null" => Val::Nil,
        v => v
            .parse::<i64>()
            .map(Val::Int)
            .unwrap_or_else(|_| Val::Str(Rc::from(v))),
    };
    let def = Rc::new(Definition {
        name: name.to_string(),
        file: "--set".to_string(),
        line: 0,
        column: 0,
    });
    name.rsplit('.').fold(leaf, |val, key| {
        Val::Map(Rc::new(vec![Entry {
            key: key.to_string(),
            val,
            def: Some(def.clone()),
        }]))
    })
}

fn map(entries: Vec<(&str, Val)>) -> Val {
    Val::Map(Rc::new(
        entries
            .into_iter()
            .map(|(k, v)| Entry {
                key: k.to_string(),
                val: v,
                def: None,
            })
            .collect(),
    ))
}

fn text(t: &str) -> Val {
    Val::Str(Rc::from(t))
}

/// Chart.yaml as `.Chart`: its keys with the first letter upper-cased (`appVersion` is
/// `.Chart.AppVersion`), keeping where each is written.
fn chart_object(meta: &Val) -> Val {
    let Val::Map(m) = meta else {
        return Val::Nil;
    };
    Val::Map(Rc::new(
        m.iter()
            .map(|e| {
                let mut c = e.key.chars();
                let key = c
                    .next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default();
                Entry {
                    key,
                    val: e.val.clone(),
                    def: e.def.clone(),
                }
            })
            .collect(),
    ))
}

/// The charts among `files` (every directory with a Chart.yaml), parents before children.
fn charts(files: &[FileRef<'_>]) -> Vec<Chart> {
    let mut out: Vec<Chart> = Vec::new();
    let mut dirs: Vec<(&str, usize)> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.name.ends_with("Chart.yaml") && {
                let base = f.name.rsplit('/').next().unwrap_or(f.name);
                base == "Chart.yaml"
            }
        })
        .map(|(i, f)| (parent_dir(f.name), i))
        .collect();
    dirs.sort_by_key(|(d, _)| (d.matches('/').count(), *d));
    for (dir, i) in dirs {
        let meta = read_values(files[i].text, files[i].name);
        let values = files
            .iter()
            .find(|f| {
                f.name == format!("{dir}/values.yaml")
                    || (dir.is_empty() && f.name == "values.yaml")
            })
            .map(|f| read_values(f.text, f.name))
            .unwrap_or(Val::Nil);
        let name = match meta.get("name").map(|e| &e.val) {
            Some(Val::Str(n)) => n.to_string(),
            _ => dir.rsplit('/').next().unwrap_or(dir).to_string(),
        };
        // A subchart sits at `<parent>/charts/<name>/`.
        let parent = out
            .iter()
            .position(|c| parent_dir(dir) == format!("{}/charts", c.dir));
        out.push(Chart {
            dir: dir.to_string(),
            name,
            meta: chart_object(&meta),
            values,
            parent,
            loose: false,
        });
    }
    out
}

/// The values each chart's templates see: a top-level chart's own values with `--values` files
/// and `--set` above them; a subchart's own values under its parent's `<name>:` section, with
/// the parent's `global` above its own.
fn effective_values(charts: &[Chart], extra: &Val) -> Vec<Val> {
    let mut out: Vec<Val> = Vec::with_capacity(charts.len());
    for c in charts {
        let v = match c.parent {
            None => merge(&c.values, extra),
            Some(p) => {
                let parent = &out[p];
                let mut v = merge(
                    &c.values,
                    &parent
                        .get(&c.name)
                        .map(|e| e.val.clone())
                        .unwrap_or(Val::Nil),
                );
                if let Some(g) = parent.get("global") {
                    v = merge(&v, &map(vec![("global", g.val.clone())]));
                }
                v
            }
        };
        out.push(v);
    }
    out
}

fn root_of(charts: &[Chart], mut i: usize) -> usize {
    while let Some(p) = charts[i].parent {
        i = p;
    }
    i
}

/// One template finding to evaluate: its file, its index in the report, its chart.
struct Site {
    file: usize,
    span: std::ops::Range<usize>,
    finding: usize,
    chart: usize,
    at: String,
}

/// Resolve the templated image references of every chart template among `files` and add the
/// results as [`Kind::Resolved`] findings; a reference that cannot be evaluated keeps its
/// templated finding, with why in its context. `values` are `--values` files (name, text) in
/// order, `sets` `--set` answers, both applied to every top-level chart.
pub fn apply(
    files: &mut [FileRef<'_>],
    values: &[(String, String)],
    sets: &[(String, String)],
    limits: Limits,
) -> Summary {
    let mut charts = charts(files);
    let mut summary = Summary {
        charts: charts.len(),
        ..Summary::default()
    };
    // With `--values`, Helm templates kept outside a chart directory (a chart's template copied
    // into a repository) are evaluated against those values, as `helm template` would with them.
    let loose = (!values.is_empty()).then(|| {
        charts.push(Chart {
            dir: String::new(),
            name: String::new(),
            meta: map(Vec::new()),
            values: Val::Nil,
            parent: None,
            loose: true,
        });
        charts.len() - 1
    });
    if charts.is_empty() {
        return summary;
    }
    let mut extra = Val::Nil;
    for (name, t) in values {
        extra = merge(&extra, &read_values(t, name));
    }
    for (k, v) in sets {
        extra = merge(&extra, &set_tree(k, v));
    }
    // Every template file, parsed once; the defines of a chart tree are shared by all of it.
    let chart_of = |name: &str| {
        charts.iter().rposition(|c| {
            !c.loose && name.starts_with(&format!("{}/templates/", c.dir))
                || (!c.loose && c.dir.is_empty() && name.starts_with("templates/"))
        })
    };
    let reads_values = |f: &FileRef<'_>| {
        f.report.findings.iter().any(|f| {
            f.kind == Kind::Templated
                && [".Values.", ".Chart.", ".Release."]
                    .iter()
                    .any(|k| f.image.contains(k))
        })
    };
    let mut defines: HashMap<usize, HashMap<String, Rc<Vec<Node>>>> = HashMap::new();
    let mut parse_errors: HashMap<usize, String> = HashMap::new();
    let mut parsed_files: HashMap<usize, template::Parsed> = HashMap::new();
    let mut sites = Vec::new();
    // Deepest charts first, so a parent's define of the same name wins, as Helm's does.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].name.matches('/').count()));
    for i in order {
        let Some(c) = chart_of(files[i].name).or(loose.filter(|_| reads_values(&files[i]))) else {
            continue;
        };
        let root = root_of(&charts, c);
        match template::parse(files[i].text) {
            Ok(mut p) => {
                let d = defines.entry(root).or_default();
                for (name, body) in std::mem::take(&mut p.defines) {
                    d.insert(name, Rc::new(body));
                }
                parsed_files.insert(i, p);
            }
            Err(e) => {
                let (line, column) = LineIndex::new(files[i].text).position(e.offset);
                parse_errors.insert(i, format!("{line}:{column}: {}", e.message));
            }
        }
        let index = LineIndex::new(files[i].text);
        for (j, f) in files[i].report.findings.iter().enumerate() {
            if f.kind == Kind::Templated && f.image.contains("{{") {
                let (line, column) = index.position(f.span.start);
                sites.push(Site {
                    file: i,
                    finding: j,
                    span: f.span.clone(),
                    chart: c,
                    at: format!("{}:{line}:{column}", files[i].name),
                });
            }
        }
    }
    let empty = HashMap::new();
    let names: Vec<String> = files.iter().map(|f| f.name.to_string()).collect();
    let eval = |extra: &Val, site: &Site, template: &str| -> Result<Resolved, EvalError> {
        let values = effective_values(&charts, extra);
        let c = &charts[site.chart];
        let dot = map(vec![
            ("Values", values[site.chart].clone()),
            ("Chart", c.meta.clone()),
            (
                "Release",
                map(vec![
                    ("Name", text("release-name")),
                    ("Namespace", text("default")),
                    ("Service", text("Helm")),
                    ("IsInstall", Val::Bool(true)),
                    ("IsUpgrade", Val::Bool(false)),
                ]),
            ),
            (
                "Template",
                map(vec![
                    ("Name", text(&names[site.file])),
                    ("BasePath", text(&format!("{}/templates", c.dir))),
                ]),
            ),
        ]);
        let defs = defines.get(&root_of(&charts, site.chart)).unwrap_or(&empty);
        let fail = |message: String| EvalError::Template {
            at: site.at.clone(),
            message,
        };
        let parsed = template::parse(template).map_err(|e| fail(e.to_string()))?;
        // How the file reaches the reference: its declarations and `with` blocks before it.
        let steps = parsed_files
            .get(&site.file)
            .and_then(|p| template::path_to(&p.body, &site.span))
            .unwrap_or_default();
        let mut exec = Exec::new(defs, limits);
        let value = exec.render_at(&steps, &dot, &parsed.body).map_err(fail)?;
        Ok(Resolved {
            template: template.to_string(),
            value: value.trim().to_string(),
            definitions: exec.read,
            looked_up: exec.looked_up,
        })
    };
    let mut resolved: Vec<(usize, Finding, BTreeSet<String>, usize)> = Vec::new();
    for (k, site) in sites.iter().enumerate() {
        let f = &files[site.file].report.findings[site.finding];
        let outcome = eval(&extra, site, &f.image).and_then(|r| match finding(&r, f) {
            Some(new) => Ok((new, r.looked_up)),
            None => Err(EvalError::Template {
                at: site.at.clone(),
                message: format!("evaluates to {:?}, not an image reference", r.value),
            }),
        });
        match outcome {
            Ok((new, looked)) => resolved.push((site.file, new, looked, k)),
            Err(e) => {
                let why = match parse_errors.get(&site.file) {
                    Some(p) => format!("{e}; the file does not parse at {p}"),
                    None => e.to_string(),
                };
                let f = &mut files[site.file].report.findings[site.finding];
                f.context = format!("{} (not resolved: {why})", f.context);
                summary.unresolved.push((site.at.clone(), e));
            }
        }
    }
    // The knob of each top-level chart: the registry key that moves every image it resolved.
    let mut roots: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (n, (_, _, _, k)) in resolved.iter().enumerate() {
        roots
            .entry(root_of(&charts, sites[*k].chart))
            .or_default()
            .push(n);
    }
    let mut knob_of: HashMap<usize, String> = HashMap::new();
    for (root, members) in &roots {
        let mut candidates: Vec<String> = KNOBS.iter().map(|k| k.to_string()).collect();
        let common: Vec<&String> = resolved[members[0]]
            .2
            .iter()
            .filter(|n| n.to_ascii_lowercase().ends_with("registry"))
            .filter(|n| members.iter().all(|m| resolved[*m].2.contains(*n)))
            .collect();
        candidates.extend(common.into_iter().cloned());
        let found = candidates.into_iter().find(|name| {
            let probe = merge(&extra, &set_tree(name, PROBE));
            members.iter().all(|m| {
                let (_, f, _, k) = &resolved[*m];
                let template = f
                    .site
                    .resolution
                    .as_ref()
                    .map(|r| r.template.as_str())
                    .unwrap_or("");
                eval(&probe, &sites[*k], template)
                    .is_ok_and(|r| r.value.starts_with(&format!("{PROBE}/")))
            })
        });
        if let Some(k) = found {
            summary.knobs.insert(charts[*root].dir.clone(), k.clone());
            knob_of.insert(*root, k);
        }
    }
    summary.resolved = resolved.len();
    for (file, mut f, _, k) in resolved {
        if let Some(r) = f.site.resolution.as_mut() {
            r.knob = knob_of.get(&root_of(&charts, sites[k].chart)).cloned();
        }
        files[file].report.findings.push(f);
    }
    for f in files.iter_mut() {
        f.report
            .findings
            .sort_by_key(|a| (a.span.start, a.span.end));
    }
    summary
}

/// A resolved finding beside the templated one it comes from, when the value is an image
/// reference.
fn finding(r: &Resolved, from: &Finding) -> Option<Finding> {
    if r.value.is_empty() || is_templated(&r.value) || r.value.chars().any(char::is_whitespace) {
        return None;
    }
    let reference = imgref::Reference::parse(&r.value).ok()?;
    Some(Finding {
        span: from.span.clone(),
        exact: false,
        image: r.value.clone(),
        reference: Some(reference),
        kind: Kind::Resolved,
        source: from.source,
        context: from.context.clone(),
        parts: Vec::new(),
        insertion: None,
        site: discover::Site {
            pod: from.site.pod,
            container: from.site.container.clone(),
            resolution: Some(Box::new(Resolution {
                template: r.template.clone(),
                definitions: r.definitions.clone(),
                knob: None,
            })),
            ..Default::default()
        },
    })
}
