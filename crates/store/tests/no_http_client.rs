//! The point of the split: a registry server links the store (and the types) without the HTTP
//! client or the transfer engine.

use std::process::Command;

fn normal_dependencies(package: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn store_and_types_link_no_http_client() {
    for package in ["oci-store", "oci"] {
        let tree = normal_dependencies(package);
        for forbidden in [
            "reqwest ",
            "hyper ",
            "rustls ",
            "oci-client ",
            "oci-transfer ",
        ] {
            assert!(
                !tree.lines().any(|l| l.starts_with(forbidden)),
                "{package} depends on {forbidden}:\n{tree}"
            );
        }
    }
    let types = normal_dependencies("oci");
    assert!(
        !types.lines().any(|l| l.starts_with("tokio ")),
        "oci (types) needs no runtime:\n{types}"
    );
}
