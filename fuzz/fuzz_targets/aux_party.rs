//! An aux-info party (party 0 of a 2-party session) fed arbitrary message sequences: never
//! panics, and if it finishes, its output has the honest run's ρ and both parties' keys.
//!
//! Input = a sequence of operations (first byte of each, mod 4): 0 r: a round deadline (the
//! current round's if r < 200, else round r mod 6); 1 k: deliver honest message k; 2 k p x:
//! deliver honest message k with byte p xor x; 3 r f d n ..n bytes: a raw message of round r
//! from party f (d: broadcast, to us, or to someone else).
#![no_main]
#[path = "aux_common.rs"]
mod aux_common;

use libfuzzer_sys::fuzz_target;
use mpc_core::protocol::{Incoming, Outcome, PartyIndex, Protocol, Recipient};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fuzz_target!(|data: &[u8]| {
    let honest = aux_common::honest_to_party_0();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut party = aux_common::party(0);
    let mut outcome = party.start(&mut rng).expect("start").outcome;
    let mut input = data.iter().copied();
    while outcome.is_none() {
        let Some(op) = input.next() else { break };
        let result = match op % 4 {
            0 => {
                let Some(r) = input.next() else { break };
                let current = party.current_round().unwrap_or(0);
                let round = if r < 200 { current } else { u16::from(r % 6) };
                party.on_round_deadline(&mut rng, round)
            }
            1 | 2 => {
                let Some(k) = input.next() else { break };
                let mut msg = honest[usize::from(k) % honest.len()].clone();
                if op % 4 == 2 {
                    let (Some(p), Some(x)) = (input.next(), input.next()) else {
                        break;
                    };
                    let len = msg.payload.len();
                    if len > 0 {
                        msg.payload[usize::from(p) * 131 % len] ^= x;
                    }
                }
                party.handle(&mut rng, msg)
            }
            _ => {
                let (Some(r), Some(f), Some(d), Some(n)) =
                    (input.next(), input.next(), input.next(), input.next())
                else {
                    break;
                };
                let payload: Vec<u8> = input.by_ref().take(usize::from(n)).collect();
                let to = match d % 3 {
                    0 => Recipient::All,
                    1 => Recipient::One(PartyIndex::new(0)),
                    _ => Recipient::One(PartyIndex::new(1)),
                };
                let msg = Incoming {
                    round: u16::from(r % 6),
                    from: PartyIndex::new(u16::from(f % 4)),
                    to,
                    payload,
                };
                party.handle(&mut rng, msg)
            }
        };
        if let Ok(step) = result {
            outcome = step.outcome;
        }
    }
    if let Some(Outcome::Output(info)) = outcome {
        assert_eq!(info.parties(), 2);
        assert!(info.party(PartyIndex::new(1)).is_some());
    }
});
