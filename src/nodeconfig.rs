//! What a node's container runtime needs to pull from `airlock serve`: containerd's
//! `hosts.toml` files, k3s's and RKE2's `registries.yaml`, k0s's containerd drop-in, printed as
//! one shell script by `airlock serve --print-node-config RUNTIME`.
//!
//! Two things nodes need. After `airlock rewrite` the configuration names the private registry
//! itself, so every node must reach it: the scheme (plain HTTP when `serve` runs without TLS),
//! the CA that signed its certificate, or no verification. Pods created at run time with public
//! names (operators, CI agents, before the admission webhook exists) still ask for `docker.io`
//! or `quay.io`, so each public registry gets a mirror entry that sends the pull to the private
//! registry under the name the [`Mapping`] gives the image: the one truth for names, so the
//! node asks for exactly what `push` stored. A mapping prefix (`R/mirror/…`, or keep-host's
//! `R/quay.io/…`) becomes containerd's `override_path` or a k3s `rewrite`.
//!
//! Formats, as documented upstream:
//! - containerd `hosts.toml`, one directory per registry host under `config_path`, `server`,
//!   `[host."URL"]` with `capabilities`, `ca`, `skip_verify`, `override_path`:
//!   <https://github.com/containerd/containerd/blob/main/docs/hosts.md>
//! - k3s `/etc/rancher/k3s/registries.yaml` (RKE2: `/etc/rancher/rke2/registries.yaml`):
//!   `mirrors.<host>.endpoint`, `mirrors.<host>.rewrite` (regular expression to replacement,
//!   k3s v1.21+), `configs.<host>.tls.{ca_file,insecure_skip_verify}`:
//!   <https://docs.k3s.io/installation/private-registry>
//! - k0s runs its own containerd and imports `*.toml` drop-ins from `/etc/k0s/containerd.d/`;
//!   its documented registry example sets the CRI `config_path` to
//!   `/etc/k0s/containerd.d/certs.d` and puts `hosts.toml` files there:
//!   <https://github.com/k0sproject/k0s/blob/main/docs/runtime.md> ("Configuring OCI registry
//!   mirrors").
//!
//! Credentials are never printed: containerd (and so k0s) takes them from the pods'
//! `imagePullSecrets`; for k3s the `auth` block is printed commented out, with the user name
//! only.

// Wired to `airlock serve --print-node-config` together with the serve verb.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use imgref::Reference;
use rewrite::{Mapping, Rule};

/// The public registries a node is told to mirror when the caller names none.
pub const PUBLIC_REGISTRIES: &[&str] = &[
    "docker.io",
    "quay.io",
    "ghcr.io",
    "registry.k8s.io",
    "gcr.io",
    "mcr.microsoft.com",
    "public.ecr.aws",
    "registry.gitlab.com",
    "nvcr.io",
];

/// A repository under each public host, mapped to learn where that host's images live.
const PROBE: &str = "airlock-node-config-probe/x";

/// The node runtimes there is a format for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// containerd with `config_path = "/etc/containerd/certs.d"`.
    Containerd,
    /// k3s's embedded containerd, configured by `/etc/rancher/k3s/registries.yaml`.
    K3s,
    /// RKE2: k3s's format at `/etc/rancher/rke2/registries.yaml`.
    Rke2,
    /// k0s's embedded containerd, configured by drop-ins in `/etc/k0s/containerd.d/`.
    K0s,
}

impl std::str::FromStr for Runtime {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Runtime> {
        match s {
            "containerd" => Ok(Runtime::Containerd),
            "k3s" => Ok(Runtime::K3s),
            "rke2" => Ok(Runtime::Rke2),
            "k0s" => Ok(Runtime::K0s),
            other => bail!("node runtime {other:?} is not one of containerd, k3s, rke2, k0s"),
        }
    }
}

/// How nodes trust the private registry's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Plain HTTP: `serve` runs without TLS.
    Http,
    /// HTTPS with a certificate the node's system store already trusts.
    System,
    /// HTTPS with the CA certificate at `node_path` on each node (the one `serve` writes for its
    /// self-signed certificate); `None` puts it beside the runtime's registry configuration.
    Ca { node_path: Option<String> },
    /// HTTPS without verifying the certificate.
    SkipVerify,
}

/// What to configure nodes for.
#[derive(Debug, Clone)]
pub struct NodeOptions<'a> {
    /// The mapping `rewrite` and `push` used: its target is the registry nodes pull from.
    pub mapping: &'a Mapping,
    pub trust: Trust,
    /// Public registries to mirror (empty: [`PUBLIC_REGISTRIES`]); the hosts of the mapping's
    /// rules are added.
    pub public_hosts: Vec<String>,
    /// A pull user, named (commented out) in k3s's `auth` block; its password is never printed.
    pub username: Option<String>,
}

/// One file to write on each node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    pub path: String,
    pub contents: String,
}

/// Where a public host's images are pulled from instead.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mirror {
    /// The public host, as the runtime names it (`docker.io`).
    upstream: String,
    /// `host[:port]` the mapping sends its images to.
    endpoint: String,
    /// The path the mapping puts in front of the upstream repository, if any.
    prefix: Option<String>,
}

/// Everything the formats have in common, worked out once from the mapping.
struct Plan {
    registry: String,
    trust: Trust,
    mirrors: Vec<Mirror>,
    /// Rules that rename part of a registry, which a per-host mirror cannot express.
    partial_rules: Vec<Rule>,
    username: Option<String>,
}

impl Plan {
    fn new(opts: &NodeOptions) -> Result<Plan> {
        let registry = opts.mapping.target_host().to_string();
        let mut hosts: Vec<String> = if opts.public_hosts.is_empty() {
            PUBLIC_REGISTRIES.iter().map(|h| h.to_string()).collect()
        } else {
            opts.public_hosts.clone()
        };
        let mut partial_rules = Vec::new();
        for rule in opts.mapping.rules() {
            let from = rule.from.trim_end_matches('/');
            let host = from.split('/').next().unwrap_or(from);
            hosts.push(host.to_string());
            if from.contains('/') {
                partial_rules.push(rule.clone());
            }
        }
        let mut seen = BTreeSet::new();
        let mut mirrors = Vec::new();
        for host in hosts {
            let upstream = upstream_host(&host)?;
            if upstream == registry || !seen.insert(upstream.clone()) {
                continue;
            }
            let probe = Reference::parse(&format!("{upstream}/{PROBE}"))
                .with_context(|| format!("registry host {host:?}"))?;
            let mapped = opts
                .mapping
                .map(&probe)
                .with_context(|| format!("mapping {upstream} for nodes"))?;
            let name = mapped.name();
            let Some(base) = name.strip_suffix(&format!("/{PROBE}")) else {
                bail!("{upstream}: the mapping renames {probe} to {name}, not under one path");
            };
            let (endpoint, prefix) = match base.split_once('/') {
                Some((endpoint, prefix)) => (endpoint, Some(prefix.to_string())),
                None => (base, None),
            };
            mirrors.push(Mirror {
                upstream,
                endpoint: endpoint.to_string(),
                prefix,
            });
        }
        Ok(Plan {
            registry,
            trust: opts.trust.clone(),
            mirrors,
            partial_rules,
            username: opts.username.clone(),
        })
    }

    /// The URL scheme for `host`: the private registry's per its trust; any other endpoint a
    /// rule names is assumed to be HTTPS with a trusted certificate.
    fn scheme(&self, host: &str) -> &'static str {
        if host == self.registry && self.trust == Trust::Http {
            "http"
        } else {
            "https"
        }
    }

    fn ca_path(&self, default: String) -> Option<String> {
        match &self.trust {
            Trust::Ca { node_path } => Some(node_path.clone().unwrap_or(default)),
            _ => None,
        }
    }

    /// Comment lines naming the rules no mirror can follow, so nobody expects them to.
    fn partial_rule_notes(&self) -> String {
        let mut out = String::new();
        for rule in &self.partial_rules {
            let _ = writeln!(
                out,
                "# Not mirrored: the rule {} -> {} renames part of a registry, which a node mirror \
                 cannot; such pods must use the names `airlock rewrite` writes.",
                one_line(&rule.from),
                one_line(&rule.to)
            );
        }
        out
    }
}

/// A registry host as the runtimes name it: lower case, Docker Hub's legacy name as `docker.io`.
fn upstream_host(host: &str) -> Result<String> {
    let host = host.trim().to_ascii_lowercase();
    let probe = Reference::parse(&format!("{host}/{PROBE}"))
        .ok()
        .filter(|r| r.domain() == Some(host.as_str()));
    match probe {
        Some(r) => Ok(r.registry().to_string()),
        None => bail!(
            "{:?} is not a registry host (host[:port], with a dot or a port, or localhost)",
            one_line(&host)
        ),
    }
}

/// A string quoted for TOML (a basic string) and YAML (a double-quoted scalar) alike: JSON's
/// string syntax is a subset of both.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A value for a comment: no line breaks can end the comment early.
fn one_line(s: &str) -> String {
    s.escape_debug().to_string()
}

/// The files `runtime` reads, in the order they are written.
pub fn node_files(runtime: Runtime, opts: &NodeOptions) -> Result<Vec<NodeFile>> {
    let plan = Plan::new(opts)?;
    Ok(match runtime {
        Runtime::Containerd => hosts_files(&plan, "/etc/containerd/certs.d"),
        Runtime::K0s => {
            let certs = "/etc/k0s/containerd.d/certs.d";
            let mut files = vec![NodeFile {
                path: "/etc/k0s/containerd.d/cri-registry.toml".into(),
                contents: k0s_drop_in(certs),
            }];
            files.extend(hosts_files(&plan, certs));
            files
        }
        Runtime::K3s => vec![registries_yaml(&plan, "/etc/rancher/k3s")],
        Runtime::Rke2 => vec![registries_yaml(&plan, "/etc/rancher/rke2")],
    })
}

/// The files as a POSIX shell script to run as root on each node. Files go under
/// `$AIRLOCK_NODE_ROOT` (default `/`); an existing file that differs is never overwritten: the
/// new one is written beside it as `FILE.airlock-new`, to merge by hand (a `registries.yaml`
/// often holds other registries' settings).
pub fn node_config(runtime: Runtime, opts: &NodeOptions) -> Result<String> {
    let files = node_files(runtime, opts)?;
    let plan = Plan::new(opts)?;
    let mut s = String::new();
    let name = match runtime {
        Runtime::Containerd => "containerd",
        Runtime::K3s => "k3s",
        Runtime::Rke2 => "RKE2",
        Runtime::K0s => "k0s",
    };
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# airlock: {name} configuration for pulling from {}. Run as root on every node that runs pods.",
        plan.registry
    );
    s.push_str(
        "# Files go under $AIRLOCK_NODE_ROOT (default /). A file that exists and differs is kept;\n\
         # the new one is written beside it as FILE.airlock-new, to merge by hand.\n\
         set -eu\n\
         root=\"${AIRLOCK_NODE_ROOT:-}\"\n\
         put() {\n\
         \x20 dest=\"$root$1\"\n\
         \x20 mkdir -p \"$(dirname \"$dest\")\"\n\
         \x20 tmp=\"$dest.airlock-tmp.$$\"\n\
         \x20 cat > \"$tmp\"\n\
         \x20 if [ -e \"$dest\" ] && ! cmp -s \"$tmp\" \"$dest\"; then\n\
         \x20   mv \"$tmp\" \"$dest.airlock-new\"\n\
         \x20   echo \"airlock: $dest exists and differs: wrote $dest.airlock-new, merge it by hand\" >&2\n\
         \x20 else\n\
         \x20   mv \"$tmp\" \"$dest\"\n\
         \x20   echo \"airlock: wrote $dest\" >&2\n\
         \x20 fi\n\
         }\n",
    );
    for file in &files {
        // Paths are built from validated host names: no quote can occur in them.
        let _ = write!(
            s,
            "put '{}' <<'AIRLOCK_EOF'\n{}AIRLOCK_EOF\n",
            file.path, file.contents
        );
    }
    let ca_default = match runtime {
        Runtime::Containerd => containerd_ca("/etc/containerd/certs.d", &plan.registry),
        Runtime::K0s => containerd_ca("/etc/k0s/containerd.d/certs.d", &plan.registry),
        Runtime::K3s => "/etc/rancher/k3s/airlock-ca.crt".into(),
        Runtime::Rke2 => "/etc/rancher/rke2/airlock-ca.crt".into(),
    };
    if let Some(ca) = plan.ca_path(ca_default) {
        let _ = writeln!(
            s,
            "[ -f \"$root\"{} ] || echo \"airlock: copy the registry's CA certificate to {}\" >&2",
            quote(&ca).replace('$', "\\$").replace('`', "\\`"),
            one_line(&ca).replace(['"', '$', '`'], "")
        );
    }
    s.push_str(match runtime {
        Runtime::Containerd => {
            "# containerd reads certs.d only with config_path set in /etc/containerd/config.toml:\n\
             #   containerd 2.x: [plugins.\"io.containerd.cri.v1.images\".registry]\n\
             #   containerd 1.x: [plugins.\"io.containerd.grpc.v1.cri\".registry]\n\
             #   config_path = \"/etc/containerd/certs.d\"\n\
             # Changes under certs.d need no restart. Credentials come from imagePullSecrets.\n"
        }
        Runtime::K0s => {
            "# k0s imports /etc/k0s/containerd.d/*.toml while /etc/k0s/containerd.toml is k0s-managed;\n\
             # check /run/k0s/containerd-cri.toml. Credentials come from imagePullSecrets.\n"
        }
        Runtime::K3s => "# Restart k3s to apply: systemctl restart k3s (k3s-agent on agents).\n",
        Runtime::Rke2 => {
            "# Restart RKE2 to apply: systemctl restart rke2-server (rke2-agent on agents).\n"
        }
    });
    Ok(s)
}

fn containerd_ca(certs: &str, registry: &str) -> String {
    format!("{certs}/{registry}/ca.crt")
}

/// k0s's drop-in pointing its CRI plugin at `certs` (containerd 2.x, config version 3, as k0s
/// ships since 1.32; older k0s with containerd 1.7 wants `version = 2` and
/// `[plugins."io.containerd.grpc.v1.cri".registry]`).
fn k0s_drop_in(certs: &str) -> String {
    format!(
        "# Written by airlock: containerd reads registry hosts from {certs}.\n\
         version = 3\n\n\
         [plugins.\"io.containerd.cri.v1.images\".registry]\n\
         config_path = {}\n",
        quote(certs)
    )
}

/// One `[host."URL"]` table with the trust settings for its host.
fn host_table(plan: &Plan, certs: &str, host: &str, path: Option<&str>, caps: &str) -> String {
    let scheme = plan.scheme(host);
    let mut s = match path {
        // override_path: the URL's path is the API root, so the mapping's prefix goes after
        // /v2 (containerd otherwise appends /v2 itself).
        Some(p) => format!(
            "[host.{}]\n  capabilities = {caps}\n  override_path = true\n",
            quote(&format!("{scheme}://{host}/v2/{p}"))
        ),
        None => format!(
            "[host.{}]\n  capabilities = {caps}\n",
            quote(&format!("{scheme}://{host}"))
        ),
    };
    if host == plan.registry {
        if let Some(ca) = plan.ca_path(containerd_ca(certs, &plan.registry)) {
            let _ = writeln!(s, "  ca = {}", quote(&ca));
        }
        if plan.trust == Trust::SkipVerify {
            s.push_str("  skip_verify = true\n");
        }
    }
    s
}

/// containerd's `hosts.toml` for the private registry and one per mirrored public host.
fn hosts_files(plan: &Plan, certs: &str) -> Vec<NodeFile> {
    let mut files = Vec::new();
    let r = &plan.registry;
    files.push(NodeFile {
        path: format!("{certs}/{r}/hosts.toml"),
        contents: format!(
            "# Written by airlock: how this node reaches the private registry {r}.\n\
             server = {}\n\n{}",
            quote(&format!("{}://{r}", plan.scheme(r))),
            host_table(plan, certs, r, None, r#"["pull", "resolve", "push"]"#)
        ),
    });
    for m in &plan.mirrors {
        let server = match m.upstream.as_str() {
            "docker.io" => "https://registry-1.docker.io".to_string(),
            other => format!("https://{other}"),
        };
        let renamed = match &m.prefix {
            Some(p) => format!("{}/{p}/…", m.endpoint),
            None => format!("{}/…", m.endpoint),
        };
        files.push(NodeFile {
            path: format!("{certs}/{}/hosts.toml", m.upstream),
            contents: format!(
                "# Written by airlock: {up}/… is pulled from {renamed}, the name the mapping gives it;\n\
                 # the public server stays as the fallback containerd always keeps.\n\
                 {notes}server = {}\n\n{}",
                quote(&server),
                host_table(
                    plan,
                    certs,
                    &m.endpoint,
                    m.prefix.as_deref(),
                    r#"["pull", "resolve"]"#
                ),
                up = m.upstream,
                notes = plan.partial_rule_notes(),
            ),
        });
    }
    files
}

/// k3s's (and RKE2's) `registries.yaml`, in `dir`.
fn registries_yaml(plan: &Plan, dir: &str) -> NodeFile {
    let r = &plan.registry;
    let mut s = format!(
        "# Written by airlock: pull from the private registry {r}, and the public registries' images\n\
         # from it under the names the mapping gives them.\n"
    );
    s.push_str(&plan.partial_rule_notes());
    s.push_str("mirrors:\n");
    let endpoint = |host: &str| quote(&format!("{}://{host}", plan.scheme(host)));
    let _ = write!(
        s,
        "  {}:\n    endpoint:\n      - {}\n",
        quote(r),
        endpoint(r)
    );
    for m in &plan.mirrors {
        let _ = write!(
            s,
            "  {}:\n    endpoint:\n      - {}\n",
            quote(&m.upstream),
            endpoint(&m.endpoint)
        );
        if let Some(p) = &m.prefix {
            // Go's regexp replacement: the whole upstream repository, behind the prefix.
            let _ = write!(
                s,
                "    rewrite:\n      {}: {}\n",
                quote("^(.*)$"),
                quote(&format!("{p}/$1"))
            );
        }
    }
    let tls = match plan.ca_path(format!("{dir}/airlock-ca.crt")) {
        Some(ca) => Some(format!("    tls:\n      ca_file: {}\n", quote(&ca))),
        None if plan.trust == Trust::SkipVerify => {
            Some("    tls:\n      insecure_skip_verify: true\n".to_string())
        }
        None => None,
    };
    // The auth block is printed commented out: airlock never prints a password, and a
    // username without one would make every pull fail to authenticate.
    let auth = plan.username.as_ref().map(|user| {
        format!(
            "    auth:\n      username: {}\n      password: the password of {}\n",
            quote(user),
            one_line(user)
        )
    });
    let commented = |block: &str| -> String { block.lines().map(|l| format!("# {l}\n")).collect() };
    let head = format!("configs:\n  {}:\n", quote(r));
    match (tls, auth) {
        (Some(tls), auth) => {
            s.push_str(&head);
            s.push_str(&auth.map(|a| commented(&a)).unwrap_or_default());
            s.push_str(&tls);
        }
        (None, Some(auth)) => s.push_str(&commented(&(head + &auth))),
        (None, None) => {}
    }
    NodeFile {
        path: format!("{dir}/registries.yaml"),
        contents: s,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::{Command, Stdio};

    use rewrite::Mode;
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    fn mapping(target: &str, mode: Mode, rules: &[(&str, &str)]) -> Mapping {
        let rules = rules
            .iter()
            .map(|(from, to)| Rule {
                from: from.to_string(),
                to: to.to_string(),
            })
            .collect();
        Mapping::new(target, mode, rules).unwrap()
    }

    fn opts(mapping: &Mapping, trust: Trust) -> NodeOptions<'_> {
        NodeOptions {
            mapping,
            trust,
            public_hosts: vec![],
            username: None,
        }
    }

    fn file<'f>(files: &'f [NodeFile], path: &str) -> &'f str {
        &files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path} in {files:#?}"))
            .contents
    }

    /// TOML documents parsed by an independent parser (Python's tomllib), as JSON; one
    /// process for them all.
    fn toml_all(texts: &[&str]) -> Vec<Value> {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import json, sys, tomllib\n\
                 print(json.dumps([tomllib.loads(t) for t in json.load(sys.stdin)]))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 (3.11 or later, for tomllib) parses TOML in these tests");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&serde_json::to_vec(texts).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "not TOML: {}\n{texts:#?}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn toml(text: &str) -> Value {
        toml_all(&[text]).remove(0)
    }

    /// Every file of `files`, parsed, by path.
    fn parsed(files: &[NodeFile]) -> BTreeMap<String, Value> {
        let texts: Vec<&str> = files.iter().map(|f| f.contents.as_str()).collect();
        files
            .iter()
            .map(|f| f.path.clone())
            .zip(toml_all(&texts))
            .collect()
    }

    /// k3s's registries.yaml schema (the fields airlock writes), unknown keys refused.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Registries {
        mirrors: BTreeMap<String, K3sMirror>,
        #[serde(default)]
        configs: BTreeMap<String, K3sConfig>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct K3sMirror {
        endpoint: Vec<String>,
        #[serde(default)]
        rewrite: BTreeMap<String, String>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct K3sConfig {
        tls: Option<K3sTls>,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct K3sTls {
        ca_file: Option<String>,
        insecure_skip_verify: Option<bool>,
    }

    fn registries(files: &[NodeFile]) -> Registries {
        serde_saphyr::from_str(file(files, "/etc/rancher/k3s/registries.yaml")).unwrap()
    }

    /// The URL containerd requests for `image`'s manifest with `certs`' hosts.toml files, the
    /// way its resolver builds it: the first `[host]` of the image's host directory (its own
    /// host's when there is none), `/v2` appended unless `override_path`.
    fn containerd_request(files: &BTreeMap<String, Value>, certs: &str, image: &str) -> String {
        let r = Reference::parse(image).unwrap();
        let doc = &files[&format!("{certs}/{}/hosts.toml", r.registry())];
        let (url, host) = doc["host"].as_object().unwrap().iter().next().unwrap();
        let root = if host["override_path"] == true {
            url.clone()
        } else {
            format!("{url}/v2")
        };
        format!("{root}/{}/manifests/{}", r.repository(), r.pull_address())
    }

    /// The URL k3s requests: the mirror's first endpoint, the rewrite applied to the repository
    /// (only the whole-repository form airlock writes is simulated, and asserted to be it).
    fn k3s_request(files: &[NodeFile], image: &str) -> String {
        let r = Reference::parse(image).unwrap();
        let reg = registries(files);
        let mirror = &reg.mirrors[r.registry()];
        let repository = match mirror.rewrite.iter().next() {
            None => r.repository(),
            Some((pattern, replacement)) => {
                assert_eq!(pattern, "^(.*)$");
                assert_eq!(mirror.rewrite.len(), 1);
                replacement.replace("$1", &r.repository())
            }
        };
        format!(
            "{}/v2/{repository}/manifests/{}",
            mirror.endpoint[0],
            r.pull_address()
        )
    }

    /// What the registry must be asked for: the mapped name, over the registry's scheme.
    fn expected_request(m: &Mapping, scheme: &str, image: &str) -> String {
        let mapped = m.map(&Reference::parse(image).unwrap()).unwrap();
        let (host, repository) = mapped
            .name()
            .split_once('/')
            .map(|(h, r)| (h.to_string(), r.to_string()))
            .unwrap();
        format!(
            "{scheme}://{host}/v2/{repository}/manifests/{}",
            mapped.pull_address()
        )
    }

    const IMAGES: &[&str] = &[
        "nginx:1.27",
        "docker.io/jenkins/inbound-agent:3283.v92c105e0f819-1",
        "index.docker.io/library/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "quay.io/k0sproject/coredns:1.7.0",
        "ghcr.io/fluxcd/source-controller:v1.4.1",
        "registry.k8s.io/pause:3.10",
        "localhost:5000/team/app:1",
    ];

    #[test]
    fn node_mirror_pulls_exactly_what_the_mapping_names() {
        // The bug this pins: a node mirror that asks the private registry for another name
        // than `push` stored (a prefix dropped, /v2 doubled, keep-host's host missing) makes
        // every run-time pod fail with ImagePullBackOff while `rewrite`d ones work.
        let cases = [
            mapping("reg.example:5000", Mode::ReplaceHost, &[]),
            mapping("reg.example:5000/mirror/hub", Mode::ReplaceHost, &[]),
            mapping("10.0.0.5:30500", Mode::KeepHost, &[]),
            mapping("reg.example/airgap", Mode::KeepHost, &[]),
            mapping(
                "reg.example:5000",
                Mode::ReplaceHost,
                &[("quay.io", "reg.example:5000/quay")],
            ),
        ];
        for m in &cases {
            for trust in [Trust::Http, Trust::System] {
                let scheme = if trust == Trust::Http {
                    "http"
                } else {
                    "https"
                };
                let mut o = opts(m, trust);
                o.public_hosts = PUBLIC_REGISTRIES
                    .iter()
                    .map(|h| h.to_string())
                    .chain(["localhost:5000".to_string()])
                    .collect();
                let containerd = parsed(&node_files(Runtime::Containerd, &o).unwrap());
                let k0s = parsed(&node_files(Runtime::K0s, &o).unwrap());
                let k3s = node_files(Runtime::K3s, &o).unwrap();
                for image in IMAGES {
                    let want = expected_request(m, scheme, image);
                    let ctx = format!("{m} {image}");
                    assert_eq!(
                        containerd_request(&containerd, "/etc/containerd/certs.d", image),
                        want,
                        "containerd {ctx}"
                    );
                    assert_eq!(
                        containerd_request(&k0s, "/etc/k0s/containerd.d/certs.d", image),
                        want,
                        "k0s {ctx}"
                    );
                    assert_eq!(k3s_request(&k3s, image), want, "k3s {ctx}");
                }
                // The rewritten configuration names the registry itself: reachable directly.
                let own = format!("{}/library/nginx:1", m.target());
                let want = expected_request(m, scheme, &own);
                assert_eq!(
                    containerd_request(&containerd, "/etc/containerd/certs.d", &own),
                    want
                );
                assert_eq!(k3s_request(&k3s, &own), want);
            }
        }
    }

    #[test]
    fn containerd_hosts_toml_with_prefix_and_ca() {
        let m = mapping("reg.example:5000/mirror", Mode::ReplaceHost, &[]);
        let mut o = opts(&m, Trust::Ca { node_path: None });
        o.public_hosts = vec!["docker.io".into(), "quay.io".into()];
        let files = node_files(Runtime::Containerd, &o).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/containerd/certs.d/reg.example:5000/hosts.toml",
                "/etc/containerd/certs.d/docker.io/hosts.toml",
                "/etc/containerd/certs.d/quay.io/hosts.toml",
            ]
        );
        let ca = "/etc/containerd/certs.d/reg.example:5000/ca.crt";
        assert_eq!(
            file(&files, "/etc/containerd/certs.d/docker.io/hosts.toml"),
            format!(
                "# Written by airlock: docker.io/… is pulled from reg.example:5000/mirror/…, the name the mapping gives it;\n\
                 # the public server stays as the fallback containerd always keeps.\n\
                 server = \"https://registry-1.docker.io\"\n\n\
                 [host.\"https://reg.example:5000/v2/mirror\"]\n\
                 \x20 capabilities = [\"pull\", \"resolve\"]\n\
                 \x20 override_path = true\n\
                 \x20 ca = \"{ca}\"\n"
            )
        );
        assert_eq!(
            toml(file(
                &files,
                "/etc/containerd/certs.d/reg.example:5000/hosts.toml"
            )),
            json!({
                "server": "https://reg.example:5000",
                "host": {"https://reg.example:5000": {
                    "capabilities": ["pull", "resolve", "push"],
                    "ca": ca,
                }},
            })
        );
        assert_eq!(
            toml(file(&files, "/etc/containerd/certs.d/quay.io/hosts.toml"))["server"],
            "https://quay.io"
        );
    }

    #[test]
    fn skip_verify_and_plain_http_are_per_registry_only() {
        let m = mapping("10.0.0.5:30500", Mode::ReplaceHost, &[]);
        let files = node_files(Runtime::Containerd, &opts(&m, Trust::SkipVerify)).unwrap();
        for (path, doc) in parsed(&files) {
            let host = &doc["host"]["https://10.0.0.5:30500"];
            assert_eq!(host["skip_verify"], true, "{path}");
            assert!(host.get("ca").is_none());
            assert!(host.get("override_path").is_none());
        }
        let k3s = registries(&node_files(Runtime::K3s, &opts(&m, Trust::SkipVerify)).unwrap());
        assert_eq!(
            k3s.configs["10.0.0.5:30500"].tls,
            Some(K3sTls {
                ca_file: None,
                insecure_skip_verify: Some(true)
            })
        );

        let http = node_files(Runtime::Containerd, &opts(&m, Trust::Http)).unwrap();
        let doc = toml(file(
            &http,
            "/etc/containerd/certs.d/10.0.0.5:30500/hosts.toml",
        ));
        assert_eq!(doc["server"], "http://10.0.0.5:30500");
        assert!(
            doc["host"]["http://10.0.0.5:30500"]
                .get("skip_verify")
                .is_none()
        );
        let k3s = registries(&node_files(Runtime::K3s, &opts(&m, Trust::Http)).unwrap());
        assert!(k3s.configs.is_empty(), "plain HTTP needs no tls block");
        assert_eq!(k3s.mirrors["docker.io"].endpoint, ["http://10.0.0.5:30500"]);
    }

    #[test]
    fn k3s_registries_yaml_has_rewrite_for_prefix_and_ca_file() {
        let m = mapping("reg.example:5000/airgap", Mode::KeepHost, &[]);
        let mut o = opts(&m, Trust::Ca { node_path: None });
        o.public_hosts = vec!["docker.io".into(), "registry.k8s.io".into()];
        let files = node_files(Runtime::K3s, &o).unwrap();
        assert_eq!(
            file(&files, "/etc/rancher/k3s/registries.yaml"),
            "# Written by airlock: pull from the private registry reg.example:5000, and the public registries' images\n\
             # from it under the names the mapping gives them.\n\
             mirrors:\n\
             \x20 \"reg.example:5000\":\n\
             \x20   endpoint:\n\
             \x20     - \"https://reg.example:5000\"\n\
             \x20 \"docker.io\":\n\
             \x20   endpoint:\n\
             \x20     - \"https://reg.example:5000\"\n\
             \x20   rewrite:\n\
             \x20     \"^(.*)$\": \"airgap/docker.io/$1\"\n\
             \x20 \"registry.k8s.io\":\n\
             \x20   endpoint:\n\
             \x20     - \"https://reg.example:5000\"\n\
             \x20   rewrite:\n\
             \x20     \"^(.*)$\": \"airgap/registry.k8s.io/$1\"\n\
             configs:\n\
             \x20 \"reg.example:5000\":\n\
             \x20   tls:\n\
             \x20     ca_file: \"/etc/rancher/k3s/airlock-ca.crt\"\n"
        );
        registries(&files);
        let rke2 = node_files(Runtime::Rke2, &o).unwrap();
        assert_eq!(rke2[0].path, "/etc/rancher/rke2/registries.yaml");
        assert!(
            rke2[0]
                .contents
                .contains("ca_file: \"/etc/rancher/rke2/airlock-ca.crt\"")
        );
    }

    #[test]
    fn k0s_drop_in_points_containerd_at_the_files_it_writes() {
        let m = mapping("reg.example:5000", Mode::ReplaceHost, &[]);
        let o = opts(
            &m,
            Trust::Ca {
                node_path: Some("/etc/pki/airlock \"ca\".crt".into()),
            },
        );
        let files = node_files(Runtime::K0s, &o).unwrap();
        let docs = parsed(&files);
        let drop_in = &docs["/etc/k0s/containerd.d/cri-registry.toml"];
        assert_eq!(drop_in["version"], 3);
        let certs = drop_in["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"]
            .as_str()
            .unwrap();
        for f in &files[1..] {
            assert!(f.path.starts_with(&format!("{certs}/")), "{}", f.path);
            assert!(f.path.ends_with("/hosts.toml"));
            // A quote in a path is escaped, not the end of the string.
            assert_eq!(
                docs[&f.path]["host"]["https://reg.example:5000"]["ca"],
                "/etc/pki/airlock \"ca\".crt"
            );
        }
        assert_eq!(files.len(), 2 + PUBLIC_REGISTRIES.len());
    }

    #[test]
    fn partial_rules_are_named_not_silently_mirrored() {
        let m = mapping(
            "reg.example:5000",
            Mode::ReplaceHost,
            &[("docker.io/jenkins", "reg.example:5000/ci/jenkins")],
        );
        for runtime in [Runtime::Containerd, Runtime::K3s] {
            let files = node_files(runtime, &opts(&m, Trust::System)).unwrap();
            assert!(
                files.iter().any(|f| f.contents.contains(
                    "# Not mirrored: the rule docker.io/jenkins -> reg.example:5000/ci/jenkins"
                )),
                "{runtime:?}"
            );
        }
    }

    #[test]
    fn a_public_host_that_is_not_a_host_is_refused() {
        let m = mapping("reg.example:5000", Mode::ReplaceHost, &[]);
        for bad in ["docker.io/library", "nginx", "", "quay.io\n[host]"] {
            let mut o = opts(&m, Trust::System);
            o.public_hosts = vec![bad.into()];
            let err = node_files(Runtime::Containerd, &o).unwrap_err().to_string();
            assert!(err.contains("is not a registry host"), "{bad:?}: {err}");
        }
        assert!("cri-o".parse::<Runtime>().is_err());
        assert_eq!("k0s".parse::<Runtime>().unwrap(), Runtime::K0s);
    }

    #[test]
    fn no_password_is_ever_printed() {
        let m = mapping("reg.example:5000", Mode::ReplaceHost, &[]);
        for trust in [Trust::System, Trust::Ca { node_path: None }] {
            let mut o = opts(&m, trust.clone());
            o.username = Some("puller".into());
            let files = node_files(Runtime::K3s, &o).unwrap();
            let text = &files[0].contents;
            let user_line = text
                .lines()
                .find(|l| l.contains("username:"))
                .expect("the user is named");
            assert!(user_line.trim_start().starts_with('#'), "{text}");
            assert!(user_line.ends_with("username: \"puller\""), "{text}");
            for line in text
                .lines()
                .filter(|l| l.contains("auth:") || l.contains("password"))
            {
                assert!(line.trim_start().starts_with('#'), "{line}");
            }
            // Still the schema, and still the CA when there is one.
            let reg = registries(&files);
            assert_eq!(
                reg.configs
                    .get("reg.example:5000")
                    .and_then(|c| c.tls.as_ref())
                    .is_some(),
                trust != Trust::System,
                "{text}"
            );
        }
    }

    fn run_script(script: &str, root: &std::path::Path) -> std::process::Output {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("AIRLOCK_NODE_ROOT", root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    #[test]
    fn node_script_writes_every_file_and_never_clobbers_one() {
        let m = mapping("reg.example:5000/mirror", Mode::KeepHost, &[]);
        for runtime in [Runtime::Containerd, Runtime::K3s, Runtime::K0s] {
            let o = opts(&m, Trust::Ca { node_path: None });
            let script = node_config(runtime, &o).unwrap();
            let files = node_files(runtime, &o).unwrap();
            let root = tempfile::tempdir().unwrap();
            let at = |p: &str| root.path().join(p.trim_start_matches('/'));
            let out = run_script(&script, root.path());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("copy the registry's CA certificate"),
                "{stderr}"
            );
            for f in &files {
                assert_eq!(std::fs::read_to_string(at(&f.path)).unwrap(), f.contents);
            }
            // Twice is the same as once.
            let out = run_script(&script, root.path());
            assert!(!String::from_utf8_lossy(&out.stderr).contains("differs"));
            // A file the site already has (other registries' settings) is kept whole.
            let first = at(&files[0].path);
            std::fs::write(&first, "# the site's own\n").unwrap();
            let out = run_script(&script, root.path());
            assert!(String::from_utf8_lossy(&out.stderr).contains("differs"));
            assert_eq!(
                std::fs::read_to_string(&first).unwrap(),
                "# the site's own\n"
            );
            let new = format!("{}.airlock-new", first.display());
            assert_eq!(std::fs::read_to_string(new).unwrap(), files[0].contents);
            let leftovers: Vec<_> = walk(root.path())
                .into_iter()
                .filter(|p| p.to_string_lossy().contains("airlock-tmp"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
