//! Paillier at 3072 bits: encryption by anyone, encryption and decryption by the key owner
//! (CRT), homomorphic scalar multiplication. `cargo bench -p mpc-core --features test-fixtures --bench paillier`
#![allow(missing_docs, clippy::expect_used)]
use criterion::{criterion_group, criterion_main, Criterion};
use mpc_core::arith::random_signed_bits;
use mpc_core::fixtures::safe_prime_pair;
use mpc_core::paillier::PaillierSecretKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn paillier(c: &mut Criterion) {
    let [p, q] = safe_prime_pair(0);
    let sk = PaillierSecretKey::from_primes(p, q).expect("fixture key");
    let pk = sk.public().clone();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let m = random_signed_bits(&mut rng, 1000);
    let (ct, _) = pk.encrypt(&mut rng, &m);
    let k = random_signed_bits(&mut rng, 256);

    let mut group = c.benchmark_group("paillier_3072");
    group.bench_function("encrypt_public", |b| b.iter(|| pk.encrypt(&mut rng, &m)));
    group.bench_function("encrypt_owner_crt", |b| b.iter(|| sk.encrypt(&mut rng, &m)));
    group.bench_function("decrypt_crt", |b| b.iter(|| sk.decrypt(&ct)));
    group.bench_function("mul_plain_256bit", |b| b.iter(|| pk.mul_plain(&ct, &k)));
    group.bench_function("recover_nonce_crt", |b| b.iter(|| sk.recover_nonce(&ct)));
    group.finish();
}

criterion_group!(benches, paillier);
criterion_main!(benches);
