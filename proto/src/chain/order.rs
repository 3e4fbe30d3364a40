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

/// Tag that opens a cancellation commitment's encoding.
pub const CANCELLATION_COMMITMENT_TAG: &str = "custody.chain.v1/cancellation-commitment";

/// The chain's decision to sign a **cancellation** of the lock-out `lockout_id`: an external
/// transaction that uses up the same nonce or outputs as the lock-out's committed order,
/// paying nothing out, so that a payment whose signing started but could not finish can
/// never be mined afterwards. A signer treats it like an [`OrderCommitment`] (the chain
/// decided; it signs `order`); `fee` is what the cancellation may cost at most, in the
/// external chain's smallest unit, and is deducted from the refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancellationCommitment {
    /// The lock-out whose order this cancels.
    pub lockout_id: [u8; 32],
    /// The most the cancellation costs on the external chain.
    pub fee: u128,
    /// The complete unsigned cancelling transaction (custody.order.v2), 1..=[`MAX_ORDER_BYTES`].
    pub order: Vec<u8>,
}

impl CancellationCommitment {
    /// The canonical encoding: the tag, `lockout_id` (32), `fee` (u128), `order` (u32 length
    /// + bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(CANCELLATION_COMMITMENT_TAG);
        w.fixed(&self.lockout_id);
        w.u128(self.fee);
        w.var(&self.order);
        w.finish()
    }

    /// Decodes exactly one cancellation commitment; refuses an empty or over-long order.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, CANCELLATION_COMMITMENT_TAG)?;
        let lockout_id = r.array()?;
        let fee = r.u128()?;
        let order = r.var("order", MAX_ORDER_BYTES)?.to_vec();
        r.finish()?;
        Self::new(lockout_id, fee, order)
    }

    /// Builds a cancellation commitment; refuses an empty order or one over
    /// [`MAX_ORDER_BYTES`].
    pub fn new(lockout_id: [u8; 32], fee: u128, order: Vec<u8>) -> Result<Self, DecodeError> {
        let OrderCommitment { lockout_id, order } = OrderCommitment::new(lockout_id, order)?;
        Ok(Self {
            lockout_id,
            fee,
            order,
        })
    }
}

/// What a certified leaf authorizes a signer to sign: a lock-out's order or its
/// cancellation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommittedSigning {
    /// The payment order of a lock-out.
    Order(OrderCommitment),
    /// A transaction that cancels a lock-out's order.
    Cancellation(CancellationCommitment),
}

impl CommittedSigning {
    /// Decodes a leaf that is either commitment, chosen by its tag.
    pub fn decode(leaf: &[u8]) -> Result<Self, DecodeError> {
        if Reader::tagged(leaf, CANCELLATION_COMMITMENT_TAG).is_ok() {
            return CancellationCommitment::decode(leaf).map(Self::Cancellation);
        }
        OrderCommitment::decode(leaf).map(Self::Order)
    }

    /// The lock-out concerned.
    pub fn lockout_id(&self) -> [u8; 32] {
        match self {
            Self::Order(c) => c.lockout_id,
            Self::Cancellation(c) => c.lockout_id,
        }
    }

    /// The order bytes to sign.
    pub fn order(&self) -> &[u8] {
        match self {
            Self::Order(c) => &c.order,
            Self::Cancellation(c) => &c.order,
        }
    }
}
