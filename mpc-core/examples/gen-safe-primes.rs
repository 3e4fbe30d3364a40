//! Generates real 1536-bit safe primes and prints them as hex, one per line.
//!
//! `cargo run --release -p mpc-core --example gen-safe-primes -- 32 > mpc-core/fixtures/safe_primes_1536.txt`
//! Progress and timing go to stderr.

use std::ops::ControlFlow;
use std::time::Instant;

use mpc_core::params::PRIME_BITS;
use mpc_core::primes::SafePrimeGenerator;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    let mut rng = rand_core::OsRng;
    let generator = SafePrimeGenerator::new();
    println!("# {count} safe primes of {PRIME_BITS} bits (p = 2q+1, p ≡ 3 mod 4, top two bits set); test fixtures only, public");
    for i in 0..count {
        let start = Instant::now();
        let mut tests = 0;
        let p = generator.generate(&mut rng, PRIME_BITS, |progress| {
            tests = progress.fermat_tests;
            ControlFlow::Continue(())
        });
        match p {
            Ok(p) => {
                println!("{p:x}");
                eprintln!(
                    "safe prime {}/{count}: {:.2} s, {tests} candidates tested",
                    i + 1,
                    start.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                eprintln!("generation failed: {e}");
                std::process::exit(1);
            }
        }
    }
}
