//! Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, one per test.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tempfile::TempDir;

/// How a [`Registry`] is set up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegistryKind {
    /// htpasswd (bcrypt) basic auth with a generated user and password.
    pub auth: bool,
    /// HTTPS with a server certificate for 127.0.0.1/localhost signed by a generated CA.
    pub tls: bool,
}

impl RegistryKind {
    pub const PLAIN: RegistryKind = RegistryKind {
        auth: false,
        tls: false,
    };
    pub const AUTH: RegistryKind = RegistryKind {
        auth: true,
        tls: false,
    };
    pub const TLS: RegistryKind = RegistryKind {
        auth: false,
        tls: true,
    };
    pub const AUTH_TLS: RegistryKind = RegistryKind {
        auth: true,
        tls: true,
    };
}

/// A running registry; the process is killed and its storage removed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    dir: TempDir,
    port: u16,
    kind: RegistryKind,
    creds: Option<(String, String)>,
    ca_pem: Option<PathBuf>,
    cert_dir: Option<PathBuf>,
}

const CANDIDATES: &[&str] = &["/usr/bin/docker-registry", "/usr/sbin/docker-registry"];

/// The registry binary: `$AIRLOCK_TEST_REGISTRY_BIN`, else Debian's path, else `PATH`.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AIRLOCK_TEST_REGISTRY_BIN") {
        return Some(PathBuf::from(p));
    }
    for c in CANDIDATES {
        if Path::new(c).is_file() {
            return Some(PathBuf::from(c));
        }
    }
    crate::skopeo::which("docker-registry")
}

fn random_hex(n_u64: usize) -> String {
    (0..n_u64)
        .map(|i| {
            let mut h = RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            format!("{:016x}", h.finish())
        })
        .collect()
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A YAML scalar for a path (a JSON string is valid YAML).
fn yaml_str(p: &Path) -> Result<String> {
    Ok(serde_json::to_string(
        p.to_str().context("non-UTF-8 temp path")?,
    )?)
}

impl Registry {
    /// Whether the registry binary is installed.
    pub fn available() -> bool {
        binary().is_some()
    }

    /// Starts a registry and waits until it serves `/v2/` (200, or 401 with auth).
    pub fn start(kind: RegistryKind) -> Result<Registry> {
        let bin = binary().context(
            "docker-registry is not installed: run scripts/test, or \
             apt-get install docker-registry skopeo apache2-utils",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("testimages-registry-")
            .tempdir()?;
        let root = dir.path();
        fs::create_dir_all(root.join("storage"))?;

        let creds = if kind.auth {
            let user = "airlock".to_string();
            let pass = random_hex(2);
            // Cost 4 (the minimum) keeps every authenticated request cheap.
            let hash = bcrypt::hash_with_result(&pass, 4)
                .context("bcrypt")?
                .format_for_version(bcrypt::Version::TwoY);
            fs::write(root.join("htpasswd"), format!("{user}:{hash}\n"))?;
            Some((user, pass))
        } else {
            None
        };

        let (ca_pem, cert_dir) = if kind.tls {
            let (ca, cert, key) = make_certs()?;
            let cert_dir = root.join("certs.d");
            fs::create_dir_all(&cert_dir)?;
            // A directory with only ca.crt, for skopeo's --*-cert-dir.
            fs::write(cert_dir.join("ca.crt"), &ca)?;
            fs::write(root.join("ca.pem"), &ca)?;
            fs::write(root.join("server.crt"), format!("{cert}{ca}"))?;
            fs::write(root.join("server.key"), key)?;
            (Some(root.join("ca.pem")), Some(cert_dir))
        } else {
            (None, None)
        };

        let mut last_err = None;
        for _attempt in 0..8 {
            let port = free_port()?;
            let config = root.join("config.yml");
            fs::write(&config, config_yaml(root, port, kind)?)?;
            let log = root.join("registry.log");
            let logf = fs::File::create(&log)?;
            let mut cmd = Command::new(&bin);
            cmd.arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(logf.try_clone()?)
                .stderr(logf);
            // REGISTRY_* variables override the config file.
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(k);
                }
            }
            let mut child = cmd
                .spawn()
                .with_context(|| format!("spawning {}", bin.display()))?;
            match wait_ready(&mut child, port, kind.tls, Duration::from_secs(15)) {
                Ok(()) => {
                    return Ok(Registry {
                        child,
                        dir,
                        port,
                        kind,
                        creds,
                        ca_pem,
                        cert_dir,
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log).unwrap_or_default();
                    let retry = log.contains("address already in use");
                    last_err = Some(e.context(format!("registry log:\n{log}")));
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kind(&self) -> RegistryKind {
        self.kind
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.kind.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// `(user, password)` when started with auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The CA certificate (PEM) that signed the server certificate, when started with TLS.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// A directory holding only `ca.crt`, for skopeo's `--cert-dir` flags, when started with TLS.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.cert_dir.as_deref()
    }

    /// Where the registry keeps its blobs and manifests (`docker/registry/v2/...`).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn skopeo_flags(&self, tls_flag: &str, creds_flag: &str, cert_flag: &str) -> Vec<String> {
        let mut out = Vec::new();
        match &self.cert_dir {
            Some(d) => out.push(format!("{cert_flag}={}", d.display())),
            None => out.push(format!("{tls_flag}=false")),
        }
        if let Some((u, p)) = &self.creds {
            out.push(format!("{creds_flag}={u}:{p}"));
        }
        out
    }

    /// skopeo flags to read from this registry (`--src-tls-verify=false` or `--src-cert-dir`,
    /// plus `--src-creds`).
    pub fn src_args(&self) -> Vec<String> {
        self.skopeo_flags("--src-tls-verify", "--src-creds", "--src-cert-dir")
    }

    /// skopeo flags to write to this registry.
    pub fn dest_args(&self) -> Vec<String> {
        self.skopeo_flags("--dest-tls-verify", "--dest-creds", "--dest-cert-dir")
    }

    /// skopeo flags for `inspect` (`--tls-verify`, `--creds`, `--cert-dir`).
    pub fn inspect_args(&self) -> Vec<String> {
        self.skopeo_flags("--tls-verify", "--creds", "--cert-dir")
    }

    /// Stops the registry now (also done on drop).
    pub fn stop(self) {}
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `GET /v2/` answers 200 or 401 (for TLS: any HTTP answer — a Go TLS listener
/// answers a plain request with 400 "Client sent an HTTP request to an HTTPS server").
fn wait_ready(child: &mut Child, port: u16, tls: bool, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("docker-registry exited with {status}");
        }
        if let Some(code) = probe(addr) {
            if code == 200 || code == 401 || (tls && code == 400) {
                // Still ours? (Another process may have taken the port.)
                if let Some(status) = child.try_wait()? {
                    bail!("docker-registry exited with {status}");
                }
                return Ok(());
            }
            bail!("GET /v2/ on {addr} answered {code}");
        }
        if start.elapsed() > timeout {
            bail!("docker-registry did not answer on {addr} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `GET /v2/` over plain HTTP/1.0; the status code, or None if nothing answered.
fn probe(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    let code = head.strip_prefix("HTTP/1.")?.get(2..5)?;
    code.parse().ok()
}

fn config_yaml(root: &Path, port: u16, kind: RegistryKind) -> Result<String> {
    let mut y = String::new();
    y.push_str("version: 0.1\n");
    y.push_str("log:\n  level: warn\n  accesslog:\n    disabled: true\n");
    y.push_str("storage:\n");
    y.push_str(&format!(
        "  filesystem:\n    rootdirectory: {}\n",
        yaml_str(&root.join("storage"))?
    ));
    y.push_str("  delete:\n    enabled: true\n");
    y.push_str("  maintenance:\n    uploadpurging:\n      enabled: false\n");
    y.push_str("http:\n");
    y.push_str(&format!("  addr: 127.0.0.1:{port}\n"));
    y.push_str(&format!("  secret: {}\n", random_hex(2)));
    if kind.tls {
        y.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            yaml_str(&root.join("server.crt"))?,
            yaml_str(&root.join("server.key"))?
        ));
    }
    if kind.auth {
        y.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: airlock-test\n    path: {}\n",
            yaml_str(&root.join("htpasswd"))?
        ));
    }
    Ok(y)
}

/// A CA and a server certificate for 127.0.0.1 / localhost / ::1: (ca PEM, cert PEM, key PEM).
fn make_certs() -> Result<(String, String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "airlock test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "::1".to_string(),
    ])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}
