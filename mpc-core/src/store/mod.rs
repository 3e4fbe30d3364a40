//! Durable encodings of the long-lived outputs: [`KeyShare`](crate::dkg::KeyShare),
//! [`AuxInfo`](crate::aux_info::AuxInfo) and [`Presignature`](crate::presign::Presignature),
//! for the signer node's store.
//!
//! Each type has `to_bytes(&self) -> Zeroizing<Vec<u8>>` and
//! `from_bytes(&[u8]) -> Result<Self, StoreDecodeError>`. The bytes hold secrets in the clear:
//! the store seals them (AEAD, AAD = [`RecordKind::tag`] and the key id, OPS-04) before they
//! touch a disk, and wipes its own copies. This module does not encrypt.
//!
//! ## Trust
//! A record is trusted after it is unsealed: the decoder does not re-verify the proofs that
//! made the values (Πmod, Πprm, Πfac of aux info, the DKG's Schnorr proofs, presigning's
//! proofs). It re-checks every cheap invariant, so a corrupt, truncated, mixed-up or
//! hand-edited record is refused with a [`StoreDecodeError`] instead of producing a value that
//! signs wrongly: a key share must validate ([`KeyShare::validate`](crate::dkg::KeyShare::validate)),
//! aux info secrets must match their public parameters (N = p·q, N̂ = p̂·q̂, s = t^λ), and a
//! presignature's nonces must match its public values (Δ_i = k_i·Γ, S_i = χ_i·Γ).
//!
//! ## Encoding rules
//! The helpers of [`crate::encoding`]: every record starts with a one-byte tag naming its kind
//! and a one-byte format version ([`FORMAT_VERSION`]); integers are big-endian; bigints are a
//! u32 length and the minimal big-endian magnitude, with a cap per field; points are 33-byte
//! SEC1 compressed (33 zero bytes = identity, refused where the identity is invalid); scalars
//! are 32 bytes and must be below the curve order; byte strings and lists carry their length
//! (u32) or count (u16). Decoding is strict: a wrong tag or version, a truncation, a trailing
//! byte, a non-minimal integer, an out-of-range scalar or point, a length over its cap, or
//! fields that contradict each other are refused. Decoding never panics and checks every
//! length against its cap before allocating; rebuilding aux info allocates its fixed-base
//! tables (about 2 MiB per peer, as the protocol's own output does).
//!
//! ## Key share (tag `0x70`)
//! | field | encoding |
//! |---|---|
//! | tag, version | `0x70`, `0x01` |
//! | session id | u32 length (1..=64) + bytes |
//! | own index i | u16, < m |
//! | threshold t | u16, 1..=m |
//! | committee size m | u16, 1..=1024 |
//! | evaluation points x_1..x_m | m × 32-byte scalar (non-zero, distinct) |
//! | secret share x_i (secret) | 32-byte scalar |
//! | public share count | u16, = m |
//! | public shares X_1..X_m | m × 33-byte point |
//! | public key Y | 33-byte point |
//! | chain code | 32 bytes |
//! | QUAL count | u16, t..=m |
//! | QUAL | u16 each, strictly increasing, < m, i among them |
//! | epoch | u64 |
//!
//! Then x_i·G = X_i, Y ≠ O and every X_j on one degree t−1 polynomial through Y
//! ([`KeyShare::validate`](crate::dkg::KeyShare::validate)). Zero-sharing outputs of a refresh
//! (Y = O) are transient and cannot be stored.
//!
//! ## Aux info (tag `0x71`)
//! | field | encoding |
//! |---|---|
//! | tag, version | `0x71`, `0x01` |
//! | session id | u32 length (1..=64) + bytes |
//! | own index i | u16, < m |
//! | ρ | 32 bytes |
//! | Paillier primes p, q (secret) | 2 × bigint (≤ 512 bytes) |
//! | ring-Pedersen primes p̂, q̂ (secret) | 2 × bigint (≤ 512 bytes) |
//! | λ with s_i = t_i^λ (secret) | bigint (≤ 512 bytes), 1 ≤ λ < φ(N̂_i) |
//! | party count m | u16, 2..=1024 |
//! | per party j: N_j, N̂_j, s_j, t_j | 4 × bigint (≤ 512 bytes) |
//!
//! Then every N_j and (N̂_j, s_j, t_j) passes the checks the protocol makes before any proof
//! (size, odd, non-trivial units, N̂_j ≠ N_j), p, q form a Paillier-Blum key with
//! p·q = N_i, and (p̂, q̂, λ) match (N̂_i, s_i, t_i). Decoding rebuilds what the protocol
//! output carries besides these values: the peers' fixed-base tables and this party's owner
//! (CRT) views, so the decoded aux info presigns as fast as the original.
//!
//! ## Presignature (tag `0x72`)
//! | field | encoding |
//! |---|---|
//! | tag, version | `0x72`, `0x01` |
//! | session id | u32 length (1..=64) + bytes |
//! | key id | u32 length (1..=64) + bytes |
//! | epoch | u64 |
//! | own index i | u16 |
//! | signer count n | u16, 1..=1024 |
//! | signers | n × u16, strictly increasing, i among them |
//! | derivation path | u32 length (≤ 1022) + [`DerivationPath`](crate::hd::DerivationPath) encoding |
//! | ssid | 32 bytes |
//! | transcript digest | 32 bytes |
//! | child public key | 33-byte point, not O |
//! | R | 33-byte point, not O |
//! | Γ | 33-byte point, not O |
//! | Δ count, Δ_j | u16 = n, n × 33-byte point |
//! | S count, S_j | u16 = n, n × 33-byte point |
//! | k_i (secret) | 32-byte scalar, non-zero |
//! | χ_i (secret) | 32-byte scalar |
//!
//! Then Δ_i = k_i·Γ and S_i = χ_i·Γ for this party's position in the signer set. Every value
//! the presignature is bound to (PRE-06: session id, key id, epoch, signer set, path, and the
//! digests over everything else) is in the record, so a decoded presignature signs exactly
//! what the original would. Single use across restarts is the store's job: erase the record
//! durably before the partial signature leaves.

use alloc::vec::Vec;
use core::fmt;

use num_bigint::BigUint;
use zeroize::Zeroizing;

use crate::dkg::KeyShareError;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::paillier::PaillierError;
use crate::protocol::{CommitteeError, PartyIndex};
use crate::ring_pedersen::RingPedersenError;
use crate::zk::MAX_SESSION_ID_BYTES;

mod aux_info;
mod key_share;
mod presignature;

#[cfg(test)]
mod tests;

/// The format version every record is written with and the only one read.
pub const FORMAT_VERSION: u8 = 1;

/// Which record a byte string holds (its first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A [`KeyShare`](crate::dkg::KeyShare).
    KeyShare,
    /// An [`AuxInfo`](crate::aux_info::AuxInfo).
    AuxInfo,
    /// A [`Presignature`](crate::presign::Presignature).
    Presignature,
}

impl RecordKind {
    /// The leading tag byte of this kind's records (also what the store binds as the AAD's
    /// record kind).
    pub const fn tag(self) -> u8 {
        match self {
            Self::KeyShare => 0x70,
            Self::AuxInfo => 0x71,
            Self::Presignature => 0x72,
        }
    }

    /// The kind whose tag is `tag`, if any.
    pub const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0x70 => Some(Self::KeyShare),
            0x71 => Some(Self::AuxInfo),
            0x72 => Some(Self::Presignature),
            _ => None,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::KeyShare => "key share",
            Self::AuxInfo => "aux info",
            Self::Presignature => "presignature",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Describes a found tag byte in error messages.
struct FoundTag(u8);

impl fmt::Display for FoundTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match RecordKind::from_tag(self.0) {
            Some(kind) => write!(f, "a {kind} record (tag {:#04x})", self.0),
            None => write!(f, "tag {:#04x}, which is no record kind", self.0),
        }
    }
}

/// Why stored bytes were refused. No variant carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreDecodeError {
    /// The bytes are another kind of record (or none): the store handed the wrong record to
    /// this decoder.
    #[error("the {expected} decoder was given {}", FoundTag(*found))]
    WrongKind {
        /// The kind this decoder reads.
        expected: RecordKind,
        /// The tag byte found.
        found: u8,
    },
    /// The record was written in a format version this build does not read (written by a newer
    /// build, or corrupt).
    #[error("{kind} record has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The record kind.
        kind: RecordKind,
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// A field is not canonically encoded (truncated, too long, non-minimal, an invalid scalar
    /// or point, trailing bytes): the record is corrupt or not written by this codec.
    #[error("{kind} record is malformed: {source}")]
    Malformed {
        /// The record kind.
        kind: RecordKind,
        /// What was wrong with which field.
        source: DecodeError,
    },
    /// Well-formed fields contradict each other (counts, indices, secrets that do not match
    /// their public values): the record is corrupt or was assembled from different records.
    #[error("{kind} record is inconsistent: {what}")]
    Inconsistent {
        /// The record kind.
        kind: RecordKind,
        /// Which relation fails.
        what: &'static str,
    },
    /// The committee's evaluation points are refused (zero, repeated, or a bad count).
    #[error("key share record: committee refused: {0}")]
    Committee(CommitteeError),
    /// The key share does not validate (x_i·G ≠ X_i, public shares off the polynomial, …).
    #[error("key share record does not validate: {0}")]
    KeyShare(KeyShareError),
    /// A Paillier key of the aux info is refused.
    #[error("aux info record: Paillier key of {party} refused: {source}")]
    Paillier {
        /// Whose key.
        party: PartyIndex,
        /// Why.
        source: PaillierError,
    },
    /// Ring-Pedersen parameters of the aux info, or this party's secret for them, are refused.
    #[error("aux info record: ring-Pedersen parameters of {party} refused: {source}")]
    RingPedersen {
        /// Whose parameters.
        party: PartyIndex,
        /// Why.
        source: RingPedersenError,
    },
}

/// Starts a record of `kind` in a buffer of exactly `len` bytes (the record's encoded length,
/// so the buffer is never reallocated and leaves no stale copy of a secret behind).
fn begin(kind: RecordKind, len: usize) -> Writer {
    let mut w = Writer::with_capacity(kind.tag(), len);
    w.u8(FORMAT_VERSION);
    w
}

/// Finishes a record into a buffer wiped on drop.
fn finish(mut w: Writer) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(w.finish())
}

/// Opens a record of `kind`: checks the tag and the version.
fn open(bytes: &[u8], kind: RecordKind) -> Result<Reader<'_>, StoreDecodeError> {
    let mut r = Reader::new(bytes, kind.tag()).map_err(|e| match e {
        DecodeError::WrongTag { got, .. } => StoreDecodeError::WrongKind {
            expected: kind,
            found: got,
        },
        other => malformed(kind)(other),
    })?;
    let version = r.u8("format version").map_err(malformed(kind))?;
    if version != FORMAT_VERSION {
        return Err(StoreDecodeError::UnsupportedVersion {
            kind,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(r)
}

/// Maps a field error to [`StoreDecodeError::Malformed`].
fn malformed(kind: RecordKind) -> impl Fn(DecodeError) -> StoreDecodeError {
    move |source| StoreDecodeError::Malformed { kind, source }
}

/// An inconsistency error.
fn inconsistent(kind: RecordKind, what: &'static str) -> StoreDecodeError {
    StoreDecodeError::Inconsistent { kind, what }
}

/// Header length: tag and version.
const HEADER_LEN: usize = 2;

/// Encoded length of a u32-length-prefixed byte string.
fn bytes_len(b: &[u8]) -> usize {
    4 + b.len()
}

/// Encoded length of a bigint ([`Writer::uint`]).
fn uint_len(v: &BigUint) -> usize {
    // bits ≤ usize::MAX·8 for anything in memory
    4 + (v.bits() as usize).div_ceil(8)
}

/// Appends a secret bigint like [`Writer::uint`], wiping the temporary big-endian copy.
fn secret_uint(w: &mut Writer, v: &BigUint) {
    let bytes = Zeroizing::new(if v.bits() == 0 {
        Vec::new()
    } else {
        v.to_bytes_be()
    });
    w.bytes(&bytes);
}

/// Reads a session id (1..=[`MAX_SESSION_ID_BYTES`] bytes).
fn read_session_id(r: &mut Reader<'_>, kind: RecordKind) -> Result<Vec<u8>, StoreDecodeError> {
    let sid = r
        .bytes("session id", MAX_SESSION_ID_BYTES)
        .map_err(malformed(kind))?;
    if sid.is_empty() {
        return Err(inconsistent(kind, "empty session id"));
    }
    Ok(sid.to_vec())
}
