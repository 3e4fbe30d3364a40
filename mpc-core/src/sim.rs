//! In-memory simulation of n parties of any [`Protocol`], with a fault plan (tests, fuzzing
//! and later integration tests; `test-fixtures` feature).
//!
//! [`Sim::run`] starts every party, then repeatedly delivers a queued message whose round the
//! receiver is in (or an older one, which it must refuse), in FIFO order or, with
//! [`Sim::shuffled`], in an order drawn from the caller's seeded RNG. Messages for a later
//! round wait until the receiver gets there. When nothing can be delivered, the parties in the
//! lowest round get [`Protocol::on_round_deadline`], and then messages held back by
//! [`Action::Delay`] are released (so they arrive after the deadline, usually as stale).
//!
//! A [`Fault`] applies to the messages one party sends in one round, optionally only to some
//! receivers and only broadcast or only direct ones: drop them, delay them past the deadline,
//! corrupt the payload with a closure, replay (send again) all of an earlier round's messages,
//! or equivocate (a corruption that only some receivers of a broadcast see).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use rand_core::CryptoRngCore;

use crate::protocol::{
    Abort, Incoming, Kind, Outcome, Outgoing, PartyIndex, Protocol, Recipient, Rejected, Step,
};

/// A payload rewrite.
pub type Corruption = Box<dyn Fn(&mut Vec<u8>)>;

/// What to do with the selected messages.
pub enum Action {
    /// Never deliver.
    Drop,
    /// Deliver only after the next deadline call.
    Delay,
    /// Rewrite the payload.
    Corrupt(Corruption),
    /// Additionally send again every message this party sent in `from_round` (with its
    /// original round number), when it sends its first message of the fault's round.
    Replay {
        /// The round whose messages are replayed (the fault's own round: a duplicate).
        from_round: u16,
    },
}

/// Which messages a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Broadcast and direct.
    Any,
    /// Broadcast only.
    Broadcast,
    /// Direct only.
    Direct,
}

/// One misbehaviour of one party in one round.
pub struct Fault {
    /// The misbehaving sender.
    pub party: PartyIndex,
    /// The round of its messages the fault applies to.
    pub round: u16,
    /// Only messages towards these receivers (`None`: all).
    pub receivers: Option<Vec<PartyIndex>>,
    /// Broadcast, direct, or both.
    pub select: Select,
    /// What happens.
    pub action: Action,
}

impl Fault {
    fn new(party: u16, round: u16, action: Action) -> Self {
        Self {
            party: PartyIndex::new(party),
            round,
            receivers: None,
            select: Select::Any,
            action,
        }
    }

    /// `party` drops all its messages of `round`.
    pub fn drop(party: u16, round: u16) -> Self {
        Self::new(party, round, Action::Drop)
    }

    /// `party`'s messages of `round` arrive after the deadline.
    pub fn delay(party: u16, round: u16) -> Self {
        Self::new(party, round, Action::Delay)
    }

    /// `party`'s messages of `round` are rewritten by `f`.
    pub fn corrupt(party: u16, round: u16, f: impl Fn(&mut Vec<u8>) + 'static) -> Self {
        Self::new(party, round, Action::Corrupt(Box::new(f)))
    }

    /// In `round`, `party` also re-sends its messages of `from_round`.
    pub fn replay(party: u16, round: u16, from_round: u16) -> Self {
        Self::new(party, round, Action::Replay { from_round })
    }

    /// `party`'s broadcast of `round` reaches `receivers` rewritten by `f` and the others
    /// unchanged.
    pub fn equivocate(
        party: u16,
        round: u16,
        receivers: &[u16],
        f: impl Fn(&mut Vec<u8>) + 'static,
    ) -> Self {
        Self::corrupt(party, round, f)
            .to(receivers)
            .only(Select::Broadcast)
    }

    /// Restricts the fault to messages towards `receivers`.
    pub fn to(mut self, receivers: &[u16]) -> Self {
        self.receivers = Some(receivers.iter().map(|r| PartyIndex::new(*r)).collect());
        self
    }

    /// Restricts the fault to broadcast or direct messages.
    pub fn only(mut self, select: Select) -> Self {
        self.select = select;
        self
    }

    fn applies(&self, from: PartyIndex, round: u16, kind: Kind, to: PartyIndex) -> bool {
        self.party == from
            && self.round == round
            && match self.select {
                Select::Any => true,
                Select::Broadcast => kind == Kind::Broadcast,
                Select::Direct => kind == Kind::Direct,
            }
            && self.receivers.as_ref().is_none_or(|r| r.contains(&to))
    }
}

struct Envelope {
    to: PartyIndex,
    msg: Incoming,
}

/// What happened to every party.
pub struct Report<O> {
    /// Each party's outcome (`None`: did not finish).
    pub outcomes: Vec<Option<Outcome<O>>>,
    /// Messages each party refused, with the reason.
    pub rejections: Vec<Vec<(Incoming, Rejected)>>,
    /// How many times deadlines fired.
    pub deadlines: usize,
    /// Every message each party produced (before faults were applied).
    pub sent: Vec<Vec<Outgoing>>,
}

impl<O> Report<O> {
    /// Party i's output, if it finished with one.
    pub fn output(&self, i: u16) -> Option<&O> {
        match self.outcomes.get(usize::from(i)) {
            Some(Some(Outcome::Output(o))) => Some(o),
            _ => None,
        }
    }

    /// Party i's abort, if it aborted.
    pub fn abort(&self, i: u16) -> Option<&Abort> {
        match self.outcomes.get(usize::from(i)) {
            Some(Some(Outcome::Abort(a))) => Some(a),
            _ => None,
        }
    }
}

/// The simulator.
pub struct Sim<P: Protocol> {
    parties: Vec<P>,
    faults: Vec<(Fault, bool)>,
    shuffle: bool,
    max_deadlines: usize,
    queue: VecDeque<Envelope>,
    delayed: Vec<Envelope>,
    sent: Vec<Vec<Outgoing>>,
    outcomes: Vec<Option<Outcome<P::Output>>>,
    rejections: Vec<Vec<(Incoming, Rejected)>>,
}

impl<P: Protocol> Sim<P> {
    /// Parties in index order (`parties[i].me()` must be i).
    pub fn new(parties: Vec<P>) -> Self {
        let n = parties.len();
        Self {
            parties,
            faults: Vec::new(),
            shuffle: false,
            max_deadlines: 64,
            queue: VecDeque::new(),
            delayed: Vec::new(),
            sent: (0..n).map(|_| Vec::new()).collect(),
            outcomes: (0..n).map(|_| None).collect(),
            rejections: (0..n).map(|_| Vec::new()).collect(),
        }
    }

    /// Adds a fault to the plan.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push((fault, false));
        self
    }

    /// Delivers in an order drawn from the RNG instead of FIFO.
    pub fn shuffled(mut self) -> Self {
        self.shuffle = true;
        self
    }

    /// Mutable access to a party (e.g. to feed it extra input between runs).
    pub fn party_mut(&mut self, i: u16) -> Option<&mut P> {
        self.parties.get_mut(usize::from(i))
    }

    fn finished(&self, i: usize) -> bool {
        self.outcomes[i].is_some()
    }

    fn dispatch(&mut self, from: PartyIndex, step: Step<P::Output>) {
        let n = self.parties.len();
        for out in step.outgoing {
            // Replays fire on the party's first message of the fault's round.
            let first_of_round = !self.sent[from.as_usize()]
                .iter()
                .any(|o| o.round == out.round);
            if first_of_round {
                let mut replays = Vec::new();
                for (f, used) in self.faults.iter_mut() {
                    if let Action::Replay { from_round } = f.action {
                        if !*used && f.party == from && f.round == out.round {
                            *used = true;
                            replays.extend(
                                self.sent[from.as_usize()]
                                    .iter()
                                    .filter(|o| o.round == from_round)
                                    .cloned(),
                            );
                        }
                    }
                }
                // same-round replays: duplicate this very message as well
                for (f, _) in self.faults.iter() {
                    if let Action::Replay { from_round } = f.action {
                        if f.party == from && f.round == out.round && from_round == out.round {
                            replays.push(out.clone());
                        }
                    }
                }
                for r in replays {
                    self.enqueue(from, &r, n);
                }
            }
            self.sent[from.as_usize()].push(out.clone());
            self.enqueue(from, &out, n);
        }
        if let Some(outcome) = step.outcome {
            self.outcomes[from.as_usize()] = Some(outcome);
        }
    }

    fn enqueue(&mut self, from: PartyIndex, out: &Outgoing, n: usize) {
        let (kind, receivers): (Kind, Vec<PartyIndex>) = match out.to {
            Recipient::All => (
                Kind::Broadcast,
                (0..n as u16)
                    .map(PartyIndex::new)
                    .filter(|r| *r != from)
                    .collect(),
            ),
            Recipient::One(r) => (Kind::Direct, vec![r]),
        };
        'receivers: for to in receivers {
            if to.as_usize() >= n {
                continue;
            }
            let mut msg = out.to_incoming(from);
            let mut delay = false;
            for (f, _) in &self.faults {
                if !f.applies(from, out.round, kind, to) {
                    continue;
                }
                match &f.action {
                    Action::Drop => continue 'receivers,
                    Action::Delay => delay = true,
                    Action::Corrupt(c) => c(&mut msg.payload),
                    Action::Replay { .. } => {}
                }
            }
            let env = Envelope { to, msg };
            if delay {
                self.delayed.push(env);
            } else {
                self.queue.push_back(env);
            }
        }
    }

    fn deliverable(&self, e: &Envelope) -> bool {
        let to = e.to.as_usize();
        if self.finished(to) {
            return true; // refused with `Finished`
        }
        match self.parties[to].current_round() {
            Some(r) => e.msg.round <= r,
            None => true,
        }
    }

    /// Runs to the end (every party finished, or no progress after the deadline limit).
    pub fn run(mut self, rng: &mut dyn CryptoRngCore) -> Report<P::Output> {
        let n = self.parties.len();
        for i in 0..n {
            let from = PartyIndex::new(i as u16);
            match self.parties[i].start(rng) {
                Ok(step) => self.dispatch(from, step),
                Err(e) => self.rejections[i].push((
                    Incoming {
                        round: 0,
                        from,
                        to: Recipient::All,
                        payload: Vec::new(),
                    },
                    e,
                )),
            }
        }
        let mut deadlines = 0;
        loop {
            if (0..n).all(|i| self.finished(i)) && self.queue.is_empty() {
                break;
            }
            let candidates: Vec<usize> = self
                .queue
                .iter()
                .enumerate()
                .filter(|(_, e)| self.deliverable(e))
                .map(|(k, _)| k)
                .collect();
            if !candidates.is_empty() {
                let pick = if self.shuffle {
                    candidates[(rng.next_u32() as usize) % candidates.len()]
                } else {
                    candidates[0]
                };
                let Some(env) = self.queue.remove(pick) else {
                    break;
                };
                let to = env.to.as_usize();
                if self.finished(to) {
                    self.rejections[to].push((env.msg, Rejected::Finished));
                    continue;
                }
                match self.parties[to].handle(rng, env.msg.clone()) {
                    Ok(step) => self.dispatch(env.to, step),
                    Err(e) => self.rejections[to].push((env.msg, e)),
                }
                continue;
            }
            if (0..n).all(|i| self.finished(i)) || deadlines >= self.max_deadlines {
                break;
            }
            // Nothing deliverable: the deadline of the lowest open round passes.
            deadlines += 1;
            let lowest = (0..n)
                .filter(|&i| !self.finished(i))
                .filter_map(|i| self.parties[i].current_round())
                .min();
            let Some(lowest) = lowest else {
                break;
            };
            for i in 0..n {
                if self.finished(i) || self.parties[i].current_round() != Some(lowest) {
                    continue;
                }
                if let Ok(step) = self.parties[i].on_round_deadline(rng, lowest) {
                    self.dispatch(PartyIndex::new(i as u16), step);
                }
            }
            let released: Vec<Envelope> = self.delayed.drain(..).collect();
            self.queue.extend(released);
        }
        Report {
            outcomes: self.outcomes,
            rejections: self.rejections,
            deadlines,
            sent: self.sent,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The harness on a toy protocol (one broadcast round: output the sum of the bytes
    //! received; a missing sender at the deadline counts as 0), independent of the DKG.
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    struct Toy {
        me: PartyIndex,
        got: Vec<Option<u8>>,
        done: bool,
    }

    impl Toy {
        fn new(me: u16, n: u16) -> Self {
            Self {
                me: PartyIndex::new(me),
                got: vec![None; usize::from(n)],
                done: false,
            }
        }

        fn finish(&mut self) -> Step<u32> {
            self.done = true;
            Step {
                outgoing: Vec::new(),
                outcome: Some(Outcome::Output(
                    self.got.iter().map(|v| u32::from(v.unwrap_or(0))).sum(),
                )),
            }
        }
    }

    impl Protocol for Toy {
        type Output = u32;
        fn me(&self) -> PartyIndex {
            self.me
        }
        fn current_round(&self) -> Option<u16> {
            (!self.done).then_some(1)
        }
        fn start(&mut self, _: &mut dyn CryptoRngCore) -> Result<Step<u32>, Rejected> {
            let v = self.me.get() as u8 + 1;
            self.got[self.me.as_usize()] = Some(v);
            Ok(Step {
                outgoing: vec![Outgoing {
                    round: 1,
                    to: Recipient::All,
                    payload: vec![v],
                }],
                outcome: None,
            })
        }
        fn handle(
            &mut self,
            _: &mut dyn CryptoRngCore,
            msg: Incoming,
        ) -> Result<Step<u32>, Rejected> {
            if self.done {
                return Err(Rejected::Finished);
            }
            if msg.round != 1 {
                return Err(Rejected::WrongRound {
                    expected: 1,
                    got: msg.round,
                });
            }
            let [v] = msg.payload[..] else {
                return Err(Rejected::Oversized {
                    len: msg.payload.len(),
                    max: 1,
                });
            };
            let slot = &mut self.got[msg.from.as_usize()];
            if slot.is_some() {
                return Err(Rejected::Duplicate);
            }
            *slot = Some(v);
            if self.got.iter().all(Option::is_some) {
                return Ok(self.finish());
            }
            Ok(Step::empty())
        }
        fn on_round_deadline(
            &mut self,
            _: &mut dyn CryptoRngCore,
            _round: u16,
        ) -> Result<Step<u32>, Rejected> {
            Ok(self.finish())
        }
    }

    fn run(faults: Vec<Fault>) -> Report<u32> {
        let mut sim = Sim::new((0..4).map(|i| Toy::new(i, 4)).collect());
        for f in faults {
            sim = sim.fault(f);
        }
        sim.run(&mut ChaCha20Rng::seed_from_u64(1))
    }

    #[test]
    fn honest_toy_run_needs_no_deadline() {
        let r = run(Vec::new());
        assert_eq!(r.deadlines, 0);
        for i in 0..4 {
            assert_eq!(r.output(i), Some(&10));
        }
    }

    #[test]
    fn drop_corrupt_delay_replay_and_equivocate_reach_the_right_receivers() {
        // dropped towards party 0 only: it waits for the deadline and counts 0 for party 3
        let r = run(vec![Fault::drop(3, 1).to(&[0])]);
        assert_eq!(r.deadlines, 1);
        assert_eq!(r.output(0), Some(&6));
        assert_eq!(r.output(1), Some(&10));
        // corrupted for everyone
        let r = run(vec![Fault::corrupt(1, 1, |b: &mut Vec<u8>| b[0] = 100)]);
        assert_eq!(r.output(0), Some(&108));
        assert_eq!(r.output(1), Some(&10));
        // equivocation: receivers 2 and 3 see another value than receiver 0
        let r = run(vec![Fault::equivocate(1, 1, &[2, 3], |b: &mut Vec<u8>| {
            b[0] = 50
        })]);
        assert_eq!(r.output(0), Some(&10));
        assert_eq!(r.output(2), Some(&58));
        // delayed: arrives after the deadline, refused as the receiver finished
        let r = run(vec![Fault::delay(2, 1)]);
        assert_eq!(r.output(0), Some(&7));
        assert!(r.rejections[0]
            .iter()
            .any(|(m, e)| m.from == PartyIndex::new(2) && *e == Rejected::Finished));
        // replayed in the same round: a duplicate (or late: the receiver may be done)
        let r = run(vec![Fault::replay(0, 1, 1)]);
        assert_eq!(r.output(1), Some(&10));
        assert!(r.rejections[1]
            .iter()
            .any(|(m, e)| m.from == PartyIndex::new(0)
                && matches!(e, Rejected::Duplicate | Rejected::Finished)));
        assert_eq!(
            r.sent[0].len(),
            1,
            "the replay is not a message the party made"
        );
    }
}
