//! Wire messages of the DKG, one type per round, with canonical encodings.
//!
//! Every decoder takes the session's [`Shape`] (m parties, threshold t), so vector lengths are
//! exact, not read from the wire: a Pedersen or Feldman vector of other than t entries is
//! refused (checklist DKG-01), echoes have exactly m digests, index lists are strictly
//! increasing and below m. Decoders never panic and refuse trailing bytes, non-canonical
//! scalars, and points that are not SEC1 compressed.

use alloc::vec::Vec;
use core::fmt;

use k256::{ProjectivePoint, Scalar};
use zeroize::Zeroizing;

use crate::encoding::{DecodeError, Reader, Writer};
use crate::protocol::{Echo, PartyIndex};
use crate::zk::sch::SchProof;

/// Type tags (first byte) of the DKG messages.
pub mod tags {
    /// Round 1: commitment V_i.
    pub const R1_COMMIT: u8 = 0x30;
    /// Round 2 broadcast: decommitment.
    pub const R2_REVEAL: u8 = 0x31;
    /// Round 2 direct: the shares (s_ij, s'_ij).
    pub const R2_SHARE: u8 = 0x32;
    /// Round 3: complaints.
    pub const R3_COMPLAINTS: u8 = 0x33;
    /// Round 4: answers to complaints.
    pub const R4_ANSWERS: u8 = 0x34;
    /// Round 5: Feldman values and Πsch.
    pub const R5_FELDMAN: u8 = 0x35;
    /// Round 6: result echo and Feldman complaints.
    pub const R6_CONFIRM: u8 = 0x36;
}

/// Length of the 32-byte values (commitment, rid, chain code, nonce, result digest).
pub const DIGEST_BYTES: usize = 32;
const POINT: usize = 33;
const SCALAR: usize = 32;

/// What the decoders need to know about the session: m parties, threshold t.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Committee size m.
    pub m: usize,
    /// Threshold t (polynomials have t coefficients).
    pub t: usize,
}

impl Shape {
    /// Largest valid encoding of each round's message (the NET-04 size cap), `direct` for the
    /// direct message of round 2.
    pub fn max_len(&self, round: u16, direct: bool) -> usize {
        let echo = Echo::encoded_len(self.m);
        match (round, direct) {
            (1, _) => 1 + DIGEST_BYTES,
            (2, false) => 1 + echo + 2 + self.t * POINT + 3 * DIGEST_BYTES,
            (2, true) => 1 + 2 * SCALAR,
            (3, _) => 1 + echo + 2 + 2 * self.m,
            (4, _) => 1 + echo + 2 + self.m * (2 + 2 * SCALAR),
            (5, _) => 1 + echo + 2 + self.t * POINT + POINT + SCALAR,
            (6, _) => 1 + echo + DIGEST_BYTES + 2 + self.m * (2 + 2 * SCALAR),
            _ => 0,
        }
    }
}

fn write_points(w: &mut Writer, v: &[ProjectivePoint]) {
    w.u16(v.len() as u16);
    for p in v {
        w.point(p);
    }
}

fn read_points(
    r: &mut Reader<'_>,
    field: &'static str,
    n: usize,
) -> Result<Vec<ProjectivePoint>, DecodeError> {
    r.count(field, n)?;
    (0..n).map(|_| r.point(field)).collect()
}

/// Reads a strictly increasing list of party indices below m, at most m long.
fn read_index(
    r: &mut Reader<'_>,
    field: &'static str,
    m: usize,
    prev: Option<u16>,
) -> Result<PartyIndex, DecodeError> {
    let i = r.u16(field)?;
    if usize::from(i) >= m || prev.is_some_and(|p| i <= p) {
        return Err(DecodeError::NonCanonical { field });
    }
    Ok(PartyIndex::new(i))
}

/// Round 1 (broadcast): V_i = H(session, i, C_i, rid_i, c_i, u_i), the commitment to the
/// first-round values (commit-then-reveal, as CGGMP24 Fig. 6 round 1).
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

    /// Decodes, refusing anything else.
    pub fn from_bytes(bytes: &[u8], _shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R1_COMMIT)?;
        let commitment = r.array("V_i")?;
        r.finish()?;
        Ok(Self { commitment })
    }
}

/// Round 2 (broadcast): the decommitment of V_i and the echo of round 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round2Reveal {
    /// Echo of round 1 (NET-03).
    pub echo: Echo,
    /// C_ik = a_ik·G + b_ik·H, k = 0..t−1 (GJKR step 1a); exactly t entries (DKG-01).
    pub pedersen: Vec<ProjectivePoint>,
    /// rid_i: contribution to the joint randomness ρ.
    pub rid: [u8; DIGEST_BYTES],
    /// c_i: contribution to the HD chain code (DKG-06).
    pub chain_code: [u8; DIGEST_BYTES],
    /// u_i: decommitment nonce.
    pub nonce: [u8; DIGEST_BYTES],
}

impl Round2Reveal {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R2_REVEAL);
        self.echo.write(&mut w);
        write_points(&mut w, &self.pedersen);
        w.array(&self.rid)
            .array(&self.chain_code)
            .array(&self.nonce);
        w.finish()
    }

    /// Decodes, refusing anything else; the vector must have exactly t entries (DKG-01).
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R2_REVEAL)?;
        let echo = Echo::read(&mut r, shape.m)?;
        let pedersen = read_points(&mut r, "C_ik", shape.t)?;
        let rid = r.array("rid_i")?;
        let chain_code = r.array("c_i")?;
        let nonce = r.array("u_i")?;
        r.finish()?;
        Ok(Self {
            echo,
            pedersen,
            rid,
            chain_code,
            nonce,
        })
    }
}

/// Round 2 (direct, dealer i to party j): s_ij = f_i(x_j), s'_ij = f'_i(x_j) (GJKR step 1a).
/// Secret: zeroized on drop, never printed.
pub struct Round2Share {
    /// s_ij.
    pub s: Zeroizing<Scalar>,
    /// s'_ij.
    pub s_prime: Zeroizing<Scalar>,
}

impl fmt::Debug for Round2Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Round2Share(<redacted>)")
    }
}

impl Round2Share {
    /// Canonical encoding (secret bytes: the transport must keep them confidential).
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::R2_SHARE)
            .scalar(&self.s)
            .scalar(&self.s_prime)
            .finish()
    }

    /// Decodes, refusing anything else.
    pub fn from_bytes(bytes: &[u8], _shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R2_SHARE)?;
        let s = Zeroizing::new(r.scalar("s_ij")?);
        let s_prime = Zeroizing::new(r.scalar("s'_ij")?);
        r.finish()?;
        Ok(Self { s, s_prime })
    }
}

/// Round 3 (broadcast): the dealers whose share to the sender was missing or failed the
/// Pedersen check (GJKR step 1b), and the echo of round 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round3Complaints {
    /// Echo of round 2.
    pub echo: Echo,
    /// Accused dealers, strictly increasing.
    pub accused: Vec<PartyIndex>,
}

impl Round3Complaints {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R3_COMPLAINTS);
        self.echo.write(&mut w);
        w.u16(self.accused.len() as u16);
        for a in &self.accused {
            w.u16(a.get());
        }
        w.finish()
    }

    /// Decodes, refusing anything else.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R3_COMPLAINTS)?;
        let echo = Echo::read(&mut r, shape.m)?;
        let n = r.count_at_most("accused", shape.m)?;
        let mut accused: Vec<PartyIndex> = Vec::with_capacity(n);
        for _ in 0..n {
            let prev = accused.last().map(|p| p.get());
            accused.push(read_index(&mut r, "accused", shape.m, prev)?);
        }
        r.finish()?;
        Ok(Self { echo, accused })
    }
}

/// A dealer's public answer to a complaint: the complainer's shares (GJKR step 1c).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The complaining party j.
    pub complainer: PartyIndex,
    /// s_ij (now public).
    pub s: Scalar,
    /// s'_ij (now public).
    pub s_prime: Scalar,
}

/// Round 4 (broadcast): answers to the complaints against the sender, and the echo of round 3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round4Answers {
    /// Echo of round 3.
    pub echo: Echo,
    /// Answers, strictly increasing by complainer.
    pub answers: Vec<Answer>,
}

impl Round4Answers {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R4_ANSWERS);
        self.echo.write(&mut w);
        w.u16(self.answers.len() as u16);
        for a in &self.answers {
            w.u16(a.complainer.get()).scalar(&a.s).scalar(&a.s_prime);
        }
        w.finish()
    }

    /// Decodes, refusing anything else.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R4_ANSWERS)?;
        let echo = Echo::read(&mut r, shape.m)?;
        let n = r.count_at_most("answers", shape.m)?;
        let mut answers: Vec<Answer> = Vec::with_capacity(n);
        for _ in 0..n {
            let prev = answers.last().map(|a| a.complainer.get());
            let complainer = read_index(&mut r, "complainer", shape.m, prev)?;
            let s = r.scalar("s_ij")?;
            let s_prime = r.scalar("s'_ij")?;
            answers.push(Answer {
                complainer,
                s,
                s_prime,
            });
        }
        r.finish()?;
        Ok(Self { echo, answers })
    }
}

/// Round 5 (broadcast, QUAL dealers): Feldman values A_ik = a_ik·G (GJKR step 4a) and Πsch
/// of a_i0 bound to (session id, i, ρ) (DKG-03), and the echo of round 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round5Feldman {
    /// Echo of round 4.
    pub echo: Echo,
    /// A_ik, exactly t entries.
    pub feldman: Vec<ProjectivePoint>,
    /// Πsch (Fig. 22) for A_i0.
    pub proof: SchProof,
}

impl Round5Feldman {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R5_FELDMAN);
        self.echo.write(&mut w);
        write_points(&mut w, &self.feldman);
        w.point(&self.proof.a).scalar(&self.proof.z);
        w.finish()
    }

    /// Decodes, refusing anything else.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R5_FELDMAN)?;
        let echo = Echo::read(&mut r, shape.m)?;
        let feldman = read_points(&mut r, "A_ik", shape.t)?;
        let a = r.point("Πsch A")?;
        let z = r.scalar("Πsch z")?;
        r.finish()?;
        Ok(Self {
            echo,
            feldman,
            proof: SchProof { a, z },
        })
    }
}

/// A complaint against a QUAL dealer whose Feldman values do not match the sender's share,
/// with the share as public evidence (GJKR step 4b).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeldmanComplaint {
    /// The dealer.
    pub dealer: PartyIndex,
    /// s_ij (now public).
    pub s: Scalar,
    /// s'_ij (now public).
    pub s_prime: Scalar,
}

/// Round 6 (broadcast): digest of the result (Y, chain code, all X_j, QUAL) for the final
/// echo check (DKG-06), the echo of round 5, and Feldman complaints if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round6Confirm {
    /// Echo of round 5.
    pub echo: Echo,
    /// Digest of the result.
    pub result: [u8; DIGEST_BYTES],
    /// Complaints, strictly increasing by dealer.
    pub complaints: Vec<FeldmanComplaint>,
}

impl Round6Confirm {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R6_CONFIRM);
        self.echo.write(&mut w);
        w.array(&self.result);
        w.u16(self.complaints.len() as u16);
        for c in &self.complaints {
            w.u16(c.dealer.get()).scalar(&c.s).scalar(&c.s_prime);
        }
        w.finish()
    }

    /// Decodes, refusing anything else.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R6_CONFIRM)?;
        let echo = Echo::read(&mut r, shape.m)?;
        let result = r.array("result")?;
        let n = r.count_at_most("complaints", shape.m)?;
        let mut complaints: Vec<FeldmanComplaint> = Vec::with_capacity(n);
        for _ in 0..n {
            let prev = complaints.last().map(|c| c.dealer.get());
            let dealer = read_index(&mut r, "dealer", shape.m, prev)?;
            let s = r.scalar("s_ij")?;
            let s_prime = r.scalar("s'_ij")?;
            complaints.push(FeldmanComplaint { dealer, s, s_prime });
        }
        r.finish()?;
        Ok(Self {
            echo,
            result,
            complaints,
        })
    }
}

/// Decodes the message of `round` (`direct`: the direct message of round 2) and encodes it
/// again. Canonical encodings come back unchanged; used by tests and fuzz targets.
pub fn reencode(
    round: u16,
    direct: bool,
    bytes: &[u8],
    shape: &Shape,
) -> Result<Vec<u8>, DecodeError> {
    Ok(match (round, direct) {
        (1, _) => Round1::from_bytes(bytes, shape)?.to_bytes(),
        (2, false) => Round2Reveal::from_bytes(bytes, shape)?.to_bytes(),
        (2, true) => Round2Share::from_bytes(bytes, shape)?.to_bytes(),
        (3, _) => Round3Complaints::from_bytes(bytes, shape)?.to_bytes(),
        (4, _) => Round4Answers::from_bytes(bytes, shape)?.to_bytes(),
        (5, _) => Round5Feldman::from_bytes(bytes, shape)?.to_bytes(),
        (6, _) => Round6Confirm::from_bytes(bytes, shape)?.to_bytes(),
        _ => {
            return Err(DecodeError::WrongTag {
                got: bytes.first().copied().unwrap_or(0),
                expected: 0,
            })
        }
    })
}
