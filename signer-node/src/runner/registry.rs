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
//! **Durable records.** Every registered session is also recorded in the vault
//! ([`Vault::put_session`], PENDING), and its end is written there ([`Vault::end_session`],
//! flushed) *before* the table shows it: the vault refuses an id it knows, so a session id is
//! never reused, also after a restart or after the table forgot the session. A session
//! withdrawn before it ran (its start request was refused) is removed from both.
//!
//! **Eviction.** Finished sessions stay in the table (state, outcome, blame) for
//! `SessionStatus`; their duplicate-filter entries and channels are dropped at the end. They
//! leave the table [`Retention::after`] their end, or earlier when more than
//! [`Retention::max_finished`] finished sessions are held (oldest first); eviction runs on
//! every registration, end and status query. `SessionStatus` for an id not in the table asks
//! the vault. An envelope for an evicted session is treated like one for an unknown session
//! (held as an early message, then dropped).
//!
//! The vault calls flush to disk while the table's lock is held (registration and end only);
//! they are short, and serialising them keeps the id check and the record together.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use custody_proto::signer::v1::{
    session_status_response::Outcome, Blame, ProtocolKind, SessionState, SessionStatusResponse,
};
use tokio::sync::mpsc;

use crate::config::{DEFAULT_MAX_FINISHED_SESSIONS, DEFAULT_SESSION_RETENTION_SECS};
use crate::envelope::{SessionId, VerifiedEnvelope};
use crate::inbox::{DuplicateFilter, InboxRefusal};
use crate::metrics::Metrics;
use crate::vault::{Vault, VaultError};

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
    /// When it ended (eviction).
    ended: Option<Instant>,
}

/// How long finished sessions stay in the in-memory table (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A finished session leaves the table this long after its end.
    pub after: Duration,
    /// At most this many finished sessions stay in the table (the oldest leave first).
    pub max_finished: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            after: Duration::from_secs(DEFAULT_SESSION_RETENTION_SECS),
            max_finished: DEFAULT_MAX_FINISHED_SESSIONS,
        }
    }
}

struct Early {
    since: Instant,
    envelopes: Vec<VerifiedEnvelope>,
}

#[derive(Default)]
struct State {
    sessions: BTreeMap<SessionId, Record>,
    /// Finished sessions in the order they ended (eviction).
    finished: VecDeque<(Instant, SessionId)>,
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
    /// The vault could not record or read the session.
    #[error("session store: {0}")]
    Store(String),
    /// The vault's record of the session fails its integrity checks.
    #[error("session store: {0}")]
    CorruptRecord(String),
}

impl From<VaultError> for RegistryError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::SessionRecord(_) | VaultError::Decode(_) => {
                Self::CorruptRecord(e.to_string())
            }
            other => Self::Store(other.to_string()),
        }
    }
}

/// The session table.
pub struct Registry {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    vault: Arc<dyn Vault>,
    retention: Retention,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty table whose sessions are recorded in `vault`.
    pub fn new(vault: Arc<dyn Vault>, retention: Retention) -> Self {
        Self {
            state: Mutex::new(State::default()),
            metrics: Arc::default(),
            vault,
            retention,
        }
    }

    /// How many sessions the in-memory table holds (live and finished).
    pub fn in_memory(&self) -> usize {
        self.lock().map(|s| s.sessions.len()).unwrap_or(0)
    }

    /// Drops finished sessions older than the retention, and the oldest beyond the cap.
    fn evict(&self, s: &mut State) {
        let now = Instant::now();
        while let Some((ended, id)) = s.finished.front().copied() {
            let old = now.duration_since(ended) >= self.retention.after;
            if !old && s.finished.len() <= self.retention.max_finished {
                break;
            }
            s.finished.pop_front();
            if s.sessions.get(&id).is_some_and(|r| r.ended == Some(ended)) {
                s.sessions.remove(&id);
                tracing::debug!(session = %id, "finished session left the in-memory table");
            }
        }
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
        self.evict(&mut s);
        if s.sessions.contains_key(&id) {
            return Err(RegistryError::Exists(id));
        }
        match self.vault.put_session(&id.0, spec.kind) {
            Ok(()) => {}
            Err(VaultError::SessionExists(_)) => return Err(RegistryError::Exists(id)),
            Err(e) => return Err(e.into()),
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
                ended: None,
            },
        );
        Ok(rx)
    }

    /// Forgets a session that was registered but could not start (its start request was
    /// refused after registration): the id becomes free again.
    pub fn remove(&self, id: &SessionId) {
        if let Ok(mut s) = self.lock() {
            let Some(r) = s.sessions.get(id) else {
                return;
            };
            if r.ended.is_some() {
                tracing::warn!(session = %id, "not withdrawing a session that ended");
                return;
            }
            if let Err(e) = self.vault.withdraw_session(&id.0) {
                // the id stays taken in the store: safe, only a retry with it is refused
                tracing::error!(session = %id, error = %e, "withdrawing the session record failed");
            }
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

    /// Records how a session ended: writes the end to the vault (flushed), then shows it in
    /// the table and drops the channel and duplicate records. A session ends once; a second
    /// end is ignored with a warning.
    pub fn finish(
        &self,
        id: &SessionId,
        state: SessionState,
        outcome: Option<Outcome>,
        blame: Option<Blame>,
    ) {
        let Ok(mut s) = self.lock() else {
            tracing::error!(session = %id, "session table lock poisoned; end not recorded");
            return;
        };
        if let Some(r) = s.sessions.get_mut(id) {
            if r.ended.is_some() {
                tracing::warn!(session = %id, ?state, "session ended already; keeping its first end");
                return;
            }
            let status = SessionStatusResponse {
                session_id: id.0.to_vec(),
                protocol: r.spec.kind as i32,
                state: state as i32,
                round: r.round,
                outcome,
                blame,
            };
            if let Err(e) = self.vault.end_session(&id.0, &status) {
                // After a restart the session reads ABORTED "interrupted" instead of this end.
                tracing::error!(session = %id, error = %e, "recording the session's end in the store failed");
            }
            self.metrics
                .session_ended(r.spec.kind, state, r.registered.elapsed());
            let now = Instant::now();
            r.state = state;
            r.outcome = status.outcome;
            r.blame = status.blame;
            r.tx = None;
            r.ended = Some(now);
            s.finished.push_back((now, *id));
        }
        s.seen.forget_session(id);
        self.evict(&mut s);
    }

    /// The status of a session, if it exists: from the table, else from the vault (a
    /// session that left the table, or one from before a restart).
    pub fn status(&self, id: &SessionId) -> Result<Option<SessionStatusResponse>, RegistryError> {
        {
            let mut s = self.lock()?;
            self.evict(&mut s);
            if let Some(r) = s.sessions.get(id) {
                return Ok(Some(SessionStatusResponse {
                    session_id: id.0.to_vec(),
                    protocol: r.spec.kind as i32,
                    state: r.state as i32,
                    round: r.round,
                    outcome: r.outcome.clone(),
                    blame: r.blame.clone(),
                }));
            }
        }
        Ok(self.vault.session(&id.0)?.map(|record| record.status))
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
            ..
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vault::MemoryVault;
    use custody_proto::signer::v1::EcdsaSignature;

    fn spec() -> SessionSpec {
        SessionSpec {
            kind: ProtocolKind::Sign,
            phases: vec![ProtocolKind::Sign],
            senders: [2u16].into_iter().collect(),
            max_rounds: 1,
        }
    }

    fn signature(n: u8) -> Outcome {
        Outcome::Signature(EcdsaSignature {
            r_s: vec![n; 64],
            recovery_id: 1,
        })
    }

    fn state_of(r: &Registry, id: &SessionId) -> SessionState {
        SessionState::try_from(r.status(id).unwrap().unwrap().state).unwrap()
    }

    #[test]
    fn finished_sessions_leave_memory_after_the_retention_and_status_reads_the_store() {
        let vault = Arc::new(MemoryVault::new());
        let registry = Registry::new(
            vault.clone(),
            Retention {
                after: Duration::from_millis(50),
                max_finished: 100,
            },
        );
        let (done, live) = (SessionId([1; 32]), SessionId([2; 32]));
        let _rx1 = registry.create(done, spec()).unwrap();
        let _rx2 = registry.create(live, spec()).unwrap();
        registry.finish(&done, SessionState::Completed, Some(signature(9)), None);
        assert_eq!(registry.in_memory(), 2);
        std::thread::sleep(Duration::from_millis(80));
        let status = registry.status(&done).unwrap().unwrap();
        // evicted from memory (the live session stays), answered from the store
        assert_eq!(registry.in_memory(), 1);
        assert_eq!(status.state, SessionState::Completed as i32);
        assert_eq!(status.outcome, Some(signature(9)));
        assert_eq!(status.protocol, ProtocolKind::Sign as i32);
        assert_eq!(state_of(&registry, &live), SessionState::Pending);
        // the id stays taken after it left memory
        assert_eq!(
            registry.create(done, spec()).unwrap_err(),
            RegistryError::Exists(done)
        );
        assert!(registry.status(&SessionId([3; 32])).unwrap().is_none());
    }

    #[test]
    fn at_most_max_finished_sessions_stay_in_memory_oldest_first() {
        let vault = Arc::new(MemoryVault::new());
        let registry = Registry::new(
            vault,
            Retention {
                after: Duration::from_secs(3600),
                max_finished: 2,
            },
        );
        let ids: Vec<SessionId> = (1..=4).map(|i| SessionId([i; 32])).collect();
        for id in &ids {
            let _rx = registry.create(*id, spec()).unwrap();
        }
        for (n, id) in ids.iter().enumerate() {
            let blame = Blame {
                culprits: vec![2],
                reason: format!("reason {n}"),
                evidence: vec![],
            };
            registry.finish(id, SessionState::Aborted, None, Some(blame));
        }
        assert_eq!(registry.in_memory(), 2);
        for (n, id) in ids.iter().enumerate() {
            let s = registry.status(id).unwrap().unwrap();
            assert_eq!(s.state, SessionState::Aborted as i32);
            assert_eq!(s.blame.unwrap().reason, format!("reason {n}"));
        }
    }

    #[test]
    fn a_session_ends_once_and_a_withdrawn_id_is_free_again() {
        let vault = Arc::new(MemoryVault::new());
        let registry = Registry::new(vault.clone(), Retention::default());
        let id = SessionId([5; 32]);
        let _rx = registry.create(id, spec()).unwrap();
        registry.remove(&id);
        assert!(registry.status(&id).unwrap().is_none());
        assert!(vault.session(&id.0).unwrap().is_none());
        let _rx = registry.create(id, spec()).unwrap();
        registry.finish(&id, SessionState::Completed, Some(signature(1)), None);
        registry.finish(&id, SessionState::Aborted, None, None);
        assert_eq!(state_of(&registry, &id), SessionState::Completed);
        let stored = vault.session(&id.0).unwrap().unwrap();
        assert_eq!(stored.state(), SessionState::Completed);
        // an ended session is not withdrawn
        registry.remove(&id);
        assert_eq!(state_of(&registry, &id), SessionState::Completed);
    }

    #[test]
    fn a_corrupt_store_record_is_an_error_not_a_panic() {
        let vault = Arc::new(MemoryVault::new());
        let registry = Registry::new(
            vault.clone(),
            Retention {
                after: Duration::from_millis(1),
                max_finished: 1,
            },
        );
        let id = SessionId([6; 32]);
        let _rx = registry.create(id, spec()).unwrap();
        registry.finish(&id, SessionState::Completed, Some(signature(2)), None);
        std::thread::sleep(Duration::from_millis(5));
        let mut bytes = vault.session(&id.0).unwrap().unwrap().encode(&id.0);
        bytes[3] ^= 1;
        vault.overwrite_session_bytes(&id.0, bytes).unwrap();
        assert!(matches!(
            registry.status(&id),
            Err(RegistryError::CorruptRecord(_))
        ));
        // its id stays taken
        assert_eq!(
            registry.create(id, spec()).unwrap_err(),
            RegistryError::Exists(id)
        );
    }
}
