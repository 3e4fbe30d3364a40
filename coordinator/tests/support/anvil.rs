//! A real anvil (Ethereum dev node) as a child process for tests, started by the crate's one
//! copy of the launcher (`coordinator::devnet::chain_nodes`): installed by the repo's
//! `scripts/install-chain-nodes.sh` (pinned `@foundry-rs/anvil`), on a free loopback port,
//! killed on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;

use coordinator::devnet::chain_nodes::{self, AnvilMining, AnvilOptions};

// Not every test binary that includes this module uses both accounts.
#[allow(unused_imports)]
pub use coordinator::devnet::chain_nodes::{
    Anvil, ANVIL_DEV_ACCOUNT_0 as DEV_ACCOUNT_0, ANVIL_DEV_ACCOUNT_1 as DEV_ACCOUNT_1,
};

/// The directory holding the `anvil` launcher (the install script runs once per test binary;
/// it is idempotent and quick when the lockfile is already installed).
fn bin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        chain_nodes::install_chain_nodes(&chain_nodes::default_install_script())
            .expect("scripts/install-chain-nodes.sh")
    })
}

/// Starts anvil with `chain_id` on a free loopback port and waits until it listens. Blocks
/// are mined only on request (`--no-mining`; `anvil_mine` / `evm_mine`), so a test decides
/// exactly when a transaction leaves the pool: with automine, anvil answers
/// `eth_sendTransaction` before the block is in, and what a test reads next races it.
pub fn start(chain_id: u64) -> Anvil {
    Anvil::start(&AnvilOptions {
        bin_dir: bin_dir().clone(),
        chain_id,
        port: None,
        mining: AnvilMining::OnRequest,
        accounts: 3,
        log: None,
    })
    .expect("start anvil")
}
