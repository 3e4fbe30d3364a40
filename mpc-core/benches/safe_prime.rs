//! Safe-prime generation at the production size (1536 bits), single thread.
//! `cargo bench -p mpc-core --bench safe_prime`
#![allow(missing_docs, clippy::expect_used)]
use std::ops::ControlFlow;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mpc_core::params::PRIME_BITS;
use mpc_core::primes::generate_safe_prime;

fn safe_prime(c: &mut Criterion) {
    let mut group = c.benchmark_group("safe_prime");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(120))
        .warm_up_time(Duration::from_millis(1));
    group.bench_function("generate_1536_bit_single_thread", |b| {
        let mut rng = rand_core::OsRng;
        b.iter(|| generate_safe_prime(&mut rng, PRIME_BITS, |_| ControlFlow::Continue(())))
    });
    group.finish();
}

criterion_group!(benches, safe_prime);
criterion_main!(benches);
