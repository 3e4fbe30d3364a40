//! Shared by the fuzz targets: the honest proof instances of `mpc_core::fixtures::instances`,
//! built deterministically from the committed fixture primes and fixed seeds, so the seed corpus
//! written by `make_seeds` holds valid proofs of exactly these statements and mutations of it
//! reach every check of the verifiers.
#![allow(dead_code)]
use std::sync::OnceLock;

use mpc_core::fixtures::instances::{all_instances, Parties, ProofInstance};
use mpc_core::zk::ProofContext;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const PARTIES_SEED: u64 = 0xF022_0001;
const INSTANCES_SEED: u64 = 0xF022_0002;
pub const RHO: [u8; 32] = [3u8; 32];

pub fn ctx() -> ProofContext<'static> {
    ProofContext {
        session_id: b"fuzz-session",
        prover: 1,
        rho: &RHO,
    }
}

fn parties() -> &'static Parties {
    static PARTIES: OnceLock<Parties> = OnceLock::new();
    PARTIES.get_or_init(|| Parties::from_fixtures(&mut ChaCha20Rng::seed_from_u64(PARTIES_SEED)))
}

pub fn instances() -> &'static [Box<dyn ProofInstance + 'static>] {
    static INSTANCES: OnceLock<Vec<Box<dyn ProofInstance + 'static>>> = OnceLock::new();
    INSTANCES
        .get_or_init(|| all_instances(&mut ChaCha20Rng::seed_from_u64(INSTANCES_SEED), parties()))
}

/// The instance whose name starts with `prefix` (e.g. "Πmod").
pub fn instance(prefix: &str) -> &'static dyn ProofInstance {
    instances()
        .iter()
        .find(|i| i.name().starts_with(prefix) && i.name()[prefix.len()..].starts_with(' '))
        .map(|b| b.as_ref())
        .expect("instance exists")
}
