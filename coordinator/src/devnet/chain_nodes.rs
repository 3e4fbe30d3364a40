//! The local dev chain nodes as child processes: anvil (Ethereum) and bcoin in regtest
//! (Bitcoin), both pinned in `chain-nodes/package.json` and installed by
//! `scripts/install-chain-nodes.sh`. One copy for the `devnet` command and the tests.
//!
//! Each node is killed when its handle is dropped, so an error never leaves one behind.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::adapter::bitcoin::{BitcoinAdapter, BitcoinConfig};
use crate::adapter::jsonrpc::JsonRpcClient;
use crate::adapter::AdapterError;

/// anvil's default mnemonic account 0 (unlocked for `eth_sendTransaction`, 10000 ETH).
pub const ANVIL_DEV_ACCOUNT_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// anvil's default mnemonic account 1.
pub const ANVIL_DEV_ACCOUNT_1: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// How long bcoin may take to answer its first call.
const BCOIN_START_TIMEOUT: Duration = Duration::from_secs(40);
/// How long anvil may take to say it listens.
const ANVIL_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a chain node could not be installed or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainNodeError {
    /// The install script could not be run or failed.
    #[error("{script}: {detail}")]
    Install {
        /// The script.
        script: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A node could not be spawned.
    #[error("cannot start {what} ({}): {source}", path.display())]
    Spawn {
        /// Which node.
        what: &'static str,
        /// Its launcher.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file or port could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The node did not become ready.
    #[error("{what} did not start: {detail}")]
    NotReady {
        /// Which node.
        what: &'static str,
        /// Why (exit status, timeout, log tail).
        detail: String,
    },
    /// The adapter for the node could not be built.
    #[error("{0}")]
    Adapter(#[from] AdapterError),
}

/// `scripts/install-chain-nodes.sh` of the source tree this crate was built from.
pub fn default_install_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-chain-nodes.sh")
}

/// Runs the (idempotent) install script and returns the directory holding the `anvil` and
/// `bcoin` launchers, which the script prints on stdout.
pub fn install_chain_nodes(script: &Path) -> Result<PathBuf, ChainNodeError> {
    let fail = |detail: String| ChainNodeError::Install {
        script: script.to_owned(),
        detail,
    };
    let out = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!("exited with {}", out.status)));
    }
    let dir = String::from_utf8(out.stdout).map_err(|_| fail("printed a non-UTF-8 path".into()))?;
    let dir = PathBuf::from(dir.trim());
    if !dir.join("anvil").exists() || !dir.join("bcoin").exists() {
        return Err(fail(format!(
            "{} holds no anvil and bcoin launchers",
            dir.display()
        )));
    }
    Ok(dir)
}

/// A free loopback port (free when probed; another process may take it before it is used).
pub fn free_port() -> Result<u16, ChainNodeError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| ChainNodeError::Io {
            what: "probing a free loopback port".into(),
            source,
        })
}

/// The anvil binary itself: npm's `anvil` launcher is a Node script that spawns the platform
/// package's binary as its own child, and killing the launcher (SIGKILL) leaves that binary
/// running. The binary is run directly when the platform package is where npm puts it
/// (`node_modules/@foundry-rs/anvil-<platform>/bin/anvil`); else the launcher.
pub fn anvil_executable(bin_dir: &Path) -> PathBuf {
    let scope = bin_dir.join("../@foundry-rs");
    if let Ok(entries) = std::fs::read_dir(&scope) {
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
            .map(|e| e.path().join("bin/anvil"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        if let [one] = found.as_slice() {
            return one.clone();
        }
    }
    bin_dir.join("anvil")
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// How anvil makes blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnvilMining {
    /// Only on request (`--no-mining`; `anvil_mine` / `evm_mine`): a test decides exactly
    /// when a transaction leaves the pool.
    OnRequest,
    /// A block every this many seconds (`--block-time`), so confirmations keep coming.
    Interval(u64),
}

/// How to start anvil.
#[derive(Debug, Clone)]
pub struct AnvilOptions {
    /// The directory holding the `anvil` launcher.
    pub bin_dir: PathBuf,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Loopback port; `None` picks a free one (retried on another port if the start fails).
    pub port: Option<u16>,
    /// Block production.
    pub mining: AnvilMining,
    /// Dev accounts to create (account 0 is the funder).
    pub accounts: u32,
    /// Where anvil's output goes; `None` discards it.
    pub log: Option<PathBuf>,
}

/// A running anvil; killed when dropped.
pub struct Anvil {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The chain id it was started with.
    pub chain_id: u64,
}

impl std::fmt::Debug for Anvil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anvil").field("url", &self.url).finish()
    }
}

impl Anvil {
    /// Starts anvil and waits until it says it listens.
    pub fn start(options: &AnvilOptions) -> Result<Self, ChainNodeError> {
        let exe = anvil_executable(&options.bin_dir);
        let tries = if options.port.is_some() { 1 } else { 3 };
        let mut last = String::new();
        for _ in 0..tries {
            let port = match options.port {
                Some(p) => p,
                None => free_port()?,
            };
            let mut command = Command::new(&exe);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--chain-id", &options.chain_id.to_string()])
                .args(["--accounts", &options.accounts.to_string()]);
            match options.mining {
                AnvilMining::OnRequest => {
                    command.arg("--no-mining");
                }
                AnvilMining::Interval(secs) => {
                    command.args(["--block-time", &secs.max(1).to_string()]);
                }
            }
            super::processes::own_process_group(&mut command);
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|source| ChainNodeError::Spawn {
                    what: "anvil",
                    path: exe.clone(),
                    source,
                })?;
            let Some(stdout) = child.stdout.take() else {
                kill(&mut child);
                return Err(ChainNodeError::NotReady {
                    what: "anvil",
                    detail: "no stdout pipe".into(),
                });
            };
            let mut log = match &options.log {
                Some(path) => {
                    Some(
                        std::fs::File::create(path).map_err(|source| ChainNodeError::Io {
                            what: format!("creating {}", path.display()),
                            source,
                        })?,
                    )
                }
                None => None,
            };
            let (ready_tx, ready_rx) = mpsc::channel();
            // Reads anvil's output to the end (so its pipe never fills), copies it to the
            // log, and says when the "Listening on 127.0.0.1:PORT" line has come.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(f) = log.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    if line.contains("Listening on") {
                        let _ = ready_tx.send(());
                    }
                }
            });
            match ready_rx.recv_timeout(ANVIL_START_TIMEOUT) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                        chain_id: options.chain_id,
                    })
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    kill(&mut child);
                    last = match status {
                        Some(s) => format!("exited with {s} (port {port} taken?)"),
                        None => format!("no \"Listening on\" within {ANVIL_START_TIMEOUT:?}"),
                    };
                }
            }
        }
        Err(ChainNodeError::NotReady {
            what: "anvil",
            detail: last,
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// How to start bcoin.
#[derive(Debug, Clone)]
pub struct BcoinOptions {
    /// The directory holding the `bcoin` launcher.
    pub bin_dir: PathBuf,
    /// `--prefix`: its data directory; its log goes to `PREFIX/bcoin.log`.
    pub prefix: PathBuf,
    /// Loopback HTTP port (JSON-RPC and REST); `None` picks a free one.
    pub port: Option<u16>,
    /// `--api-key`.
    pub api_key: String,
    /// Keep the chain in memory (`--memory=true`) instead of on disk under the prefix.
    pub memory: bool,
}

/// A running bcoin regtest node; killed when dropped.
pub struct Bcoin {
    child: Child,
    /// `http://127.0.0.1:PORT` (JSON-RPC and REST).
    pub url: String,
    /// The `--api-key`.
    pub api_key: String,
    log: PathBuf,
}

impl std::fmt::Debug for Bcoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bcoin").field("url", &self.url).finish()
    }
}

impl Bcoin {
    /// Starts bcoin 1.0.2 in regtest with the pure JavaScript backends (`NODE_BACKEND=js`),
    /// no peers at all, no wallet, transaction and address indexes, and waits until its RPC
    /// answers.
    pub async fn start(options: &BcoinOptions) -> Result<Self, ChainNodeError> {
        let exe = options.bin_dir.join("bcoin");
        let port = match options.port {
            Some(p) => p,
            None => free_port()?,
        };
        std::fs::create_dir_all(&options.prefix).map_err(|source| ChainNodeError::Io {
            what: format!("creating {}", options.prefix.display()),
            source,
        })?;
        let log_path = options.prefix.join("bcoin.log");
        let io = |source| ChainNodeError::Io {
            what: format!("creating {}", log_path.display()),
            source,
        };
        let log = std::fs::File::create(&log_path).map_err(io)?;
        let log2 = log.try_clone().map_err(io)?;
        let mut command = Command::new(&exe);
        super::processes::own_process_group(&mut command);
        let child = command
            .env("NODE_BACKEND", "js")
            .args([
                "--network=regtest",
                &format!("--memory={}", options.memory),
                &format!("--prefix={}", options.prefix.display()),
                "--http-host=127.0.0.1",
                &format!("--http-port={port}"),
                &format!("--api-key={}", options.api_key),
                // No peers: not listening, and no seeds (regtest's default seed is
                // 127.0.0.1:48444, which could be another node). bcoin asserts
                // max-outbound > 0, so an empty seed list is what keeps it alone.
                "--listen=false",
                "--max-outbound=1",
                "--seeds=,",
                "--no-wallet",
                // No worker processes that could outlive a killed node.
                "--workers=false",
                "--index-tx",
                "--index-address",
                "--log-level=info",
                "--log-console=true",
                "--log-file=false",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| ChainNodeError::Spawn {
                what: "bcoin",
                path: exe.clone(),
                source,
            })?;
        let mut node = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            api_key: options.api_key.clone(),
            log: log_path,
        };
        let rpc = JsonRpcClient::new(
            &node.url,
            Some(("x".into(), node.api_key.clone())),
            Duration::from_secs(5),
        )
        .map_err(|e| ChainNodeError::Adapter(e.into()))?;
        let deadline = Instant::now() + BCOIN_START_TIMEOUT;
        loop {
            if rpc
                .call::<u64>("getblockcount", serde_json::json!([]))
                .await
                .is_ok()
            {
                return Ok(node);
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(ChainNodeError::NotReady {
                    what: "bcoin",
                    detail: format!("exited with {status}:\n{}", node.log_tail()),
                });
            }
            if Instant::now() >= deadline {
                return Err(ChainNodeError::NotReady {
                    what: "bcoin",
                    detail: format!(
                        "no answer within {BCOIN_START_TIMEOUT:?}:\n{}",
                        node.log_tail()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An adapter for this node with the regtest defaults (HRP `rb`, 2 sat/vB).
    pub fn adapter(&self) -> Result<BitcoinAdapter, AdapterError> {
        BitcoinAdapter::new(BitcoinConfig::bcoin_regtest(&self.url, &self.api_key))
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Bcoin {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
