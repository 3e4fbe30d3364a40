//! The README's main command, run as a user would (smaller: 3 signers, threshold 2): real
//! `signer-node init` / `run` processes with sealed stores, keygen, presign, an authorized
//! signature verified, then every signer killed and restarted: keys intact, the consumed
//! presignature refused, and a second signature; then a refresh (same key and address, epoch
//! 1) and a third signature at the new epoch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_signer-node");

#[test]
fn devnet_signs_restarts_and_signs_again() {
    let dir = tempfile::tempdir().unwrap();
    // a port range unlikely to be in use by another test run on this machine
    let base_port = 20_000 + (std::process::id() % 20_000) as u16;
    let out = Command::new(BIN)
        .args([
            "devnet",
            "--signers",
            "3",
            "--threshold",
            "2",
            "--base-port",
        ])
        .arg(base_port.to_string())
        .arg("--dir")
        .arg(dir.path().join("net"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for expected in [
        "keygen: done",
        "address: 0x",
        "verified with k256",
        "restart: every signer still holds the key",
        "restart: the consumed presignature stays consumed",
        "lock-out order #2",
        "refresh: done",
        "lock-out order #3 (epoch 1)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // three signatures were made: three signature lines
    assert_eq!(
        stdout.matches("sign: signature r||s").count(),
        3,
        "{stdout}"
    );
    // every signer's audit chain is intact after the kill
    for i in 1..=3 {
        let data = dir.path().join(format!("net/signer-{i}/data"));
        let verify = Command::new(BIN)
            .args(["audit", "verify", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
}
