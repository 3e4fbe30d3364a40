//! A real anvil (Ethereum dev node) as a child process for tests: installed by the repo's
//! `scripts/install-chain-nodes.sh` (pinned `@foundry-rs/anvil`), started on a free loopback
//! port, ready once it prints that it listens, killed on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

/// anvil's default mnemonic account 0 (unlocked for `eth_sendTransaction`, 10000 ETH).
pub const DEV_ACCOUNT_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// anvil's default mnemonic account 1.
pub const DEV_ACCOUNT_1: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// The directory holding the `anvil` launcher, from the install script (run once per test
/// binary; the script is idempotent and quick when the lockfile is already installed).
fn bin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-chain-nodes.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/install-chain-nodes.sh");
        assert!(out.status.success(), "install-chain-nodes.sh failed");
        let dir = String::from_utf8(out.stdout).expect("utf-8 path");
        PathBuf::from(dir.trim())
    })
}

/// A running anvil; killed when dropped.
pub struct Anvil {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The chain id it was started with.
    pub chain_id: u64,
}

impl Anvil {
    /// Starts anvil with `chain_id` on a free loopback port and waits until it listens. Blocks
    /// are mined only on request (`--no-mining`; `anvil_mine` / `evm_mine`), so a test decides
    /// exactly when a transaction leaves the pool: with automine, anvil answers
    /// `eth_sendTransaction` before the block is in, and what a test reads next races it.
    pub fn start(chain_id: u64) -> Self {
        let anvil = bin_dir().join("anvil");
        // The port is free when probed; another process may take it before anvil binds, so
        // a start that fails is retried on a new port.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("probe a free port")
                .port();
            let mut child = Command::new(&anvil)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--chain-id",
                    &chain_id.to_string(),
                    "--accounts",
                    "3",
                    "--no-mining",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn anvil");
            let stdout = child.stdout.take().expect("anvil stdout");
            let (ready_tx, ready_rx) = mpsc::channel();
            // Reads anvil's output to the end (so its pipe never fills) and says when the
            // "Listening on 127.0.0.1:PORT" line has come.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("Listening on") {
                        let _ = ready_tx.send(());
                    }
                }
            });
            match ready_rx.recv_timeout(Duration::from_secs(20)) {
                Ok(()) => {
                    return Self {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                        chain_id,
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("anvil did not start in three tries");
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
