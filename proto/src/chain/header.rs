//! The block header and its hash.

use sha2::{Digest, Sha256};

use super::codec::{Reader, Writer};
use super::{DecodeError, MAX_CHAIN_ID_BYTES};

/// Tag that opens a header's encoding (and therefore its hash preimage).
pub const HEADER_TAG: &str = "custody.chain.v1/block-header";

/// The only header version this crate produces and accepts.
pub const HEADER_VERSION: u16 = 1;

/// The header of one block of the coordinator's chain (DESIGN §6). The hash of the header
/// is what validators vote for and what the commit certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// Format version; must be [`HEADER_VERSION`].
    pub version: u16,
    /// The chain's name, 1..=[`MAX_CHAIN_ID_BYTES`] bytes of UTF-8.
    pub chain_id: String,
    /// Height of this block; the first block after genesis has height 1.
    pub height: u64,
    /// Hash of the previous block's header; for height 1, the hash of the chain's genesis
    /// record (defined by the producer; this crate does not read it).
    pub previous_hash: [u8; 32],
    /// Proposer's clock, milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// [`merkle_root`](super::merkle_root) of the block's transaction encodings, in block order.
    pub tx_root: [u8; 32],
    /// Root of the chain state after this block's transactions.
    pub state_root: [u8; 32],
    /// Ed25519 public key of the validator that proposed the block.
    pub proposer: [u8; 32],
}

impl BlockHeader {
    /// The canonical encoding: the tag, then `version` (u16), `chain_id` (u32 length +
    /// UTF-8), `height` (u64), `previous_hash` (32), `time_unix_ms` (u64), `tx_root` (32),
    /// `state_root` (32), `proposer` (32); integers big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(HEADER_TAG);
        w.u16(self.version);
        w.var(self.chain_id.as_bytes());
        w.u64(self.height);
        w.fixed(&self.previous_hash);
        w.u64(self.time_unix_ms);
        w.fixed(&self.tx_root);
        w.fixed(&self.state_root);
        w.fixed(&self.proposer);
        w.finish()
    }

    /// Decodes exactly one header; refuses an unknown version, a chain id that is empty,
    /// too long or not UTF-8, a short input and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, HEADER_TAG)?;
        let version = r.u16()?;
        if version != HEADER_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let chain_id = r.string("chain_id", MAX_CHAIN_ID_BYTES)?;
        let header = Self {
            version,
            chain_id,
            height: r.u64()?,
            previous_hash: r.array()?,
            time_unix_ms: r.u64()?,
            tx_root: r.array()?,
            state_root: r.array()?,
            proposer: r.array()?,
        };
        r.finish()?;
        Ok(header)
    }

    /// The block hash: SHA-256 of [`encode`](Self::encode), whose first bytes are the tag
    /// [`HEADER_TAG`], so no other format of this crate hashes to a block hash.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}
