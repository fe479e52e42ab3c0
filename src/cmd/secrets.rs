//! `airlock secrets`: the registry's pull secret in every namespace named or selected, and the
//! ServiceAccount change that uses it, printed or applied (`cluster::secrets` decides and
//! writes). The password is read from standard input, a file or `~/.docker/config.json` — never
//! from a flag, which `ps` would show — and reaches only the cluster or the file given with `-o`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use cluster::secrets::{Change, NamespacePlan, PullSecret};

use crate::cmd::audit::ClusterArgs;
use crate::config::MappingArgs;
use crate::exit::Exit;
use crate::output::escape;

/// The Secret's name when neither `--name` nor `pullSecret:` in airlock.yaml gives one.
const DEFAULT_NAME: &str = "airlock-registry";
/// A password longer than this is not a password.
const PASSWORD_LIMIT: crate::fsutil::ByteSize = crate::fsutil::ByteSize(64 << 10);

#[derive(Debug, clap::Args)]
pub struct SecretsArgs {
    /// The registry, host[:port] [default: `registry:` of airlock.yaml].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub registry: Option<String>,

    /// The user to pull as; with --password-stdin or --password-file [default: the entry of
    /// `docker login` for the registry].
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    /// Read the password from standard input (one line).
    #[arg(long, requires = "username", conflicts_with = "password_file")]
    pub password_stdin: bool,

    /// Read the password from this file (its first line).
    #[arg(long, value_name = "FILE", requires = "username")]
    pub password_file: Option<PathBuf>,

    /// The Secret's name [default: `pullSecret:` of airlock.yaml, else airlock-registry].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The ServiceAccount whose imagePullSecrets gets the Secret.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub service_account: String,

    /// Create or update what differs in the cluster, instead of printing it.
    #[arg(long, conflicts_with = "output")]
    pub apply: bool,

    /// Write the manifests, password included, to FILE (mode 0600) instead of printing them
    /// with the password REDACTED.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Configuration file [default: ./airlock.yaml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub fn run(args: &SecretsArgs) -> anyhow::Result<Exit> {
    let settings = MappingArgs {
        config: args.config.clone(),
        registry: args.registry.clone(),
        ..MappingArgs::default()
    }
    .load()?;
    // The one parser of registry names: the Mapping's (host[:port][/prefix]); the kubelet
    // matches credentials by host.
    let host = settings.mapping()?.target_host().to_string();
    let name = args
        .name
        .clone()
        .or(settings.config.pull_secret.clone())
        .unwrap_or_else(|| DEFAULT_NAME.into());
    let (username, password) = credentials(args, &host)?;
    let spec = PullSecret::new(
        name,
        oci_client::auth::docker_config_key(&host),
        username,
        password,
        args.service_account.clone(),
    );

    let runtime = crate::registry::runtime()?;
    let (plans, failures) = runtime.block_on(async {
        let client = args.cluster.connect().await?;
        let namespaces = args.cluster.namespaces(&client).await?;
        let mut plans = Vec::new();
        let mut failures = Vec::new();
        for ns in &namespaces {
            let planned = cluster::secrets::plan(&client, &spec, ns).await;
            let done = match planned {
                Ok(p) if args.apply => cluster::secrets::apply(&client, &p).await.map(|()| p),
                other => other,
            };
            match done {
                Ok(p) => plans.push(p),
                Err(e) => failures.push(e),
            }
        }
        anyhow::Ok((plans, failures))
    })?;

    if !args.apply {
        let docs: Vec<serde_json::Value> = plans
            .iter()
            .flat_map(|p| cluster::secrets::manifests(p, args.output.is_some()))
            .collect();
        let mut text = String::new();
        for doc in &docs {
            text.push_str("---\n");
            text.push_str(&serde_saphyr::to_string(doc).context("cannot write YAML")?);
        }
        match &args.output {
            Some(path) => crate::fsutil::write_private(path, text.as_bytes())?,
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
        }
    }
    for p in &plans {
        eprintln!("airlock: {}", summary(p, args.apply, &spec));
    }
    for e in &failures {
        eprintln!("airlock: {}", escape(&e.to_string()));
    }
    Ok(match failures.iter().find(|e| e.is_network()) {
        Some(_) => Exit::Registry,
        None if !failures.is_empty() => Exit::BadInput,
        None => Exit::Ok,
    })
}

/// One line per namespace: what was (or would be) done.
fn summary(p: &NamespacePlan, applied: bool, spec: &PullSecret) -> String {
    let verb = |c: Change, done: &str, todo: &str| match (c, applied) {
        (Change::Unchanged, _) => "unchanged".to_string(),
        (_, true) => done.to_string(),
        (_, false) => todo.to_string(),
    };
    format!(
        "namespace {}: Secret {} {}; ServiceAccount {} {}",
        escape(&p.namespace),
        escape(&spec.name),
        match p.secret_change {
            Change::Create => verb(p.secret_change, "created", "to create"),
            _ => verb(p.secret_change, "updated", "to update"),
        },
        escape(&spec.service_account),
        verb(p.account_change, "updated", "to update")
    )
}

/// The user and password: the flags and standard input or a file, else `docker login`'s entry.
fn credentials(args: &SecretsArgs, host: &str) -> anyhow::Result<(String, String)> {
    let from_file = |bytes: Vec<u8>, what: &str| -> anyhow::Result<String> {
        let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{what} is not UTF-8"))?;
        let line = text.lines().next().unwrap_or_default().to_string();
        if line.is_empty() {
            bail!("{what} holds no password");
        }
        Ok(line)
    };
    let password = if args.password_stdin {
        let stdin = std::io::stdin().lock();
        let bytes = crate::fsutil::read_limited(stdin.take(u64::MAX), None, PASSWORD_LIMIT)
            .context("cannot read the password from standard input")?;
        Some(from_file(bytes, "standard input")?)
    } else if let Some(path) = &args.password_file {
        let bytes = crate::fsutil::read_file_limited(path, PASSWORD_LIMIT)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Some(from_file(bytes, &path.display().to_string())?)
    } else {
        None
    };
    match (&args.username, password) {
        (Some(user), Some(password)) => Ok((user.clone(), password)),
        (Some(_), None) => bail!("--username needs --password-stdin or --password-file"),
        (None, _) => match oci_client::auth::from_docker_config(host)? {
            Some(oci_client::Credential::Basic { username, password }) => Ok((username, password)),
            Some(oci_client::Credential::IdentityToken(_)) => bail!(
                "docker login stored an identity token for {host}, which the kubelet cannot use: \
                 pass --username with --password-stdin or --password-file"
            ),
            None => bail!(
                "no credentials for {host}: pass --username with --password-stdin or \
                 --password-file, or run `docker login {host}` first"
            ),
        },
    }
}
