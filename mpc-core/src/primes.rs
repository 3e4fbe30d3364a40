//! Safe-prime generation (DFNS CGGMP spec §2.1, "Generating a (random) safe prime").
//!
//! A safe prime is p = 2q + 1 with q prime. We draw a random window of candidates q, sieve the
//! whole window at once against the odd primes r below [`SIEVE_LIMIT`], rejecting every q with
//! q ≡ 0 or q ≡ (r−1)/2 (mod r) — the latter is exactly r | 2q+1, so q and p are sieved
//! together — then run a base-2 Fermat test on q and on p (cheap filters that discard almost all
//! survivors), then [`MILLER_RABIN_ROUNDS`] Miller–Rabin rounds with random bases on q. Given q
//! prime, 2^{p−1} ≡ 1 (mod p) and gcd(2² − 1, p) = 1 prove p prime (Pocklington, since
//! p − 1 = 2q with q > √p), so p needs no further test. The error is that of Miller–Rabin on
//! q: at most 4^{−64} = 2^{−128}.
//!
//! The search reports progress through a callback, which may cancel it.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};
use rand_core::CryptoRngCore;

use crate::arith::random_bits;
use crate::monty::Montgomery;
use crate::params::MILLER_RABIN_ROUNDS;

/// Odd primes below this bound sieve each window of candidates. With 2^24 the sieve leaves
/// about 0.30 % of odd q (both q and 2q+1 free of small factors), so a 1536-bit safe prime
/// needs about 1300 Fermat tests on average instead of about 2300 with 2^18.
pub const SIEVE_LIMIT: u32 = 1 << 24;

/// Number of candidates q = q₀ + 2k (k < WINDOW) sieved together; large enough that one
/// window usually holds a safe prime, so the per-window residue computation is paid ~once.
const WINDOW: usize = 1 << 19;

/// How far a search has come; handed to the progress callback after each tested candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchProgress {
    /// Windows of candidates sieved so far.
    pub windows: u64,
    /// Candidates that survived the sieve and got a Fermat test.
    pub fermat_tests: u64,
    /// Candidates q that passed both Fermat tests and went to Miller–Rabin.
    pub miller_rabin_candidates: u64,
}

/// Why no safe prime was returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrimeGenError {
    /// The progress callback asked to stop.
    #[error("safe-prime search cancelled after {0:?}")]
    Cancelled(SearchProgress),
    /// The requested size is too small for this generator (it needs at least 16 bits).
    #[error("safe primes of {0} bits are not supported (minimum 16)")]
    TooSmall(u32),
}

/// The odd primes below `limit` (sieve of Eratosthenes over odd numbers).
pub fn small_odd_primes(limit: u32) -> Vec<u32> {
    let limit = limit as usize;
    // index i stands for the odd number 2i + 1
    let half = limit / 2;
    let mut composite = vec![false; half];
    let mut out = Vec::new();
    for i in 1..half {
        if composite[i] {
            continue;
        }
        let p = 2 * i + 1;
        out.push(p as u32);
        let mut j = (p * p) / 2;
        while j < half {
            composite[j] = true;
            j += p;
        }
    }
    out
}

/// A safe-prime generator holding its table of sieving primes; build it once and reuse it
/// (the table takes about 0.1 s to build and 1.2 MB).
pub struct SafePrimeGenerator {
    /// Sieving primes, paired so each pair's product fits in a u64 (the last may be alone).
    primes: Vec<u32>,
}

impl Default for SafePrimeGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl SafePrimeGenerator {
    /// A generator sieving with the odd primes below [`SIEVE_LIMIT`].
    pub fn new() -> Self {
        Self::with_sieve_limit(SIEVE_LIMIT)
    }

    /// A generator sieving with the odd primes below `limit`.
    pub fn with_sieve_limit(limit: u32) -> Self {
        Self {
            primes: small_odd_primes(limit.max(8)),
        }
    }

    /// Generates a random safe prime p of exactly `bits` bits whose two top bits are set (so
    /// the product of two of them has exactly 2·`bits` bits), with p ≡ 3 (mod 4).
    ///
    /// `progress` is called after every tested candidate and may return
    /// `ControlFlow::Break(())` to cancel the search.
    pub fn generate(
        &self,
        rng: &mut impl CryptoRngCore,
        bits: u32,
        mut progress: impl FnMut(&SearchProgress) -> ControlFlow<()>,
    ) -> Result<BigUint, PrimeGenError> {
        if bits < 16 {
            return Err(PrimeGenError::TooSmall(bits));
        }
        let q_bits = u64::from(bits - 1);
        // Small sizes (tests): sieve only with primes well below the candidates, and use a
        // window that fits below 2^q_bits.
        let max_sieve_prime = 1u64 << (bits / 2).min(32);
        let primes: &[u32] = match self
            .primes
            .iter()
            .position(|&r| u64::from(r) >= max_sieve_prime)
        {
            Some(end) => &self.primes[..end],
            None => &self.primes,
        };
        let window = WINDOW.min(1usize << (q_bits - 4).min(24));
        let mut composite = vec![false; window];
        let mut stats = SearchProgress::default();
        // Window [q0, q0 + 2·window) must stay within q_bits bits with the top two bits set.
        let top_two = BigUint::from(3u32) << (q_bits - 2);
        let max = (BigUint::one() << q_bits) - (window as u64) * 2;
        loop {
            // q0: q_bits bits, top two bits set, odd, and room for the window below 2^q_bits.
            let mut q0 = random_bits(rng, q_bits - 2) | &top_two;
            q0 |= BigUint::one();
            if q0 >= max {
                continue;
            }
            stats.windows += 1;
            composite.fill(false);
            for pair in primes.chunks(2) {
                // one multi-limb division per pair of primes instead of one per prime
                let modulus: u64 = pair.iter().map(|&r| u64::from(r)).product();
                let q0_mod_pair = (&q0 % modulus).to_u64().unwrap_or(0);
                for &r in pair {
                    mark_composites(&mut composite, q0_mod_pair % u64::from(r), r);
                }
            }
            for (k, is_composite) in composite.iter().enumerate() {
                if *is_composite {
                    continue;
                }
                let q = &q0 + BigUint::from(2 * k as u64);
                stats.fermat_tests += 1;
                let found = test_safe_prime_candidate(rng, &q, &mut stats);
                if progress(&stats).is_break() {
                    return Err(PrimeGenError::Cancelled(stats));
                }
                if let Some(p) = found {
                    return Ok(p);
                }
            }
        }
    }
}

/// Marks every k < window with q0 + 2k ≡ 0 or (r−1)/2 (mod r), i.e. r | q or r | 2q+1.
fn mark_composites(composite: &mut [bool], q0_mod_r: u64, r: u32) {
    let r64 = u64::from(r);
    let inv2 = r64.div_ceil(2); // (r + 1)/2 = 2^{-1} mod r
    for target in [0u64, (r64 - 1) / 2] {
        // smallest k ≥ 0 with q0 + 2k ≡ target (mod r)
        let k0 = ((target + r64 - q0_mod_r) % r64) * inv2 % r64;
        let mut k = k0 as usize;
        while k < composite.len() {
            composite[k] = true;
            k += r as usize;
        }
    }
}

/// Generates a random safe prime of `bits` bits with a fresh [`SafePrimeGenerator`] (see
/// [`SafePrimeGenerator::generate`]). Pools that make many primes should keep one generator.
pub fn generate_safe_prime(
    rng: &mut impl CryptoRngCore,
    bits: u32,
    progress: impl FnMut(&SearchProgress) -> ControlFlow<()>,
) -> Result<BigUint, PrimeGenError> {
    SafePrimeGenerator::new().generate(rng, bits, progress)
}

/// Tests q (already sieved) and p = 2q + 1; returns p when q is prime and p is proven prime.
fn test_safe_prime_candidate(
    rng: &mut impl CryptoRngCore,
    q: &BigUint,
    stats: &mut SearchProgress,
) -> Option<BigUint> {
    let two = BigUint::from(2u32);
    let fermat =
        |n: &BigUint| Montgomery::new(n).is_some_and(|m| m.pow(&two, &(n - 1u32)).is_one());
    if !fermat(q) {
        return None;
    }
    let p: BigUint = q * 2u32 + 1u32;
    if !fermat(&p) {
        return None;
    }
    stats.miller_rabin_candidates += 1;
    if !miller_rabin(rng, q, MILLER_RABIN_ROUNDS) {
        return None;
    }
    // Pocklington with a = 2: p − 1 = 2q, q prime > √p − 1, 2^{p−1} ≡ 1 (mod p) shown above,
    // and gcd(2^{(p−1)/q} − 1, p) = gcd(3, p) = 1 since p > 3 and 3 ∤ p (sieved; checked here).
    if (&p % 3u32).is_zero() {
        return None;
    }
    Some(p)
}

/// One Miller–Rabin round: true when `n` is a strong probable prime to base `a`. Every prime
/// passes for every base, so `false` proves `n` composite. Answers n < 2 (false), n ∈ {2, 3}
/// (true) and even n (false) directly.
pub fn is_strong_probable_prime(n: &BigUint, a: &BigUint) -> bool {
    if n < &BigUint::from(2u32) {
        return false;
    }
    if n <= &BigUint::from(3u32) {
        return true;
    }
    if n.is_even() {
        return false;
    }
    let n_minus_1 = n - 1u32;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    let mut x = match Montgomery::new(n) {
        Some(m) => m.pow(a, &d),
        None => a.modpow(&d, n),
    };
    if x.is_one() || x == n_minus_1 {
        return true;
    }
    for _ in 1..s {
        x = &x * &x % n;
        if x == n_minus_1 {
            return true;
        }
        if x.is_one() {
            return false;
        }
    }
    false
}

/// Miller–Rabin with `rounds` uniformly random bases in [2, n − 2]. Even numbers and n ≤ 3
/// are answered directly.
pub fn miller_rabin(rng: &mut impl CryptoRngCore, n: &BigUint, rounds: usize) -> bool {
    let three = BigUint::from(3u32);
    if n <= &three || n.is_even() {
        return is_strong_probable_prime(n, &BigUint::from(2u32));
    }
    let base_range = n - &three; // bases a = 2 + [0, n − 3) ⊂ [2, n − 2]
    (0..rounds).all(|_| {
        is_strong_probable_prime(n, &(crate::arith::random_below(rng, &base_range) + 2u32))
    })
}

/// Trial division by the odd primes below 2^16, then Miller–Rabin with
/// [`MILLER_RABIN_ROUNDS`] random bases: error below 2^-128 even for adversarial n.
pub fn is_probable_prime(rng: &mut impl CryptoRngCore, n: &BigUint) -> bool {
    if n < &BigUint::from(2u32) {
        return false;
    }
    if n == &BigUint::from(2u32) {
        return true;
    }
    if n.is_even() {
        return false;
    }
    for r in small_odd_primes(1 << 16) {
        let r_big = BigUint::from(r);
        if n == &r_big {
            return true;
        }
        if (n % r).is_zero() {
            return false;
        }
    }
    miller_rabin(rng, n, MILLER_RABIN_ROUNDS)
}

/// True when p and (p − 1)/2 are both probable primes.
pub fn is_safe_prime(rng: &mut impl CryptoRngCore, p: &BigUint) -> bool {
    p.is_odd()
        && p > &BigUint::from(4u32)
        && is_probable_prime(rng, &((p - 1u32) >> 1))
        && is_probable_prime(rng, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn is_prime_by_trial(n: u64) -> bool {
        if n < 2 {
            return false;
        }
        let mut d = 2;
        while d * d <= n {
            if n.is_multiple_of(d) {
                return false;
            }
            d += 1;
        }
        true
    }

    #[test]
    fn miller_rabin_agrees_with_trial_division_and_rejects_carmichael() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for n in 0u64..3000 {
            assert_eq!(
                miller_rabin(&mut rng, &BigUint::from(n), 20),
                is_prime_by_trial(n),
                "n = {n}"
            );
        }
        for c in [
            561u64,
            1105,
            1729,
            2465,
            2821,
            6601,
            8911,
            41041,
            825_265,
            321_197_185,
        ] {
            assert!(
                !miller_rabin(&mut rng, &BigUint::from(c), 20),
                "Carmichael {c}"
            );
        }
        // 2^127 − 1 is prime, 2^128 + 1 is not.
        assert!(is_probable_prime(
            &mut rng,
            &((BigUint::one() << 127) - 1u32)
        ));
        assert!(!is_probable_prime(
            &mut rng,
            &((BigUint::one() << 128) + 1u32)
        ));
    }

    #[test]
    fn small_safe_primes_are_deterministic_and_correct() {
        for bits in [16u32, 24, 32, 48, 62] {
            let mut rng = ChaCha20Rng::seed_from_u64(u64::from(bits));
            let p = generate_safe_prime(&mut rng, bits, |_| ControlFlow::Continue(())).unwrap();
            let mut rng2 = ChaCha20Rng::seed_from_u64(u64::from(bits));
            let small_sieve = SafePrimeGenerator::with_sieve_limit(1 << 12);
            let p2 = small_sieve
                .generate(&mut rng2, bits, |_| ControlFlow::Continue(()))
                .unwrap();
            assert_eq!(p, p2, "same seed, same prime, whatever the sieve depth");
            assert_eq!(p.bits(), u64::from(bits));
            let v = p.to_u64().unwrap();
            assert!(
                is_prime_by_trial(v) && is_prime_by_trial((v - 1) / 2),
                "{v} is not a safe prime"
            );
            assert_eq!(v % 4, 3);
            assert_eq!(v >> (bits - 2), 3, "top two bits set");
        }
    }

    #[test]
    fn small_odd_primes_are_the_odd_primes() {
        let primes = small_odd_primes(1000);
        let expected: Vec<u32> = (3u32..1000)
            .filter(|n| is_prime_by_trial(u64::from(*n)))
            .collect();
        assert_eq!(primes, expected);
    }

    #[test]
    fn medium_safe_prime_is_safe() {
        let mut rng = ChaCha20Rng::seed_from_u64(77);
        let p = generate_safe_prime(&mut rng, 256, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(p.bits(), 256);
        assert!(is_safe_prime(&mut rng, &p));
    }

    /// The real generator at the production size, end to end (takes a few seconds).
    #[test]
    fn real_1536_bit_safe_prime() {
        let mut rng = ChaCha20Rng::seed_from_u64(1536);
        let generator = SafePrimeGenerator::new();
        let mut last = SearchProgress::default();
        let p = generator
            .generate(&mut rng, crate::params::PRIME_BITS, |progress| {
                assert!(
                    progress.fermat_tests > last.fermat_tests,
                    "progress moves forward"
                );
                last = *progress;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(p.bits(), 1536);
        assert_eq!(&p >> 1534u32, BigUint::from(3u32), "top two bits set");
        assert_eq!(&p % 4u32, BigUint::from(3u32));
        assert!(miller_rabin(&mut rng, &p, 8) && miller_rabin(&mut rng, &(&p >> 1u32), 8));
        assert!(last.miller_rabin_candidates >= 1 && last.windows >= 1);
    }

    #[test]
    fn progress_reports_and_cancellation_stops() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let mut calls = 0u64;
        let err = generate_safe_prime(&mut rng, 1536, |p| {
            calls += 1;
            assert_eq!(p.fermat_tests, calls);
            if calls == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap_err();
        assert!(matches!(err, PrimeGenError::Cancelled(p) if p.fermat_tests == 3));
        assert_eq!(
            generate_safe_prime(&mut rng, 8, |_| ControlFlow::Continue(())),
            Err(PrimeGenError::TooSmall(8))
        );
    }
}
