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
        _ => panic!("fixture pair {i} missing: only {} safe primes committed", all.len()),
    }
}
