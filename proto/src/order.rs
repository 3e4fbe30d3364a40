//! `SigningOrder` v2: the bytes the chain (or a quorum of authorizers) approves and from which
//! a signer recomputes what it signs (SIG-01: the signer hashes the preimage itself; a bare
//! digest is never an order). The coordinator writes it, every signer's gate reads it.
//!
//! | field | encoding |
//! |---|---|
//! | tag | the 16 bytes `custody.order.v2` |
//! | fleet id | u16 length ‖ UTF-8 (1–64 bytes) |
//! | key id | 32 bytes |
//! | not after | u64, Unix seconds: the order is refused after this time |
//! | inputs | u16 count (1–256) ‖ per input: path ‖ digest rule ‖ u32 length (≤ 1 MiB) ‖ message |
//! | path | u8 depth (≤ 32) ‖ depth × u32 (non-hardened: < 2^31) |
//! | digest rule | u8: 1 SHA-256, 2 double SHA-256, 3 Keccak-256 |
//!
//! All integers big-endian; nothing may follow the last input; the whole order is at most
//! [`MAX_ORDER_BYTES`]. Each input names the child key that signs it, because one external
//! transaction may spend from several deposit addresses (a Bitcoin lock-out with inputs at
//! different BIP32 paths). The message of an input is the complete signing preimage of the
//! external transaction (Ethereum: the EIP-2718 signing payload, hashed with Keccak-256;
//! Bitcoin: the BIP143 preimage, hashed with double SHA-256).

use sha2::{Digest, Sha256};
use sha3::Keccak256;

/// The leading tag of a v2 order.
pub const ORDER_TAG: &[u8; 16] = b"custody.order.v2";
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

/// One signature an order asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInput {
    /// Non-hardened BIP32 path of the child key that signs this input.
    pub path: Vec<u32>,
    /// How the digest is computed from `message`.
    pub rule: DigestRule,
    /// The signing preimage.
    pub message: Vec<u8>,
}

impl OrderInput {
    /// The digest to sign.
    pub fn digest(&self) -> [u8; 32] {
        self.rule.digest(&self.message)
    }
}

/// A decoded v2 order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOrder {
    /// The fleet it is for.
    pub fleet_id: String,
    /// The key that signs.
    pub key_id: [u8; 32],
    /// Unix seconds after which the order is void.
    pub not_after: u64,
    /// One entry per signature.
    pub inputs: Vec<OrderInput>,
}

/// Why order bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Larger than [`MAX_ORDER_BYTES`].
    #[error("order is {0} bytes, at most {MAX_ORDER_BYTES} are accepted")]
    TooLarge(usize),
    /// Does not start with [`ORDER_TAG`].
    #[error("not a custody.order.v2 order")]
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
    /// Checks every field against the limits [`SigningOrder::decode`] enforces.
    pub fn validate(&self) -> Result<(), OrderError> {
        if self.fleet_id.is_empty() || self.fleet_id.len() > 64 {
            return Err(OrderError::Invalid("fleet id", "1 to 64 bytes"));
        }
        if self.inputs.is_empty() || self.inputs.len() > MAX_INPUTS {
            return Err(OrderError::Invalid("inputs", "1 to 256 inputs"));
        }
        for input in &self.inputs {
            if input.path.len() > MAX_PATH_DEPTH {
                return Err(OrderError::Invalid("path", "deeper than 32"));
            }
            if input.path.iter().any(|&i| i >= 1 << 31) {
                return Err(OrderError::Invalid("path", "hardened index"));
            }
            if input.message.len() > MAX_INPUT_BYTES {
                return Err(OrderError::Invalid("input", "longer than 1 MiB"));
            }
        }
        Ok(())
    }

    /// The canonical encoding (what the chain commits and authorizers sign); refused when a
    /// field is outside the limits, so every encoded order decodes to itself.
    pub fn encode(&self) -> Result<Vec<u8>, OrderError> {
        self.validate()?;
        let mut out = Vec::new();
        out.extend_from_slice(ORDER_TAG);
        out.extend_from_slice(&(self.fleet_id.len() as u16).to_be_bytes());
        out.extend_from_slice(self.fleet_id.as_bytes());
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&self.not_after.to_be_bytes());
        out.extend_from_slice(&(self.inputs.len() as u16).to_be_bytes());
        for input in &self.inputs {
            out.push(input.path.len() as u8);
            for i in &input.path {
                out.extend_from_slice(&i.to_be_bytes());
            }
            out.push(input.rule.code());
            out.extend_from_slice(&(input.message.len() as u32).to_be_bytes());
            out.extend_from_slice(&input.message);
        }
        if out.len() > MAX_ORDER_BYTES {
            return Err(OrderError::TooLarge(out.len()));
        }
        Ok(out)
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
        let not_after = u64::from_be_bytes(r.array("not after")?);
        let count = usize::from(u16::from_be_bytes(r.array("input count")?));
        if count == 0 || count > MAX_INPUTS {
            return Err(OrderError::Invalid("inputs", "1 to 256 inputs"));
        }
        let mut inputs = Vec::with_capacity(count);
        for _ in 0..count {
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
            let rule = DigestRule::from_code(r.array::<1>("digest rule")?[0])
                .ok_or(OrderError::Invalid("digest rule", "unknown rule"))?;
            let len = u32::from_be_bytes(r.array("input length")?) as usize;
            if len > MAX_INPUT_BYTES {
                return Err(OrderError::Invalid("input", "longer than 1 MiB"));
            }
            let message = r.take(len, "input")?.to_vec();
            inputs.push(OrderInput {
                path,
                rule,
                message,
            });
        }
        if !r.0.is_empty() {
            return Err(OrderError::Trailing(r.0.len()));
        }
        Ok(Self {
            fleet_id,
            key_id,
            not_after,
            inputs,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn order() -> SigningOrder {
        SigningOrder {
            fleet_id: "devnet".into(),
            key_id: [9; 32],
            not_after: 2_000,
            inputs: vec![
                OrderInput {
                    path: vec![44, 60, 0, 0, 7],
                    rule: DigestRule::Keccak256,
                    message: b"first message".to_vec(),
                },
                OrderInput {
                    path: vec![],
                    rule: DigestRule::DoubleSha256,
                    message: vec![],
                },
            ],
        }
    }

    #[test]
    fn rules_are_the_standard_hashes() {
        let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(DigestRule::Keccak256.digest(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            hex(DigestRule::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            DigestRule::DoubleSha256.digest(b"abc"),
            DigestRule::Sha256.digest(&DigestRule::Sha256.digest(b"abc"))
        );
    }

    #[test]
    fn encoding_round_trips_and_refuses_every_truncation() {
        let o = order();
        let bytes = o.encode().unwrap();
        assert_eq!(SigningOrder::decode(&bytes).unwrap(), o);
        for n in 0..bytes.len() {
            assert!(
                SigningOrder::decode(&bytes[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(SigningOrder::decode(&longer), Err(OrderError::Trailing(1)));
        // the v1 tag (one path for the whole order) is another format
        let mut v1 = bytes;
        v1[15] = b'1';
        assert_eq!(SigningOrder::decode(&v1), Err(OrderError::WrongTag));
    }

    #[test]
    fn out_of_range_orders_are_not_encoded_and_not_decoded() {
        let mut hardened = order();
        hardened.inputs[0].path[0] = 1 << 31;
        assert!(matches!(
            hardened.encode(),
            Err(OrderError::Invalid("path", _))
        ));
        // the same bytes written by hand do not decode either
        let mut bytes = order().encode().unwrap();
        let at = 16 + 2 + 6 + 32 + 8 + 2 + 1;
        bytes[at] = 0x80;
        assert!(matches!(
            SigningOrder::decode(&bytes),
            Err(OrderError::Invalid("path", _))
        ));
        let mut empty = order();
        empty.inputs.clear();
        assert!(matches!(
            empty.encode(),
            Err(OrderError::Invalid("inputs", _))
        ));
        let mut deep = order();
        deep.inputs[0].path = vec![1; 300];
        assert!(matches!(deep.encode(), Err(OrderError::Invalid("path", _))));
        let mut fleet = order();
        fleet.fleet_id = String::new();
        assert!(fleet.encode().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut input = ORDER_TAG.to_vec();
            input.extend_from_slice(&bytes);
            let _ = SigningOrder::decode(&input);
            let _ = SigningOrder::decode(&bytes);
        }
    }
}
