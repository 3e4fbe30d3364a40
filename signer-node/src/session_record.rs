//! The durable record of one session (`sessions` tree of the store; the same bytes in
//! [`MemoryVault`](crate::vault::MemoryVault)): what `SessionStatus` answers after the
//! in-memory table forgot the session, or after a restart.
//!
//! A record holds only public data (the `SessionStatusResponse`: kind, state, outcome = public
//! key / signature / count, blame = culprits, reason and the culprits' signed envelopes), so it
//! is not sealed; it is integrity-checked instead. Encoding (all integers big-endian):
//!
//! ```text
//! version u8 (1) ‖ created ms since the Unix epoch u64 ‖ ended ms u64 (0 while not ended)
//! ‖ status length u32 ‖ SessionStatusResponse (protobuf)
//! ‖ SHA-256("custody-appliance/signer-node/session-record/v1" ‖ session id (32) ‖ everything before)
//! ```
//!
//! [`SessionRecord::decode`] is strict: exact length, known version, the hash (which also binds
//! the record to its session id, so a record copied to another id is refused), a status that
//! decodes, names the same session id, a known protocol and a known state, and `ended` set
//! exactly when the state is COMPLETED, ABORTED or EXPIRED. Anything else is a
//! [`SessionRecordError`], never a panic.

use custody_proto::signer::v1::{ProtocolKind, SessionState, SessionStatusResponse};
use prost::Message;
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
const HASH_DOMAIN: &[u8] = b"custody-appliance/signer-node/session-record/v1";
const HEADER_LEN: usize = 1 + 8 + 8 + 4;
const HASH_LEN: usize = 32;

/// Why a stored session record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session record {}: {reason}", hex::encode(.session))]
pub struct SessionRecordError {
    /// The session id the record is stored under.
    pub session: [u8; 32],
    /// What is wrong.
    pub reason: String,
}

/// One session as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// When it was registered (ms since the Unix epoch, wall clock).
    pub created_ms: u64,
    /// When it ended (ms since the Unix epoch); `None` while PENDING or RUNNING.
    pub ended_ms: Option<u64>,
    /// What `SessionStatus` answers for it.
    pub status: SessionStatusResponse,
}

/// Whether a state is an end state (COMPLETED, ABORTED, EXPIRED).
pub fn is_end_state(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::Completed | SessionState::Aborted | SessionState::Expired
    )
}

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl SessionRecord {
    /// A newly registered session: PENDING, no outcome.
    pub fn pending(session: &[u8; 32], kind: ProtocolKind, created_ms: u64) -> Self {
        Self {
            created_ms,
            ended_ms: None,
            status: SessionStatusResponse {
                session_id: session.to_vec(),
                protocol: kind as i32,
                state: SessionState::Pending as i32,
                round: 0,
                outcome: None,
                blame: None,
            },
        }
    }

    /// The state the record is in (`Unspecified` for a value no check admitted).
    pub fn state(&self) -> SessionState {
        SessionState::try_from(self.status.state).unwrap_or(SessionState::Unspecified)
    }

    /// The stored bytes for session `session`.
    pub fn encode(&self, session: &[u8; 32]) -> Vec<u8> {
        let status = self.status.encode_to_vec();
        let mut out = Vec::with_capacity(HEADER_LEN + status.len() + HASH_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        out.extend_from_slice(&self.ended_ms.unwrap_or(0).to_be_bytes());
        // a status over 4 GiB cannot be built from a node's messages (envelope caps)
        let len = u32::try_from(status.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&status);
        let hash = record_hash(session, &out);
        out.extend_from_slice(&hash);
        out
    }

    /// Decodes and checks the bytes stored under `session` (module docs).
    pub fn decode(session: &[u8; 32], bytes: &[u8]) -> Result<Self, SessionRecordError> {
        let bad = |reason: String| SessionRecordError {
            session: *session,
            reason,
        };
        if bytes.len() < HEADER_LEN + HASH_LEN {
            return Err(bad(format!(
                "{} bytes, shorter than any record",
                bytes.len()
            )));
        }
        let (body, hash) = bytes.split_at(bytes.len() - HASH_LEN);
        if record_hash(session, body).as_slice() != hash {
            return Err(bad(
                "integrity hash does not match (altered, or stored under another session id)"
                    .into(),
            ));
        }
        let (version, rest) = body
            .split_first()
            .ok_or_else(|| bad("empty record".into()))?;
        if *version != VERSION {
            return Err(bad(format!("unknown record version {version}")));
        }
        let (created, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("truncated created time".into()))?;
        let (ended, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("truncated end time".into()))?;
        let (len, status) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated status length".into()))?;
        let len = usize::try_from(u32::from_be_bytes(*len))
            .map_err(|_| bad("status length does not fit".into()))?;
        if status.len() != len {
            return Err(bad(format!(
                "status is {} bytes, its length field says {len}",
                status.len()
            )));
        }
        let status = SessionStatusResponse::decode(status)
            .map_err(|e| bad(format!("status does not decode: {e}")))?;
        if status.session_id.as_slice() != session.as_slice() {
            return Err(bad("status names another session id".into()));
        }
        match ProtocolKind::try_from(status.protocol) {
            Ok(ProtocolKind::Unspecified) | Err(_) => {
                return Err(bad(format!("unknown protocol {}", status.protocol)))
            }
            Ok(_) => {}
        }
        let state = match SessionState::try_from(status.state) {
            Ok(SessionState::Unspecified) | Err(_) => {
                return Err(bad(format!("unknown state {}", status.state)))
            }
            Ok(s) => s,
        };
        let ended = u64::from_be_bytes(*ended);
        let ended_ms = match (is_end_state(state), ended) {
            (true, 0) => return Err(bad(format!("state {state:?} without an end time"))),
            (false, e) if e != 0 => return Err(bad(format!("state {state:?} with an end time"))),
            (true, e) => Some(e),
            (false, _) => None,
        };
        Ok(Self {
            created_ms: u64::from_be_bytes(*created),
            ended_ms,
            status,
        })
    }
}

fn record_hash(session: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(session);
    h.update(body);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use custody_proto::signer::v1::{session_status_response::Outcome, Blame};

    fn ended() -> SessionRecord {
        let mut r = SessionRecord::pending(&[7; 32], ProtocolKind::Sign, 1000);
        r.ended_ms = Some(2000);
        r.status.state = SessionState::Aborted as i32;
        r.status.blame = Some(Blame {
            culprits: vec![3],
            reason: "bad proof".into(),
            evidence: vec![vec![1, 2, 3]],
        });
        r
    }

    #[test]
    fn records_round_trip() {
        let p = SessionRecord::pending(&[7; 32], ProtocolKind::Presign, 5);
        assert_eq!(
            SessionRecord::decode(&[7; 32], &p.encode(&[7; 32])).unwrap(),
            p
        );
        let e = ended();
        assert_eq!(
            SessionRecord::decode(&[7; 32], &e.encode(&[7; 32])).unwrap(),
            e
        );
        let mut c = SessionRecord::pending(&[7; 32], ProtocolKind::Presign, 5);
        c.status.state = SessionState::Completed as i32;
        c.status.outcome = Some(Outcome::PresignaturesAdded(1));
        c.ended_ms = Some(9);
        assert_eq!(
            SessionRecord::decode(&[7; 32], &c.encode(&[7; 32])).unwrap(),
            c
        );
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let bytes = ended().encode(&[7; 32]);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(
                    SessionRecord::decode(&[7; 32], &b).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        for n in 0..bytes.len() {
            assert!(SessionRecord::decode(&[7; 32], &bytes[..n]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SessionRecord::decode(&[7; 32], &longer).is_err());
    }

    #[test]
    fn a_record_under_another_id_is_refused() {
        let bytes = ended().encode(&[7; 32]);
        let e = SessionRecord::decode(&[8; 32], &bytes).unwrap_err();
        assert!(e.reason.contains("integrity"), "{e}");
    }

    #[test]
    fn inconsistent_records_with_a_valid_hash_are_refused() {
        // the hash is recomputed here, so only the content checks can refuse these
        let mut no_end = ended();
        no_end.ended_ms = None;
        assert!(SessionRecord::decode(&[7; 32], &no_end.encode(&[7; 32])).is_err());
        let mut pending_with_end = SessionRecord::pending(&[7; 32], ProtocolKind::Sign, 1);
        pending_with_end.ended_ms = Some(3);
        assert!(SessionRecord::decode(&[7; 32], &pending_with_end.encode(&[7; 32])).is_err());
        let mut other_id = ended();
        other_id.status.session_id = vec![8; 32];
        assert!(SessionRecord::decode(&[7; 32], &other_id.encode(&[7; 32])).is_err());
        let mut unknown_state = ended();
        unknown_state.status.state = 99;
        assert!(SessionRecord::decode(&[7; 32], &unknown_state.encode(&[7; 32])).is_err());
        let mut unknown_kind = ended();
        unknown_kind.status.protocol = 0;
        assert!(SessionRecord::decode(&[7; 32], &unknown_kind.encode(&[7; 32])).is_err());
    }
}
