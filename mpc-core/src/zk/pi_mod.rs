//! Πmod — Paillier-Blum modulus (CGGMP24 Fig. 12).
//!
//! Statement: a Paillier modulus N. Witness: its primes p, q.
//! Relation: R_mod = {(N; p, q) : N = p·q, p ≡ q ≡ 3 (mod 4) primes, gcd(N, φ(N)) = 1}.
//! m = [`STAT_REPETITIONS`] repetitions, soundness error 2^-m.
//!
//! 1. Prover samples w ← Z_N with Jacobi(w, N) = −1 and sends it.
//! 2. Challenges y_1..y_m ∈ Z_N: y_i = H(context, N, w, i) with counter i (ENC-03); they must
//!    be pairwise distinct (if they are not, the prover draws a new w).
//! 3. For each i the prover finds a_i, b_i ∈ {0, 1} with y'_i = (−1)^{a_i}·w^{b_i}·y_i a
//!    quadratic residue mod N, and sends x_i = y'_i^{1/4} mod N (the principal 4th root:
//!    y'^{((p+1)/4)²} mod p, likewise mod q, recombined by the CRT) and
//!    z_i = y_i^{N^{-1} mod φ(N)} mod N.
//!
//! The verifier checks, cheap checks first (AUX-01, AUX-04):
//! - N odd and of at least [`MIN_MODULUS_BITS`] bits (already guaranteed by
//!   [`PaillierPublicKey`]; re-checked, it costs nothing);
//! - exactly m responses (PARAM-03; the decoder already refuses any other count);
//! - 0 < w < N, gcd(w, N) = 1 and Jacobi(w, N) = −1 exactly;
//! - every x_i and z_i in [0, N) and a unit mod N (a_i, b_i are bits by type);
//! - N is not prime (one strong-probable-prime test to base 2: every prime passes it);
//! - the recomputed y_i are pairwise distinct;
//! - x_i^4 = (−1)^{a_i}·w^{b_i}·y_i mod N for all i (two squarings each), then
//!   z_i^N = y_i mod N for all i (one full exponentiation each).

use alloc::vec::Vec;
use core::fmt;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};
use rand_core::CryptoRngCore;

use super::{ensure, tags, FailureKind, ProofContext, ProofError};
use crate::arith::{all_units_mod, crt_combine, is_unit_mod, jacobi, random_unit, SecretUint};
use crate::encoding::{DecodeError, Reader, Writer};
use crate::fixed_base::FixedBaseTable;
use crate::monty::Montgomery;
use crate::paillier::{PaillierPublicKey, PaillierSecretKey};
use crate::params::{MAX_MODULUS_BYTES, MIN_MODULUS_BITS, STAT_REPETITIONS};

const PROOF: &str = "Πmod (Fig. 12)";
const LABEL: &[u8] = b"cggmp24/pi-mod/fig12";

/// The text of every check, as reported in [`ProofError::check`].
pub(crate) mod check {
    /// Prover: the secret key belongs to the statement's N.
    pub const WITNESS_N: &str = "N = p·q";
    /// Prover: both primes are 3 mod 4.
    pub const WITNESS_BLUM: &str = "p ≡ q ≡ 3 (mod 4)";
    /// Prover: the computed 4th root is one.
    pub const WITNESS_ROOT: &str = "x_i^4 = y'_i mod N (prover)";
    /// N is odd.
    pub const N_ODD: &str = "N odd";
    /// N is large enough.
    pub const N_BITS: &str = "N has at least MIN_MODULUS_BITS bits";
    /// The number of repetitions is the constant m.
    pub const COUNT: &str = "m = STAT_REPETITIONS responses";
    /// Internal guard of the equation loop: as many responses as challenges.
    pub const ONE_RESPONSE_PER_CHALLENGE: &str = "one response per challenge y_i";
    /// w is in range.
    pub const W_RANGE: &str = "0 < w < N";
    /// w is a unit.
    pub const W_UNIT: &str = "gcd(w, N) = 1";
    /// w is a non-residue with Jacobi symbol −1.
    pub const W_JACOBI: &str = "Jacobi(w, N) = -1";
    /// x_i is in range.
    pub const X_RANGE: &str = "0 ≤ x_i < N";
    /// z_i is in range.
    pub const Z_RANGE: &str = "0 ≤ z_i < N";
    /// x_i is a unit.
    pub const X_UNIT: &str = "gcd(x_i, N) = 1";
    /// z_i is a unit.
    pub const Z_UNIT: &str = "gcd(z_i, N) = 1";
    /// N is composite.
    pub const N_COMPOSITE: &str = "N is not prime";
    /// The challenges are pairwise distinct.
    pub const Y_DISTINCT: &str = "y_i pairwise distinct";
    /// The 4th-root equation.
    pub const X4: &str = "x_i^4 = (-1)^a_i·w^b_i·y_i mod N";
    /// The N-th-root equation.
    pub const ZN: &str = "z_i^N = y_i mod N";
}

/// Public input: the Paillier modulus N (size and oddness already validated by the type).
#[derive(Clone, Copy, Debug)]
pub struct ModStatement<'a> {
    /// N.
    pub n: &'a PaillierPublicKey,
}

/// Secret input: the Paillier-Blum secret key (p, q) of N.
pub struct ModWitness<'a> {
    /// The key whose primes p, q ≡ 3 (mod 4) factor N.
    pub sk: &'a PaillierSecretKey,
}

impl fmt::Debug for ModWitness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ModWitness(<redacted>)")
    }
}

/// One repetition's response (x_i, a_i, b_i, z_i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModResponse {
    /// $x_i = ((-1)^{a_i} w^{b_i} y_i)^{1/4} \bmod N$.
    pub x: BigUint,
    /// $a_i ∈ \{0, 1\}$.
    pub a: bool,
    /// $b_i ∈ \{0, 1\}$.
    pub b: bool,
    /// $z_i = y_i^{N^{-1} \bmod φ(N)} \bmod N$.
    pub z: BigUint,
}

/// A Πmod proof (w, {x_i, a_i, b_i, z_i}_{i=1..m}).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModProof {
    /// $w ∈ Z_N^*$ with Jacobi(w, N) = −1.
    pub w: BigUint,
    /// The m = [`STAT_REPETITIONS`] responses.
    pub responses: Vec<ModResponse>,
}

/// The challenges y_1..y_m ∈ Z_N, each from its own counter (ENC-03), bound to the context,
/// N and w (ENC-02, AUX-06).
fn challenges(ctx: &ProofContext<'_>, n: &BigUint, w: &BigUint) -> Vec<BigUint> {
    let mut t = ctx.transcript(LABEL);
    t.append_u64(b"m", STAT_REPETITIONS as u64);
    t.append_uint(b"N", n);
    t.append_uint(b"w", w);
    (0..STAT_REPETITIONS as u64)
        .map(|i| t.challenge_below(b"y", i, n))
        .collect()
}

/// True when no two values of `ys` are equal (ENC-03).
fn pairwise_distinct(ys: &[BigUint]) -> bool {
    let mut sorted: Vec<&BigUint> = ys.iter().collect();
    sorted.sort_unstable();
    sorted.windows(2).all(|pair| pair.first() != pair.get(1))
}

/// Deterministic Miller–Rabin round with base 2: true when `n` is a strong probable prime to
/// base 2. Every odd prime passes, so a `false` proves `n` composite. (A product of two safe
/// primes p = 2p'+1, q = 2q'+1 never passes: 2^{N−1} ≡ 1 mod p needs ord_p(2) ∈ {p', 2p'} to
/// divide N − 1 ≡ q − 1 = 2q' (mod p'), impossible for p' ≠ q'.)
pub(crate) fn is_strong_probable_prime_base2(n: &BigUint) -> bool {
    crate::primes::is_strong_probable_prime(n, &BigUint::from(2u32))
}

/// Whether the unit `a` is a quadratic residue modulo the odd prime `p`: the Legendre symbol,
/// i.e. Euler's criterion a^{(p−1)/2} ≡ 1 (mod p), computed with the Jacobi-symbol algorithm
/// (equal to the Legendre symbol for a prime modulus, and ~10× cheaper than the
/// exponentiation).
fn is_qr_mod_prime(a: &BigUint, p: &BigUint) -> bool {
    jacobi(a, p) == 1
}

/// ((r+1)/4)² mod (r−1) for a prime r ≡ 3 (mod 4): for a quadratic residue v mod r,
/// v^{(r+1)/4} is the square root that is itself a residue, and applying the map twice,
/// v^{((r+1)/4)²}, gives the principal 4th root.
fn fourth_root_exponent(r: &BigUint) -> BigUint {
    let e: BigUint = (r + 1u32) >> 2;
    &e * &e % (r - 1u32)
}

/// (−1)^a·w^b·y mod N.
fn signed_target(n: &BigUint, w: &BigUint, y: &BigUint, a: bool, b: bool) -> BigUint {
    let v = if b { w * y % n } else { y % n };
    if a && !v.is_zero() {
        n - v
    } else {
        v
    }
}

/// The prover's work modulo one prime r of N: the 4th root and the N-th root of each
/// challenge share one squaring chain of y mod r (a fixed-base table built per y, then two
/// bucket passes), instead of two exponentiations with their own squarings.
struct PrimeSide {
    mont: Montgomery,
    /// N^{-1} mod (r − 1).
    n_inv: SecretUint,
    /// ((r+1)/4)² mod (r − 1).
    e4: SecretUint,
    e4_odd: bool,
    bits: usize,
}

impl PrimeSide {
    /// w^{e4} mod r.
    fn w_power(&self, w: &BigUint) -> BigUint {
        self.mont.pow_fixed_bits(w, self.e4.expose(), self.bits)
    }

    /// (x_r, z_r): the principal 4th root of (−1)^a·w^b·y and the N-th root of y, mod r.
    /// target^{e4} = (−1)^{a·e4}·(w^{e4})^b·y^{e4}.
    fn roots(&self, y: &BigUint, w_e4: &BigUint, a: bool, b: bool) -> (BigUint, BigUint) {
        let r = self.mont.modulus();
        let table = FixedBaseTable::new_fixed_length(&self.mont, &(y % r), self.bits);
        let mut x = table.pow(self.e4.expose());
        let z = table.pow(self.n_inv.expose());
        if b {
            x = x * w_e4 % r;
        }
        if a && self.e4_odd && !x.is_zero() {
            x = r - x;
        }
        (x, z)
    }
}

/// x^4 mod N.
fn fourth_power(x: &BigUint, n: &BigUint) -> BigUint {
    let x2 = x * x % n;
    &x2 * &x2 % n
}

impl ModProof {
    /// Proves that N is a Paillier-Blum modulus, knowing its primes.
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &ModStatement<'_>,
        wit: &ModWitness<'_>,
    ) -> Result<Self, ProofError> {
        let sk = wit.sk;
        ensure(
            sk.public() == st.n,
            PROOF,
            FailureKind::Witness,
            check::WITNESS_N,
        )?;
        let n = st.n.n();
        let (p, q) = (sk.p(), sk.q());
        let three = BigUint::from(3u32);
        ensure(
            p % 4u32 == three && q % 4u32 == three,
            PROOF,
            FailureKind::Witness,
            check::WITNESS_BLUM,
        )?;
        let (e4_p, e4_q) = (fourth_root_exponent(p), fourth_root_exponent(q));
        let n_inv = sk.n_inv_mod_phi();
        let per_prime = |r: &BigUint, e4: &BigUint| -> Result<PrimeSide, ProofError> {
            let mont = Montgomery::new(r)
                .ok_or_else(|| ProofError::new(PROOF, FailureKind::Witness, check::WITNESS_BLUM))?;
            Ok(PrimeSide {
                n_inv: SecretUint::new(n_inv % (r - 1u32)),
                e4: SecretUint::new(e4.clone()),
                e4_odd: e4.is_odd(),
                bits: r.bits() as usize,
                mont,
            })
        };
        let (side_p, side_q) = (per_prime(p, &e4_p)?, per_prime(q, &e4_q)?);
        loop {
            // 1. w ← Z_N^* with Jacobi(w, N) = −1 (w is then a non-residue mod exactly one of p, q).
            let w = loop {
                let w = random_unit(rng, n);
                if jacobi(&w, n) == -1 {
                    break w;
                }
            };
            // 2. Challenges; a collision or a non-unit y_i has negligible probability: redraw w.
            let ys = challenges(ctx, n, &w);
            if !pairwise_distinct(&ys) || !ys.iter().all(|y| is_unit_mod(y, n)) {
                continue;
            }
            // 3. Responses. −1 is a non-residue mod p and mod q (p ≡ q ≡ 3 mod 4), so y' =
            // (−1)^a·w^b·y is a non-residue mod p iff a ⊕ (b ∧ nr_p(w)) ⊕ nr_p(y), and mod q
            // likewise with nr_q(w) = ¬nr_p(w). Both vanish for b = nr_p(y) ⊕ nr_q(y) and
            // a = (b ∧ nr_p(w)) ⊕ nr_p(y).
            let w_nr_p = !is_qr_mod_prime(&(&w % p), p);
            // w^{e4} mod p and mod q, once per proof
            let (w_e4_p, w_e4_q) = (side_p.w_power(&w), side_q.w_power(&w));
            let mut responses = Vec::with_capacity(STAT_REPETITIONS);
            for y in &ys {
                let y_nr_p = !is_qr_mod_prime(&(y % p), p);
                let y_nr_q = !is_qr_mod_prime(&(y % q), q);
                let b = y_nr_p ^ y_nr_q;
                let a = (b && w_nr_p) ^ y_nr_p;
                let target = signed_target(n, &w, y, a, b);
                let (x_p, z_p) = side_p.roots(y, &w_e4_p, a, b);
                let (x_q, z_q) = side_q.roots(y, &w_e4_q, a, b);
                let x = crt_combine(&x_p, &x_q, p, q, sk.p_inv_mod_q());
                // Cheap self-check (two squarings): refuses to emit a wrong proof if p or q
                // is not prime after all.
                ensure(
                    fourth_power(&x, n) == target,
                    PROOF,
                    FailureKind::Witness,
                    check::WITNESS_ROOT,
                )?;
                let z = crt_combine(&z_p, &z_q, p, q, sk.p_inv_mod_q());
                responses.push(ModResponse { x, a, b, z });
            }
            return Ok(Self { w, responses });
        }
    }

    /// Verifies the proof for N (AUX-01), cheap checks first (AUX-04).
    pub fn verify(&self, ctx: &ProofContext<'_>, st: &ModStatement<'_>) -> Result<(), ProofError> {
        let n = st.n.n();
        self.check_values(n)?;
        ensure(
            !is_strong_probable_prime_base2(n),
            PROOF,
            FailureKind::Statement,
            check::N_COMPOSITE,
        )?;
        let ys = challenges(ctx, n, &self.w);
        self.check_challenge_responses(n, &ys)
    }

    /// Given the challenges: refuses repeated ones (ENC-03), then checks the equations.
    fn check_challenge_responses(&self, n: &BigUint, ys: &[BigUint]) -> Result<(), ProofError> {
        ensure(
            pairwise_distinct(ys),
            PROOF,
            FailureKind::Equation,
            check::Y_DISTINCT,
        )?;
        self.check_equations(n, ys)
    }

    /// Sizes, ranges, unit-ness and the Jacobi symbol: everything before the exponentiations.
    fn check_values(&self, n: &BigUint) -> Result<(), ProofError> {
        ensure(n.is_odd(), PROOF, FailureKind::Statement, check::N_ODD)?;
        ensure(
            n.bits() >= u64::from(MIN_MODULUS_BITS),
            PROOF,
            FailureKind::Statement,
            check::N_BITS,
        )?;
        ensure(
            self.responses.len() == STAT_REPETITIONS,
            PROOF,
            FailureKind::Range,
            check::COUNT,
        )?;
        ensure(
            !self.w.is_zero() && &self.w < n,
            PROOF,
            FailureKind::Range,
            check::W_RANGE,
        )?;
        ensure(
            self.w.gcd(n).is_one(),
            PROOF,
            FailureKind::Unit,
            check::W_UNIT,
        )?;
        ensure(
            jacobi(&self.w, n) == -1,
            PROOF,
            FailureKind::Range,
            check::W_JACOBI,
        )?;
        for r in &self.responses {
            ensure(&r.x < n, PROOF, FailureKind::Range, check::X_RANGE)?;
            ensure(&r.z < n, PROOF, FailureKind::Range, check::Z_RANGE)?;
        }
        // one gcd for all 2m values; only if it fails, find the first non-unit to report
        if all_units_mod(self.responses.iter().flat_map(|r| [&r.x, &r.z]), n) {
            return Ok(());
        }
        for r in &self.responses {
            ensure(
                is_unit_mod(&r.x, n),
                PROOF,
                FailureKind::Unit,
                check::X_UNIT,
            )?;
            ensure(
                is_unit_mod(&r.z, n),
                PROOF,
                FailureKind::Unit,
                check::Z_UNIT,
            )?;
        }
        Ok(())
    }

    /// The verification equations for the challenges `ys`: all 4th-root equations (cheap),
    /// then all N-th-root equations.
    fn check_equations(&self, n: &BigUint, ys: &[BigUint]) -> Result<(), ProofError> {
        ensure(
            ys.len() == self.responses.len(),
            PROOF,
            FailureKind::Range,
            check::ONE_RESPONSE_PER_CHALLENGE,
        )?;
        for (r, y) in self.responses.iter().zip(ys) {
            ensure(
                fourth_power(&r.x, n) == signed_target(n, &self.w, y, r.a, r.b),
                PROOF,
                FailureKind::Equation,
                check::X4,
            )?;
        }
        // N is odd (checked first): the Montgomery constants exist; built once for all m.
        let mont = crate::monty::Montgomery::new(n);
        ensure(mont.is_some(), PROOF, FailureKind::Statement, check::N_ODD)?;
        for (r, y) in self.responses.iter().zip(ys) {
            // z_i, N and y_i are public: variable-time sliding windows
            let z_pow_n = mont.as_ref().map(|m| m.pow_public(&r.z, n));
            ensure(
                z_pow_n.as_ref() == Some(y),
                PROOF,
                FailureKind::Equation,
                check::ZN,
            )?;
        }
        Ok(())
    }

    /// Canonical encoding: tag, w, the count m (u16), then per repetition x_i, a_i (one byte,
    /// 0 or 1), b_i (likewise), z_i.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(tags::MOD);
        w.uint(&self.w);
        w.u16(u16::try_from(self.responses.len()).unwrap_or(u16::MAX));
        for r in &self.responses {
            w.uint(&r.x).u8(u8::from(r.a)).u8(u8::from(r.b)).uint(&r.z);
        }
        w.finish()
    }

    /// Decodes the canonical encoding, rejecting anything else; the count must be exactly
    /// [`STAT_REPETITIONS`] (PARAM-03).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::MOD)?;
        let w = r.uint("w", MAX_MODULUS_BYTES)?;
        r.count("m", STAT_REPETITIONS)?;
        let mut responses = Vec::with_capacity(STAT_REPETITIONS);
        for _ in 0..STAT_REPETITIONS {
            let x = r.uint("x_i", MAX_MODULUS_BYTES)?;
            let a = read_bit(&mut r, "a_i")?;
            let b = read_bit(&mut r, "b_i")?;
            let z = r.uint("z_i", MAX_MODULUS_BYTES)?;
            responses.push(ModResponse { x, a, b, z });
        }
        r.finish()?;
        Ok(Self { w, responses })
    }
}

/// A bit encoded as one byte, 0 or 1; any other byte is refused.
fn read_bit(r: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::NonCanonical { field }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::random_below;
    use crate::fixtures;
    use crate::zk::testing::{ctx, other_contexts};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::OnceLock;

    const M: usize = STAT_REPETITIONS;

    /// One key and one honest proof, shared by every test (a proof costs seconds).
    struct Fixture {
        sk: PaillierSecretKey,
        proof: ModProof,
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let [p, q] = fixtures::safe_prime_pair(5);
            let sk = PaillierSecretKey::from_primes(p, q).unwrap();
            let mut rng = ChaCha20Rng::seed_from_u64(12);
            let proof = ModProof::prove(
                &mut rng,
                &ctx(),
                &ModStatement { n: sk.public() },
                &ModWitness { sk: &sk },
            )
            .unwrap();
            Fixture { sk, proof }
        })
    }

    fn statement(f: &Fixture) -> ModStatement<'_> {
        ModStatement { n: f.sk.public() }
    }

    fn verify_err(proof: &ModProof, st: &ModStatement<'_>) -> ProofError {
        proof.verify(&ctx(), st).unwrap_err()
    }

    fn assert_check(err: ProofError, kind: FailureKind, text: &str) {
        assert_eq!((err.kind, err.check), (kind, text), "{err}");
    }

    #[test]
    fn honest_proof_verifies_and_round_trips() {
        let f = fixture();
        let n = f.sk.public().n();
        f.proof.verify(&ctx(), &statement(f)).unwrap();
        assert_eq!(jacobi(&f.proof.w, n), -1);
        assert_eq!(f.proof.responses.len(), M);
        let decoded = ModProof::from_bytes(&f.proof.to_bytes()).unwrap();
        assert_eq!(decoded, f.proof);
        // Both values of a_i and b_i occur (the 4 cases of the residue classes).
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            assert!(
                f.proof.responses.iter().any(|r| r.a == a && r.b == b),
                "({a}, {b}) never used"
            );
        }
    }

    /// AUX-01: each equation is checked; tampering any field of any repetition fails.
    #[test]
    fn aux_01_tampered_fields_fail_their_equation() {
        let f = fixture();
        let st = statement(f);
        let n = f.sk.public().n();
        // another w with Jacobi −1: the challenges change, the 4th roots no longer fit.
        let mut bad = f.proof.clone();
        bad.w = &bad.w * 4u32 % n;
        assert_check(verify_err(&bad, &st), FailureKind::Equation, check::X4);
        for i in [0, 1, M / 2, M - 1] {
            let mut bad = f.proof.clone();
            bad.responses[i].x = &bad.responses[i].x * 2u32 % n;
            assert_check(verify_err(&bad, &st), FailureKind::Equation, check::X4);
            let mut bad = f.proof.clone();
            bad.responses[i].a ^= true;
            assert_check(verify_err(&bad, &st), FailureKind::Equation, check::X4);
            let mut bad = f.proof.clone();
            bad.responses[i].b ^= true;
            assert_check(verify_err(&bad, &st), FailureKind::Equation, check::X4);
        }
        // z_i: the N-th-root equation (each costs an exponentiation per earlier repetition).
        for i in [0, 1] {
            let mut bad = f.proof.clone();
            bad.responses[i].z = &bad.responses[i].z * 2u32 % n;
            assert_check(verify_err(&bad, &st), FailureKind::Equation, check::ZN);
        }
    }

    /// AUX-06: ρ, the session id and the prover index are inside the challenge.
    #[test]
    fn aux_06_proof_from_another_context_fails() {
        let f = fixture();
        for other in other_contexts() {
            assert_check(
                f.proof.verify(&other, &statement(f)).unwrap_err(),
                FailureKind::Equation,
                check::X4,
            );
        }
    }

    #[test]
    fn proof_for_another_modulus_fails() {
        let f = fixture();
        let [p, q] = fixtures::safe_prime_pair(6);
        let other = PaillierPublicKey::from_modulus(&p * &q).unwrap();
        assert!(f.proof.verify(&ctx(), &ModStatement { n: &other }).is_err());
    }

    #[test]
    fn wrong_witness_is_refused_by_prover() {
        let f = fixture();
        let [p, q] = fixtures::safe_prime_pair(6);
        let other = PaillierPublicKey::from_modulus(&p * &q).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let err = ModProof::prove(
            &mut rng,
            &ctx(),
            &ModStatement { n: &other },
            &ModWitness { sk: &f.sk },
        )
        .unwrap_err();
        assert_check(err, FailureKind::Witness, check::WITNESS_N);
        assert_eq!(
            alloc::format!("{:?}", ModWitness { sk: &f.sk }),
            "ModWitness(<redacted>)"
        );
    }

    #[test]
    fn out_of_range_values_fail_with_range() {
        let f = fixture();
        let st = statement(f);
        let n = f.sk.public().n();
        for i in [0, M - 1] {
            for v in [n.clone(), n + 1u32, n * 2u32] {
                let mut bad = f.proof.clone();
                bad.responses[i].x = v.clone();
                assert_check(verify_err(&bad, &st), FailureKind::Range, check::X_RANGE);
                let mut bad = f.proof.clone();
                bad.responses[i].z = v;
                assert_check(verify_err(&bad, &st), FailureKind::Range, check::Z_RANGE);
            }
        }
    }

    #[test]
    fn non_unit_values_fail_with_unit() {
        let f = fixture();
        let st = statement(f);
        let (p, q) = (f.sk.p(), f.sk.q());
        for i in [0, M - 1] {
            for v in [BigUint::zero(), p.clone(), q * 7u32] {
                let mut bad = f.proof.clone();
                bad.responses[i].x = v.clone();
                assert_check(verify_err(&bad, &st), FailureKind::Unit, check::X_UNIT);
                let mut bad = f.proof.clone();
                bad.responses[i].z = v;
                assert_check(verify_err(&bad, &st), FailureKind::Unit, check::Z_UNIT);
            }
        }
    }

    /// AUX-01 (a): w = p, a prime factor of N. A prover who knows p, q makes every equation
    /// hold with b_i = 1: mod p both sides are 0 (x_i ≡ 0), mod q a_i makes (−1)^a·p·y_i a
    /// residue whose 4th root is taken. The forgery is stopped by gcd(w, N) = 1 (and would be
    /// again by Jacobi(w, N) = −1, which is 0 here, and by the unit check on x_i).
    #[test]
    fn aux_01_w_sharing_a_factor_with_n_is_rejected_by_gcd_check() {
        let f = fixture();
        let sk = &f.sk;
        let n = sk.public().n();
        let (p, q) = (sk.p(), sk.q());
        let w = p.clone();
        let ys = challenges(&ctx(), n, &w);
        let e4_q = fourth_root_exponent(q);
        let responses = ys
            .iter()
            .map(|y| {
                let py_q = p * y % q;
                let a = !is_qr_mod_prime(&py_q, q);
                let target_q = if a { q - &py_q } else { py_q };
                let x_q = target_q.modpow(&e4_q, q);
                let x = crt_combine(&BigUint::zero(), &x_q, p, q, sk.p_inv_mod_q());
                let z = sk.pow_mod_n(y, sk.n_inv_mod_phi());
                ModResponse { x, a, b: true, z }
            })
            .collect();
        let forged = ModProof { w, responses };
        // Every equation holds and the challenges are distinct: without the checks on w this
        // proof would pass the equations.
        forged.check_challenge_responses(n, &ys).unwrap();
        let err = verify_err(&forged, &statement(f));
        assert_check(err, FailureKind::Unit, check::W_UNIT);
        assert_eq!(jacobi(&forged.w, n), 0);
    }

    /// AUX-01 (b): a unit w with Jacobi(w, N) = +1 is refused by the Jacobi check.
    #[test]
    fn aux_01_w_with_jacobi_plus_one_is_rejected_by_jacobi_check() {
        let f = fixture();
        let n = f.sk.public().n();
        for w in [
            &f.proof.w * &f.proof.w % n,
            n - 1u32,
            BigUint::one(),
            BigUint::from(4u32),
        ] {
            assert_eq!(jacobi(&w, n), 1);
            let mut bad = f.proof.clone();
            bad.w = w;
            assert_check(
                verify_err(&bad, &statement(f)),
                FailureKind::Range,
                check::W_JACOBI,
            );
        }
    }

    /// AUX-01 (c): w = 0 and w ≥ N are refused by the range check.
    #[test]
    fn aux_01_w_zero_or_at_least_n_is_rejected_by_range_check() {
        let f = fixture();
        let n = f.sk.public().n();
        for w in [BigUint::zero(), n.clone(), n + 1u32, n + &f.proof.w] {
            let mut bad = f.proof.clone();
            bad.w = w;
            assert_check(
                verify_err(&bad, &statement(f)),
                FailureKind::Range,
                check::W_RANGE,
            );
        }
    }

    /// AUX-01 (d): the base-2 strong probable-prime test used for "N is not prime".
    #[test]
    fn aux_01_primality_test_accepts_primes_and_refuses_paillier_moduli() {
        let [p, q] = fixtures::safe_prime_pair(5);
        assert!(is_strong_probable_prime_base2(&p));
        assert!(is_strong_probable_prime_base2(&q));
        assert!(!is_strong_probable_prime_base2(&(&p * &q)));
        assert!(!is_strong_probable_prime_base2(&(&p * &p)));
        // Exact below 2047 (the least base-2 strong pseudoprime), checked by trial division.
        for k in 0u32..2047 {
            let is_prime = k >= 2 && (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0);
            assert_eq!(
                is_strong_probable_prime_base2(&BigUint::from(k)),
                is_prime,
                "{k}"
            );
        }
        // Carmichael numbers fool Fermat but not this test; 2047 = 23·89 is a strong
        // pseudoprime (a composite refused as "prime" errs on the safe side).
        for carmichael in [561u32, 1105, 1729, 2465, 2821, 6601, 8911] {
            assert!(!is_strong_probable_prime_base2(&BigUint::from(carmichael)));
        }
        assert!(is_strong_probable_prime_base2(&BigUint::from(2047u32)));
    }

    /// A 3072-bit prime P ≡ 3 (mod 4), found by a small sieve, the base-2 test and a few
    /// random Miller–Rabin rounds.
    fn prime_3072(rng: &mut ChaCha20Rng) -> BigUint {
        let small = crate::primes::small_odd_primes(1 << 14);
        let top = BigUint::from(3u32) << 3070u32;
        let start = (crate::arith::random_bits(rng, 3070) | top) | BigUint::from(3u32);
        let rems: Vec<u32> = small
            .iter()
            .map(|r| (&start % *r).to_u32_digits().first().copied().unwrap_or(0))
            .collect();
        for k in 0u32.. {
            if small
                .iter()
                .zip(&rems)
                .any(|(r, rem)| (u64::from(*rem) + 4 * u64::from(k)) % u64::from(*r) == 0)
            {
                continue;
            }
            let c = &start + BigUint::from(4 * k);
            if is_strong_probable_prime_base2(&c) && crate::primes::miller_rabin(rng, &c, 4) {
                return c;
            }
        }
        unreachable!()
    }

    /// AUX-01 (d): N prime is a real forgery — for a prime N ≡ 3 (mod 4) anyone can answer
    /// every challenge (b_i = 0, a_i from the Legendre symbol, z_i = y_i since N^{-1} ≡ 1 mod
    /// N − 1). It passes every other check and is stopped only by "N is not prime".
    #[test]
    fn aux_01_prime_modulus_is_rejected_by_primality_check() {
        // Seed 4 happens to start the search on a prime, which keeps this test fast.
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let big_p = prime_3072(&mut rng);
        let pk = PaillierPublicKey::from_modulus(big_p.clone()).unwrap();
        let w = loop {
            let w = random_unit(&mut rng, &big_p);
            if jacobi(&w, &big_p) == -1 {
                break w;
            }
        };
        let ys = challenges(&ctx(), &big_p, &w);
        let e4 = fourth_root_exponent(&big_p);
        let responses = ys
            .iter()
            .map(|y| {
                let a = !is_qr_mod_prime(y, &big_p);
                let x = signed_target(&big_p, &w, y, a, false).modpow(&e4, &big_p);
                ModResponse {
                    x,
                    a,
                    b: false,
                    z: y.clone(),
                }
            })
            .collect();
        let forged = ModProof { w, responses };
        forged.check_values(&big_p).unwrap();
        forged.check_challenge_responses(&big_p, &ys).unwrap();
        assert_check(
            verify_err(&forged, &ModStatement { n: &pk }),
            FailureKind::Statement,
            check::N_COMPOSITE,
        );
    }

    /// PARAM-03: the repetition count is the constant m; encodings with 127 or 129 items (or
    /// a count that does not match the items) do not decode.
    #[test]
    fn param_03_encoding_with_127_or_129_items_fails_to_decode() {
        let f = fixture();
        let encode = |count: u16, items: usize| {
            let mut w = Writer::new(tags::MOD);
            w.uint(&f.proof.w).u16(count);
            for r in f.proof.responses.iter().cycle().take(items) {
                w.uint(&r.x).u8(u8::from(r.a)).u8(u8::from(r.b)).uint(&r.z);
            }
            w.finish()
        };
        assert_eq!(ModProof::from_bytes(&encode(128, 128)).unwrap(), f.proof);
        for n in [127usize, 129, 64, 1, 0, 65_535] {
            let err = ModProof::from_bytes(&encode(n as u16, n.min(129))).unwrap_err();
            assert_eq!(
                err,
                DecodeError::WrongCount {
                    field: "m",
                    got: n,
                    expected: M
                }
            );
        }
        assert!(matches!(
            ModProof::from_bytes(&encode(128, 127)),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(
            ModProof::from_bytes(&encode(128, 129)).unwrap_err(),
            DecodeError::TrailingBytes(encode(128, 129).len() - encode(128, 128).len())
        );
    }

    /// PARAM-03: a proof value with fewer (or more) repetitions is refused by the verifier.
    #[test]
    fn param_03_proof_with_64_or_129_repetitions_is_rejected() {
        let f = fixture();
        let mut short = f.proof.clone();
        short.responses.truncate(64);
        assert_check(
            verify_err(&short, &statement(f)),
            FailureKind::Range,
            check::COUNT,
        );
        let mut long = f.proof.clone();
        long.responses.push(long.responses[0].clone());
        assert_check(
            verify_err(&long, &statement(f)),
            FailureKind::Range,
            check::COUNT,
        );
        let mut empty = f.proof.clone();
        empty.responses.clear();
        assert_check(
            verify_err(&empty, &statement(f)),
            FailureKind::Range,
            check::COUNT,
        );
    }

    /// ENC-03: the y_i come from distinct counters and are pairwise distinct; a transcript
    /// that reuses one counter yields m equal challenges, which one response answers — the
    /// verifier refuses such challenges.
    #[test]
    fn enc_03_challenges_are_from_distinct_counters_and_pairwise_distinct() {
        let f = fixture();
        let n = f.sk.public().n();
        let ys = challenges(&ctx(), n, &f.proof.w);
        assert_eq!(ys.len(), M);
        assert!(pairwise_distinct(&ys));
        for i in 0..M {
            for j in i + 1..M {
                assert_ne!(ys[i], ys[j]);
            }
        }
        let mut dup = ys.clone();
        dup[77] = dup[5].clone();
        assert!(!pairwise_distinct(&dup));
        // The flawed derivation (one counter for all): every y_i alike.
        let mut t = ctx().transcript(LABEL);
        t.append_u64(b"m", M as u64);
        t.append_uint(b"N", n);
        t.append_uint(b"w", &f.proof.w);
        let same: Vec<BigUint> = (0..M).map(|_| t.challenge_below(b"y", 0, n)).collect();
        assert_eq!(same[0], ys[0]);
        assert!(!pairwise_distinct(&same));
        // One honest response repeated m times answers those challenges equation by equation...
        let repeated = ModProof {
            w: f.proof.w.clone(),
            responses: alloc::vec![f.proof.responses[0].clone(); M],
        };
        let single = ModProof {
            w: repeated.w.clone(),
            responses: alloc::vec![repeated.responses[0].clone()],
        };
        single.check_equations(n, &same[..1]).unwrap();
        // ... but the verifier refuses repeated challenges before looking at the equations.
        assert_check(
            repeated.check_challenge_responses(n, &same).unwrap_err(),
            FailureKind::Equation,
            check::Y_DISTINCT,
        );
    }

    /// AUX-04: a 64-bit N cannot even become a statement; `from_modulus` refuses it at once.
    #[test]
    fn aux_04_64_bit_modulus_is_refused_before_anything() {
        let n = BigUint::from(4_294_967_291u64) * BigUint::from(4_294_967_279u64);
        assert_eq!(n.bits(), 64);
        let start = std::time::Instant::now();
        let err = PaillierPublicKey::from_modulus(n).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_millis(50));
        assert_eq!(
            err,
            crate::paillier::PaillierError::ModulusTooSmall { bits: 64 }
        );
    }

    /// AUX-04: every range and unit check of every repetition comes before any equation: a
    /// proof whose first equation fails and whose last z is out of range (or not a unit)
    /// reports the cheap check.
    #[test]
    fn aux_04_ranges_and_units_are_checked_before_equations() {
        let f = fixture();
        let n = f.sk.public().n();
        let mut bad = f.proof.clone();
        bad.responses[0].x = &bad.responses[0].x * 2u32 % n;
        bad.responses[M - 1].z = n.clone();
        assert_check(
            verify_err(&bad, &statement(f)),
            FailureKind::Range,
            check::Z_RANGE,
        );
        bad.responses[M - 1].z = f.sk.q().clone();
        assert_check(
            verify_err(&bad, &statement(f)),
            FailureKind::Unit,
            check::Z_UNIT,
        );
    }

    #[test]
    fn residuosity_matches_euler_criterion() {
        let [p, _] = fixtures::safe_prime_pair(5);
        let half = (&p - 1u32) >> 1;
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for _ in 0..20 {
            let a = random_below(&mut rng, &p);
            if a.is_zero() {
                continue;
            }
            assert_eq!(is_qr_mod_prime(&a, &p), a.modpow(&half, &p).is_one());
        }
        assert!(
            !is_qr_mod_prime(&(&p - 1u32), &p),
            "−1 is a non-residue mod p ≡ 3 (mod 4)"
        );
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let f = fixture();
        // Every truncation of a complete encoding with small values (same decoder paths, a
        // few KB, so all lengths are cheap)...
        let small = ModProof {
            w: BigUint::from(2u32),
            responses: (0..M as u32)
                .map(|i| ModResponse {
                    x: BigUint::from(i),
                    a: i % 2 == 0,
                    b: i % 3 == 0,
                    z: BigUint::from(300 + i),
                })
                .collect(),
        };
        let small_bytes = small.to_bytes();
        assert_eq!(ModProof::from_bytes(&small_bytes).unwrap(), small);
        for len in 0..small_bytes.len() {
            assert!(
                ModProof::from_bytes(&small_bytes[..len]).is_err(),
                "truncated at {len}"
            );
        }
        // ... and of the real ~100 KB proof: the first item entirely, the last item entirely,
        // and a stride in between (each decode reads the whole prefix).
        let bytes = f.proof.to_bytes();
        let first_item_end = 1 + 4 + f.proof.w.to_bytes_be().len() + 2 + 2 * (4 + 384) + 2;
        let lens = (0..first_item_end + 8)
            .chain((first_item_end..bytes.len()).step_by(101))
            .chain(bytes.len() - 2 * (4 + 384) - 8..bytes.len());
        for len in lens {
            assert!(
                ModProof::from_bytes(&bytes[..len]).is_err(),
                "truncated at {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            ModProof::from_bytes(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut wrong_tag = bytes.clone();
        wrong_tag[0] = tags::PRM;
        assert!(matches!(
            ModProof::from_bytes(&wrong_tag),
            Err(DecodeError::WrongTag { .. })
        ));
        // w's length prefix at bytes 1..5.
        let mut oversize = bytes.clone();
        oversize[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            ModProof::from_bytes(&oversize),
            Err(DecodeError::TooLong { field: "w", .. })
        ));
        let w_len = f.proof.w.to_bytes_be().len();
        let mut padded = Vec::new();
        padded.push(tags::MOD);
        padded.extend_from_slice(&(w_len as u32 + 1).to_be_bytes());
        padded.push(0);
        padded.extend_from_slice(&bytes[5..]);
        assert_eq!(
            ModProof::from_bytes(&padded),
            Err(DecodeError::NonCanonical { field: "w" })
        );
        // a_0 and b_0 must be 0 or 1.
        let a0 = 1 + 4 + w_len + 2 + 4 + f.proof.responses[0].x.to_bytes_be().len();
        for (offset, field) in [(a0, "a_i"), (a0 + 1, "b_i")] {
            for byte in [2u8, 0xFF] {
                let mut bad = bytes.clone();
                bad[offset] = byte;
                assert_eq!(
                    ModProof::from_bytes(&bad),
                    Err(DecodeError::NonCanonical { field })
                );
            }
        }
    }
}
