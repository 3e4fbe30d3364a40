//! The check a signer makes before it signs a lock-out order: the order was committed in
//! a block that the pinned validator set certified.

use super::{
    BlockHeader, CertificateError, CommitCertificate, DecodeError, InclusionProof, MerkleError,
};
use super::{CommittedSigning, ValidatorSet};

/// Why an order is not proven committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderProofError {
    /// The block is not certified by the pinned validator set.
    #[error("the block is not certified: {0}")]
    Certificate(#[from] CertificateError),
    /// The leaf is not in the block's transaction tree.
    #[error("the order is not in the block: {0}")]
    Inclusion(#[from] MerkleError),
    /// The leaf is in the block but is not an order commitment.
    #[error("the proven transaction is not an order commitment: {0}")]
    NotAnOrder(#[from] DecodeError),
}

/// Checks, in this order, that `certificate` commits `header` under the pinned `set` on
/// `chain_id`, that `leaf` is a leaf of `header.tx_root` by `proof`, and that `leaf` is an
/// [`OrderCommitment`](super::OrderCommitment) or a
/// [`CancellationCommitment`](super::CancellationCommitment); returns it. The caller then
/// checks that the digest it is asked to sign is derived from its order, and its own policy.
pub fn verify_committed_order(
    set: &ValidatorSet,
    chain_id: &str,
    header: &BlockHeader,
    certificate: &CommitCertificate,
    leaf: &[u8],
    proof: &InclusionProof,
) -> Result<CommittedSigning, OrderProofError> {
    certificate.verify(set, chain_id, header)?;
    proof.verify(&header.tx_root, leaf)?;
    Ok(CommittedSigning::decode(leaf)?)
}
