//! Exit codes, one meaning each, documented in the README and `airlock --help`.

use std::process::ExitCode;

/// What a run ended with. The numbers are part of the interface: scripts and CI depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything was read and nothing is wrong.
    Ok = 0,
    /// Findings that fail a check or policy violations.
    Violations = 1,
    /// A usage error, or input that could not be read or parsed.
    BadInput = 2,
    /// A registry or network failure.
    Registry = 3,
}

impl Exit {
    /// The exit code of an error that ended a verb: the first library error in its chain (the
    /// outermost, as contexts only add words) says which; an error no library raised (a flag
    /// checked by the binary, a file it read) is about input.
    pub fn from_error(err: &anyhow::Error) -> Exit {
        err.chain().find_map(classify).unwrap_or(Exit::BadInput)
    }
}

/// The exit code of one library error, or `None` for an error type no library defines. One
/// downcast per library error type: when a crate is split or renamed, this is the one place to
/// retarget.
fn classify(err: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if let Some(e) = err.downcast_ref::<oci::Error>() {
        return Some(oci_exit(e));
    }
    if let Some(e) = err.downcast_ref::<cluster::Error>() {
        return Some(if e.is_network() {
            Exit::Registry
        } else {
            Exit::BadInput
        });
    }
    if err.is::<imgref::ParseError>()
        || err.is::<rewrite::MappingError>()
        || err.is::<std::io::Error>()
    {
        return Some(Exit::BadInput);
    }
    None
}

/// Talking to a registry, or what it served, is 3; what is wrong on this side — a local file or
/// layout, the client's configuration, credentials that cannot be used — is 2.
fn oci_exit(e: &oci::Error) -> Exit {
    use oci::Error as E;
    match e {
        E::Status { .. }
        | E::Unauthorized { .. }
        | E::ManifestNotFound { .. }
        | E::BlobNotFound { .. }
        | E::DigestMismatch { .. }
        | E::SizeMismatch { .. }
        | E::Network { .. }
        | E::RetriesExhausted { .. }
        | E::InvalidManifest { .. }
        | E::UnsupportedMediaType { .. }
        | E::Token { .. }
        | E::Timeout { .. }
        | E::DeadlineExceeded { .. }
        | E::NoMatchingPlatform { .. }
        | E::IndexTooDeep { .. } => Exit::Registry,
        E::InvalidDigest { .. }
        | E::Io { .. }
        | E::Config { .. }
        | E::Credentials { .. }
        | E::NotInLayout { .. }
        | E::InsecureCredentials { .. } => Exit::BadInput,
        // The error type is non-exhaustive: a variant added later is about input until it is
        // given a place above.
        _ => Exit::BadInput,
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn exit_of(e: impl std::error::Error + Send + Sync + 'static) -> Exit {
        // Wrapped as verbs wrap them: the code must come from the library error underneath.
        let err = Err::<(), _>(e)
            .context("cannot copy docker.io/library/nginx:1.27")
            .context("pack")
            .unwrap_err();
        Exit::from_error(&err)
    }

    #[test]
    fn exit_from_error_maps_registry_failures_to_3_and_input_to_2() {
        let status = oci::Error::Status {
            method: "GET".into(),
            url: "https://r.example/v2/".into(),
            status: 500,
            detail: None,
        };
        assert_eq!(exit_of(status), Exit::Registry);
        let missing = oci::Error::ManifestNotFound {
            image: "r.example/a:1".into(),
        };
        assert_eq!(exit_of(missing), Exit::Registry);
        let timeout = oci::Error::Timeout {
            url: "https://r.example/v2/".into(),
            phase: "connect",
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(exit_of(timeout), Exit::Registry);
        let unauthorized = oci::Error::Unauthorized {
            host: "r.example".into(),
            url: "https://r.example/v2/".into(),
            status: 401,
        };
        assert_eq!(exit_of(unauthorized), Exit::Registry);

        let io = oci::Error::Io {
            path: "/layout/index.json".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(exit_of(io), Exit::BadInput);
        let config = oci::Error::Config {
            reason: "bad CA file".into(),
        };
        assert_eq!(exit_of(config), Exit::BadInput);
        let not_in_layout = oci::Error::NotInLayout {
            path: "/layout".into(),
            name: "nginx".into(),
        };
        assert_eq!(exit_of(not_in_layout), Exit::BadInput);
        assert_eq!(
            exit_of(imgref::Reference::parse("ngInx").unwrap_err()),
            Exit::BadInput
        );
        assert_eq!(
            exit_of(std::io::Error::from(std::io::ErrorKind::NotFound)),
            Exit::BadInput
        );
        assert_eq!(
            Exit::from_error(&anyhow::anyhow!("--creds: name the registry")),
            Exit::BadInput
        );
    }

    /// An error of another crate (here a hand-made one) that wraps a registry failure.
    #[derive(Debug, thiserror::Error)]
    #[error("lookup task failed")]
    struct Wrapper(#[source] oci::Error);

    #[test]
    fn a_library_error_under_an_unknown_one_still_decides() {
        let err = anyhow::Error::new(Wrapper(oci::Error::RetriesExhausted {
            url: "https://r.example/v2/a/blobs/x".into(),
            attempts: 3,
            status: 503,
        }));
        assert_eq!(Exit::from_error(&err), Exit::Registry);
    }
}
