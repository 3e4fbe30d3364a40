//! `custody_proto::chain`: the block formats of the coordinator's chain that both the
//! coordinator (which produces blocks) and the signer nodes (which check, before signing a
//! lock-out, that its order was committed) must read alike. Self-contained on purpose: no
//! protobuf, only SHA-256 and Ed25519.
//!
//! Every format has one canonical encoding (see `README.md` of this crate): a
//! length-prefixed ASCII tag, then fixed-width big-endian integers, fixed-length arrays, and
//! variable-length fields as a u32 big-endian length and the bytes. Decoders are strict:
//! wrong tag, short input, over-long fields and trailing bytes are refused, so one value
//! has one encoding and every hash is domain-separated by its tag.
//!
//! | item | job |
//! |---|---|
//! | [`BlockHeader`] | header, canonical encoding, block hash |
//! | [`ValidatorSet`] | Ed25519 keys with voting power, pinned by hash |
//! | [`CommitCertificate`], [`vote_signing_bytes`] | > 2/3 of the power signed the block |
//! | [`merkle_root`], [`InclusionProof`] | RFC 6962 tree over transactions |
//! | [`OrderCommitment`], [`CancellationCommitment`] | the leaves that commit a lock-out order or its cancellation |
//! | [`verify_committed_order`] | the signer's check: certified block, inclusion, order |

mod certificate;
pub mod codec;
mod committed;
mod header;
mod merkle;
mod order;
mod validators;

#[cfg(test)]
mod tests;

pub use certificate::{
    vote_signing_bytes, CertificateError, CommitCertificate, CERTIFICATE_TAG, VOTE_TAG,
};
pub use committed::{verify_committed_order, OrderProofError};
pub use header::{BlockHeader, HEADER_TAG, HEADER_VERSION};
pub use merkle::{
    empty_root, leaf_hash, merkle_root, node_hash, InclusionProof, MerkleError,
    INCLUSION_PROOF_TAG, MAX_PROOF_HASHES,
};
pub use order::{
    CancellationCommitment, CommittedSigning, OrderCommitment, CANCELLATION_COMMITMENT_TAG,
    MAX_ORDER_BYTES, ORDER_COMMITMENT_TAG,
};
pub use validators::{
    Validator, ValidatorSet, ValidatorSetError, MAX_VALIDATORS, VALIDATOR_SET_TAG,
};

/// Longest chain id, in bytes.
pub const MAX_CHAIN_ID_BYTES: usize = 64;

/// Why bytes are not the canonical encoding of a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the format does.
    #[error("input is truncated")]
    Truncated,
    /// Bytes are left after the format ends.
    #[error("{count} trailing bytes after the encoding")]
    TrailingBytes {
        /// How many bytes are left.
        count: usize,
    },
    /// The input does not start with the format's tag.
    #[error("input does not start with the tag {expected:?}")]
    WrongTag {
        /// The tag the decoder expected.
        expected: String,
    },
    /// A variable-length field is longer than its cap.
    #[error("field {field} has {len} entries or bytes, at most {max} are allowed")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Length found.
        len: usize,
        /// Cap.
        max: usize,
    },
    /// A text field is not UTF-8.
    #[error("field {field} is not UTF-8")]
    BadUtf8 {
        /// Field name.
        field: &'static str,
    },
    /// A header version this crate does not know.
    #[error("unsupported header version {0}")]
    UnsupportedVersion(u16),
    /// A field's value is not allowed.
    #[error("field {field} is invalid: {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A decoded validator set is not valid.
    #[error("invalid validator set: {0}")]
    ValidatorSet(#[from] ValidatorSetError),
}
