//! `airlock check`: run the policy over every image the configuration pulls and report each
//! violation where it is written, with a one-line fix — as text for people, JSON for scripts and
//! SARIF 2.1.0 for code-scanning UIs. The rules themselves live in the `policy` crate, shared with
//! the webhook and the audit; this module only reads files, positions and prints.
//!
//! The JSON and SARIF shapes are interfaces (CI jobs and GitHub code scanning parse them), so
//! they are built here in one place and pinned by the integration tests.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use crate::cli::{CheckArgs, CheckFormat};
use crate::config::Settings;
use crate::exit::Exit;
use crate::inputs::{self, Scanned};
use crate::output::escape;
use crate::report::ErrorOut;

/// SARIF's schema, as code-scanning services expect it to be named.
const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A violation placed in its file, as `--format json` prints it.
#[derive(Debug, Serialize)]
struct ViolationOut {
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    byte_start: usize,
    byte_end: usize,
    rule: policy::RuleId,
    image: Option<String>,
    message: String,
    fix: String,
}

#[derive(Debug, Serialize)]
struct CheckOutput {
    violations: Vec<ViolationOut>,
    errors: Vec<ErrorOut>,
    /// Templated references, which cannot be judged until rendered.
    templated: usize,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<Exit> {
    let policy = policy_from(&args.config.load()?)?;
    if args.format == CheckFormat::Human && !policy.checks_registries() {
        eprintln!(
            "airlock: no `registry` or `policy.allowRegistries` configured: registries, implicit images \
             and pull secrets are not checked"
        );
    }
    let (files, errors) = inputs::scan_all(&args.paths, &args.read)?;
    let pairs: Vec<(String, &discover::FileReport)> =
        files.iter().map(|f| (f.name.clone(), &f.report)).collect();
    let output = CheckOutput {
        violations: place(&files, policy::check(&pairs, &policy)),
        templated: policy::templated(&pairs),
        errors,
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        CheckFormat::Human => write_human(&mut out, &output, files.len())?,
        CheckFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &output)?;
            writeln!(out)?;
        }
        CheckFormat::Sarif => {
            serde_json::to_writer_pretty(&mut out, &sarif(&output))?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    if args.format != CheckFormat::Json {
        for e in &output.errors {
            eprintln!("airlock: {e}");
        }
    }
    // Unread input means the check is incomplete, which outranks what it did find.
    Ok(if !output.errors.is_empty() {
        Exit::BadInput
    } else if !output.violations.is_empty() {
        Exit::Violations
    } else {
        Exit::Ok
    })
}

/// The policy in force: `airlock.yaml` and flags. The private mapping is optional here (unlike
/// `rewrite`): an allow-list alone is a valid policy.
pub(crate) fn policy_from(settings: &Settings) -> anyhow::Result<policy::Policy> {
    let private = match settings.config.registry {
        Some(_) => Some(settings.mapping()?),
        None => None,
    };
    let p = &settings.config.policy;
    let policy = policy::Policy {
        allow_registries: p.allow_registries.clone(),
        deny_latest: p.deny_latest.unwrap_or(false),
        require_digest: p.require_digest.unwrap_or(false),
        pull_secret: settings.config.pull_secret.clone(),
        private,
    };
    let origin = settings
        .origin
        .as_ref()
        .map_or("flags".to_string(), |p| p.display().to_string());
    policy.validate().with_context(|| format!("in {origin}"))?;
    Ok(policy)
}

/// Turn byte ranges into lines and columns of the file each violation is in.
fn place(files: &[Scanned], violations: Vec<policy::Violation>) -> Vec<ViolationOut> {
    let indexes: HashMap<&str, discover::LineIndex> = files
        .iter()
        .map(|f| (f.name.as_str(), discover::LineIndex::new(&f.text)))
        .collect();
    violations
        .into_iter()
        .map(|v| {
            // `policy::check` places every violation in the file it was found in.
            let policy::Location::File { file, span } = v.location else {
                unreachable!("policy::check over files gave an object location")
            };
            let index = &indexes[file.as_str()];
            let (line, column) = index.position(span.start);
            let (end_line, end_column) = index.position(span.end);
            ViolationOut {
                line,
                column,
                end_line,
                end_column,
                byte_start: span.start,
                byte_end: span.end,
                rule: v.rule,
                image: v.image,
                message: v.message,
                fix: v.fix,
                file,
            }
        })
        .collect()
}

fn write_human(out: &mut impl Write, output: &CheckOutput, checked: usize) -> std::io::Result<()> {
    for v in &output.violations {
        writeln!(
            out,
            "{}:{}:{}: {}: {}",
            escape(&v.file),
            v.line,
            v.column,
            v.rule.as_str(),
            escape(&v.message)
        )?;
        writeln!(out, "    fix: {}", escape(&v.fix))?;
    }
    let files: BTreeSet<&str> = output.violations.iter().map(|v| v.file.as_str()).collect();
    let plural = |n: usize, one: &str, many: &str| crate::output::count(n as u64, one, many);
    let summary = match output.violations.len() {
        0 => format!("no violations in {}", plural(checked, "file", "files")),
        n => format!(
            "{} in {}",
            plural(n, "violation", "violations"),
            plural(files.len(), "file", "files")
        ),
    };
    let templated = plural(output.templated, "templated value", "templated values");
    match output.errors.len() {
        0 => writeln!(out, "{summary}; {templated} not checked"),
        n => writeln!(
            out,
            "{summary}; {templated} not checked; {}",
            plural(n, "input error", "input errors")
        ),
    }
}

/// SARIF 2.1.0: one run, every rule described once, one result per violation. Columns are counted
/// in characters, as the human output counts them, and the run says so (`columnKind`).
fn sarif(output: &CheckOutput) -> serde_json::Value {
    let rules: Vec<_> = policy::RuleId::ALL
        .iter()
        .map(|r| json!({ "id": r.as_str(), "shortDescription": { "text": r.description() } }))
        .collect();
    let results: Vec<_> = output
        .violations
        .iter()
        .map(|v| {
            json!({
                "ruleId": v.rule.as_str(),
                "ruleIndex": policy::RuleId::ALL.iter().position(|r| *r == v.rule),
                "level": "error",
                "message": { "text": format!("{} (fix: {})", v.message, v.fix) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": sarif_uri(&v.file) },
                        "region": {
                            "startLine": v.line,
                            "startColumn": v.column,
                            "endLine": v.end_line,
                            "endColumn": v.end_column,
                            "byteOffset": v.byte_start,
                            "byteLength": v.byte_end - v.byte_start,
                        },
                    },
                }],
            })
        })
        .collect();
    let notifications: Vec<_> = output
        .errors
        .iter()
        .map(|e| {
            let mut location = json!({ "artifactLocation": { "uri": sarif_uri(&e.file) } });
            // A file that could not be opened has no position (line 0); SARIF lines start at 1.
            if e.line > 0 {
                location["region"] = json!({ "startLine": e.line, "startColumn": e.column });
            }
            json!({
                "level": "error",
                "message": { "text": e.message },
                "locations": [{ "physicalLocation": location }],
            })
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "airlock",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                },
            },
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": output.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

/// A file name as a SARIF URI reference: relative paths stay relative (code-scanning services
/// resolve them against the checkout), absolute ones become `file://` URIs; characters outside
/// the URI path alphabet are percent-encoded.
fn sarif_uri(file: &str) -> String {
    let path = file.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let mut uri = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        uri.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=@".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sarif_uris_are_relative_or_file_uris_and_escaped() {
        assert_eq!(sarif_uri("./deploy/values.yaml"), "deploy/values.yaml");
        assert_eq!(sarif_uri("/tmp/a b/x.yaml"), "file:///tmp/a%20b/x.yaml");
        assert_eq!(sarif_uri("c:\\x\\é.yaml"), "c%3A/x/%C3%A9.yaml");
    }
}
