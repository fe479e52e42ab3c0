//! The command line: verbs, flags and their help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ConfigArgs;

/// Make a Kubernetes platform work in an air-gapped or rate-limited cluster: find every image it
/// pulls, carry the images across, point the configuration at a private registry, and enforce it.
///
/// Exit codes: 0 ok, 1 findings that fail a check or policy violations, 2 usage error or input
/// that could not be read, 3 registry or network failure.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every image that configuration will pull, with exact positions.
    #[command(after_help = "Examples:
  airlock scan                                 # the current directory, as a table
  airlock scan k8s/ values.yaml --format json  # files and directories, machine-readable
  airlock scan --format list . > images.txt    # one image a line, input for `pack -f`
  helm template . | airlock scan -             # standard input")]
    ///
    /// Reads Kubernetes manifests, Helm values, JCasC, Jenkinsfiles, k0s and k0sctl configs,
    /// kustomizations, docker-compose files, Dockerfiles and image lists, detected by content.
    /// Directories are walked recursively, honouring .gitignore (--no-ignore to read every file)
    /// and skipping .git, target and node_modules; `-` reads standard input.
    Scan(ScanArgs),

    /// Point every image reference at the private registry, editing values in place.
    #[command(after_help = "Examples:
  airlock rewrite --registry registry.corp .          # show the diff
  airlock rewrite --registry registry.corp --write .  # edit the files
  airlock rewrite --check .                           # CI: exit 1 if anything would change
  airlock rewrite --write --pin .                     # also pin the digests of airlock.lock")]
    ///
    /// Only the bytes of image values change: comments, quotes, anchors, indentation and block
    /// scalars stay as written. Split Helm fields are changed part by part. Each edited file is
    /// read again and nothing is written unless only the intended values changed. Templated
    /// values are reported, not edited. Prints a unified diff unless --write or --check.
    Rewrite(RewriteArgs),

    /// Resolve every image to the digest of its manifest or index, per platform, in airlock.lock.
    #[command(after_help = "Examples:
  airlock lock .                       # every image the configuration pulls
  airlock lock -f images.txt           # the images of a list
  airlock lock -o platform.lock k8s/   # another lock file")]
    ///
    /// Images come from scanning PATHs, or from a list file with -f. The lock file is sorted and
    /// stable, for review; `rewrite --pin` writes its digests into the configuration.
    Lock(LockArgs),

    /// Pull images into an OCI layout or archive (.tar, .tar.zst) to carry across the air gap.
    #[command(after_help = "Examples:
  airlock pack -o images.tar.zst .                  # every image the configuration pulls
  airlock pack --lock airlock.lock -o images.tar    # at the locked digests
  airlock pack -f images.txt --platform linux/amd64 -o layout/")]
    ///
    /// Images come from scanning PATHs, a list (-f) or a lock file (--lock, at the locked
    /// digests). Every platform by default. A failed run keeps what it fetched: run it again.
    Pack(PackArgs),

    /// Build the OCI image of airlock itself into a layout or archive (.tar, .tar.zst).
    #[command(after_help = "Examples:
  airlock image -o airlock.tar              # this executable, if it is statically linked
  airlock image -o layout/ --binary target/x86_64-unknown-linux-gnu/release/airlock
  airlock image -o airlock.tar --binary airlock-amd64 --binary airlock-arm64   # an index")]
    ///
    /// One layer holding only /usr/local/bin/airlock (mode 0755, owner 65532), run as
    /// 65532:65532 with the binary as entrypoint; the platform is read from the binary's ELF
    /// header (linux/amd64 or linux/arm64). A dynamically linked binary is refused. The same
    /// binary gives the same digest on every run (timestamps from SOURCE_DATE_EPOCH, else 0).
    /// Prints NAME@DIGEST.
    Image(ImageArgs),

    /// Load a layout or archive made by `pack` into the private registry (--to / --registry),
    /// naming each image with the mapping `rewrite` uses.
    #[command(after_help = "Examples:
  airlock push images.tar.zst --to registry.corp
  airlock push layout/ --to registry.corp/platform --mapping keep-host
  AIRLOCK_CREDS=registry.corp=ci:secret airlock push images.tar --to registry.corp")]
    Push(PushArgs),

    /// Copy images from their registries straight into the private registry (--to / --registry).
    #[command(after_help = "Examples:
  airlock mirror --to registry.corp .
  airlock mirror --to registry.corp --lock airlock.lock
  airlock mirror --to registry.corp -f images.txt --rule docker.io/jenkins=registry.corp/ci/jenkins")]
    Mirror(MirrorArgs),

    /// Be the private registry: serve an archive or a layout made by `pack` in place, or a
    /// read-write store.
    #[command(after_help = "Examples:
  airlock serve bundle.tar                       # read-only, in place, on 127.0.0.1:5000
  airlock serve bundle.tar.zst --store /var/lib/airlock   # unpacked once, then read-only
  airlock serve --store /var/lib/airlock --listen 0.0.0.0:5000 --tls-dir /var/lib/airlock-tls
  airlock push images.tar --to 127.0.0.1:5000    # then fill it
  airlock serve --print-node-config k3s --registry registry.corp:5000 --tls-dir tls/")]
    ///
    /// Implements the OCI distribution spec v1.1 (pull, push, chunked uploads, mounts, tags
    /// and catalog, referrers, sha256 and sha512). Every blob and manifest is verified against
    /// its digest before it is visible. One access log line per request on stderr; request
    /// counters on /metrics (unauthenticated). SIGINT or SIGTERM stops accepting connections
    /// and finishes the requests in flight.
    Serve(ServeArgs),

    /// Enforce the policy: allowed registries, pinned versions, pull secrets, implicit images.
    #[command(after_help = "Examples:
  airlock check --registry registry.corp .
  airlock check --allow-registry registry.corp --deny-latest --require-digest k8s/
  airlock check --format sarif . > airlock.sarif        # for code-scanning UIs")]
    ///
    /// Rules: registry-not-allowed, latest-tag, missing-digest, implicit-image,
    /// global-registry-ignored, jnlp-container-name, missing-pull-secret. Each violation is
    /// printed with file:line:column and a one-line fix. Templated values are counted, not
    /// checked. Exit 0 when clean, 1 on violations, 2 when input could not be read.
    Check(CheckArgs),

    /// Read a live cluster: what every container runs, from where, the policy's verdict, the
    /// lock file's digest, missing pull secrets and pods that cannot pull.
    #[command(after_help = "Examples:
  airlock audit -A                                  # every namespace, as a table
  airlock audit -n shop --lock airlock.lock         # running digests against the lock
  airlock audit -A --pull-secret regcred --format json   # machine-readable")]
    ///
    /// Uses the kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) or, inside a pod, its
    /// service account. Lists are read in pages (--chunk-size). A namespace the credentials
    /// cannot read is named and the rest still audited (exit 2). Exit 1 when a container fails
    /// the policy, runs another digest than the lock's, or cannot pull.
    Audit(crate::cmd::audit::AuditArgs),

    /// Create the registry's pull secret in namespaces and add it to their ServiceAccount's
    /// imagePullSecrets, keeping the entries already there; prints the objects unless --apply.
    #[command(after_help = "Examples:
  airlock secrets --registry registry.corp:5000 --username ci --password-stdin -n shop < pass
  airlock secrets --registry registry.corp:5000 -A --apply       # credentials of docker login
  airlock secrets --registry registry.corp:5000 -l team=shop -o pull-secrets.yaml")]
    ///
    /// The password comes from --password-stdin, --password-file or ~/.docker/config.json (after
    /// `docker login`); it is never printed: standard output shows it REDACTED, -o FILE holds it
    /// (mode 0600). --apply changes only what differs, so running it again changes nothing.
    Secrets(crate::cmd::secrets::SecretsArgs),

    /// Print a shell completion script, generated from these definitions.
    #[command(after_help = "Examples:
  airlock completions bash > /etc/bash_completion.d/airlock
  airlock completions zsh > \"${fpath[1]}/_airlock\"
  airlock completions fish > ~/.config/fish/completions/airlock.fish")]
    Completions(CompletionsArgs),

    /// Write man pages, one per verb (airlock.1, airlock-scan.1, …), generated from these
    /// definitions; without DIR, print airlock(1).
    #[command(after_help = "Examples:
  airlock man /usr/local/share/man/man1
  airlock man | man -l -")]
    Man(ManArgs),

    /// The admission webhook: rewrite the images of pods created at run time (Jenkins agents,
    /// operators' pods, `kubectl debug`) with the mapping `rewrite` uses, and judge them with the
    /// policy `check` applies.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:
  airlock webhook --registry registry.corp:5000 --tls-cert tls.crt --tls-key tls.key
  airlock webhook --registry registry.corp:5000 --tls-dir tls/ --dry-run
  airlock webhook install --registry registry.corp:5000 --pull-secret airlock-pull > webhook.yaml
  airlock webhook uninstall | kubectl delete -f -"
    )]
    ///
    /// Serves HTTPS: /mutate and /validate (admission.k8s.io/v1 AdmissionReview), /healthz,
    /// /readyz, /metrics. Pods (CREATE, and ephemeral containers added through
    /// pods/ephemeralcontainers) get every image pointed at the private registry, the originals
    /// recorded in the airlock.dev/original-images annotation, and the pull secret appended
    /// when that Secret exists in the namespace. A pod or namespace labelled
    /// airlock.dev/ignore=true is left alone.
    Webhook(WebhookArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The directory to write the pages into (it must exist); files of the same names are
    /// replaced.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories to scan, or `-` for standard input.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    #[command(flatten)]
    pub read: crate::inputs::ReadArgs,

    /// When to colour the table.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Debug, clap::Args)]
pub struct RewriteArgs {
    /// Files or directories to rewrite.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Edit the files in place.
    #[arg(long, conflicts_with = "check")]
    pub write: bool,

    /// Change nothing; exit 1 if anything would change (for CI).
    #[arg(long)]
    pub check: bool,

    /// With --write, also rewrite a file that has other hard links: this name gets the new
    /// contents and the other names keep the old ones. Without it such a file is refused.
    #[arg(long, requires = "write")]
    pub split_hard_links: bool,

    /// Also add the settings that move implicit images (a Jenkins cloud's `jnlpregistry`).
    #[arg(long)]
    pub fix_implicit: bool,

    /// Write the digests from a lock file (see `airlock lock`) into references written out whole.
    #[arg(long, value_name = "LOCKFILE", num_args = 0..=1, default_missing_value = crate::lockfile::DEFAULT_LOCK)]
    pub pin: Option<PathBuf>,

    #[command(flatten)]
    pub read: crate::inputs::ReadArgs,

    #[command(flatten)]
    pub config: crate::config::MappingArgs,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or directories to check, or `-` for standard input.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,

    #[command(flatten)]
    pub read: crate::inputs::ReadArgs,

    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// `file:line:column: rule: message`, a fix under each, a summary line.
    Human,
    /// Violations, scan errors and the templated count, machine-readable.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Configuration to take the images from [default: . unless -f is given].
    pub paths: Vec<PathBuf>,

    /// A file listing images, one a line (`#` comments allowed).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub list: Option<PathBuf>,

    /// The lock file to write (entries for other images are kept).
    #[arg(short, long, default_value = crate::lockfile::DEFAULT_LOCK)]
    pub output: PathBuf,

    #[command(flatten)]
    pub read: crate::inputs::ReadArgs,

    #[command(flatten)]
    pub registry: crate::registry::RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub images: crate::registry::ImageArgs,

    /// An OCI layout directory, or an archive of one (`.tar`, `.tar.zst`).
    #[arg(short, long, value_name = "DIR|ARCHIVE")]
    pub output: PathBuf,

    /// Add the image of airlock itself (as `airlock image` builds it from this executable,
    /// which must be statically linked), so the registry and the webhook cross the gap too.
    #[arg(long)]
    pub include_self: bool,

    /// The airlock binary --include-self images [default: this executable].
    #[arg(long, value_name = "PATH", requires = "include_self")]
    pub self_binary: Option<PathBuf>,

    #[command(flatten)]
    pub transfer: crate::cmd::transfer::TransferArgs,

    #[command(flatten)]
    pub registry: crate::registry::RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// An OCI layout directory (created, or added to), or an archive of one (`.tar`, `.tar.zst`).
    #[arg(short, long, value_name = "DIR|ARCHIVE")]
    pub output: PathBuf,

    /// The image's name [default: airlock.invalid/airlock:VERSION, a placeholder: `.invalid`
    /// is no registry; `push` maps it like any other image].
    #[arg(long, value_name = "REF")]
    pub name: Option<String>,

    /// A statically linked airlock for Linux amd64 or arm64 [default: this executable].
    /// Repeat with one binary per architecture for a multi-platform index.
    #[arg(long = "binary", value_name = "PATH")]
    pub binaries: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// An OCI layout directory or archive made by `airlock pack`.
    pub source: PathBuf,

    /// Where an archive is unpacked for the push, in a temporary directory removed afterwards
    /// (default: the system temporary directory, `$TMPDIR`). Never beside the archive, which may
    /// sit on read-only media.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    #[command(flatten)]
    pub transfer: crate::cmd::transfer::TransferArgs,

    #[command(flatten)]
    pub registry: crate::registry::RegistryArgs,

    #[command(flatten)]
    pub config: crate::config::MappingArgs,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,

    /// What to serve: a `.tar` archive (read in place, nothing unpacked), a compressed archive
    /// with --store (unpacked once into it), or an OCI layout directory (served in place). All
    /// read-only: nothing in them is changed.
    #[arg(value_name = "ARCHIVE|LAYOUT")]
    pub layout: Option<PathBuf>,

    /// A layout directory to serve read-write (created if missing): pushes land here. With an
    /// ARCHIVE, the directory it is unpacked into (read-only unless --read-write).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Address to listen on. The default answers only this machine; use 0.0.0.0:5000 to serve
    /// the network.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub listen: std::net::SocketAddr,

    /// Refuse every write (405 UNSUPPORTED), also with --store.
    #[arg(long, conflicts_with = "read_write")]
    pub read_only: bool,

    /// With an ARCHIVE unpacked into --store, accept pushes into that store too.
    #[arg(long, requires = "store")]
    pub read_write: bool,

    /// Upload sessions untouched for this many seconds are removed with their bytes.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub upload_ttl: u64,

    /// After SIGINT or SIGTERM, requests in flight get this many seconds to finish; then the
    /// remaining connections are closed and the server exits.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub shutdown_timeout: u64,

    /// A connection that has not sent a complete request head within this many seconds (a
    /// client trickling headers, or idling between requests) is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub header_read_timeout: u64,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// htpasswd file (bcrypt entries, `htpasswd -B`) of users who may pull.
    #[arg(long, value_name = "FILE")]
    pub htpasswd_read: Option<PathBuf>,

    /// htpasswd file (bcrypt entries) of users who may pull, push and delete.
    #[arg(long, value_name = "FILE")]
    pub htpasswd_write: Option<PathBuf>,

    /// With an htpasswd file, let pulls through without credentials (pushes still need a
    /// write user).
    #[arg(long)]
    pub anonymous_read: bool,

    /// Print the script that points a node's container runtime at this registry (the target
    /// of --registry/--mapping/--rule or the configuration file) and exit.
    #[arg(long, value_name = "RUNTIME", value_parser = ["containerd", "k3s", "rke2", "k0s"])]
    pub print_node_config: Option<String>,

    #[command(flatten)]
    pub config: crate::config::MappingArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum ServeCommand {
    /// List the blobs of a store that no manifest references (dry run), or remove them.
    ///
    /// Every manifest index.json records is walked (index children, configs, layers and the
    /// subjects of referrers); what none of them reaches is unreferenced. --delete takes the
    /// store's exclusive lock, so it refuses to run while a server, push or pack has the store
    /// open, and a server started meanwhile waits for it.
    #[command(after_help = "Examples:
  airlock serve gc --store /var/lib/airlock            # list what would be removed
  airlock serve gc --store /var/lib/airlock --delete   # remove it (stop the server first)")]
    Gc(GcArgs),
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The store (a layout directory) to collect.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,

    /// Remove the unreferenced blobs (without it, only list them).
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    #[command(flatten)]
    pub images: crate::registry::ImageArgs,

    #[command(flatten)]
    pub transfer: crate::cmd::transfer::TransferArgs,

    #[command(flatten)]
    pub registry: crate::registry::RegistryArgs,

    #[command(flatten)]
    pub config: crate::config::MappingArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Grouped by image, with counts and locations.
    Table,
    /// Unique normalised references of images to pull, one a line (input for `pack`).
    List,
    /// Every finding and error, machine-readable.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub action: Option<WebhookAction>,

    #[command(flatten)]
    pub server: WebhookServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// Print (or --apply) everything that runs the webhook in a cluster: Namespace,
    /// ServiceAccount, RBAC, Deployment, PodDisruptionBudget, Service, a generated CA and serving
    /// certificate, and the Mutating/ValidatingWebhookConfiguration.
    Install(WebhookInstallArgs),
    /// Print (or --apply the deletion of) what `install` creates, webhook configurations first.
    Uninstall(WebhookInstallArgs),
}

#[derive(Debug, clap::Args)]
pub struct WebhookServerArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub behaviour: WebhookBehaviour,

    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnforceMode {
    /// Refuse the pod.
    Deny,
    /// Admit it with an admission warning per violation.
    Warn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailurePolicy {
    /// Admit pods unchanged when the webhook cannot be reached.
    #[value(name = "Ignore")]
    Ignore,
    /// Refuse pods when the webhook cannot be reached.
    #[value(name = "Fail")]
    Fail,
}

#[derive(Debug, clap::Args)]
pub struct WebhookInstallArgs {
    /// The namespace the webhook runs in (always excluded from the webhook).
    #[arg(long, short, default_value = "airlock")]
    pub namespace: String,

    /// What kube-apiserver does when the webhook cannot answer: Ignore admits the pod unchanged
    /// (it may then fail to pull), Fail refuses it (nothing starts while the webhook is down).
    #[arg(long, value_enum, default_value_t = FailurePolicy::Ignore)]
    pub failure_policy: FailurePolicy,

    /// How long kube-apiserver waits for an answer (1 to 30).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=30))]
    pub timeout_seconds: i32,

    /// The airlock image the Deployment runs.
    #[arg(
        long,
        value_name = "REF",
        default_value = "airlock.invalid/airlock:0.1.0"
    )]
    pub image: String,

    /// What the installed server does (passed to it as the same flags).
    #[command(flatten)]
    pub behaviour: WebhookBehaviour,

    /// Leave out the generated CA and certificate: no TLS Secret and no caBundle, for a cluster
    /// whose own PKI provides the kubernetes.io/tls Secret airlock-webhook-tls and the caBundle
    /// (the files in deploy/webhook/ are made this way).
    #[arg(long)]
    pub no_certificate: bool,

    /// Send the objects to the cluster (kubeconfig or in-cluster) with server-side apply
    /// instead of printing them; `uninstall --apply` deletes them.
    #[arg(long)]
    pub apply: bool,

    #[command(flatten)]
    pub config: ConfigArgs,
}

/// HTTPS for a server (`serve`, `webhook`): certificate files, or a generated CA.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (leaf first); reloaded when the file changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_dir"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a generated certificate: a CA (ca.pem, kept and reused across restarts)
    /// and a server certificate signed by it are written into DIR; give clients ca.pem.
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,

    /// An extra DNS name or IP address for the generated certificate (besides the listen
    /// address, localhost and 127.0.0.1); repeatable.
    #[arg(long = "tls-san", value_name = "NAME", requires = "tls_dir")]
    pub tls_san: Vec<String>,
}

/// What the webhook does with a review: flags of `airlock webhook`, and of `webhook install`,
/// which passes them on to the server it installs.
#[derive(Debug, clap::Args)]
pub struct WebhookBehaviour {
    /// Also rewrite the pod templates of Deployments, StatefulSets, DaemonSets, Jobs and
    /// CronJobs. Off by default: GitOps tools see a mutated template as drift; the pods those
    /// workloads create are rewritten anyway.
    #[arg(long)]
    pub mutate_templates: bool,

    /// What /validate does with a policy violation.
    #[arg(long, value_enum, default_value_t = EnforceMode::Warn)]
    pub enforce: EnforceMode,

    /// Log and count what would be patched or denied; patch and deny nothing.
    #[arg(long)]
    pub dry_run: bool,
}
