//! `airlock audit`: read a live cluster and say what each container really runs, from where,
//! whether the shared policy allows it and whether it is the locked digest; which namespaces and
//! ServiceAccounts lack the pull secret; which pods cannot pull. The reading is `cluster::audit`;
//! the policy is the one `check` builds (`check::policy_from`); this module prints.
//!
//! Also home of the flags every cluster verb shares ([`ClusterArgs`]).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;

use crate::config::ConfigArgs;
use crate::exit::Exit;
use crate::output::{count, escape};

/// How to reach the cluster and which namespaces to work on, as kubectl spells them.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The kubeconfig file [default: $KUBECONFIG, ~/.kube/config, else the pod's service
    /// account when running in a cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// A kubeconfig context other than the current one.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// A namespace; repeatable [default: the context's namespace].
    #[arg(short = 'n', long = "namespace", value_name = "NS", conflicts_with_all = ["all_namespaces", "selector"])]
    pub namespaces: Vec<String>,

    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with = "selector")]
    pub all_namespaces: bool,

    /// The namespaces whose labels match this selector (`team=shop`, `env in (prod)`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Items per list request (the API server's `limit`; `continue` fetches the rest).
    #[arg(long, value_name = "N", default_value_t = cluster::DEFAULT_PAGE, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_size: u32,
}

impl ClusterArgs {
    pub async fn connect(&self) -> anyhow::Result<cluster::Client> {
        Ok(cluster::connect(&cluster::ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        })
        .await?)
    }

    pub async fn namespaces(&self, client: &cluster::Client) -> anyhow::Result<Vec<String>> {
        let scope = if self.all_namespaces {
            cluster::Scope::All
        } else if let Some(s) = &self.selector {
            cluster::Scope::Selector(s.clone())
        } else if !self.namespaces.is_empty() {
            cluster::Scope::Named(self.namespaces.clone())
        } else {
            cluster::Scope::Default
        };
        Ok(scope.namespaces(client, self.chunk_size).await?)
    }
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Compare each running digest with this lock file (see `airlock lock`).
    #[arg(long, value_name = "LOCKFILE", num_args = 0..=1, default_missing_value = crate::lockfile::DEFAULT_LOCK)]
    pub lock: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,

    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// A row per container, then violations, pull failures, missing pull secrets.
    Table,
    /// Everything, machine-readable.
    Json,
}

pub fn run(args: &AuditArgs) -> anyhow::Result<Exit> {
    let policy = super::check::policy_from(&args.config.load()?)?;
    let lock = match &args.lock {
        None => None,
        Some(path) => {
            let lock = crate::lockfile::Lockfile::read(path, crate::inputs::DEFAULT_MAX_FILE_SIZE)?;
            Some(cluster::audit::LockIndex::new(
                lock.images.into_iter().map(|i| {
                    let mut digests = vec![i.digest];
                    digests.extend(i.platforms.into_iter().map(|p| p.digest));
                    (i.image, digests)
                }),
                &policy,
            ))
        }
    };
    let report = crate::registry::runtime()?.block_on(async {
        let client = args.cluster.connect().await?;
        let namespaces = args.cluster.namespaces(&client).await?;
        let audit = cluster::audit::Audit {
            policy: &policy,
            lock: lock.as_ref(),
            page: args.cluster.chunk_size,
        };
        anyhow::Ok(audit.run(&client, &namespaces).await?)
    })?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        AuditFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        AuditFormat::Table => write_table(&mut out, &report, policy.pull_secret.as_deref())?,
    }
    out.flush().context("cannot write the report")?;
    for u in &report.unreadable {
        eprintln!(
            "airlock: namespace {}: cannot read {} ({}): {}",
            escape(&u.namespace),
            u.resource,
            u.code,
            escape(&u.message)
        );
    }
    // An audit that could not read everything is incomplete, which outranks what it found
    // (as for `check`).
    Ok(if !report.unreadable.is_empty() {
        Exit::BadInput
    } else if report.failed() {
        Exit::Violations
    } else {
        Exit::Ok
    })
}

fn write_table(
    out: &mut impl Write,
    r: &cluster::audit::Report,
    pull_secret: Option<&str>,
) -> std::io::Result<()> {
    use cluster::audit::{LockState, SecretState};
    let short = |d: &str| d.get(..19).unwrap_or(d).to_string();
    let mut rows = vec![
        [
            "NAMESPACE",
            "POD",
            "CONTAINER",
            "IMAGE",
            "REGISTRY",
            "RUNNING",
            "LOCK",
            "POLICY",
        ]
        .map(String::from),
    ];
    for c in &r.containers {
        let container = match c.role {
            "container" => c.container.clone(),
            role => format!("{} ({role})", c.container),
        };
        let lock = match &c.lock {
            LockState::NotChecked => "-".into(),
            LockState::NotLocked => "not locked".into(),
            LockState::Unknown { .. } => "unknown".into(),
            LockState::Match { .. } => "match".into(),
            LockState::Mismatch { locked, .. } => format!("MISMATCH {}", short(locked)),
        };
        let verdict = match (&c.invalid, c.violations.is_empty()) {
            (Some(_), _) => "invalid".to_string(),
            (None, true) => "ok".to_string(),
            (None, false) => {
                let rules: Vec<&str> = c.violations.iter().map(|j| j.rule.as_str()).collect();
                format!("FAIL {}", rules.join(","))
            }
        };
        rows.push([
            c.namespace.clone(),
            c.pod.clone(),
            container,
            c.image.clone(),
            c.registry.clone().unwrap_or_else(|| "-".into()),
            c.digest.as_deref().map_or("-".into(), short),
            lock,
            verdict,
        ]);
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| row.iter().map(|v| escape(v).into_owned()).collect())
        .collect();
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (i, v) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(v);
            } else {
                line.push_str(&format!("{v:<w$}  ", w = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }

    let mut violations = 0;
    for c in &r.containers {
        for j in &c.violations {
            violations += 1;
            writeln!(
                out,
                "\n{}/{} {}: {}: {}\n    fix: {}",
                escape(&c.namespace),
                escape(&c.pod),
                escape(&c.container),
                j.rule.as_str(),
                escape(&j.message),
                escape(&j.fix)
            )?;
        }
    }
    for v in &r.pod_violations {
        violations += 1;
        writeln!(
            out,
            "\n{}/{}: {}: {}\n    fix: {}",
            escape(&v.namespace),
            escape(&v.pod),
            v.judgement.rule.as_str(),
            escape(&v.judgement.message),
            escape(&v.judgement.fix)
        )?;
    }
    if !r.pull_failures.is_empty() {
        writeln!(out, "\nPods that cannot pull:")?;
        for f in &r.pull_failures {
            writeln!(
                out,
                "  {}/{} {}: {} {}: {}",
                escape(&f.namespace),
                escape(&f.pod),
                escape(&f.container),
                escape(&f.reason),
                escape(&f.image),
                escape(f.message.as_deref().unwrap_or("(no message)"))
            )?;
        }
    }
    if let Some(secret) = pull_secret {
        let missing: Vec<&str> = r
            .namespaces
            .iter()
            .filter(|n| n.pull_secret == SecretState::Missing)
            .map(|n| n.name.as_str())
            .collect();
        let accounts: Vec<String> = r
            .namespaces
            .iter()
            .flat_map(|n| {
                n.service_accounts_missing_pull_secret
                    .iter()
                    .map(move |a| format!("{}/{a}", n.name))
            })
            .collect();
        if !missing.is_empty() {
            writeln!(
                out,
                "\nNamespaces without the Secret {}: {}",
                escape(secret),
                escape(&missing.join(", "))
            )?;
        }
        if !accounts.is_empty() {
            writeln!(
                out,
                "ServiceAccounts whose pods lack {}: {}",
                escape(secret),
                escape(&accounts.join(", "))
            )?;
        }
    }
    let mismatches = r
        .containers
        .iter()
        .filter(|c| matches!(c.lock, LockState::Mismatch { .. }))
        .count();
    let pods: std::collections::BTreeSet<(&str, &str)> = r
        .containers
        .iter()
        .map(|c| (c.namespace.as_str(), c.pod.as_str()))
        .collect();
    writeln!(
        out,
        "\n{} in {} in {}: {}, {}, {}, {} unreadable",
        count(r.containers.len() as u64, "container", "containers"),
        count(pods.len() as u64, "pod", "pods"),
        count(r.namespaces.len() as u64, "namespace", "namespaces"),
        count(violations as u64, "policy violation", "policy violations"),
        count(mismatches as u64, "lock mismatch", "lock mismatches"),
        count(
            r.pull_failures.len() as u64,
            "pull failure",
            "pull failures"
        ),
        r.unreadable.len()
    )
}
