//! Πfac — no small factor (CGGMP24 Fig. 26).
//!
//! Statement: the prover's Paillier modulus N0 and the *verifier's* ring-Pedersen parameters
//! (N̂, s, t). Witness: integers p, q with N0 = p·q. The proof shows |p|, |q| ≤ 2^{ℓ+ε}·√N0, so
//! neither factor is below √N0 / 2^{ℓ+ε+1} (for a 3072-bit N0: no factor below ≈ 2^{767}),
//! which rules out the small-factor moduli of BitForge (CVE-2023-33241) (AUX-02).
//!
//! **√N0.** The paper's bounds use √N0, which is not an integer. We use the public and
//! well-defined stand-in `sqrtN0 := 2^{⌈bits(N0)/2⌉}`, with √N0 < sqrtN0 ≤ 2·√N0; prover and
//! verifier compute it identically from N0 alone ([`sqrt_n0_bits`]). The guarantee loses at
//! most one bit against the paper's.
//!
//! Prover (with ring-Pedersen commitments s^x t^y mod N̂ under the verifier's parameters):
//! 1. Samples α, β ← ±2^{ℓ+ε}·sqrtN0; μ, ν ← ±2^ℓ·N̂; σ ← ±2^ℓ·N0·N̂;
//!    r ← ±2^{ℓ+ε}·N0·N̂; x, y ← ±2^{ℓ+ε}·N̂.
//! 2. Sends P = s^p t^μ, Q = s^q t^ν, A = s^α t^x, B = s^β t^y, T = Q^α t^r (all mod N̂)
//!    and σ.
//! 3. Challenge e ← ±q = H(context, N0, N̂, s, t, P, Q, A, B, T, σ) (Fiat–Shamir).
//! 4. Sends z1 = α + e·p, z2 = β + e·q, w1 = x + e·μ, w2 = y + e·ν, v = r + e·(σ − ν·p).
//!
//! Verifier, cheap checks first (AUX-04):
//! - N̂ ≠ N0 (PARAM-02);
//! - P, Q, A, B, T ∈ Z*_N̂ (units, below N̂);
//! - |σ| ≤ 2^ℓ·N0·N̂;
//! - z1, z2 ∈ ±2^{ℓ+ε}·sqrtN0 — *the* check of AUX-02: a factor smaller than
//!   √N0 / 2^{ℓ+ε+1} forces the other one above 2^{ℓ+ε}·sqrtN0, and e times it overflows;
//! - |w1|, |w2| ≤ 2^{ℓ+ε+1}·N̂ and |v| ≤ 2^{ℓ+ε+1}·N0·N̂ (caps: honest values are masks of
//!   2^{ℓ+ε}·N̂ resp. 2^{ℓ+ε}·N0·N̂ plus e·μ, e·(σ − ν·p), each at most 2^{2ℓ+1}·N̂ resp.
//!   2^{2ℓ+1}·N0·N̂ ≤ the mask bound since ε ≥ ℓ + 1; see the compile-time assertion);
//!
//! then the challenge and the equations, all mod N̂:
//! - s^{z1} t^{w1} = A·P^e;
//! - s^{z2} t^{w2} = B·Q^e;
//! - Q^{z1} t^{v} = T·R^e with R = s^{N0} t^{σ}.

use alloc::vec::Vec;
use core::fmt;

use num_bigint::{BigInt, BigUint};
use num_traits::Zero;
use rand_core::CryptoRngCore;

use super::{ensure, tags, FailureKind, ProofContext, ProofError};
use crate::arith::{
    in_signed_bits, in_signed_range, is_unit_mod, mod_pow_signed, random_signed_bits,
    random_signed_range, SecretInt,
};
use crate::encoding::{DecodeError, Reader, Writer};
use crate::paillier::{PaillierPublicKey, PaillierSecretKey};
use crate::params::{ELL, EPSILON, MAX_MODULUS_BITS, MAX_MODULUS_BYTES};
use crate::ring_pedersen::RingPedersenParams;

const PROOF: &str = "Πfac (Fig. 26)";
const LABEL: &[u8] = b"cggmp24/pi-fac/fig26";

// The caps on w1, w2 and v hold for honest provers only if e·μ ∈ ±2^{2ℓ}·N̂ fits under the
// mask bound 2^{ℓ+ε}·N̂ with one bit to spare: |e| ≤ q < 2^ℓ, |μ| ≤ 2^ℓ·N̂, |σ − ν·p| ≤ 2^{ℓ+1}·N0·N̂.
const _: () = assert!(EPSILON > ELL);

const CHECK_DISTINCT: &str = "N̂ ≠ N0";
const CHECK_P_UNIT: &str = "P ∈ Z*_N̂";
const CHECK_Q_UNIT: &str = "Q ∈ Z*_N̂";
const CHECK_A_UNIT: &str = "A ∈ Z*_N̂";
const CHECK_B_UNIT: &str = "B ∈ Z*_N̂";
const CHECK_T_UNIT: &str = "T ∈ Z*_N̂";
const CHECK_SIGMA: &str = "σ ∈ ±2^ℓ·N0·N̂";
const CHECK_Z1: &str = "z1 ∈ ±2^{ℓ+ε}·sqrtN0";
const CHECK_Z2: &str = "z2 ∈ ±2^{ℓ+ε}·sqrtN0";
const CHECK_W1: &str = "w1 ∈ ±2^{ℓ+ε+1}·N̂";
const CHECK_W2: &str = "w2 ∈ ±2^{ℓ+ε+1}·N̂";
const CHECK_V: &str = "v ∈ ±2^{ℓ+ε+1}·N0·N̂";
const CHECK_EQ1: &str = "s^z1·t^w1 = A·P^e mod N̂";
const CHECK_EQ2: &str = "s^z2·t^w2 = B·Q^e mod N̂";
const CHECK_EQ3: &str = "Q^z1·t^v = T·(s^N0·t^σ)^e mod N̂";
const CHECK_WITNESS: &str = "N0 = p·q";

/// Bytes of a magnitude of at most `bits` bits.
const fn bytes_for_bits(bits: u32) -> usize {
    (bits as usize).div_ceil(8)
}

/// Decoding cap of σ: |σ| ≤ 2^ℓ·N0·N̂ < 2^{ℓ + 2·MAX_MODULUS_BITS}.
const SIGMA_MAX_BYTES: usize = bytes_for_bits(ELL + 2 * MAX_MODULUS_BITS);
/// Decoding cap of z1, z2: |z| ≤ 2^{ℓ+ε+⌈MAX_MODULUS_BITS/2⌉}, i.e. one bit more.
const Z_MAX_BYTES: usize = bytes_for_bits(ELL + EPSILON + MAX_MODULUS_BITS.div_ceil(2) + 1);
/// Decoding cap of w1, w2: |w| ≤ 2^{ℓ+ε+1}·N̂ < 2^{ℓ+ε+1+MAX_MODULUS_BITS}.
const W_MAX_BYTES: usize = bytes_for_bits(ELL + EPSILON + 1 + MAX_MODULUS_BITS);
/// Decoding cap of v: |v| ≤ 2^{ℓ+ε+1}·N0·N̂ < 2^{ℓ+ε+1+2·MAX_MODULUS_BITS}.
const V_MAX_BYTES: usize = bytes_for_bits(ELL + EPSILON + 1 + 2 * MAX_MODULUS_BITS);

/// ⌈bits(N0)/2⌉: the exponent of the stand-in sqrtN0 = 2^{⌈bits(N0)/2⌉} for √N0.
pub fn sqrt_n0_bits(n0: &BigUint) -> u64 {
    n0.bits().div_ceil(2)
}

/// Public input: the prover's Paillier modulus N0 and the verifier's ring-Pedersen
/// parameters (N̂, s, t).
#[derive(Clone, Copy, Debug)]
pub struct FacStatement<'a> {
    /// The prover's Paillier public key N0.
    pub n0: &'a PaillierPublicKey,
    /// The verifier's ring-Pedersen parameters (N̂, s, t).
    pub aux: &'a RingPedersenParams,
}

/// Secret input: p, q with N0 = p·q. The prover checks only the product: whether the factors
/// are large enough is exactly what the verifier checks.
pub struct FacWitness<'a> {
    /// p.
    pub p: &'a BigUint,
    /// q.
    pub q: &'a BigUint,
}

impl<'a> FacWitness<'a> {
    /// The witness (p, q) of a Paillier secret key.
    pub fn from_secret_key(sk: &'a PaillierSecretKey) -> Self {
        Self {
            p: sk.p(),
            q: sk.q(),
        }
    }
}

impl fmt::Debug for FacWitness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FacWitness(<redacted>)")
    }
}

/// A Πfac proof: first message (P, Q, A, B, T, σ) and response (z1, z2, w1, w2, v).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacProof {
    /// P = s^p t^μ mod N̂.
    pub cap_p: BigUint,
    /// Q = s^q t^ν mod N̂.
    pub cap_q: BigUint,
    /// A = s^α t^x mod N̂.
    pub cap_a: BigUint,
    /// B = s^β t^y mod N̂.
    pub cap_b: BigUint,
    /// T = Q^α t^r mod N̂.
    pub cap_t: BigUint,
    /// σ ∈ ±2^ℓ·N0·N̂.
    pub sigma: BigInt,
    /// z1 = α + e·p.
    pub z1: BigInt,
    /// z2 = β + e·q.
    pub z2: BigInt,
    /// w1 = x + e·μ.
    pub w1: BigInt,
    /// w2 = y + e·ν.
    pub w2: BigInt,
    /// v = r + e·(σ − ν·p).
    pub v: BigInt,
}

/// e ← ±q from the context, the statement (N0, N̂, s, t) and the first message
/// ([P, Q, A, B, T], σ).
fn challenge(
    ctx: &ProofContext<'_>,
    st: &FacStatement<'_>,
    [cap_p, cap_q, cap_a, cap_b, cap_t]: [&BigUint; 5],
    sigma: &BigInt,
) -> BigInt {
    let mut tr = ctx.transcript(LABEL);
    tr.append_uint(b"N0", st.n0.n());
    tr.append_uint(b"N-hat", st.aux.n());
    tr.append_uint(b"s", st.aux.s());
    tr.append_uint(b"t", st.aux.t());
    tr.append_uint(b"P", cap_p);
    tr.append_uint(b"Q", cap_q);
    tr.append_uint(b"A", cap_a);
    tr.append_uint(b"B", cap_b);
    tr.append_uint(b"T", cap_t);
    tr.append_int(b"sigma", sigma);
    tr.challenge_signed_q(b"e")
}

/// t^y mod N̂ for a signed y.
fn t_pow(aux: &RingPedersenParams, y: &BigInt) -> BigUint {
    aux.commit(&BigInt::zero(), y)
}

impl FacProof {
    /// Proves that N0 = p·q has no small factor, against the verifier's (N̂, s, t).
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &FacStatement<'_>,
        w: &FacWitness<'_>,
    ) -> Result<Self, ProofError> {
        let n0 = st.n0.n();
        ensure(
            &(w.p * w.q) == n0,
            PROOF,
            FailureKind::Witness,
            CHECK_WITNESS,
        )?;
        let aux = st.aux;
        let nhat = aux.n();
        let n0_nhat = n0 * nhat;
        let mask_bits = u64::from(ELL + EPSILON) + sqrt_n0_bits(n0);

        let p = SecretInt::new(BigInt::from(w.p.clone()));
        let q = SecretInt::new(BigInt::from(w.q.clone()));
        let alpha = SecretInt::new(random_signed_bits(rng, mask_bits));
        let beta = SecretInt::new(random_signed_bits(rng, mask_bits));
        let mu = SecretInt::new(random_signed_range(rng, &(nhat << ELL)));
        let nu = SecretInt::new(random_signed_range(rng, &(nhat << ELL)));
        let sigma = random_signed_range(rng, &(&n0_nhat << ELL));
        let r = SecretInt::new(random_signed_range(rng, &(&n0_nhat << (ELL + EPSILON))));
        let x = SecretInt::new(random_signed_range(rng, &(nhat << (ELL + EPSILON))));
        let y = SecretInt::new(random_signed_range(rng, &(nhat << (ELL + EPSILON))));

        let cap_p = aux.commit(p.expose(), mu.expose());
        let cap_q = aux.commit(q.expose(), nu.expose());
        let cap_a = aux.commit(alpha.expose(), x.expose());
        let cap_b = aux.commit(beta.expose(), y.expose());
        // Q is a unit (s, t are), so Q^α exists for negative α too.
        let q_alpha = mod_pow_signed(&cap_q, alpha.expose(), nhat).ok_or(ProofError::new(
            PROOF,
            FailureKind::Statement,
            CHECK_Q_UNIT,
        ))?;
        let cap_t = q_alpha * t_pow(aux, r.expose()) % nhat;

        let e = challenge(ctx, st, [&cap_p, &cap_q, &cap_a, &cap_b, &cap_t], &sigma);
        let z1 = alpha.expose() + &e * p.expose();
        let z2 = beta.expose() + &e * q.expose();
        let w1 = x.expose() + &e * mu.expose();
        let w2 = y.expose() + &e * nu.expose();
        let sigma_hat = SecretInt::new(&sigma - nu.expose() * p.expose());
        let v = r.expose() + &e * sigma_hat.expose();
        Ok(Self {
            cap_p,
            cap_q,
            cap_a,
            cap_b,
            cap_t,
            sigma,
            z1,
            z2,
            w1,
            w2,
            v,
        })
    }

    /// Verifies the proof against the statement; the ring-Pedersen parameters must be the
    /// verifier's own.
    pub fn verify(&self, ctx: &ProofContext<'_>, st: &FacStatement<'_>) -> Result<(), ProofError> {
        let n0 = st.n0.n();
        let aux = st.aux;
        let nhat = aux.n();
        ensure(nhat != n0, PROOF, FailureKind::Statement, CHECK_DISTINCT)?;

        // Cheap checks (AUX-04): unit-ness and ranges, before any exponentiation.
        for (value, check) in [
            (&self.cap_p, CHECK_P_UNIT),
            (&self.cap_q, CHECK_Q_UNIT),
            (&self.cap_a, CHECK_A_UNIT),
            (&self.cap_b, CHECK_B_UNIT),
            (&self.cap_t, CHECK_T_UNIT),
        ] {
            ensure(is_unit_mod(value, nhat), PROOF, FailureKind::Unit, check)?;
        }
        let n0_nhat = n0 * nhat;
        ensure(
            in_signed_range(&self.sigma, &(&n0_nhat << ELL)),
            PROOF,
            FailureKind::Range,
            CHECK_SIGMA,
        )?;
        let z_bits = u64::from(ELL + EPSILON) + sqrt_n0_bits(n0);
        ensure(
            in_signed_bits(&self.z1, z_bits),
            PROOF,
            FailureKind::Range,
            CHECK_Z1,
        )?;
        ensure(
            in_signed_bits(&self.z2, z_bits),
            PROOF,
            FailureKind::Range,
            CHECK_Z2,
        )?;
        let w_cap = nhat << (ELL + EPSILON + 1);
        ensure(
            in_signed_range(&self.w1, &w_cap),
            PROOF,
            FailureKind::Range,
            CHECK_W1,
        )?;
        ensure(
            in_signed_range(&self.w2, &w_cap),
            PROOF,
            FailureKind::Range,
            CHECK_W2,
        )?;
        ensure(
            in_signed_range(&self.v, &(&n0_nhat << (ELL + EPSILON + 1))),
            PROOF,
            FailureKind::Range,
            CHECK_V,
        )?;

        let e = challenge(
            ctx,
            st,
            [
                &self.cap_p,
                &self.cap_q,
                &self.cap_a,
                &self.cap_b,
                &self.cap_t,
            ],
            &self.sigma,
        );

        // s^{z1} t^{w1} = A·P^e
        let lhs = aux.commit(&self.z1, &self.w1);
        let rhs = aux
            .mul_pow(&self.cap_a, &self.cap_p, &e)
            .ok_or(ProofError::new(PROOF, FailureKind::Unit, CHECK_P_UNIT))?;
        ensure(lhs == rhs, PROOF, FailureKind::Equation, CHECK_EQ1)?;
        // s^{z2} t^{w2} = B·Q^e
        let lhs = aux.commit(&self.z2, &self.w2);
        let rhs = aux
            .mul_pow(&self.cap_b, &self.cap_q, &e)
            .ok_or(ProofError::new(PROOF, FailureKind::Unit, CHECK_Q_UNIT))?;
        ensure(lhs == rhs, PROOF, FailureKind::Equation, CHECK_EQ2)?;
        // Q^{z1} t^{v} = T·R^e, R = s^{N0} t^{σ}
        let q_z1 = aux.pow_any(&self.cap_q, &self.z1).ok_or(ProofError::new(
            PROOF,
            FailureKind::Unit,
            CHECK_Q_UNIT,
        ))?;
        let lhs = q_z1 * t_pow(aux, &self.v) % nhat;
        let cap_r = aux.commit(&BigInt::from(n0.clone()), &self.sigma);
        let rhs = aux.mul_pow(&self.cap_t, &cap_r, &e).ok_or(ProofError::new(
            PROOF,
            FailureKind::Unit,
            CHECK_T_UNIT,
        ))?;
        ensure(lhs == rhs, PROOF, FailureKind::Equation, CHECK_EQ3)
    }

    /// Canonical encoding: tag, P, Q, A, B, T (unsigned, ≤ [`MAX_MODULUS_BYTES`] each), then
    /// σ, z1, z2, w1, w2, v (signed, each capped by its range bound for the largest moduli).
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::FAC)
            .uint(&self.cap_p)
            .uint(&self.cap_q)
            .uint(&self.cap_a)
            .uint(&self.cap_b)
            .uint(&self.cap_t)
            .int(&self.sigma)
            .int(&self.z1)
            .int(&self.z2)
            .int(&self.w1)
            .int(&self.w2)
            .int(&self.v)
            .finish()
    }

    /// Decodes the canonical encoding, rejecting anything else (never panics, caps every
    /// length before allocating).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::FAC)?;
        let cap_p = r.uint("P", MAX_MODULUS_BYTES)?;
        let cap_q = r.uint("Q", MAX_MODULUS_BYTES)?;
        let cap_a = r.uint("A", MAX_MODULUS_BYTES)?;
        let cap_b = r.uint("B", MAX_MODULUS_BYTES)?;
        let cap_t = r.uint("T", MAX_MODULUS_BYTES)?;
        let sigma = r.int("sigma", SIGMA_MAX_BYTES)?;
        let z1 = r.int("z1", Z_MAX_BYTES)?;
        let z2 = r.int("z2", Z_MAX_BYTES)?;
        let w1 = r.int("w1", W_MAX_BYTES)?;
        let w2 = r.int("w2", W_MAX_BYTES)?;
        let v = r.int("v", V_MAX_BYTES)?;
        r.finish()?;
        Ok(Self {
            cap_p,
            cap_q,
            cap_a,
            cap_b,
            cap_t,
            sigma,
            z1,
            z2,
            w1,
            w2,
            v,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::primes::{is_probable_prime, miller_rabin};
    use crate::ring_pedersen::RingPedersenSecret;
    use crate::zk::testing::{ctx, other_contexts};
    use num_traits::One;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::OnceLock;

    type Tamper = fn(&mut FacProof, &BigInt);
    type IntField = fn(&mut FacProof) -> &mut BigInt;
    type UintField = fn(&mut FacProof) -> &mut BigUint;

    struct Fixture {
        sk: PaillierSecretKey,
        aux: RingPedersenParams,
        /// The verifier's N̂ = p̂·q̂ (for non-unit tests).
        aux_p: BigUint,
        other_aux: RingPedersenParams,
        other_pk: PaillierPublicKey,
        proof: FacProof,
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let mut rng = ChaCha20Rng::seed_from_u64(26);
            let [p, q] = fixtures::safe_prime_pair(2);
            let sk = PaillierSecretKey::from_primes(p, q).unwrap();
            let [ap, aq] = fixtures::safe_prime_pair(3);
            let (aux, _) = RingPedersenSecret::generate(&mut rng, &ap, &aq).unwrap();
            let [bp, bq] = fixtures::safe_prime_pair(4);
            let (other_aux, _) = RingPedersenSecret::generate(&mut rng, &bp, &bq).unwrap();
            let [cp, cq] = fixtures::safe_prime_pair(5);
            let other_pk = PaillierPublicKey::from_modulus(cp * cq).unwrap();
            let st = FacStatement {
                n0: sk.public(),
                aux: &aux,
            };
            let proof =
                FacProof::prove(&mut rng, &ctx(), &st, &FacWitness::from_secret_key(&sk)).unwrap();
            Fixture {
                sk,
                aux,
                aux_p: ap,
                other_aux,
                other_pk,
                proof,
            }
        })
    }

    fn statement(f: &Fixture) -> FacStatement<'_> {
        FacStatement {
            n0: f.sk.public(),
            aux: &f.aux,
        }
    }

    /// The three equations, recomputed independently of `verify` (for forgeries that must be
    /// stopped by a range check alone).
    fn equations_hold(proof: &FacProof, ctx: &ProofContext<'_>, st: &FacStatement<'_>) -> bool {
        let aux = st.aux;
        let nhat = aux.n();
        let e = challenge(
            ctx,
            st,
            [
                &proof.cap_p,
                &proof.cap_q,
                &proof.cap_a,
                &proof.cap_b,
                &proof.cap_t,
            ],
            &proof.sigma,
        );
        let pow = |b: &BigUint, x: &BigInt| mod_pow_signed(b, x, nhat).unwrap();
        let eq1 = pow(aux.s(), &proof.z1) * pow(aux.t(), &proof.w1) % nhat
            == &proof.cap_a * pow(&proof.cap_p, &e) % nhat;
        let eq2 = pow(aux.s(), &proof.z2) * pow(aux.t(), &proof.w2) % nhat
            == &proof.cap_b * pow(&proof.cap_q, &e) % nhat;
        let cap_r =
            pow(aux.s(), &BigInt::from(st.n0.n().clone())) * pow(aux.t(), &proof.sigma) % nhat;
        let eq3 = pow(&proof.cap_q, &proof.z1) * pow(aux.t(), &proof.v) % nhat
            == &proof.cap_t * pow(&cap_r, &e) % nhat;
        eq1 && eq2 && eq3
    }

    #[test]
    fn honest_proof_verifies_and_round_trips() {
        let f = fixture();
        let st = statement(f);
        f.proof.verify(&ctx(), &st).unwrap();
        assert!(equations_hold(&f.proof, &ctx(), &st));
        let decoded = FacProof::from_bytes(&f.proof.to_bytes()).unwrap();
        assert_eq!(decoded, f.proof);
        decoded.verify(&ctx(), &st).unwrap();
        // Honest responses are inside the verifier's caps with room (they are the masks' size).
        let nhat = f.aux.n();
        assert!(f.proof.w1.magnitude() <= &(nhat << (ELL + EPSILON + 1)));
        assert!(f.proof.v.magnitude() <= &((f.sk.public().n() * nhat) << (ELL + EPSILON + 1)));
    }

    #[test]
    fn tampered_fields_fail() {
        let f = fixture();
        let st = statement(f);
        let one = BigInt::one();
        let tampers: [(&str, Tamper); 11] = [
            ("P", |p, d| p.cap_p += d.magnitude()),
            ("Q", |p, d| p.cap_q += d.magnitude()),
            ("A", |p, d| p.cap_a += d.magnitude()),
            ("B", |p, d| p.cap_b += d.magnitude()),
            ("T", |p, d| p.cap_t += d.magnitude()),
            ("sigma", |p, d| p.sigma += d),
            ("z1", |p, d| p.z1 += d),
            ("z2", |p, d| p.z2 += d),
            ("w1", |p, d| p.w1 += d),
            ("w2", |p, d| p.w2 += d),
            ("v", |p, d| p.v += d),
        ];
        for (name, tamper) in tampers {
            let mut bad = f.proof.clone();
            tamper(&mut bad, &one);
            let err = bad.verify(&ctx(), &st).unwrap_err();
            assert_eq!(err.kind, FailureKind::Equation, "{name}: {err}");
        }
    }

    /// ENC-02, AUX-06: the challenge covers N0, N̂, s, t, the session, the prover and ρ.
    #[test]
    fn enc_02_proof_for_other_statement_or_context_fails() {
        let f = fixture();
        let st = statement(f);
        for other in other_contexts() {
            assert_eq!(
                f.proof.verify(&other, &st).unwrap_err().kind,
                FailureKind::Equation
            );
        }
        assert!(f
            .proof
            .verify(
                &ctx(),
                &FacStatement {
                    n0: &f.other_pk,
                    aux: &f.aux
                }
            )
            .is_err());
        assert!(f
            .proof
            .verify(
                &ctx(),
                &FacStatement {
                    n0: f.sk.public(),
                    aux: &f.other_aux
                }
            )
            .is_err());
        // Same N̂, one base changed.
        let nhat = f.aux.n().clone();
        let s2 = f.aux.s() * f.aux.t() % &nhat;
        let t2 = f.aux.t() * f.aux.t() % &nhat;
        let aux_s = RingPedersenParams::new(nhat.clone(), s2, f.aux.t().clone()).unwrap();
        let aux_t = RingPedersenParams::new(nhat, f.aux.s().clone(), t2).unwrap();
        for aux in [&aux_s, &aux_t] {
            let err = f
                .proof
                .verify(
                    &ctx(),
                    &FacStatement {
                        n0: f.sk.public(),
                        aux,
                    },
                )
                .unwrap_err();
            assert_eq!(err.kind, FailureKind::Equation);
        }
    }

    /// AUX-02 (1): the proof is made and verified under the *verifier's* ring-Pedersen
    /// parameters; under any other parameters it fails.
    #[test]
    fn aux_02_verifies_only_against_the_verifiers_own_ring_pedersen_params() {
        let f = fixture();
        f.proof.verify(&ctx(), &statement(f)).unwrap();
        assert!(f
            .proof
            .verify(
                &ctx(),
                &FacStatement {
                    n0: f.sk.public(),
                    aux: &f.other_aux
                }
            )
            .is_err());
        // A proof made for the other verifier verifies there and not here.
        let mut rng = ChaCha20Rng::seed_from_u64(2601);
        let st_other = FacStatement {
            n0: f.sk.public(),
            aux: &f.other_aux,
        };
        let proof = FacProof::prove(
            &mut rng,
            &ctx(),
            &st_other,
            &FacWitness::from_secret_key(&f.sk),
        )
        .unwrap();
        proof.verify(&ctx(), &st_other).unwrap();
        assert!(proof.verify(&ctx(), &statement(f)).is_err());
    }

    /// Runs the honest prover on a cheating factorisation of `n0` and returns the verifier's
    /// error, after checking the forgery satisfies every equation (only a range check stops it).
    fn forge(seed: u64, n0: &BigUint, p: &BigUint, q: &BigUint) -> ProofError {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let pk = PaillierPublicKey::from_modulus(n0.clone()).unwrap();
        let st = FacStatement {
            n0: &pk,
            aux: &f.aux,
        };
        let proof = FacProof::prove(&mut rng, &ctx(), &st, &FacWitness { p, q }).unwrap();
        assert!(
            equations_hold(&proof, &ctx(), &st),
            "the forgery satisfies every equation"
        );
        let err = proof.verify(&ctx(), &st).unwrap_err();
        assert_eq!(err.kind, FailureKind::Range);
        err
    }

    /// AUX-02 (2), BitForge: N0' = 65537·p·q (3089 bits) with the claimed split (65537, p·q).
    /// The forgery passes every unit check and every equation; z2 = β + e·p·q is ~2^{3300}
    /// against the bound 2^{ℓ+ε}·sqrtN0 = 2^{2313}. The swapped split is caught on z1.
    #[test]
    fn aux_02_small_factor_65537_is_rejected_on_z2_range() {
        let [p, q] = fixtures::safe_prime_pair(6);
        let r = BigUint::from(65_537u32);
        let n0 = &r * &p * &q;
        assert!(n0.bits() > 3072);
        let pq = &p * &q;
        assert_eq!(forge(2602, &n0, &r, &pq).check, CHECK_Z2);
        assert_eq!(forge(2603, &n0, &pq, &r).check, CHECK_Z1);
    }

    /// AUX-02 (2) with a 256-bit prime factor r (found with `is_probable_prime`).
    #[test]
    fn aux_02_small_factor_256_bit_prime_is_rejected_on_z2_range() {
        let mut rng = ChaCha20Rng::seed_from_u64(2604);
        let mut r =
            crate::arith::random_bits(&mut rng, 256) | (BigUint::one() << 255u32) | BigUint::one();
        while !is_probable_prime(&mut rng, &r) {
            r += 2u32;
        }
        assert_eq!(r.bits(), 256);
        let [p, q] = fixtures::safe_prime_pair(6);
        let n0 = &r * &p * &q;
        assert!(n0.bits() >= 3072 + 255);
        assert_eq!(forge(2605, &n0, &r, &(&p * &q)).check, CHECK_Z2);
    }

    /// Mersenne primes 2^k − 1 (known primes; re-checked with a few Miller–Rabin rounds).
    fn mersenne(k: u32) -> BigUint {
        let m = (BigUint::one() << k) - 1u32;
        assert!(miller_rabin(
            &mut ChaCha20Rng::seed_from_u64(u64::from(k)),
            &m,
            2
        ));
        m
    }

    /// AUX-02 (3): N0 = p·q with an unbalanced split, p = 2^521 − 1 and q = 2^3217 − 1 (both
    /// prime, N0 of 3738 bits): q exceeds 2^{ℓ+ε}·sqrtN0 = 2^{2637}, rejected on z2.
    #[test]
    fn aux_02_unbalanced_split_is_rejected_on_z2_range() {
        let (p, q) = (mersenne(521), mersenne(3217));
        let n0 = &p * &q;
        assert_eq!(n0.bits(), 3738);
        assert_eq!(forge(2606, &n0, &p, &q).check, CHECK_Z2);
    }

    /// What Πfac guarantees, pinned: every factor is at least √N0 / 2^{ℓ+ε+1}, not that the
    /// split is balanced. N0 = (2^1279 − 1)(2^2203 − 1) has 3482 bits, its smaller factor
    /// 1279 ≥ 1741 − 769 bits, so the honest proof for it verifies.
    #[test]
    fn aux_02_bound_is_no_factor_below_sqrt_n0_over_2_pow_ell_eps() {
        let f = fixture();
        let (p, q) = (mersenne(1279), mersenne(2203));
        let n0 = &p * &q;
        let pk = PaillierPublicKey::from_modulus(n0).unwrap();
        let st = FacStatement {
            n0: &pk,
            aux: &f.aux,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(2607);
        FacProof::prove(&mut rng, &ctx(), &st, &FacWitness { p: &p, q: &q })
            .unwrap()
            .verify(&ctx(), &st)
            .unwrap();
    }

    #[test]
    fn wrong_witness_is_refused_by_prover() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(2608);
        let p = f.sk.p() + 2u32;
        let err = FacProof::prove(
            &mut rng,
            &ctx(),
            &statement(f),
            &FacWitness { p: &p, q: f.sk.q() },
        )
        .unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Witness, CHECK_WITNESS));
        let w = FacWitness::from_secret_key(&f.sk);
        let shown = format!("{w:?}");
        assert_eq!(shown, "FacWitness(<redacted>)");
    }

    /// PARAM-02 at verification: the verifier's N̂ must not be the prover's N0.
    #[test]
    fn ring_pedersen_modulus_equal_to_n0_is_refused() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(2609);
        let (same, _) = RingPedersenSecret::generate(&mut rng, f.sk.p(), f.sk.q()).unwrap();
        let err = f
            .proof
            .verify(
                &ctx(),
                &FacStatement {
                    n0: f.sk.public(),
                    aux: &same,
                },
            )
            .unwrap_err();
        assert_eq!(
            (err.kind, err.check),
            (FailureKind::Statement, CHECK_DISTINCT)
        );
    }

    /// AUX-04: every response is range-checked before the challenge and the equations: at the
    /// bound the value passes the range check (and fails an equation), one above it fails
    /// with Range. Rejection costs no exponentiation (timed against an honest verification).
    #[test]
    fn aux_04_out_of_range_responses_are_rejected_before_equations() {
        let f = fixture();
        let st = statement(f);
        let n0 = f.sk.public().n();
        let nhat = f.aux.n();
        let n0_nhat = n0 * nhat;
        let z_bound = BigUint::one() << (u64::from(ELL + EPSILON) + sqrt_n0_bits(n0));
        let cases: [(&str, BigUint, IntField); 6] = [
            (CHECK_SIGMA, &n0_nhat << ELL, |p| &mut p.sigma),
            (CHECK_Z1, z_bound.clone(), |p| &mut p.z1),
            (CHECK_Z2, z_bound, |p| &mut p.z2),
            (CHECK_W1, nhat << (ELL + EPSILON + 1), |p| &mut p.w1),
            (CHECK_W2, nhat << (ELL + EPSILON + 1), |p| &mut p.w2),
            (CHECK_V, &n0_nhat << (ELL + EPSILON + 1), |p| &mut p.v),
        ];
        for (check, bound, field) in cases {
            for sign in [1i32, -1] {
                let at = BigInt::from(bound.clone()) * sign;
                let mut bad = f.proof.clone();
                *field(&mut bad) = at.clone();
                assert_eq!(
                    bad.verify(&ctx(), &st).unwrap_err().kind,
                    FailureKind::Equation,
                    "{check} at the bound"
                );
                *field(&mut bad) = at + sign;
                let err = bad.verify(&ctx(), &st).unwrap_err();
                assert_eq!((err.kind, err.check), (FailureKind::Range, check));
            }
        }
        // Cheap: rejecting a huge z1 costs far less than one honest verification.
        let mut huge = f.proof.clone();
        huge.z1 = BigInt::one() << 20_000u32;
        let start = std::time::Instant::now();
        f.proof.verify(&ctx(), &st).unwrap();
        let honest = start.elapsed();
        let start = std::time::Instant::now();
        for _ in 0..10 {
            assert_eq!(huge.verify(&ctx(), &st).unwrap_err().check, CHECK_Z1);
        }
        assert!(
            start.elapsed() < honest,
            "10 range rejections {:?} vs one verification {honest:?}",
            start.elapsed()
        );
    }

    /// AUX-04: P, Q, A, B, T must be units of Z*_N̂ (0, N̂, a multiple of a factor of N̂, and
    /// values ≥ N̂ are refused) before any exponentiation.
    #[test]
    fn aux_04_non_unit_commitments_are_rejected() {
        let f = fixture();
        let st = statement(f);
        let nhat = f.aux.n();
        let cases: [(&str, UintField); 5] = [
            (CHECK_P_UNIT, |p| &mut p.cap_p),
            (CHECK_Q_UNIT, |p| &mut p.cap_q),
            (CHECK_A_UNIT, |p| &mut p.cap_a),
            (CHECK_B_UNIT, |p| &mut p.cap_b),
            (CHECK_T_UNIT, |p| &mut p.cap_t),
        ];
        for (check, field) in cases {
            let good = field(&mut f.proof.clone()).clone();
            for value in [
                BigUint::zero(),
                nhat.clone(),
                f.aux_p.clone(),
                &f.aux_p * 3u32,
                nhat + &good,
            ] {
                let mut bad = f.proof.clone();
                *field(&mut bad) = value;
                let err = bad.verify(&ctx(), &st).unwrap_err();
                assert_eq!((err.kind, err.check), (FailureKind::Unit, check));
            }
        }
    }

    /// Malformed encodings are rejected without panic (AUX-04: length caps apply before
    /// allocation).
    #[test]
    fn aux_04_malformed_encodings_are_rejected() {
        let f = fixture();
        let bytes = f.proof.to_bytes();
        for len in 0..bytes.len() {
            assert!(
                FacProof::from_bytes(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            FacProof::from_bytes(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut tag = bytes.clone();
        tag[0] = tags::ENC_ELG;
        assert!(matches!(
            FacProof::from_bytes(&tag),
            Err(DecodeError::WrongTag { .. })
        ));
        // Oversize length prefix of P: refused before reading (or allocating) the body.
        let mut oversize = bytes.clone();
        oversize[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            FacProof::from_bytes(&oversize),
            Err(DecodeError::TooLong { field: "P", .. })
        ));
        let mut just_over = bytes.clone();
        just_over[1..5].copy_from_slice(&((MAX_MODULUS_BYTES + 1) as u32).to_be_bytes());
        assert!(matches!(
            FacProof::from_bytes(&just_over),
            Err(DecodeError::TooLong { field: "P", .. })
        ));
        // Non-canonical P: a leading zero byte.
        let p_len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let mut padded = bytes[..1].to_vec();
        padded.extend_from_slice(&(p_len + 1).to_be_bytes());
        padded.push(0);
        padded.extend_from_slice(&bytes[5..]);
        assert_eq!(
            FacProof::from_bytes(&padded),
            Err(DecodeError::NonCanonical { field: "P" })
        );
        // Signed fields: −0, a bad sign byte, and z1 longer than its cap.
        let p = &f.proof;
        let with = |sigma_sign: u8, sigma: &BigUint, z1: &BigInt| {
            let mut w = Writer::new(tags::FAC);
            w.uint(&p.cap_p)
                .uint(&p.cap_q)
                .uint(&p.cap_a)
                .uint(&p.cap_b)
                .uint(&p.cap_t);
            w.u8(sigma_sign).uint(sigma);
            w.int(z1).int(&p.z2).int(&p.w1).int(&p.w2).int(&p.v);
            w.finish()
        };
        let sign = u8::from(p.sigma.sign() == num_bigint::Sign::Minus);
        assert_eq!(
            FacProof::from_bytes(&with(sign, p.sigma.magnitude(), &p.z1)).unwrap(),
            *p
        );
        assert_eq!(
            FacProof::from_bytes(&with(1, &BigUint::zero(), &p.z1)),
            Err(DecodeError::NonCanonical { field: "sigma" })
        );
        assert_eq!(
            FacProof::from_bytes(&with(2, p.sigma.magnitude(), &p.z1)),
            Err(DecodeError::NonCanonical { field: "sigma" })
        );
        let too_long = BigInt::one() << (8 * Z_MAX_BYTES as u32);
        assert!(matches!(
            FacProof::from_bytes(&with(sign, p.sigma.magnitude(), &too_long)),
            Err(DecodeError::TooLong { field: "z1", .. })
        ));
    }
}
