//! Integration tests of the `airlock` binary, in one test binary (ripgrep style).

mod audit_cli;
mod check_cli;
mod conformance;
mod corpus;
mod deploy;
mod discovery_gaps;
mod first_hour;
mod flags_cli;
mod helm_cli;
mod hostile_cli;
mod hostile_store_cli;
mod hostile_yaml;
mod image_cli;
mod lock_cli;
mod network_errors;
mod resolve_cli;
mod rewrite_cli;
mod rewrite_defaults;
mod scan_cli;
mod secrets_cli;
mod serve_auth_cli;
mod serve_cli;
mod serve_full_disk;
mod serve_gc;
mod serve_interop;
mod serve_names;
mod serve_oras;
mod serve_slow;
mod transfer_cli;
mod watch;
mod webhook;
mod webhook_install;

// The kube-apiserver stand-in the cluster crate's tests use, with the same recorded responses.
#[path = "../../crates/cluster/tests/fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A command for the binary under test, run as on a clean machine: `HOME` is a fresh empty
/// directory that lives as long as the command, and nothing of the developer's own setup
/// (Docker config, credentials, XDG directories) leaks in unless the test sets it.
pub struct Isolated<C> {
    cmd: C,
    _home: tempfile::TempDir,
}

impl<C> Deref for Isolated<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.cmd
    }
}

impl<C> DerefMut for Isolated<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.cmd
    }
}

/// Variables that point the binary at a user's configuration or credentials.
const HOST_ENV: &[&str] = &[
    "DOCKER_CONFIG",
    "AIRLOCK_CREDS",
    "REGISTRY_AUTH_FILE",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_DIRS",
    "XDG_DATA_DIRS",
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
];

/// The binary under test, as a `std::process::Command` (for tests that spawn and watch it).
pub fn airlock_process() -> Isolated<std::process::Command> {
    let home = tempfile::Builder::new()
        .prefix("airlock-home-")
        .tempdir()
        .expect("temp HOME");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.env("HOME", home.path());
    for var in HOST_ENV {
        cmd.env_remove(var);
    }
    Isolated { cmd, _home: home }
}

/// The binary under test.
pub fn airlock() -> Isolated<assert_cmd::Command> {
    let Isolated { cmd, _home } = airlock_process();
    Isolated {
        cmd: assert_cmd::Command::from_std(cmd),
        _home,
    }
}

/// The effective user id the tests run as (from /proc: unsafe code, and so libc, is forbidden).
pub fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid: line");
    uid.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The binary under test, started through `wrapper` (a program that execs its arguments, such
/// as `prlimit` or `setpriv`), with the same clean environment.
pub fn airlock_process_via(wrapper: &[&str]) -> Isolated<std::process::Command> {
    let Isolated { cmd, _home } = airlock_process();
    let mut outer = std::process::Command::new(wrapper[0]);
    outer.args(&wrapper[1..]).arg(cmd.get_program());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    Isolated { cmd: outer, _home }
}

/// [`airlock_process_via`] as an `assert_cmd` command.
pub fn airlock_via(wrapper: &[&str]) -> Isolated<assert_cmd::Command> {
    let Isolated { cmd, _home } = airlock_process_via(wrapper);
    Isolated {
        cmd: assert_cmd::Command::from_std(cmd),
        _home,
    }
}

/// The binary under test as an unprivileged user. Root reads any directory whatever its mode
/// (CAP_DAC_READ_SEARCH), so as root `setpriv` (util-linux) first drops to `nobody`, which has
/// no capabilities: a test about permissions then tests permissions, not root's bypass of them.
pub fn airlock_unprivileged() -> Isolated<assert_cmd::Command> {
    if euid() != 0 {
        return airlock();
    }
    let cmd = airlock_via(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ]);
    // The fresh HOME is the user's own, whoever runs.
    std::fs::set_permissions(cmd._home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    cmd
}

/// A fresh temporary directory per test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_command_runs_with_an_empty_home_and_no_docker_config() {
    let cmd = airlock_process();
    let envs: std::collections::HashMap<_, _> = cmd.get_envs().collect();
    let home = PathBuf::from(envs[std::ffi::OsStr::new("HOME")].unwrap());
    assert!(home.is_dir());
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);
    for var in HOST_ENV {
        assert_eq!(envs.get(std::ffi::OsStr::new(var)), Some(&None), "{var}");
    }
    drop(cmd);
    assert!(!home.exists(), "the HOME of a finished command is removed");
}
