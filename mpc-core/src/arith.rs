//! Big-integer helpers shared by Paillier, ring-Pedersen and the proofs.
//!
//! Everything here is on `num-bigint`, which is variable time: see `audits/bigint-timing.md`
//! for which call sites touch secrets and what that means. Secret integers live in
//! [`SecretUint`] / [`SecretInt`], which overwrite their limbs on drop and never print.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::PrimeField;
use k256::{Scalar, U256};
use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Zero};
use rand_core::CryptoRngCore;

/// The order q of secp256k1 as a big integer.
pub fn curve_order() -> BigUint {
    // n = FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFE BAAEDCE6 AF48A03B BFD25E8C D0364141
    BigUint::from_bytes_be(&[
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36,
        0x41, 0x41,
    ])
}

/// Reduces a signed integer modulo q into a curve scalar.
pub fn scalar_from_int(x: &BigInt) -> Scalar {
    let q = BigInt::from(curve_order());
    let r = x.mod_floor(&q);
    let (_, mag) = r.into_parts();
    scalar_from_uint_reduced(&mag)
}

/// Reduces an unsigned integer modulo q into a curve scalar.
pub fn scalar_from_uint(x: &BigUint) -> Scalar {
    scalar_from_uint_reduced(&(x % curve_order()))
}

fn scalar_from_uint_reduced(x: &BigUint) -> Scalar {
    let bytes = x.to_bytes_be();
    let mut buf = [0u8; 32];
    // x < q < 2^256, so it fits.
    let start = 32usize.saturating_sub(bytes.len());
    buf[start..].copy_from_slice(&bytes[bytes.len().saturating_sub(32)..]);
    <Scalar as Reduce<U256>>::reduce_bytes(&buf.into())
}

/// A curve scalar as a non-negative integer in [0, q).
pub fn uint_from_scalar(s: &Scalar) -> BigUint {
    BigUint::from_bytes_be(&s.to_repr())
}

/// A curve scalar as a signed integer in [0, q).
pub fn int_from_scalar(s: &Scalar) -> BigInt {
    BigInt::from(uint_from_scalar(s))
}

/// Uniform integer in [0, bound) by rejection sampling over the bit length of bound − 1
/// (each draw is accepted with probability > 1/2). `bound` must be positive.
pub fn random_below(rng: &mut impl CryptoRngCore, bound: &BigUint) -> BigUint {
    debug_assert!(!bound.is_zero());
    let bits = (bound - 1u32).bits();
    let nbytes = bits.div_ceil(8) as usize;
    let excess = (nbytes as u64) * 8 - bits;
    // One buffer for all draws, wiped when dropped. (Do not call `Vec::zeroize` between draws:
    // it also truncates the vector, and the next draw would then read zero bytes.)
    let mut buf = zeroize::Zeroizing::new(vec![0u8; nbytes]);
    loop {
        rng.fill_bytes(&mut buf[..]);
        if let Some(first) = buf.first_mut() {
            *first &= 0xFFu8 >> excess;
        }
        let candidate = BigUint::from_bytes_be(&buf[..]);
        if &candidate < bound {
            return candidate;
        }
    }
}

/// Uniform integer with exactly `bits` random bits, i.e. in [0, 2^bits).
pub fn random_bits(rng: &mut impl CryptoRngCore, bits: u64) -> BigUint {
    random_below(rng, &(BigUint::one() << bits))
}

/// Uniform integer in the symmetric range ±2^bits = [−2^bits, 2^bits] (the paper's "±2^ℓ").
pub fn random_signed_bits(rng: &mut impl CryptoRngCore, bits: u64) -> BigInt {
    random_signed_range(rng, &(BigUint::one() << bits))
}

/// Uniform integer in [−bound, bound].
pub fn random_signed_range(rng: &mut impl CryptoRngCore, bound: &BigUint) -> BigInt {
    let width: BigUint = bound * 2u32 + 1u32;
    BigInt::from(random_below(rng, &width)) - BigInt::from(bound.clone())
}

/// Uniform unit of Z_n^* (n > 1).
pub fn random_unit(rng: &mut impl CryptoRngCore, n: &BigUint) -> BigUint {
    loop {
        let r = random_below(rng, n);
        if !r.is_zero() && r.gcd(n).is_one() {
            return r;
        }
    }
}

/// `|x| ≤ 2^bits` — the paper's membership test x ∈ ±2^bits.
pub fn in_signed_bits(x: &BigInt, bits: u64) -> bool {
    x.magnitude() <= &(BigUint::one() << bits)
}

/// `|x| ≤ bound`.
pub fn in_signed_range(x: &BigInt, bound: &BigUint) -> bool {
    x.magnitude() <= bound
}

/// True when 0 < x < n and gcd(x, n) = 1.
pub fn is_unit_mod(x: &BigUint, n: &BigUint) -> bool {
    !x.is_zero() && x < n && x.gcd(n).is_one()
}

/// True when every x is a unit modulo n (each 0 < x < n with gcd(x, n) = 1), decided with one
/// gcd: a prime factor of n divides some x iff it divides their product, so the values are all
/// units iff their product mod n is. This is exact for any n (no random coefficients, nothing
/// probabilistic); for odd n the product is a Montgomery product, Π x·R^{−(k−1)} mod n, which
/// is a unit iff Π x is (R is a power of two). For m values of a 3072-bit n it costs m
/// Montgomery products (≈ 4 µs each) instead of m binary gcds (≈ 0.1 ms each). Public values
/// only (variable time).
pub fn all_units_mod<'a>(xs: impl IntoIterator<Item = &'a BigUint>, n: &BigUint) -> bool {
    let Some(mont) = crate::monty::Montgomery::new(n) else {
        return xs.into_iter().all(|x| is_unit_mod(x, n));
    };
    let len = mont.limbs();
    let mut s = mont.scratch();
    let mut tmp = vec![0u64; len];
    let mut acc: Option<Vec<u64>> = None;
    for x in xs {
        if x.is_zero() || x >= n {
            return false;
        }
        let mut limbs = x.to_u64_digits();
        limbs.resize(len, 0);
        match acc.as_mut() {
            Some(a) => mont.mul_assign(a, &limbs, &mut tmp, &mut s),
            None => acc = Some(limbs),
        }
    }
    match acc {
        None => true,
        // one more Montgomery product (by 1) turns the limbs into a value below n
        Some(a) => is_unit_mod(&mont.leave_montgomery(&a, &mut s), n),
    }
}

/// Modular inverse of `a` modulo `m`, if it exists (m > 1).
pub fn mod_inverse(a: &BigUint, m: &BigUint) -> Option<BigUint> {
    if m <= &BigUint::one() {
        return None;
    }
    let a = BigInt::from(a % m);
    let m_int = BigInt::from(m.clone());
    let ext = a.extended_gcd(&m_int);
    if !ext.gcd.is_one() {
        return None;
    }
    ext.x.mod_floor(&m_int).to_biguint()
}

/// `base^exp mod m`: Montgomery exponentiation ([`crate::monty`]) for odd m > 1, num-bigint's
/// `modpow` otherwise. The one place every exponentiation of the crate goes through.
pub fn pow_mod(base: &BigUint, exp: &BigUint, m: &BigUint) -> BigUint {
    match crate::monty::Montgomery::new(m) {
        Some(mont) => mont.pow(base, exp),
        None => base.modpow(exp, m),
    }
}

/// `base^exp mod m` for a signed exponent; a negative exponent inverts the base first.
/// Returns `None` when the exponent is negative and the base is not invertible.
pub fn mod_pow_signed(base: &BigUint, exp: &BigInt, m: &BigUint) -> Option<BigUint> {
    match exp.sign() {
        Sign::Minus => {
            let inv = mod_inverse(base, m)?;
            Some(pow_mod(&inv, exp.magnitude(), m))
        }
        _ => Some(pow_mod(base, exp.magnitude(), m)),
    }
}

/// Jacobi symbol (a / n) for odd n > 0; returns −1, 0 or 1.
pub fn jacobi(a: &BigUint, n: &BigUint) -> i8 {
    debug_assert!(n.is_odd());
    let mut a = a % n;
    let mut n = n.clone();
    let mut result: i8 = 1;
    while !a.is_zero() {
        let tz = a.trailing_zeros().unwrap_or(0);
        if tz > 0 {
            a >>= tz;
            let n_mod_8 = (&n % 8u32).to_u32_digits().first().copied().unwrap_or(0);
            if tz % 2 == 1 && (n_mod_8 == 3 || n_mod_8 == 5) {
                result = -result;
            }
        }
        core::mem::swap(&mut a, &mut n);
        let a_mod_4 = (&a % 4u32).to_u32_digits().first().copied().unwrap_or(0);
        let n_mod_4 = (&n % 4u32).to_u32_digits().first().copied().unwrap_or(0);
        if a_mod_4 == 3 && n_mod_4 == 3 {
            result = -result;
        }
        a %= &n;
    }
    if n.is_one() {
        result
    } else {
        0
    }
}

/// Chinese remaindering of `r1 mod m1` and `r2 mod m2` with `m1_inv_mod_m2 = m1^{-1} mod m2`:
/// returns the unique x in [0, m1·m2) (DFNS spec §2.2, Garner's form).
pub fn crt_combine(
    r1: &BigUint,
    r2: &BigUint,
    m1: &BigUint,
    m2: &BigUint,
    m1_inv_mod_m2: &BigUint,
) -> BigUint {
    let r1_mod_m2 = r1 % m2;
    let diff = if r2 >= &r1_mod_m2 {
        r2 - &r1_mod_m2
    } else {
        m2 - (&r1_mod_m2 - r2) % m2
    };
    let h = (diff * m1_inv_mod_m2) % m2;
    r1 + h * m1
}

/// Integer square root (floor).
pub fn isqrt(n: &BigUint) -> BigUint {
    n.sqrt()
}

/// A secret non-negative big integer: limbs overwritten on drop, never printed.
///
/// `num-bigint` offers no zeroization; we overwrite the value's own buffer through
/// `assign_from_slice` with zeros of the same length before it is freed. Temporaries made inside
/// `num-bigint` arithmetic are not covered: see `audits/bigint-timing.md`.
pub struct SecretUint(BigUint);

impl SecretUint {
    /// Wraps a secret value.
    pub fn new(x: BigUint) -> Self {
        Self(x)
    }

    /// Exposes the secret for arithmetic. Callers must not copy it into unwrapped storage.
    pub fn expose(&self) -> &BigUint {
        &self.0
    }
}

impl Clone for SecretUint {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Drop for SecretUint {
    fn drop(&mut self) {
        wipe_uint(&mut self.0);
    }
}

impl zeroize::ZeroizeOnDrop for SecretUint {}

impl fmt::Debug for SecretUint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretUint(<redacted>)")
    }
}

/// A secret signed big integer: limbs overwritten on drop, never printed.
pub struct SecretInt(BigInt);

impl SecretInt {
    /// Wraps a secret value.
    pub fn new(x: BigInt) -> Self {
        Self(x)
    }

    /// Exposes the secret for arithmetic.
    pub fn expose(&self) -> &BigInt {
        &self.0
    }
}

impl Clone for SecretInt {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Drop for SecretInt {
    fn drop(&mut self) {
        let digits = self.0.magnitude().to_u32_digits().len();
        let zeros: Vec<u32> = vec![0u32; digits];
        self.0.assign_from_slice(Sign::Plus, &zeros);
    }
}

impl zeroize::ZeroizeOnDrop for SecretInt {}

impl fmt::Debug for SecretInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretInt(<redacted>)")
    }
}

/// Overwrites a big integer's limbs with zeros in place (best effort, see [`SecretUint`]).
pub fn wipe_uint(x: &mut BigUint) {
    let digits = x.to_u32_digits().len();
    let zeros: Vec<u32> = vec![0u32; digits];
    x.assign_from_slice(&zeros);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn all_units_agrees_with_one_gcd_per_value() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let [p, q] = crate::fixtures::safe_prime_pair(0);
        let n = &p * &q;
        let units: Vec<BigUint> = (0..20).map(|_| random_unit(&mut rng, &n)).collect();
        assert!(all_units_mod(&units, &n));
        assert!(all_units_mod(core::iter::empty(), &n));
        assert!(all_units_mod(&[BigUint::one()], &n));
        assert!(all_units_mod(&[&n - 1u32, BigUint::one()], &n));
        // one bad value anywhere: a multiple of p, of q, 0, n, n + 1 (out of range)
        let bad = [
            &p * random_below(&mut rng, &q).max(BigUint::one()),
            &q * BigUint::from(3u32),
            p.clone(),
            BigUint::zero(),
            n.clone(),
            &n + 1u32,
        ];
        for b in &bad {
            for at in [0, 7, 20] {
                let mut v = units.clone();
                v.insert(at, b.clone());
                assert!(!all_units_mod(&v, &n), "{b:x} at {at}");
                assert_eq!(all_units_mod(&v, &n), v.iter().all(|x| is_unit_mod(x, &n)));
            }
        }
        // a multiple of p and one of q whose product is a multiple of n (≡ 0)
        assert!(!all_units_mod(&[p.clone(), q.clone()], &n));
        // an even modulus: the per-value fallback
        let even = BigUint::from(3u32 * 5 * 2);
        assert!(all_units_mod(
            &[BigUint::from(7u32), BigUint::from(11u32)],
            &even
        ));
        assert!(!all_units_mod(
            &[BigUint::from(7u32), BigUint::from(9u32)],
            &even
        ));
        // a tiny odd modulus
        let m = BigUint::from(15u32);
        for a in 0u32..16 {
            for b in 0u32..16 {
                let v = [BigUint::from(a), BigUint::from(b)];
                assert_eq!(
                    all_units_mod(&v, &m),
                    v.iter().all(|x| is_unit_mod(x, &m)),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn jacobi_matches_euler_criterion_for_primes() {
        let p = BigUint::from(1_000_003u32);
        let e = (&p - 1u32) >> 1;
        for a in 1u32..200 {
            let a = BigUint::from(a);
            let euler = a.modpow(&e, &p);
            let expected = if euler.is_one() { 1 } else { -1 };
            assert_eq!(jacobi(&a, &p), expected);
        }
        assert_eq!(jacobi(&BigUint::from(15u32), &BigUint::from(15u32)), 0);
        // (2/15) = (2/3)(2/5) = (−1)(−1) = 1; (7/15) = (7/3)(7/5) = (1/3)(2/5) = −1
        assert_eq!(jacobi(&BigUint::from(2u32), &BigUint::from(15u32)), 1);
        assert_eq!(jacobi(&BigUint::from(7u32), &BigUint::from(15u32)), -1);
    }

    #[test]
    fn scalar_round_trips_and_reduces_negative() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let x = random_signed_bits(&mut rng, 300);
        let s = scalar_from_int(&x);
        let back = int_from_scalar(&s);
        let q = BigInt::from(curve_order());
        assert_eq!(back, x.mod_floor(&q));
        assert_eq!(scalar_from_int(&BigInt::from(-1)), -Scalar::ONE);
    }

    #[test]
    fn crt_combine_recovers_value() {
        let m1 = BigUint::from(1009u32);
        let m2 = BigUint::from(2003u32);
        let inv = mod_inverse(&m1, &m2).unwrap();
        for x in [0u32, 1, 1008, 1009, 555_555, 2_021_026] {
            let x = BigUint::from(x);
            assert_eq!(crt_combine(&(&x % &m1), &(&x % &m2), &m1, &m2, &inv), x);
        }
    }

    #[test]
    fn random_ranges_hold() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for _ in 0..200 {
            let x = random_signed_bits(&mut rng, 10);
            assert!(in_signed_bits(&x, 10));
        }
        let n = BigUint::from(35u32);
        for _ in 0..200 {
            assert!(is_unit_mod(&random_unit(&mut rng, &n), &n));
        }
    }

    /// Regression: a rejected draw once left the buffer empty, so the retry returned 0. Every
    /// bound shape must give uniform-looking, non-degenerate output.
    #[test]
    fn random_below_is_not_degenerate_after_rejections() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for bound in [
            BigUint::one() << 64u32,
            (BigUint::one() << 64u32) + 1u32,
            BigUint::from(3u32),
            BigUint::from(1_000_001u32),
        ] {
            let draws: Vec<BigUint> = (0..2000).map(|_| random_below(&mut rng, &bound)).collect();
            assert!(draws.iter().all(|d| d < &bound));
            let zeros = draws.iter().filter(|d| d.is_zero()).count();
            let expected_zeros = 2000.0 / bound.to_string().parse::<f64>().unwrap_or(f64::MAX);
            assert!(
                (zeros as f64) <= expected_zeros * 3.0 + 5.0,
                "bound {bound}: {zeros} zeros"
            );
            // the upper part [⌊bound/2⌋, bound) is hit in proportion to its size
            let half = &bound >> 1u32;
            let high = draws.iter().filter(|d| *d >= &half).count() as f64;
            let b = bound.to_string().parse::<f64>().unwrap_or(f64::MAX);
            let h = half.to_string().parse::<f64>().unwrap_or(0.0);
            let expected = 2000.0 * (b - h) / b;
            assert!(
                (high - expected).abs() < 150.0,
                "bound {bound}: {high} draws in the upper part, expected {expected}"
            );
        }
        // signed masks: the end point −B must not be over-represented
        let b = 1u64 << 20;
        let lows = (0..2000)
            .filter(|_| random_signed_bits(&mut rng, 20) == BigInt::from(-(b as i64)))
            .count();
        assert!(lows < 3, "{lows} draws equal to −2^20");
        assert!(random_below(&mut rng, &BigUint::one()).is_zero());
    }

    #[test]
    fn secret_debug_is_redacted_and_wipe_zeroes() {
        let s = SecretUint::new(BigUint::from(123_456_789u64));
        assert_eq!(alloc::format!("{s:?}"), "SecretUint(<redacted>)");
        let mut x = BigUint::from(u128::MAX);
        wipe_uint(&mut x);
        assert!(x.is_zero());
    }
}
