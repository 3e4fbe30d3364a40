//! `impl Vault for SledVault`: each state change holds the writer lock, reads and decides,
//! seals outside sled, commits one transaction (state change + its audit entry), then
//! flushes before returning.

use sled::transaction::{abort, ConflictableTransactionError, TransactionError};
use sled::Transactional;

use mpc_core::aux_info::AuxInfo;
use mpc_core::dkg::KeyShare;
use mpc_core::presign::{Presignature, PresignaturePublic};

use crate::pools::prime_set::{PrimeSet, PrimeSetId};
use crate::session_record::{now_ms, SessionRecord};
use crate::store::audit;
use crate::store::db::SledVault;
use crate::store::error::StoreError;
use crate::store::layout::{id32, parse_presignature_key, presignature_key, KeyEntry};
use crate::store::sealing::Slot;
use crate::vault::{
    check_session_end, interrupted_status, AuditEvent, AuditKind, InterruptedSessions, KeyId,
    SessionId32, Vault, VaultError,
};
use custody_proto::signer::v1::{ProtocolKind, SessionStatusResponse};

fn tx_error(e: TransactionError<VaultError>) -> VaultError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Db {
            op: "committing a transaction",
            source: e,
        }
        .into(),
    }
}

fn db_error(op: &'static str) -> impl FnOnce(sled::Error) -> VaultError {
    move |source| StoreError::Db { op, source }.into()
}

impl SledVault {
    fn flushed(&self) -> Result<(), VaultError> {
        self.flush().map_err(VaultError::from)
    }

    fn session_bytes(&self, session: &SessionId32) -> Result<Option<sled::IVec>, VaultError> {
        self.trees
            .sessions
            .get(session)
            .map_err(db_error("reading a session record"))
    }
}

impl Vault for SledVault {
    fn reserve_key(&self, key_id: &KeyId, session_id: &SessionId32) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let t = &self.trees;
        (&t.keys, &t.reservations)
            .transaction(|(keys, reservations)| {
                if keys.get(key_id)?.is_some() {
                    return abort(VaultError::KeyExists(*key_id));
                }
                if reservations.get(key_id)?.is_some() {
                    return abort(VaultError::KeyReserved(*key_id));
                }
                reservations.insert(key_id.as_slice(), session_id.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flushed()
    }

    fn release_reservation(&self, key_id: &KeyId) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let removed = self
            .trees
            .reservations
            .remove(key_id)
            .map_err(db_error("releasing a reservation"))?;
        if removed.is_some() {
            self.flushed()?;
        }
        Ok(())
    }

    fn store_key(&self, key_id: &KeyId, share: &KeyShare, aux: &AuxInfo) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let epoch = share.epoch();
        let have = self.key_entry(key_id)?.map(|e| e.epoch);
        let reserved = self
            .trees
            .reservations
            .contains_key(key_id)
            .map_err(db_error("reading reservations"))?;
        let event = match have {
            Some(have) if have >= epoch => {
                return Err(VaultError::StaleEpoch {
                    key_id: *key_id,
                    have,
                    got: epoch,
                })
            }
            Some(have) => AuditEvent {
                kind: AuditKind::KeyRefreshed,
                session_id: None,
                key_id: Some(*key_id),
                detail: format!("store: share and aux info of epoch {have} replaced by epoch {epoch}; presignatures erased"),
            },
            None if !reserved => return Err(VaultError::NoSuchKey(*key_id)),
            None => AuditEvent {
                kind: AuditKind::KeyCreated,
                session_id: None,
                key_id: Some(*key_id),
                detail: format!("store: share and aux info of epoch {epoch} stored"),
            },
        };
        let entry = KeyEntry {
            epoch,
            sealed_share: Slot::key_share(key_id, epoch)?.seal(&self.sealer, &share.to_bytes())?,
        };
        let sealed_aux = Slot::aux_info(key_id, epoch)?.seal(&self.sealer, &aux.to_bytes())?;
        // REF-02: the old epoch's presignatures go in the same transaction as the new share.
        // The writer lock keeps this list current until the commit.
        let mut stale = Vec::new();
        for item in self.trees.presignatures.scan_prefix(key_id) {
            let (k, _) = item.map_err(db_error("listing presignatures"))?;
            stale.push(k);
        }
        let entry = entry.encode();
        let now = audit::now_ms();
        let t = &self.trees;
        (
            &t.meta,
            &t.keys,
            &t.aux,
            &t.presignatures,
            &t.reservations,
            &t.audit,
        )
            .transaction(|(m, keys, auxt, presigs, reservations, a)| {
                let current = keys
                    .get(key_id)?
                    .and_then(|v| v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()))
                    .map(u64::from_be_bytes);
                if current != have {
                    return abort(VaultError::Storage(
                        "key entry changed while storing (concurrent writer)".into(),
                    ));
                }
                if have.is_none() && reservations.remove(key_id.as_slice())?.is_none() {
                    return abort(VaultError::NoSuchKey(*key_id));
                }
                for k in &stale {
                    presigs.remove(k)?;
                }
                keys.insert(key_id.as_slice(), entry.as_slice())?;
                auxt.insert(key_id.as_slice(), sealed_aux.as_slice())?;
                audit::append(m, a, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flushed()?;
        tracing::info!(key = %hex::encode(key_id), epoch, erased_presignatures = stale.len(), "stored key share");
        Ok(())
    }

    fn load_key(&self, key_id: &KeyId) -> Result<Option<(KeyShare, AuxInfo)>, VaultError> {
        // The lock keeps a refresh from replacing the share between reading it and its aux info.
        let _g = self.lock()?;
        match self.key_entry(key_id)? {
            None => Ok(None),
            Some(entry) => Ok(Some(self.open_key(key_id, &entry)?)),
        }
    }

    fn retire_key(
        &self,
        key_id: &KeyId,
        epoch: u64,
        session_id: &SessionId32,
    ) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let Some(entry) = self.key_entry(key_id)? else {
            return Err(VaultError::NoSuchKey(*key_id));
        };
        if entry.epoch != epoch {
            return Err(VaultError::EpochMismatch {
                key_id: *key_id,
                have: entry.epoch,
                got: epoch,
            });
        }
        // The writer lock keeps this list current until the commit.
        let mut presignatures = Vec::new();
        for item in self.trees.presignatures.scan_prefix(key_id) {
            let (k, _) = item.map_err(db_error("listing presignatures"))?;
            presignatures.push(k);
        }
        let event = AuditEvent {
            kind: AuditKind::KeyRetired,
            session_id: Some(*session_id),
            key_id: Some(*key_id),
            detail: format!(
                "store: share and aux info of epoch {epoch} erased, {} presignatures erased",
                presignatures.len()
            ),
        };
        let now = audit::now_ms();
        let t = &self.trees;
        (&t.meta, &t.keys, &t.aux, &t.presignatures, &t.audit)
            .transaction(|(m, keys, auxt, presigs, a)| {
                let current = keys
                    .get(key_id)?
                    .and_then(|v| v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()))
                    .map(u64::from_be_bytes);
                if current != Some(epoch) {
                    return abort(VaultError::Storage(
                        "key entry changed while retiring it (concurrent writer)".into(),
                    ));
                }
                keys.remove(key_id.as_slice())?;
                auxt.remove(key_id.as_slice())?;
                for k in &presignatures {
                    presigs.remove(k)?;
                }
                audit::append(m, a, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flushed()?;
        tracing::info!(key = %hex::encode(key_id), epoch, erased_presignatures = presignatures.len(), "retired key share");
        Ok(())
    }

    fn list_keys(&self) -> Result<Vec<KeyId>, VaultError> {
        let mut out = Vec::new();
        for item in self.trees.keys.iter() {
            let (k, _) = item.map_err(db_error("listing keys"))?;
            out.push(id32(&k, "key id")?);
        }
        Ok(out)
    }

    fn put_presignature(
        &self,
        key_id: &KeyId,
        presign_session: &SessionId32,
        presignature: &Presignature,
    ) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let Some(entry) = self.key_entry(key_id)? else {
            return Err(VaultError::NoSuchKey(*key_id));
        };
        // REF-03: a presigning session that ends after a refresh made an old-epoch value.
        if presignature.public().epoch != entry.epoch {
            return Err(VaultError::EpochMismatch {
                key_id: *key_id,
                have: entry.epoch,
                got: presignature.public().epoch,
            });
        }
        let slot = presignature_key(key_id, presign_session);
        let sealed = Slot::presignature(key_id, entry.epoch, presign_session)?
            .seal(&self.sealer, &presignature.to_bytes())?;
        let event = AuditEvent {
            kind: AuditKind::PresignatureAdded,
            session_id: Some(*presign_session),
            key_id: Some(*key_id),
            detail: format!("store: presignature added at key epoch {}", entry.epoch),
        };
        let now = audit::now_ms();
        let t = &self.trees;
        (&t.meta, &t.presignatures, &t.audit)
            .transaction(|(m, presigs, a)| {
                if presigs.get(slot)?.is_some() {
                    // A session id names one presignature; a second one under it would
                    // replace a presignature that may already be promised to a signature.
                    return abort(VaultError::PresignatureExists {
                        key_id: *key_id,
                        presignature: *presign_session,
                    });
                }
                presigs.insert(slot.as_slice(), sealed.as_slice())?;
                audit::append(m, a, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flushed()
    }

    fn take_presignature(
        &self,
        key_id: &KeyId,
        presign_session: &SessionId32,
    ) -> Result<Option<Presignature>, VaultError> {
        let _g = self.lock()?;
        let slot = presignature_key(key_id, presign_session);
        let Some(sealed) = self
            .trees
            .presignatures
            .get(slot)
            .map_err(db_error("reading a presignature"))?
        else {
            return Ok(None);
        };
        let Some(entry) = self.key_entry(key_id)? else {
            return Err(StoreError::Corrupt(format!(
                "presignature {} belongs to no stored key {}",
                hex::encode(presign_session),
                hex::encode(key_id)
            ))
            .into());
        };
        // Open and decode first: a record that does not open is reported and left as it is.
        let presignature = self.open_presignature(key_id, entry.epoch, presign_session, &sealed)?;
        let event = AuditEvent {
            kind: AuditKind::PresignatureConsumed,
            session_id: Some(*presign_session),
            key_id: Some(*key_id),
            detail: "store: presignature removed for signing".into(),
        };
        let now = audit::now_ms();
        let t = &self.trees;
        (&t.meta, &t.presignatures, &t.audit)
            .transaction(|(m, presigs, a)| {
                if presigs.remove(slot.as_slice())?.is_none() {
                    return Err(ConflictableTransactionError::Abort(VaultError::Storage(
                        "presignature vanished while taking it (concurrent writer)".into(),
                    )));
                }
                audit::append(m, a, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        // PRE-06: durable before the presignature leaves this function.
        self.flushed()?;
        Ok(Some(presignature))
    }

    fn presignatures(&self, key_id: &KeyId) -> Result<Vec<SessionId32>, VaultError> {
        let mut out = Vec::new();
        for item in self.trees.presignatures.scan_prefix(key_id) {
            let (k, _) = item.map_err(db_error("listing presignatures"))?;
            out.push(parse_presignature_key(&k)?.1);
        }
        Ok(out)
    }

    fn audit(&self, event: AuditEvent) -> Result<(), VaultError> {
        audit::check_event(&event)?;
        let _g = self.lock()?;
        let now = audit::now_ms();
        let t = &self.trees;
        (&t.meta, &t.audit)
            .transaction(|(m, a)| audit::append(m, a, &event, now))
            .map_err(tx_error)?;
        self.flushed()
    }

    fn presignature_publics(
        &self,
        key_id: &KeyId,
    ) -> Result<Vec<(SessionId32, PresignaturePublic)>, VaultError> {
        let Some(entry) = self.key_entry(key_id)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self.trees.presignatures.scan_prefix(key_id) {
            let (k, sealed) = item.map_err(db_error("listing presignatures"))?;
            let (_, session) = parse_presignature_key(&k)?;
            let presignature = self.open_presignature(key_id, entry.epoch, &session, &sealed)?;
            out.push((session, presignature.public().clone()));
        }
        Ok(out)
    }

    fn put_prime_set(&self, id: &PrimeSetId, set: &PrimeSet) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let sealed = Slot::prime_set(id)?.seal(&self.sealer, &set.encode())?;
        self.trees
            .prime_sets
            .compare_and_swap(id, None as Option<&[u8]>, Some(sealed))
            .map_err(db_error("storing a prime set"))?
            .map_err(|_| {
                VaultError::Storage(format!(
                    "prime set {} exists; refusing to replace it",
                    hex::encode(id)
                ))
            })?;
        self.flushed()
    }

    fn take_prime_set(&self) -> Result<Option<PrimeSet>, VaultError> {
        let _g = self.lock()?;
        let Some((k, sealed)) = self
            .trees
            .prime_sets
            .first()
            .map_err(db_error("reading the prime pool"))?
        else {
            return Ok(None);
        };
        let id = id32(&k, "prime set id")?;
        // Remove durably first: once this returns, the set cannot be handed out again, even if
        // it then fails to open (a set that does not open is lost, never retried).
        self.trees
            .prime_sets
            .remove(k)
            .map_err(db_error("removing a prime set"))?;
        self.flushed()?;
        let slot = Slot::prime_set(&id)?;
        let plain = slot.open(&self.sealer, &sealed)?;
        PrimeSet::decode(&plain).map(Some).map_err(|e| {
            VaultError::Storage(format!("{} (removed) does not decode: {e}", slot.name()))
        })
    }

    fn prime_set_count(&self) -> Result<usize, VaultError> {
        Ok(self.trees.prime_sets.len())
    }

    fn put_session(&self, session: &SessionId32, kind: ProtocolKind) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let record = SessionRecord::pending(session, kind, now_ms()).encode(session);
        self.trees
            .sessions
            .compare_and_swap(session, None as Option<&[u8]>, Some(record))
            .map_err(db_error("recording a session"))?
            .map_err(|_| VaultError::SessionExists(*session))?;
        self.flushed()
    }

    fn withdraw_session(&self, session: &SessionId32) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let Some(bytes) = self.session_bytes(session)? else {
            return Ok(());
        };
        if SessionRecord::decode(session, &bytes)?.ended_ms.is_some() {
            return Err(VaultError::SessionEnd {
                session: *session,
                reason: "an ended session cannot be withdrawn".into(),
            });
        }
        self.trees
            .sessions
            .compare_and_swap(session, Some(bytes), None as Option<&[u8]>)
            .map_err(db_error("withdrawing a session"))?
            .map_err(|_| {
                VaultError::Storage("session record changed while withdrawing it".into())
            })?;
        self.flushed()
    }

    fn end_session(
        &self,
        session: &SessionId32,
        status: &SessionStatusResponse,
    ) -> Result<(), VaultError> {
        let _g = self.lock()?;
        let Some(bytes) = self.session_bytes(session)? else {
            return Err(VaultError::NoSuchSession(*session));
        };
        let stored = SessionRecord::decode(session, &bytes)?;
        check_session_end(session, &stored, status)?;
        let ended = SessionRecord {
            created_ms: stored.created_ms,
            ended_ms: Some(now_ms().max(1)),
            status: status.clone(),
        }
        .encode(session);
        self.trees
            .sessions
            .compare_and_swap(session, Some(bytes), Some(ended))
            .map_err(db_error("recording a session's end"))?
            .map_err(|_| VaultError::Storage("session record changed while ending it".into()))?;
        // durable before the end is reported anywhere
        self.flushed()
    }

    fn session(&self, session: &SessionId32) -> Result<Option<SessionRecord>, VaultError> {
        self.session_bytes(session)?
            .map(|bytes| SessionRecord::decode(session, &bytes))
            .transpose()
            .map_err(VaultError::from)
    }

    fn abort_interrupted_sessions(&self, reason: &str) -> Result<InterruptedSessions, VaultError> {
        let _g = self.lock()?;
        let mut report = InterruptedSessions::default();
        let mut updates = Vec::new();
        for item in self.trees.sessions.iter() {
            let (k, v) = item.map_err(db_error("reading session records"))?;
            let id = id32(&k, "session id")?;
            match SessionRecord::decode(&id, &v) {
                Err(e) => {
                    tracing::error!(error = %e, "session record fails its checks; left in place");
                    report.unreadable.push(e);
                }
                Ok(r) if r.ended_ms.is_none() => {
                    let ended = SessionRecord {
                        created_ms: r.created_ms,
                        ended_ms: Some(now_ms().max(1)),
                        status: interrupted_status(&r, reason),
                    };
                    updates.push((id, ended.encode(&id)));
                }
                Ok(_) => {}
            }
        }
        if updates.is_empty() {
            return Ok(report);
        }
        let now = audit::now_ms();
        let t = &self.trees;
        (&t.meta, &t.sessions, &t.audit)
            .transaction(|(m, sessions, a)| {
                for (id, bytes) in &updates {
                    sessions.insert(id.as_slice(), bytes.as_slice())?;
                    let event = AuditEvent {
                        kind: AuditKind::SessionAborted,
                        session_id: Some(*id),
                        key_id: None,
                        detail: format!("store: {reason}"),
                    };
                    audit::append(m, a, &event, now)?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        self.flushed()?;
        report.aborted = updates.into_iter().map(|(id, _)| id).collect();
        tracing::warn!(
            count = report.aborted.len(),
            "sessions interrupted by the restart marked ABORTED"
        );
        Ok(report)
    }
}
