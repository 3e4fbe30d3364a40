//! Safe-prime generation at the production size (1536 bits), single thread.
//! `cargo bench -p mpc-core --bench safe_prime`
#![allow(missing_docs, clippy::expect_used)]
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use mpc_core::params::PRIME_BITS;
use mpc_core::primes::SafePrimeGenerator;

fn safe_prime(c: &mut Criterion) {
    let mut group = c.benchmark_group("safe_prime");
    // One generation per sample (flat sampling, a tiny time budget), ten samples: the
    // spread between samples is the spread of the search itself.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_millis(1))
        .warm_up_time(Duration::from_millis(1));
    group.bench_function("generate_1536_bit_single_thread", |b| {
        // a pool keeps one generator (and its sieving table) for all its primes
        let generator = SafePrimeGenerator::new();
        let mut rng = rand_core::OsRng;
        b.iter(|| generator.generate(&mut rng, PRIME_BITS, |_| ControlFlow::Continue(())))
    });
    // Two searches racing on two cores, the loser cancelled through the progress callback:
    // how a signer's background pool would use both cores for one prime.
    group.bench_function("generate_1536_bit_two_threads", |b| {
        let generator = SafePrimeGenerator::new();
        b.iter(|| {
            let done = AtomicBool::new(false);
            std::thread::scope(|s| {
                let search = || {
                    let mut rng = rand_core::OsRng;
                    let found = generator.generate(&mut rng, PRIME_BITS, |_| {
                        if done.load(Ordering::Relaxed) {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    });
                    if found.is_ok() {
                        done.store(true, Ordering::Relaxed);
                    }
                    found.ok()
                };
                let a = s.spawn(search);
                let b = s.spawn(search);
                let (a, b) = (a.join().ok().flatten(), b.join().ok().flatten());
                a.or(b).expect("one search finds a prime")
            })
        })
    });
    group.finish();
}

criterion_group!(benches, safe_prime);
criterion_main!(benches);
