//! Test fixtures: real 1536-bit safe primes, generated once with
//! `cargo run --release -p mpc-core --example gen-safe-primes -- 32 > mpc-core/fixtures/safe_primes_1536.txt`
//! and committed, so the test suite never waits on prime generation. A test re-checks that
//! every fixture is a safe prime; the generator itself is tested on small sizes and benched.
//!
//! Available to this crate's tests and, through the `test-fixtures` feature, to other crates'
//! tests, benches and examples. Never use these primes for real keys: they are public.
#![allow(clippy::expect_used, clippy::panic)]

use alloc::vec::Vec;

use num_bigint::BigUint;

pub mod instances;

const SAFE_PRIMES_1536: &str = include_str!("../fixtures/safe_primes_1536.txt");

/// All fixture safe primes, in file order.
pub fn safe_primes() -> Vec<BigUint> {
    SAFE_PRIMES_1536
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| BigUint::parse_bytes(l.as_bytes(), 16).expect("fixture line is hex"))
        .collect()
}

/// The `i`-th disjoint pair of fixture safe primes (primes 2i and 2i+1).
pub fn safe_prime_pair(i: usize) -> [BigUint; 2] {
    let all = safe_primes();
    match (all.get(2 * i), all.get(2 * i + 1)) {
        (Some(p), Some(q)) => [p.clone(), q.clone()],
        _ => panic!(
            "fixture pair {i} missing: only {} safe primes committed",
            all.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::PRIME_BITS;
    use crate::primes::miller_rabin;
    use num_bigint::BigUint;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The committed fixtures are what they claim: distinct 1536-bit safe primes, ≡ 3 mod 4,
    /// top two bits set. (Few Miller–Rabin rounds: this re-checks committed data, the
    /// generator's own error bound is tested in `primes`.)
    #[test]
    fn fixtures_are_distinct_safe_primes() {
        let mut rng = ChaCha20Rng::seed_from_u64(1536);
        let all = safe_primes();
        assert!(all.len() >= 34, "fixtures: {}", all.len());
        for (i, p) in all.iter().enumerate() {
            assert_eq!(p.bits(), u64::from(PRIME_BITS), "prime {i}");
            assert_eq!(
                p >> (PRIME_BITS - 2),
                BigUint::from(3u32),
                "top bits of prime {i}"
            );
            assert_eq!(p % 4u32, BigUint::from(3u32));
            assert!(miller_rabin(&mut rng, p, 3), "prime {i}");
            assert!(miller_rabin(&mut rng, &(p >> 1), 3), "(p-1)/2 of prime {i}");
            assert!(all[..i].iter().all(|q| q != p), "duplicate prime {i}");
        }
    }
}
