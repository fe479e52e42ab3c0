//! YAML sources: Kubernetes manifests, Helm values, JCasC, k0s, kustomize and docker-compose.
//!
//! A file is split into documents, each parsed into a [`tree::Node`] with exact byte spans, and
//! each document is handed to the module for its format, decided by its content (`apiVersion` and
//! `kind`, a top-level `jenkins:` or `services:` key, …). Multi-line strings that hold documents of
//! their own are scanned again through [`Walk::embedded`], with their offsets mapped back to the
//! file. A Helm template that is not YAML yet falls back to a line scan of its `image:` keys.

mod compose;
mod configmap;
mod helm;
mod jcasc;
mod k0s;
mod kubernetes;
mod kustomize;
mod path;
mod tree;

use std::collections::HashSet;
use std::ops::Range;

use crate::nested::Nested;
use crate::{FileReport, Finding, Kind, OffsetMap, Options, PodRef, ScanError, Source};
pub(crate) use path::Path;
pub use tree::ALIAS_EXPANSION_LIMIT;
pub(crate) use tree::AliasBudget;
use tree::YamlErrorKind;
pub(crate) use tree::parse as parse_tree;
pub use tree::{Node, Scalar};

pub(crate) fn looks_like(base: &str, text: &str) -> bool {
    if base.ends_with(".yaml") || base.ends_with(".yml") || base.ends_with(".json") || base == "-" {
        return true;
    }
    // Files without a YAML extension are read only when they start like a manifest.
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    first.is_some_and(|l| l == "---" || l.starts_with("apiVersion:") || l.starts_with("services:"))
}

/// Scan a whole YAML file (possibly many documents); `budget` is the file's, `nested` scans the
/// pipelines its strings hold.
pub(crate) fn scan_file(
    text: &str,
    budget: &AliasBudget,
    nested: &dyn Nested,
    out: &mut FileReport,
) {
    // Jinja statements (`{% if %}`) alone make a template too: an Ansible `.j2` manifest.
    let templated_file = text.contains("{{") || text.contains("{%");
    let mut parsed = Vec::new();
    for chunk in documents(text) {
        let body = &text[chunk.clone()];
        if is_crd(body) {
            // A CustomResourceDefinition only describes fields; its "image" properties are schema.
            continue;
        }
        let (docs, err) = tree::parse(body, budget);
        if let Some(err) = err {
            if templated_file && err.kind == YamlErrorKind::Syntax {
                // A Helm template before rendering: report what its image keys say, as written.
                template_lines(body, chunk.start, out);
                continue;
            }
            out.errors.push(ScanError {
                offset: chunk.start + err.offset,
                message: err.message,
            });
        }
        // Documents before a syntax error still count.
        parsed.push((chunk, docs));
    }
    // A ConfigMap's keys are images only when a workload of the file reads them.
    let uses = configmap::Uses::collect(parsed.iter().flat_map(|(_, docs)| docs));
    for (chunk, docs) in parsed {
        let mut walk = Walk::new(
            &text[chunk.clone()],
            OffsetMap::shifted(chunk.start),
            String::new(),
            budget,
            nested,
            None,
            out,
        );
        for d in &docs {
            walk.document(d, false);
            configmap::scan(&mut walk, d, &uses);
        }
    }
}

/// Scan YAML embedded in another document (pod YAML in a Jenkinsfile): `map` maps offsets in
/// `text` to the file, `context` is prefixed to every finding's context, `budget` is the file's,
/// `pod` the Jenkins pod template the YAML describes, if any.
pub(crate) fn scan_embedded(
    text: &str,
    map: &OffsetMap,
    context: &str,
    pod: Option<PodRef>,
    budget: &AliasBudget,
    nested: &dyn Nested,
    out: &mut FileReport,
) {
    let docs = parse_embedded(text, map, budget, out);
    let mut walk = Walk::new(
        text,
        map.clone(),
        context.to_string(),
        budget,
        nested,
        pod,
        out,
    );
    docs.iter().for_each(|d| walk.document(d, true));
}

/// Parse a string that may hold YAML. A string that is not YAML is just a string, but one whose
/// aliases overdraw the budget is hostile and reported at the alias, in the file.
fn parse_embedded(
    text: &str,
    map: &OffsetMap,
    budget: &AliasBudget,
    out: &mut FileReport,
) -> Vec<Node> {
    let (docs, err) = tree::parse(text, budget);
    if let Some(e) = err.filter(|e| e.kind == YamlErrorKind::AliasBudget) {
        out.errors.push(ScanError {
            offset: map.map(e.offset),
            message: e.message,
        });
    }
    docs
}

/// Byte ranges of the documents in a stream, split at `---` lines. Splitting before parsing
/// lets a 50-document release manifest skip its CRDs without building their trees.
fn documents(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    let mut line = 0;
    while line < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[line..]).map_or(bytes.len(), |i| line + i);
        let l = &bytes[line..end];
        if l.starts_with(b"---") && l.get(3).is_none_or(|b| b.is_ascii_whitespace()) && line > 0 {
            starts.push(line);
        }
        line = end + 1;
    }
    starts.push(text.len());
    starts.windows(2).map(|w| w[0]..w[1]).collect()
}

fn is_crd(doc: &str) -> bool {
    doc.lines().any(|l| {
        l.strip_prefix("kind:").is_some_and(|v| {
            let v = v
                .split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            v == "CustomResourceDefinition"
        })
    })
}

/// A Helm helpers file (`_helpers.tpl`): the `image:` lines of its defines, as written, for
/// resolution to evaluate where the define is included.
pub(crate) fn scan_helpers(text: &str, out: &mut FileReport) {
    template_lines(text, 0, out);
}

/// Line scan of a Helm template that is not valid YAML: every `image:` key's value, as written.
fn template_lines(body: &str, base: usize, out: &mut FileReport) {
    let mut line_start = 0;
    for line in body.split_inclusive('\n') {
        if let Some(found) = template_image_value(line) {
            let (value, range) = found;
            let span = base + line_start + range.start..base + line_start + range.end;
            let context = format!("template line › image: {}", value.trim());
            if let Some(f) = Finding::from_value(
                value,
                span,
                true,
                Kind::Literal,
                Source::Kubernetes,
                context,
            ) {
                out.findings.push(f);
            }
        }
        line_start += line.len();
    }
}

/// The value of an `image:` key on a line, unquoted, with its byte range in the line.
fn template_image_value(line: &str) -> Option<(&str, Range<usize>)> {
    let trimmed = line.trim_start();
    let lead = line.len() - trimmed.len();
    let rest = trimmed
        .strip_prefix("- ")
        .map(str::trim_start)
        .unwrap_or(trimmed);
    let key_at = lead + (trimmed.len() - rest.len());
    let value = rest.strip_prefix("image:")?;
    let mut start = key_at + "image:".len() + (value.len() - value.trim_start().len());
    let mut v = value.trim();
    if let Some(i) = v.find(" #") {
        v = v[..i].trim_end();
    }
    if v.len() >= 2
        && (v.starts_with('"') && v.ends_with('"') || v.starts_with('\'') && v.ends_with('\''))
    {
        v = &v[1..v.len() - 1];
        start += 1;
    }
    (!v.is_empty() && !v.starts_with('|') && !v.starts_with('>'))
        .then(|| (v, start..start + v.len()))
}

/// One document being walked: the text it was parsed from, how its offsets map to the file, the
/// context of the string it is embedded in, and where findings go.
pub(crate) struct Walk<'a> {
    pub text: &'a str,
    pub map: OffsetMap,
    pub prefix: String,
    pub opts: &'a Options,
    pub budget: &'a AliasBudget,
    /// Scans pipelines held in strings.
    pub nested: &'a dyn Nested,
    /// The Jenkins pod template this document describes (pod YAML in a template), whose pod
    /// its containers belong to; set by the JCasC reader around a template's `yaml:`.
    pub pod: Option<PodRef>,
    pub out: &'a mut FileReport,
    /// Strings already scanned as embedded documents. An aliased string is one shared node
    /// reached again: its findings are the same bytes, and scanning it once per alias would let
    /// a string reached 100,000 times be parsed 100,000 times.
    embedded_seen: HashSet<*const u8>,
}

impl<'a> Walk<'a> {
    fn new(
        text: &'a str,
        map: OffsetMap,
        prefix: String,
        budget: &'a AliasBudget,
        nested: &'a dyn Nested,
        pod: Option<PodRef>,
        out: &'a mut FileReport,
    ) -> Self {
        Walk {
            text,
            map,
            prefix,
            opts: nested.options(),
            budget,
            nested,
            pod,
            out,
            embedded_seen: HashSet::new(),
        }
    }

    /// Dispatch one document to its format. `embedded` documents never fall back to Helm values
    /// (a shell script or a settings file inside a ConfigMap is not a values file).
    fn document(&mut self, doc: &Node, embedded: bool) {
        if doc.as_map().is_none() {
            return;
        }
        let api = doc.str_at("apiVersion");
        let kind = doc.str_at("kind");
        match (api, kind) {
            (Some(_), Some("CustomResourceDefinition")) => {}
            (Some(a), _) if a.starts_with("k0s.k0sproject.io") => k0s::scan(self, doc, "spec"),
            (Some(a), _) if a.starts_with("k0sctl.k0sproject.io") => k0s::scan_k0sctl(self, doc),
            (Some(a), _) if a.starts_with("kustomize.config.k8s.io") => kustomize::scan(self, doc),
            (Some(_), Some(_)) => kubernetes::scan_object(self, doc),
            _ if jcasc::looks_like(doc) => jcasc::scan(self, doc),
            _ if compose::looks_like(doc) => compose::scan(self, doc),
            _ if kustomize::looks_like(doc) => kustomize::scan(self, doc),
            _ if embedded || kubernetes::is_bare_pod(doc) => kubernetes::scan_fragment(self, doc),
            _ => helm::scan(self, doc),
        }
    }

    /// Context string for a finding at `path` inside `owner` (e.g. `Deployment default/api`).
    pub fn context(&self, owner: &str, path: &Path) -> String {
        let mut s = self.prefix.clone();
        if !owner.is_empty() {
            s.push_str(owner);
            s.push_str(" › ");
        }
        s.push_str(&path.to_string());
        s
    }

    /// File byte range of a scalar, and whether it is exactly the value.
    pub fn span(&self, s: &Scalar) -> (Range<usize>, bool) {
        (
            self.map.map_range(s.span.clone()),
            s.exact && self.map.is_exact(),
        )
    }

    /// Report a scalar's value as an image (or templated text); nothing if it is neither. The
    /// finding is returned so the caller can say where it sits ([`crate::Site`]).
    pub fn value(
        &mut self,
        s: &Scalar,
        kind: Kind,
        source: Source,
        context: String,
    ) -> Option<&mut Finding> {
        let (span, exact) = self.span(s);
        let f = Finding::from_value(&s.value, span, exact, kind, source, context)?;
        self.out.findings.push(f);
        self.out.findings.last_mut()
    }

    pub fn push(&mut self, f: Finding) {
        self.out.findings.push(f);
    }

    /// Scan a multi-line string that may hold a document of its own (JCasC in a ConfigMap, a
    /// manifest in an Argo resource template, a pipeline in a KubeSphere ClusterTemplate).
    pub fn embedded(&mut self, s: &Scalar, context: String) {
        if !s.value.contains('\n')
            || !contains_ignore_case(&s.value, "image")
            || !self.embedded_seen.insert(s.value.as_ptr())
        {
            return;
        }
        let map = self.map.compose(&s.value_map(self.text));
        let prefix = format!("{context} › ");
        if self
            .nested
            .pipeline(&s.value, &map, &prefix, self.pod, self.out)
        {
            return;
        }
        let docs = parse_embedded(&s.value, &map, self.budget, self.out);
        let mut inner = Walk::new(
            &s.value,
            map,
            prefix,
            self.budget,
            self.nested,
            self.pod,
            self.out,
        );
        docs.iter().for_each(|d| inner.document(d, true));
    }
}

pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl Walk<'_> {
    /// Report a reference assembled from fields, e.g. Helm `registry`/`repository`/`tag`.
    /// Empty parts are left out with their separator. Without a tag or digest the reference is
    /// `templated` when `missing_tag_is_templated` (a Helm chart fills it from `appVersion`).
    pub fn composed(
        &mut self,
        parts: &[(crate::PartRole, &Scalar)],
        source: Source,
        context: String,
        missing_tag_is_templated: bool,
    ) -> Option<&mut Finding> {
        use crate::PartRole::*;
        let value = |role| {
            parts
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, s)| s.value.trim())
                .filter(|v| !v.is_empty())
        };
        let repository = value(Repository).or_else(|| value(Selector))?;
        let mut image = String::new();
        if let Some(registry) = value(GlobalRegistry).or_else(|| value(Registry)) {
            image.push_str(registry.trim_end_matches('/'));
            image.push('/');
        }
        image.push_str(repository);
        if let Some(tag) = value(Tag) {
            image.push(':');
            image.push_str(tag);
        }
        if let Some(digest) = value(Digest) {
            image.push('@');
            image.push_str(digest);
        }
        let anchor = parts
            .iter()
            .find(|(r, _)| matches!(r, Repository | Selector))
            .map(|(_, s)| *s)
            .expect("a repository or selector part");
        let span = self.span(anchor).0;
        let untagged = value(Tag).is_none() && value(Digest).is_none();
        let (kind, reference) =
            if crate::is_templated(&image) || (untagged && missing_tag_is_templated) {
                (Kind::Templated, None)
            } else {
                match imgref::Reference::parse(&image) {
                    Ok(r) => (Kind::Composed, Some(r)),
                    Err(_) => return None,
                }
            };
        let parts = parts
            .iter()
            // Empty quoted fields stay listed: they are where a rewrite can put a registry.
            .filter(|(_, s)| !s.is_null() && (s.exact || !s.value.trim().is_empty()))
            .map(|(role, s)| {
                let (span, exact) = self.span(s);
                crate::Part {
                    role: *role,
                    value: s.value.to_string(),
                    span,
                    exact,
                }
            })
            .collect();
        // The span is one field of several, so it never spells the whole reference.
        self.push(Finding {
            span,
            exact: false,
            image,
            reference,
            kind,
            source,
            context,
            parts,
            insertion: None,
            site: crate::Site::default(),
        });
        self.out.findings.last_mut()
    }
}

/// Every scalar of every document in a YAML text, in document order, with its byte range:
/// what `rewrite` compares before and after an edit to prove nothing else changed.
pub(crate) fn scalars(text: &str) -> Result<Vec<(Range<usize>, String)>, ScanError> {
    fn collect(node: &Node, out: &mut Vec<(Range<usize>, String)>) {
        match node {
            Node::Scalar(s) => out.push((s.span.clone(), s.value.to_string())),
            Node::Map(_) => node.as_map().unwrap_or_default().iter().for_each(|(k, v)| {
                collect(k, out);
                collect(v, out);
            }),
            Node::Seq(items) => items.iter().for_each(|i| collect(i, out)),
        }
    }
    let (docs, err) = tree::parse(text, &AliasBudget::new());
    if let Some(e) = err {
        return Err(ScanError {
            offset: e.offset,
            message: e.message,
        });
    }
    let mut out = Vec::new();
    docs.iter().for_each(|d| collect(d, &mut out));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_separator_lines_only() {
        let text = "a: 1\n---\nb: '---'\n--- # c\nc: 3\n";
        let docs = documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(&text[docs[1].clone()], "---\nb: '---'\n");
    }

    #[test]
    fn template_line_values_are_unquoted_with_exact_ranges() {
        let line = "      - image: \"{{ .Values.x }}:1\" # c\n";
        let (v, r) = template_image_value(line).unwrap();
        assert_eq!(v, "{{ .Values.x }}:1");
        assert_eq!(&line[r], v);
        assert!(template_image_value("  imagePullPolicy: x\n").is_none());
    }
}
