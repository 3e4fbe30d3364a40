//! Wire messages of resharing, one type per round and kind, with canonical encodings. The
//! Feldman vector has exactly t' entries (the new threshold), echo vectors exactly n digests
//! (n = dealers + receivers), index lists are strictly increasing and within their role's
//! positions; decoders never panic and refuse trailing bytes.

use alloc::vec::Vec;

use k256::{ProjectivePoint, Scalar};
use zeroize::Zeroizing;

use crate::encoding::{DecodeError, Reader, Writer};
use crate::protocol::Echo;

/// Type tags (first byte).
pub mod tags {
    /// Round 1 broadcast: the dealer's Feldman commitments.
    pub const R1_FELDMAN: u8 = 0x60;
    /// Round 1 direct: a sub-share.
    pub const R1_SUBSHARE: u8 = 0x61;
    /// Round 2 broadcast: a receiver's complaints.
    pub const R2_COMPLAINTS: u8 = 0x62;
    /// Round 3 broadcast: a dealer's answers.
    pub const R3_ANSWERS: u8 = 0x63;
    /// Round 4 broadcast: a receiver's result digest.
    pub const R4_CONFIRM: u8 = 0x64;
}

/// Length of the result digest.
pub const DIGEST_BYTES: usize = 32;

/// The session's shape as the decoders need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Number of dealers (positions 0..dealers).
    pub dealers: usize,
    /// Number of receivers (positions dealers..dealers + receivers).
    pub receivers: usize,
    /// New threshold t'.
    pub t_new: usize,
}

impl Shape {
    /// n = dealers + receivers.
    pub fn n(&self) -> usize {
        self.dealers + self.receivers
    }

    /// Largest valid encoding per round (NET-04).
    pub fn max_len(&self, round: u16, direct: bool) -> usize {
        let echo = Echo::encoded_len(self.n());
        match (round, direct) {
            (1, false) => 1 + 2 + 33 * self.t_new,
            (1, true) => 1 + 32,
            (2, false) => 1 + echo + 2 + 2 * self.dealers,
            (3, false) => 1 + echo + 2 + self.receivers * (2 + 32),
            (4, false) => 1 + echo + DIGEST_BYTES,
            _ => 0,
        }
    }
}

/// Round 1 broadcast (dealer): G_dk = g_dk·G for k < t'; G_d0 must be λ_d·X_d (RES-01).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round1Feldman {
    /// The commitments.
    pub feldman: Vec<ProjectivePoint>,
}

impl Round1Feldman {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R1_FELDMAN);
        w.u16(self.feldman.len() as u16);
        for p in &self.feldman {
            w.point(p);
        }
        w.finish()
    }

    /// Decodes; exactly t' commitments.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R1_FELDMAN)?;
        r.count("t'", shape.t_new)?;
        let mut feldman = Vec::with_capacity(shape.t_new);
        for _ in 0..shape.t_new {
            feldman.push(r.point("G_dk")?);
        }
        r.finish()?;
        Ok(Self { feldman })
    }
}

/// Round 1 direct (dealer to receiver): g_d(x'_r).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round1SubShare {
    /// The sub-share (secret).
    pub s: Zeroizing<Scalar>,
}

impl Round1SubShare {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::R1_SUBSHARE).scalar(&self.s).finish()
    }

    /// Decodes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R1_SUBSHARE)?;
        let s = Zeroizing::new(r.scalar("s")?);
        r.finish()?;
        Ok(Self { s })
    }
}

fn write_positions(w: &mut Writer, v: &[u16]) {
    w.u16(v.len() as u16);
    for p in v {
        w.u16(*p);
    }
}

fn read_positions(
    r: &mut Reader<'_>,
    field: &'static str,
    range: core::ops::Range<usize>,
) -> Result<Vec<u16>, DecodeError> {
    let n = r.count_at_most(field, range.len())?;
    let mut out: Vec<u16> = Vec::with_capacity(n);
    for _ in 0..n {
        let p = r.u16(field)?;
        if !range.contains(&usize::from(p)) || out.last().is_some_and(|&q| q >= p) {
            return Err(DecodeError::NonCanonical { field });
        }
        out.push(p);
    }
    Ok(out)
}

/// Round 2 broadcast (receiver): echo of round 1 and the dealers whose sub-share for it does
/// not match their commitments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round2Complaints {
    /// Echo of round 1.
    pub echo: Echo,
    /// Accused dealer positions, strictly increasing.
    pub accused: Vec<u16>,
}

impl Round2Complaints {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R2_COMPLAINTS);
        self.echo.write(&mut w);
        write_positions(&mut w, &self.accused);
        w.finish()
    }

    /// Decodes.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R2_COMPLAINTS)?;
        let echo = Echo::read(&mut r, shape.n())?;
        let accused = read_positions(&mut r, "accused", 0..shape.dealers)?;
        r.finish()?;
        Ok(Self { echo, accused })
    }
}

/// Round 3 broadcast (dealer): echo of round 2 and, for each receiver that accused it, the
/// sub-share in public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round3Answers {
    /// Echo of round 2.
    pub echo: Echo,
    /// (receiver position, sub-share), positions strictly increasing.
    pub answers: Vec<(u16, Scalar)>,
}

impl Round3Answers {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R3_ANSWERS);
        self.echo.write(&mut w);
        w.u16(self.answers.len() as u16);
        for (p, s) in &self.answers {
            w.u16(*p).scalar(s);
        }
        w.finish()
    }

    /// Decodes.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R3_ANSWERS)?;
        let echo = Echo::read(&mut r, shape.n())?;
        let n = r.count_at_most("answers", shape.receivers)?;
        let mut answers: Vec<(u16, Scalar)> = Vec::with_capacity(n);
        for _ in 0..n {
            let p = r.u16("receiver")?;
            if usize::from(p) < shape.dealers
                || usize::from(p) >= shape.n()
                || answers.last().is_some_and(|(q, _)| *q >= p)
            {
                return Err(DecodeError::NonCanonical { field: "receiver" });
            }
            answers.push((p, r.scalar("s")?));
        }
        r.finish()?;
        Ok(Self { echo, answers })
    }
}

/// Round 4 broadcast (receiver): echo of round 3 and H(Y', X'_1..X'_m', t', committee).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round4Confirm {
    /// Echo of round 3.
    pub echo: Echo,
    /// The result digest.
    pub result: [u8; DIGEST_BYTES],
}

impl Round4Confirm {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R4_CONFIRM);
        self.echo.write(&mut w);
        w.array(&self.result);
        w.finish()
    }

    /// Decodes.
    pub fn from_bytes(bytes: &[u8], shape: &Shape) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R4_CONFIRM)?;
        let echo = Echo::read(&mut r, shape.n())?;
        let result = r.array("result")?;
        r.finish()?;
        Ok(Self { echo, result })
    }
}
