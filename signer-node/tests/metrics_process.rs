//! The real `signer-node run` with `metrics_listen`: `/metrics` answers over plain TCP while
//! the node runs; `check-config` refuses a non-loopback metrics address without the switch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_signer-node");

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A devnet of two signers on `ports`; returns signer 1's config path.
fn devnet(dir: &Path, ports: &[u16]) -> PathBuf {
    let out = dir.join("net");
    let status = Command::new(BIN)
        .args(["pki", "devnet", "--signers", "2", "--out"])
        .arg(&out)
        .arg("--ports")
        .arg(format!("{},{}", ports[0], ports[1]))
        .status()
        .unwrap();
    assert!(status.success());
    out.join("signer-1/signer.toml")
}

/// Puts `line` among the top-level keys of the config (before its first table).
fn with_top_level(config: &Path, line: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let at = text.find("\n[").unwrap();
    let patched = format!("{}\n{line}{}", &text[..at], &text[at..]);
    std::fs::write(config, patched).unwrap();
}

fn get(port: u16, path: &str) -> Result<String, std::io::Error> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn run_serves_metrics_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let config = devnet(dir.path(), &ports);
    with_top_level(
        &config,
        &format!("metrics_listen = \"127.0.0.1:{}\"", ports[2]),
    );
    let init = Command::new(BIN)
        .args(["init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _guard = Guard(Some(child));

    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        match get(ports[2], "/metrics") {
            Ok(a) if !a.is_empty() => break a,
            other if Instant::now() < deadline => {
                eprintln!("metrics not served yet: {other:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("metrics never served: {other:?}"),
        }
    };
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("\r\n\r\n# HELP signer_node_build_info "),
        "{answer}"
    );
    assert!(
        answer.contains(&format!(
            "\nsigner_node_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{answer}"
    );
    assert!(
        answer.contains("\nsigner_node_envelopes_received_total 0\n"),
        "{answer}"
    );
    let missing = get(ports[2], "/other").unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[test]
fn check_config_refuses_metrics_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let config = devnet(dir.path(), &ports);
    with_top_level(&config, "metrics_listen = \"0.0.0.0:9101\"");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics_listen") && stderr.contains("metrics_allow_non_loopback"),
        "{stderr}"
    );
    // with the explicit switch, the same config is accepted
    with_top_level(&config, "metrics_allow_non_loopback = true");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
