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
    /// A cancellation the chain cannot commit (order not expired, fee above the amount).
    #[error("cancellation of lock-out {} refused: {reason}", hex32(.id))]
    BadCancellation {
        /// The lock-out.
        id: [u8; 32],
        /// Why.
        reason: String,
    },
    /// The external destination is empty, too long or not printable ASCII.
    #[error("the external destination must be 1..={max} printable ASCII characters")]
    BadDestination {
        /// Longest destination.
        max: usize,
    },
    /// This session's blame is already on chain.
    #[error("the blame of session {} is already reported", hex::encode(.0))]
    BlameAlreadyReported([u8; 32]),
    /// A blame report that cannot be recorded.
    #[error("invalid blame report: {0}")]
    BadBlameReport(&'static str),
    /// No key generation request with this id.
    #[error("no key generation request with id {0}")]
    UnknownKeygenRequest(u64),
    /// The key of this key generation request is already recorded.
    #[error("the key of key generation request {0} is already recorded")]
    FleetKeyAlreadyRecorded(u64),
    /// A fleet key record that cannot be a valid threshold key.
    #[error("invalid fleet key: {0}")]
    BadFleetKey(&'static str),
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

/// The class of a rejection, as DESIGN §7 maps errors to gRPC status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionClass {
    /// Malformed input (`INVALID_ARGUMENT`).
    InvalidArgument,
    /// Valid input refused in the current state (`FAILED_PRECONDITION`).
    FailedPrecondition,
    /// The sender lacks the right (`PERMISSION_DENIED`).
    PermissionDenied,
    /// Our failure, not the sender's (`INTERNAL`).
    Internal,
}

impl TxRejection {
    /// How the public API should report this rejection.
    pub fn class(&self) -> RejectionClass {
        match self {
            TxRejection::Malformed(_)
            | TxRejection::BadPublicKey
            | TxRejection::BadSignature
            | TxRejection::WrongChain { .. }
            | TxRejection::UnknownAsset(_)
            | TxRejection::ZeroAmount
            | TxRejection::BadDestination { .. }
            | TxRejection::BadFleetKey(_)
            | TxRejection::BadBlameReport(_) => RejectionClass::InvalidArgument,
            TxRejection::Unauthorized { .. } => RejectionClass::PermissionDenied,
            TxRejection::BadNonce { .. }
            | TxRejection::Overdraft { .. }
            | TxRejection::DuplicateDeposit(_)
            | TxRejection::NoDepositAddress { .. }
            | TxRejection::UnknownLockOut(_)
            | TxRejection::WrongLockOutState { .. }
            | TxRejection::BadCancellation { .. }
            | TxRejection::UnknownKeygenRequest(_)
            | TxRejection::FleetKeyAlreadyRecorded(_)
            | TxRejection::BlameAlreadyReported(_)
            | TxRejection::Overflow
            | TxRejection::Exhausted(_) => RejectionClass::FailedPrecondition,
            TxRejection::Store(_) => RejectionClass::Internal,
        }
    }
}

/// Lower-case hex of a 32-byte id, for messages.
pub fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn reasons_read_as_sentences_and_map_to_a_status_class() {
        let overdraft = TxRejection::Overdraft {
            account: Address([0xab; 20]),
            asset: Asset::MBTC,
            balance: 5,
            requested: 7,
        };
        assert_eq!(
            overdraft.to_string(),
            format!(
                "overdraft: {} holds 5 mBTC, the transaction needs 7",
                "ab".repeat(20)
            )
        );
        assert_eq!(overdraft.class(), RejectionClass::FailedPrecondition);
        let nonce = TxRejection::BadNonce {
            expected: 3,
            got: 1,
        };
        assert_eq!(
            nonce.to_string(),
            "bad nonce: the account's next nonce is 3, the transaction has 1"
        );
        assert_eq!(
            TxRejection::UnknownAsset(9).class(),
            RejectionClass::InvalidArgument
        );
        assert_eq!(
            TxRejection::BadSignature.class(),
            RejectionClass::InvalidArgument
        );
        let who = TxRejection::Unauthorized {
            account: Address([1; 20]),
            action: "request a key generation",
        };
        assert_eq!(who.class(), RejectionClass::PermissionDenied);
        assert_eq!(
            TxRejection::DuplicateDeposit([0x0f; 32]).to_string(),
            format!("deposit {} was already credited", "0f".repeat(32))
        );
    }
}
