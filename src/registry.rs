//! Flags that say how to reach registries, shared by the verbs that talk to them, and the
//! async runtime they run on.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// A registry (host[:port]) that may be spoken to over plain HTTP; repeatable.
    #[arg(long = "insecure", value_name = "HOST")]
    pub insecure: Vec<String>,

    /// A PEM file of extra CA certificates to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Credentials, [HOST=]USER:PASSWORD; without HOST they are for the target registry (push,
    /// mirror). Other registries use ~/.docker/config.json and its credential helpers. Prefer
    /// AIRLOCK_CREDS in the environment: flags show in `ps`.
    #[arg(
        long,
        value_name = "[HOST=]USER:PASSWORD",
        env = "AIRLOCK_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,

    /// How many blobs move at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    /// Longest wait to connect to a registry (TCP and TLS): 10s, 1m, …
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Longest silence within a request (no byte sent or received) before it is abandoned.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Longest time one image may take in all, retries included (a registry that trickles
    /// bytes forever is cut here).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub image_timeout: Duration,

    /// Attempts per request in all, the first included (1 = never retry); only failures that
    /// a retry can fix (5xx, 429, dropped connections, timeouts) are retried.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub attempts: u32,
}

impl RegistryArgs {
    /// A client; `target` is the registry (host[:port]) that unscoped `--creds` belong to.
    /// Credentials are only ever sent to the registry they are for: a private registry's
    /// password must not travel to Docker Hub with a pull.
    pub fn client(&self, target: Option<&str>) -> anyhow::Result<oci_client::Client> {
        let mut host_creds = std::collections::HashMap::new();
        if let Some(value) = &self.creds {
            let (host, user_pass) = match (scoped_host(value), target) {
                (Some((host, rest)), _) => (host.to_string(), rest),
                (None, Some(t)) => (t.to_string(), value.as_str()),
                (None, None) => {
                    anyhow::bail!("--creds: name the registry they are for, HOST=USER:PASSWORD")
                }
            };
            let cred = oci_client::Credential::from_user_pass(user_pass)
                .context("--creds: write it as [HOST=]USER:PASSWORD")?;
            host_creds.insert(host, cred);
        }
        let opts = oci_client::ClientOptions {
            insecure_hosts: self.insecure.clone(),
            ca_file: self.ca_file.clone(),
            host_creds,
            max_concurrency: self.concurrency.max(1),
            retry: oci_client::RetryPolicy {
                attempts: self.attempts,
                ..Default::default()
            },
            timeouts: oci_client::Timeouts {
                connect: self.connect_timeout,
                idle: self.idle_timeout,
                image: self.image_timeout,
            },
            ..oci_client::ClientOptions::default()
        };
        Ok(oci_client::Client::new(opts)?)
    }
}

/// `HOST=USER:PASSWORD` split at the `=` when what precedes it is a host[:port] (a password may
/// hold `=` too, but a `user:pass` prefix has a colon not followed by a port number).
fn scoped_host(value: &str) -> Option<(&str, &str)> {
    let (host, rest) = value.split_once('=')?;
    let is_host = match host.split_once(':') {
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => !host.is_empty(),
    };
    is_host.then_some((host, rest))
}

/// `90`, `90s`, `500ms`, `10m` or `1h` as a duration (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (write 30s, 500ms, 10m or 1h)"))?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err("a timeout of zero would fail every request".into());
    }
    Ok(duration)
}

/// The runtime the registry verbs run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Which images a transfer verb moves: found in configuration, listed in a file, or pinned in a
/// lock file.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// Configuration to take the images from [default: . unless -f or --lock is given].
    pub paths: Vec<PathBuf>,

    /// A file listing images, one a line (`#` comments allowed).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub list: Option<PathBuf>,

    /// Take the images from a lock file, at their locked digests.
    #[arg(long, value_name = "LOCKFILE")]
    pub lock: Option<PathBuf>,

    #[command(flatten)]
    pub read: crate::inputs::ReadArgs,
}

/// One image to move: its normalised reference and, when locked, the digest to fetch.
pub struct Image {
    pub reference: imgref::Reference,
    pub digest: Option<String>,
}

impl Image {
    /// The source endpoint: at the locked digest when there is one, else at the tag.
    pub fn source(&self, client: &oci_client::Client) -> oci_transfer::Endpoint {
        let r = &self.reference;
        let at = self.digest.as_deref().unwrap_or(r.pull_address());
        oci_transfer::Endpoint::registry(client, oci_client::Repo::from_reference(r), Some(at))
    }

    /// The name the image gets in a layout (`org.opencontainers.image.ref.name`).
    pub fn name(&self) -> String {
        self.reference.to_string()
    }
}

impl ImageArgs {
    pub fn select(&self) -> anyhow::Result<Vec<Image>> {
        let mut images: Vec<Image> = Vec::new();
        if let Some(lock) = &self.lock {
            for entry in crate::lockfile::Lockfile::read(lock, self.read.max_file_size)?.images {
                let reference = imgref::Reference::parse(&entry.image)
                    .with_context(|| format!("{}: {}", lock.display(), entry.image))?;
                images.push(Image {
                    reference,
                    digest: Some(entry.digest),
                });
            }
        }
        if self.lock.is_none() || self.list.is_some() || !self.paths.is_empty() {
            let refs = crate::inputs::references(&self.paths, self.list.as_deref(), &self.read)?;
            images.extend(refs.into_iter().map(|reference| Image {
                reference,
                digest: None,
            }));
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, scoped_host};
    use std::time::Duration;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "10 days", "-1s", "0"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn creds_name_their_host_or_none() {
        assert_eq!(
            scoped_host("127.0.0.1:5000=u:p"),
            Some(("127.0.0.1:5000", "u:p"))
        );
        assert_eq!(
            scoped_host("registry.corp=u:p=q"),
            Some(("registry.corp", "u:p=q"))
        );
        assert_eq!(scoped_host("user:pa=ss"), None);
        assert_eq!(scoped_host("user:secret"), None);
    }
}
