//! The contract engine (issue #5; FUSION whitepaper §3.4.2 lock-in, §3.4.3 lock-out): it
//! turns what the chain adapters and the signer fleet report into the system transactions the
//! block producer puts in the next block. It never produces blocks itself: the node loop calls
//! [`DepositWatcher::scan`] and [`LockOutSaga::step`] before each block it proposes and adds
//! the returned transactions to the block's candidates.
//!
//! | module | job |
//! |---|---|
//! | [`addresses`] | fleet child keys and external addresses of deposit and change paths |
//! | [`keys`] | the fleet key on chain: record a DKG's key, read the latest |
//! | [`journal`] | the engine's own sled store: what is not on chain (plans, signatures, raw tx) |
//! | [`lock_in`] | deposit watcher: credit deposits with ≥ z confirmations, once |
//! | [`lock_out`] | the lock-out saga: plan, commit, sign, broadcast, burn or refund |
//! | [`signer`] | the signing trait; its production form over [`crate::fleet::FleetClient`] |
//!
//! One engine instance serves one mapped asset with its adapter (the adapter trait is not
//! object safe); a node runs one [`DepositWatcher`] and one [`LockOutSaga`] per asset, all
//! sharing one [`Journal`].

pub mod addresses;
pub mod journal;
pub mod keys;
pub mod lock_in;
pub mod lock_out;
pub mod signer;

pub use journal::{Journal, LockOutEntry};
pub use lock_in::DepositWatcher;
pub use lock_out::{LockOutSaga, SagaStatus, StepOutcome};
pub use signer::{FleetSigner, OrderSigner, SignError};

use crate::adapter::AdapterError;
use crate::chain::ChainError;
use crate::fleet::FleetError;

/// Settings of the engine, one set per asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Confirmations z that make a deposit creditable and a lock-out payment final, from
    /// [`crate::adapter::confirmations::required_depth`] for the chain's (q, ε).
    pub depth: u64,
    /// How far below the last scanned frontier the watcher scans again, to see re-organised
    /// blocks; raised to `depth` if lower.
    pub reorg_margin: u64,
    /// First external height that can hold deposits (the height when the fleet key was made).
    pub start_height: u64,
    /// Most external blocks one scan covers.
    pub max_scan_blocks: u64,
    /// The fleet id written into signing orders (the signers' configured fleet).
    pub fleet_id: String,
    /// How long a signing order stays valid, in seconds after it is made.
    pub order_ttl_secs: u64,
    /// A lock-out still without a committed order this many chain blocks after its request
    /// is refunded.
    pub commit_timeout_blocks: u64,
}

impl EngineConfig {
    /// The depth z for an attacker hash-power share `q` and risk `epsilon` (q = 0.1,
    /// ε = 10⁻³ gives 6), to put in [`EngineConfig::depth`].
    pub fn depth_for(q: f64, epsilon: f64) -> Result<u64, EngineError> {
        crate::adapter::confirmations::required_depth(q, epsilon)
            .map(u64::from)
            .map_err(|e| EngineError::Config(e.to_string()))
    }

    /// The re-scan margin actually used: at least z.
    pub fn margin(&self) -> u64 {
        self.reorg_margin.max(self.depth)
    }
}

/// Why an engine step failed as a whole (a single lock-out's trouble is reported in its
/// status instead, so one bad lock-out does not stop the others).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The chain store failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// The journal's sled store failed.
    #[error("journal store: {0}")]
    Journal(#[from] sled::Error),
    /// A journal record does not decode.
    #[error("corrupt journal: {0}")]
    CorruptJournal(String),
    /// The chain adapter failed.
    #[error("adapter: {0}")]
    Adapter(#[from] AdapterError),
    /// Deriving a fleet child key failed.
    #[error("fleet key: {0}")]
    Fleet(#[from] FleetError),
    /// The configuration is unusable.
    #[error("engine configuration: {0}")]
    Config(String),
}
