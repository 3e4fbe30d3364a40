//! A real bcoin 1.0.2 node in regtest for the Bitcoin adapter's tests: installed from the pinned
//! chain-nodes/package.json + lockfile by scripts/install-chain-nodes.sh, run with the pure
//! JavaScript backends (`NODE_BACKEND=js`), in memory, under a temporary prefix, on a free
//! loopback HTTP port, with no peers at all, and killed when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coordinator::adapter::bitcoin::{BitcoinAdapter, BitcoinConfig};
use coordinator::adapter::jsonrpc::JsonRpcClient;
use coordinator::adapter::{ChainAdapter, FleetAddress, FleetSignature, Spend, WithdrawalPlan};
use k256::ecdsa::SigningKey;
use serde_json::json;

/// How long the node may take to answer its first call.
const START_TIMEOUT: Duration = Duration::from_secs(40);

/// A running bcoin regtest node.
pub struct BcoinNode {
    child: Child,
    /// `http://127.0.0.1:PORT` (JSON-RPC and REST).
    pub url: String,
    /// The `--api-key`.
    pub api_key: String,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The directory holding the pinned `bcoin` launcher (installs it if needed).
fn bcoin_bin_dir() -> PathBuf {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-chain-nodes.sh");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(out.status.success(), "install-chain-nodes.sh failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

impl BcoinNode {
    /// Starts a node and waits until its RPC answers.
    pub async fn start() -> Self {
        let bin = bcoin_bin_dir().join("bcoin");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let api_key = "custody-test-key".to_owned();
        let log = std::fs::File::create(dir.path().join("bcoin.log")).unwrap();
        let child = Command::new(&bin)
            .env("NODE_BACKEND", "js")
            .args([
                "--network=regtest",
                "--memory=true",
                &format!("--prefix={}", dir.path().display()),
                "--http-host=127.0.0.1",
                &format!("--http-port={port}"),
                &format!("--api-key={api_key}"),
                // No peers: not listening, and no seeds (regtest's default seed is
                // 127.0.0.1:48444, which could be another test's node). bcoin asserts
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
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let mut node = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            api_key,
            dir,
        };
        let rpc = JsonRpcClient::new(
            &node.url,
            Some(("x".into(), node.api_key.clone())),
            Duration::from_secs(5),
        )
        .unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if rpc
                .call::<u64>("getblockcount", serde_json::json!([]))
                .await
                .is_ok()
            {
                return node;
            }
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!("bcoin exited with {status}:\n{}", node.log());
            }
            assert!(
                Instant::now() < deadline,
                "bcoin did not answer:\n{}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An adapter for this node with the regtest defaults (HRP `rb`, 2 sat/vB).
    pub fn adapter(&self) -> BitcoinAdapter {
        BitcoinAdapter::new(BitcoinConfig::bcoin_regtest(&self.url, &self.api_key)).unwrap()
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bcoin.log")).unwrap_or_default()
    }
}

impl Drop for BcoinNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key outside the fleet (the miner, the destination).
pub struct Outside {
    pub key: SigningKey,
    pub fleet: FleetAddress,
}

pub fn outside(adapter: &BitcoinAdapter, seed: u8) -> Outside {
    let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let public_key = k256::PublicKey::from(key.verifying_key());
    Outside {
        fleet: FleetAddress {
            path: vec![],
            address: adapter.address(&public_key).unwrap(),
            public_key,
        },
        key,
    }
}

pub async fn mine(adapter: &BitcoinAdapter, blocks: u64, to: &str) {
    let _: Vec<String> = adapter
        .rpc()
        .call("generatetoaddress", json!([blocks, to]))
        .await
        .unwrap();
}

pub async fn segwit_active(adapter: &BitcoinAdapter) -> bool {
    let info: serde_json::Value = adapter
        .rpc()
        .call("getblockchaininfo", json!([]))
        .await
        .unwrap();
    info["bip9_softforks"]["segwit"]["status"] == "active"
}

/// The miner pays `amount` (fee included) to `to` from its coinbases; returns the spends.
pub async fn miner_pays(
    adapter: &BitcoinAdapter,
    miner: &Outside,
    to: &str,
    amount: u128,
    reserved: Vec<Spend>,
) -> Vec<Spend> {
    let plan = WithdrawalPlan {
        to: to.into(),
        amount,
        sources: vec![miner.fleet.clone()],
        change: Some(miner.fleet.clone()),
        reserved,
    };
    let unsigned = adapter.build_withdrawal(&plan).await.unwrap();
    let sigs: Vec<FleetSignature> = unsigned
        .inputs
        .iter()
        .map(|i| {
            let (signature, recovery_id) = miner.key.sign_prehash_recoverable(&i.digest).unwrap();
            FleetSignature {
                signature,
                recovery_id,
            }
        })
        .collect();
    let signed = adapter.attach_signatures(&unsigned, &sigs).unwrap();
    adapter.broadcast(&signed).await.unwrap();
    unsigned.spends
}

/// Mines until segwit is active (bcoin regtest activates it by BIP9 signalling: three
/// windows of 144 blocks), paying the coinbases to `to`, then one more block.
pub async fn activate_segwit(adapter: &BitcoinAdapter, to: &str) {
    mine(adapter, 431, to).await;
    let mut tries = 0;
    while !segwit_active(adapter).await {
        tries += 1;
        assert!(tries < 20, "segwit not active");
        mine(adapter, 1, to).await;
    }
    mine(adapter, 1, to).await;
}
