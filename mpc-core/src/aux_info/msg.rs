//! Wire messages of the auxiliary-info protocol, one type per round, with canonical
//! encodings. Echo vectors have exactly m digests (the session's committee size); embedded
//! proofs are length-capped before they are decoded; decoders never panic and refuse trailing
//! bytes.

use alloc::vec::Vec;

use num_bigint::BigUint;

use crate::encoding::{DecodeError, Reader, Writer};
use crate::params::{MAX_MODULUS_BYTES, STAT_REPETITIONS};
use crate::protocol::Echo;
use crate::zk::fac::FacProof;
use crate::zk::pi_mod::ModProof;
use crate::zk::prm::PrmProof;

/// Type tags (first byte) of the aux-info messages.
pub mod tags {
    /// Round 1: commitment V_i.
    pub const R1_COMMIT: u8 = 0x40;
    /// Round 2: the revealed parameters and Πprm.
    pub const R2_REVEAL: u8 = 0x41;
    /// Round 3 broadcast: Πmod.
    pub const R3_MOD: u8 = 0x42;
    /// Round 3 direct: Πfac for the recipient's ring-Pedersen parameters.
    pub const R3_FAC: u8 = 0x43;
    /// Round 4: digest of the result.
    pub const R4_CONFIRM: u8 = 0x44;
}

/// Length of commitments, rid, nonces and digests.
pub const DIGEST_BYTES: usize = 32;

/// Encoded size of one capped modulus-sized integer (u32 length + magnitude).
const UINT: usize = 4 + MAX_MODULUS_BYTES;
/// Largest canonical Πprm encoding: tag, two counts, 2·m integers below N̂.
pub const MAX_PRM_BYTES: usize = 1 + 2 * (2 + STAT_REPETITIONS * UINT);
/// Largest canonical Πmod encoding: tag, w, count, m × (x_i, a_i, b_i, z_i).
pub const MAX_MOD_BYTES: usize = 1 + UINT + 2 + STAT_REPETITIONS * (2 * UINT + 2);
/// Cap on a Πfac encoding: five values below N̂ and six signed responses of at most
/// ℓ + ε + 2·|N| bits (σ, the longest, is below 2^{ℓ+ε}·N0·N̂), with room to spare.
pub const MAX_FAC_BYTES: usize = 1 + 5 * UINT + 6 * (1 + 4 + 3 * MAX_MODULUS_BYTES);

/// Largest valid encoding of each round's message (the NET-04 cap), `direct` for round 3's
/// direct message.
pub fn max_len(m: usize, round: u16, direct: bool) -> usize {
    let echo = Echo::encoded_len(m);
    match (round, direct) {
        (1, false) => 1 + DIGEST_BYTES,
        (2, false) => 1 + echo + 4 * UINT + 4 + MAX_PRM_BYTES + 2 * DIGEST_BYTES,
        (3, false) => 1 + echo + 4 + MAX_MOD_BYTES,
        (3, true) => 1 + 4 + MAX_FAC_BYTES,
        (4, false) => 1 + echo + DIGEST_BYTES,
        _ => 0,
    }
}

/// Round 1 (broadcast): V_i = H(sid, committee, i, N_i, N̂_i, s_i, t_i, ψ̂_i, rid_i, u_i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round1 {
    /// V_i.
    pub commitment: [u8; DIGEST_BYTES],
}

impl Round1 {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::R1_COMMIT)
            .array(&self.commitment)
            .finish()
    }

    /// Decodes the canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R1_COMMIT)?;
        let commitment = r.array("V_i")?;
        r.finish()?;
        Ok(Self { commitment })
    }
}

/// Round 2 (broadcast): echo of round 1 and the opening (N_i, N̂_i, s_i, t_i, ψ̂_i, rid_i, u_i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round2 {
    /// Echo of the round-1 commitments.
    pub echo: Echo,
    /// Paillier modulus N_i.
    pub n: BigUint,
    /// Ring-Pedersen modulus N̂_i.
    pub n_hat: BigUint,
    /// s_i.
    pub s: BigUint,
    /// t_i.
    pub t: BigUint,
    /// Canonical bytes of Πprm for (N̂_i, s_i, t_i) (hashed into V_i as they are).
    pub prm: Vec<u8>,
    /// rid_i, the contribution to ρ.
    pub rid: [u8; DIGEST_BYTES],
    /// u_i, the commitment's blinding nonce.
    pub nonce: [u8; DIGEST_BYTES],
}

impl Round2 {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R2_REVEAL);
        self.echo.write(&mut w);
        w.uint(&self.n)
            .uint(&self.n_hat)
            .uint(&self.s)
            .uint(&self.t)
            .bytes(&self.prm)
            .array(&self.rid)
            .array(&self.nonce);
        w.finish()
    }

    /// Decodes the canonical encoding for a committee of `m` (the proof bytes are decoded,
    /// and so validated, by [`Self::prm_proof`]).
    pub fn from_bytes(bytes: &[u8], m: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R2_REVEAL)?;
        let echo = Echo::read(&mut r, m)?;
        let n = r.uint("N_i", MAX_MODULUS_BYTES)?;
        let n_hat = r.uint("N̂_i", MAX_MODULUS_BYTES)?;
        let s = r.uint("s_i", MAX_MODULUS_BYTES)?;
        let t = r.uint("t_i", MAX_MODULUS_BYTES)?;
        let prm = r.bytes("ψ̂_i", MAX_PRM_BYTES)?.to_vec();
        // decode now so that a malformed proof is refused as malformed input
        PrmProof::from_bytes(&prm)?;
        let rid = r.array("rid_i")?;
        let nonce = r.array("u_i")?;
        r.finish()?;
        Ok(Self {
            echo,
            n,
            n_hat,
            s,
            t,
            prm,
            rid,
            nonce,
        })
    }

    /// The decoded Πprm.
    pub fn prm_proof(&self) -> Result<PrmProof, DecodeError> {
        PrmProof::from_bytes(&self.prm)
    }
}

/// Round 3 (broadcast): echo of round 2 and Πmod for N_i under ρ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round3Mod {
    /// Echo of the round-2 reveals.
    pub echo: Echo,
    /// ψ_i.
    pub proof: ModProof,
}

impl Round3Mod {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R3_MOD);
        self.echo.write(&mut w);
        w.bytes(&self.proof.to_bytes());
        w.finish()
    }

    /// Decodes the canonical encoding for a committee of `m`.
    pub fn from_bytes(bytes: &[u8], m: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R3_MOD)?;
        let echo = Echo::read(&mut r, m)?;
        let proof = ModProof::from_bytes(r.bytes("ψ_i", MAX_MOD_BYTES)?)?;
        r.finish()?;
        Ok(Self { echo, proof })
    }
}

/// Round 3 (direct to P_j): Πfac for N_i against P_j's ring-Pedersen parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round3Fac {
    /// ψ'_{i,j}.
    pub proof: FacProof,
}

impl Round3Fac {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::R3_FAC)
            .bytes(&self.proof.to_bytes())
            .finish()
    }

    /// Decodes the canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R3_FAC)?;
        let proof = FacProof::from_bytes(r.bytes("ψ'_ij", MAX_FAC_BYTES)?)?;
        r.finish()?;
        Ok(Self { proof })
    }
}

/// Round 4 (broadcast): echo of round 3 and the digest of the result (every N_j, N̂_j, s_j,
/// t_j and ρ), so that every honest party knows the others finished with the same view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round4 {
    /// Echo of the round-3 Πmod broadcasts.
    pub echo: Echo,
    /// Digest of the result.
    pub result: [u8; DIGEST_BYTES],
}

impl Round4 {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R4_CONFIRM);
        self.echo.write(&mut w);
        w.array(&self.result);
        w.finish()
    }

    /// Decodes the canonical encoding for a committee of `m`.
    pub fn from_bytes(bytes: &[u8], m: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R4_CONFIRM)?;
        let echo = Echo::read(&mut r, m)?;
        let result = r.array("result")?;
        r.finish()?;
        Ok(Self { echo, result })
    }
}
