//! Why a transaction is refused. A refused transaction changes nothing.

use custody_proto::chain::DecodeError;

use super::{Address, Amount, Asset, LockOutStatus};

/// The reason a transaction was not applied, for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxRejection {
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    /// The sender's public key is not a valid secp256k1 point.
    #[error("the sender public key is not a valid compressed secp256k1 key")]
    BadPublicKey,
    /// The signature does not verify, or is not low-s.
    #[error("the signature does not verify under the sender's key (or is not low-s)")]
    BadSignature,
    /// The transaction names another chain.
    #[error("the transaction is for chain {got:?}, this is {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's chain id.
        got: String,
    },
    /// The nonce is not the account's next nonce (replay or gap).
    #[error("bad nonce: the account's next nonce is {expected}, the transaction has {got}")]
    BadNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// Spending more than the balance.
    #[error("overdraft: {account} holds {balance} {asset}, the transaction needs {requested}")]
    Overdraft {
        /// The account.
        account: Address,
        /// The asset.
        asset: Asset,
        /// Its balance.
        balance: Amount,
        /// The amount asked for.
        requested: Amount,
    },
    /// An asset code this chain does not map.
    #[error("unknown asset code {0}")]
    UnknownAsset(u8),
    /// An amount of zero moves nothing and is refused.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// The sender is not allowed to do this.
    #[error("{account} is not authorized to {action}")]
    Unauthorized {
        /// The sender.
        account: Address,
        /// What it tried.
        action: &'static str,
    },
    /// The deposit id was already credited.
    #[error("deposit {} was already credited", hex32(.0))]
    DuplicateDeposit([u8; 32]),
    /// A deposit for an account that has no deposit address for the asset.
    #[error("{account} has no deposit address for {asset}")]
    NoDepositAddress {
        /// The account.
        account: Address,
        /// The asset.
        asset: Asset,
    },
    /// No lock-out with this id.
    #[error("no lock-out with id {}", hex32(.0))]
    UnknownLockOut([u8; 32]),
    /// The lock-out is not in a state that allows this step.
    #[error("lock-out {} is {status:?}, which does not allow {action}", hex32(.id))]
    WrongLockOutState {
        /// The lock-out.
        id: [u8; 32],
        /// Its status.
        status: LockOutStatus,
        /// The refused step.
        action: &'static str,
    },
    /// The external destination is empty, too long or not printable ASCII.
    #[error("the external destination must be 1..={max} printable ASCII characters")]
    BadDestination {
        /// Longest destination.
        max: usize,
    },
    /// A sum would leave the u128 range.
    #[error("amount arithmetic overflow")]
    Overflow,
    /// Every deposit-address index or keygen request id is used.
    #[error("no {0} left")]
    Exhausted(&'static str),
    /// The state store failed while checking the transaction; not the sender's fault.
    #[error("state store error: {0}")]
    Store(String),
}

/// Lower-case hex of a 32-byte id, for messages.
pub fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
