//! Πsch — Schnorr proof of knowledge of a discrete logarithm (CGGMP24 Fig. 22).
//!
//! Statement: X ∈ G. Witness: x ∈ F_q with X = x·G.
//! 1. Prover samples α ← F_q and sends A = α·G.
//! 2. Challenge e ∈ F_q = H(context, X, A) (Fiat–Shamir).
//! 3. Prover sends z = α + e·x mod q.
//!
//! Verifier accepts iff z·G = A + e·X.
//!
//! The commitment A can be made (and committed to) before the challenge context is known,
//! as the DKG of Fig. 6 does: [`SchCommitment::new`] then [`SchProof::prove_with`].

use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{ensure, tags, FailureKind, ProofContext, ProofError};
use crate::encoding::{DecodeError, Reader, Writer};

const PROOF: &str = "Πsch (Fig. 22)";
const LABEL: &[u8] = b"cggmp24/pi-sch/fig22";

/// Public input: X = x·G.
#[derive(Clone, Copy, Debug)]
pub struct SchStatement<'a> {
    /// X.
    pub x: &'a ProjectivePoint,
}

/// Secret input: x.
pub struct SchWitness<'a> {
    /// x with X = x·G.
    pub x: &'a Scalar,
}

/// The prover's first message A = α·G together with its secret α (use once).
pub struct SchCommitment {
    alpha: Zeroizing<Scalar>,
    /// A = α·G, public.
    pub a: ProjectivePoint,
}

impl fmt::Debug for SchCommitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchCommitment")
            .field("a", &self.a)
            .finish_non_exhaustive()
    }
}

impl SchCommitment {
    /// Samples α ← F_q and computes A = α·G.
    pub fn new(rng: &mut impl CryptoRngCore) -> Self {
        let alpha = Zeroizing::new(Scalar::random(rng));
        let a = ProjectivePoint::GENERATOR * *alpha;
        Self { alpha, a }
    }
}

/// A Schnorr proof (A, z).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchProof {
    /// A = α·G.
    pub a: ProjectivePoint,
    /// z = α + e·x.
    pub z: Scalar,
}

fn challenge(ctx: &ProofContext<'_>, st: &SchStatement<'_>, a: &ProjectivePoint) -> Scalar {
    let mut t = ctx.transcript(LABEL);
    t.append_point(b"X", st.x);
    t.append_point(b"A", a);
    t.challenge_scalar(b"e")
}

impl SchProof {
    /// Proves knowledge of x with a fresh commitment.
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &SchStatement<'_>,
        w: &SchWitness<'_>,
    ) -> Result<Self, ProofError> {
        Self::prove_with(SchCommitment::new(rng), ctx, st, w)
    }

    /// Proves knowledge of x with a commitment made earlier (consumed: α is used once).
    pub fn prove_with(
        commitment: SchCommitment,
        ctx: &ProofContext<'_>,
        st: &SchStatement<'_>,
        w: &SchWitness<'_>,
    ) -> Result<Self, ProofError> {
        ensure(
            ProjectivePoint::GENERATOR * w.x == *st.x,
            PROOF,
            FailureKind::Witness,
            "X = x·G",
        )?;
        let e = challenge(ctx, st, &commitment.a);
        let z = *commitment.alpha + e * w.x;
        Ok(Self { a: commitment.a, z })
    }

    /// Verifies z·G = A + e·X.
    pub fn verify(&self, ctx: &ProofContext<'_>, st: &SchStatement<'_>) -> Result<(), ProofError> {
        ensure(
            !bool::from(k256::elliptic_curve::group::Group::is_identity(st.x)),
            PROOF,
            FailureKind::Statement,
            "X ≠ identity",
        )?;
        let e = challenge(ctx, st, &self.a);
        ensure(
            ProjectivePoint::GENERATOR * self.z == self.a + *st.x * e,
            PROOF,
            FailureKind::Equation,
            "z·G = A + e·X",
        )
    }

    /// Canonical encoding: tag, A (33 bytes), z (32 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::SCH)
            .point(&self.a)
            .scalar(&self.z)
            .finish()
    }

    /// Decodes the canonical encoding, rejecting anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::SCH)?;
        let a = r.point("A")?;
        let z = r.scalar("z")?;
        r.finish()?;
        Ok(Self { a, z })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::{ctx, other_contexts};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn setup() -> (ChaCha20Rng, Scalar, ProjectivePoint) {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let x = Scalar::random(&mut rng);
        (rng, x, ProjectivePoint::GENERATOR * x)
    }

    #[test]
    fn honest_proof_verifies_and_round_trips() {
        let (mut rng, x, big_x) = setup();
        let st = SchStatement { x: &big_x };
        let proof = SchProof::prove(&mut rng, &ctx(), &st, &SchWitness { x: &x }).unwrap();
        proof.verify(&ctx(), &st).unwrap();
        let decoded = SchProof::from_bytes(&proof.to_bytes()).unwrap();
        assert_eq!(decoded, proof);
        decoded.verify(&ctx(), &st).unwrap();
    }

    #[test]
    fn tampered_fields_fail() {
        let (mut rng, x, big_x) = setup();
        let st = SchStatement { x: &big_x };
        let proof = SchProof::prove(&mut rng, &ctx(), &st, &SchWitness { x: &x }).unwrap();
        let mut bad = proof.clone();
        bad.a += ProjectivePoint::GENERATOR;
        assert!(bad.verify(&ctx(), &st).is_err());
        let mut bad = proof.clone();
        bad.z += Scalar::ONE;
        assert!(bad.verify(&ctx(), &st).is_err());
    }

    /// DKG-03: a proof is bound to the session, the prover and ρ; replay elsewhere fails.
    #[test]
    fn proof_for_other_statement_session_or_prover_fails() {
        let (mut rng, x, big_x) = setup();
        let st = SchStatement { x: &big_x };
        let proof = SchProof::prove(&mut rng, &ctx(), &st, &SchWitness { x: &x }).unwrap();
        for other in other_contexts() {
            assert!(proof.verify(&other, &st).is_err());
        }
        let other_x = big_x + ProjectivePoint::GENERATOR;
        assert!(proof.verify(&ctx(), &SchStatement { x: &other_x }).is_err());
        assert!(proof
            .verify(
                &ctx(),
                &SchStatement {
                    x: &ProjectivePoint::IDENTITY
                }
            )
            .is_err());
    }

    #[test]
    fn wrong_witness_is_refused_by_prover() {
        let (mut rng, x, big_x) = setup();
        let wrong = x + Scalar::ONE;
        let err = SchProof::prove(
            &mut rng,
            &ctx(),
            &SchStatement { x: &big_x },
            &SchWitness { x: &wrong },
        )
        .unwrap_err();
        assert_eq!(err.kind, FailureKind::Witness);
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let (mut rng, x, big_x) = setup();
        let bytes = SchProof::prove(
            &mut rng,
            &ctx(),
            &SchStatement { x: &big_x },
            &SchWitness { x: &x },
        )
        .unwrap()
        .to_bytes();
        for len in 0..bytes.len() {
            assert!(SchProof::from_bytes(&bytes[..len]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(SchProof::from_bytes(&long).is_err());
        let mut bad_scalar = bytes.clone();
        bad_scalar[34..].fill(0xFF);
        assert!(SchProof::from_bytes(&bad_scalar).is_err());
    }
}
