//! Prove and verify of every CGGMP24 proof at production parameters (3072-bit moduli,
//! 128 repetitions), one thread. `cargo bench -p mpc-core --features test-fixtures --bench proofs`
//! The 128-repetition proofs take seconds per iteration; criterion's minimum of 10 samples
//! makes this bench run for several minutes. Both sides compute as a protocol party does
//! (`Parties::accelerated`: tables of the peer's ring-Pedersen parameters, owner CRT views of
//! one's own keys); set `PROOFS_PLAIN=1` to measure without them.
#![allow(missing_docs, clippy::expect_used)]
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mpc_core::fixtures::instances::{all_instances, Parties};
use mpc_core::zk::ProofContext;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn proofs(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2024);
    let parties = Parties::from_fixtures(&mut rng);
    let parties = if std::env::var_os("PROOFS_PLAIN").is_some() {
        parties
    } else {
        parties.accelerated()
    };
    let rho = [1u8; 32];
    let ctx = ProofContext {
        session_id: b"bench",
        prover: 1,
        rho: &rho,
    };
    let mut group = c.benchmark_group("proofs");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(5));
    for instance in all_instances(&mut rng, &parties) {
        let proof = instance.prove(&mut rng, &ctx).expect("honest proof");
        let name = instance.name();
        group.bench_function(format!("{name} prove"), |b| {
            b.iter(|| instance.prove(&mut rng, &ctx))
        });
        group.bench_function(format!("{name} verify"), |b| {
            b.iter(|| instance.verify(&ctx, &proof))
        });
    }
    group.finish();
}

criterion_group!(benches, proofs);
criterion_main!(benches);
