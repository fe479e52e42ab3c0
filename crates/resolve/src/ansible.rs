//! Ansible: the variables a project declares — each role's `defaults/` and `vars/`,
//! `group_vars/`, `host_vars/`, the `vars:` of its playbooks, and `--set` (Ansible's extra vars)
//! — layered by Ansible's precedence, and the templated image references evaluated against
//! them: the `repo:`/`tag:` pairs of image tables in variable files (the convention of
//! ks-installer's and kubespray's download roles) and the templated findings discovery made in
//! a role's files (its `.j2` manifests). Files under a role's `files/` are copied verbatim by
//! Ansible, never templated, and are left alone.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use discover::{
    Definition, FileReport, Finding, Kind, LineIndex, Resolution, Source, YamlNode, is_templated,
};

use crate::jinja::{Evaluator, Layer, Scope};
use crate::vars::Var;
use crate::{EvalError, Limits, Resolved};

/// A scanned file, as `apply` reads and extends it.
pub struct FileRef<'a> {
    pub name: &'a str,
    pub text: &'a str,
    pub report: &'a mut FileReport,
}

/// The registry stand-in a knob candidate is set to when testing whether it moves every image.
const PROBE: &str = "airlock-knob.invalid";

/// What `apply` added.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub resolved: usize,
    /// Image references of variable files that stay templated, with why.
    pub unresolved: Vec<(String, EvalError)>,
    /// The variable that prefixes every resolved image when set.
    pub knob: Option<String>,
}

/// Where a file sits in an Ansible project.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    RoleDefaults(String),
    RoleVars(String),
    GroupVars { all: bool },
    HostVars,
}

fn is_yaml_name(name: &str) -> bool {
    [".yml", ".yaml", ".json"].iter().any(|e| name.ends_with(e))
}

fn classify(path: &str) -> Option<Place> {
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    let n = parts.len();
    if let Some(i) = parts.iter().position(|p| *p == "group_vars") {
        let all = parts
            .get(i + 1)
            .is_some_and(|p| *p == "all" || p.starts_with("all."));
        return Some(Place::GroupVars { all });
    }
    if parts.contains(&"host_vars") {
        return Some(Place::HostVars);
    }
    if n >= 3 && is_yaml_name(parts[n - 1]) {
        let role = parts[..n - 2].join("/");
        match parts[n - 2] {
            "defaults" => return Some(Place::RoleDefaults(role)),
            "vars" => return Some(Place::RoleVars(role)),
            _ => {}
        }
    }
    None
}

/// The role a file belongs to and whether Ansible templates it: a file under
/// `<role>/{tasks,templates,defaults,vars,handlers,meta}`; `None` for anything else (and for
/// `<role>/files/`, copied as is).
fn role_of(path: &str, roles: &BTreeMap<String, Arc<RoleVars>>) -> Option<String> {
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    for i in (1..parts.len().saturating_sub(1)).rev() {
        let root = parts[..i].join("/");
        if roles.contains_key(&root) {
            let templated = matches!(
                parts[i],
                "tasks" | "templates" | "defaults" | "vars" | "handlers" | "meta"
            );
            return templated.then_some(root);
        }
    }
    None
}

#[derive(Debug, Default)]
struct RoleVars {
    defaults: Layer,
    vars: Layer,
}

/// A `repo:`/`tag:` pair in a variable file.
struct ImageSite {
    file: usize,
    role: Option<String>,
    span: Range<usize>,
    context: String,
    repo: String,
    tag: String,
}

/// The variables of an Ansible project, by precedence.
pub struct Project {
    ev: Arc<Evaluator>,
    roles: BTreeMap<String, Arc<RoleVars>>,
    group_all: Arc<Layer>,
    group: Arc<Layer>,
    host: Arc<Layer>,
    plays: Arc<Layer>,
    sets: Arc<Layer>,
    sites: Vec<ImageSite>,
    playbooks: Vec<usize>,
}

impl Project {
    /// Read the variables of every file that is part of an Ansible project. `sets` are
    /// `--set NAME=VALUE` answers, above everything else as Ansible's extra vars are.
    pub fn load(files: &[(&str, &str)], sets: &[(String, String)], limits: Limits) -> Project {
        let mut roles: BTreeMap<String, RoleVars> = BTreeMap::new();
        let (mut group_all, mut group, mut host, mut plays) = (
            Layer::default(),
            Layer::default(),
            Layer::default(),
            Layer::default(),
        );
        let mut sites = Vec::new();
        let mut playbooks = Vec::new();
        for (i, (name, text)) in files.iter().enumerate() {
            let place = classify(name);
            if place.is_none() && !is_yaml_name(name) {
                continue;
            }
            let (docs, _) = discover::yaml_documents(text);
            let index = LineIndex::new(text);
            let at = |offset: usize, key: &str| {
                let (line, column) = index.position(offset);
                Definition {
                    name: key.to_string(),
                    file: name.to_string(),
                    line,
                    column,
                }
            };
            let Some(place) = place else {
                // A playbook: a list of plays (maps with `hosts:`); their `vars:` count.
                let Some(YamlNode::Seq(items)) = docs.first() else {
                    continue;
                };
                if !items.iter().any(|p| p.get("hosts").is_some()) {
                    continue;
                }
                playbooks.push(i);
                for play in items.iter() {
                    if let Some(vars) = play.get("vars") {
                        define(&mut plays, vars, &at);
                        find_sites(vars, i, None, "vars", &mut sites);
                    }
                }
                continue;
            };
            let role = match &place {
                Place::RoleDefaults(r) | Place::RoleVars(r) => Some(r.clone()),
                _ => None,
            };
            let layer = match &place {
                Place::RoleDefaults(r) => &mut roles.entry(r.clone()).or_default().defaults,
                Place::RoleVars(r) => &mut roles.entry(r.clone()).or_default().vars,
                Place::GroupVars { all: true } => &mut group_all,
                Place::GroupVars { all: false } => &mut group,
                Place::HostVars => &mut host,
            };
            for doc in &docs {
                define(layer, doc, &at);
                find_sites(doc, i, role.clone(), "", &mut sites);
            }
        }
        let mut set_layer = Layer::default();
        for (k, v) in sets {
            set_layer.vars.insert(
                k.clone(),
                (
                    Var::Str(Arc::from(v.as_str())),
                    Definition {
                        name: k.clone(),
                        file: "--set".to_string(),
                        line: 0,
                        column: 0,
                    },
                ),
            );
        }
        Project {
            ev: Evaluator::new(limits),
            roles: roles.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            group_all: Arc::new(group_all),
            group: Arc::new(group),
            host: Arc::new(host),
            plays: Arc::new(plays),
            sets: Arc::new(set_layer),
            sites,
            playbooks,
        }
    }

    /// Whether the files hold anything Ansible reads.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
            && self.playbooks.is_empty()
            && self.group_all.vars.is_empty()
            && self.group.vars.is_empty()
            && self.host.vars.is_empty()
    }

    /// The variables a file of `role` sees (`None`: a playbook's), highest precedence first;
    /// `extra` goes above everything (a knob probe).
    fn scope(&self, role: Option<&str>, extra: Option<&Arc<Layer>>) -> Arc<Scope> {
        let mut layers: Vec<Arc<Layer>> = extra.into_iter().cloned().collect();
        layers.push(self.sets.clone());
        let own = role.and_then(|r| self.roles.get(r));
        if let Some(own) = own {
            layers.push(own_layer(own, |r| &r.vars));
        }
        layers.extend([
            self.plays.clone(),
            self.host.clone(),
            self.group.clone(),
            self.group_all.clone(),
        ]);
        if let Some(own) = own {
            layers.push(own_layer(own, |r| &r.defaults));
        }
        // Other roles of the project: Ansible makes a role's variables visible to the whole
        // play once the role is loaded.
        for (name, r) in &self.roles {
            if Some(name.as_str()) != role {
                layers.push(own_layer(r, |r| &r.vars));
            }
        }
        for (name, r) in &self.roles {
            if Some(name.as_str()) != role {
                layers.push(own_layer(r, |r| &r.defaults));
            }
        }
        Arc::new(Scope { layers })
    }

    /// Evaluate `template`, written at `at` in a file of `role`.
    pub fn resolve(
        &self,
        role: Option<&str>,
        template: &str,
        at: &str,
    ) -> Result<Resolved, EvalError> {
        self.ev.resolve(&self.scope(role, None), template, at)
    }
}

/// A role's layer, shared: the scope holds `Arc<Layer>`s, the role keeps its two layers in one
/// `Arc`, so each is copied out once per scope (small: a role's variables).
fn own_layer(role: &Arc<RoleVars>, pick: fn(&RoleVars) -> &Layer) -> Arc<Layer> {
    let layer = pick(role);
    Arc::new(Layer {
        vars: layer.vars.clone(),
    })
}

/// Every top-level key of a variables mapping, with where it is written.
fn define(layer: &mut Layer, doc: &YamlNode, at: &dyn Fn(usize, &str) -> Definition) {
    for (k, v) in doc.as_map().unwrap_or(&[]) {
        let (Some(key), Some(scalar)) = (k.as_str(), k.as_scalar()) else {
            continue;
        };
        layer.vars.insert(
            key.to_string(),
            (Var::from_node(v), at(scalar.span.start, key)),
        );
    }
}

/// Mappings with `repo:` and `tag:` (scalars) anywhere under `node`: an image, as Ansible
/// download roles declare them.
fn find_sites(
    node: &YamlNode,
    file: usize,
    role: Option<String>,
    path: &str,
    out: &mut Vec<ImageSite>,
) {
    let Some(entries) = node.as_map() else {
        if let Some(items) = node.as_seq() {
            for (i, item) in items.iter().enumerate() {
                find_sites(item, file, role.clone(), &format!("{path}[{i}]"), out);
            }
        }
        return;
    };
    let scalar_text = |key: &str| node.get(key).and_then(|n| Var::from_node(n).text());
    if let (Some(repo), Some(tag), Some(span)) = (
        scalar_text("repo"),
        scalar_text("tag"),
        node.get("repo")
            .and_then(YamlNode::as_scalar)
            .map(|s| s.span.clone()),
    ) {
        out.push(ImageSite {
            file,
            role,
            span,
            context: format!("{path} › repo:tag"),
            repo,
            tag,
        });
        return;
    }
    for (k, v) in entries {
        if let Some(k) = k.as_str() {
            let path = if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            };
            find_sites(v, file, role.clone(), &path, out);
        }
    }
}

/// Evaluate a `repo:tag` pair: each half separately, as the installer's `{{ repo }}:{{ tag }}`.
fn resolve_pair(
    project: &Project,
    site: &ImageSite,
    at: &str,
    extra: Option<&Arc<Layer>>,
) -> Result<Resolved, EvalError> {
    let scope = project.scope(site.role.as_deref(), extra);
    let repo = project.ev.resolve(&scope, &site.repo, at)?;
    let tag = project.ev.resolve(&scope, &site.tag, at)?;
    let mut definitions = repo.definitions;
    for d in tag.definitions {
        if !definitions.contains(&d) {
            definitions.push(d);
        }
    }
    let mut looked_up = repo.looked_up;
    looked_up.extend(tag.looked_up);
    let value = if repo.value.is_empty() && tag.value.is_empty() {
        String::new()
    } else {
        format!("{}:{}", repo.value, tag.value)
    };
    Ok(Resolved {
        template: format!("{}:{}", site.repo, site.tag),
        value,
        definitions,
        looked_up,
    })
}

/// One evaluated reference waiting to become a finding, with how to evaluate it again (for the
/// knob probe).
struct Pending {
    file: usize,
    finding: Finding,
    looked_up: Vec<String>,
    redo: Redo,
}

enum Redo {
    Site(usize),
    Templated { role: Option<String>, at: String },
}

/// Resolve every templated image reference of the Ansible files among `files` and add the
/// results to their reports as [`Kind::Resolved`] findings (a reference of a variable file that
/// cannot be evaluated is added as [`Kind::Templated`], with why in its context).
pub fn apply(files: &mut [FileRef<'_>], sets: &[(String, String)], limits: Limits) -> Summary {
    let named: Vec<(&str, &str)> = files.iter().map(|f| (f.name, f.text)).collect();
    let project = Project::load(&named, sets, limits);
    let mut summary = Summary::default();
    if project.is_empty() {
        return summary;
    }
    let mut pending: Vec<Pending> = Vec::new();
    for (i, site) in project.sites.iter().enumerate() {
        let file = &files[site.file];
        let (line, column) = LineIndex::new(file.text).position(site.span.start);
        let at = format!("{}:{line}:{column}", file.name);
        let outcome = resolve_pair(&project, site, &at, None).and_then(|r| {
            if r.value.is_empty() {
                return Ok(None);
            }
            match finding(&r, site.span.clone(), &site.context) {
                Some(f) => Ok(Some((f, r.looked_up))),
                None => Err(EvalError::Template {
                    at: at.clone(),
                    message: format!("evaluates to {:?}, not an image reference", r.value),
                }),
            }
        });
        match outcome {
            Ok(None) => {}
            Ok(Some((f, looked_up))) => pending.push(Pending {
                file: site.file,
                finding: f,
                looked_up: looked_up.into_iter().collect(),
                redo: Redo::Site(i),
            }),
            Err(e) => {
                files[site.file].report.findings.push(Finding {
                    span: site.span.clone(),
                    exact: false,
                    image: format!("{}:{}", site.repo, site.tag),
                    reference: None,
                    kind: Kind::Templated,
                    source: Source::Ansible,
                    context: format!("{} (not resolved: {e})", site.context),
                    parts: Vec::new(),
                    insertion: None,
                    site: Default::default(),
                });
                summary.unresolved.push((at, e));
            }
        }
    }
    // Templated findings discovery made in the files Ansible templates.
    for (i, file) in files.iter().enumerate() {
        let role = role_of(file.name, &project.roles);
        if role.is_none() && !project.playbooks.contains(&i) {
            continue;
        }
        let index = LineIndex::new(file.text);
        for f in file
            .report
            .findings
            .iter()
            .filter(|f| f.kind == Kind::Templated)
        {
            if f.image.contains("{{ .") || f.image.contains("{{- .") || !f.image.contains("{{") {
                // Go templates (a Helm chart kept in a role) and shell variables: not Jinja.
                continue;
            }
            let (line, column) = index.position(f.span.start);
            let at = format!("{}:{line}:{column}", file.name);
            let Ok(r) = project.resolve(role.as_deref(), &f.image, &at) else {
                continue;
            };
            if let Some(mut new) = finding(&r, f.span.clone(), &f.context) {
                new.source = f.source;
                pending.push(Pending {
                    file: i,
                    finding: new,
                    looked_up: r.looked_up.into_iter().collect(),
                    redo: Redo::Templated {
                        role: role.clone(),
                        at,
                    },
                });
            }
        }
    }
    summary.knob = knob(&project, &pending, files);
    summary.resolved = pending.len();
    for p in pending {
        let mut f = p.finding;
        if let Some(r) = f.site.resolution.as_mut() {
            r.knob = summary.knob.clone();
        }
        files[p.file].report.findings.push(f);
    }
    for f in files.iter_mut() {
        f.report
            .findings
            .sort_by_key(|a| (a.span.start, a.span.end));
    }
    summary
}

/// A resolved finding, when the value is a whole image reference.
fn finding(r: &Resolved, span: Range<usize>, context: &str) -> Option<Finding> {
    if is_templated(&r.value) || r.value.chars().any(char::is_whitespace) {
        return None;
    }
    let reference = imgref::Reference::parse(&r.value).ok()?;
    Some(Finding {
        span,
        // The bytes there are the template, never the value: edit where it is defined.
        exact: false,
        image: r.value.clone(),
        reference: Some(reference),
        kind: Kind::Resolved,
        source: Source::Ansible,
        context: context.to_string(),
        parts: Vec::new(),
        insertion: None,
        site: discover::Site {
            resolution: Some(Box::new(Resolution {
                template: r.template.clone(),
                definitions: r.definitions.clone(),
                knob: None,
            })),
            ..Default::default()
        },
    })
}

/// The variable that, set to a registry, prefixes every resolved image with it: among the names
/// every evaluation looked up (defined or not), the first that moves them all when probed.
fn knob(project: &Project, pending: &[Pending], files: &[FileRef<'_>]) -> Option<String> {
    let first = pending.first()?;
    let mut candidates: Vec<&String> = first
        .looked_up
        .iter()
        .filter(|n| pending.iter().all(|p| p.looked_up.contains(n)))
        .filter(|n| !project.sets.vars.contains_key(n.as_str()))
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .find(|name| {
            let mut probe = Layer::default();
            probe.vars.insert(
                name.to_string(),
                (
                    Var::Str(Arc::from(PROBE)),
                    Definition {
                        name: name.to_string(),
                        file: "probe".to_string(),
                        line: 0,
                        column: 0,
                    },
                ),
            );
            let probe = Arc::new(probe);
            pending.iter().all(|p| {
                let value = match &p.redo {
                    Redo::Site(i) => {
                        let site = &project.sites[*i];
                        resolve_pair(project, site, files[site.file].name, Some(&probe))
                    }
                    Redo::Templated { role, at } => project.ev.resolve(
                        &project.scope(role.as_deref(), Some(&probe)),
                        &p.finding
                            .site
                            .resolution
                            .as_ref()
                            .map(|r| r.template.clone())
                            .unwrap_or_default(),
                        at,
                    ),
                };
                value.is_ok_and(|r| r.value.starts_with(&format!("{PROBE}/")))
            })
        })
        .cloned()
}
