//! The chain form of an authorization (issue #5): a block of the coordinator's chain whose
//! commit certificate is signed by more than 2/3 of the voting power of the validator set
//! pinned in this signer's `[chain]`, and a Merkle proof that the block's transactions
//! include the order commitment. The signer checks all of it itself; the coordinator's word
//! that a lock-out was decided is never enough (DESIGN §3, "each signer independently
//! verifies the block's commit certificate, the order's Merkle inclusion").

use custody_proto::chain::{
    verify_committed_order, BlockHeader, CommitCertificate, CommittedSigning, InclusionProof,
    OrderProofError, ValidatorSet,
};
use custody_proto::signer::v1::ChainAuthorization;

use super::GateRefusal;

/// The chain a signer trusts: its id and its validator set (from the configuration; a
/// validator-set change needs a configuration change, certified changes come with the
/// replicated coordinator).
#[derive(Debug, Clone)]
pub struct ChainPin {
    /// The chain id every accepted header must carry.
    pub chain_id: String,
    /// The validators whose certificates count.
    pub validators: ValidatorSet,
}

/// What a verified chain authorization proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOrder {
    /// The order bytes (custody.order.v2) the block committed.
    pub order: Vec<u8>,
    /// The lock-out the order settles.
    pub lockout_id: [u8; 32],
    /// Height of the block that committed it.
    pub height: u64,
    /// Whether the block committed a cancellation of the lock-out (a transaction that uses
    /// up the payment's nonce or outputs) rather than its payment. Both are signed alike:
    /// the chain decided, and only one of the two can ever be mined.
    pub cancellation: bool,
}

impl ChainPin {
    /// Checks `auth` against this chain: header, certificate (> 2/3 of the pinned power),
    /// inclusion of the order commitment in the header's transactions root. Returns the
    /// committed order.
    pub fn verify(&self, auth: &ChainAuthorization) -> Result<CommittedOrder, GateRefusal> {
        let malformed = |what: &str, e: &dyn std::fmt::Display| {
            GateRefusal::Malformed(format!("chain authorization: {what}: {e}"))
        };
        let header = BlockHeader::decode(&auth.header).map_err(|e| malformed("header", &e))?;
        let certificate = CommitCertificate::decode(&auth.certificate)
            .map_err(|e| malformed("certificate", &e))?;
        let proof = InclusionProof::decode(&auth.inclusion_proof)
            .map_err(|e| malformed("inclusion proof", &e))?;
        let commitment = verify_committed_order(
            &self.validators,
            &self.chain_id,
            &header,
            &certificate,
            &auth.order_commitment,
            &proof,
        )
        .map_err(|e| match e {
            OrderProofError::Certificate(e) => GateRefusal::Denied(format!(
                "block {} is not certified by the pinned validators: {e}",
                header.height
            )),
            OrderProofError::Inclusion(e) => GateRefusal::Denied(format!(
                "the order commitment is not a transaction of block {}: {e}",
                header.height
            )),
            OrderProofError::NotAnOrder(e) => malformed("order commitment", &e),
            other => GateRefusal::Denied(other.to_string()),
        })?;
        Ok(CommittedOrder {
            order: commitment.order().to_vec(),
            lockout_id: commitment.lockout_id(),
            height: header.height,
            cancellation: matches!(commitment, CommittedSigning::Cancellation(_)),
        })
    }
}
