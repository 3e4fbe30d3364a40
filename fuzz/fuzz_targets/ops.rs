//! The operation interpreter shared by the state-machine fuzz targets (`dkg_party`,
//! `presign_party`, `aux_party`): the input is a sequence of operations (first byte of each,
//! mod 4):
//! 0 r: a round deadline passes (the current round's if r < 200, else round r mod `rounds`);
//! 1 k: deliver honest message k; 2 k p x: deliver honest message k with byte p·stride xor x;
//! 3 r f d n ..n bytes: a raw message of round r mod `rounds` from party f mod `senders`
//! (d mod 3: broadcast, to us, or to someone else).
#![allow(dead_code)]
use mpc_core::protocol::{Incoming, Outcome, PartyIndex, Protocol, Recipient};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Runs `data`'s operations against `party` (party 0), starting it first; returns its outcome
/// if it finished. Refused input is simply skipped: refusals must leave the state unchanged.
pub fn run<P: Protocol>(
    mut party: P,
    honest: &[Incoming],
    data: &[u8],
    rounds: u8,
    senders: u8,
    stride: usize,
) -> Option<Outcome<P::Output>> {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut outcome = party.start(&mut rng).expect("start").outcome;
    let mut input = data.iter().copied();
    while outcome.is_none() {
        let Some(op) = input.next() else { break };
        let result = match op % 4 {
            0 => {
                let Some(r) = input.next() else { break };
                let current = party.current_round().unwrap_or(0);
                let round = if r < 200 {
                    current
                } else {
                    u16::from(r % rounds)
                };
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
                        msg.payload[usize::from(p) * stride % len] ^= x;
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
                    round: u16::from(r % rounds),
                    from: PartyIndex::new(u16::from(f % senders)),
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
    outcome
}
