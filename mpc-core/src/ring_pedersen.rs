//! Ring-Pedersen parameters (N̂, s, t) and commitments s^x·t^y mod N̂ (CGGMP24 Def. 2.4, Fig. 7).
//!
//! N̂ is a biprime made of two safe primes *different from* the Paillier ones (PARAM-02);
//! t = r² mod N̂ for a random unit r and s = t^λ for a secret λ ← Z_{φ(N̂)}. Knowledge of λ
//! (and of the factorisation) is proven with Πprm (Fig. 13).

//!
//! Speed: exponentiations with s and t can use two accelerators, chosen once per epoch and
//! invisible to the proofs (they call [`RingPedersenParams::commit`] and friends):
//! - [`RingPedersenParams::with_tables`] for a *peer's* parameters (the prover's side of
//!   Πenc-elg, Πaff-g, Πfac, and the verifier's side of Πprm): fixed-base tables for
//!   s, t, s⁻¹, t⁻¹ ([`crate::fixed_base`]);
//! - [`RingPedersenSecret::owner_params`] for one's *own* parameters (the verifier's side of
//!   Πenc-elg, Πaff-g, Πfac): s^x·t^y = t^{λx+y} computed modulo p̂ and q̂ with the exponent
//!   reduced mod p̂−1, q̂−1 (CRT), from fixed-base tables of t mod p̂ and t mod q̂.
//!
//! Both give bit-identical results to the plain computation (tests compare them).

use alloc::sync::Arc;
use core::fmt;

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::One;
use rand_core::CryptoRngCore;

use crate::arith::{
    crt_combine, is_unit_mod, mod_inverse, random_below, random_unit, SecretInt, SecretUint,
};
use crate::fixed_base::{multi_pow, FixedBaseTable};
use crate::monty::Montgomery;
use crate::params::{ELL, ELL_PRIME, EPSILON, MAX_MODULUS_BITS, MIN_MODULUS_BITS};

/// Why ring-Pedersen parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingPedersenError {
    /// N̂ is shorter than [`MIN_MODULUS_BITS`] or longer than [`MAX_MODULUS_BITS`].
    #[error(
        "ring-Pedersen modulus has {bits} bits, outside [{MIN_MODULUS_BITS}, {MAX_MODULUS_BITS}]"
    )]
    ModulusSize {
        /// Bits of the refused modulus.
        bits: u64,
    },
    /// N̂ is even.
    #[error("ring-Pedersen modulus is even")]
    EvenModulus,
    /// s or t is not a unit of Z*_N̂, or is ±1.
    #[error("ring-Pedersen {0} is not a non-trivial unit modulo N̂")]
    BadBase(&'static str),
    /// N̂ equals the Paillier modulus N of the same party (PARAM-02).
    #[error("ring-Pedersen modulus equals the Paillier modulus")]
    SameAsPaillier,
    /// The primes given are equal or do not multiply to an acceptable modulus.
    #[error("primes do not form a ring-Pedersen modulus: {0}")]
    BadPrimes(&'static str),
}

/// Public ring-Pedersen parameters (N̂, s, t), validated.
///
/// Equality compares (N̂, s, t) only, not the accelerator attached.
#[derive(Clone)]
pub struct RingPedersenParams {
    n: BigUint,
    s: BigUint,
    t: BigUint,
    s_inv: BigUint,
    t_inv: BigUint,
    accel: Option<Arc<Accelerator>>,
}

impl PartialEq for RingPedersenParams {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.s == other.s && self.t == other.t
    }
}

impl Eq for RingPedersenParams {}

impl fmt::Debug for RingPedersenParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.accel.as_deref() {
            None => "",
            Some(Accelerator::Tables { .. }) => ", fixed-base tables",
            Some(Accelerator::Owner(_)) => ", owner CRT",
        };
        write!(f, "RingPedersenParams({} bits{how})", self.n.bits())
    }
}

/// How exponentiations with s and t are sped up (see the module documentation).
enum Accelerator {
    /// Fixed-base tables of s, t, s⁻¹, t⁻¹ modulo N̂ (public).
    Tables {
        s: FixedBaseTable,
        t: FixedBaseTable,
        s_inv: FixedBaseTable,
        t_inv: FixedBaseTable,
    },
    /// The owner's CRT with λ (secret).
    Owner(OwnerCrt),
}

/// The owner's view: s^x·t^y = t^{λx+y}, evaluated mod p̂ and q̂.
struct OwnerCrt {
    p: SecretUint,
    q: SecretUint,
    p_minus_1: SecretInt,
    q_minus_1: SecretInt,
    lambda: SecretInt,
    p_inv_mod_q: SecretUint,
    mont_p: Montgomery,
    mont_q: Montgomery,
    t_mod_p: FixedBaseTable,
    t_mod_q: FixedBaseTable,
}

impl OwnerCrt {
    /// base^e mod N̂ for a unit base and a signed exponent, by the CRT.
    fn pow(&self, base: &BigUint, e: &BigInt) -> BigUint {
        let e_p = SecretUint::new(e.mod_floor(self.p_minus_1.expose()).magnitude().clone());
        let e_q = SecretUint::new(e.mod_floor(self.q_minus_1.expose()).magnitude().clone());
        let r_p = self
            .mont_p
            .pow_fixed_bits(base, e_p.expose(), self.p.expose().bits() as usize);
        let r_q = self
            .mont_q
            .pow_fixed_bits(base, e_q.expose(), self.q.expose().bits() as usize);
        crt_combine(
            &r_p,
            &r_q,
            self.p.expose(),
            self.q.expose(),
            self.p_inv_mod_q.expose(),
        )
    }

    /// s^x·t^y = t^{λx + y} mod N̂.
    fn commit(&self, x: &BigInt, y: &BigInt) -> BigUint {
        let e = SecretInt::new(self.lambda.expose() * x + y);
        let e_p = SecretUint::new(
            e.expose()
                .mod_floor(self.p_minus_1.expose())
                .magnitude()
                .clone(),
        );
        let e_q = SecretUint::new(
            e.expose()
                .mod_floor(self.q_minus_1.expose())
                .magnitude()
                .clone(),
        );
        crt_combine(
            &self.t_mod_p.pow(e_p.expose()),
            &self.t_mod_q.pow(e_q.expose()),
            self.p.expose(),
            self.q.expose(),
            self.p_inv_mod_q.expose(),
        )
    }
}

/// The longest exponent a peer's tables cover: Πfac's t^r with r ∈ ±2^{ℓ+ε}·N0·N̂ is the
/// longest use (two moduli plus ℓ+ε bits); ℓ'+ε covers the rest with margin.
fn table_bits(n: &BigUint) -> usize {
    2 * n.bits() as usize + (ELL_PRIME + EPSILON) as usize + 64
}

/// The longest exponent of s a peer's tables cover: Πfac's α, β ∈ ±2^{ℓ+ε}·√N0 with N0 of at
/// most [`MAX_MODULUS_BITS`] is the longest (the other proofs raise s to at most ℓ'+ε bits);
/// s is never raised to a multiple of a modulus, so its tables can be less than half as long
/// as t's. A longer exponent still works, through a plain exponentiation.
fn s_table_bits() -> usize {
    (ELL + EPSILON) as usize + MAX_MODULUS_BITS as usize / 2 + 64
}

impl RingPedersenParams {
    /// Validates (N̂, s, t): size, oddness, and that s and t are units other than ±1. These are
    /// the cheap checks of AUX-04, made before any proof is verified.
    pub fn new(n: BigUint, s: BigUint, t: BigUint) -> Result<Self, RingPedersenError> {
        let bits = n.bits();
        if bits < u64::from(MIN_MODULUS_BITS) || bits > u64::from(MAX_MODULUS_BITS) {
            return Err(RingPedersenError::ModulusSize { bits });
        }
        if n.is_even() {
            return Err(RingPedersenError::EvenModulus);
        }
        let minus_one = &n - 1u32;
        for (name, v) in [("s", &s), ("t", &t)] {
            if !is_unit_mod(v, &n) || v.is_one() || v == &minus_one {
                return Err(RingPedersenError::BadBase(name));
            }
        }
        let s_inv = mod_inverse(&s, &n).ok_or(RingPedersenError::BadBase("s"))?;
        let t_inv = mod_inverse(&t, &n).ok_or(RingPedersenError::BadBase("t"))?;
        Ok(Self {
            n,
            s,
            t,
            s_inv,
            t_inv,
            accel: None,
        })
    }

    /// The same parameters with fixed-base tables for s, t, s⁻¹ and t⁻¹ (for a peer's
    /// parameters, fixed for an epoch: about 1.3 MiB for a 3072-bit N̂, built with about
    /// 20,000 squarings: ≈ 7,100 each for t and t⁻¹, whose exponents reach two moduli, and
    /// ≈ 2,900 each for s and s⁻¹; each commitment then costs about a fifth of the plain one).
    pub fn with_tables(&self) -> Self {
        let Some(mont) = Montgomery::new(&self.n) else {
            // unreachable for validated (odd) parameters; stay plain
            return self.clone();
        };
        let (s_bits, t_bits) = (s_table_bits(), table_bits(&self.n));
        let accel = Accelerator::Tables {
            s: FixedBaseTable::new(&mont, &self.s, s_bits),
            t: FixedBaseTable::new(&mont, &self.t, t_bits),
            s_inv: FixedBaseTable::new(&mont, &self.s_inv, s_bits),
            t_inv: FixedBaseTable::new(&mont, &self.t_inv, t_bits),
        };
        Self {
            accel: Some(Arc::new(accel)),
            ..self.clone()
        }
    }

    /// The same parameters without any accelerator (drops tables or the owner's secrets).
    pub fn plain(&self) -> Self {
        Self {
            accel: None,
            ..self.clone()
        }
    }

    /// Refuses parameters whose N̂ equals the Paillier modulus `paillier_n` (PARAM-02).
    pub fn check_distinct_from(&self, paillier_n: &BigUint) -> Result<(), RingPedersenError> {
        if &self.n == paillier_n {
            Err(RingPedersenError::SameAsPaillier)
        } else {
            Ok(())
        }
    }

    /// N̂.
    pub fn n(&self) -> &BigUint {
        &self.n
    }

    /// s.
    pub fn s(&self) -> &BigUint {
        &self.s
    }

    /// t.
    pub fn t(&self) -> &BigUint {
        &self.t
    }

    fn pow(&self, base: &BigUint, base_inv: &BigUint, e: &BigInt) -> BigUint {
        match e.sign() {
            Sign::Minus => crate::arith::pow_mod(base_inv, e.magnitude(), &self.n),
            _ => crate::arith::pow_mod(base, e.magnitude(), &self.n),
        }
    }

    /// The commitment s^x·t^y mod N̂ for signed x, y.
    pub fn commit(&self, x: &BigInt, y: &BigInt) -> BigUint {
        match self.accel.as_deref() {
            None => self.pow(&self.s, &self.s_inv, x) * self.pow(&self.t, &self.t_inv, y) % &self.n,
            Some(Accelerator::Owner(owner)) => owner.commit(x, y),
            Some(Accelerator::Tables { s, t, s_inv, t_inv }) => {
                let s_table = if x.sign() == Sign::Minus { s_inv } else { s };
                let t_table = if y.sign() == Sign::Minus { t_inv } else { t };
                multi_pow(&[(s_table, x.magnitude()), (t_table, y.magnitude())]).unwrap_or_default()
            }
        }
    }

    /// t^z mod N̂ for a **public** z ≥ 0 (Πprm's verifier; uses the tables or the owner's CRT
    /// if present). With tables it runs in variable time (signed window digits over the tables
    /// of t and t⁻¹, zero digits skipped: [`FixedBaseTable::pow_public_signed`]), so never
    /// pass a secret exponent.
    pub fn pow_t(&self, z: &BigUint) -> BigUint {
        match self.accel.as_deref() {
            None => crate::arith::pow_mod(&self.t, z, &self.n),
            Some(Accelerator::Owner(owner)) => {
                owner.commit(&BigInt::ZERO, &BigInt::from(z.clone()))
            }
            Some(Accelerator::Tables { t, t_inv, .. }) => t.pow_public_signed(t_inv, z),
        }
    }

    /// b^e mod N̂ for any b and signed e; `None` if e < 0 and b is not a unit. The owner's CRT
    /// is used when attached and b is a unit.
    pub fn pow_any(&self, b: &BigUint, e: &BigInt) -> Option<BigUint> {
        match self.accel.as_deref() {
            Some(Accelerator::Owner(owner)) if is_unit_mod(b, &self.n) => Some(owner.pow(b, e)),
            _ => crate::arith::mod_pow_signed(b, e, &self.n),
        }
    }

    /// a·b^e mod N̂ for a unit b (used by verifiers: "= A·S^e").
    pub fn mul_pow(&self, a: &BigUint, b: &BigUint, e: &BigInt) -> Option<BigUint> {
        Some(a * self.pow_any(b, e)? % &self.n)
    }
}

/// The secret behind ring-Pedersen parameters: the factorisation of N̂ and λ with s = t^λ.
pub struct RingPedersenSecret {
    phi: SecretUint,
    lambda: SecretUint,
    /// The prime factors of N̂ (for CRT exponentiation by the owner, e.g. in Πprm).
    p: SecretUint,
    q: SecretUint,
}

impl fmt::Debug for RingPedersenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RingPedersenSecret(<redacted>)")
    }
}

impl RingPedersenSecret {
    /// Makes fresh parameters from two distinct safe primes (Fig. 7 round 1: t = r², s = t^λ).
    pub fn generate(
        rng: &mut impl CryptoRngCore,
        p: &BigUint,
        q: &BigUint,
    ) -> Result<(RingPedersenParams, Self), RingPedersenError> {
        if p == q {
            return Err(RingPedersenError::BadPrimes("p = q"));
        }
        let n = p * q;
        let phi = (p - 1u32) * (q - 1u32);
        loop {
            let r = random_unit(rng, &n);
            let t = r.modpow(&BigUint::from(2u32), &n);
            let lambda = random_below(rng, &phi);
            let s = crate::arith::pow_mod(&t, &lambda, &n);
            match RingPedersenParams::new(n.clone(), s, t) {
                Ok(params) => {
                    let secret = Self {
                        phi: SecretUint::new(phi),
                        lambda: SecretUint::new(lambda),
                        p: SecretUint::new(p.clone()),
                        q: SecretUint::new(q.clone()),
                    };
                    return Ok((params, secret));
                }
                // t or s came out as ±1 (negligible): draw again.
                Err(RingPedersenError::BadBase(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `params` (which must be the ones made with this secret) with the owner's CRT attached:
    /// every commitment and exponentiation modulo N̂ is then computed modulo p̂ and q̂ with
    /// reduced exponents. Use it to verify the proofs made *for* this party. The secret is
    /// copied into the returned value (shared by its clones) and wiped when the last is dropped.
    pub fn owner_params(
        &self,
        params: &RingPedersenParams,
    ) -> Result<RingPedersenParams, RingPedersenError> {
        let (p, q) = (self.p.expose(), self.q.expose());
        if &(p * q) != params.n() {
            return Err(RingPedersenError::BadPrimes("N̂ ≠ p̂·q̂ for these parameters"));
        }
        if &self.owner_pow_t(params) != params.s() {
            return Err(RingPedersenError::BadPrimes("s ≠ t^λ for these parameters"));
        }
        let bad = || RingPedersenError::BadPrimes("p̂, q̂ not odd distinct primes");
        let mont_p = Montgomery::new(p).ok_or_else(bad)?;
        let mont_q = Montgomery::new(q).ok_or_else(bad)?;
        let p_inv_mod_q = SecretUint::new(mod_inverse(p, q).ok_or_else(bad)?);
        // exponents are secret (λx + y reduced mod p̂−1) and x, y come from the prover: the
        // fixed-length tables make the work independent of them
        let t_mod_p = FixedBaseTable::new_fixed_length(&mont_p, params.t(), p.bits() as usize);
        let t_mod_q = FixedBaseTable::new_fixed_length(&mont_q, params.t(), q.bits() as usize);
        let owner = OwnerCrt {
            p: self.p.clone(),
            q: self.q.clone(),
            p_minus_1: SecretInt::new(BigInt::from(p - 1u32)),
            q_minus_1: SecretInt::new(BigInt::from(q - 1u32)),
            lambda: SecretInt::new(BigInt::from(self.lambda().clone())),
            p_inv_mod_q,
            mont_p,
            mont_q,
            t_mod_p,
            t_mod_q,
        };
        Ok(RingPedersenParams {
            accel: Some(Arc::new(Accelerator::Owner(owner))),
            ..params.plain()
        })
    }

    /// The secret from its stored parts (the store codec, [`crate::store`]): the primes p̂ ≠ q̂
    /// of N̂ (odd, > 1) and λ. Whether they belong to given parameters is what
    /// [`Self::owner_params`] checks (N̂ = p̂·q̂, s = t^λ).
    pub(crate) fn from_parts(
        p: SecretUint,
        q: SecretUint,
        lambda: SecretUint,
    ) -> Result<Self, RingPedersenError> {
        let (pe, qe) = (p.expose(), q.expose());
        if pe == qe {
            return Err(RingPedersenError::BadPrimes("p = q"));
        }
        if pe.is_even() || qe.is_even() || pe.is_one() || qe.is_one() {
            return Err(RingPedersenError::BadPrimes("p or q is not an odd prime"));
        }
        let phi = SecretUint::new((pe - 1u32) * (qe - 1u32));
        Ok(Self { phi, lambda, p, q })
    }

    fn owner_pow_t(&self, params: &RingPedersenParams) -> BigUint {
        crate::arith::pow_mod(params.t(), self.lambda(), params.n())
    }

    /// φ(N̂).
    pub(crate) fn phi(&self) -> &BigUint {
        self.phi.expose()
    }

    /// λ with s = t^λ mod N̂.
    pub(crate) fn lambda(&self) -> &BigUint {
        self.lambda.expose()
    }

    /// The prime p of N̂ = p·q.
    pub(crate) fn p(&self) -> &BigUint {
        self.p.expose()
    }

    /// The prime q of N̂ = p·q.
    pub(crate) fn q(&self) -> &BigUint {
        self.q.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn generated_params_satisfy_s_eq_t_pow_lambda() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let [p, q] = fixtures::safe_prime_pair(1);
        let (params, secret) = RingPedersenSecret::generate(&mut rng, &p, &q).unwrap();
        assert_eq!(params.t().modpow(secret.lambda(), params.n()), *params.s());
        let x = BigInt::from(-5);
        let y = BigInt::from(7);
        let c = params.commit(&x, &y);
        let expected = crate::arith::mod_pow_signed(params.s(), &x, params.n()).unwrap()
            * params.t().modpow(&BigUint::from(7u32), params.n())
            % params.n();
        assert_eq!(c, expected);
        assert!(!alloc::format!("{secret:?}").contains(&secret.lambda().to_string()));
    }

    /// Tables and the owner's CRT give exactly the plain results, for every sign combination
    /// and for exponents beyond the tables' reach.
    #[test]
    fn accelerators_match_the_plain_computation() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let [p, q] = fixtures::safe_prime_pair(1);
        let (params, secret) = RingPedersenSecret::generate(&mut rng, &p, &q).unwrap();
        let tables = params.with_tables();
        let owner = secret.owner_params(&params).unwrap();
        assert_eq!(tables, params);
        assert_eq!(owner, params);
        assert!(alloc::format!("{owner:?}").ends_with("owner CRT)"));
        assert!(alloc::format!("{tables:?}").ends_with("fixed-base tables)"));
        let long = 2 * params.n().bits() + 2000;
        for (xb, yb) in [
            (0u64, 0u64),
            (256, 3840),
            (1792, 3840),
            (2304, 6912),
            (long, 5),
            (5, long),
        ] {
            for (sx, sy) in [(1i8, 1i8), (-1, 1), (1, -1), (-1, -1)] {
                let x = crate::arith::random_signed_bits(&mut rng, xb.max(1)) * sx;
                let y = crate::arith::random_signed_bits(&mut rng, yb.max(1)) * sy;
                let want = params.commit(&x, &y);
                assert_eq!(tables.commit(&x, &y), want, "tables {xb} {yb}");
                assert_eq!(owner.commit(&x, &y), want, "owner {xb} {yb}");
            }
        }
        // Πprm's exponents (below N̂), the edges, and one past the tables (fallback)
        for z in [
            crate::arith::random_bits(&mut rng, 3072),
            BigUint::ZERO,
            BigUint::one(),
            params.n() - 1u32,
            params.n().clone(),
            (BigUint::one() << 3072u32) - 1u32,
            crate::arith::random_bits(&mut rng, long),
        ] {
            assert_eq!(tables.pow_t(&z), params.pow_t(&z));
            assert_eq!(owner.pow_t(&z), params.pow_t(&z));
        }
        let b = crate::arith::random_unit(&mut rng, params.n());
        let e = BigInt::from(-123_456_789i64);
        assert_eq!(owner.mul_pow(&b, &b, &e), params.mul_pow(&b, &b, &e));
        // a non-unit base: the owner falls back to the plain rule (None for e < 0)
        assert_eq!(owner.pow_any(&p, &e), None);
        assert_eq!(
            owner.pow_any(&p, &BigInt::from(3)),
            params.pow_any(&p, &BigInt::from(3))
        );
        // the owner view needs the matching secret
        let [p2, q2] = fixtures::safe_prime_pair(2);
        let (_, other) = RingPedersenSecret::generate(&mut rng, &p2, &q2).unwrap();
        assert!(other.owner_params(&params).is_err());
        let (same_n, _) = RingPedersenSecret::generate(&mut rng, &p, &q).unwrap();
        assert!(secret.owner_params(&same_n).is_err(), "another λ");
        assert!(owner.plain().accel.is_none());
    }

    /// PARAM-02: N̂ = N is refused.
    #[test]
    fn same_modulus_as_paillier_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let [p, q] = fixtures::safe_prime_pair(1);
        let (params, _) = RingPedersenSecret::generate(&mut rng, &p, &q).unwrap();
        assert_eq!(
            params.check_distinct_from(&(&p * &q)),
            Err(RingPedersenError::SameAsPaillier)
        );
        let [p2, q2] = fixtures::safe_prime_pair(0);
        assert_eq!(params.check_distinct_from(&(&p2 * &q2)), Ok(()));
    }

    #[test]
    fn bad_parameters_are_refused() {
        let [p, q] = fixtures::safe_prime_pair(1);
        let n = &p * &q;
        let good = BigUint::from(4u32);
        assert!(matches!(
            RingPedersenParams::new(BigUint::from(3233u32), good.clone(), good.clone()),
            Err(RingPedersenError::ModulusSize { .. })
        ));
        assert_eq!(
            RingPedersenParams::new(n.clone(), BigUint::one(), good.clone()),
            Err(RingPedersenError::BadBase("s"))
        );
        assert_eq!(
            RingPedersenParams::new(n.clone(), good.clone(), &n - 1u32),
            Err(RingPedersenError::BadBase("t"))
        );
        assert_eq!(
            RingPedersenParams::new(n.clone(), p.clone(), good.clone()),
            Err(RingPedersenError::BadBase("s"))
        );
        assert_eq!(
            RingPedersenParams::new(n.clone(), good.clone(), BigUint::from(0u32)),
            Err(RingPedersenError::BadBase("t"))
        );
        assert!(RingPedersenParams::new(n, good.clone(), BigUint::from(9u32)).is_ok());
    }
}
