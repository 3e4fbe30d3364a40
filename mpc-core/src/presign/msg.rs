//! Wire messages of presigning (CGGMP24 Fig. 8), one type per round and kind, with canonical
//! encodings. Ciphertexts travel as capped integers and are validated as units of their group
//! by the receiver (PRE-05); embedded proofs are length-capped and decoded (so validated for
//! shape) by the message decoder; echo vectors have exactly m digests.

use alloc::vec::Vec;

use k256::{ProjectivePoint, Scalar};
use num_bigint::BigUint;

use crate::encoding::{DecodeError, Reader, Writer};
use crate::params::{MAX_MODULUS_BYTES, MAX_MODULUS_SQ_BYTES};
use crate::protocol::Echo;
use crate::zk::aff_g::AffGProof;
use crate::zk::aff_g_star::AffGStarProof;
use crate::zk::dec::DecProof;
use crate::zk::elog::ElogProof;
use crate::zk::enc_elg::EncElgProof;

/// Type tags (first byte) of the presigning messages.
pub mod tags {
    /// Round 1 broadcast: K_i, G_i and the El-Gamal commitments.
    pub const R1_BROADCAST: u8 = 0x50;
    /// Round 1 direct: Πenc-elg for K_i and G_i against the recipient's parameters.
    pub const R1_DIRECT: u8 = 0x51;
    /// Round 2 broadcast: Γ_i and Πelog.
    pub const R2_BROADCAST: u8 = 0x52;
    /// Round 2 direct: D, F, D̂, F̂ and the two Πaff-g.
    pub const R2_DIRECT: u8 = 0x53;
    /// Round 3 broadcast: δ_i, Δ_i, S_i and Πelog.
    pub const R3_BROADCAST: u8 = 0x54;
    /// Round 4 broadcast (identification, only after a failed consistency check).
    pub const R4_IDENTIFY: u8 = 0x55;
}

const UINT_SQ: usize = 4 + MAX_MODULUS_SQ_BYTES;
const POINT: usize = 33;
const SCALAR: usize = 32;
/// Cap on one Πenc-elg encoding (two values below N̂, one below N0², three points, signed
/// responses of at most 2·|N̂| + ℓ + ε bits), with room to spare.
pub const MAX_ENC_ELG_BYTES: usize = 1 + 8 * (5 + 3 * MAX_MODULUS_BYTES) + 3 * POINT;
/// Cap on one Πaff-g encoding.
pub const MAX_AFF_G_BYTES: usize = 1 + 14 * (5 + 3 * MAX_MODULUS_BYTES) + POINT;
/// Cap on one Πelog encoding.
pub const MAX_ELOG_BYTES: usize = 1 + 3 * POINT + 2 * SCALAR + 16;

/// Cap on one Πaff-g* encoding (128 repetitions; ≈ 343 KB at 3072-bit moduli).
pub const MAX_AFF_G_STAR_BYTES: usize =
    1 + 2 + 128 * (4 * (4 + MAX_MODULUS_SQ_BYTES) + 33 + 2 * (5 + 3 * MAX_MODULUS_BYTES));
/// Cap on one Πdec encoding (128 repetitions; ≈ 208 KB at 3072-bit moduli).
pub const MAX_DEC_BYTES: usize =
    1 + 2 + 128 * (2 * (4 + MAX_MODULUS_SQ_BYTES) + 2 * 33 + 2 * (5 + 3 * MAX_MODULUS_BYTES));

/// Largest valid encoding of each round's message (NET-04).
pub fn max_len(m: usize, round: u16, direct: bool) -> usize {
    let echo = Echo::encoded_len(m);
    match (round, direct) {
        (1, false) => 1 + 2 * UINT_SQ + 5 * POINT,
        (1, true) => 1 + 2 * (4 + MAX_ENC_ELG_BYTES),
        (2, false) => 1 + echo + POINT + 4 + MAX_ELOG_BYTES,
        (2, true) => 1 + 4 * UINT_SQ + 2 * (4 + MAX_AFF_G_BYTES),
        (3, false) => 1 + echo + SCALAR + 2 * POINT + 4 + MAX_ELOG_BYTES,
        (4, false) => {
            let side = 1 + 2 + m * (2 + 2 * UINT_SQ + 4 + MAX_AFF_G_STAR_BYTES) + 4 + MAX_DEC_BYTES;
            1 + echo + 2 * side
        }
        _ => 0,
    }
}

/// Round 1 broadcast: K_i = enc_i(k_i), G_i = enc_i(γ_i), the El-Gamal key Y_i and the
/// commitments A_i = (a_i·G, k_i·G + a_i·Y_i), B_i = (b_i·G, γ_i·G + b_i·Y_i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round1Broadcast {
    /// K_i.
    pub cap_k: BigUint,
    /// G_i.
    pub cap_g: BigUint,
    /// Y_i.
    pub cap_y: ProjectivePoint,
    /// A_{i,1}, A_{i,2}.
    pub cap_a: [ProjectivePoint; 2],
    /// B_{i,1}, B_{i,2}.
    pub cap_b: [ProjectivePoint; 2],
}

impl Round1Broadcast {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::R1_BROADCAST)
            .uint(&self.cap_k)
            .uint(&self.cap_g)
            .point(&self.cap_y)
            .point(&self.cap_a[0])
            .point(&self.cap_a[1])
            .point(&self.cap_b[0])
            .point(&self.cap_b[1])
            .finish()
    }

    /// Decodes the canonical encoding (ciphertexts are checked against the sender's key by
    /// the receiver).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R1_BROADCAST)?;
        let cap_k = r.uint("K_i", MAX_MODULUS_SQ_BYTES)?;
        let cap_g = r.uint("G_i", MAX_MODULUS_SQ_BYTES)?;
        let cap_y = r.point("Y_i")?;
        let cap_a = [r.point("A_i1")?, r.point("A_i2")?];
        let cap_b = [r.point("B_i1")?, r.point("B_i2")?];
        r.finish()?;
        Ok(Self {
            cap_k,
            cap_g,
            cap_y,
            cap_a,
            cap_b,
        })
    }
}

/// Round 1 direct to P_j: ψ⁰ (Πenc-elg for K_i, A_i) and ψ¹ (for G_i, B_i) against P_j's
/// ring-Pedersen parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round1Direct {
    /// ψ⁰_{j,i}.
    pub psi_k: EncElgProof,
    /// ψ¹_{j,i}.
    pub psi_g: EncElgProof,
}

impl Round1Direct {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::R1_DIRECT)
            .bytes(&self.psi_k.to_bytes())
            .bytes(&self.psi_g.to_bytes())
            .finish()
    }

    /// Decodes the canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R1_DIRECT)?;
        let psi_k = EncElgProof::from_bytes(r.bytes("ψ0", MAX_ENC_ELG_BYTES)?)?;
        let psi_g = EncElgProof::from_bytes(r.bytes("ψ1", MAX_ENC_ELG_BYTES)?)?;
        r.finish()?;
        Ok(Self { psi_k, psi_g })
    }
}

/// Round 2 broadcast: echo of round 1, Γ_i = γ_i·G and Πelog that Γ_i opens B_i.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round2Broadcast {
    /// Echo of the round-1 broadcasts.
    pub echo: Echo,
    /// Γ_i.
    pub cap_gamma: ProjectivePoint,
    /// ψ_i: Πelog for (B_{i,1}, B_{i,2}, Y_i, Γ_i, G).
    pub psi: ElogProof,
}

impl Round2Broadcast {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R2_BROADCAST);
        self.echo.write(&mut w);
        w.point(&self.cap_gamma).bytes(&self.psi.to_bytes());
        w.finish()
    }

    /// Decodes the canonical encoding for a committee of `m`.
    pub fn from_bytes(bytes: &[u8], m: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R2_BROADCAST)?;
        let echo = Echo::read(&mut r, m)?;
        let cap_gamma = r.point("Γ_i")?;
        let psi = ElogProof::from_bytes(r.bytes("ψ_i", MAX_ELOG_BYTES)?)?;
        r.finish()?;
        Ok(Self {
            echo,
            cap_gamma,
            psi,
        })
    }
}

/// Round 2 direct to P_j: D_{j,i} = K_j^{γ_i}·enc_j(y), F_{j,i} = enc_i(y), the same for the
/// key share (D̂, F̂), and the two Πaff-g proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round2Direct {
    /// D_{j,i}.
    pub cap_d: BigUint,
    /// F_{j,i}.
    pub cap_f: BigUint,
    /// D̂_{j,i}.
    pub cap_d_hat: BigUint,
    /// F̂_{j,i}.
    pub cap_f_hat: BigUint,
    /// ψ_{j,i}: Πaff-g for (K_j, D, F, Γ_i).
    pub psi: AffGProof,
    /// ψ̂_{j,i}: Πaff-g for (K_j, D̂, F̂, W_i).
    pub psi_hat: AffGProof,
}

impl Round2Direct {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::R2_DIRECT)
            .uint(&self.cap_d)
            .uint(&self.cap_f)
            .uint(&self.cap_d_hat)
            .uint(&self.cap_f_hat)
            .bytes(&self.psi.to_bytes())
            .bytes(&self.psi_hat.to_bytes())
            .finish()
    }

    /// Decodes the canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R2_DIRECT)?;
        let cap_d = r.uint("D", MAX_MODULUS_SQ_BYTES)?;
        let cap_f = r.uint("F", MAX_MODULUS_SQ_BYTES)?;
        let cap_d_hat = r.uint("D̂", MAX_MODULUS_SQ_BYTES)?;
        let cap_f_hat = r.uint("F̂", MAX_MODULUS_SQ_BYTES)?;
        let psi = AffGProof::from_bytes(r.bytes("ψ", MAX_AFF_G_BYTES)?)?;
        let psi_hat = AffGProof::from_bytes(r.bytes("ψ̂", MAX_AFF_G_BYTES)?)?;
        r.finish()?;
        Ok(Self {
            cap_d,
            cap_f,
            cap_d_hat,
            cap_f_hat,
            psi,
            psi_hat,
        })
    }
}

/// Round 3 broadcast: echo of round 2, δ_i, Δ_i = k_i·Γ, S_i = χ_i·Γ and Πelog that Δ_i opens
/// A_i.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round3Broadcast {
    /// Echo of the round-2 broadcasts.
    pub echo: Echo,
    /// δ_i.
    pub delta: Scalar,
    /// Δ_i.
    pub cap_delta: ProjectivePoint,
    /// S_i.
    pub cap_s: ProjectivePoint,
    /// ψ''_i: Πelog for (A_{i,1}, A_{i,2}, Y_i, Δ_i, Γ).
    pub psi: ElogProof,
}

impl Round3Broadcast {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R3_BROADCAST);
        self.echo.write(&mut w);
        w.scalar(&self.delta)
            .point(&self.cap_delta)
            .point(&self.cap_s)
            .bytes(&self.psi.to_bytes());
        w.finish()
    }

    /// Decodes the canonical encoding for a committee of `m`.
    pub fn from_bytes(bytes: &[u8], m: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R3_BROADCAST)?;
        let echo = Echo::read(&mut r, m)?;
        let delta = r.scalar("δ_i")?;
        let cap_delta = r.point("Δ_i")?;
        let cap_s = r.point("S_i")?;
        let psi = ElogProof::from_bytes(r.bytes("ψ''_i", MAX_ELOG_BYTES)?)?;
        r.finish()?;
        Ok(Self {
            echo,
            delta,
            cap_delta,
            cap_s,
            psi,
        })
    }
}

/// One affine operation revealed in identification: the sender's D and F for peer `to`, with
/// a setup-less Πaff-g* that anyone can verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevealedAffine {
    /// The receiving peer's committee index.
    pub to: u16,
    /// D sent to it.
    pub cap_d: BigUint,
    /// F sent to it.
    pub cap_f: BigUint,
    /// Πaff-g* for (K_to, D, F, X).
    pub proof: AffGStarProof,
}

/// The identification material of one side (δ with X = Γ_i, or χ with X = W_i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifySide {
    /// The affine operations this party sent, one per peer in signer order.
    pub sent: Vec<RevealedAffine>,
    /// Πdec: K_i^x·Π_j D_{j→i}·F_{i→j}⁻¹ decrypts to the party's δ_i (S = δ_i·G) or χ_i
    /// (S = S_i = χ_i·Γ).
    pub dec: DecProof,
}

impl IdentifySide {
    fn write(&self, w: &mut Writer) {
        w.u16(self.sent.len() as u16);
        for a in &self.sent {
            w.u16(a.to)
                .uint(&a.cap_d)
                .uint(&a.cap_f)
                .bytes(&a.proof.to_bytes());
        }
        w.bytes(&self.dec.to_bytes());
    }

    fn read(r: &mut Reader<'_>, m: usize) -> Result<Self, DecodeError> {
        let n = r.count_at_most("revealed", m)?;
        let mut sent: Vec<RevealedAffine> = Vec::with_capacity(n);
        for _ in 0..n {
            let to = r.u16("to")?;
            if usize::from(to) >= m || sent.last().is_some_and(|a| a.to >= to) {
                return Err(DecodeError::NonCanonical { field: "to" });
            }
            sent.push(RevealedAffine {
                to,
                cap_d: r.uint("D", MAX_MODULUS_SQ_BYTES)?,
                cap_f: r.uint("F", MAX_MODULUS_SQ_BYTES)?,
                proof: AffGStarProof::from_bytes(r.bytes("Πaff-g*", MAX_AFF_G_STAR_BYTES)?)?,
            });
        }
        let dec = DecProof::from_bytes(r.bytes("Πdec", MAX_DEC_BYTES)?)?;
        Ok(Self { sent, dec })
    }
}

/// Round 4 broadcast, only after δ·G ≠ Σ Δ_j or Σ S_j ≠ δ·X (CGGMP24 Fig. 9, §4.3.1): echo
/// of round 3 and the identification material of the side(s) that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round4Identify {
    /// Echo of round 3.
    pub echo: Echo,
    /// The δ side (present iff δ·G ≠ Σ Δ_j).
    pub delta: Option<IdentifySide>,
    /// The χ side (present iff Σ S_j ≠ δ·X).
    pub chi: Option<IdentifySide>,
}

impl Round4Identify {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::R4_IDENTIFY);
        self.echo.write(&mut w);
        for side in [&self.delta, &self.chi] {
            match side {
                None => {
                    w.u8(0);
                }
                Some(s) => {
                    w.u8(1);
                    s.write(&mut w);
                }
            }
        }
        w.finish()
    }

    /// Decodes the canonical encoding for a committee of `m`.
    pub fn from_bytes(bytes: &[u8], m: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::R4_IDENTIFY)?;
        let echo = Echo::read(&mut r, m)?;
        let mut sides = [None, None];
        for side in sides.iter_mut() {
            *side = match r.u8("side present")? {
                0 => None,
                1 => Some(IdentifySide::read(&mut r, m)?),
                _ => {
                    return Err(DecodeError::NonCanonical {
                        field: "side present",
                    })
                }
            };
        }
        r.finish()?;
        let [delta, chi] = sides;
        Ok(Self { echo, delta, chi })
    }
}
