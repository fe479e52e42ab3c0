//! Flags that say how to reach registries, shared by the verbs that talk to them, and the
//! async runtime they run on.

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// A registry (host[:port]) that may be spoken to over plain HTTP; repeatable.
    #[arg(long = "insecure", value_name = "HOST")]
    pub insecure: Vec<String>,

    /// A PEM file of extra CA certificates to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Credentials for every registry, USER:PASSWORD (otherwise ~/.docker/config.json and its
    /// credential helpers are used). Prefer AIRLOCK_CREDS in the environment: flags show in `ps`.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "AIRLOCK_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,

    /// How many blobs move at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

impl RegistryArgs {
    pub fn client(&self) -> anyhow::Result<oci::Client> {
        let creds = match &self.creds {
            Some(c) => Some(
                oci::Credential::from_user_pass(c).context("--creds: write it as USER:PASSWORD")?,
            ),
            None => None,
        };
        let opts = oci::ClientOptions {
            insecure_hosts: self.insecure.clone(),
            ca_file: self.ca_file.clone(),
            creds,
            max_concurrency: self.concurrency.max(1),
            ..oci::ClientOptions::default()
        };
        Ok(oci::Client::new(opts)?)
    }
}

/// The runtime the registry verbs run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
