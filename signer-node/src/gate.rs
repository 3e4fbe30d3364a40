//! The signing gate: what a `Sign` request must prove before this signer lets a partial
//! signature leave (issue #4 "Signing gate", SIG-01).
//!
//! A request carries an `Authorization`: the exact order bytes and Ed25519 signatures over them
//! by a quorum of the authorizer keys pinned in the node's configuration (today: the shape of
//! the chain's commit certificate that the coordinator will produce). The gate checks the
//! quorum, decodes the order, checks that it names the key and path of the request,
//! recomputes the digest to sign from the order itself (never from a digest the caller
//! supplies) and charges the key's velocity limit. The session runner asks the gate through
//! [`SigningGate`] and signs only the digest it returns.

use mpc_core::hd::DerivationPath;

use crate::vault::KeyId;

/// What the gate approved: the digest to sign and what it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignApproval {
    /// The 32-byte digest the signers sign, recomputed from the order.
    pub digest: [u8; 32],
    /// SHA-256 of the authorized order bytes (for the audit log).
    pub order_hash: [u8; 32],
}

/// Why the gate refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateRefusal {
    /// The authorization or order does not parse (`INVALID_ARGUMENT`).
    #[error("malformed authorization: {0}")]
    Malformed(String),
    /// Parsed, but policy says no: quorum, key or path mismatch, velocity (`PERMISSION_DENIED`).
    #[error("refused by the signing gate: {0}")]
    Denied(String),
}

impl From<GateRefusal> for tonic::Status {
    fn from(r: GateRefusal) -> Self {
        match r {
            GateRefusal::Malformed(_) => tonic::Status::invalid_argument(r.to_string()),
            GateRefusal::Denied(_) => tonic::Status::permission_denied(r.to_string()),
        }
    }
}

/// The decision a signer makes before it signs.
pub trait SigningGate: Send + Sync + 'static {
    /// Approves signing input `input_index` of the authorized order with the child key of
    /// `key_id` at `path`, and charges the key's velocity limit; or refuses. Must not block.
    fn approve(
        &self,
        key_id: &KeyId,
        path: &DerivationPath,
        authorization: &custody_proto::signer::v1::Authorization,
        input_index: u32,
    ) -> Result<SignApproval, GateRefusal>;
}
