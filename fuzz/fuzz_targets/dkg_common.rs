//! Shared by the DKG fuzz target and `make_seeds`: a (t, m) = (2, 3) session in which party 0
//! is fuzzed, and the honest messages parties 1 and 2 send it in a run of the same session
//! (same seeds), so inputs can replay, reorder and mutate real messages and reach every round.
#![allow(dead_code)]
use std::sync::OnceLock;

use mpc_core::dkg::{DkgConfig, DkgParty};
use mpc_core::protocol::{Committee, Incoming, PartyIndex, Recipient};
use mpc_core::sim::Sim;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const T: u16 = 2;
pub const M: u16 = 3;
const SEED: u64 = 0xD4C0_0001;

pub fn party(i: u16) -> DkgParty {
    let cfg = DkgConfig {
        session_id: b"fuzz-dkg-session".to_vec(),
        committee: Committee::standard(M).expect("committee"),
        threshold: T,
        me: PartyIndex::new(i),
    };
    DkgParty::new(cfg, &mut ChaCha20Rng::seed_from_u64(SEED + u64::from(i))).expect("party")
}

/// The honest messages towards party 0, in the order an honest run produced them.
pub fn honest_to_party_0() -> &'static [Incoming] {
    static MSGS: OnceLock<Vec<Incoming>> = OnceLock::new();
    MSGS.get_or_init(|| {
        let report = Sim::new((0..M).map(party).collect()).run(&mut ChaCha20Rng::seed_from_u64(1));
        assert!(report.output(0).is_some(), "honest run finishes");
        let me = PartyIndex::new(0);
        let mut out = Vec::new();
        for j in 1..M {
            for o in &report.sent[usize::from(j)] {
                if o.to == Recipient::All || o.to == Recipient::One(me) {
                    out.push(o.to_incoming(PartyIndex::new(j)));
                }
            }
        }
        out.sort_by_key(|m| m.round);
        out
    })
}
