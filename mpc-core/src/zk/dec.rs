//! Πdec — Paillier decryption modulo q (CGGMP24 Fig. 28).
//!
//! Setup-less, with binary challenges repeated m = [`STAT_REPETITIONS`] times (soundness error
//! 2^-m). The prover owns the Paillier key N; the proof is the evidence of the identification
//! rounds (Fig. 9, §4.3.1) and is verified by anyone from public data only.
//!
//! Statement: the prover's Paillier key N, K, D ∈ Z*_{N²}, points X, S and a base point Γ ≠ 𝒪
//! (the generator G in Figs. 8 and 9, the point Γ in §4.3.1). Witness: x ∈ ±2^ℓ,
//! y ∈ ±2^{DEC_PLAINTEXT_BITS} ([`DEC_PLAINTEXT_BITS`]), ρ ∈ Z*_N with
//! enc_N(y; ρ) = K^x·D mod N², X = x·G, S = y·Γ,
//! where enc_N(m; ρ) = (1 + N)^m·ρ^N mod N². The prover gets ρ of an aggregate ciphertext it
//! did not encrypt itself with [`PaillierSecretKey::recover_nonce`].
//!
//! 1. For j = 1..m the prover samples α_j ← ±2^{ℓ+ε}, β_j ← ±2^{DEC_PLAINTEXT_BITS+ε},
//!    r_j ← Z*_N and sends A_j = K^{−α_j}·enc_N(β_j; r_j) mod N², B_j = β_j·Γ, C_j = α_j·G.
//! 2. Challenge bits e_1..e_m = H(context, N, K, D, X, S, Γ, m, (A_j, B_j, C_j)_j)
//!    (Fiat–Shamir, every field tagged).
//! 3. Prover sends z_j = α_j + e_j·x, w_j = β_j + e_j·y, ν_j = r_j·ρ^{e_j} mod N.
//!
//! Verifier, cheap checks first (AUX-04):
//! - statement: K, D units mod N², Γ ≠ 𝒪 (kind `Statement`);
//! - exactly m repetitions (PARAM-03: the count is the constant m, never the prover's);
//! - for every j: z_j ∈ ±2^{ℓ+ε}, w_j ∈ ±2^{DEC_PLAINTEXT_BITS+ε}, A_j unit mod N², ν_j unit
//!   mod N;
//!
//! then the challenge bits and, for every j:
//! - z_j·G = C_j + e_j·X and w_j·Γ = B_j + e_j·S (all j first: the cheap equations);
//! - enc_N(w_j; ν_j) = A_j·K^{z_j}·D^{e_j} mod N².

use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::group::Group;
use k256::ProjectivePoint;
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::Zero;
use rand_core::CryptoRngCore;

use super::{ensure, tags, FailureKind, ProofContext, ProofError};
use crate::arith::{
    in_signed_bits, is_unit_mod, mod_inverse, random_signed_bits, random_unit, scalar_from_int,
    SecretInt, SecretUint,
};
use crate::encoding::{DecodeError, Reader, Writer};
use crate::paillier::{PaillierPublicKey, PaillierSecretKey};
use crate::params::{
    DEC_PLAINTEXT_BITS, ELL, EPSILON, MAX_MODULUS_BYTES, MAX_MODULUS_SQ_BYTES, STAT_REPETITIONS,
};

const PROOF: &str = "Πdec (Fig. 28)";
const LABEL: &[u8] = b"cggmp24/pi-dec/fig28";

// The checks, as reported in `ProofError::check`.
const CHECK_K: &str = "K unit mod N²";
const CHECK_D: &str = "D unit mod N²";
const CHECK_GAMMA: &str = "Γ ≠ identity";
const CHECK_COUNT: &str = "m = STAT_REPETITIONS repetitions";
const CHECK_Z_RANGE: &str = "z_j ∈ ±2^{ℓ+ε}";
const CHECK_W_RANGE: &str = "w_j ∈ ±2^{DEC_PLAINTEXT_BITS+ε}";
const CHECK_A_UNIT: &str = "A_j unit mod N²";
const CHECK_NU_UNIT: &str = "ν_j unit mod N";
const CHECK_EQ_X: &str = "z_j·G = C_j + e_j·X";
const CHECK_EQ_S: &str = "w_j·Γ = B_j + e_j·S";
const CHECK_EQ_N: &str = "enc_N(w_j; ν_j) = A_j·K^{z_j}·D^{e_j} mod N²";

/// Bytes of the magnitude of a value in ±2^bits.
const fn signed_cap_bytes(bits: u32) -> usize {
    (bits as usize + 1).div_ceil(8)
}
/// Encoding cap of z_j ∈ ±2^{ℓ+ε}.
const Z_CAP_BYTES: usize = signed_cap_bytes(ELL + EPSILON);
/// Encoding cap of w_j ∈ ±2^{DEC_PLAINTEXT_BITS+ε}.
const W_CAP_BYTES: usize = signed_cap_bytes(DEC_PLAINTEXT_BITS + EPSILON);

/// Public input of Πdec.
#[derive(Clone, Copy, Debug)]
pub struct DecStatement<'a> {
    /// N: the prover's Paillier key.
    pub n: &'a PaillierPublicKey,
    /// K ∈ Z*_{N²}.
    pub cap_k: &'a BigUint,
    /// D ∈ Z*_{N²}, with K^x·D = enc_N(y; ρ).
    pub cap_d: &'a BigUint,
    /// X = x·G.
    pub cap_x: &'a ProjectivePoint,
    /// S = y·Γ.
    pub cap_s: &'a ProjectivePoint,
    /// Γ, the base point of S (not the identity).
    pub gamma: &'a ProjectivePoint,
}

/// Secret input of Πdec.
pub struct DecWitness<'a> {
    /// x ∈ ±2^ℓ.
    pub x: &'a BigInt,
    /// y ∈ ±2^{DEC_PLAINTEXT_BITS}, the plaintext of K^x·D.
    pub y: &'a BigInt,
    /// ρ ∈ Z*_N, the randomness of K^x·D (see [`PaillierSecretKey::recover_nonce`]).
    pub rho: &'a BigUint,
    /// The prover's Paillier secret key for N (CRT exponentiation).
    pub prover_key: &'a PaillierSecretKey,
}

impl fmt::Debug for DecWitness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecWitness(<redacted>)")
    }
}

/// One of the m repetitions: first message (A_j, B_j, C_j) and response (z_j, w_j, ν_j).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecRepetition {
    /// A_j = K^{−α_j}·enc_N(β_j; r_j) mod N².
    pub cap_a: BigUint,
    /// B_j = β_j·Γ.
    pub cap_b: ProjectivePoint,
    /// C_j = α_j·G.
    pub cap_c: ProjectivePoint,
    /// z_j = α_j + e_j·x ∈ ±2^{ℓ+ε}.
    pub z: BigInt,
    /// w_j = β_j + e_j·y ∈ ±2^{DEC_PLAINTEXT_BITS+ε}.
    pub w: BigInt,
    /// ν_j = r_j·ρ^{e_j} mod N.
    pub nu: BigUint,
}

/// A Πdec proof: exactly m = [`STAT_REPETITIONS`] repetitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecProof {
    /// The repetitions j = 1..m.
    pub repetitions: Vec<DecRepetition>,
}

/// The m challenge bits over the context, every public input and the first messages of
/// `reps` (their response fields are not read).
fn challenge(ctx: &ProofContext<'_>, st: &DecStatement<'_>, reps: &[DecRepetition]) -> Vec<bool> {
    let mut t = ctx.transcript(LABEL);
    t.append_uint(b"N", st.n.n());
    t.append_uint(b"K", st.cap_k);
    t.append_uint(b"D", st.cap_d);
    t.append_point(b"X", st.cap_x);
    t.append_point(b"S", st.cap_s);
    t.append_point(b"Gamma", st.gamma);
    t.append_u64(b"m", reps.len() as u64);
    for rep in reps {
        t.append_uint(b"A_j", &rep.cap_a);
        t.append_point(b"B_j", &rep.cap_b);
        t.append_point(b"C_j", &rep.cap_c);
    }
    t.challenge_bits(b"e", STAT_REPETITIONS)
}

/// True when c is a unit of Z*_{N²} for the key `pk` (0 < c < N², gcd(c, N) = 1).
fn is_ciphertext(pk: &PaillierPublicKey, c: &BigUint) -> bool {
    pk.ciphertext(c.clone()).is_ok()
}

/// The statement's own checks: K, D units mod N² (PRE-05), Γ not the identity.
fn check_statement(st: &DecStatement<'_>) -> Result<(), ProofError> {
    ensure(
        is_ciphertext(st.n, st.cap_k),
        PROOF,
        FailureKind::Statement,
        CHECK_K,
    )?;
    ensure(
        is_ciphertext(st.n, st.cap_d),
        PROOF,
        FailureKind::Statement,
        CHECK_D,
    )?;
    ensure(
        !bool::from(st.gamma.is_identity()),
        PROOF,
        FailureKind::Statement,
        CHECK_GAMMA,
    )
}

/// The prover's secrets of one repetition (used once).
struct Masks {
    alpha: SecretInt,
    beta: SecretInt,
    r: SecretUint,
}

impl DecProof {
    /// Proves the relation for `st` after checking that `w` satisfies it (kind `Witness`
    /// otherwise; kind `Statement` if K or D is not a unit or Γ is the identity).
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &DecStatement<'_>,
        w: &DecWitness<'_>,
    ) -> Result<Self, ProofError> {
        check_statement(st)?;
        let sk = w.prover_key;
        ensure(
            sk.public() == st.n,
            PROOF,
            FailureKind::Witness,
            "prover key is N",
        )?;
        ensure(
            in_signed_bits(w.x, u64::from(ELL)),
            PROOF,
            FailureKind::Witness,
            "x ∈ ±2^ℓ",
        )?;
        ensure(
            in_signed_bits(w.y, u64::from(DEC_PLAINTEXT_BITS)),
            PROOF,
            FailureKind::Witness,
            "y ∈ ±2^{DEC_PLAINTEXT_BITS}",
        )?;
        ensure(
            ProjectivePoint::GENERATOR * scalar_from_int(w.x) == *st.cap_x,
            PROOF,
            FailureKind::Witness,
            "X = x·G",
        )?;
        ensure(
            *st.gamma * scalar_from_int(w.y) == *st.cap_s,
            PROOF,
            FailureKind::Witness,
            "S = y·Γ",
        )?;
        let enc_y = sk
            .encrypt_with_nonce(w.y, w.rho)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "ρ unit mod N"))?;
        let k_x_d = sk.pow_mod_n2(st.cap_k, w.x) * st.cap_d % st.n.n_squared();
        ensure(
            enc_y.as_uint() == &k_x_d,
            PROOF,
            FailureKind::Witness,
            "enc_N(y; ρ) = K^x·D",
        )?;
        Self::prove_unchecked(rng, ctx, st, w, STAT_REPETITIONS)
    }

    /// The prover's computation with `m` repetitions and without the witness checks (tests
    /// use it as a cheating prover).
    fn prove_unchecked(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &DecStatement<'_>,
        w: &DecWitness<'_>,
        m: usize,
    ) -> Result<Self, ProofError> {
        let sk = w.prover_key;
        let (n, nn) = (st.n.n(), st.n.n_squared());
        let mut masks = Vec::with_capacity(m);
        let mut repetitions = Vec::with_capacity(m);
        for _ in 0..m {
            let mask = Masks {
                alpha: SecretInt::new(random_signed_bits(rng, u64::from(ELL + EPSILON))),
                beta: SecretInt::new(random_signed_bits(
                    rng,
                    u64::from(DEC_PLAINTEXT_BITS + EPSILON),
                )),
                r: SecretUint::new(random_unit(rng, n)),
            };
            // A_j = K^{−α_j}·enc_N(β_j; r_j), both with the CRT (K is a unit: checked above).
            let k_pow = sk.pow_mod_n2(st.cap_k, &-mask.alpha.expose());
            let enc_beta = sk
                .encrypt_with_nonce(mask.beta.expose(), mask.r.expose())
                .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "r_j unit mod N"))?;
            repetitions.push(DecRepetition {
                cap_a: k_pow * enc_beta.as_uint() % nn,
                cap_b: *st.gamma * scalar_from_int(mask.beta.expose()),
                cap_c: ProjectivePoint::GENERATOR * scalar_from_int(mask.alpha.expose()),
                z: BigInt::zero(),
                w: BigInt::zero(),
                nu: BigUint::zero(),
            });
            masks.push(mask);
        }
        let bits = challenge(ctx, st, &repetitions);
        for ((rep, mask), e) in repetitions.iter_mut().zip(&masks).zip(bits) {
            if e {
                rep.z = mask.alpha.expose() + w.x;
                rep.w = mask.beta.expose() + w.y;
                rep.nu = mask.r.expose() * w.rho % n;
            } else {
                rep.z = mask.alpha.expose().clone();
                rep.w = mask.beta.expose().clone();
                rep.nu = mask.r.expose().clone();
            }
        }
        Ok(Self { repetitions })
    }

    /// Verifies the proof from public data only: statement, count, ranges and units first,
    /// then the challenge bits and the equations of every repetition (see the module
    /// documentation).
    pub fn verify(&self, ctx: &ProofContext<'_>, st: &DecStatement<'_>) -> Result<(), ProofError> {
        check_statement(st)?;
        self.check_count_ranges_and_units(st)?;
        let bits = challenge(ctx, st, &self.repetitions);
        self.check_equations(st, &bits)
    }

    /// The cheap checks (AUX-04, PARAM-03).
    fn check_count_ranges_and_units(&self, st: &DecStatement<'_>) -> Result<(), ProofError> {
        ensure(
            self.repetitions.len() == STAT_REPETITIONS,
            PROOF,
            FailureKind::Range,
            CHECK_COUNT,
        )?;
        for rep in &self.repetitions {
            ensure(
                in_signed_bits(&rep.z, u64::from(ELL + EPSILON)),
                PROOF,
                FailureKind::Range,
                CHECK_Z_RANGE,
            )?;
            ensure(
                in_signed_bits(&rep.w, u64::from(DEC_PLAINTEXT_BITS + EPSILON)),
                PROOF,
                FailureKind::Range,
                CHECK_W_RANGE,
            )?;
        }
        for rep in &self.repetitions {
            ensure(
                is_ciphertext(st.n, &rep.cap_a),
                PROOF,
                FailureKind::Unit,
                CHECK_A_UNIT,
            )?;
            ensure(
                is_unit_mod(&rep.nu, st.n.n()),
                PROOF,
                FailureKind::Unit,
                CHECK_NU_UNIT,
            )?;
        }
        Ok(())
    }

    /// The equations of every repetition for challenge bits `bits`: the group equations of all
    /// repetitions first, then the Paillier equations.
    fn check_equations(&self, st: &DecStatement<'_>, bits: &[bool]) -> Result<(), ProofError> {
        ensure(
            self.repetitions.len() == bits.len(),
            PROOF,
            FailureKind::Range,
            CHECK_COUNT,
        )?;
        for (rep, &e) in self.repetitions.iter().zip(bits) {
            let rhs = if e { rep.cap_c + st.cap_x } else { rep.cap_c };
            ensure(
                ProjectivePoint::GENERATOR * scalar_from_int(&rep.z) == rhs,
                PROOF,
                FailureKind::Equation,
                CHECK_EQ_X,
            )?;
            let rhs = if e { rep.cap_b + st.cap_s } else { rep.cap_b };
            ensure(
                *st.gamma * scalar_from_int(&rep.w) == rhs,
                PROOF,
                FailureKind::Equation,
                CHECK_EQ_S,
            )?;
        }
        let nn = st.n.n_squared();
        let k_inv = mod_inverse(st.cap_k, nn).ok_or(ProofError::new(
            PROOF,
            FailureKind::Statement,
            CHECK_K,
        ))?;
        for (rep, &e) in self.repetitions.iter().zip(bits) {
            let lhs =
                st.n.encrypt_with_nonce(&rep.w, &rep.nu)
                    .map_err(|_| ProofError::new(PROOF, FailureKind::Unit, CHECK_NU_UNIT))?;
            let k_z = match rep.z.sign() {
                Sign::Minus => crate::arith::pow_mod(&k_inv, rep.z.magnitude(), nn),
                _ => crate::arith::pow_mod(st.cap_k, rep.z.magnitude(), nn),
            };
            let mut rhs = &rep.cap_a * k_z % nn;
            if e {
                rhs = rhs * st.cap_d % nn;
            }
            ensure(
                lhs.as_uint() == &rhs,
                PROOF,
                FailureKind::Equation,
                CHECK_EQ_N,
            )?;
        }
        Ok(())
    }

    /// Canonical encoding: tag, m (u16), then for each repetition A_j, B_j, C_j, z_j, w_j, ν_j.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::DEC);
        // An in-memory proof cannot have 2^16 repetitions and still verify; saturate rather than wrap.
        w.u16(u16::try_from(self.repetitions.len()).unwrap_or(u16::MAX));
        for rep in &self.repetitions {
            w.uint(&rep.cap_a)
                .point(&rep.cap_b)
                .point(&rep.cap_c)
                .int(&rep.z)
                .int(&rep.w)
                .uint(&rep.nu);
        }
        w.finish()
    }

    /// Decodes the canonical encoding, rejecting anything else; the count must be exactly
    /// m = [`STAT_REPETITIONS`] (PARAM-03) and every length is capped before allocation.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::DEC)?;
        r.count("m", STAT_REPETITIONS)?;
        let mut repetitions = Vec::with_capacity(STAT_REPETITIONS);
        for _ in 0..STAT_REPETITIONS {
            repetitions.push(DecRepetition {
                cap_a: r.uint("A_j", MAX_MODULUS_SQ_BYTES)?,
                cap_b: r.point("B_j")?,
                cap_c: r.point("C_j")?,
                z: r.int("z_j", Z_CAP_BYTES)?,
                w: r.int("w_j", W_CAP_BYTES)?,
                nu: r.uint("ν_j", MAX_MODULUS_BYTES)?,
            });
        }
        r.finish()?;
        Ok(Self { repetitions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::params::ELL_PRIME;
    use crate::zk::testing::{ctx, other_contexts};
    use k256::elliptic_curve::Field;
    use k256::Scalar;
    use num_traits::One;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::OnceLock;

    /// A named change to a proof value.
    type Change<'a> = (&'static str, Box<dyn Fn(&mut DecRepetition) + 'a>);

    /// The identification scenario of Fig. 9: P_i owns N and K = enc_N(k); three peers j sent
    /// D_j = (γ_j ⊙ K) ⊕ enc_N(β_j) with nonces P_i never learns. P_i proves that the aggregate
    /// K^{γ_i}·Π D_j decrypts to y with S = y·Γ; it gets ρ with `recover_nonce`. Built once
    /// and shared by the tests (a proof is 128 repetitions of 3072-bit work).
    struct Fixture {
        sk: PaillierSecretKey,
        cap_k: BigUint,
        cap_d: BigUint,
        cap_x: ProjectivePoint,
        cap_s: ProjectivePoint,
        gamma: ProjectivePoint,
        x: BigInt,
        y: BigInt,
        rho: BigUint,
        proof: DecProof,
    }

    impl Fixture {
        fn st(&self) -> DecStatement<'_> {
            DecStatement {
                n: self.sk.public(),
                cap_k: &self.cap_k,
                cap_d: &self.cap_d,
                cap_x: &self.cap_x,
                cap_s: &self.cap_s,
                gamma: &self.gamma,
            }
        }

        fn witness(&self) -> DecWitness<'_> {
            DecWitness {
                x: &self.x,
                y: &self.y,
                rho: &self.rho,
                prover_key: &self.sk,
            }
        }
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let mut rng = ChaCha20Rng::seed_from_u64(28);
            let [p, q] = fixtures::safe_prime_pair(8);
            let sk = PaillierSecretKey::from_primes(p, q).unwrap();
            let pk = sk.public().clone();
            let k = random_signed_bits(&mut rng, u64::from(ELL));
            let (cap_k, _) = sk.encrypt(&mut rng, &k);
            let mut expected = BigInt::zero();
            let mut cap_d = pk.ciphertext(BigUint::one()).unwrap();
            for _ in 0..3 {
                let gamma_j = random_signed_bits(&mut rng, u64::from(ELL));
                let beta_j = random_signed_bits(&mut rng, u64::from(ELL_PRIME));
                let (enc_beta, _) = pk.encrypt(&mut rng, &beta_j); // the peer's nonce stays with the peer
                cap_d = pk.add(&cap_d, &pk.add(&pk.mul_plain(&cap_k, &gamma_j), &enc_beta));
                expected += &k * &gamma_j + &beta_j;
            }
            let x = random_signed_bits(&mut rng, u64::from(ELL));
            expected += &k * &x;
            let aggregate = pk.add(&pk.mul_plain(&cap_k, &x), &cap_d);
            let y = sk.decrypt(&aggregate);
            assert_eq!(y, expected);
            let rho = sk.recover_nonce(&aggregate).expose().clone();
            assert_eq!(
                sk.encrypt_with_nonce(&y, &rho).unwrap(),
                aggregate,
                "recovered ρ opens the aggregate"
            );
            let gamma = ProjectivePoint::GENERATOR * Scalar::random(&mut rng);
            let mut f = Fixture {
                cap_k: cap_k.as_uint().clone(),
                cap_d: cap_d.as_uint().clone(),
                cap_x: ProjectivePoint::GENERATOR * scalar_from_int(&x),
                cap_s: gamma * scalar_from_int(&y),
                gamma,
                x,
                y,
                rho,
                proof: DecProof {
                    repetitions: Vec::new(),
                },
                sk,
            };
            f.proof = DecProof::prove(&mut rng, &ctx(), &f.st(), &f.witness()).unwrap();
            f
        })
    }

    /// PRE-04: the proof that the aggregate decrypts to y with S = y·Γ is evidence a third
    /// party verifies from public data only (N, K, D, X, S, Γ and the proof's bytes, no key);
    /// it also round-trips through the encoding.
    #[test]
    fn pre_04_aggregate_decryption_proof_verifies_from_public_data_and_round_trips() {
        let f = fixture();
        let bytes = f.proof.to_bytes();
        let decoded = DecProof::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, f.proof);
        // the judge rebuilds everything from public values
        let n = PaillierPublicKey::from_modulus(f.sk.public().n().clone()).unwrap();
        let (cap_k, cap_d) = (f.cap_k.clone(), f.cap_d.clone());
        let (cap_x, cap_s, gamma) = (f.cap_x, f.cap_s, f.gamma);
        let st = DecStatement {
            n: &n,
            cap_k: &cap_k,
            cap_d: &cap_d,
            cap_x: &cap_x,
            cap_s: &cap_s,
            gamma: &gamma,
        };
        decoded.verify(&ctx(), &st).unwrap();
    }

    /// A cheating prover for `st` that reuses the honest proof's masks (α_j, β_j, r_j): its
    /// first message is the honest one, and its response to the bits e'_j of `st` is the honest
    /// response with e_j·(x, y, ρ) taken out and e'_j·(x, y_used, ρ) put in — what
    /// `prove_unchecked` with those masks and plaintext `y_used` outputs, without 128 more
    /// encryptions.
    fn retarget(f: &Fixture, st: &DecStatement<'_>, y_used: &BigInt) -> DecProof {
        let n = st.n.n();
        let rho_inv = mod_inverse(&f.rho, n).unwrap();
        let honest_bits = challenge(&ctx(), &f.st(), &f.proof.repetitions);
        let mut forged = f.proof.clone();
        let bits = challenge(&ctx(), st, &forged.repetitions);
        for ((rep, e), e_new) in forged.repetitions.iter_mut().zip(honest_bits).zip(bits) {
            if e {
                rep.z -= &f.x;
                rep.w -= &f.y;
                rep.nu = &rep.nu * &rho_inv % n;
            }
            if e_new {
                rep.z += &f.x;
                rep.w += y_used;
                rep.nu = &rep.nu * &f.rho % n;
            }
        }
        forged
    }

    /// PRE-04: a wrong S (a claimed δ that is not the decryption) is rejected. The honest
    /// prover refuses; the honest proof does not verify for it; a cheating prover that puts the
    /// false S in its transcript but answers with the true y is caught by w_j·Γ = B_j + e_j·S,
    /// and one that answers consistently with the claimed y + 1 passes that equation and is
    /// caught by the decryption equation.
    #[test]
    fn pre_04_wrong_s_is_rejected() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(281);
        let claimed = &f.y + 1;
        let wrong_s = f.gamma * scalar_from_int(&claimed);
        let st = DecStatement {
            cap_s: &wrong_s,
            ..f.st()
        };
        assert_eq!(
            DecProof::prove(&mut rng, &ctx(), &st, &f.witness())
                .unwrap_err()
                .check,
            "S = y·Γ"
        );
        assert!(f.proof.verify(&ctx(), &st).is_err());
        // sanity: re-targeting to the true statement reproduces the honest proof
        assert_eq!(retarget(f, &f.st(), &f.y), f.proof);

        let forged = retarget(f, &st, &f.y);
        forged.check_count_ranges_and_units(&st).unwrap();
        let err = forged.verify(&ctx(), &st).unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Equation, CHECK_EQ_S));

        let forged = retarget(f, &st, &claimed);
        forged.check_count_ranges_and_units(&st).unwrap();
        let err = forged.verify(&ctx(), &st).unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Equation, CHECK_EQ_N));
    }

    /// Every field of a repetition, changed to another valid-looking value, makes the proof
    /// fail: the fields of the first repetition, and the first-message fields and z of the last
    /// one (those fail fast; a changed first message changes the challenge bits).
    #[test]
    fn tampered_fields_fail() {
        let f = fixture();
        let st = f.st();
        let nn = st.n.n_squared();
        let two = BigUint::from(2u32);
        let tampers: [Change<'_>; 6] = [
            ("A_j", Box::new(|r| r.cap_a = &r.cap_a * &two % nn)),
            ("B_j", Box::new(|r| r.cap_b += ProjectivePoint::GENERATOR)),
            ("C_j", Box::new(|r| r.cap_c += ProjectivePoint::GENERATOR)),
            ("z_j", Box::new(|r| r.z += 1)),
            ("w_j", Box::new(|r| r.w += 1)),
            ("ν_j", Box::new(|r| r.nu = &r.nu * &two % st.n.n())),
        ];
        let last = STAT_REPETITIONS - 1;
        for (name, tamper) in &tampers {
            for j in [0, last] {
                if j == last && *name == "ν_j" {
                    continue; // would cost a full verification; covered at j = 0
                }
                let mut bad = f.proof.clone();
                tamper(&mut bad.repetitions[j]);
                assert_ne!(bad, f.proof, "{name}");
                let err = bad.verify(&ctx(), &st).unwrap_err();
                assert_eq!(err.kind, FailureKind::Equation, "{name}, j = {j}: {err}");
            }
        }
    }

    /// ENC-02: the challenge bits cover the session, the prover, ρ, every public input (N, K,
    /// D, X, S, Γ) and every first-message value (A_j, B_j, C_j of every repetition).
    #[test]
    fn enc_02_challenge_covers_context_statement_and_first_messages() {
        let f = fixture();
        let st = f.st();
        let reps = &f.proof.repetitions;
        let e0 = challenge(&ctx(), &st, reps);
        assert_eq!(e0.len(), STAT_REPETITIONS);
        for other in other_contexts() {
            assert_ne!(challenge(&other, &st, reps), e0, "{other:?}");
        }
        let [p, q] = fixtures::safe_prime_pair(9);
        let other_n = PaillierPublicKey::from_modulus(p * q).unwrap();
        let (k1, d1) = (st.cap_k + 1u32, st.cap_d + 1u32);
        let g = ProjectivePoint::GENERATOR;
        let (x1, s1, gamma1) = (*st.cap_x + g, *st.cap_s + g, *st.gamma + g);
        let variants = [
            ("N", DecStatement { n: &other_n, ..st }),
            ("K", DecStatement { cap_k: &k1, ..st }),
            ("D", DecStatement { cap_d: &d1, ..st }),
            ("X", DecStatement { cap_x: &x1, ..st }),
            ("S", DecStatement { cap_s: &s1, ..st }),
            (
                "Γ",
                DecStatement {
                    gamma: &gamma1,
                    ..st
                },
            ),
        ];
        for (name, variant) in &variants {
            assert_ne!(challenge(&ctx(), variant, reps), e0, "{name}");
        }
        type Edit = fn(&mut DecRepetition);
        let firsts: [(&str, Edit); 3] = [
            ("A_j", |r| r.cap_a += 1u32),
            ("B_j", |r| r.cap_b += ProjectivePoint::GENERATOR),
            ("C_j", |r| r.cap_c += ProjectivePoint::GENERATOR),
        ];
        for (name, change) in &firsts {
            for j in [0, 57, STAT_REPETITIONS - 1] {
                let mut changed = reps.clone();
                change(&mut changed[j]);
                assert_ne!(challenge(&ctx(), &st, &changed), e0, "{name}, j = {j}");
            }
        }
    }

    /// A proof does not verify for another statement, session, prover or ρ.
    #[test]
    fn proof_for_other_statement_or_context_fails() {
        let f = fixture();
        let st = f.st();
        for other in other_contexts() {
            assert_eq!(
                f.proof.verify(&other, &st).unwrap_err().kind,
                FailureKind::Equation
            );
        }
        let nn = st.n.n_squared();
        let two = BigUint::from(2u32);
        let (k1, d1) = (st.cap_k * &two % nn, st.cap_d * &two % nn);
        let g = ProjectivePoint::GENERATOR;
        let (x1, gamma1) = (*st.cap_x + g, *st.gamma + g);
        let [p, q] = fixtures::safe_prime_pair(9);
        let other_n = PaillierPublicKey::from_modulus(p * q).unwrap();
        let variants = [
            ("N", DecStatement { n: &other_n, ..st }),
            ("K", DecStatement { cap_k: &k1, ..st }),
            ("D", DecStatement { cap_d: &d1, ..st }),
            ("X", DecStatement { cap_x: &x1, ..st }),
            (
                "Γ",
                DecStatement {
                    gamma: &gamma1,
                    ..st
                },
            ),
        ];
        for (name, variant) in &variants {
            assert!(f.proof.verify(&ctx(), variant).is_err(), "{name}");
        }
        let identity = ProjectivePoint::IDENTITY;
        let err = f
            .proof
            .verify(
                &ctx(),
                &DecStatement {
                    gamma: &identity,
                    ..st
                },
            )
            .unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Statement, CHECK_GAMMA));
    }

    #[test]
    fn wrong_witness_is_refused_by_prover() {
        let f = fixture();
        let st = f.st();
        let mut rng = ChaCha20Rng::seed_from_u64(282);
        let x1 = &f.x + 1;
        let y1 = &f.y + 1;
        let big_x = BigInt::one() << (ELL + 1);
        let big_y = BigInt::one() << (DEC_PLAINTEXT_BITS + 1);
        let rho1 = &f.rho + 1u32;
        let [p, q] = fixtures::safe_prime_pair(9);
        let other_sk = PaillierSecretKey::from_primes(p, q).unwrap();
        let cases = [
            (
                "x ≠ log X",
                DecWitness {
                    x: &x1,
                    ..f.witness()
                },
            ),
            (
                "y ≠ log_Γ S",
                DecWitness {
                    y: &y1,
                    ..f.witness()
                },
            ),
            (
                "x out of range",
                DecWitness {
                    x: &big_x,
                    ..f.witness()
                },
            ),
            (
                "y out of range",
                DecWitness {
                    y: &big_y,
                    ..f.witness()
                },
            ),
            (
                "ρ",
                DecWitness {
                    rho: &rho1,
                    ..f.witness()
                },
            ),
            (
                "another key",
                DecWitness {
                    prover_key: &other_sk,
                    ..f.witness()
                },
            ),
        ];
        for (name, w) in &cases {
            let err = DecProof::prove(&mut rng, &ctx(), &st, w).unwrap_err();
            assert_eq!(err.kind, FailureKind::Witness, "{name}: {err}");
        }
        // the right y and S, but D for another plaintext
        let d_other = st.n.add(
            &st.n.ciphertext(st.cap_d.clone()).unwrap(),
            &st.n.encrypt(&mut rng, &BigInt::one()).0,
        );
        let st_other = DecStatement {
            cap_d: d_other.as_uint(),
            ..st
        };
        assert_eq!(
            DecProof::prove(&mut rng, &ctx(), &st_other, &f.witness())
                .unwrap_err()
                .check,
            "enc_N(y; ρ) = K^x·D"
        );
        assert_eq!(
            alloc::format!("{:?}", f.witness()),
            "DecWitness(<redacted>)"
        );
    }

    /// Responses just outside their bounds, in any repetition, fail with `Range`.
    #[test]
    fn out_of_range_responses_fail_with_range() {
        let f = fixture();
        let st = f.st();
        let z_max = BigInt::one() << (ELL + EPSILON);
        let w_max = BigInt::one() << (DEC_PLAINTEXT_BITS + EPSILON);
        let cases = [
            (CHECK_Z_RANGE, 0, &z_max + 1, true),
            (CHECK_Z_RANGE, 77, -&z_max - 1, true),
            (CHECK_W_RANGE, 5, &w_max + 1, false),
            (CHECK_W_RANGE, STAT_REPETITIONS - 1, -&w_max - 1, false),
        ];
        for (check, j, value, is_z) in cases {
            let mut bad = f.proof.clone();
            if is_z {
                bad.repetitions[j].z = value;
            } else {
                bad.repetitions[j].w = value;
            }
            let err = bad.verify(&ctx(), &st).unwrap_err();
            assert_eq!(
                (err.kind, err.check),
                (FailureKind::Range, check),
                "j = {j}"
            );
            assert_eq!(
                DecProof::from_bytes(&bad.to_bytes()).unwrap(),
                bad,
                "still decodable"
            );
        }
        let mut edge = f.proof.clone();
        edge.repetitions[0].z = z_max;
        edge.repetitions[0].w = -w_max;
        assert_eq!(
            edge.verify(&ctx(), &st).unwrap_err().kind,
            FailureKind::Equation
        );
    }

    /// PRE-05: K or D equal to 0, N² or sharing a factor with N are refused as `Statement`;
    /// A_j, ν_j equal to 0, their modulus or sharing a factor with it are refused as `Unit` —
    /// all without panicking, by prover and verifier.
    #[test]
    fn pre_05_non_units_are_rejected_without_panic() {
        let f = fixture();
        let st = f.st();
        let mut rng = ChaCha20Rng::seed_from_u64(283);
        let (n, nn) = (st.n.n().clone(), st.n.n_squared().clone());
        let p = f.sk.p().clone();
        let bad_mod_nn = [
            BigUint::zero(),
            nn.clone(),
            &nn + 1u32,
            p.clone(),
            &p * 12345u32,
        ];
        for bad in &bad_mod_nn {
            for (name, check, variant) in [
                ("K", CHECK_K, DecStatement { cap_k: bad, ..st }),
                ("D", CHECK_D, DecStatement { cap_d: bad, ..st }),
            ] {
                let err = f.proof.verify(&ctx(), &variant).unwrap_err();
                assert_eq!(
                    (err.kind, err.check),
                    (FailureKind::Statement, check),
                    "{name}"
                );
                let err = DecProof::prove(&mut rng, &ctx(), &variant, &f.witness()).unwrap_err();
                assert_eq!(err.kind, FailureKind::Statement, "{name} (prover)");
            }
        }
        type Field = fn(&mut DecRepetition) -> &mut BigUint;
        let fields: [(&str, Field, Vec<BigUint>); 2] = [
            (CHECK_A_UNIT, |r| &mut r.cap_a, bad_mod_nn.to_vec()),
            (
                CHECK_NU_UNIT,
                |r| &mut r.nu,
                alloc::vec![BigUint::zero(), n.clone(), p.clone(), &n + 1u32],
            ),
        ];
        for (check, field, bads) in &fields {
            for bad in bads {
                for j in [0, STAT_REPETITIONS - 1] {
                    let mut proof = f.proof.clone();
                    *field(&mut proof.repetitions[j]) = bad.clone();
                    let err = proof.verify(&ctx(), &st).unwrap_err();
                    assert_eq!(
                        (err.kind, err.check),
                        (FailureKind::Unit, *check),
                        "j = {j}"
                    );
                }
            }
        }
    }

    /// PARAM-03: the decoder refuses any count but m = 128 (127 and 129 repetitions, whether
    /// the items are there or only the count says so).
    #[test]
    fn param_03_decoder_refuses_127_and_129_repetitions() {
        let f = fixture();
        let mut fewer = f.proof.clone();
        fewer.repetitions.pop();
        let mut more = f.proof.clone();
        more.repetitions.push(f.proof.repetitions[0].clone());
        for (proof, got) in [(&fewer, 127), (&more, 129)] {
            assert_eq!(
                DecProof::from_bytes(&proof.to_bytes()),
                Err(DecodeError::WrongCount {
                    field: "m",
                    got,
                    expected: STAT_REPETITIONS
                })
            );
        }
        crate::zk::testing::assert_wire_count_other_than_m_rejected(
            &f.proof.to_bytes(),
            DecProof::from_bytes,
        );
    }

    /// PARAM-03: verify refuses an in-memory proof with any other number of repetitions. The
    /// one-repetition case is a real forgery of a false claim (S for y + 1): the cheating
    /// prover retries until its single challenge bit is 0, and then every equation holds, so
    /// only the count check stops it.
    #[test]
    fn param_03_verify_refuses_other_repetition_counts() {
        let f = fixture();
        let st = f.st();
        for m in [0, 1, 127, 129] {
            let mut p = f.proof.clone();
            p.repetitions.resize(m, f.proof.repetitions[0].clone());
            let err = p.verify(&ctx(), &st).unwrap_err();
            assert_eq!(
                (err.kind, err.check),
                (FailureKind::Range, CHECK_COUNT),
                "m = {m}"
            );
        }
        let false_s = f.cap_s + f.gamma;
        let false_st = DecStatement {
            cap_s: &false_s,
            ..st
        };
        let mut rng = ChaCha20Rng::seed_from_u64(284);
        let (forged, bits) = loop {
            let p =
                DecProof::prove_unchecked(&mut rng, &ctx(), &false_st, &f.witness(), 1).unwrap();
            let bits = challenge(&ctx(), &false_st, &p.repetitions);
            if !bits[0] {
                break (p, bits);
            }
        };
        forged.check_equations(&false_st, &bits[..1]).unwrap();
        let err = forged.verify(&ctx(), &false_st).unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Range, CHECK_COUNT));
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let f = fixture();
        let bytes = f.proof.to_bytes();
        let rep_len = {
            let mut one = f.proof.clone();
            one.repetitions.truncate(1);
            one.to_bytes().len() - 3
        };
        crate::zk::testing::assert_repetition_framing_rejected(
            &bytes,
            rep_len,
            tags::AFF_G_STAR,
            DecProof::from_bytes,
        );
        let mut zero = f.proof.clone();
        zero.repetitions[0].z = BigInt::zero();
        let mut neg_zero = zero.to_bytes();
        let r0 = &zero.repetitions[0];
        let z_at = Writer::new(tags::DEC)
            .u16(128)
            .uint(&r0.cap_a)
            .point(&r0.cap_b)
            .point(&r0.cap_c)
            .finish()
            .len();
        assert_eq!(neg_zero[z_at], 0);
        neg_zero[z_at] = 1;
        assert!(matches!(
            DecProof::from_bytes(&neg_zero),
            Err(DecodeError::NonCanonical { .. })
        ));
        let mut huge = f.proof.clone();
        huge.repetitions[3].w = BigInt::one() << (8 * W_CAP_BYTES);
        assert!(matches!(
            DecProof::from_bytes(&huge.to_bytes()),
            Err(DecodeError::TooLong { .. })
        ));
        // B_1 not on the curve
        let mut bad_point = bytes.clone();
        let a_len = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]);
        let b_at = 7 + a_len as usize;
        bad_point[b_at] = 0x02;
        bad_point[b_at + 1..b_at + 33].fill(0xFF);
        assert!(matches!(
            DecProof::from_bytes(&bad_point),
            Err(DecodeError::BadPoint { .. })
        ));
    }
}
