//! A real bcoin 1.0.2 node in regtest for the Bitcoin adapter's tests, started by the crate's
//! one copy of the launcher (`coordinator::devnet::chain_nodes::Bcoin`): installed from the
//! pinned chain-nodes/package.json + lockfile by scripts/install-chain-nodes.sh, pure
//! JavaScript backends, in memory, under a temporary prefix, on a free loopback HTTP port,
//! with no peers at all, and killed when dropped. Plus the funding helpers the tests share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use coordinator::adapter::bitcoin::BitcoinAdapter;
use coordinator::adapter::{ChainAdapter, FleetAddress, FleetSignature, Spend, WithdrawalPlan};
use coordinator::devnet::chain_nodes::{self, Bcoin, BcoinOptions};
use coordinator::devnet::funding;
use k256::ecdsa::SigningKey;
use serde_json::json;

/// A running bcoin regtest node.
pub struct BcoinNode {
    node: Bcoin,
    /// `http://127.0.0.1:PORT` (JSON-RPC and REST).
    pub url: String,
    /// The `--api-key`.
    pub api_key: String,
    _dir: tempfile::TempDir,
}

impl BcoinNode {
    /// Starts a node and waits until its RPC answers.
    pub async fn start() -> Self {
        let bin_dir = chain_nodes::install_chain_nodes(&chain_nodes::default_install_script())
            .expect("scripts/install-chain-nodes.sh");
        let dir = tempfile::tempdir().unwrap();
        let node = Bcoin::start(&BcoinOptions {
            bin_dir,
            prefix: dir.path().to_owned(),
            port: None,
            api_key: "custody-test-key".to_owned(),
            memory: true,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        Self {
            url: node.url.clone(),
            api_key: node.api_key.clone(),
            node,
            _dir: dir,
        }
    }

    /// An adapter for this node with the regtest defaults (HRP `rb`, 2 sat/vB).
    pub fn adapter(&self) -> BitcoinAdapter {
        self.node.adapter().unwrap()
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        self.node.log()
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
    funding::mine(adapter, blocks, to).await.unwrap();
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
    funding::activate_segwit(adapter, to).await.unwrap();
}
