//! `SigningOrder` v1: the bytes authorizers sign and from which a signer recomputes what it
//! signs (SIG-01: the signer hashes the preimage itself; a bare digest is never an order).
//!
//! | field | encoding |
//! |---|---|
//! | tag | the 16 bytes `custody.order.v1` |
//! | fleet id | u16 length ‖ UTF-8 (1–64 bytes) |
//! | key id | 32 bytes |
//! | path | u8 depth (≤ 32) ‖ depth × u32 (non-hardened: < 2^31) |
//! | not after | u64, Unix seconds: the order is refused after this time |
//! | digest rule | u8: 1 SHA-256, 2 double SHA-256, 3 Keccak-256 |
//! | inputs | u16 count (1–256) ‖ per input u32 length (≤ 1 MiB) ‖ message |
//!
//! All integers big-endian; nothing may follow the last input; the whole order is at most
//! [`MAX_ORDER_BYTES`]. The coordinator issue (#5) adds chain-specific kinds (an Ethereum or
//! Bitcoin transaction whose sighashes the signer computes); this kind carries the messages
//! to hash directly.

use sha2::{Digest, Sha256};
use sha3::Keccak256;

/// The leading tag of a v1 order.
pub const ORDER_TAG: &[u8; 16] = b"custody.order.v1";
/// Largest accepted order.
pub const MAX_ORDER_BYTES: usize = 4 << 20;
/// Most inputs per order.
pub const MAX_INPUTS: usize = 256;
/// Largest message per input.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Deepest derivation path.
pub const MAX_PATH_DEPTH: usize = 32;

/// How the digest of an input is computed from its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestRule {
    /// SHA-256(message).
    Sha256,
    /// SHA-256(SHA-256(message)) (Bitcoin's legacy hash).
    DoubleSha256,
    /// Keccak-256(message) (Ethereum).
    Keccak256,
}

impl DigestRule {
    fn code(self) -> u8 {
        match self {
            DigestRule::Sha256 => 1,
            DigestRule::DoubleSha256 => 2,
            DigestRule::Keccak256 => 3,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(DigestRule::Sha256),
            2 => Some(DigestRule::DoubleSha256),
            3 => Some(DigestRule::Keccak256),
            _ => None,
        }
    }

    /// The digest of `message` under this rule.
    pub fn digest(self, message: &[u8]) -> [u8; 32] {
        match self {
            DigestRule::Sha256 => Sha256::digest(message).into(),
            DigestRule::DoubleSha256 => Sha256::digest(Sha256::digest(message)).into(),
            DigestRule::Keccak256 => Keccak256::digest(message).into(),
        }
    }
}

/// A decoded v1 order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOrder {
    /// The fleet it is for.
    pub fleet_id: String,
    /// The key that signs.
    pub key_id: [u8; 32],
    /// Non-hardened BIP32 path of the child key that signs.
    pub path: Vec<u32>,
    /// Unix seconds after which the order is void.
    pub not_after: u64,
    /// How each input's digest is computed.
    pub rule: DigestRule,
    /// The messages to hash, one per signature.
    pub inputs: Vec<Vec<u8>>,
}

/// Why order bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Larger than [`MAX_ORDER_BYTES`].
    #[error("order is {0} bytes, at most {MAX_ORDER_BYTES} are accepted")]
    TooLarge(usize),
    /// Does not start with [`ORDER_TAG`].
    #[error("not a custody.order.v1 order")]
    WrongTag,
    /// Ends inside a field.
    #[error("order truncated in {0}")]
    Truncated(&'static str),
    /// A field holds a value outside its range.
    #[error("order field {0}: {1}")]
    Invalid(&'static str, &'static str),
    /// Bytes after the last input.
    #[error("{0} bytes after the last input")]
    Trailing(usize),
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], OrderError> {
        if self.0.len() < n {
            return Err(OrderError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], OrderError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }
}

impl SigningOrder {
    /// The canonical encoding (what authorizers sign).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(ORDER_TAG);
        out.extend_from_slice(&(self.fleet_id.len() as u16).to_be_bytes());
        out.extend_from_slice(self.fleet_id.as_bytes());
        out.extend_from_slice(&self.key_id);
        out.push(self.path.len() as u8);
        for i in &self.path {
            out.extend_from_slice(&i.to_be_bytes());
        }
        out.extend_from_slice(&self.not_after.to_be_bytes());
        out.push(self.rule.code());
        out.extend_from_slice(&(self.inputs.len() as u16).to_be_bytes());
        for m in &self.inputs {
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    /// Strict decoding: every length checked before use, canonical form only.
    pub fn decode(bytes: &[u8]) -> Result<Self, OrderError> {
        if bytes.len() > MAX_ORDER_BYTES {
            return Err(OrderError::TooLarge(bytes.len()));
        }
        let mut r = Reader(bytes);
        if r.take(ORDER_TAG.len(), "tag")? != ORDER_TAG {
            return Err(OrderError::WrongTag);
        }
        let fleet_len = usize::from(u16::from_be_bytes(r.array("fleet id length")?));
        if fleet_len == 0 || fleet_len > 64 {
            return Err(OrderError::Invalid("fleet id", "1 to 64 bytes"));
        }
        let fleet_id = core::str::from_utf8(r.take(fleet_len, "fleet id")?)
            .map_err(|_| OrderError::Invalid("fleet id", "not UTF-8"))?
            .to_owned();
        let key_id = r.array("key id")?;
        let depth = usize::from(r.array::<1>("path depth")?[0]);
        if depth > MAX_PATH_DEPTH {
            return Err(OrderError::Invalid("path", "deeper than 32"));
        }
        let mut path = Vec::with_capacity(depth);
        for _ in 0..depth {
            let i = u32::from_be_bytes(r.array("path")?);
            if i >= 1 << 31 {
                return Err(OrderError::Invalid("path", "hardened index"));
            }
            path.push(i);
        }
        let not_after = u64::from_be_bytes(r.array("not after")?);
        let rule = DigestRule::from_code(r.array::<1>("digest rule")?[0])
            .ok_or(OrderError::Invalid("digest rule", "unknown rule"))?;
        let count = usize::from(u16::from_be_bytes(r.array("input count")?));
        if count == 0 || count > MAX_INPUTS {
            return Err(OrderError::Invalid("inputs", "1 to 256 inputs"));
        }
        let mut inputs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u32::from_be_bytes(r.array("input length")?) as usize;
            if len > MAX_INPUT_BYTES {
                return Err(OrderError::Invalid("input", "longer than 1 MiB"));
            }
            inputs.push(r.take(len, "input")?.to_vec());
        }
        if !r.0.is_empty() {
            return Err(OrderError::Trailing(r.0.len()));
        }
        Ok(Self {
            fleet_id,
            key_id,
            path,
            not_after,
            rule,
            inputs,
        })
    }
}
