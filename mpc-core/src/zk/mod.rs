//! Zero-knowledge proofs of CGGMP24 (ePrint 2021/060, rev. 2024-10-21), non-interactive by
//! Fiat–Shamir over [`crate::transcript::Transcript`].
//!
//! Every proof module has the same shape: a `…Statement` (public inputs, borrowed), a
//! `…Witness` (secrets: zeroized, never printed), and a `…Proof` with `prove`, `verify`,
//! `to_bytes` and `from_bytes`. Every challenge is bound to a [`ProofContext`] — session id,
//! prover index and the session's joint randomness ρ — and to every public input and every
//! commitment of the proof (ENC-02). Verification checks sizes, ranges and unit-ness before
//! any expensive exponentiation (AUX-04) and returns a [`ProofError`] naming the failed check.
//!
//! | proof | figure | module |
//! |---|---|---|
//! | Πsch, Schnorr | Fig. 22 | [`sch`] |
//! | Πelog, dlog vs El-Gamal commitment | Fig. 23 | [`elog`] |
//! | Πenc-elg, Paillier enc. in range with El-Gamal commitment | Fig. 24 | [`enc_elg`] |
//! | Πaff-g, affine operation with group commitment in range | Fig. 25 | [`aff_g`] |
//! | Πfac, no small factor | Fig. 26 | [`fac`] |
//! | Πaff-g*, setup-less affine operation | Fig. 27 | [`aff_g_star`] |
//! | Πdec, Paillier decryption modulo q | Fig. 28 | [`dec`] |
//! | Πmod, Paillier-Blum modulus | Fig. 12 | [`pi_mod`] |
//! | Πprm, ring-Pedersen parameters | Fig. 13 | [`prm`] |

use core::fmt;

use crate::transcript::Transcript;

pub mod aff_g;
pub mod aff_g_star;
pub mod dec;
pub mod elog;
pub mod enc_elg;
pub mod fac;
pub mod pi_mod;
pub mod prm;
pub mod sch;

/// Length of the joint randomness ρ of a session.
pub const RHO_BYTES: usize = 32;

/// Largest accepted session id, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 64;

/// What every Fiat–Shamir challenge is bound to besides the statement (ENC-02, AUX-06,
/// DKG-03): the session, the prover, and the session's joint randomness ρ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofContext<'a> {
    /// Session id, unique per protocol execution (at most [`MAX_SESSION_ID_BYTES`]).
    pub session_id: &'a [u8],
    /// Index of the proving party.
    pub prover: u16,
    /// Joint randomness ρ of the session (all zeros only before it exists).
    pub rho: &'a [u8; RHO_BYTES],
}

impl ProofContext<'_> {
    /// A transcript for proof `label`, already bound to this context.
    pub fn transcript(&self, label: &'static [u8]) -> Transcript {
        let mut t = Transcript::new(label);
        t.append_bytes(b"session-id", self.session_id);
        t.append_u64(b"prover", u64::from(self.prover));
        t.append_bytes(b"rho", self.rho);
        t
    }
}

/// Which kind of check a proof failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The statement itself is unacceptable (sizes, units, identity points).
    Statement,
    /// A value of the proof is outside its range or not of the right size.
    Range,
    /// A value of the proof is not a unit of its group.
    Unit,
    /// A verification equation does not hold.
    Equation,
    /// The prover's witness does not satisfy the statement (prover side only).
    Witness,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Statement => "unacceptable statement",
            Self::Range => "value out of range",
            Self::Unit => "value is not a unit",
            Self::Equation => "verification equation fails",
            Self::Witness => "witness does not satisfy the statement",
        })
    }
}

/// A proof did not verify (or could not be made); names the proof and the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{proof}: {kind}: {check}")]
pub struct ProofError {
    /// The proof, e.g. `"Πmod (Fig. 12)"`.
    pub proof: &'static str,
    /// The kind of failure.
    pub kind: FailureKind,
    /// The specific check, e.g. `"Jacobi(w, N) = -1"`.
    pub check: &'static str,
}

impl ProofError {
    pub(crate) const fn new(proof: &'static str, kind: FailureKind, check: &'static str) -> Self {
        Self { proof, kind, check }
    }
}

/// Returns `Err(ProofError)` unless `cond` holds.
pub(crate) fn ensure(
    cond: bool,
    proof: &'static str,
    kind: FailureKind,
    check: &'static str,
) -> Result<(), ProofError> {
    if cond {
        Ok(())
    } else {
        Err(ProofError::new(proof, kind, check))
    }
}

/// Type tags of the canonical proof encodings (first byte of `to_bytes`).
pub mod tags {
    /// Πsch.
    pub const SCH: u8 = 0x10;
    /// Πmod.
    pub const MOD: u8 = 0x11;
    /// Πprm.
    pub const PRM: u8 = 0x12;
    /// Πfac.
    pub const FAC: u8 = 0x13;
    /// Πenc-elg.
    pub const ENC_ELG: u8 = 0x14;
    /// Πaff-g.
    pub const AFF_G: u8 = 0x15;
    /// Πaff-g*.
    pub const AFF_G_STAR: u8 = 0x16;
    /// Πelog.
    pub const ELOG: u8 = 0x17;
    /// Πdec.
    pub const DEC: u8 = 0x18;
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared helpers for the proof tests.
    use super::{ProofContext, RHO_BYTES};
    use crate::encoding::DecodeError;
    use crate::params::MAX_MODULUS_SQ_BYTES;

    /// Session id used by honest test proofs.
    pub const SID: &[u8] = b"test-session-0001";
    /// Joint randomness used by honest test proofs.
    pub const RHO: [u8; RHO_BYTES] = [7u8; RHO_BYTES];

    /// The honest context: prover 1 in session [`SID`] with ρ = [`RHO`].
    pub fn ctx() -> ProofContext<'static> {
        ProofContext {
            session_id: SID,
            prover: 1,
            rho: &RHO,
        }
    }

    /// Contexts that differ from [`ctx`] in exactly one field: another session, another
    /// prover, another ρ. A proof made under `ctx()` must fail under each of them.
    pub fn other_contexts() -> [ProofContext<'static>; 3] {
        const OTHER_RHO: [u8; RHO_BYTES] = [8u8; RHO_BYTES];
        [
            ProofContext {
                session_id: b"test-session-0002",
                prover: 1,
                rho: &RHO,
            },
            ProofContext {
                session_id: SID,
                prover: 2,
                rho: &RHO,
            },
            ProofContext {
                session_id: SID,
                prover: 1,
                rho: &OTHER_RHO,
            },
        ]
    }

    /// The framing checks shared by the 128-repetition proofs, whose encoding is
    /// tag ‖ u16 count ‖ repetitions, the first starting with a length-prefixed residue mod N²
    /// at bytes 3..7: every truncation through the first two repetitions and the last one (a
    /// stride of 97 between), one trailing byte, another proof's tag, an oversize and an
    /// over-cap length prefix, and a zero-padded first residue must all be refused.
    pub fn assert_repetition_framing_rejected<T: core::fmt::Debug + PartialEq>(
        bytes: &[u8],
        rep_len: usize,
        other_tag: u8,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) {
        let lengths = (0..3 + 2 * rep_len)
            .chain((3 + 2 * rep_len..bytes.len() - rep_len).step_by(97))
            .chain(bytes.len() - rep_len..bytes.len());
        for len in lengths {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(decode(&long), Err(DecodeError::TrailingBytes(1)));
        let mut wrong_tag = bytes.to_vec();
        wrong_tag[0] = other_tag;
        assert!(matches!(
            decode(&wrong_tag),
            Err(DecodeError::WrongTag { .. })
        ));
        // the length prefix of the first residue (bytes 3..7): oversize, and one above the cap
        for len in [u32::MAX, MAX_MODULUS_SQ_BYTES as u32 + 1] {
            let mut oversize = bytes.to_vec();
            oversize[3..7].copy_from_slice(&len.to_be_bytes());
            assert!(matches!(
                decode(&oversize),
                Err(DecodeError::TooLong { .. })
            ));
        }
        // the first residue with a leading zero byte
        let a_len = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]);
        let mut padded = bytes[..3].to_vec();
        padded.extend_from_slice(&(a_len + 1).to_be_bytes());
        padded.push(0);
        padded.extend_from_slice(&bytes[7..]);
        assert!(matches!(
            decode(&padded),
            Err(DecodeError::NonCanonical { .. })
        ));
    }

    /// PARAM-03 on the wire: rewriting the u16 repetition count (bytes 1..3) of an honest
    /// encoding to anything but m = 128 is refused with `WrongCount`, whatever the items say.
    pub fn assert_wire_count_other_than_m_rejected<T: core::fmt::Debug + PartialEq>(
        honest: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) {
        for got in [127u16, 129, 0, 1, u16::MAX] {
            let mut bytes = honest.to_vec();
            bytes[1..3].copy_from_slice(&got.to_be_bytes());
            assert_eq!(
                decode(&bytes),
                Err(DecodeError::WrongCount {
                    field: "m",
                    got: got.into(),
                    expected: crate::params::STAT_REPETITIONS
                })
            );
        }
    }
}
