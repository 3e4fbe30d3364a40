//! Shared by the resharing fuzz target and `make_seeds`: a 2-of-2 key (DKG with fixed seeds)
//! reshared to a new 2-of-3 committee; position 0 (the first dealer) is fuzzed, with the honest
//! messages the other positions send it in a run of the same session (same seeds).
#![allow(dead_code)]
use std::sync::OnceLock;

use mpc_core::dkg::{DkgConfig, DkgParty, KeyShare};
use mpc_core::protocol::{Committee, Incoming, Outcome, PartyIndex, Recipient};
use mpc_core::reshare::{ReshareParty, ReshareSession};
use mpc_core::sim::Sim;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const SEED: u64 = 0x5E5A_0001;

struct Setup {
    keys: Vec<KeyShare>,
    session: ReshareSession,
    honest: Vec<Incoming>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let committee = Committee::standard(2).expect("committee");
        let dkg: Vec<DkgParty> = (0..2u16)
            .map(|i| {
                let cfg = DkgConfig {
                    session_id: b"fuzz-reshare-dkg".to_vec(),
                    committee: committee.clone(),
                    threshold: 2,
                    me: PartyIndex::new(i),
                };
                DkgParty::new(cfg, &mut ChaCha20Rng::seed_from_u64(SEED + u64::from(i)))
                    .expect("dkg party")
            })
            .collect();
        let keys: Vec<KeyShare> = Sim::new(dkg)
            .run(&mut ChaCha20Rng::seed_from_u64(SEED))
            .outcomes
            .into_iter()
            .map(|o| match o {
                Some(Outcome::Output(k)) => k,
                _ => panic!("honest DKG finishes"),
            })
            .collect();
        let session = ReshareSession::from_key(
            b"fuzz-reshare",
            &keys[0],
            vec![PartyIndex::new(0), PartyIndex::new(1)],
            Committee::standard(3).expect("committee"),
            2,
        );
        let mut parties = vec![dealer(&keys, &session, 0), dealer(&keys, &session, 1)];
        for j in 0..3 {
            parties.push(ReshareParty::receiver(session.clone(), PartyIndex::new(j)).expect("rx"));
        }
        let report = Sim::new(parties).run(&mut ChaCha20Rng::seed_from_u64(1));
        assert!(report.output(0).is_some(), "honest resharing finishes");
        let me = PartyIndex::new(0);
        let mut honest: Vec<Incoming> = Vec::new();
        for (pos, sent) in report.sent.iter().enumerate().skip(1) {
            for o in sent {
                if o.to == Recipient::All || o.to == Recipient::One(me) {
                    honest.push(o.to_incoming(PartyIndex::new(pos as u16)));
                }
            }
        }
        honest.sort_by_key(|m| m.round);
        Setup {
            keys,
            session,
            honest,
        }
    })
}

fn dealer(keys: &[KeyShare], session: &ReshareSession, i: u16) -> ReshareParty {
    ReshareParty::dealer(
        session.clone(),
        &keys[usize::from(i)],
        &mut ChaCha20Rng::seed_from_u64(SEED ^ u64::from(i)),
    )
    .expect("dealer")
}

/// Position 0 (dealer 0), in the same state as in the honest run.
pub fn party0() -> ReshareParty {
    let s = setup();
    dealer(&s.keys, &s.session, 0)
}

/// The honest messages towards position 0, in round order.
pub fn honest_to_party_0() -> &'static [Incoming] {
    &setup().honest
}
