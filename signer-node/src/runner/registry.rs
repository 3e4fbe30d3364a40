//! The session table: what each session is, where it stands, how it ended; and the inbox
//! side of the runner (duplicate filter, routing to the driver, early messages).
//!
//! Every live session has a bounded channel to its driver. Its capacity is the most messages
//! the session can legitimately receive (protocols × rounds × senders × {direct, broadcast}),
//! and the duplicate filter admits each (protocol, round, from, to) once, so an honest fleet
//! never fills it; a full channel refuses (`FAILED_PRECONDITION`) without recording the
//! message, so the sender may retry.
//!
//! **Early messages.** A peer may start a session and send before this node was told about
//! it. Such messages (for an unknown session id) are held for at most [`EARLY_TTL`], at most
//! [`EARLY_MAX_PER_SESSION`] per session and [`EARLY_MAX_SESSIONS`] sessions; when the
//! session is created they go to its driver first. Beyond the caps the envelope is refused
//! `FAILED_PRECONDITION` "no such session" and nothing is recorded.
//!
//! Finished sessions stay in the table (state, outcome, blame) for `SessionStatus`; their
//! duplicate-filter entries and channels are dropped. Evicting old finished sessions is a
//! later step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use custody_proto::signer::v1::{
    session_status_response::Outcome, Blame, ProtocolKind, SessionState, SessionStatusResponse,
};
use tokio::sync::mpsc;

use crate::envelope::{SessionId, VerifiedEnvelope};
use crate::inbox::{DuplicateFilter, InboxRefusal};
use crate::metrics::Metrics;

/// How long messages of a session this node does not know yet are held.
pub const EARLY_TTL: Duration = Duration::from_secs(60);
/// Most early messages held per unknown session.
pub const EARLY_MAX_PER_SESSION: usize = 256;
/// Most unknown sessions with early messages held at once.
pub const EARLY_MAX_SESSIONS: usize = 64;

/// What a session is for: its kind for status, the protocols its envelopes may carry (in
/// phase order) and the signers that may send to it.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The kind reported by `SessionStatus` (the first phase's protocol).
    pub kind: ProtocolKind,
    /// Protocols of its phases, in order (keygen: DKG then aux info).
    pub phases: Vec<ProtocolKind>,
    /// Fleet indices of the other signers taking part.
    pub senders: BTreeSet<u16>,
    /// Highest round number of any phase (sizes the channel).
    pub max_rounds: usize,
}

struct Record {
    spec: SessionSpec,
    state: SessionState,
    round: u32,
    outcome: Option<Outcome>,
    blame: Option<Blame>,
    tx: Option<mpsc::Sender<VerifiedEnvelope>>,
    /// When it was registered (the duration metric).
    registered: Instant,
}

struct Early {
    since: Instant,
    envelopes: Vec<VerifiedEnvelope>,
}

#[derive(Default)]
struct State {
    sessions: BTreeMap<SessionId, Record>,
    early: BTreeMap<SessionId, Early>,
    seen: DuplicateFilter,
}

/// Why a session could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The id is taken (SIG-04: session ids are never reused).
    #[error("session {0} exists already; session ids are never reused")]
    Exists(SessionId),
    /// The table's lock was poisoned by a panic elsewhere.
    #[error("session table unavailable (lock poisoned)")]
    Poisoned,
}

/// The session table.
#[derive(Default)]
pub struct Registry {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The node's counters (sessions are counted here; the runner and server add theirs).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, RegistryError> {
        self.state.lock().map_err(|_| RegistryError::Poisoned)
    }

    /// Registers a new session (state PENDING) and returns the receiving end of its channel,
    /// already holding any early messages that fit the spec.
    pub fn create(
        &self,
        id: SessionId,
        spec: SessionSpec,
    ) -> Result<mpsc::Receiver<VerifiedEnvelope>, RegistryError> {
        let mut s = self.lock()?;
        if s.sessions.contains_key(&id) {
            return Err(RegistryError::Exists(id));
        }
        let capacity = (spec.phases.len() * spec.max_rounds * spec.senders.len() * 2)
            .max(EARLY_MAX_PER_SESSION)
            + 8;
        let (tx, rx) = mpsc::channel(capacity);
        if let Some(early) = s.early.remove(&id) {
            for envelope in early.envelopes {
                if fits(&spec, &envelope).is_ok() {
                    // capacity ≥ EARLY_MAX_PER_SESSION, so this cannot fail
                    let _ = tx.try_send(envelope);
                } else {
                    tracing::warn!(session = %id, from = envelope.header().from, "dropping an early message that does not fit the session");
                }
            }
        }
        self.metrics.session_started(spec.kind);
        s.sessions.insert(
            id,
            Record {
                spec,
                state: SessionState::Pending,
                round: 0,
                outcome: None,
                blame: None,
                tx: Some(tx),
                registered: Instant::now(),
            },
        );
        Ok(rx)
    }

    /// Forgets a session that was registered but could not start (its start request was
    /// refused after registration): the id becomes free again.
    pub fn remove(&self, id: &SessionId) {
        if let Ok(mut s) = self.lock() {
            if let Some(r) = s.sessions.remove(id) {
                self.metrics.session_withdrawn(r.spec.kind);
            }
            s.seen.forget_session(id);
        }
    }

    /// Marks a session as running `phase` in `round`.
    pub fn set_round(&self, id: &SessionId, round: u16) {
        if let Ok(mut s) = self.lock() {
            if let Some(r) = s.sessions.get_mut(id) {
                r.state = SessionState::Running;
                r.round = u32::from(round);
            }
        }
    }

    /// Marks a session as waiting for local resources (primes, aux info).
    pub fn set_pending(&self, id: &SessionId) {
        if let Ok(mut s) = self.lock() {
            if let Some(r) = s.sessions.get_mut(id) {
                r.state = SessionState::Pending;
            }
        }
    }

    /// Records how a session ended and drops its channel and duplicate records.
    pub fn finish(
        &self,
        id: &SessionId,
        state: SessionState,
        outcome: Option<Outcome>,
        blame: Option<Blame>,
    ) {
        if let Ok(mut s) = self.lock() {
            if let Some(r) = s.sessions.get_mut(id) {
                if matches!(r.state, SessionState::Pending | SessionState::Running) {
                    self.metrics
                        .session_ended(r.spec.kind, state, r.registered.elapsed());
                }
                r.state = state;
                r.outcome = outcome;
                r.blame = blame;
                r.tx = None;
            }
            s.seen.forget_session(id);
        }
    }

    /// The status of a session, if it exists.
    pub fn status(&self, id: &SessionId) -> Result<Option<SessionStatusResponse>, RegistryError> {
        let s = self.lock()?;
        Ok(s.sessions.get(id).map(|r| SessionStatusResponse {
            session_id: id.0.to_vec(),
            protocol: r.spec.kind as i32,
            state: r.state as i32,
            round: r.round,
            outcome: r.outcome.clone(),
            blame: r.blame.clone(),
        }))
    }

    /// The inbox: routes a verified envelope to its session's driver, or holds it if the
    /// session is not known yet (module docs).
    pub fn deliver(&self, envelope: VerifiedEnvelope) -> Result<(), InboxRefusal> {
        let mut s = self
            .lock()
            .map_err(|e| InboxRefusal::WrongState(e.to_string()))?;
        let id = envelope.header().session_id;
        let key = envelope.delivery_key();
        let State {
            sessions,
            early,
            seen,
        } = &mut *s;
        match sessions.get(&id) {
            Some(record) => {
                fits(&record.spec, &envelope)?;
                let Some(tx) = &record.tx else {
                    return Err(InboxRefusal::WrongState(format!("session {id} has ended")));
                };
                if tx.capacity() == 0 {
                    return Err(InboxRefusal::WrongState(format!(
                        "session {id} has too many unprocessed messages"
                    )));
                }
                seen.admit(key)?;
                tx.try_send(envelope).map_err(|_| {
                    InboxRefusal::WrongState(format!("session {id} is not taking messages"))
                })
            }
            None => {
                let now = Instant::now();
                let expired: Vec<SessionId> = early
                    .iter()
                    .filter(|(_, e)| now.duration_since(e.since) > EARLY_TTL)
                    .map(|(k, _)| *k)
                    .collect();
                for k in expired {
                    early.remove(&k);
                    seen.forget_session(&k);
                }
                let room = match early.get(&id) {
                    Some(e) => e.envelopes.len() < EARLY_MAX_PER_SESSION,
                    None => early.len() < EARLY_MAX_SESSIONS,
                };
                if !room {
                    return Err(InboxRefusal::NoSuchSession(id));
                }
                seen.admit(key)?;
                early
                    .entry(id)
                    .or_insert_with(|| Early {
                        since: now,
                        envelopes: Vec::new(),
                    })
                    .envelopes
                    .push(envelope);
                Ok(())
            }
        }
    }
}

/// Whether an envelope belongs to a session: a sender that takes part and a protocol of one
/// of its phases.
fn fits(spec: &SessionSpec, envelope: &VerifiedEnvelope) -> Result<(), InboxRefusal> {
    let h = envelope.header();
    if !spec.senders.contains(&h.from) {
        return Err(InboxRefusal::WrongState(format!(
            "signer {} does not take part in session {}",
            h.from, h.session_id
        )));
    }
    if !spec.phases.contains(&h.protocol) {
        return Err(InboxRefusal::WrongState(format!(
            "session {} does not run {:?}",
            h.session_id, h.protocol
        )));
    }
    Ok(())
}
