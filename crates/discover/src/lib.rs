//! Discovery: turn configuration text into [`Finding`]s — every container image the configuration
//! will make a cluster pull, with its exact byte range, line and column in the original file, and
//! typed facts about where it sits ([`Site`]). Depends on `imgref` and the YAML parser only:
//! never on the mapping, policy, the network or the file system (callers read the bytes).
//!
//! Formats are detected by content, not by file name: [`scan_file`] looks at the bytes and hands
//! them to the module for that format. Strings that hold whole documents (JCasC in a ConfigMap,
//! pod YAML in a Jenkinsfile, a manifest inside an Argo workflow) are scanned recursively, and
//! their findings point back into the outer file through an [`OffsetMap`].

mod dockerfile;
mod finding;
mod groovy;
pub mod imagelist;
mod lines;
mod nested;
mod offsets;
mod plugin;
mod podyaml;
mod shell;
mod yaml;

pub use finding::{
    Container, ContainerRole, DEFAULT_JNLP_IMAGE, DEFAULT_JNLP_IMAGE_PLUGIN, Definition,
    FileReport, Finding, Insert, Insertion, Kind, Options, Part, PartRole, PodContainer, PodKind,
    PodRef, Resolution, ScanError, ServiceAccount, Site, Source, Workload, is_templated,
};
pub use lines::LineIndex;
pub use offsets::OffsetMap;
pub use yaml::ALIAS_EXPANSION_LIMIT;
pub use yaml::{Node as YamlNode, Scalar as YamlScalar};

/// Scan one file's bytes. `name` is used only as a hint (a `Dockerfile` with odd content is
/// still a Dockerfile); detection is by content.
pub fn scan_file(name: &str, bytes: &[u8], opts: &Options) -> FileReport {
    let mut report = FileReport::default();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        // Binary files in a walked tree are not configuration; only a file named like a format
        // airlock reads is an error when it is not text.
        Err(e) if named_like_a_format(name) => {
            report.errors.push(ScanError {
                offset: e.valid_up_to(),
                message: "not UTF-8 text".to_string(),
            });
            return report;
        }
        Err(_) => return report,
    };
    // The plugin settings a file states apply to the templates of that file.
    let local = plugin::settings(text, opts);
    let opts = match &local {
        Some((local, finding)) => {
            report.findings.extend(finding.clone());
            local
        }
        None => opts,
    };
    let map = OffsetMap::identity();
    // One alias budget per file, shared by every document embedded in it.
    let budget = yaml::AliasBudget::new();
    let formats = Formats {
        opts,
        budget: &budget,
    };
    match detect(name, text) {
        Format::Dockerfile => dockerfile::scan(text, &map, opts, &mut report),
        Format::Jenkinsfile => groovy::scan(text, &map, "", &formats, None, &mut report),
        Format::ImageList => imagelist::scan(text, &mut report),
        Format::Yaml => yaml::scan_file(text, &budget, &formats, &mut report),
        Format::HelmHelpers => yaml::scan_helpers(text, &mut report),
        Format::Unknown => {}
    }
    report.findings.sort_by(|a, b| {
        a.span
            .start
            .cmp(&b.span.start)
            .then(a.span.end.cmp(&b.span.end))
    });
    report
}

/// The readers of formats that hold each other in strings (YAML and Groovy), joined here so
/// neither module depends on the other.
struct Formats<'a> {
    opts: &'a Options,
    budget: &'a yaml::AliasBudget,
}

impl nested::Nested for Formats<'_> {
    fn options(&self) -> &Options {
        self.opts
    }

    fn yaml(
        &self,
        text: &str,
        map: &OffsetMap,
        context: &str,
        pod: Option<PodRef>,
        out: &mut FileReport,
    ) {
        yaml::scan_embedded(text, map, context, pod, self.budget, self, out);
    }

    fn pipeline(
        &self,
        text: &str,
        map: &OffsetMap,
        context: &str,
        pod: Option<PodRef>,
        out: &mut FileReport,
    ) -> bool {
        if !groovy::looks_like_pipeline(text) {
            return false;
        }
        groovy::scan(text, map, context, self, pod, out);
        true
    }
}

fn named_like_a_format(name: &str) -> bool {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    base == "-"
        || [".yaml", ".yml", ".json", ".groovy", ".dockerfile"]
            .iter()
            .any(|e| base.ends_with(e))
        || ["dockerfile", "containerfile", "jenkinsfile"]
            .iter()
            .any(|p| base.starts_with(p))
}

/// Whether a file is read as YAML (as opposed to a Dockerfile, a Jenkinsfile or an image list).
pub fn is_yaml(name: &str, text: &str) -> bool {
    detect(name, text) == Format::Yaml
}

/// Every scalar of a YAML text in document order with its byte range and value; an error with
/// its byte offset when the text is not YAML.
pub fn yaml_scalars(text: &str) -> Result<Vec<(std::ops::Range<usize>, String)>, ScanError> {
    yaml::scalars(text)
}

/// Every document of a YAML text as a tree whose scalars keep their byte ranges (aliases
/// resolved, `<<` merged, within [`ALIAS_EXPANSION_LIMIT`]), and the error that stopped the
/// parse, if any; the documents before it are still returned.
pub fn yaml_documents(text: &str) -> (Vec<YamlNode>, Option<ScanError>) {
    let (docs, err) = yaml::parse_tree(text, &yaml::AliasBudget::new());
    let err = err.map(|e| ScanError {
        offset: e.offset,
        message: e.message,
    });
    (docs, err)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Dockerfile,
    Jenkinsfile,
    ImageList,
    Yaml,
    /// A Helm chart's named templates (`_helpers.tpl`): never YAML, but a `define` may hold a
    /// pod spec whose `image:` lines are the chart's.
    HelmHelpers,
    Unknown,
}

fn detect(name: &str, text: &str) -> Format {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    if dockerfile::looks_like(&base, text) {
        Format::Dockerfile
    } else if groovy::looks_like(&base, text) {
        Format::Jenkinsfile
    } else if imagelist::looks_like(text) {
        Format::ImageList
    } else if yaml::looks_like(&base, text) {
        Format::Yaml
    } else if base.ends_with(".tpl") {
        Format::HelmHelpers
    } else {
        Format::Unknown
    }
}
