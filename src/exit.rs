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
    #[allow(dead_code)] // used by the transfer verbs
    Registry = 3,
}

impl Exit {
    /// Errors that reach `main` are about input (files, flags) unless a verb says otherwise.
    pub fn from_error(_err: &anyhow::Error) -> Exit {
        Exit::BadInput
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
