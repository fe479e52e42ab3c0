//! Integration tests of the `airlock` binary, in one test binary (ripgrep style).

mod check_cli;
mod corpus;
mod hostile_store_cli;
mod lock_cli;
mod rewrite_cli;
mod scan_cli;
mod transfer_cli;

use std::path::PathBuf;

use assert_cmd::Command;

/// The binary under test.
pub fn airlock() -> Command {
    Command::cargo_bin("airlock").expect("airlock binary")
}

/// A fresh temporary directory per test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
