//! The embedded FUSION-style chain (DESIGN §6, issue #5; FUSION whitepaper §3.4: lock-in
//! maps an external asset to a bookkeeping token, lock-out burns it after the external
//! payment). Block formats shared with the signers are in `custody_proto::chain`.
//!
//! | module | job |
//! |---|---|
//! | [`asset`] | mapped assets (mETH, mBTC) and exact integer amounts |
//! | [`account`] | addresses derived from secp256k1 keys |
//! | [`tx`] | signed and system transactions, canonical encodings |
//! | [`rejection`] | why a transaction is refused |
//! | [`state`] | state records in sled, overlay, state root |
//! | `execute` | the transaction rules |
//! | [`invariant`] | conservation of mapped value |
//! | [`block`] | stored blocks and genesis |
//! | [`consensus`] | the replaceable consensus trait and solo consensus |
//! | [`ledger`] | [`Chain`]: produce blocks, reopen, queries, proofs |
//!
//! Mapped value moves in exactly four places: a credited deposit mints it, a lock-out
//! request locks it, a burn destroys the locked amount, a refund returns it. Transfers only
//! move it between accounts. [`Chain::invariant_check`] proves the balance after any block.

pub mod account;
pub mod asset;
pub mod block;
pub mod consensus;
mod execute;
pub mod invariant;
pub mod ledger;
pub mod rejection;
pub mod state;
pub mod tx;

pub use account::Address;
pub use asset::{Amount, Asset};
pub use block::{Block, Genesis};
pub use consensus::{Consensus, ConsensusError, FollowerConsensus, SoloConsensus};
pub use execute::lockout_id;
pub use invariant::InvariantViolation;
pub use ledger::{BlockOutcome, Chain, ChainError, ChainReader, OrderProof};
pub use rejection::{RejectionClass, TxRejection};
pub use state::{
    Account, AssetTotals, BlameReport, CommittedCancellation, DepositAddress, DepositRecord,
    FleetKeyRecord, KeygenRequest, LockOutRecord, LockOutStatus,
};
pub use tx::{BlockTx, LockOutOutcome, SignedTransaction, SystemTx, Transaction, TxBody};
