//! Shared by the aux-info fuzz target and `make_seeds`: a 2-party aux-info session from the
//! fixture primes with fixed seeds, and the honest messages party 1 sends party 0 in a run of
//! the same session, so inputs can replay, reorder and mutate real messages.
#![allow(dead_code)]
use std::sync::OnceLock;

use mpc_core::aux_info::{AuxConfig, AuxInfoParty, AuxPrimes};
use mpc_core::fixtures::safe_prime_pair;
use mpc_core::protocol::{Committee, Incoming, PartyIndex, Recipient};
use mpc_core::sim::Sim;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const M: u16 = 2;
const SEED: u64 = 0xA0C5_0001;

pub fn party(i: u16) -> AuxInfoParty {
    let [p, q] = safe_prime_pair(2 * usize::from(i));
    let [ph, qh] = safe_prime_pair(2 * usize::from(i) + 1);
    AuxInfoParty::new(
        AuxConfig {
            session_id: b"fuzz-aux-session".to_vec(),
            committee: Committee::standard(M).expect("committee"),
            me: PartyIndex::new(i),
        },
        AuxPrimes::new(p, q, ph, qh),
        &mut ChaCha20Rng::seed_from_u64(SEED + u64::from(i)),
    )
    .expect("aux party")
}

/// The honest messages towards party 0, in round order.
pub fn honest_to_party_0() -> &'static [Incoming] {
    static MSGS: OnceLock<Vec<Incoming>> = OnceLock::new();
    MSGS.get_or_init(|| {
        let report = Sim::new((0..M).map(party).collect()).run(&mut ChaCha20Rng::seed_from_u64(1));
        assert!(report.output(0).is_some(), "honest run finishes");
        let me = PartyIndex::new(0);
        let mut out: Vec<Incoming> = report.sent[1]
            .iter()
            .filter(|o| o.to == Recipient::All || o.to == Recipient::One(me))
            .map(|o| o.to_incoming(PartyIndex::new(1)))
            .collect();
        out.sort_by_key(|m| m.round);
        out
    })
}
