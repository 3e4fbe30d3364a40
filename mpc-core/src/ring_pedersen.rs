//! Ring-Pedersen parameters (N̂, s, t) and commitments s^x·t^y mod N̂ (CGGMP24 Def. 2.4, Fig. 7).
//!
//! N̂ is a biprime made of two safe primes *different from* the Paillier ones (PARAM-02);
//! t = r² mod N̂ for a random unit r and s = t^λ for a secret λ ← Z_{φ(N̂)}. Knowledge of λ
//! (and of the factorisation) is proven with Πprm (Fig. 13).

use core::fmt;

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::One;
use rand_core::CryptoRngCore;

use crate::arith::{is_unit_mod, mod_inverse, random_below, random_unit, SecretUint};
use crate::params::{MAX_MODULUS_BITS, MIN_MODULUS_BITS};

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
#[derive(Clone, PartialEq, Eq)]
pub struct RingPedersenParams {
    n: BigUint,
    s: BigUint,
    t: BigUint,
    s_inv: BigUint,
    t_inv: BigUint,
}

impl fmt::Debug for RingPedersenParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RingPedersenParams({} bits)", self.n.bits())
    }
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
        })
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
        self.pow(&self.s, &self.s_inv, x) * self.pow(&self.t, &self.t_inv, y) % &self.n
    }

    /// a·b^e mod N̂ for a unit b (used by verifiers: "= A·S^e").
    pub fn mul_pow(&self, a: &BigUint, b: &BigUint, e: &BigInt) -> Option<BigUint> {
        Some(a * crate::arith::mod_pow_signed(b, e, &self.n)? % &self.n)
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
