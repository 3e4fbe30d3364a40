//! The transaction that commits a lock-out order, in a form a signer decodes without
//! knowing the rest of the chain's transaction format.

use super::codec::{Reader, Writer};
use super::DecodeError;

/// Tag that opens an order commitment's encoding.
pub const ORDER_COMMITMENT_TAG: &str = "custody.chain.v1/order-commitment";

/// Largest order (a complete unsigned external transaction) in bytes.
pub const MAX_ORDER_BYTES: usize = 256 * 1024;

/// The chain's decision to sign `order` for the lock-out `lockout_id`. Its encoding is,
/// byte for byte, the Merkle leaf of the transaction that commits the order, so a signer
/// that holds these bytes, an [`InclusionProof`](super::InclusionProof) and a certified
/// header knows the order was committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderCommitment {
    /// The lock-out this order settles.
    pub lockout_id: [u8; 32],
    /// The complete unsigned external transaction, 1..=[`MAX_ORDER_BYTES`] bytes.
    pub order: Vec<u8>,
}

impl OrderCommitment {
    /// The canonical encoding: the tag, `lockout_id` (32), `order` (u32 length + bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(ORDER_COMMITMENT_TAG);
        w.fixed(&self.lockout_id);
        w.var(&self.order);
        w.finish()
    }

    /// Decodes exactly one commitment; refuses an empty or over-long order.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, ORDER_COMMITMENT_TAG)?;
        let lockout_id = r.array()?;
        let order = r.var("order", MAX_ORDER_BYTES)?.to_vec();
        r.finish()?;
        Self::new(lockout_id, order)
    }

    /// Builds a commitment; refuses an empty order or one over [`MAX_ORDER_BYTES`].
    pub fn new(lockout_id: [u8; 32], order: Vec<u8>) -> Result<Self, DecodeError> {
        if order.is_empty() {
            return Err(DecodeError::Invalid {
                field: "order",
                reason: "empty",
            });
        }
        if order.len() > MAX_ORDER_BYTES {
            return Err(DecodeError::TooLong {
                field: "order",
                len: order.len(),
                max: MAX_ORDER_BYTES,
            });
        }
        Ok(Self { lockout_id, order })
    }
}
