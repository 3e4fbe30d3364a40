//! Which t signers sign: the most reliable ones (whitepaper §3.4.3, "a signing session on t
//! signers chosen by reliability").
//!
//! Each signer has a score that moves towards 1 after a session it completed and towards 0
//! after a session it failed (unreachable, timed out, or named as a culprit by the protocol's
//! identifiable abort). A culprit is also excluded for a cool-down, so one retry never picks
//! the signer that just cheated. Scores live in memory: after a coordinator restart every
//! signer starts equal again, which only affects who is asked first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Weight of the newest result in the moving average.
const WEIGHT: f64 = 0.3;
/// Score of a signer nothing is known about.
const START: f64 = 1.0;
/// How long a signer named as a culprit is not chosen.
pub const CULPRIT_COOL_DOWN: Duration = Duration::from_secs(600);

/// What a session showed about one signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// It did its part.
    Completed,
    /// It did not answer, or the session expired waiting for it.
    Unresponsive,
    /// The protocol named it as a culprit (identifiable abort).
    Culprit,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    score: f64,
    excluded_until: Option<Instant>,
}

/// Reliability of every signer of the fleet.
#[derive(Debug, Clone)]
pub struct Reliability {
    records: BTreeMap<u16, Record>,
}

impl Reliability {
    /// Every signer in `signers` at the starting score.
    pub fn new(signers: impl IntoIterator<Item = u16>) -> Self {
        Self {
            records: signers
                .into_iter()
                .map(|i| {
                    (
                        i,
                        Record {
                            score: START,
                            excluded_until: None,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Records what a session showed about `signer` (unknown signers are ignored).
    pub fn observe(&mut self, signer: u16, observation: Observation, now: Instant) {
        let Some(r) = self.records.get_mut(&signer) else {
            return;
        };
        let target = match observation {
            Observation::Completed => 1.0,
            Observation::Unresponsive | Observation::Culprit => 0.0,
        };
        r.score = (1.0 - WEIGHT) * r.score + WEIGHT * target;
        if observation == Observation::Culprit {
            r.excluded_until = Some(now + CULPRIT_COOL_DOWN);
        }
    }

    /// The score of `signer` in [0, 1], if it is known.
    pub fn score(&self, signer: u16) -> Option<f64> {
        self.records.get(&signer).map(|r| r.score)
    }

    /// Whether `signer` is known and not cooling down after a blame or a failure.
    pub fn choosable(&self, signer: u16, now: Instant) -> bool {
        self.records
            .get(&signer)
            .is_some_and(|r| r.excluded_until.is_none_or(|until| until <= now))
    }

    /// The `t` most reliable signers among `holders` that are not in `avoid` and not cooling
    /// down after a blame, in increasing index order; ties go to the lower index. `None` if
    /// fewer than `t` qualify.
    pub fn choose(
        &self,
        holders: &[u16],
        t: usize,
        avoid: &[u16],
        now: Instant,
    ) -> Option<Vec<u16>> {
        let mut candidates: Vec<(u16, f64)> = holders
            .iter()
            .filter(|i| !avoid.contains(i) && self.choosable(**i, now))
            .filter_map(|&i| Some((i, self.records.get(&i)?.score)))
            .collect();
        if t == 0 || candidates.len() < t {
            return None;
        }
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut chosen: Vec<u16> = candidates.into_iter().take(t).map(|(i, _)| i).collect();
        chosen.sort_unstable();
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_signers_are_chosen_by_index() {
        let r = Reliability::new(1..=5);
        assert_eq!(
            r.choose(&[1, 2, 3, 4, 5], 3, &[], Instant::now()),
            Some(vec![1, 2, 3])
        );
    }

    #[test]
    fn unresponsive_signers_move_back() {
        let now = Instant::now();
        let mut r = Reliability::new(1..=5);
        r.observe(2, Observation::Unresponsive, now);
        assert_eq!(r.choose(&[1, 2, 3, 4, 5], 3, &[], now), Some(vec![1, 3, 4]));
        // good service brings it back in front of a signer that failed twice
        r.observe(4, Observation::Unresponsive, now);
        r.observe(4, Observation::Unresponsive, now);
        r.observe(5, Observation::Unresponsive, now);
        for _ in 0..5 {
            r.observe(2, Observation::Completed, now);
        }
        assert_eq!(r.choose(&[1, 2, 3, 4, 5], 3, &[], now), Some(vec![1, 2, 3]));
    }

    #[test]
    fn culprits_cool_down_and_avoid_is_honoured() {
        let now = Instant::now();
        let mut r = Reliability::new(1..=4);
        r.observe(1, Observation::Culprit, now);
        assert_eq!(r.choose(&[1, 2, 3, 4], 3, &[], now), Some(vec![2, 3, 4]));
        assert_eq!(r.choose(&[1, 2, 3, 4], 3, &[3], now), None);
        let later = now + CULPRIT_COOL_DOWN + Duration::from_secs(1);
        assert_eq!(r.choose(&[1, 2, 3, 4], 3, &[3], later), Some(vec![1, 2, 4]));
    }

    #[test]
    fn too_few_or_unknown_signers() {
        let r = Reliability::new([1, 2]);
        let now = Instant::now();
        assert_eq!(r.choose(&[1, 2, 9], 3, &[], now), None);
        assert_eq!(r.choose(&[1, 2], 0, &[], now), None);
        assert_eq!(r.score(9), None);
    }
}
