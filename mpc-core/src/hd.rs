//! BIP32 non-hardened (public) key derivation for a threshold key (DESIGN §4, HD).
//!
//! In threshold ECDSA nobody holds the private key, so only BIP32's public derivation
//! CKDpub is available: for a parent extended public key (K_par, c_par) and an index
//! i < 2^31,
//!
//! ```text
//! I          = HMAC-SHA512(key = c_par, data = ser_P(K_par) ‖ ser_32(i))
//! I_L, I_R   = I[0..32], I[32..64]
//! K_i        = K_par + parse_256(I_L)·G,      c_i = I_R
//! ```
//!
//! Along a path the child secret is the parent secret plus the sum of the I_L values, so
//! derivation returns, next to the child public key, the total **additive shift**
//! s = Σ I_L (mod n): with x the shared secret, the child key is x + s. The signers sign with
//! their parent shares and add s once: with Shamir shares x_j of x over a signer set S
//! (x = Σ λ_j x_j, Σ λ_j = 1) every signer may use x_j + s; with additive shares exactly one
//! signer adds s. [`derive_shift`] is the entry point for presign/sign;
//! [`ExtendedPublicKey::derive_path`] also tracks BIP32's depth, parent fingerprint and child
//! number so the result serialises as a standard `xpub`.
//!
//! ## Deviations from BIP32
//! - Hardened indices (≥ 2^31) are refused everywhere ([`ChildIndex`], [`DerivationPath`] and
//!   its parser and decoder): they need the private key.
//! - BIP32 says that when parse_256(I_L) ≥ n or K_i is the point at infinity "one should
//!   proceed with the next value for i". We do not skip silently: derivation fails with
//!   [`HdError::InvalidChild`] naming the index, and the caller chooses another path (the
//!   path must be fixed before presigning, so it is the caller's decision, not ours). Either
//!   case has probability below 2^-127 per step.
//!
//! ## Public material
//! Chain codes, paths and shifts are not secret here: anyone holding the root `xpub` can
//! compute every shift. (As BIP32 warns, an `xpub` plus one non-hardened child private key
//! gives the parent private key; in this appliance no child private key exists in one place.)
//!
//! The 78-byte BIP32 serialisation is provided as bytes; Base58Check is left to callers.

use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::Group;
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use ripemd::Ripemd160;
use sha2::{Digest, Sha256, Sha512};

use crate::encoding::{point_bytes, DecodeError, Reader, Writer};

type HmacSha512 = Hmac<Sha512>;

/// First hardened index, 2^31. Every index at or above it is refused.
pub const HARDENED_OFFSET: u32 = 1 << 31;

/// Longest accepted derivation path; also BIP32's largest depth (its depth field is one byte).
pub const MAX_DEPTH: usize = 255;

/// Type tag of the canonical [`DerivationPath`] encoding ([`DerivationPath::to_bytes`]).
pub const PATH_TAG: u8 = 0x20;

/// Length of the BIP32 extended-key serialisation.
pub const XPUB_LEN: usize = 78;

/// BIP32 version bytes of a mainnet extended public key (`xpub…` in Base58Check).
pub const XPUB_VERSION_MAINNET: [u8; 4] = [0x04, 0x88, 0xB2, 0x1E];

/// BIP32 version bytes of a testnet extended public key (`tpub…` in Base58Check).
pub const XPUB_VERSION_TESTNET: [u8; 4] = [0x04, 0x35, 0x87, 0xCF];

/// Why a derivation or an extended key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HdError {
    /// The index is hardened (≥ 2^31); public derivation is only defined below 2^31.
    #[error("index {index} is hardened (≥ 2^31); only non-hardened derivation is possible")]
    HardenedIndex {
        /// The refused index.
        index: u32,
    },
    /// BIP32's invalid child: parse_256(I_L) ≥ n or the child key is the point at infinity.
    /// BIP32 would move on to the next index; we refuse and let the caller pick another path.
    #[error("BIP32 child {index} is invalid (I_L ≥ n or point at infinity); choose another index")]
    InvalidChild {
        /// The index whose child is invalid.
        index: u32,
    },
    /// A path longer than [`MAX_DEPTH`].
    #[error("derivation path has {len} levels, more than the {max} allowed")]
    PathTooDeep {
        /// Levels requested.
        len: usize,
        /// [`MAX_DEPTH`].
        max: usize,
    },
    /// Deriving would take the key beyond BIP32's depth 255.
    #[error("a key at depth {depth} cannot be derived {steps} more levels (BIP32 depth ≤ 255)")]
    DepthOverflow {
        /// Depth of the starting key.
        depth: u8,
        /// Levels requested.
        steps: usize,
    },
    /// The public key is the point at infinity.
    #[error("the public key is the point at infinity")]
    IdentityKey,
}

/// Why a string is not a non-hardened derivation path `m/i_1/…/i_d`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParsePathError {
    /// The path does not start with `m` (only the lower-case spelling is accepted).
    #[error("derivation path must start with \"m\"")]
    MissingRoot,
    /// A level is empty (`m/`, `m//1`).
    #[error("level {level} of the derivation path is empty")]
    EmptyLevel {
        /// 1-based level (the depth the index would give).
        level: usize,
    },
    /// A level is hardened: marked with `'`, `h` or `H`, or a number in [2^31, 2^32).
    #[error(
        "level {level} of the derivation path is hardened; only non-hardened indices are allowed"
    )]
    Hardened {
        /// 1-based level.
        level: usize,
    },
    /// A level is not a canonical decimal number (sign, leading zero, other characters).
    #[error("level {level} of the derivation path is not a canonical decimal index")]
    NotAnIndex {
        /// 1-based level.
        level: usize,
    },
    /// A level is 2^32 or more.
    #[error("level {level} of the derivation path is not below 2^32")]
    OutOfRange {
        /// 1-based level.
        level: usize,
    },
    /// More than [`MAX_DEPTH`] levels.
    #[error("derivation path has more than {max} levels")]
    TooDeep {
        /// [`MAX_DEPTH`].
        max: usize,
    },
}

/// Why 78 bytes are not a BIP32 extended public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XpubDecodeError {
    /// Not exactly [`XPUB_LEN`] bytes.
    #[error("extended public key is {len} bytes, expected 78")]
    WrongLength {
        /// Length found.
        len: usize,
    },
    /// Version bytes other than the expected ones (e.g. a private key's).
    #[error("unexpected extended key version {got:02x?}")]
    WrongVersion {
        /// Version found.
        got: [u8; 4],
    },
    /// The key data is not a SEC1 compressed point (prefix 0x02/0x03, x on the curve).
    #[error("key data is not a compressed secp256k1 public key")]
    BadPublicKey,
    /// Depth 0 (a master key) with a non-zero parent fingerprint or child number.
    #[error("depth 0 with a non-zero parent fingerprint or child number")]
    InconsistentRoot,
}

/// A BIP32 chain code c (32 bytes). Public material in this design.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ChainCode(pub [u8; 32]);

impl ChainCode {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// First 4 bytes of HASH160(ser_P(K)) = RIPEMD160(SHA256(ser_P(K))): BIP32's key fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Fingerprint(pub [u8; 4]);

/// A non-hardened BIP32 child index, i < 2^31.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ChildIndex(u32);

impl ChildIndex {
    /// The largest non-hardened index, 2^31 − 1.
    pub const MAX: Self = Self(HARDENED_OFFSET - 1);

    /// The index `i`, refused if hardened (≥ 2^31).
    pub fn new(i: u32) -> Result<Self, HdError> {
        if i >= HARDENED_OFFSET {
            return Err(HdError::HardenedIndex { index: i });
        }
        Ok(Self(i))
    }

    /// The index as a number (always < 2^31).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for ChildIndex {
    type Error = HdError;
    fn try_from(i: u32) -> Result<Self, HdError> {
        Self::new(i)
    }
}

impl fmt::Display for ChildIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A non-hardened derivation path `m/i_1/…/i_d`, d ≤ [`MAX_DEPTH`]. The empty path is `m`.
///
/// Parse with [`str::parse`] (`"m/0/1".parse()`), print with `Display`, and encode with
/// [`Self::to_bytes`] / [`Self::from_bytes`]: tag [`PATH_TAG`], one byte d, then d big-endian
/// u32 indices. The encoding is canonical (one path, one byte string), so it can be hashed
/// into a presigning transcript to fix the path (checklist SIG-02).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct DerivationPath {
    indices: Vec<ChildIndex>,
}

impl DerivationPath {
    /// The empty path `m` (the key itself, shift 0).
    pub fn root() -> Self {
        Self::default()
    }

    /// The path through `indices`, refusing hardened indices and more than [`MAX_DEPTH`] levels.
    pub fn from_indices(indices: &[u32]) -> Result<Self, HdError> {
        if indices.len() > MAX_DEPTH {
            return Err(HdError::PathTooDeep {
                len: indices.len(),
                max: MAX_DEPTH,
            });
        }
        let indices = indices
            .iter()
            .map(|i| ChildIndex::new(*i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { indices })
    }

    /// Appends one level, refusing to go beyond [`MAX_DEPTH`].
    pub fn push(&mut self, index: ChildIndex) -> Result<(), HdError> {
        if self.indices.len() >= MAX_DEPTH {
            return Err(HdError::PathTooDeep {
                len: self.indices.len() + 1,
                max: MAX_DEPTH,
            });
        }
        self.indices.push(index);
        Ok(())
    }

    /// The indices, from the root down.
    pub fn indices(&self) -> &[ChildIndex] {
        &self.indices
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether this is the empty path `m`.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Canonical encoding: [`PATH_TAG`] ‖ u8 depth ‖ depth × u32 (big-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(PATH_TAG);
        // len ≤ MAX_DEPTH = 255 by construction.
        w.u8(self.indices.len() as u8);
        for i in &self.indices {
            w.u32(i.get());
        }
        w.finish()
    }

    /// Decodes [`Self::to_bytes`], refusing a wrong tag, truncation, trailing bytes and hardened
    /// indices ([`DecodeError::OutOfRange`]). Reads at most 1 + 1 + 4·255 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, PATH_TAG)?;
        let depth = usize::from(r.u8("hd path depth")?);
        // depth ≤ 255 = MAX_DEPTH, so the allocation is bounded whatever the input says.
        let mut indices = Vec::with_capacity(depth);
        for _ in 0..depth {
            let raw = r.u32("hd path index")?;
            let index = ChildIndex::new(raw).map_err(|_| DecodeError::OutOfRange {
                field: "hd path index",
            })?;
            indices.push(index);
        }
        r.finish()?;
        Ok(Self { indices })
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for i in &self.indices {
            write!(f, "/{i}")?;
        }
        Ok(())
    }
}

impl FromStr for DerivationPath {
    type Err = ParsePathError;

    /// Parses `m` or `m/i_1/…/i_d` with canonical decimal indices below 2^31 (no sign, no
    /// leading zero, no whitespace). Hardened markers `'`, `h`, `H` and numbers in
    /// [2^31, 2^32) give [`ParsePathError::Hardened`].
    fn from_str(s: &str) -> Result<Self, ParsePathError> {
        let mut parts = s.split('/');
        if parts.next() != Some("m") {
            return Err(ParsePathError::MissingRoot);
        }
        let mut indices = Vec::new();
        for (k, part) in parts.enumerate() {
            let level = k + 1;
            if level > MAX_DEPTH {
                return Err(ParsePathError::TooDeep { max: MAX_DEPTH });
            }
            indices.push(parse_level(part, level)?);
        }
        Ok(Self { indices })
    }
}

/// One level of a textual path.
fn parse_level(part: &str, level: usize) -> Result<ChildIndex, ParsePathError> {
    let (digits, hardened_marker) = match part.strip_suffix(['\'', 'h', 'H']) {
        Some(rest) => (rest, true),
        None => (part, false),
    };
    if digits.is_empty() {
        return Err(if hardened_marker {
            ParsePathError::NotAnIndex { level }
        } else {
            ParsePathError::EmptyLevel { level }
        });
    }
    let canonical =
        digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return Err(ParsePathError::NotAnIndex { level });
    }
    if hardened_marker {
        return Err(ParsePathError::Hardened { level });
    }
    // At most 10 digits fit in a u32; more is out of range (and avoids any overflow).
    let value = if digits.len() > 10 {
        None
    } else {
        digits
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= u64::from(u32::MAX))
    };
    match value {
        None => Err(ParsePathError::OutOfRange { level }),
        Some(v) if v >= u64::from(HARDENED_OFFSET) => Err(ParsePathError::Hardened { level }),
        Some(v) => Ok(ChildIndex(v as u32)),
    }
}

/// A BIP32 extended public key: (K, c) with the depth, parent fingerprint and child number of
/// its serialisation. K is never the point at infinity.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtendedPublicKey {
    public_key: ProjectivePoint,
    chain_code: ChainCode,
    depth: u8,
    parent_fingerprint: Fingerprint,
    child_number: u32,
}

impl ExtendedPublicKey {
    /// A master key (depth 0, parent fingerprint 0, child number 0), e.g. the DKG's joint
    /// public key with its jointly generated chain code.
    pub fn new_master(public_key: ProjectivePoint, chain_code: ChainCode) -> Result<Self, HdError> {
        if bool::from(public_key.is_identity()) {
            return Err(HdError::IdentityKey);
        }
        Ok(Self {
            public_key,
            chain_code,
            depth: 0,
            parent_fingerprint: Fingerprint::default(),
            child_number: 0,
        })
    }

    /// The public key K.
    pub fn public_key(&self) -> &ProjectivePoint {
        &self.public_key
    }

    /// The chain code c.
    pub fn chain_code(&self) -> &ChainCode {
        &self.chain_code
    }

    /// Depth in the tree (0 for a master key).
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// Fingerprint of the parent key (zero for a master key).
    pub fn parent_fingerprint(&self) -> Fingerprint {
        self.parent_fingerprint
    }

    /// The index this key was derived with (zero for a master key). Keys decoded from a
    /// serialisation may carry a hardened number (they were derived by a private-key holder).
    pub fn child_number(&self) -> u32 {
        self.child_number
    }

    /// BIP32 key identifier HASH160(ser_P(K)) = RIPEMD160(SHA256(ser_P(K))).
    pub fn identifier(&self) -> [u8; 20] {
        let sha = Sha256::digest(point_bytes(&self.public_key));
        Ripemd160::digest(sha).into()
    }

    /// BIP32 key fingerprint: the first 4 bytes of [`Self::identifier`].
    pub fn fingerprint(&self) -> Fingerprint {
        let id = self.identifier();
        Fingerprint([id[0], id[1], id[2], id[3]])
    }

    /// CKDpub: the child at `index`, with depth + 1, this key's fingerprint as parent
    /// fingerprint and `index` as child number.
    pub fn derive_child(&self, index: ChildIndex) -> Result<Self, HdError> {
        Ok(self.derive_child_with_shift(index)?.0)
    }

    /// The key at `path` below this one and the additive shift s = Σ I_L (mod n): if this key
    /// is x·G, the child key is (x + s)·G. The empty path gives this key and shift 0.
    pub fn derive_path(&self, path: &DerivationPath) -> Result<(Self, Scalar), HdError> {
        if usize::from(self.depth) + path.len() > MAX_DEPTH {
            return Err(HdError::DepthOverflow {
                depth: self.depth,
                steps: path.len(),
            });
        }
        let mut key = *self;
        let mut shift = Scalar::ZERO;
        for index in path.indices() {
            let (child, il) = key.derive_child_with_shift(*index)?;
            key = child;
            shift += il;
        }
        Ok((key, shift))
    }

    fn derive_child_with_shift(&self, index: ChildIndex) -> Result<(Self, Scalar), HdError> {
        let depth = self.depth.checked_add(1).ok_or(HdError::DepthOverflow {
            depth: self.depth,
            steps: 1,
        })?;
        let (public_key, chain_code, il) = ckd_pub(&self.public_key, &self.chain_code, index)?;
        let child = Self {
            public_key,
            chain_code,
            depth,
            parent_fingerprint: self.fingerprint(),
            child_number: index.get(),
        };
        Ok((child, il))
    }

    /// The 78-byte BIP32 serialisation with mainnet `xpub` version bytes.
    pub fn to_bip32_bytes(&self) -> [u8; XPUB_LEN] {
        self.to_bip32_bytes_with_version(XPUB_VERSION_MAINNET)
    }

    /// The 78-byte BIP32 serialisation: version ‖ depth ‖ parent fingerprint ‖ ser_32(child
    /// number) ‖ chain code ‖ ser_P(K).
    pub fn to_bip32_bytes_with_version(&self, version: [u8; 4]) -> [u8; XPUB_LEN] {
        let mut out = [0u8; XPUB_LEN];
        out[0..4].copy_from_slice(&version);
        out[4] = self.depth;
        out[5..9].copy_from_slice(&self.parent_fingerprint.0);
        out[9..13].copy_from_slice(&self.child_number.to_be_bytes());
        out[13..45].copy_from_slice(&self.chain_code.0);
        out[45..78].copy_from_slice(&point_bytes(&self.public_key));
        out
    }

    /// Decodes a mainnet `xpub` serialisation (see [`Self::from_bip32_bytes_with_version`]).
    pub fn from_bip32_bytes(bytes: &[u8]) -> Result<Self, XpubDecodeError> {
        Self::from_bip32_bytes_with_version(bytes, XPUB_VERSION_MAINNET)
    }

    /// Decodes a 78-byte serialisation with the given version bytes. Refuses another length or
    /// version (private keys included), key data that is not a compressed point on the curve,
    /// and depth 0 with a non-zero parent fingerprint or child number.
    pub fn from_bip32_bytes_with_version(
        bytes: &[u8],
        version: [u8; 4],
    ) -> Result<Self, XpubDecodeError> {
        let b: &[u8; XPUB_LEN] = bytes
            .try_into()
            .map_err(|_| XpubDecodeError::WrongLength { len: bytes.len() })?;
        let got = [b[0], b[1], b[2], b[3]];
        if got != version {
            return Err(XpubDecodeError::WrongVersion { got });
        }
        let depth = b[4];
        let parent_fingerprint = Fingerprint([b[5], b[6], b[7], b[8]]);
        let child_number = u32::from_be_bytes([b[9], b[10], b[11], b[12]]);
        if depth == 0 && (parent_fingerprint != Fingerprint::default() || child_number != 0) {
            return Err(XpubDecodeError::InconsistentRoot);
        }
        let mut chain_code = [0u8; 32];
        chain_code.copy_from_slice(&b[13..45]);
        let key = &b[45..78];
        if key[0] != 0x02 && key[0] != 0x03 {
            return Err(XpubDecodeError::BadPublicKey);
        }
        let mut repr = k256::CompressedPoint::default();
        repr.copy_from_slice(key);
        let affine = Option::<AffinePoint>::from(AffinePoint::from_bytes(&repr))
            .ok_or(XpubDecodeError::BadPublicKey)?;
        Ok(Self {
            public_key: ProjectivePoint::from(affine),
            chain_code: ChainCode(chain_code),
            depth,
            parent_fingerprint,
            child_number,
        })
    }
}

/// The child public key at `path` below (K, c) and the additive shift s = Σ I_L (mod n), so
/// that a secret x with K = x·G gives the child key (x + s)·G. For presign and sign: the
/// signers use their shares of x and add s (see the module docs).
///
/// Refuses an identity K, and a path with an invalid child ([`HdError::InvalidChild`]).
pub fn derive_shift(
    public_key: &ProjectivePoint,
    chain_code: &ChainCode,
    path: &DerivationPath,
) -> Result<(ProjectivePoint, Scalar), HdError> {
    if bool::from(public_key.is_identity()) {
        return Err(HdError::IdentityKey);
    }
    let mut key = *public_key;
    let mut code = *chain_code;
    let mut shift = Scalar::ZERO;
    for index in path.indices() {
        let (child, child_code, il) = ckd_pub(&key, &code, *index)?;
        key = child;
        code = child_code;
        shift += il;
    }
    Ok((key, shift))
}

/// BIP32 CKDpub for a non-identity parent: (K_i, c_i, parse_256(I_L)).
fn ckd_pub(
    parent: &ProjectivePoint,
    chain_code: &ChainCode,
    index: ChildIndex,
) -> Result<(ProjectivePoint, ChainCode, Scalar), HdError> {
    // HMAC pads a key shorter than the hash's block size with zeros to that size (RFC 2104),
    // so c_par zero-padded to the SHA-512 block is the same key; this form cannot fail.
    let mut key = hmac::digest::Key::<HmacSha512>::default();
    key[..32].copy_from_slice(&chain_code.0);
    let mut mac = <HmacSha512 as KeyInit>::new(&key);
    mac.update(&point_bytes(parent));
    mac.update(&index.get().to_be_bytes());
    let i = mac.finalize().into_bytes();
    let mut il = [0u8; 32];
    il.copy_from_slice(&i[..32]);
    let mut ir = [0u8; 32];
    ir.copy_from_slice(&i[32..]);
    let (child, tweak) = apply_il(parent, &il, index)?;
    Ok((child, ChainCode(ir), tweak))
}

/// K_par + parse_256(I_L)·G, refusing BIP32's two invalid cases.
fn apply_il(
    parent: &ProjectivePoint,
    il: &[u8; 32],
    index: ChildIndex,
) -> Result<(ProjectivePoint, Scalar), HdError> {
    let invalid = HdError::InvalidChild { index: index.get() };
    let mut repr = FieldBytes::default();
    repr.copy_from_slice(il);
    // from_repr refuses values ≥ n.
    let tweak = Option::<Scalar>::from(Scalar::from_repr(repr)).ok_or(invalid.clone())?;
    let child = *parent + ProjectivePoint::GENERATOR * tweak;
    if bool::from(child.is_identity()) {
        return Err(invalid);
    }
    Ok((child, tweak))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use k256::elliptic_curve::Field;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    const SEED: u64 = 0x6864_2d62_6970_3332; // "hd-bip32"

    fn decode_b58(s: &str) -> Vec<u8> {
        bs58::decode(s).with_check(None).into_vec().unwrap()
    }

    fn encode_b58(bytes: &[u8]) -> String {
        bs58::encode(bytes).with_check().into_string()
    }

    fn xpub(s: &str) -> ExtendedPublicKey {
        ExtendedPublicKey::from_bip32_bytes(&decode_b58(s)).unwrap()
    }

    fn path(s: &str) -> DerivationPath {
        s.parse().unwrap()
    }

    // BIP32 test vectors, copied from bitcoin/bips bip-0032.mediawiki ("Test Vectors"). Only the
    // `ext pub` lines are used: public derivation can check exactly the non-hardened steps.
    const V1_M: &str = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
    const V1_M_0H: &str = "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw";
    const V1_M_0H_1: &str = "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ";
    const V1_M_0H_1_2H: &str = "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5";
    const V1_M_0H_1_2H_2: &str = "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV";
    const V1_M_0H_1_2H_2_1E9: &str = "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy";
    const V1_M_XPRV: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
    const V2_M: &str = "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB";
    const V2_M_0: &str = "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH";
    const V2_M_0_MAXH: &str = "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a";
    const V2_M_0_MAXH_1: &str = "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon";
    const V2_M_0_MAXH_1_MAX1H: &str = "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL";
    const V2_M_0_MAXH_1_MAX1H_2: &str = "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt";
    const V3_M: &str = "xpub661MyMwAqRbcEZVB4dScxMAdx6d4nFc9nvyvH3v4gJL378CSRZiYmhRoP7mBy6gSPSCYk6SzXPTf3ND1cZAceL7SfJ1Z3GC8vBgp2epUt13";
    const V3_M_0H: &str = "xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y";

    /// Every published chain, root first, as (xpub, index of the step that produced it).
    const CHAINS: &[&[(&str, u32)]] = &[
        &[
            (V1_M, 0),
            (V1_M_0H, HARDENED_OFFSET),
            (V1_M_0H_1, 1),
            (V1_M_0H_1_2H, HARDENED_OFFSET + 2),
            (V1_M_0H_1_2H_2, 2),
            (V1_M_0H_1_2H_2_1E9, 1_000_000_000),
        ],
        &[
            (V2_M, 0),
            (V2_M_0, 0),
            (V2_M_0_MAXH, HARDENED_OFFSET + 2_147_483_647),
            (V2_M_0_MAXH_1, 1),
            (V2_M_0_MAXH_1_MAX1H, HARDENED_OFFSET + 2_147_483_646),
            (V2_M_0_MAXH_1_MAX1H_2, 2),
        ],
        &[(V3_M, 0), (V3_M_0H, HARDENED_OFFSET)],
    ];

    #[test]
    fn bip32_vectors_public_derivation_steps() {
        // Every non-hardened step of vectors 1 and 2 (vectors 3 and 4 have none).
        let steps = [
            (V1_M_0H, 1, V1_M_0H_1),
            (V1_M_0H_1_2H, 2, V1_M_0H_1_2H_2),
            (V1_M_0H_1_2H_2, 1_000_000_000, V1_M_0H_1_2H_2_1E9),
            (V2_M, 0, V2_M_0),
            (V2_M_0_MAXH, 1, V2_M_0_MAXH_1),
            (V2_M_0_MAXH_1_MAX1H, 2, V2_M_0_MAXH_1_MAX1H_2),
        ];
        for (parent, i, child) in steps {
            let derived = xpub(parent)
                .derive_child(ChildIndex::new(i).unwrap())
                .unwrap();
            assert_eq!(derived, xpub(child), "{parent} / {i}");
            assert_eq!(encode_b58(&derived.to_bip32_bytes()), child);
        }
        // Two levels at once, and derive_shift agrees with derive_path.
        let parent = xpub(V1_M_0H_1_2H);
        let p = path("m/2/1000000000");
        let (child, shift) = parent.derive_path(&p).unwrap();
        assert_eq!(encode_b58(&child.to_bip32_bytes()), V1_M_0H_1_2H_2_1E9);
        let (key, shift2) = derive_shift(parent.public_key(), parent.chain_code(), &p).unwrap();
        assert_eq!((key, shift2), (*child.public_key(), shift));
        assert_eq!(
            key,
            *parent.public_key() + ProjectivePoint::GENERATOR * shift
        );
    }

    #[test]
    fn bip32_vectors_round_trip_and_fingerprints_link() {
        for chain in CHAINS {
            for (k, (s, number)) in chain.iter().enumerate() {
                let key = xpub(s);
                assert_eq!(encode_b58(&key.to_bip32_bytes()), *s);
                assert_eq!(usize::from(key.depth()), k);
                assert_eq!(key.child_number(), *number);
                if k == 0 {
                    assert_eq!(key.parent_fingerprint(), Fingerprint::default());
                } else {
                    // HASH160 fingerprints checked on published data, hardened steps included.
                    assert_eq!(key.parent_fingerprint(), xpub(chain[k - 1].0).fingerprint());
                }
            }
        }
        // The master of vector 1 is a key without a parent: BIP32 master keys are made by
        // new_master the same way.
        let m = xpub(V1_M);
        assert_eq!(
            ExtendedPublicKey::new_master(*m.public_key(), *m.chain_code()).unwrap(),
            m
        );
    }

    #[test]
    fn bip32_invalid_extended_public_keys_are_refused() {
        // The `xpub` entries of BIP32 test vector 5 (not in the stored revision of the BIP
        // text that ends at vector 3; taken from its reproductions in other test suites). Each
        // entry's stated defect is checked on the raw bytes before our decoder is asked.
        let b = |s: &str| decode_b58(s);
        // pubkey version / prvkey mismatch: key data is 0x00 ‖ 32 bytes
        let raw = b("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6LBpB85b3D2yc8sfvZU521AAwdZafEz7mnzBBsz4wKY5fTtTQBm");
        assert_eq!((&raw[0..4], raw[45]), (&XPUB_VERSION_MAINNET[..], 0x00));
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes(&raw),
            Err(XpubDecodeError::BadPublicKey)
        );
        // invalid pubkey prefix 04, invalid pubkey prefix 01
        for (s, prefix) in [
            ("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Txnt3siSujt9RCVYsx4qHZGc62TG4McvMGcAUjeuwZdduYEvFn", 0x04),
            ("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6N8ZMMXctdiCjxTNq964yKkwrkBJJwpzZS4HS2fxvyYUA4q2Xe4", 0x01),
        ] {
            let raw = b(s);
            assert_eq!(raw[45], prefix);
            assert_eq!(
                ExtendedPublicKey::from_bip32_bytes(&raw),
                Err(XpubDecodeError::BadPublicKey)
            );
        }
        // invalid pubkey 020000000000000000000000000000000000000000000000000000000000000007
        let raw = b("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Q5JXayek4PRsn35jii4veMimro1xefsM58PgBMrvdYre8QyULY");
        let mut not_on_curve = [0u8; 33];
        not_on_curve[0] = 0x02;
        not_on_curve[32] = 0x07;
        assert_eq!(raw[45..], not_on_curve);
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes(&raw),
            Err(XpubDecodeError::BadPublicKey)
        );
        // zero depth with non-zero parent fingerprint
        let raw = b("xpub661no6RGEX3uJkY4bNnPcw4URcQTrSibUZ4NqJEw5eBkv7ovTwgiT91XX27VbEXGENhYRCf7hyEbWrR3FewATdCEebj6znwMfQkhRYHRLpJ");
        assert!(raw[4] == 0 && raw[5..9] != [0; 4]);
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes(&raw),
            Err(XpubDecodeError::InconsistentRoot)
        );
        // zero depth with non-zero index
        let raw = b("xpub661MyMwAuDcm6CRQ5N4qiHKrJ39Xe1R1NyfouMKTTWcguwVcfrZJaNvhpebzGerh7gucBvzEQWRugZDuDXjNDRmXzSZe4c7mnTK97pTvGS8");
        assert!(raw[4] == 0 && raw[5..9] == [0; 4] && raw[9..13] != [0; 4]);
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes(&raw),
            Err(XpubDecodeError::InconsistentRoot)
        );
        // unknown extended key version (twice), and a private key from vector 1
        for s in [
            "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHGMQzT7ayAmfo4z3gY5KfbrZWZ6St24UVf2Qgo6oujFktLHdHY4",
            "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHPmHJiEDXkTiJTVV9rHEBUem2mwVbbNfvT2MTcAqj3nesx8uBf9",
            V1_M_XPRV,
        ] {
            let raw = b(s);
            assert_eq!(raw.len(), XPUB_LEN);
            assert!(matches!(
                ExtendedPublicKey::from_bip32_bytes(&raw),
                Err(XpubDecodeError::WrongVersion { .. })
            ));
        }
    }

    #[test]
    fn xpub_decoder_rejects_garbage_and_truncation() {
        let good = decode_b58(V1_M_0H_1);
        for len in [0, 1, 45, 77] {
            assert_eq!(
                ExtendedPublicKey::from_bip32_bytes(&good[..len]),
                Err(XpubDecodeError::WrongLength { len })
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes(&long),
            Err(XpubDecodeError::WrongLength { len: 79 })
        );
        // x ≥ p
        let mut bad = good.clone();
        bad[46..].fill(0xFF);
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes(&bad),
            Err(XpubDecodeError::BadPublicKey)
        );
        // all-zero key data (our internal encoding of the identity) is no key
        let mut zero = good.clone();
        zero[45..].fill(0);
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes(&zero),
            Err(XpubDecodeError::BadPublicKey)
        );
        // testnet version: refused as mainnet, accepted as testnet, and round-trips
        let key = xpub(V1_M_0H_1);
        let tpub = key.to_bip32_bytes_with_version(XPUB_VERSION_TESTNET);
        assert!(matches!(
            ExtendedPublicKey::from_bip32_bytes(&tpub),
            Err(XpubDecodeError::WrongVersion { .. })
        ));
        assert_eq!(
            ExtendedPublicKey::from_bip32_bytes_with_version(&tpub, XPUB_VERSION_TESTNET),
            Ok(key)
        );
    }

    fn random_xpub(rng: &mut ChaCha20Rng) -> (Scalar, ExtendedPublicKey) {
        let x = Scalar::random(&mut *rng);
        let mut raw = [0u8; XPUB_LEN];
        raw[0..4].copy_from_slice(&XPUB_VERSION_MAINNET);
        let depth: u8 = if rng.gen_bool(0.3) {
            0
        } else {
            rng.gen_range(1..=249)
        };
        raw[4] = depth;
        if depth > 0 {
            rng.fill(&mut raw[5..13]); // parent fingerprint and child number, maybe hardened
        }
        rng.fill(&mut raw[13..45]);
        raw[45..].copy_from_slice(&point_bytes(&(ProjectivePoint::GENERATOR * x)));
        (x, ExtendedPublicKey::from_bip32_bytes(&raw).unwrap())
    }

    fn random_path(rng: &mut ChaCha20Rng, max_len: usize) -> DerivationPath {
        let len = rng.gen_range(0..=max_len);
        let indices: Vec<u32> = (0..len)
            .map(|_| match rng.gen_range(0..3) {
                0 => rng.gen_range(0..8),
                1 => HARDENED_OFFSET - 1 - rng.gen_range(0..8),
                _ => rng.gen_range(0..HARDENED_OFFSET),
            })
            .collect();
        DerivationPath::from_indices(&indices).unwrap()
    }

    #[test]
    fn matches_independent_bip32_crate_on_random_paths() {
        let mut rng = ChaCha20Rng::seed_from_u64(SEED);
        for case in 0..150 {
            let (_, parent) = random_xpub(&mut rng);
            let p = random_path(&mut rng, 6);
            let s = encode_b58(&parent.to_bip32_bytes());
            // The other implementation parses our serialisation on its own…
            let mut theirs: bip32::XPub = s.parse().unwrap();
            assert_eq!(theirs.to_string(bip32::Prefix::XPUB), s, "case {case}");
            assert_eq!(theirs.fingerprint(), parent.fingerprint().0, "case {case}");
            // …and derives the same keys, level by level.
            let mut ours = parent;
            for i in p.indices() {
                theirs = theirs
                    .derive_child(bip32::ChildNumber::new(i.get(), false).unwrap())
                    .unwrap();
                ours = ours.derive_child(*i).unwrap();
                assert_eq!(
                    theirs.to_string(bip32::Prefix::XPUB),
                    encode_b58(&ours.to_bip32_bytes()),
                    "case {case}, path {p}, level {i}"
                );
            }
            assert_eq!(parent.derive_path(&p).unwrap().0, ours, "case {case}");
        }
    }

    #[test]
    fn shift_moves_the_secret_to_the_child_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(SEED ^ 1);
        for _ in 0..50 {
            let (x, parent) = random_xpub(&mut rng);
            let p = random_path(&mut rng, 5);
            let (child, shift) = parent.derive_path(&p).unwrap();
            assert_eq!(
                ProjectivePoint::GENERATOR * (x + shift),
                *child.public_key()
            );
            assert_eq!(
                derive_shift(parent.public_key(), parent.chain_code(), &p).unwrap(),
                (*child.public_key(), shift)
            );
            // Shifts compose: m/a/b from m equals m/a, then b from there.
            if let Some((last, init)) = p.indices().split_last() {
                let prefix =
                    DerivationPath::from_indices(&init.iter().map(|i| i.get()).collect::<Vec<_>>())
                        .unwrap();
                let (mid, s1) = parent.derive_path(&prefix).unwrap();
                let (end, s2) = mid
                    .derive_path(&DerivationPath::from_indices(&[last.get()]).unwrap())
                    .unwrap();
                assert_eq!((end, s1 + s2), (child, shift));
            }
        }
        // The empty path is the key itself with shift 0.
        let (_, parent) = random_xpub(&mut rng);
        assert_eq!(
            parent.derive_path(&DerivationPath::root()).unwrap(),
            (parent, Scalar::ZERO)
        );
    }

    #[test]
    fn child_metadata_and_depth_limit() {
        let m = xpub(V2_M);
        let c = m.derive_child(ChildIndex::new(7).unwrap()).unwrap();
        assert_eq!(c.depth(), 1);
        assert_eq!(c.parent_fingerprint(), m.fingerprint());
        assert_eq!(c.child_number(), 7);
        let (cc, _) = m.derive_path(&path("m/7/8")).unwrap();
        assert_eq!(cc.depth(), 2);
        assert_eq!(cc.parent_fingerprint(), c.fingerprint());
        assert_eq!(cc.child_number(), 8);

        // A key at depth 255 has no child; a path that would pass 255 is refused up front.
        let mut raw = m.to_bip32_bytes();
        raw[4] = 255;
        raw[5] = 1;
        let deep = ExtendedPublicKey::from_bip32_bytes(&raw).unwrap();
        assert_eq!(
            deep.derive_child(ChildIndex::default()),
            Err(HdError::DepthOverflow {
                depth: 255,
                steps: 1
            })
        );
        raw[4] = 254;
        let almost = ExtendedPublicKey::from_bip32_bytes(&raw).unwrap();
        assert_eq!(almost.derive_path(&path("m/1")).unwrap().0.depth(), 255);
        assert_eq!(
            almost.derive_path(&path("m/1/2")),
            Err(HdError::DepthOverflow {
                depth: 254,
                steps: 2
            })
        );
        // derive_shift has no depth field and only the path cap.
        assert!(derive_shift(almost.public_key(), almost.chain_code(), &path("m/1/2")).is_ok());
    }

    #[test]
    fn invalid_children_and_identity_are_typed_errors() {
        let index = ChildIndex::new(5).unwrap();
        let n_minus_1 = -Scalar::ONE;
        // I_L = n (one past n − 1) is refused; I_L = n − 1 is fine.
        let mut n = [0u8; 32];
        n.copy_from_slice(&n_minus_1.to_bytes());
        n[31] += 1;
        let parent = ProjectivePoint::GENERATOR * Scalar::from(3u64);
        assert_eq!(
            apply_il(&parent, &n, index),
            Err(HdError::InvalidChild { index: 5 })
        );
        let mut ok = [0u8; 32];
        ok.copy_from_slice(&n_minus_1.to_bytes());
        assert!(apply_il(&parent, &ok, index).is_ok());
        assert_eq!(
            apply_il(&parent, &[0xFF; 32], index),
            Err(HdError::InvalidChild { index: 5 })
        );
        // K_par = −I_L·G gives the point at infinity.
        let t = Scalar::from(12_345u64);
        let mut t_bytes = [0u8; 32];
        t_bytes.copy_from_slice(&t.to_bytes());
        assert_eq!(
            apply_il(&(-(ProjectivePoint::GENERATOR * t)), &t_bytes, index),
            Err(HdError::InvalidChild { index: 5 })
        );

        let code = ChainCode([7; 32]);
        assert_eq!(
            ExtendedPublicKey::new_master(ProjectivePoint::IDENTITY, code),
            Err(HdError::IdentityKey)
        );
        assert_eq!(
            derive_shift(&ProjectivePoint::IDENTITY, &code, &path("m/1")),
            Err(HdError::IdentityKey)
        );
        assert_eq!(
            ChildIndex::new(HARDENED_OFFSET),
            Err(HdError::HardenedIndex {
                index: HARDENED_OFFSET
            })
        );
        assert_eq!(ChildIndex::new(HARDENED_OFFSET - 1), Ok(ChildIndex::MAX));
        assert_eq!(
            DerivationPath::from_indices(&[1, u32::MAX]),
            Err(HdError::HardenedIndex { index: u32::MAX })
        );
        assert_eq!(
            DerivationPath::from_indices(&[0; MAX_DEPTH + 1]),
            Err(HdError::PathTooDeep {
                len: MAX_DEPTH + 1,
                max: MAX_DEPTH
            })
        );
        let mut full = DerivationPath::from_indices(&[0; MAX_DEPTH]).unwrap();
        assert!(full.push(ChildIndex::default()).is_err());
        assert_eq!(full.len(), MAX_DEPTH);
    }

    #[test]
    fn path_parser_accepts_canonical_paths_and_displays_them_back() {
        for s in [
            "m",
            "m/0",
            "m/0/1/2",
            "m/44/0/2147483647",
            "m/1000000000/10",
        ] {
            let p = path(s);
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(path("m"), DerivationPath::root());
        assert!(path("m").is_empty());
        assert_eq!(
            path("m/0/1/2"),
            DerivationPath::from_indices(&[0, 1, 2]).unwrap()
        );
        let deepest = alloc::format!("m{}", "/9".repeat(MAX_DEPTH));
        assert_eq!(path(&deepest).len(), MAX_DEPTH);
    }

    #[test]
    fn path_parser_refuses_hardened_and_malformed_paths() {
        use ParsePathError as E;
        let cases: &[(&str, ParsePathError)] = &[
            ("", E::MissingRoot),
            ("0/1", E::MissingRoot),
            ("M/0", E::MissingRoot),
            (" m/0", E::MissingRoot),
            ("m0", E::MissingRoot),
            ("m/", E::EmptyLevel { level: 1 }),
            ("m/1//2", E::EmptyLevel { level: 2 }),
            ("m/1/", E::EmptyLevel { level: 2 }),
            ("m/0'", E::Hardened { level: 1 }),
            ("m/1/0h", E::Hardened { level: 2 }),
            ("m/1/2/3H", E::Hardened { level: 3 }),
            ("m/2147483648", E::Hardened { level: 1 }),
            ("m/4294967295", E::Hardened { level: 1 }),
            ("m/4294967296", E::OutOfRange { level: 1 }),
            ("m/99999999999999999999999", E::OutOfRange { level: 1 }),
            ("m/'", E::NotAnIndex { level: 1 }),
            ("m/01", E::NotAnIndex { level: 1 }),
            ("m/00", E::NotAnIndex { level: 1 }),
            ("m/+1", E::NotAnIndex { level: 1 }),
            ("m/-1", E::NotAnIndex { level: 1 }),
            ("m/1a", E::NotAnIndex { level: 1 }),
            ("m/ 1", E::NotAnIndex { level: 1 }),
            ("m/1''", E::NotAnIndex { level: 1 }),
            ("m/1h'", E::NotAnIndex { level: 1 }),
            ("m/١", E::NotAnIndex { level: 1 }), // non-ASCII digit
        ];
        for (s, err) in cases {
            assert_eq!(s.parse::<DerivationPath>().as_ref(), Err(err), "{s:?}");
        }
        let too_deep = alloc::format!("m{}", "/1".repeat(MAX_DEPTH + 1));
        assert_eq!(
            too_deep.parse::<DerivationPath>(),
            Err(E::TooDeep { max: MAX_DEPTH })
        );
        // The message says what is wrong.
        let msg = "m/0'".parse::<DerivationPath>().unwrap_err().to_string();
        assert!(msg.contains("hardened"), "{msg}");
    }

    #[test]
    fn path_encoding_round_trips_and_rejects_garbage() {
        let mut rng = ChaCha20Rng::seed_from_u64(SEED ^ 2);
        for _ in 0..50 {
            let p = random_path(&mut rng, 10);
            let bytes = p.to_bytes();
            assert_eq!(bytes.len(), 2 + 4 * p.len());
            assert_eq!(DerivationPath::from_bytes(&bytes), Ok(p));
        }
        let full = DerivationPath::from_indices(&[HARDENED_OFFSET - 1; MAX_DEPTH]).unwrap();
        assert_eq!(DerivationPath::from_bytes(&full.to_bytes()), Ok(full));

        let p = path("m/1/2");
        let bytes = p.to_bytes();
        assert_eq!(bytes, [PATH_TAG, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        // truncated anywhere
        for len in 0..bytes.len() {
            assert!(DerivationPath::from_bytes(&bytes[..len]).is_err(), "{len}");
        }
        // trailing byte
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            DerivationPath::from_bytes(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        // wrong tag
        let mut tag = bytes.clone();
        tag[0] ^= 1;
        assert!(matches!(
            DerivationPath::from_bytes(&tag),
            Err(DecodeError::WrongTag { .. })
        ));
        // a hardened index on the wire
        let mut hard = bytes.clone();
        hard[6] |= 0x80;
        assert_eq!(
            DerivationPath::from_bytes(&hard),
            Err(DecodeError::OutOfRange {
                field: "hd path index"
            })
        );
        // a count larger than the indices present
        assert!(matches!(
            DerivationPath::from_bytes(&[PATH_TAG, 255, 0, 0, 0, 1]),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
