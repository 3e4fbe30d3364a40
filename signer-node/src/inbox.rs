//! Where verified envelopes go: the session runner's inbox.
//!
//! The peer service verifies every envelope ([`crate::envelope`]) and then hands it to a
//! [`SessionInbox`]. The session runner (not built yet) implements the trait; until then the
//! node uses [`NoSessions`], which truthfully answers that no session exists.

use std::collections::{BTreeMap, BTreeSet};

use tonic::Status;

use crate::envelope::{DeliveryKey, SessionId, VerifiedEnvelope};

/// Why an inbox did not take a verified envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxRefusal {
    /// No session with this id runs here.
    #[error("no such session {0}")]
    NoSuchSession(SessionId),
    /// The same (session, protocol, round, from, to) was delivered before (NET-01).
    #[error("already delivered: session {}, round {}, from signer {}", .0.session_id, .0.round, .0.from)]
    Duplicate(DeliveryKey),
    /// The session exists but cannot take this message (wrong protocol, round long past,
    /// sender not in the session, ...).
    #[error("{0}")]
    WrongState(String),
}

impl From<InboxRefusal> for Status {
    fn from(r: InboxRefusal) -> Status {
        match r {
            // ALREADY_EXISTS lets a retrying sender treat the message as delivered.
            InboxRefusal::Duplicate(_) => Status::already_exists(r.to_string()),
            InboxRefusal::NoSuchSession(_) | InboxRefusal::WrongState(_) => {
                Status::failed_precondition(r.to_string())
            }
        }
    }
}

/// Receives verified envelopes for the sessions of this node. Implementations must refuse
/// duplicates with [`InboxRefusal::Duplicate`] (see [`DuplicateFilter`]) and must not block:
/// protocol work runs elsewhere.
pub trait SessionInbox: Send + Sync + 'static {
    /// Takes one verified envelope.
    fn deliver(&self, envelope: VerifiedEnvelope) -> Result<(), InboxRefusal>;
}

/// The inbox of a node that runs no sessions (the session runner is not built yet): every
/// envelope is refused with `FAILED_PRECONDITION` "no such session".
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSessions;

impl SessionInbox for NoSessions {
    fn deliver(&self, envelope: VerifiedEnvelope) -> Result<(), InboxRefusal> {
        Err(InboxRefusal::NoSuchSession(envelope.header().session_id))
    }
}

/// Remembers which messages each live session has received, to refuse duplicates. The
/// runner calls [`DuplicateFilter::forget_session`] when a session ends, so memory stays
/// bounded by the live sessions' expected messages.
#[derive(Debug, Default)]
pub struct DuplicateFilter {
    seen: BTreeMap<SessionId, BTreeSet<DeliveryKey>>,
}

impl DuplicateFilter {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `key`; refuses it if it was recorded before.
    pub fn admit(&mut self, key: DeliveryKey) -> Result<(), InboxRefusal> {
        if self.seen.entry(key.session_id).or_default().insert(key) {
            Ok(())
        } else {
            Err(InboxRefusal::Duplicate(key))
        }
    }

    /// Drops everything recorded for a session.
    pub fn forget_session(&mut self, session: &SessionId) {
        self.seen.remove(session);
    }

    /// Number of sessions with records.
    pub fn sessions(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::envelope::Recipient;

    fn key(session: u8, round: u16, from: u16) -> DeliveryKey {
        DeliveryKey {
            session_id: SessionId([session; 32]),
            protocol: 5,
            round,
            from,
            to: Recipient::Broadcast,
        }
    }

    #[test]
    fn duplicates_are_refused_until_the_session_is_forgotten() {
        let mut f = DuplicateFilter::new();
        f.admit(key(1, 1, 1)).unwrap();
        f.admit(key(1, 2, 1)).unwrap();
        f.admit(key(1, 1, 2)).unwrap();
        f.admit(key(2, 1, 1)).unwrap();
        let dup = f.admit(key(1, 1, 1)).unwrap_err();
        assert_eq!(Status::from(dup).code(), tonic::Code::AlreadyExists);
        assert_eq!(f.sessions(), 2);
        f.forget_session(&SessionId([1; 32]));
        assert_eq!(f.sessions(), 1);
        f.admit(key(1, 1, 1)).unwrap();
    }
}
