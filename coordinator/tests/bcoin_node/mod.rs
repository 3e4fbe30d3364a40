//! A real bcoin 1.0.2 node in regtest for the Bitcoin adapter's tests, started by the crate's
//! one copy of the launcher (`coordinator::devnet::chain_nodes::Bcoin`): installed from the
//! pinned chain-nodes/package.json + lockfile by scripts/install-chain-nodes.sh, pure
//! JavaScript backends, in memory, under a temporary prefix, on a free loopback HTTP port,
//! with no peers at all, and killed when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use coordinator::adapter::bitcoin::BitcoinAdapter;
use coordinator::devnet::chain_nodes::{self, Bcoin, BcoinOptions};

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
