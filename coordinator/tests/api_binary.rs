//! The real `coordinator` binary: init-validator-key, a config with an unknown key refused
//! by name, `run` serving over mTLS (driven by the real `custody` binary), and a restart
//! that reopens the same chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use api_support::*;
use custody_proto::identity::CallerIdentity;

fn config(dir: &Path, admin: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("coordinator.toml");
    std::fs::write(
        &path,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "data"
chain_id = "custody-bin-test"
admin = "{admin}"
validator_key = "validator.key"
block_interval_ms = 50
{extra}
[tls]
ca = "tls/ca.pem"
cert = "tls/cert.pem"
key = "tls/key.pem"
"#
        ),
    )
    .unwrap();
    path
}

/// The coordinator process this test started; killed when dropped, also on a failed
/// assertion.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `coordinator run` and returns the child and its address from the
/// "listening on ADDR" line.
fn start(config: &Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

fn custody(tls: &Path, addr: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .arg("--endpoint")
        .arg(format!("https://{addr}"))
        .arg("--tls-dir")
        .arg(tls)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn coordinator_binary_runs_serves_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.write_dir_for_hosts(
        &CallerIdentity::Coordinator(0),
        &["127.0.0.1"],
        &dir.path().join("tls"),
    );
    let client_tls = pki.write_dir(
        &CallerIdentity::Client("op".into()),
        &dir.path().join("client"),
    );

    let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["init-validator-key", "--out"])
        .arg(dir.path().join("validator.key"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("validator public key: "));

    let admin = user(100);
    // An unknown key is refused by name.
    let bad = config(dir.path(), &admin.address.to_string(), "block_time = 5");
    let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["run", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown field `block_time`"), "{stderr}");

    let good = config(dir.path(), &admin.address.to_string(), "");
    let (child, addr) = start(&good);
    let key = dir.path().join("user.key");
    let key = key.to_str().unwrap();
    custody(&client_tls, &addr, &["key", "new", "--out", key]);
    let out = custody(
        &client_tls,
        &addr,
        &["deposit-address", "--key", key, "--asset", "meth"],
    );
    assert!(
        out.contains("mETH deposit address: ") && out.contains("(path m/1/"),
        "{out}"
    );
    let status = custody(&client_tls, &addr, &["status"]);
    assert!(status.contains("chain custody-bin-test"), "{status}");
    assert!(status.contains("height 1"), "{status}");
    drop(child);

    // Restart on the same data directory: the chain is still there.
    let (child, addr) = start(&good);
    let again = custody(&client_tls, &addr, &["status"]);
    assert!(again.contains("height 1"), "{again}");
    let out = custody(
        &client_tls,
        &addr,
        &["deposit-address", "--key", key, "--asset", "meth", "--show"],
    );
    assert!(
        out.contains("mETH deposit address: ") && out.contains("(path m/1/"),
        "{out}"
    );
    drop(child);
}
