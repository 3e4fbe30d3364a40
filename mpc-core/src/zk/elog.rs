//! Πelog — discrete log vs El-Gamal commitment (CGGMP24 Fig. 23).
//!
//! Statement: points L, M, X, Y, h. Witness: y, λ ∈ F_q with
//!
//! L = λ·G, M = y·G + λ·X, Y = y·h,
//!
//! i.e. (L, M) is an El-Gamal commitment to y under the key X, and Y = y·h for the same y.
//! Presigning (Fig. 8, 9) uses it with (L, M, X, Y, h) = (B_{i,1}, B_{i,2}, Y_i, Γ_i, G) and
//! (A_{i,1}, A_{i,2}, Y_i, Δ_i, Γ) (PRE-03).
//!
//! Prover:
//! 1. Samples α, m ← F_q and sends A = α·G, N = m·G + α·X, B = m·h.
//! 2. Challenge e ∈ F_q = H(context, L, M, X, Y, h, A, N, B) (Fiat–Shamir).
//! 3. Sends z = α + e·λ and u = m + e·y (mod q).
//!
//! Verifier:
//! - h ≠ identity and X ≠ identity (statement);
//! - z·G = A + e·L;
//! - u·G + z·X = N + e·M;
//! - u·h = B + e·Y.

use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::group::Group;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{ensure, tags, FailureKind, ProofContext, ProofError};
use crate::encoding::{DecodeError, Reader, Writer};

const PROOF: &str = "Πelog (Fig. 23)";
const LABEL: &[u8] = b"cggmp24/pi-elog/fig23";

const CHECK_H: &str = "h ≠ identity";
const CHECK_X: &str = "X ≠ identity";
const CHECK_EQ_L: &str = "z·G = A + e·L";
const CHECK_EQ_M: &str = "u·G + z·X = N + e·M";
const CHECK_EQ_Y: &str = "u·h = B + e·Y";
const CHECK_W_L: &str = "L = λ·G";
const CHECK_W_M: &str = "M = y·G + λ·X";
const CHECK_W_Y: &str = "Y = y·h";

/// Public input: L, M, X, Y, h.
#[derive(Clone, Copy, Debug)]
pub struct ElogStatement<'a> {
    /// L = λ·G.
    pub cap_l: &'a ProjectivePoint,
    /// M = y·G + λ·X.
    pub cap_m: &'a ProjectivePoint,
    /// The El-Gamal key X.
    pub cap_x: &'a ProjectivePoint,
    /// Y = y·h.
    pub cap_y: &'a ProjectivePoint,
    /// The base h of Y.
    pub h: &'a ProjectivePoint,
}

/// Secret input: y and λ.
pub struct ElogWitness<'a> {
    /// y with M = y·G + λ·X and Y = y·h.
    pub y: &'a Scalar,
    /// λ with L = λ·G.
    pub lambda: &'a Scalar,
}

impl fmt::Debug for ElogWitness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ElogWitness(<redacted>)")
    }
}

/// A Πelog proof: first message (A, N, B) and response (z, u).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElogProof {
    /// A = α·G.
    pub cap_a: ProjectivePoint,
    /// N = m·G + α·X.
    pub cap_n: ProjectivePoint,
    /// B = m·h.
    pub cap_b: ProjectivePoint,
    /// z = α + e·λ.
    pub z: Scalar,
    /// u = m + e·y.
    pub u: Scalar,
}

/// e ∈ F_q from the context, the statement and the first message.
fn challenge(
    ctx: &ProofContext<'_>,
    st: &ElogStatement<'_>,
    cap_a: &ProjectivePoint,
    cap_n: &ProjectivePoint,
    cap_b: &ProjectivePoint,
) -> Scalar {
    let mut tr = ctx.transcript(LABEL);
    tr.append_point(b"L", st.cap_l);
    tr.append_point(b"M", st.cap_m);
    tr.append_point(b"X", st.cap_x);
    tr.append_point(b"Y", st.cap_y);
    tr.append_point(b"h", st.h);
    tr.append_point(b"A", cap_a);
    tr.append_point(b"N", cap_n);
    tr.append_point(b"B", cap_b);
    tr.challenge_scalar(b"e")
}

impl ElogProof {
    /// Proves that (L, M) commits under X to the discrete log y of Y in base h.
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &ElogStatement<'_>,
        w: &ElogWitness<'_>,
    ) -> Result<Self, ProofError> {
        let g = ProjectivePoint::GENERATOR;
        ensure(
            g * w.lambda == *st.cap_l,
            PROOF,
            FailureKind::Witness,
            CHECK_W_L,
        )?;
        ensure(
            g * w.y + *st.cap_x * w.lambda == *st.cap_m,
            PROOF,
            FailureKind::Witness,
            CHECK_W_M,
        )?;
        ensure(
            *st.h * w.y == *st.cap_y,
            PROOF,
            FailureKind::Witness,
            CHECK_W_Y,
        )?;
        Ok(Self::prove_unchecked(rng, ctx, st, w))
    }

    /// The prover's computation without the witness checks. Private: only [`Self::prove`]
    /// and the tests' cheating provers call it.
    fn prove_unchecked(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &ElogStatement<'_>,
        w: &ElogWitness<'_>,
    ) -> Self {
        let g = ProjectivePoint::GENERATOR;
        let alpha = Zeroizing::new(Scalar::random(&mut *rng));
        let m = Zeroizing::new(Scalar::random(&mut *rng));
        let cap_a = g * *alpha;
        let cap_n = g * *m + *st.cap_x * *alpha;
        let cap_b = *st.h * *m;
        let e = challenge(ctx, st, &cap_a, &cap_n, &cap_b);
        let z = *alpha + e * w.lambda;
        let u = *m + e * w.y;
        Self {
            cap_a,
            cap_n,
            cap_b,
            z,
            u,
        }
    }

    /// Verifies the proof.
    pub fn verify(&self, ctx: &ProofContext<'_>, st: &ElogStatement<'_>) -> Result<(), ProofError> {
        ensure(
            !bool::from(st.h.is_identity()),
            PROOF,
            FailureKind::Statement,
            CHECK_H,
        )?;
        ensure(
            !bool::from(st.cap_x.is_identity()),
            PROOF,
            FailureKind::Statement,
            CHECK_X,
        )?;
        let e = challenge(ctx, st, &self.cap_a, &self.cap_n, &self.cap_b);
        let g = ProjectivePoint::GENERATOR;
        ensure(
            g * self.z == self.cap_a + *st.cap_l * e,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_L,
        )?;
        ensure(
            g * self.u + *st.cap_x * self.z == self.cap_n + *st.cap_m * e,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_M,
        )?;
        ensure(
            *st.h * self.u == self.cap_b + *st.cap_y * e,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_Y,
        )
    }

    /// Canonical encoding: tag, A, N, B (33 bytes each), z, u (32 bytes each).
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::ELOG)
            .point(&self.cap_a)
            .point(&self.cap_n)
            .point(&self.cap_b)
            .scalar(&self.z)
            .scalar(&self.u)
            .finish()
    }

    /// Decodes the canonical encoding, rejecting anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::ELOG)?;
        let cap_a = r.point("A")?;
        let cap_n = r.point("N")?;
        let cap_b = r.point("B")?;
        let z = r.scalar("z")?;
        let u = r.scalar("u")?;
        r.finish()?;
        Ok(Self {
            cap_a,
            cap_n,
            cap_b,
            z,
            u,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::zk::testing::{ctx, other_contexts};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    type Tamper = fn(&mut ElogProof);

    /// One presigning-shaped instance: El-Gamal key X = Y_i, commitment (L, M) to y, Y = y·h.
    struct Instance {
        cap_l: ProjectivePoint,
        cap_m: ProjectivePoint,
        cap_x: ProjectivePoint,
        cap_y: ProjectivePoint,
        h: ProjectivePoint,
        y: Scalar,
        lambda: Scalar,
    }

    impl Instance {
        fn new(rng: &mut ChaCha20Rng, h: ProjectivePoint) -> Self {
            let g = ProjectivePoint::GENERATOR;
            let cap_x = g * Scalar::random(&mut *rng);
            let y = Scalar::random(&mut *rng);
            let lambda = Scalar::random(&mut *rng);
            Self {
                cap_l: g * lambda,
                cap_m: g * y + cap_x * lambda,
                cap_x,
                cap_y: h * y,
                h,
                y,
                lambda,
            }
        }

        fn statement(&self) -> ElogStatement<'_> {
            ElogStatement {
                cap_l: &self.cap_l,
                cap_m: &self.cap_m,
                cap_x: &self.cap_x,
                cap_y: &self.cap_y,
                h: &self.h,
            }
        }

        fn witness(&self) -> ElogWitness<'_> {
            ElogWitness {
                y: &self.y,
                lambda: &self.lambda,
            }
        }
    }

    fn setup(seed: u64) -> (ChaCha20Rng, Instance, ElogProof) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let h = ProjectivePoint::GENERATOR * Scalar::random(&mut rng);
        let inst = Instance::new(&mut rng, h);
        let proof = ElogProof::prove(&mut rng, &ctx(), &inst.statement(), &inst.witness()).unwrap();
        (rng, inst, proof)
    }

    /// The three equations separately, recomputed outside `verify`.
    fn equations(proof: &ElogProof, ctx: &ProofContext<'_>, st: &ElogStatement<'_>) -> [bool; 3] {
        let e = challenge(ctx, st, &proof.cap_a, &proof.cap_n, &proof.cap_b);
        let g = ProjectivePoint::GENERATOR;
        [
            g * proof.z == proof.cap_a + *st.cap_l * e,
            g * proof.u + *st.cap_x * proof.z == proof.cap_n + *st.cap_m * e,
            *st.h * proof.u == proof.cap_b + *st.cap_y * e,
        ]
    }

    #[test]
    fn honest_proof_verifies_and_round_trips() {
        let (_, inst, proof) = setup(23);
        let st = inst.statement();
        proof.verify(&ctx(), &st).unwrap();
        assert_eq!(equations(&proof, &ctx(), &st), [true; 3]);
        let bytes = proof.to_bytes();
        assert_eq!(bytes.len(), 1 + 3 * 33 + 2 * 32);
        let decoded = ElogProof::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, proof);
        decoded.verify(&ctx(), &st).unwrap();
        assert_eq!(format!("{:?}", inst.witness()), "ElogWitness(<redacted>)");
    }

    /// PRE-03: both uses in presigning, (B1, B2, Y_i, Γ_i, G) for Γ_i and
    /// (A1, A2, Y_i, Δ_i, Γ) for Δ_i = k_i·Γ, verify; a Γ_i or Δ_i that is not y·h with the
    /// same El-Gamal commitment is rejected.
    #[test]
    fn pre_03_gamma_and_delta_statements_of_presigning() {
        let mut rng = ChaCha20Rng::seed_from_u64(2301);
        let g = ProjectivePoint::GENERATOR;
        let cap_y_i = g * Scalar::random(&mut rng);
        // Γ_i = γ_i·G committed as (B1, B2) = (b·G, γ_i·G + b·Y_i).
        let (gamma_i, b) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
        let (b1, b2, big_gamma_i) = (g * b, g * gamma_i + cap_y_i * b, g * gamma_i);
        // Δ_i = k_i·Γ committed as (A1, A2) = (a·G, k_i·G + a·Y_i), Γ the joint Γ.
        let big_gamma = g * Scalar::random(&mut rng);
        let (k_i, a) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
        let (a1, a2, delta_i) = (g * a, g * k_i + cap_y_i * a, big_gamma * k_i);
        let cases = [
            (
                ElogStatement {
                    cap_l: &b1,
                    cap_m: &b2,
                    cap_x: &cap_y_i,
                    cap_y: &big_gamma_i,
                    h: &g,
                },
                ElogWitness {
                    y: &gamma_i,
                    lambda: &b,
                },
            ),
            (
                ElogStatement {
                    cap_l: &a1,
                    cap_m: &a2,
                    cap_x: &cap_y_i,
                    cap_y: &delta_i,
                    h: &big_gamma,
                },
                ElogWitness {
                    y: &k_i,
                    lambda: &a,
                },
            ),
        ];
        for (st, w) in cases {
            ElogProof::prove(&mut rng, &ctx(), &st, &w)
                .unwrap()
                .verify(&ctx(), &st)
                .unwrap();
            // Y' = y'·h for another y' with the same commitment (L, M): the honest prover refuses,
            // a prover that skips the check passes the first two equations and fails u·h = B + e·Y.
            let wrong_y = *st.cap_y + *st.h;
            let bad_st = ElogStatement {
                cap_y: &wrong_y,
                ..st
            };
            let err = ElogProof::prove(&mut rng, &ctx(), &bad_st, &w).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Witness, CHECK_W_Y));
            let forged = ElogProof::prove_unchecked(&mut rng, &ctx(), &bad_st, &w);
            assert_eq!(equations(&forged, &ctx(), &bad_st), [true, true, false]);
            let err = forged.verify(&ctx(), &bad_st).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Equation, CHECK_EQ_Y));
        }
    }

    /// PRE-03: each equation alone stops a statement that breaks only it: a prover that skips
    /// the witness checks, with a true witness for all relations but one, produces a proof
    /// satisfying the other two equations.
    #[test]
    fn pre_03_each_equation_alone_rejects_its_broken_relation() {
        let (mut rng, inst, _) = setup(2302);
        let g = ProjectivePoint::GENERATOR;
        let (l2, m2, y2) = (inst.cap_l + g, inst.cap_m + g, inst.cap_y + inst.h);
        let st = inst.statement();
        let cases = [
            (
                ElogStatement { cap_l: &l2, ..st },
                CHECK_W_L,
                CHECK_EQ_L,
                [false, true, true],
            ),
            (
                ElogStatement { cap_m: &m2, ..st },
                CHECK_W_M,
                CHECK_EQ_M,
                [true, false, true],
            ),
            (
                ElogStatement { cap_y: &y2, ..st },
                CHECK_W_Y,
                CHECK_EQ_Y,
                [true, true, false],
            ),
        ];
        for (bad_st, witness_check, check, expected) in cases {
            let err = ElogProof::prove(&mut rng, &ctx(), &bad_st, &inst.witness()).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Witness, witness_check));
            let forged = ElogProof::prove_unchecked(&mut rng, &ctx(), &bad_st, &inst.witness());
            assert_eq!(equations(&forged, &ctx(), &bad_st), expected, "{check}");
            let err = forged.verify(&ctx(), &bad_st).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Equation, check));
        }
    }

    #[test]
    fn tampered_fields_fail() {
        let (_, inst, proof) = setup(2303);
        let st = inst.statement();
        let tampers: [(&str, Tamper); 5] = [
            ("A", |p| p.cap_a += ProjectivePoint::GENERATOR),
            ("N", |p| p.cap_n += ProjectivePoint::GENERATOR),
            ("B", |p| p.cap_b += ProjectivePoint::GENERATOR),
            ("z", |p| p.z += Scalar::ONE),
            ("u", |p| p.u += Scalar::ONE),
        ];
        for (name, tamper) in tampers {
            let mut bad = proof.clone();
            tamper(&mut bad);
            assert_eq!(
                bad.verify(&ctx(), &st).unwrap_err().kind,
                FailureKind::Equation,
                "{name}"
            );
        }
    }

    /// ENC-02: the challenge covers L, M, X, Y, h and the session, prover and ρ.
    #[test]
    fn enc_02_proof_for_other_statement_or_context_fails() {
        let (_, inst, proof) = setup(2304);
        let st = inst.statement();
        for other in other_contexts() {
            assert_eq!(
                proof.verify(&other, &st).unwrap_err().kind,
                FailureKind::Equation
            );
        }
        let g = ProjectivePoint::GENERATOR;
        let (l2, m2, x2, y2, h2) = (
            inst.cap_l + g,
            inst.cap_m + g,
            inst.cap_x + g,
            inst.cap_y + g,
            inst.h + g,
        );
        for changed in [
            ElogStatement { cap_l: &l2, ..st },
            ElogStatement { cap_m: &m2, ..st },
            ElogStatement { cap_x: &x2, ..st },
            ElogStatement { cap_y: &y2, ..st },
            ElogStatement { h: &h2, ..st },
        ] {
            assert_eq!(
                proof.verify(&ctx(), &changed).unwrap_err().kind,
                FailureKind::Equation
            );
        }
        // Scaling the statement and proof together still fails: e binds the exact values.
        let two = Scalar::from(2u64);
        let (l3, m3, y3, h3) = (
            inst.cap_l * two,
            inst.cap_m * two,
            inst.cap_y * two,
            inst.h * two,
        );
        let scaled = ElogStatement {
            cap_l: &l3,
            cap_m: &m3,
            cap_x: &inst.cap_x,
            cap_y: &y3,
            h: &h3,
        };
        assert!(proof.verify(&ctx(), &scaled).is_err());
    }

    /// h and X must not be the identity: with h = 0 any Y = 0 "proves" nothing, with X = 0 the
    /// commitment M = y·G is not hiding.
    #[test]
    fn identity_base_or_key_is_refused() {
        let (mut rng, inst, proof) = setup(2305);
        let id = ProjectivePoint::IDENTITY;
        let st = inst.statement();
        let err = proof
            .verify(&ctx(), &ElogStatement { h: &id, ..st })
            .unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Statement, CHECK_H));
        let err = proof
            .verify(&ctx(), &ElogStatement { cap_x: &id, ..st })
            .unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Statement, CHECK_X));
        // Even a proof made for the degenerate statement is refused.
        let zero_h = Instance::new(&mut rng, id);
        let forged =
            ElogProof::prove(&mut rng, &ctx(), &zero_h.statement(), &zero_h.witness()).unwrap();
        assert_eq!(
            forged
                .verify(&ctx(), &zero_h.statement())
                .unwrap_err()
                .check,
            CHECK_H
        );
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let (_, _, proof) = setup(2306);
        let bytes = proof.to_bytes();
        for len in 0..bytes.len() {
            assert!(
                ElogProof::from_bytes(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            ElogProof::from_bytes(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut tag = bytes.clone();
        tag[0] = tags::SCH;
        assert!(matches!(
            ElogProof::from_bytes(&tag),
            Err(DecodeError::WrongTag { .. })
        ));
        let mut bad_point = bytes.clone();
        bad_point[34] = 0x02;
        bad_point[35..67].fill(0xFF);
        assert_eq!(
            ElogProof::from_bytes(&bad_point),
            Err(DecodeError::BadPoint { field: "N" })
        );
        // Any SEC1 tag other than 0x02/0x03 is refused; 0x05 ("compact") would otherwise decode
        // to the same curve point in k256, a second encoding of the proof.
        for (at, field) in [(1, "A"), (34, "N"), (67, "B")] {
            let mut compact = bytes.clone();
            compact[at] = 0x05;
            assert_eq!(
                ElogProof::from_bytes(&compact),
                Err(DecodeError::BadPoint { field })
            );
            for tag in [0x00u8, 0x01, 0x04, 0x06, 0x07] {
                let mut other = bytes.clone();
                other[at] = tag;
                assert_eq!(
                    ElogProof::from_bytes(&other),
                    Err(DecodeError::BadPoint { field }),
                    "tag {tag:#04x}"
                );
            }
        }
        let mut bad_scalar = bytes.clone();
        bad_scalar[100..132].fill(0xFF);
        assert_eq!(
            ElogProof::from_bytes(&bad_scalar),
            Err(DecodeError::BadScalar { field: "z" })
        );
        let mut bad_scalar = bytes.clone();
        bad_scalar[132..].fill(0xFF);
        assert_eq!(
            ElogProof::from_bytes(&bad_scalar),
            Err(DecodeError::BadScalar { field: "u" })
        );
    }
}
