//! Where a signer keeps its long-lived secrets: the [`Vault`] interface between the session
//! runner and the store.
//!
//! The runner (DKG, aux info, refresh, presign, sign) only talks to a `Vault`. The production
//! implementation is the sealed sled store (issue #4: every record AEAD-sealed by the HSM
//! profile with AAD = record kind + key id, flushed before a call returns). [`MemoryVault`]
//! keeps the same records (the `mpc-core::store` encodings) in process memory: it loses
//! everything on exit and exists for tests of the runner, never for a deployed node.
//!
//! The rules every implementation keeps:
//! - a key id is **reserved** before a DKG starts and never overwritten by a second DKG;
//! - [`Vault::store_key`] is durable when it returns; storing a share of a later epoch for an
//!   existing key (refresh) replaces share and aux info and erases the key's presignatures in
//!   one transaction (REF-02);
//! - [`Vault::take_presignature`] removes the presignature durably *before* it returns it, so
//!   a partial signature can only leave the node after the presignature is gone (PRE-06),
//!   also across a crash;
//! - the audit log is append-only, and the vault itself records the state changes it makes
//!   (`KeyCreated` / `KeyRefreshed`, `PresignatureAdded`, `PresignatureConsumed`, detail
//!   prefixed `store:`) together with the change; callers add entries with the request's
//!   context (which order, which session outcome) through [`Vault::audit`];
//! - a presignature id is never replaced: a second [`Vault::put_presignature`] with the same
//!   id is refused, and a presignature of another epoch than the key's is refused (REF-03: a
//!   presigning session that finishes after a refresh or reshare cannot add an old-epoch
//!   presignature);
//! - [`Vault::retire_key`] (a reshare moved the key to a committee without this signer, RES-02)
//!   erases the share, aux info and presignatures of the key in one transaction with a
//!   `KeyRetired` audit entry; nothing of the key is left that could sign.
//! - a prime set of the prime pool is used once: [`Vault::take_prime_set`] removes it durably
//!   *before* it returns it, so no two aux infos are ever built from the same primes, also
//!   across a crash.
//! - a session id is recorded once: [`Vault::put_session`] refuses an id the vault knows (also
//!   one that ended long ago or whose record does not decode), [`Vault::end_session`] records
//!   the end (COMPLETED / ABORTED / EXPIRED with the public `SessionStatusResponse`) durably
//!   before it returns and refuses to end a session twice, and
//!   [`Vault::abort_interrupted_sessions`] (at runner start) marks every session that never
//!   ended as ABORTED, each with one `SessionAborted` audit entry. Records are public
//!   (`session_record`), integrity-checked, not sealed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use mpc_core::aux_info::AuxInfo;
use mpc_core::dkg::KeyShare;
use mpc_core::presign::{Presignature, PresignaturePublic};
use mpc_core::store::StoreDecodeError;

use custody_proto::signer::v1::{Blame, ProtocolKind, SessionState, SessionStatusResponse};

use crate::pools::prime_set::{PrimeSet, PrimeSetId};
use crate::session_record::{is_end_state, now_ms};
pub use crate::session_record::{SessionRecord, SessionRecordError};

/// A key's fleet-wide id (32 bytes, chosen by the coordinator that requested the DKG).
pub type KeyId = [u8; 32];

/// A session id (32 bytes; for presigning also the presignature's id in the pool).
pub type SessionId32 = [u8; 32];

/// Why the vault refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A key with this id exists (a DKG never overwrites one).
    #[error("key {} already exists", hex::encode(.0))]
    KeyExists(KeyId),
    /// A DKG for this key id is running.
    #[error("key {} is reserved by a running session", hex::encode(.0))]
    KeyReserved(KeyId),
    /// No key with this id.
    #[error("no key {}", hex::encode(.0))]
    NoSuchKey(KeyId),
    /// A presignature with this id is already in the pool (it may be promised to a signature).
    #[error("presignature {} of key {} exists; refusing to replace it", hex::encode(.presignature), hex::encode(.key_id))]
    PresignatureExists {
        /// The key.
        key_id: KeyId,
        /// The presigning session id.
        presignature: SessionId32,
    },
    /// A refresh must move the epoch forward.
    #[error("key {} is at epoch {have}; refusing a share of epoch {got}", hex::encode(.key_id))]
    StaleEpoch {
        /// The key.
        key_id: KeyId,
        /// Epoch stored.
        have: u64,
        /// Epoch offered.
        got: u64,
    },
    /// The key is at another epoch than the caller's (retiring a share, adding a
    /// presignature).
    #[error("key {} is at epoch {have}, not {got}", hex::encode(.key_id))]
    EpochMismatch {
        /// The key.
        key_id: KeyId,
        /// Epoch stored.
        have: u64,
        /// Epoch named by the caller.
        got: u64,
    },
    /// A session with this id was recorded before (session ids are never reused, SIG-04).
    #[error("session {} exists already; session ids are never reused", hex::encode(.0))]
    SessionExists(SessionId32),
    /// No session with this id is recorded.
    #[error("no session {} is recorded", hex::encode(.0))]
    NoSuchSession(SessionId32),
    /// The end of a session was refused (already ended, not an end state, another id or kind).
    #[error("session {}: refusing to record its end: {reason}", hex::encode(.session))]
    SessionEnd {
        /// The session.
        session: SessionId32,
        /// Why.
        reason: String,
    },
    /// A stored session record failed its integrity or format checks.
    #[error(transparent)]
    SessionRecord(#[from] SessionRecordError),
    /// A stored record did not decode (corruption or a format from another version).
    #[error("stored record does not decode: {0}")]
    Decode(#[from] StoreDecodeError),
    /// The backing store failed (I/O, sealing); the message names the operation.
    #[error("storage failure: {0}")]
    Storage(String),
}

/// What the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A DKG finished and the share was stored.
    KeyCreated,
    /// A refresh replaced a share (epoch + 1).
    KeyRefreshed,
    /// A presignature was added to the pool.
    PresignatureAdded,
    /// A presignature was consumed to sign.
    PresignatureConsumed,
    /// A partial signature left the node.
    PartialSignatureIssued,
    /// A session aborted (detail names the blamed party and reason).
    SessionAborted,
    /// A request was refused by policy (detail says which rule).
    RequestRefused,
    /// A client's raw-digest signing (`SignDigest`): accepted (client, digest, path,
    /// signers) and, when the session completes, the signature issued.
    ClientSignature,
    /// This signer's share was erased after a reshare to a committee without it (RES-02).
    KeyRetired,
    /// A reshare session completed (detail: role, epochs, committees, public key).
    KeyReshared,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// The session, when there is one.
    pub session_id: Option<SessionId32>,
    /// The key, when there is one.
    pub key_id: Option<KeyId>,
    /// Public details a person can read (never secrets).
    pub detail: String,
}

/// What [`Vault::abort_interrupted_sessions`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InterruptedSessions {
    /// Sessions that were PENDING or RUNNING and are now ABORTED (each audited once).
    pub aborted: Vec<SessionId32>,
    /// Records that failed their checks: left in place (their ids stay taken), reported.
    pub unreadable: Vec<SessionRecordError>,
}

/// The status a session that never ended gets at the next start: ABORTED, blaming nobody.
pub fn interrupted_status(record: &SessionRecord, reason: &str) -> SessionStatusResponse {
    SessionStatusResponse {
        state: SessionState::Aborted as i32,
        outcome: None,
        blame: Some(Blame {
            culprits: Vec::new(),
            reason: reason.to_owned(),
            evidence: Vec::new(),
        }),
        ..record.status.clone()
    }
}

/// Checks an end status against the stored record: same id, same kind, an end state, and the
/// stored session not ended yet.
pub(crate) fn check_session_end(
    session: &SessionId32,
    stored: &SessionRecord,
    status: &SessionStatusResponse,
) -> Result<(), VaultError> {
    let refuse = |reason: String| VaultError::SessionEnd {
        session: *session,
        reason,
    };
    if status.session_id.as_slice() != session.as_slice() {
        return Err(refuse("the status names another session id".into()));
    }
    if status.protocol != stored.status.protocol {
        return Err(refuse(format!(
            "the status says protocol {}, the session was registered as {}",
            status.protocol, stored.status.protocol
        )));
    }
    match SessionState::try_from(status.state) {
        Ok(s) if is_end_state(s) => {}
        _ => {
            return Err(refuse(format!(
                "state {} is not an end state",
                status.state
            )))
        }
    }
    if stored.ended_ms.is_some() {
        return Err(refuse(format!("it ended already ({:?})", stored.state())));
    }
    Ok(())
}

/// A signer's durable secrets. See the module documentation for the rules.
pub trait Vault: Send + Sync + 'static {
    /// Reserves `key_id` for the DKG `session_id`; refuses an existing or reserved id.
    fn reserve_key(&self, key_id: &KeyId, session_id: &SessionId32) -> Result<(), VaultError>;

    /// Drops a reservation after the DKG aborted (no-op if none).
    fn release_reservation(&self, key_id: &KeyId) -> Result<(), VaultError>;

    /// Stores a key share with its aux info, durably. For a reserved id: creates the key. For
    /// an existing key: accepts only a later epoch (refresh) and erases the key's
    /// presignatures in the same transaction. Otherwise refuses.
    fn store_key(&self, key_id: &KeyId, share: &KeyShare, aux: &AuxInfo) -> Result<(), VaultError>;

    /// Loads a key's share and aux info (aux info decoding rebuilds peers' tables: callers
    /// should cache the result per epoch).
    fn load_key(&self, key_id: &KeyId) -> Result<Option<(KeyShare, AuxInfo)>, VaultError>;

    /// Retires this signer's share of `key_id` at `epoch` (a reshare moved the key to a
    /// committee without this signer, RES-02): erases share, aux info and every presignature
    /// of the key in one transaction with a `KeyRetired` audit entry naming `session_id`,
    /// durably. Refuses an absent key (`NoSuchKey`) or another epoch (`EpochMismatch`).
    fn retire_key(
        &self,
        key_id: &KeyId,
        epoch: u64,
        session_id: &SessionId32,
    ) -> Result<(), VaultError>;

    /// The ids of all stored keys, in order.
    fn list_keys(&self) -> Result<Vec<KeyId>, VaultError>;

    /// Adds a presignature of `key_id` under the id of the presigning session that made it;
    /// refuses one whose epoch is not the key's (`EpochMismatch`, REF-03).
    fn put_presignature(
        &self,
        key_id: &KeyId,
        presign_session: &SessionId32,
        presignature: &Presignature,
    ) -> Result<(), VaultError>;

    /// Removes the presignature durably, then returns it; `None` if there is none (never
    /// made, or already consumed).
    fn take_presignature(
        &self,
        key_id: &KeyId,
        presign_session: &SessionId32,
    ) -> Result<Option<Presignature>, VaultError>;

    /// The ids of the presignatures in the pool of `key_id`, in order.
    fn presignatures(&self, key_id: &KeyId) -> Result<Vec<SessionId32>, VaultError>;

    /// The public values of every presignature in the pool of `key_id` (signers, path,
    /// epoch), in id order; for pool levels, never for signing.
    fn presignature_publics(
        &self,
        key_id: &KeyId,
    ) -> Result<Vec<(SessionId32, PresignaturePublic)>, VaultError>;

    /// Appends to the audit log.
    fn audit(&self, event: AuditEvent) -> Result<(), VaultError>;

    /// Adds a prime set to the prime pool under a fresh random `id` (refuses an id in use).
    fn put_prime_set(&self, id: &PrimeSetId, set: &PrimeSet) -> Result<(), VaultError>;

    /// Removes one prime set from the pool durably, then returns it; `None` if the pool is
    /// empty. A set is never returned twice.
    fn take_prime_set(&self) -> Result<Option<PrimeSet>, VaultError>;

    /// How many prime sets the pool holds.
    fn prime_set_count(&self) -> Result<usize, VaultError>;

    /// Records a newly registered session (PENDING, created now), durably; refuses an id the
    /// vault knows (`SessionExists`), whatever its state or condition.
    fn put_session(&self, session: &SessionId32, kind: ProtocolKind) -> Result<(), VaultError>;

    /// Removes the record of a session that was registered and never ran (its start request
    /// was refused), so the id is free again. No-op for an unknown id; refuses a session that
    /// ended (`SessionEnd`).
    fn withdraw_session(&self, session: &SessionId32) -> Result<(), VaultError>;

    /// Records how a session ended (`status`: COMPLETED / ABORTED / EXPIRED, outcome, blame),
    /// durably before it returns. Refuses an unknown id (`NoSuchSession`), a session that ended
    /// already, a status that is not an end or names another id or kind (`SessionEnd`).
    fn end_session(
        &self,
        session: &SessionId32,
        status: &SessionStatusResponse,
    ) -> Result<(), VaultError>;

    /// The record of a session; `None` if the id is unknown; `SessionRecord` if the stored
    /// record fails its checks.
    fn session(&self, session: &SessionId32) -> Result<Option<SessionRecord>, VaultError>;

    /// Marks every recorded session that never ended as ABORTED with `reason` (blame without
    /// culprits), each with one `SessionAborted` audit entry, durably. Run once at start,
    /// before any session is registered.
    fn abort_interrupted_sessions(&self, reason: &str) -> Result<InterruptedSessions, VaultError>;
}

#[derive(Default)]
struct MemoryState {
    reserved: BTreeMap<KeyId, SessionId32>,
    /// key id → (epoch, encoded share, encoded aux info)
    keys: BTreeMap<KeyId, (u64, Vec<u8>, Vec<u8>)>,
    presignatures: BTreeMap<(KeyId, SessionId32), Vec<u8>>,
    prime_sets: BTreeMap<PrimeSetId, Vec<u8>>,
    /// session id → encoded [`SessionRecord`] (the store's bytes)
    sessions: BTreeMap<SessionId32, Vec<u8>>,
    audit: Vec<AuditEvent>,
}

impl Drop for MemoryState {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, share, aux) in self.keys.values_mut() {
            share.zeroize();
            aux.zeroize();
        }
        for p in self.presignatures.values_mut() {
            p.zeroize();
        }
        for p in self.prime_sets.values_mut() {
            p.zeroize();
        }
    }
}

/// A [`Vault`] in process memory, for tests of the runner: the same records and rules as the
/// sealed store, no durability.
#[derive(Default)]
pub struct MemoryVault {
    state: Mutex<MemoryState>,
}

impl MemoryVault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// The audit log so far (tests read it).
    pub fn audit_log(&self) -> Vec<AuditEvent> {
        self.lock().map(|s| s.audit.clone()).unwrap_or_default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, VaultError> {
        self.state
            .lock()
            .map_err(|_| VaultError::Storage("memory vault lock poisoned".into()))
    }

    /// Replaces the stored bytes of a session record (tests corrupt records with it).
    pub fn overwrite_session_bytes(
        &self,
        session: &SessionId32,
        bytes: Vec<u8>,
    ) -> Result<(), VaultError> {
        self.lock()?.sessions.insert(*session, bytes);
        Ok(())
    }
}

impl Vault for MemoryVault {
    fn reserve_key(&self, key_id: &KeyId, session_id: &SessionId32) -> Result<(), VaultError> {
        let mut s = self.lock()?;
        if s.keys.contains_key(key_id) {
            return Err(VaultError::KeyExists(*key_id));
        }
        if s.reserved.contains_key(key_id) {
            return Err(VaultError::KeyReserved(*key_id));
        }
        s.reserved.insert(*key_id, *session_id);
        Ok(())
    }

    fn release_reservation(&self, key_id: &KeyId) -> Result<(), VaultError> {
        self.lock()?.reserved.remove(key_id);
        Ok(())
    }

    fn store_key(&self, key_id: &KeyId, share: &KeyShare, aux: &AuxInfo) -> Result<(), VaultError> {
        let mut s = self.lock()?;
        let epoch = share.epoch();
        match s.keys.get(key_id).map(|(have, _, _)| *have) {
            Some(have) if have >= epoch => {
                return Err(VaultError::StaleEpoch {
                    key_id: *key_id,
                    have,
                    got: epoch,
                })
            }
            Some(_) => {
                s.presignatures.retain(|(k, _), _| k != key_id);
            }
            None if s.reserved.remove(key_id).is_none() => {
                return Err(VaultError::NoSuchKey(*key_id))
            }
            None => {}
        }
        let refreshed = s.keys.contains_key(key_id);
        s.keys.insert(
            *key_id,
            (epoch, share.to_bytes().to_vec(), aux.to_bytes().to_vec()),
        );
        s.audit.push(AuditEvent {
            kind: if refreshed {
                AuditKind::KeyRefreshed
            } else {
                AuditKind::KeyCreated
            },
            session_id: None,
            key_id: Some(*key_id),
            detail: format!("store: share and aux info of epoch {epoch} stored"),
        });
        Ok(())
    }

    fn load_key(&self, key_id: &KeyId) -> Result<Option<(KeyShare, AuxInfo)>, VaultError> {
        let s = self.lock()?;
        match s.keys.get(key_id) {
            None => Ok(None),
            Some((_, share, aux)) => Ok(Some((
                KeyShare::from_bytes(share)?,
                AuxInfo::from_bytes(aux)?,
            ))),
        }
    }

    fn retire_key(
        &self,
        key_id: &KeyId,
        epoch: u64,
        session_id: &SessionId32,
    ) -> Result<(), VaultError> {
        use zeroize::Zeroize;
        let mut s = self.lock()?;
        match s.keys.get(key_id).map(|(have, _, _)| *have) {
            None => return Err(VaultError::NoSuchKey(*key_id)),
            Some(have) if have != epoch => {
                return Err(VaultError::EpochMismatch {
                    key_id: *key_id,
                    have,
                    got: epoch,
                })
            }
            Some(_) => {}
        }
        if let Some((_, mut share, mut aux)) = s.keys.remove(key_id) {
            share.zeroize();
            aux.zeroize();
        }
        let mut erased = 0usize;
        s.presignatures.retain(|(k, _), p| {
            if k == key_id {
                p.zeroize();
                erased += 1;
                false
            } else {
                true
            }
        });
        s.audit.push(AuditEvent {
            kind: AuditKind::KeyRetired,
            session_id: Some(*session_id),
            key_id: Some(*key_id),
            detail: format!(
                "store: share and aux info of epoch {epoch} erased, {erased} presignatures erased"
            ),
        });
        Ok(())
    }

    fn list_keys(&self) -> Result<Vec<KeyId>, VaultError> {
        Ok(self.lock()?.keys.keys().copied().collect())
    }

    fn put_presignature(
        &self,
        key_id: &KeyId,
        presign_session: &SessionId32,
        presignature: &Presignature,
    ) -> Result<(), VaultError> {
        let mut s = self.lock()?;
        let Some(have) = s.keys.get(key_id).map(|(epoch, _, _)| *epoch) else {
            return Err(VaultError::NoSuchKey(*key_id));
        };
        if presignature.public().epoch != have {
            return Err(VaultError::EpochMismatch {
                key_id: *key_id,
                have,
                got: presignature.public().epoch,
            });
        }
        if s.presignatures.contains_key(&(*key_id, *presign_session)) {
            return Err(VaultError::PresignatureExists {
                key_id: *key_id,
                presignature: *presign_session,
            });
        }
        s.presignatures.insert(
            (*key_id, *presign_session),
            presignature.to_bytes().to_vec(),
        );
        s.audit.push(AuditEvent {
            kind: AuditKind::PresignatureAdded,
            session_id: Some(*presign_session),
            key_id: Some(*key_id),
            detail: "store: presignature added".into(),
        });
        Ok(())
    }

    fn take_presignature(
        &self,
        key_id: &KeyId,
        presign_session: &SessionId32,
    ) -> Result<Option<Presignature>, VaultError> {
        let mut s = self.lock()?;
        match s.presignatures.remove(&(*key_id, *presign_session)) {
            None => Ok(None),
            Some(mut bytes) => {
                let decoded = Presignature::from_bytes(&bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                s.audit.push(AuditEvent {
                    kind: AuditKind::PresignatureConsumed,
                    session_id: Some(*presign_session),
                    key_id: Some(*key_id),
                    detail: "store: presignature removed for signing".into(),
                });
                Ok(Some(decoded?))
            }
        }
    }

    fn presignatures(&self, key_id: &KeyId) -> Result<Vec<SessionId32>, VaultError> {
        Ok(self
            .lock()?
            .presignatures
            .keys()
            .filter(|(k, _)| k == key_id)
            .map(|(_, p)| *p)
            .collect())
    }

    fn presignature_publics(
        &self,
        key_id: &KeyId,
    ) -> Result<Vec<(SessionId32, PresignaturePublic)>, VaultError> {
        let s = self.lock()?;
        let mut out = Vec::new();
        for ((_, id), bytes) in s
            .presignatures
            .range((*key_id, [0u8; 32])..=(*key_id, [0xff; 32]))
        {
            out.push((*id, Presignature::from_bytes(bytes)?.public().clone()));
        }
        Ok(out)
    }

    fn audit(&self, event: AuditEvent) -> Result<(), VaultError> {
        self.lock()?.audit.push(event);
        Ok(())
    }

    fn put_prime_set(&self, id: &PrimeSetId, set: &PrimeSet) -> Result<(), VaultError> {
        let mut s = self.lock()?;
        if s.prime_sets.contains_key(id) {
            return Err(VaultError::Storage(format!(
                "prime set {} exists; refusing to replace it",
                hex::encode(id)
            )));
        }
        s.prime_sets.insert(*id, set.encode().to_vec());
        Ok(())
    }

    fn take_prime_set(&self) -> Result<Option<PrimeSet>, VaultError> {
        let mut s = self.lock()?;
        match s.prime_sets.pop_first() {
            None => Ok(None),
            Some((id, mut bytes)) => {
                let decoded = PrimeSet::decode(&bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                decoded.map(Some).map_err(|e| {
                    VaultError::Storage(format!("prime set {} (removed): {e}", hex::encode(id)))
                })
            }
        }
    }

    fn prime_set_count(&self) -> Result<usize, VaultError> {
        Ok(self.lock()?.prime_sets.len())
    }

    fn put_session(&self, session: &SessionId32, kind: ProtocolKind) -> Result<(), VaultError> {
        let mut s = self.lock()?;
        if s.sessions.contains_key(session) {
            return Err(VaultError::SessionExists(*session));
        }
        let record = SessionRecord::pending(session, kind, now_ms());
        s.sessions.insert(*session, record.encode(session));
        Ok(())
    }

    fn withdraw_session(&self, session: &SessionId32) -> Result<(), VaultError> {
        let mut s = self.lock()?;
        let Some(bytes) = s.sessions.get(session) else {
            return Ok(());
        };
        let record = SessionRecord::decode(session, bytes)?;
        if record.ended_ms.is_some() {
            return Err(VaultError::SessionEnd {
                session: *session,
                reason: "an ended session cannot be withdrawn".into(),
            });
        }
        s.sessions.remove(session);
        Ok(())
    }

    fn end_session(
        &self,
        session: &SessionId32,
        status: &SessionStatusResponse,
    ) -> Result<(), VaultError> {
        let mut s = self.lock()?;
        let Some(bytes) = s.sessions.get(session) else {
            return Err(VaultError::NoSuchSession(*session));
        };
        let stored = SessionRecord::decode(session, bytes)?;
        check_session_end(session, &stored, status)?;
        let ended = SessionRecord {
            created_ms: stored.created_ms,
            ended_ms: Some(now_ms().max(1)),
            status: status.clone(),
        };
        s.sessions.insert(*session, ended.encode(session));
        Ok(())
    }

    fn session(&self, session: &SessionId32) -> Result<Option<SessionRecord>, VaultError> {
        let s = self.lock()?;
        s.sessions
            .get(session)
            .map(|bytes| SessionRecord::decode(session, bytes))
            .transpose()
            .map_err(VaultError::from)
    }

    fn abort_interrupted_sessions(&self, reason: &str) -> Result<InterruptedSessions, VaultError> {
        let mut s = self.lock()?;
        let mut report = InterruptedSessions::default();
        let mut updates = Vec::new();
        for (id, bytes) in &s.sessions {
            match SessionRecord::decode(id, bytes) {
                Err(e) => report.unreadable.push(e),
                Ok(r) if r.ended_ms.is_none() => {
                    let ended = SessionRecord {
                        created_ms: r.created_ms,
                        ended_ms: Some(now_ms().max(1)),
                        status: interrupted_status(&r, reason),
                    };
                    updates.push((*id, ended.encode(id)));
                }
                Ok(_) => {}
            }
        }
        for (id, bytes) in updates {
            s.sessions.insert(id, bytes);
            s.audit.push(AuditEvent {
                kind: AuditKind::SessionAborted,
                session_id: Some(id),
                key_id: None,
                detail: format!("store: {reason}"),
            });
            report.aborted.push(id);
        }
        Ok(report)
    }
}
