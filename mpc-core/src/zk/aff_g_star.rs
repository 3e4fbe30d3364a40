//! Πaff-g* — setup-less Paillier affine operation with group commitment (CGGMP24 Fig. 27).
//!
//! The variant of Πaff-g (Fig. 25) without ring-Pedersen parameters, with binary challenges
//! repeated m = [`STAT_REPETITIONS`] times (soundness error 2^-m). It is what a third party
//! checks when it judges the blame evidence of the identification rounds (Fig. 9), so the
//! verifier makes every check of the figure and nothing depends on the verifier's own keys.
//!
//! Setup: N0 is the *verifier's* Paillier modulus, N1 the *prover's*.
//!
//! Statement: C, D ∈ Z*_{N0²}, Y ∈ Z*_{N1²}, X ∈ G. Witness: x ∈ ±2^ℓ, y ∈ ±2^ℓ', ρ ∈ Z*_{N0},
//! μ ∈ Z*_{N1} with
//! D = C^x·enc_{N0}(y; ρ) mod N0², Y = enc_{N1}(y; μ) mod N1², X = x·G,
//! where enc_N(m; ρ) = (1 + N)^m·ρ^N mod N².
//!
//! 1. For j = 1..m the prover samples α_j ← ±2^{ℓ+ε}, β_j ← ±2^{ℓ'+ε}, r_j ← Z*_{N0},
//!    s_j ← Z*_{N1} and sends A_j = C^{α_j}·enc_{N0}(β_j; r_j) mod N0², R_j = α_j·G,
//!    B_j = enc_{N1}(β_j; s_j) mod N1².
//! 2. Challenge bits e_1..e_m = H(context, N0, N1, C, D, Y, X, m, (A_j, R_j, B_j)_j)
//!    (Fiat–Shamir, every field tagged).
//! 3. Prover sends z_j = α_j + e_j·x, z'_j = β_j + e_j·y, w_j = r_j·ρ^{e_j} mod N0,
//!    λ_j = s_j·μ^{e_j} mod N1.
//!
//! Verifier, cheap checks first (AUX-04):
//! - statement: C, D units mod N0², Y unit mod N1² (kind `Statement`);
//! - exactly m repetitions (PARAM-03: the count is the constant m, never the prover's);
//! - for every j: z_j ∈ ±2^{ℓ+ε}, z'_j ∈ ±2^{ℓ'+ε}; A_j unit mod N0², B_j unit mod N1²,
//!   w_j unit mod N0, λ_j unit mod N1;
//!
//! then the challenge bits and, for every j:
//! - z_j·G = R_j + e_j·X (all j first: the cheap equations);
//! - C^{z_j}·enc_{N0}(z'_j; w_j) = A_j·D^{e_j} mod N0²;
//! - enc_{N1}(z'_j; λ_j) = B_j·Y^{e_j} mod N1².

use alloc::vec::Vec;
use core::fmt;

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
    ELL, ELL_PRIME, EPSILON, MAX_MODULUS_BYTES, MAX_MODULUS_SQ_BYTES, STAT_REPETITIONS,
};

const PROOF: &str = "Πaff-g* (Fig. 27)";
const LABEL: &[u8] = b"cggmp24/pi-aff-g-star/fig27";

// The checks, as reported in `ProofError::check`.
const CHECK_C: &str = "C unit mod N0²";
const CHECK_D: &str = "D unit mod N0²";
const CHECK_Y: &str = "Y unit mod N1²";
const CHECK_COUNT: &str = "m = STAT_REPETITIONS repetitions";
const CHECK_Z_RANGE: &str = "z_j ∈ ±2^{ℓ+ε}";
const CHECK_Z_PRIME_RANGE: &str = "z'_j ∈ ±2^{ℓ'+ε}";
const CHECK_A_UNIT: &str = "A_j unit mod N0²";
const CHECK_B_UNIT: &str = "B_j unit mod N1²";
const CHECK_W_UNIT: &str = "w_j unit mod N0";
const CHECK_LAMBDA_UNIT: &str = "λ_j unit mod N1";
const CHECK_EQ_GROUP: &str = "z_j·G = R_j + e_j·X";
const CHECK_EQ_N0: &str = "C^{z_j}·enc_{N0}(z'_j; w_j) = A_j·D^{e_j} mod N0²";
const CHECK_EQ_N1: &str = "enc_{N1}(z'_j; λ_j) = B_j·Y^{e_j} mod N1²";

/// Bytes of the magnitude of a value in ±2^bits.
const fn signed_cap_bytes(bits: u32) -> usize {
    (bits as usize + 1).div_ceil(8)
}
/// Encoding cap of z_j ∈ ±2^{ℓ+ε}.
const Z_CAP_BYTES: usize = signed_cap_bytes(ELL + EPSILON);
/// Encoding cap of z'_j ∈ ±2^{ℓ'+ε}.
const Z_PRIME_CAP_BYTES: usize = signed_cap_bytes(ELL_PRIME + EPSILON);

/// Public input of Πaff-g*.
#[derive(Clone, Copy, Debug)]
pub struct AffGStarStatement<'a> {
    /// N0: the verifier's Paillier key.
    pub n0: &'a PaillierPublicKey,
    /// N1: the prover's Paillier key.
    pub n1: &'a PaillierPublicKey,
    /// C ∈ Z*_{N0²}.
    pub cap_c: &'a BigUint,
    /// D = C^x·enc_{N0}(y; ρ) mod N0².
    pub cap_d: &'a BigUint,
    /// Y = enc_{N1}(y; μ) mod N1².
    pub cap_y: &'a BigUint,
    /// X = x·G.
    pub cap_x: &'a ProjectivePoint,
}

/// Secret input of Πaff-g*.
pub struct AffGStarWitness<'a> {
    /// x ∈ ±2^ℓ.
    pub x: &'a BigInt,
    /// y ∈ ±2^ℓ'.
    pub y: &'a BigInt,
    /// ρ ∈ Z*_{N0}, the randomness of enc_{N0}(y; ρ) in D.
    pub rho: &'a BigUint,
    /// μ ∈ Z*_{N1}, the randomness of Y.
    pub mu: &'a BigUint,
    /// The prover's Paillier secret key for N1 (CRT exponentiation for B_j).
    pub prover_key: &'a PaillierSecretKey,
}

impl fmt::Debug for AffGStarWitness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AffGStarWitness(<redacted>)")
    }
}

/// One of the m repetitions: first message (A_j, R_j, B_j) and response (z_j, z'_j, w_j, λ_j).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffGStarRepetition {
    /// A_j = C^{α_j}·enc_{N0}(β_j; r_j) mod N0².
    pub cap_a: BigUint,
    /// R_j = α_j·G.
    pub cap_r: ProjectivePoint,
    /// B_j = enc_{N1}(β_j; s_j) mod N1².
    pub cap_b: BigUint,
    /// z_j = α_j + e_j·x ∈ ±2^{ℓ+ε}.
    pub z: BigInt,
    /// z'_j = β_j + e_j·y ∈ ±2^{ℓ'+ε}.
    pub z_prime: BigInt,
    /// w_j = r_j·ρ^{e_j} mod N0.
    pub w: BigUint,
    /// λ_j = s_j·μ^{e_j} mod N1.
    pub lambda: BigUint,
}

/// A Πaff-g* proof: exactly m = [`STAT_REPETITIONS`] repetitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffGStarProof {
    /// The repetitions j = 1..m.
    pub repetitions: Vec<AffGStarRepetition>,
}

/// The m challenge bits over the context, every public input and the first messages of
/// `reps` (their response fields are not read).
fn challenge(
    ctx: &ProofContext<'_>,
    st: &AffGStarStatement<'_>,
    reps: &[AffGStarRepetition],
) -> Vec<bool> {
    let mut t = ctx.transcript(LABEL);
    t.append_uint(b"N0", st.n0.n());
    t.append_uint(b"N1", st.n1.n());
    t.append_uint(b"C", st.cap_c);
    t.append_uint(b"D", st.cap_d);
    t.append_uint(b"Y", st.cap_y);
    t.append_point(b"X", st.cap_x);
    t.append_u64(b"m", reps.len() as u64);
    for rep in reps {
        t.append_uint(b"A_j", &rep.cap_a);
        t.append_point(b"R_j", &rep.cap_r);
        t.append_uint(b"B_j", &rep.cap_b);
    }
    t.challenge_bits(b"e", STAT_REPETITIONS)
}

/// True when c is a unit of Z*_{N²} for the key `pk` (0 < c < N², gcd(c, N) = 1).
fn is_ciphertext(pk: &PaillierPublicKey, c: &BigUint) -> bool {
    pk.ciphertext(c.clone()).is_ok()
}

/// base^exp mod m for a signed exponent, with base^{-1} given (the one exponentiation site).
fn pow_signed(base: &BigUint, base_inv: &BigUint, exp: &BigInt, m: &BigUint) -> BigUint {
    match exp.sign() {
        Sign::Minus => crate::arith::pow_mod(base_inv, exp.magnitude(), m),
        _ => crate::arith::pow_mod(base, exp.magnitude(), m),
    }
}

/// C^{-1} mod N0² for a statement whose C was checked to be a unit.
fn c_inverse(st: &AffGStarStatement<'_>) -> Result<BigUint, ProofError> {
    mod_inverse(st.cap_c, st.n0.n_squared()).ok_or(ProofError::new(
        PROOF,
        FailureKind::Statement,
        CHECK_C,
    ))
}

/// The statement's own checks: C, D units mod N0², Y unit mod N1² (PRE-05).
fn check_statement(st: &AffGStarStatement<'_>) -> Result<(), ProofError> {
    ensure(
        is_ciphertext(st.n0, st.cap_c),
        PROOF,
        FailureKind::Statement,
        CHECK_C,
    )?;
    ensure(
        is_ciphertext(st.n0, st.cap_d),
        PROOF,
        FailureKind::Statement,
        CHECK_D,
    )?;
    ensure(
        is_ciphertext(st.n1, st.cap_y),
        PROOF,
        FailureKind::Statement,
        CHECK_Y,
    )
}

/// The prover's secrets of one repetition (used once).
struct Masks {
    alpha: SecretInt,
    beta: SecretInt,
    r: SecretUint,
    s: SecretUint,
}

impl AffGStarProof {
    /// Proves the relation for `st` after checking that `w` satisfies it (kind `Witness`
    /// otherwise; kind `Statement` if C, D or Y is not a unit).
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &AffGStarStatement<'_>,
        w: &AffGStarWitness<'_>,
    ) -> Result<Self, ProofError> {
        check_statement(st)?;
        let n0 = st.n0;
        ensure(
            w.prover_key.public() == st.n1,
            PROOF,
            FailureKind::Witness,
            "prover key is N1",
        )?;
        ensure(
            in_signed_bits(w.x, u64::from(ELL)),
            PROOF,
            FailureKind::Witness,
            "x ∈ ±2^ℓ",
        )?;
        ensure(
            in_signed_bits(w.y, u64::from(ELL_PRIME)),
            PROOF,
            FailureKind::Witness,
            "y ∈ ±2^ℓ'",
        )?;
        ensure(
            is_unit_mod(w.rho, n0.n()),
            PROOF,
            FailureKind::Witness,
            "ρ unit mod N0",
        )?;
        ensure(
            is_unit_mod(w.mu, st.n1.n()),
            PROOF,
            FailureKind::Witness,
            "μ unit mod N1",
        )?;
        ensure(
            ProjectivePoint::GENERATOR * scalar_from_int(w.x) == *st.cap_x,
            PROOF,
            FailureKind::Witness,
            "X = x·G",
        )?;
        let y_enc = w
            .prover_key
            .encrypt_with_nonce(w.y, w.mu)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "μ unit mod N1"))?;
        ensure(
            y_enc.as_uint() == st.cap_y,
            PROOF,
            FailureKind::Witness,
            "Y = enc_{N1}(y; μ)",
        )?;
        let c_x = pow_signed(st.cap_c, &c_inverse(st)?, w.x, n0.n_squared());
        let enc_y = n0
            .encrypt_with_nonce(w.y, w.rho)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "ρ unit mod N0"))?;
        ensure(
            &(c_x * enc_y.as_uint() % n0.n_squared()) == st.cap_d,
            PROOF,
            FailureKind::Witness,
            "D = C^x·enc_{N0}(y; ρ)",
        )?;
        Self::prove_unchecked(rng, ctx, st, w, STAT_REPETITIONS)
    }

    /// The prover's computation with `m` repetitions and without the witness checks (tests
    /// use it as a cheating prover).
    fn prove_unchecked(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &AffGStarStatement<'_>,
        w: &AffGStarWitness<'_>,
        m: usize,
    ) -> Result<Self, ProofError> {
        let (n0, n1, sk) = (st.n0, st.n1, w.prover_key);
        let nn0 = n0.n_squared();
        let c_inv = c_inverse(st)?;
        let mut masks = Vec::with_capacity(m);
        let mut repetitions = Vec::with_capacity(m);
        for _ in 0..m {
            let mask = Masks {
                alpha: SecretInt::new(random_signed_bits(rng, u64::from(ELL + EPSILON))),
                beta: SecretInt::new(random_signed_bits(rng, u64::from(ELL_PRIME + EPSILON))),
                r: SecretUint::new(random_unit(rng, n0.n())),
                s: SecretUint::new(random_unit(rng, n1.n())),
            };
            // A_j on the verifier's key (no CRT); B_j on the prover's key with the CRT.
            let enc_beta = n0
                .encrypt_with_nonce(mask.beta.expose(), mask.r.expose())
                .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "r_j unit mod N0"))?;
            let cap_a =
                pow_signed(st.cap_c, &c_inv, mask.alpha.expose(), nn0) * enc_beta.as_uint() % nn0;
            let cap_b = sk
                .encrypt_with_nonce(mask.beta.expose(), mask.s.expose())
                .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "s_j unit mod N1"))?;
            repetitions.push(AffGStarRepetition {
                cap_a,
                cap_r: ProjectivePoint::GENERATOR * scalar_from_int(mask.alpha.expose()),
                cap_b: cap_b.as_uint().clone(),
                z: BigInt::zero(),
                z_prime: BigInt::zero(),
                w: BigUint::zero(),
                lambda: BigUint::zero(),
            });
            masks.push(mask);
        }
        let bits = challenge(ctx, st, &repetitions);
        for ((rep, mask), e) in repetitions.iter_mut().zip(&masks).zip(bits) {
            if e {
                rep.z = mask.alpha.expose() + w.x;
                rep.z_prime = mask.beta.expose() + w.y;
                rep.w = mask.r.expose() * w.rho % n0.n();
                rep.lambda = mask.s.expose() * w.mu % n1.n();
            } else {
                rep.z = mask.alpha.expose().clone();
                rep.z_prime = mask.beta.expose().clone();
                rep.w = mask.r.expose().clone();
                rep.lambda = mask.s.expose().clone();
            }
        }
        Ok(Self { repetitions })
    }

    /// Verifies the proof: statement, count, ranges and units first, then the challenge bits
    /// and the equations of every repetition (see the module documentation).
    pub fn verify(
        &self,
        ctx: &ProofContext<'_>,
        st: &AffGStarStatement<'_>,
    ) -> Result<(), ProofError> {
        check_statement(st)?;
        self.check_count_ranges_and_units(st)?;
        let bits = challenge(ctx, st, &self.repetitions);
        self.check_equations(st, &bits)
    }

    /// The cheap checks (AUX-04, PARAM-03).
    fn check_count_ranges_and_units(&self, st: &AffGStarStatement<'_>) -> Result<(), ProofError> {
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
                in_signed_bits(&rep.z_prime, u64::from(ELL_PRIME + EPSILON)),
                PROOF,
                FailureKind::Range,
                CHECK_Z_PRIME_RANGE,
            )?;
        }
        for rep in &self.repetitions {
            ensure(
                is_ciphertext(st.n0, &rep.cap_a),
                PROOF,
                FailureKind::Unit,
                CHECK_A_UNIT,
            )?;
            ensure(
                is_ciphertext(st.n1, &rep.cap_b),
                PROOF,
                FailureKind::Unit,
                CHECK_B_UNIT,
            )?;
            ensure(
                is_unit_mod(&rep.w, st.n0.n()),
                PROOF,
                FailureKind::Unit,
                CHECK_W_UNIT,
            )?;
            ensure(
                is_unit_mod(&rep.lambda, st.n1.n()),
                PROOF,
                FailureKind::Unit,
                CHECK_LAMBDA_UNIT,
            )?;
        }
        Ok(())
    }

    /// The equations of every repetition for challenge bits `bits`: the group equations of all
    /// repetitions first, then the Paillier equations.
    fn check_equations(&self, st: &AffGStarStatement<'_>, bits: &[bool]) -> Result<(), ProofError> {
        ensure(
            self.repetitions.len() == bits.len(),
            PROOF,
            FailureKind::Range,
            CHECK_COUNT,
        )?;
        for (rep, &e) in self.repetitions.iter().zip(bits) {
            let rhs = if e { rep.cap_r + st.cap_x } else { rep.cap_r };
            ensure(
                ProjectivePoint::GENERATOR * scalar_from_int(&rep.z) == rhs,
                PROOF,
                FailureKind::Equation,
                CHECK_EQ_GROUP,
            )?;
        }
        let (n0, n1) = (st.n0, st.n1);
        let (nn0, nn1) = (n0.n_squared(), n1.n_squared());
        let c_inv = c_inverse(st)?;
        for (rep, &e) in self.repetitions.iter().zip(bits) {
            let enc = n0
                .encrypt_with_nonce(&rep.z_prime, &rep.w)
                .map_err(|_| ProofError::new(PROOF, FailureKind::Unit, CHECK_W_UNIT))?;
            let lhs = pow_signed(st.cap_c, &c_inv, &rep.z, nn0) * enc.as_uint() % nn0;
            let rhs = if e {
                &rep.cap_a * st.cap_d % nn0
            } else {
                rep.cap_a.clone()
            };
            ensure(lhs == rhs, PROOF, FailureKind::Equation, CHECK_EQ_N0)?;

            let lhs = n1
                .encrypt_with_nonce(&rep.z_prime, &rep.lambda)
                .map_err(|_| ProofError::new(PROOF, FailureKind::Unit, CHECK_LAMBDA_UNIT))?;
            let rhs = if e {
                &rep.cap_b * st.cap_y % nn1
            } else {
                rep.cap_b.clone()
            };
            ensure(
                lhs.as_uint() == &rhs,
                PROOF,
                FailureKind::Equation,
                CHECK_EQ_N1,
            )?;
        }
        Ok(())
    }

    /// Canonical encoding: tag, m (u16), then for each repetition A_j, R_j, B_j, z_j, z'_j,
    /// w_j, λ_j.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::AFF_G_STAR);
        // An in-memory proof cannot have 2^16 repetitions and still verify; saturate rather than wrap.
        w.u16(u16::try_from(self.repetitions.len()).unwrap_or(u16::MAX));
        for rep in &self.repetitions {
            w.uint(&rep.cap_a)
                .point(&rep.cap_r)
                .uint(&rep.cap_b)
                .int(&rep.z)
                .int(&rep.z_prime)
                .uint(&rep.w)
                .uint(&rep.lambda);
        }
        w.finish()
    }

    /// Decodes the canonical encoding, rejecting anything else; the count must be exactly
    /// m = [`STAT_REPETITIONS`] (PARAM-03) and every length is capped before allocation.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::AFF_G_STAR)?;
        r.count("m", STAT_REPETITIONS)?;
        let mut repetitions = Vec::with_capacity(STAT_REPETITIONS);
        for _ in 0..STAT_REPETITIONS {
            repetitions.push(AffGStarRepetition {
                cap_a: r.uint("A_j", MAX_MODULUS_SQ_BYTES)?,
                cap_r: r.point("R_j")?,
                cap_b: r.uint("B_j", MAX_MODULUS_SQ_BYTES)?,
                z: r.int("z_j", Z_CAP_BYTES)?,
                z_prime: r.int("z'_j", Z_PRIME_CAP_BYTES)?,
                w: r.uint("w_j", MAX_MODULUS_BYTES)?,
                lambda: r.uint("λ_j", MAX_MODULUS_BYTES)?,
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
    use crate::zk::testing::{ctx, other_contexts};
    use num_traits::One;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::OnceLock;

    /// A named change to a proof value.
    type Change<'a> = (&'static str, Box<dyn Fn(&mut AffGStarRepetition) + 'a>);

    /// The verifier V (N0) and prover P (N1), one instance of the relation and one honest
    /// proof, built once and shared by the tests (a proof is 128 repetitions of 3072-bit work).
    struct Fixture {
        sk0: PaillierSecretKey,
        sk1: PaillierSecretKey,
        cap_c: BigUint,
        cap_d: BigUint,
        cap_y: BigUint,
        cap_x: ProjectivePoint,
        x: BigInt,
        y: BigInt,
        rho: BigUint,
        mu: BigUint,
        proof: AffGStarProof,
    }

    impl Fixture {
        fn st(&self) -> AffGStarStatement<'_> {
            AffGStarStatement {
                n0: self.sk0.public(),
                n1: self.sk1.public(),
                cap_c: &self.cap_c,
                cap_d: &self.cap_d,
                cap_y: &self.cap_y,
                cap_x: &self.cap_x,
            }
        }

        fn witness(&self) -> AffGStarWitness<'_> {
            AffGStarWitness {
                x: &self.x,
                y: &self.y,
                rho: &self.rho,
                mu: &self.mu,
                prover_key: &self.sk1,
            }
        }
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let mut rng = ChaCha20Rng::seed_from_u64(27);
            let [p, q] = fixtures::safe_prime_pair(6);
            let sk0 = PaillierSecretKey::from_primes(p, q).unwrap();
            let [p, q] = fixtures::safe_prime_pair(7);
            let sk1 = PaillierSecretKey::from_primes(p, q).unwrap();
            let n0 = sk0.public().clone();
            let x = random_signed_bits(&mut rng, u64::from(ELL));
            let y = random_signed_bits(&mut rng, u64::from(ELL_PRIME));
            let k = random_signed_bits(&mut rng, u64::from(ELL));
            let (cap_c, _) = sk0.encrypt(&mut rng, &k);
            let (enc_y, rho) = n0.encrypt(&mut rng, &y);
            let cap_d = n0.add(&n0.mul_plain(&cap_c, &x), &enc_y);
            let (cap_y, mu) = sk1.encrypt(&mut rng, &y);
            let mut f = Fixture {
                cap_c: cap_c.as_uint().clone(),
                cap_d: cap_d.as_uint().clone(),
                cap_y: cap_y.as_uint().clone(),
                cap_x: ProjectivePoint::GENERATOR * scalar_from_int(&x),
                x,
                y,
                rho: rho.expose().clone(),
                mu: mu.expose().clone(),
                proof: AffGStarProof {
                    repetitions: Vec::new(),
                },
                sk0,
                sk1,
            };
            f.proof = AffGStarProof::prove(&mut rng, &ctx(), &f.st(), &f.witness()).unwrap();
            f
        })
    }

    #[test]
    fn honest_proof_verifies_and_round_trips() {
        let f = fixture();
        let decoded = AffGStarProof::from_bytes(&f.proof.to_bytes()).unwrap();
        assert_eq!(decoded, f.proof);
        decoded.verify(&ctx(), &f.st()).unwrap();
    }

    /// Every field of a repetition, changed to another valid-looking value, makes the proof
    /// fail. The fields of the first repetition, and the first-message fields and z of the last
    /// one (those fail fast; a changed first message changes the challenge bits).
    #[test]
    fn tampered_fields_fail() {
        let f = fixture();
        let st = f.st();
        let (nn0, nn1) = (st.n0.n_squared(), st.n1.n_squared());
        let two = BigUint::from(2u32);
        let tampers: [Change<'_>; 7] = [
            ("A_j", Box::new(|r| r.cap_a = &r.cap_a * &two % nn0)),
            ("R_j", Box::new(|r| r.cap_r += ProjectivePoint::GENERATOR)),
            ("B_j", Box::new(|r| r.cap_b = &r.cap_b * &two % nn1)),
            ("z_j", Box::new(|r| r.z += 1)),
            ("z'_j", Box::new(|r| r.z_prime += 1)),
            ("w_j", Box::new(|r| r.w = &r.w * &two % st.n0.n())),
            ("λ_j", Box::new(|r| r.lambda = &r.lambda * &two % st.n1.n())),
        ];
        let last = STAT_REPETITIONS - 1;
        for (name, tamper) in &tampers {
            for j in [0, last] {
                if j == last && ["z'_j", "w_j", "λ_j"].contains(name) {
                    continue; // would cost a full verification each; covered at j = 0
                }
                let mut bad = f.proof.clone();
                tamper(&mut bad.repetitions[j]);
                assert_ne!(bad, f.proof, "{name}");
                let err = bad.verify(&ctx(), &st).unwrap_err();
                assert_eq!(err.kind, FailureKind::Equation, "{name}, j = {j}: {err}");
            }
        }
    }

    /// ENC-02: the challenge bits cover the session, the prover, ρ, every public input (N0, N1,
    /// C, D, Y, X) and every first-message value (A_j, R_j, B_j of every repetition).
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
        let (c1, d1, y1) = (st.cap_c + 1u32, st.cap_d + 1u32, st.cap_y + 1u32);
        let x1 = *st.cap_x + ProjectivePoint::GENERATOR;
        let variants = [
            ("N0", AffGStarStatement { n0: st.n1, ..st }),
            ("N1", AffGStarStatement { n1: st.n0, ..st }),
            ("C", AffGStarStatement { cap_c: &c1, ..st }),
            ("D", AffGStarStatement { cap_d: &d1, ..st }),
            ("Y", AffGStarStatement { cap_y: &y1, ..st }),
            ("X", AffGStarStatement { cap_x: &x1, ..st }),
        ];
        for (name, variant) in &variants {
            assert_ne!(challenge(&ctx(), variant, reps), e0, "{name}");
        }
        type Edit = fn(&mut AffGStarRepetition);
        let firsts: [(&str, Edit); 3] = [
            ("A_j", |r| r.cap_a += 1u32),
            ("R_j", |r| r.cap_r += ProjectivePoint::GENERATOR),
            ("B_j", |r| r.cap_b += 1u32),
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
        let (nn0, nn1) = (st.n0.n_squared(), st.n1.n_squared());
        let two = BigUint::from(2u32);
        let (c1, d1, y1) = (
            st.cap_c * &two % nn0,
            st.cap_d * &two % nn0,
            st.cap_y * &two % nn1,
        );
        let x1 = *st.cap_x + ProjectivePoint::GENERATOR;
        let variants = [
            (
                "N0 ↔ N1",
                AffGStarStatement {
                    n0: st.n1,
                    n1: st.n0,
                    ..st
                },
            ),
            ("C", AffGStarStatement { cap_c: &c1, ..st }),
            ("D", AffGStarStatement { cap_d: &d1, ..st }),
            ("Y", AffGStarStatement { cap_y: &y1, ..st }),
            ("X", AffGStarStatement { cap_x: &x1, ..st }),
        ];
        for (name, variant) in &variants {
            assert!(f.proof.verify(&ctx(), variant).is_err(), "{name}");
        }
    }

    #[test]
    fn wrong_witness_is_refused_by_prover() {
        let f = fixture();
        let st = f.st();
        let mut rng = ChaCha20Rng::seed_from_u64(271);
        let x1 = &f.x + 1;
        let y1 = &f.y + 1;
        let big_x = BigInt::one() << (ELL + 1);
        let big_y = BigInt::one() << (ELL_PRIME + 1);
        let rho1 = &f.rho + 1u32;
        let mu1 = &f.mu + 1u32;
        let cases = [
            (
                "x ≠ log X",
                AffGStarWitness {
                    x: &x1,
                    ..f.witness()
                },
            ),
            (
                "y",
                AffGStarWitness {
                    y: &y1,
                    ..f.witness()
                },
            ),
            (
                "x out of range",
                AffGStarWitness {
                    x: &big_x,
                    ..f.witness()
                },
            ),
            (
                "y out of range",
                AffGStarWitness {
                    y: &big_y,
                    ..f.witness()
                },
            ),
            (
                "ρ",
                AffGStarWitness {
                    rho: &rho1,
                    ..f.witness()
                },
            ),
            (
                "μ",
                AffGStarWitness {
                    mu: &mu1,
                    ..f.witness()
                },
            ),
            (
                "key of N0 instead of N1",
                AffGStarWitness {
                    prover_key: &f.sk0,
                    ..f.witness()
                },
            ),
        ];
        for (name, w) in &cases {
            let err = AffGStarProof::prove(&mut rng, &ctx(), &st, w).unwrap_err();
            assert_eq!(err.kind, FailureKind::Witness, "{name}: {err}");
        }
        assert_eq!(
            alloc::format!("{:?}", f.witness()),
            "AffGStarWitness(<redacted>)"
        );
    }

    /// Responses just outside their bounds, in any repetition, fail with `Range`.
    #[test]
    fn out_of_range_responses_fail_with_range() {
        let f = fixture();
        let st = f.st();
        let z_max = BigInt::one() << (ELL + EPSILON);
        let z_prime_max = BigInt::one() << (ELL_PRIME + EPSILON);
        let cases = [
            (CHECK_Z_RANGE, 0, &z_max + 1, true),
            (CHECK_Z_RANGE, 77, -&z_max - 1, true),
            (CHECK_Z_PRIME_RANGE, 5, &z_prime_max + 1, false),
            (
                CHECK_Z_PRIME_RANGE,
                STAT_REPETITIONS - 1,
                -&z_prime_max - 1,
                false,
            ),
        ];
        for (check, j, value, is_z) in cases {
            let mut bad = f.proof.clone();
            if is_z {
                bad.repetitions[j].z = value;
            } else {
                bad.repetitions[j].z_prime = value;
            }
            let err = bad.verify(&ctx(), &st).unwrap_err();
            assert_eq!(
                (err.kind, err.check),
                (FailureKind::Range, check),
                "j = {j}"
            );
            assert_eq!(
                AffGStarProof::from_bytes(&bad.to_bytes()).unwrap(),
                bad,
                "still decodable"
            );
        }
        // the bounds themselves pass the range checks
        let mut edge = f.proof.clone();
        edge.repetitions[0].z = z_max;
        edge.repetitions[0].z_prime = -z_prime_max;
        assert_eq!(
            edge.verify(&ctx(), &st).unwrap_err().kind,
            FailureKind::Equation
        );
    }

    /// PRE-05: C = 0, C = N0², C sharing a factor with N0 (and likewise D, Y) are refused as
    /// `Statement`; A_j, B_j, w_j, λ_j equal to 0, to their modulus or sharing a factor with it
    /// are refused as `Unit` — all without panicking.
    #[test]
    fn pre_05_non_units_are_rejected_without_panic() {
        let f = fixture();
        let st = f.st();
        let mut rng = ChaCha20Rng::seed_from_u64(272);
        let (n0, nn0, n1, nn1) = (
            st.n0.n().clone(),
            st.n0.n_squared().clone(),
            st.n1.n().clone(),
            st.n1.n_squared().clone(),
        );
        let p0 = f.sk0.p().clone();
        let p1 = f.sk1.q().clone();
        let bad_mod_n0_sq = [
            BigUint::zero(),
            nn0.clone(),
            &nn0 + 1u32,
            p0.clone(),
            &p0 * 12345u32,
        ];
        let bad_mod_n1_sq = [BigUint::zero(), nn1.clone(), &p1 * 7u32];
        for bad in &bad_mod_n0_sq {
            for (name, variant) in [
                ("C", AffGStarStatement { cap_c: bad, ..st }),
                ("D", AffGStarStatement { cap_d: bad, ..st }),
            ] {
                assert_eq!(
                    f.proof.verify(&ctx(), &variant).unwrap_err().kind,
                    FailureKind::Statement,
                    "{name}"
                );
                let err =
                    AffGStarProof::prove(&mut rng, &ctx(), &variant, &f.witness()).unwrap_err();
                assert_eq!(err.kind, FailureKind::Statement, "{name} (prover)");
            }
        }
        for bad in &bad_mod_n1_sq {
            let err = f
                .proof
                .verify(&ctx(), &AffGStarStatement { cap_y: bad, ..st })
                .unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Statement, CHECK_Y));
        }
        type Field = fn(&mut AffGStarRepetition) -> &mut BigUint;
        let fields: [(&str, Field, Vec<BigUint>); 4] = [
            (CHECK_A_UNIT, |r| &mut r.cap_a, bad_mod_n0_sq.to_vec()),
            (CHECK_B_UNIT, |r| &mut r.cap_b, bad_mod_n1_sq.to_vec()),
            (
                CHECK_W_UNIT,
                |r| &mut r.w,
                alloc::vec![BigUint::zero(), n0.clone(), p0.clone(), &n0 + 1u32],
            ),
            (
                CHECK_LAMBDA_UNIT,
                |r| &mut r.lambda,
                alloc::vec![BigUint::zero(), n1.clone(), p1.clone()],
            ),
        ];
        for (check, field, bads) in &fields {
            for bad in bads {
                for j in [0, STAT_REPETITIONS - 1] {
                    let mut p = f.proof.clone();
                    *field(&mut p.repetitions[j]) = bad.clone();
                    let err = p.verify(&ctx(), &st).unwrap_err();
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
                AffGStarProof::from_bytes(&proof.to_bytes()),
                Err(DecodeError::WrongCount {
                    field: "m",
                    got,
                    expected: STAT_REPETITIONS
                })
            );
        }
        crate::zk::testing::assert_wire_count_other_than_m_rejected(
            &f.proof.to_bytes(),
            AffGStarProof::from_bytes,
        );
    }

    /// PARAM-03: verify refuses an in-memory proof with any other number of repetitions. The
    /// one-repetition case is a real forgery of a false statement (X ≠ x·G): the cheating
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
        let false_x = *st.cap_x + ProjectivePoint::GENERATOR;
        let false_st = AffGStarStatement {
            cap_x: &false_x,
            ..st
        };
        let mut rng = ChaCha20Rng::seed_from_u64(273);
        let (forged, bits) = loop {
            let p = AffGStarProof::prove_unchecked(&mut rng, &ctx(), &false_st, &f.witness(), 1)
                .unwrap();
            let bits = challenge(&ctx(), &false_st, &p.repetitions);
            if !bits[0] {
                break (p, bits);
            }
        };
        forged.check_count_ranges_and_units(&false_st).unwrap_err();
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
            tags::DEC,
            AffGStarProof::from_bytes,
        );
        // z_1 = −0
        let mut zero = f.proof.clone();
        zero.repetitions[0].z = BigInt::zero();
        let mut neg_zero = zero.to_bytes();
        let r0 = &zero.repetitions[0];
        let z_at = Writer::new(tags::AFF_G_STAR)
            .u16(128)
            .uint(&r0.cap_a)
            .point(&r0.cap_r)
            .uint(&r0.cap_b)
            .finish()
            .len();
        assert_eq!(neg_zero[z_at], 0);
        neg_zero[z_at] = 1;
        assert!(matches!(
            AffGStarProof::from_bytes(&neg_zero),
            Err(DecodeError::NonCanonical { .. })
        ));
        // z'_j longer than its cap
        let mut huge = f.proof.clone();
        huge.repetitions[3].z_prime = BigInt::one() << (8 * Z_PRIME_CAP_BYTES);
        assert!(matches!(
            AffGStarProof::from_bytes(&huge.to_bytes()),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
