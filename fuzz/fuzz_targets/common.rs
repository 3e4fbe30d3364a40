//! Fixed keys and context shared by the fuzz targets, built once from the committed fixture
//! primes: the prover's Paillier key (pair 0), the verifier's Paillier key (pair 1) and the
//! verifier's ring-Pedersen parameters (pair 2).
#![allow(dead_code)]
use std::sync::OnceLock;

use mpc_core::paillier::PaillierSecretKey;
use mpc_core::ring_pedersen::{RingPedersenParams, RingPedersenSecret};
use mpc_core::zk::ProofContext;
use rand::SeedableRng;

pub struct Keys {
    pub prover: PaillierSecretKey,
    pub verifier: PaillierSecretKey,
    pub aux: RingPedersenParams,
    pub aux_secret: RingPedersenSecret,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let [p0, q0] = mpc_core::fixtures::safe_prime_pair(0);
        let [p1, q1] = mpc_core::fixtures::safe_prime_pair(1);
        let [p2, q2] = mpc_core::fixtures::safe_prime_pair(2);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0xF022);
        let (aux, aux_secret) =
            RingPedersenSecret::generate(&mut rng, &p2, &q2).expect("fixture ring-Pedersen");
        Keys {
            prover: PaillierSecretKey::from_primes(p0, q0).expect("fixture key"),
            verifier: PaillierSecretKey::from_primes(p1, q1).expect("fixture key"),
            aux,
            aux_secret,
        }
    })
}

pub const RHO: [u8; 32] = [3u8; 32];

pub fn ctx() -> ProofContext<'static> {
    ProofContext {
        session_id: b"fuzz-session",
        prover: 1,
        rho: &RHO,
    }
}

/// Points for statements: G·k for small k.
pub fn point(k: u64) -> k256::ProjectivePoint {
    k256::ProjectivePoint::GENERATOR * k256::Scalar::from(k)
}
