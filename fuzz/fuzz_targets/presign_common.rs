//! Shared by the presigning fuzz target and `make_seeds`: a 2-of-2 key (DKG with fixed seeds),
//! dealt aux info from the fixture primes, and the honest messages party 1 sends party 0 in a
//! presigning run of the same session (same seeds), so inputs can replay, reorder and mutate
//! real messages and reach every round.
#![allow(dead_code)]
use std::sync::{Arc, OnceLock};

use mpc_core::aux_info::{dealt_for_tests, AuxInfo};
use mpc_core::dkg::{DkgConfig, DkgParty, KeyShare};
use mpc_core::presign::{PresignConfig, PresignParty, PresignaturePublic};
use mpc_core::protocol::{Committee, Incoming, Outcome, PartyIndex, Recipient};
use mpc_core::sim::Sim;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const M: u16 = 2;
const SEED: u64 = 0x9E51_0001;

struct Setup {
    keys: Vec<KeyShare>,
    aux: Vec<Arc<AuxInfo>>,
    honest: Vec<Incoming>,
    public: PresignaturePublic,
    /// Party 0's key share, aux info and presignature as store records.
    records: [Vec<u8>; 3],
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let committee = Committee::standard(M).expect("committee");
        let dkg: Vec<DkgParty> = (0..M)
            .map(|i| {
                let cfg = DkgConfig {
                    session_id: b"fuzz-presign-dkg".to_vec(),
                    committee: committee.clone(),
                    threshold: M,
                    me: PartyIndex::new(i),
                };
                DkgParty::new(cfg, &mut ChaCha20Rng::seed_from_u64(SEED + u64::from(i)))
                    .expect("dkg party")
            })
            .collect();
        let report = Sim::new(dkg).run(&mut ChaCha20Rng::seed_from_u64(SEED));
        let keys: Vec<KeyShare> = report
            .outcomes
            .into_iter()
            .map(|o| match o {
                Some(Outcome::Output(k)) => k,
                _ => panic!("honest DKG finishes"),
            })
            .collect();
        let aux: Vec<Arc<AuxInfo>> = dealt_for_tests(
            M,
            b"fuzz-presign-aux",
            &mut ChaCha20Rng::seed_from_u64(SEED),
        )
        .into_iter()
        .map(Arc::new)
        .collect();
        let parties = (0..M).map(|i| party_with(&keys, &aux, i)).collect();
        let report = Sim::new(parties).run(&mut ChaCha20Rng::seed_from_u64(1));
        let (public, presignature) = match report.outcomes.first() {
            Some(Some(Outcome::Output(p))) => (p.public().clone(), p.to_bytes().to_vec()),
            _ => panic!("honest presigning finishes"),
        };
        let records = [
            keys[0].to_bytes().to_vec(),
            aux[0].to_bytes().to_vec(),
            presignature,
        ];
        let me = PartyIndex::new(0);
        let mut honest: Vec<Incoming> = report.sent[1]
            .iter()
            .filter(|o| o.to == Recipient::All || o.to == Recipient::One(me))
            .map(|o| o.to_incoming(PartyIndex::new(1)))
            .collect();
        honest.sort_by_key(|m| m.round);
        Setup {
            keys,
            aux,
            honest,
            public,
            records,
        }
    })
}

fn party_with(keys: &[KeyShare], aux: &[Arc<AuxInfo>], i: u16) -> PresignParty {
    let cfg = PresignConfig {
        session_id: b"fuzz-presign-session".to_vec(),
        key_id: b"fuzz-key".to_vec(),
        epoch: 0,
        signers: (0..M).map(PartyIndex::new).collect(),
        path: "m/3".parse().expect("path"),
    };
    PresignParty::new(
        cfg,
        &keys[usize::from(i)],
        Arc::clone(&aux[usize::from(i)]),
        &mut ChaCha20Rng::seed_from_u64(SEED ^ u64::from(i)),
    )
    .expect("presign party")
}

/// Party 0, in the same state as in the honest run.
pub fn party0() -> PresignParty {
    let s = setup();
    party_with(&s.keys, &s.aux, 0)
}

/// The honest messages towards party 0, in round order.
pub fn honest_to_party_0() -> &'static [Incoming] {
    &setup().honest
}

/// The public values of the honest run's presignature.
pub fn honest_public() -> &'static PresignaturePublic {
    &setup().public
}

/// Party 0's key share, aux info and presignature of the honest run, encoded for the store
/// (`mpc_core::store`): seeds of the `store_decoders` target.
pub fn store_records() -> &'static [Vec<u8>; 3] {
    &setup().records
}
