//! TLS for `airlock serve`: PEM certificate and key files loaded into a rustls `ServerConfig` on
//! the aws-lc-rs provider (picked explicitly: a process that links rustls with two providers cannot
//! auto-select one), a self-signed CA and server certificate generated for sites without a PKI, and
//! a watcher that reloads rotated certificate files without a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// File names written into the `--tls-dir` directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's private key (mode 0600); kept so a restart reuses the CA the nodes already trust.
pub const CA_KEY_FILE: &str = "ca.key";
/// The server certificate, signed by the CA, reissued on every start (its SANs may change).
pub const SERVER_CERT_FILE: &str = "server.pem";
/// The server's private key (mode 0600).
pub const SERVER_KEY_FILE: &str = "server.key";

/// Why TLS could not be set up; every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate found (expected a \"-----BEGIN CERTIFICATE-----\" block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: invalid PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("{}: no private key found (expected a PKCS#8, PKCS#1 or SEC1 PEM block)", path.display())]
    NoKey { path: PathBuf },
    #[error("{}: holds {count} private keys; exactly one is needed", path.display())]
    SeveralKeys { path: PathBuf, count: usize },
    #[error("certificate {} with key {}: {source}", cert.display(), key.display())]
    Rustls {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("generating a certificate: {source}")]
    Generate { source: rcgen::Error },
    #[error("{}: CA key cannot be used: {source}", path.display())]
    CaKey { path: PathBuf, source: rcgen::Error },
    #[error("subject alternative name {name:?} is not a DNS name or IP address")]
    BadSan { name: String },
}

/// A rustls server configuration on the aws-lc-rs provider, advertising h2 and http/1.1.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let rustls_err = |source| TlsError::Rustls {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rustls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Parses a PEM certificate chain (leaf first) and a PEM private key; the paths only name the
/// files in errors.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    // A key file holding a certificate too (a common "combined PEM") is fine; two keys are not,
    // since which one would be served is a guess.
    let mut keys = Vec::new();
    for item in PrivateKeyDer::pem_slice_iter(key_pem) {
        match item {
            Ok(k) => keys.push(k),
            Err(rustls::pki_types::pem::Error::NoItemsFound) => break,
            Err(e) => {
                return Err(TlsError::Pem {
                    path: key_path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        }
    }
    let count = keys.len();
    let key = match (keys.pop(), count) {
        (Some(k), 1) => k,
        (None, _) => {
            return Err(TlsError::NoKey {
                path: key_path.to_path_buf(),
            });
        }
        _ => {
            return Err(TlsError::SeveralKeys {
                path: key_path.to_path_buf(),
                count,
            });
        }
    };
    server_config(certs, key, cert_path, key_path)
}

/// Loads `--tls-cert` and `--tls-key`.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    server_config_from_pem(&read(cert)?, &read(key)?, cert, key)
}

/// Upper-case, colon-separated SHA-256 of a DER certificate: the form `openssl x509 -fingerprint
/// -sha256` prints, so an operator can compare the two by eye.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let d = Sha256::digest(der);
    let mut s = String::with_capacity(95);
    for (i, b) in d.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// What [`self_signed`] wrote, for the startup message.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The CA certificate nodes must trust (containerd `hosts.toml` `ca = ...`).
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// SHA-256 fingerprint of the CA certificate.
    pub ca_fingerprint: String,
    /// SHA-256 fingerprint of the server certificate.
    pub server_fingerprint: String,
    /// True when the CA already in the directory was reused rather than created.
    pub ca_reused: bool,
    /// The SANs the server certificate carries.
    pub sans: Vec<String>,
    pub config: Arc<ServerConfig>,
}

const CA_COMMON_NAME: &str = "airlock serve CA";

/// The CA's issuing parameters. Rebuilt identically on every start so a CA key found on disk
/// signs certificates that chain to the CA certificate the nodes already trust (the authority key
/// identifier is derived from the key, the issuer name from these parameters).
fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())
        .map_err(|source| TlsError::Generate { source })?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "airlock");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Ten years: the CA is copied to every node; rotating it is an outage.
    let now = SystemTime::now();
    ca.not_before = (now - Duration::from_secs(3600)).into();
    ca.not_after = (now + Duration::from_secs(10 * 365 * 86400)).into();
    Ok(ca)
}

/// The SANs for a server listening on `listen_host` (a host name or IP, no port; empty or an
/// unspecified address such as `0.0.0.0` adds nothing), always with `localhost` and `127.0.0.1`,
/// plus `extra` (`--tls-san`), deduplicated in order.
pub fn server_sans(listen_host: &str, extra: &[String]) -> Result<Vec<String>, TlsError> {
    let host = listen_host.trim_start_matches('[').trim_end_matches(']');
    let mut sans: Vec<String> = Vec::new();
    let unspecified = host
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_unspecified())
        .unwrap_or(false);
    let mut candidates = Vec::new();
    if !host.is_empty() && !unspecified {
        candidates.push(host.to_string());
    }
    candidates.push("localhost".into());
    candidates.push("127.0.0.1".into());
    candidates.extend(extra.iter().cloned());
    for name in candidates {
        let name = name.trim().to_string();
        let ok = name.parse::<std::net::IpAddr>().is_ok()
            || (!name.is_empty()
                && name.len() <= 253
                && name
                    .split('.')
                    .enumerate()
                    .all(|(i, l)| is_dns_label(l) || (i == 0 && l == "*")));
        if !ok {
            return Err(TlsError::BadSan { name });
        }
        if !sans.contains(&name) {
            sans.push(name);
        }
    }
    Ok(sans)
}

fn is_dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// Writes `contents` to `path` through a temporary file and a rename, so a reader (or a crash)
/// never sees half a key; `private` files are created mode 0600 before any byte is written.
fn write_atomic(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-tls-")
        .tempfile_in(dir)
        .map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if private { 0o600 } else { 0o644 };
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.write_all(contents).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Generates (or reuses, when `dir` already holds `ca.pem` and `ca.key`) a CA, issues a server
/// certificate for [`server_sans`]`(listen_host, extra_sans)`, writes all four PEM files into
/// `dir` (keys mode 0600) and returns the server configuration and the fingerprints to print.
pub fn self_signed(
    dir: &Path,
    listen_host: &str,
    extra_sans: &[String],
) -> Result<SelfSigned, TlsError> {
    let gen_err = |source| TlsError::Generate { source };
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);
    let params = ca_params()?;
    let (ca_key, ca_pem, ca_reused) = if ca_cert_path.is_file() && ca_key_path.is_file() {
        let key_pem = std::fs::read_to_string(&ca_key_path).map_err(|source| TlsError::Read {
            path: ca_key_path.clone(),
            source,
        })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|source| TlsError::CaKey {
            path: ca_key_path.clone(),
            source,
        })?;
        let pem = std::fs::read_to_string(&ca_cert_path).map_err(|source| TlsError::Read {
            path: ca_cert_path.clone(),
            source,
        })?;
        (key, pem, true)
    } else {
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let pem = cert.pem();
        // Key first: a CA certificate on disk without its key could never be reused.
        write_atomic(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
        write_atomic(&ca_cert_path, pem.as_bytes(), false)?;
        (key, pem, false)
    };
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| TlsError::Pem {
        path: ca_cert_path.clone(),
        reason: e.to_string(),
    })?;
    let issuer = Issuer::new(params, ca_key);

    let sans = server_sans(listen_host, extra_sans)?;
    let key = KeyPair::generate().map_err(gen_err)?;
    let mut leaf = CertificateParams::new(sans.clone()).map_err(gen_err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, sans[0].as_str());
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = SystemTime::now();
    leaf.not_before = (now - Duration::from_secs(3600)).into();
    // 397 days: the longest validity browsers and most TLS stacks accept for a leaf.
    leaf.not_after = (now + Duration::from_secs(397 * 86400)).into();
    let cert = leaf.signed_by(&key, &issuer).map_err(gen_err)?;

    let server_cert = dir.join(SERVER_CERT_FILE);
    let server_key = dir.join(SERVER_KEY_FILE);
    // The chain served: leaf then CA, so a client given only the fingerprint can still see the CA.
    let chain_pem = format!("{}{}", cert.pem(), ca_pem);
    write_atomic(&server_key, key.serialize_pem().as_bytes(), true)?;
    write_atomic(&server_cert, chain_pem.as_bytes(), false)?;

    let config = server_config(
        vec![cert.der().clone(), ca_der.clone()],
        PrivateKeyDer::try_from(key.serialize_der()).map_err(|reason| TlsError::Pem {
            path: server_key.clone(),
            reason: reason.to_string(),
        })?,
        &server_cert,
        &server_key,
    )?;
    Ok(SelfSigned {
        ca_fingerprint: fingerprint_sha256(&ca_der),
        server_fingerprint: fingerprint_sha256(cert.der()),
        ca_cert: ca_cert_path,
        ca_key: ca_key_path,
        server_cert,
        server_key,
        ca_reused,
        sans,
        config,
    })
}

/// Identity of a file for change detection: modification time and length (a rewrite within the
/// mtime granularity usually changes the length too).
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Polls `cert` and `key` every `interval` and, when either changed, loads them and swaps them
/// into `config` for new connections (open ones keep their session). A pair that does not load,
/// as while a rotation has written the certificate but not yet the key, is logged and retried on
/// the next change; the previous certificate keeps being served meanwhile.
pub fn spawn_reloader(
    config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = (stamp(&cert), stamp(&key));
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = (stamp(&cert), stamp(&key));
            if now == last {
                continue;
            }
            last = now;
            let (c, k) = (cert.clone(), key.clone());
            match tokio::task::spawn_blocking(move || load_server_config(&c, &k)).await {
                Ok(Ok(new)) => {
                    config.reload_from_config(new);
                    tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; still serving the previous one")
                }
                Err(e) => tracing::warn!(error = %e, "TLS reload task failed"),
            }
        }
    })
}
