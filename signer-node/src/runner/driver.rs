//! Drives one mpc-core [`Protocol`] of a session over envelopes.
//!
//! The driver owns the state machine and calls it only on a blocking thread (protocol rounds
//! take up to seconds of CPU). It takes envelopes from the session's channel, turns them into
//! [`Incoming`] messages (the sender's position from its verified signer index, NET-02),
//! holds messages of a later round or a later phase until the party gets there, drops
//! messages of past rounds, and calls `on_round_deadline` when a round has waited the
//! configured deadline. Each [`Outgoing`] becomes one signed envelope, sent to one peer or to
//! every other party of the session. Every received envelope is kept until the session ends:
//! an abort's blame carries the culprits' envelopes as evidence.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use custody_proto::signer::v1::{Blame, ProtocolKind, SessionState};
use mpc_core::protocol::{
    Abort, AbortReason, Incoming, Outcome, Outgoing, PartyIndex, Protocol, Recipient as CoreTo,
    Rejected, Step,
};
use rand::rngs::OsRng;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::FleetId;
use crate::envelope::{EnvelopeHeader, Recipient, SessionId, VerifiedEnvelope};

use super::outbox::Outbox;
use super::positions::Positions;
use super::registry::Registry;

/// Who takes part in one phase, by position.
#[derive(Debug, Clone)]
pub struct Route {
    /// The key's (or keygen's) committee: positions ↔ signer indices.
    pub committee: Positions,
    /// The positions taking part in this phase (all of the committee, or the signers).
    pub parties: Vec<PartyIndex>,
    /// Our position.
    pub me: PartyIndex,
}

impl Route {
    /// Every position of `committee` takes part (DKG, aux info, refresh, reshare); `me` is
    /// ours.
    pub fn whole(committee: Positions, me: PartyIndex) -> Self {
        let parties = (0..committee.members().len())
            .filter_map(|p| u16::try_from(p).ok())
            .map(PartyIndex::new)
            .collect();
        Self {
            committee,
            parties,
            me,
        }
    }

    fn recipients(&self, to: CoreTo) -> Vec<u16> {
        match to {
            CoreTo::All => self
                .parties
                .iter()
                .filter(|p| **p != self.me)
                .filter_map(|p| self.committee.index_of(*p))
                .collect(),
            CoreTo::One(p) => self.committee.index_of(p).into_iter().collect(),
        }
    }
}

/// How a phase ended when it did not produce its output.
#[derive(Debug)]
pub enum PhaseFailure {
    /// The protocol aborted: the state to report (ABORTED, or EXPIRED for a missing
    /// message) and the blame.
    Aborted(SessionState, Blame),
    /// The node could not go on (a task failed, the channel closed): ABORTED, blaming nobody.
    Local(String),
}

impl PhaseFailure {
    /// The blame to record.
    pub fn into_parts(self) -> (SessionState, Blame) {
        match self {
            PhaseFailure::Aborted(state, blame) => (state, blame),
            PhaseFailure::Local(reason) => (
                SessionState::Aborted,
                Blame {
                    culprits: Vec::new(),
                    reason: format!("local failure: {reason}"),
                    evidence: Vec::new(),
                },
            ),
        }
    }
}

/// The session's side of the network, kept across its phases.
pub struct SessionIo {
    /// The session.
    pub id: SessionId,
    fleet: FleetId,
    me: u16,
    phases: Vec<ProtocolKind>,
    rx: mpsc::Receiver<VerifiedEnvelope>,
    held: Vec<VerifiedEnvelope>,
    evidence: Vec<VerifiedEnvelope>,
    deadline: Duration,
    /// Rounds that get several deadlines: (phase, round, factor).
    allowances: Vec<(ProtocolKind, u16, u32)>,
    outbox: Arc<Outbox>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for SessionIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionIo")
            .field("id", &self.id)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// Runs `f` on the party on a blocking thread and gives the party back.
async fn on_blocking<P, T>(
    mut party: P,
    f: impl FnOnce(&mut P, &mut OsRng) -> T + Send + 'static,
) -> Result<(P, T), PhaseFailure>
where
    P: Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let out = f(&mut party, &mut OsRng);
        (party, out)
    })
    .await
    .map_err(|e| PhaseFailure::Local(format!("protocol task failed: {e}")))
}

impl SessionIo {
    /// The network side of session `id`, whose phases run `phases` in order.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: SessionId,
        fleet: FleetId,
        me: u16,
        phases: Vec<ProtocolKind>,
        rx: mpsc::Receiver<VerifiedEnvelope>,
        deadline: Duration,
        outbox: Arc<Outbox>,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            id,
            fleet,
            me,
            phases,
            rx,
            held: Vec::new(),
            evidence: Vec::new(),
            deadline,
            allowances: Vec::new(),
            outbox,
            registry,
        }
    }

    /// Gives round `round` of phase `kind` `factor` round deadlines instead of one: for a
    /// party that waits there while the others run an earlier phase it takes no part in (a
    /// reshare dealer that leaves, while the new committee makes its aux info).
    pub fn allow_rounds(&mut self, kind: ProtocolKind, round: u16, factor: u32) {
        self.allowances.push((kind, round, factor.max(1)));
    }

    fn deadline_for(&self, kind: ProtocolKind, round: u16) -> Duration {
        self.allowances
            .iter()
            .find(|(k, r, _)| *k == kind && *r == round)
            .map_or(self.deadline, |(_, _, f)| self.deadline.saturating_mul(*f))
    }

    fn phase_rank(&self, kind: ProtocolKind) -> Option<usize> {
        self.phases.iter().position(|k| *k == kind)
    }

    /// Runs one phase to its end.
    pub async fn run<P>(
        &mut self,
        kind: ProtocolKind,
        route: &Route,
        party: P,
    ) -> Result<P::Output, PhaseFailure>
    where
        P: Protocol + Send + 'static,
        P::Output: Send + 'static,
    {
        let rank = self
            .phase_rank(kind)
            .ok_or_else(|| PhaseFailure::Local(format!("{kind:?} is not a phase")))?;
        let (mut party, step) = on_blocking(party, |p, rng| p.start(rng)).await?;
        let step = step.map_err(|e| PhaseFailure::Local(format!("start refused: {e}")))?;
        if let Some(out) = self.act(kind, route, step)? {
            return Ok(out);
        }
        let mut round_seen: Option<u16> = None;
        let mut round_deadline = Instant::now() + self.deadline;
        loop {
            let Some(round) = party.current_round() else {
                return Err(PhaseFailure::Local(
                    "protocol stopped without an outcome".into(),
                ));
            };
            if round_seen != Some(round) {
                round_seen = Some(round);
                round_deadline = Instant::now() + self.deadline_for(kind, round);
                self.registry.set_round(&self.id, round);
            }
            // messages held for this round first
            let next = match self
                .held
                .iter()
                .position(|e| e.header().protocol == kind && e.header().round == round)
            {
                Some(i) => Some(self.held.swap_remove(i)),
                None => None,
            };
            let envelope = match next {
                Some(envelope) => envelope,
                None => {
                    let event = tokio::select! {
                        received = self.rx.recv() => Some(received),
                        _ = tokio::time::sleep_until(round_deadline) => None,
                    };
                    match event {
                        Some(None) => {
                            return Err(PhaseFailure::Local("session inbox closed".into()))
                        }
                        Some(Some(envelope)) => {
                            let h = envelope.header();
                            let their_rank = self.phase_rank(h.protocol).unwrap_or(0);
                            if their_rank > rank || (their_rank == rank && h.round > round) {
                                self.held.push(envelope);
                                continue;
                            }
                            if their_rank < rank || h.round < round {
                                tracing::debug!(session = %self.id, from = h.from, round = h.round, "dropping a message of a past round");
                                continue;
                            }
                            envelope
                        }
                        None => {
                            tracing::info!(session = %self.id, protocol = ?kind, round, "round deadline passed");
                            let (p, step) =
                                on_blocking(party, move |p, rng| p.on_round_deadline(rng, round))
                                    .await?;
                            party = p;
                            // a deadline for a round already left is refused: nothing to do
                            if let Ok(step) = step {
                                if let Some(out) = self.act(kind, route, step)? {
                                    return Ok(out);
                                }
                            }
                            continue;
                        }
                    }
                }
            };
            let (p, step) = self.handle(party, route, envelope).await?;
            party = p;
            if let Some(step) = step {
                if let Some(out) = self.act(kind, route, step)? {
                    return Ok(out);
                }
            }
        }
    }

    /// Hands one envelope to the party; a refusal is logged and changes nothing.
    async fn handle<P>(
        &mut self,
        party: P,
        route: &Route,
        envelope: VerifiedEnvelope,
    ) -> Result<(P, Option<Step<P::Output>>), PhaseFailure>
    where
        P: Protocol + Send + 'static,
        P::Output: Send + 'static,
    {
        let h = envelope.header().clone();
        let Some(from) = route.committee.position_of(h.from) else {
            return Ok((party, None));
        };
        let to = match h.to {
            Recipient::Broadcast => CoreTo::All,
            Recipient::Signer(_) => CoreTo::One(route.me),
        };
        let incoming = Incoming {
            round: h.round,
            from,
            to,
            payload: envelope.payload().to_vec(),
        };
        self.evidence.push(envelope);
        let (party, result) = on_blocking(party, move |p, rng| p.handle(rng, incoming)).await?;
        match result {
            Ok(step) => Ok((party, Some(step))),
            Err(Rejected::Duplicate) => Ok((party, None)),
            Err(e) => {
                tracing::warn!(session = %self.id, from = h.from, round = h.round, error = %e, "message refused by the protocol");
                Ok((party, None))
            }
        }
    }

    /// Sends a step's messages; returns the output, or the failure of an abort.
    fn act<O>(
        &mut self,
        kind: ProtocolKind,
        route: &Route,
        step: Step<O>,
    ) -> Result<Option<O>, PhaseFailure> {
        for Outgoing { round, to, payload } in step.outgoing {
            let recipients = route.recipients(to);
            let header = EnvelopeHeader {
                fleet_id: self.fleet.clone(),
                session_id: self.id,
                protocol: kind,
                round,
                from: self.me,
                to: match to {
                    CoreTo::All => Recipient::Broadcast,
                    CoreTo::One(_) => match recipients.first() {
                        Some(i) => Recipient::Signer(*i),
                        None => continue,
                    },
                },
            };
            // test builds only: an armed fault may corrupt a proof before signing (fault.rs)
            let payload = crate::fault::outgoing(
                kind,
                round,
                matches!(to, CoreTo::All),
                route.committee.members().len(),
                payload,
            );
            self.outbox.send(&header, payload, &recipients);
        }
        match step.outcome {
            None => Ok(None),
            Some(Outcome::Output(o)) => Ok(Some(o)),
            Some(Outcome::Abort(abort)) => Err(self.blame(route, &abort)),
        }
    }

    fn blame(&self, route: &Route, abort: &Abort) -> PhaseFailure {
        let culprits: BTreeSet<u16> = abort
            .culprits
            .iter()
            .filter_map(|p| route.committee.index_of(*p))
            .collect();
        let evidence = self
            .evidence
            .iter()
            .filter(|e| culprits.contains(&e.header().from))
            .map(|e| e.encoded().to_vec())
            .collect();
        let state = if matches!(abort.reason, AbortReason::MissingMessage) {
            SessionState::Expired
        } else {
            SessionState::Aborted
        };
        tracing::warn!(session = %self.id, ?culprits, reason = %abort.reason, round = abort.round, "session aborted");
        PhaseFailure::Aborted(
            state,
            Blame {
                culprits: culprits.iter().map(|i| u32::from(*i)).collect(),
                reason: format!(
                    "round {}: {} (signers {:?})",
                    abort.round, abort.reason, culprits
                ),
                evidence,
            },
        )
    }
}
