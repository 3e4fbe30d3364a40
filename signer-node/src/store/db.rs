//! [`SledVault`]: creating and opening the store, the format and sealer checks at open, and
//! whole-store inspection ([`SledVault::check`], the audit log).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use hsm_profiles::{BlobHeader, SealError, Sealer};
use mpc_core::aux_info::AuxInfo;
use mpc_core::dkg::KeyShare;
use mpc_core::presign::Presignature;
use sled::Transactional;

use crate::store::audit::{self, AuditRecord, ChainReport};
use crate::store::error::StoreError;
use crate::store::layout::{
    id32, meta, parse_presignature_key, tree, KeyEntry, FORMAT_VERSION, STORE_DIR,
};
use crate::store::sealing::{Slot, CANARY_PLAINTEXT};
use crate::vault::{AuditEvent, AuditKind, KeyId, VaultError};

/// The trees of one store.
pub(crate) struct Trees {
    pub(crate) meta: sled::Tree,
    pub(crate) keys: sled::Tree,
    pub(crate) aux: sled::Tree,
    pub(crate) presignatures: sled::Tree,
    pub(crate) reservations: sled::Tree,
    pub(crate) audit: sled::Tree,
    pub(crate) prime_sets: sled::Tree,
    pub(crate) sessions: sled::Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let t = |name: &str| db.open_tree(name).map_err(StoreError::db("opening a tree"));
        Ok(Self {
            meta: t(tree::META)?,
            keys: t(tree::KEYS)?,
            aux: t(tree::AUX)?,
            presignatures: t(tree::PRESIGNATURES)?,
            reservations: t(tree::RESERVATIONS)?,
            audit: t(tree::AUDIT)?,
            prime_sets: t(tree::PRIME_SETS)?,
            sessions: t(tree::SESSIONS)?,
        })
    }
}

/// What [`SledVault::check`] found in a consistent store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Keys (each share and aux info opened and decoded).
    pub keys: usize,
    /// Presignatures (each opened and decoded).
    pub presignatures: usize,
    /// Reservations of running DKGs.
    pub reservations: usize,
    /// Session records (each integrity-checked and decoded).
    pub sessions: usize,
    /// Audit entries (chain intact).
    pub audit_entries: u64,
}

/// The sealed sled store of a signer: the production [`Vault`](crate::vault::Vault).
///
/// One sled database in `DATA_DIR/store/`; every secret value sealed through the
/// [`Sealer`] with an AAD naming its kind, key id and slot; every state change is one sled
/// transaction (with its audit entry) and flushed to disk before the call returns. See the
/// [module documentation](crate::store).
pub struct SledVault {
    pub(crate) db: sled::Db,
    pub(crate) trees: Trees,
    pub(crate) sealer: Arc<dyn Sealer>,
    /// Serialises state changes: a change reads, decides and seals outside sled's
    /// transaction, then commits; nobody else may change state in between.
    writer: Mutex<()>,
    path: PathBuf,
}

impl std::fmt::Debug for SledVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledVault")
            .field("path", &self.path)
            .field("sealer", &self.sealer.describe())
            .finish_non_exhaustive()
    }
}

/// How long opening waits for another handle's file lock to go away.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the sled database. sled releases its file lock when the last handle of a database
/// is gone, and for a database closed a moment ago that includes its background flusher
/// thread, so a lock conflict is retried briefly; a store that another running process holds
/// still fails, after [`LOCK_WAIT`].
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other.map_err(StoreError::db("opening the database")),
        }
    }
}

/// Opens the database of an existing store without a sealer (for `audit verify`) and checks
/// its format version.
fn open_existing(data_dir: &Path) -> Result<(sled::Db, Trees, PathBuf), StoreError> {
    let path = data_dir.join(STORE_DIR);
    if !path.is_dir() {
        return Err(StoreError::NotFound(path));
    }
    let db = open_db(&path)?;
    let trees = Trees::open(&db)?;
    let version = trees
        .meta
        .get(meta::FORMAT_VERSION)
        .map_err(StoreError::db("reading the format version"))?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} has no format version record (not a store, or its creation did not finish)",
                path.display()
            ))
        })?;
    let found = <[u8; 4]>::try_from(version.as_ref())
        .map(u32::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("format version record is not 4 bytes".into()))?;
    if found != FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok((db, trees, path))
}

/// Walks the audit chain of the store in `data_dir` without unsealing anything (the audit
/// log is public). Fails if the store is open in another process (sled's lock).
pub fn verify_audit_at(data_dir: &Path) -> Result<ChainReport, StoreError> {
    let (_db, trees, _) = open_existing(data_dir)?;
    audit::verify_chain(&trees.audit, &trees.meta)
}

impl SledVault {
    /// Creates a new store in `DATA_DIR/store/` (mode 0700), bound to `sealer`'s data key.
    /// Refuses if the directory exists.
    pub fn create(data_dir: &Path, sealer: Arc<dyn Sealer>) -> Result<Self, StoreError> {
        let path = data_dir.join(STORE_DIR);
        if path.exists() {
            return Err(StoreError::AlreadyExists(path));
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        let db = open_db(&path)?;
        let trees = Trees::open(&db)?;
        let canary = Slot::canary()?.seal(&sealer, CANARY_PLAINTEXT)?;
        let data_key = BlobHeader::parse(&canary)
            .map_err(|source| StoreError::Seal {
                record: "store canary".into(),
                source,
            })?
            .data_key;
        // The format version goes last: a store whose creation was interrupted has none and
        // is refused at open instead of being taken for an empty store.
        let m = &trees.meta;
        m.insert(meta::DATA_KEY_ID, data_key.as_bytes().as_slice())
            .and_then(|_| m.insert(meta::CANARY, canary))
            .and_then(|_| {
                m.insert(
                    meta::FORMAT_VERSION,
                    FORMAT_VERSION.to_be_bytes().as_slice(),
                )
            })
            .map_err(StoreError::db("writing the meta records"))?;
        db.flush().map_err(StoreError::db("flushing a new store"))?;
        tracing::info!(path = %path.display(), data_key = %data_key, "created the sealed store");
        Ok(Self {
            db,
            trees,
            sealer,
            writer: Mutex::new(()),
            path,
        })
    }

    /// Opens the store in `DATA_DIR/store/`: checks the format version and that `sealer`
    /// holds the data key the store was created with, then drops reservations left by DKGs
    /// that did not survive the restart (each with an audit entry).
    pub fn open(data_dir: &Path, sealer: Arc<dyn Sealer>) -> Result<Self, StoreError> {
        let (db, trees, path) = open_existing(data_dir)?;
        let recorded = trees
            .meta
            .get(meta::DATA_KEY_ID)
            .map_err(StoreError::db("reading the data key id"))?
            .ok_or_else(|| StoreError::Corrupt("no data key id record".into()))?;
        let canary = trees
            .meta
            .get(meta::CANARY)
            .map_err(StoreError::db("reading the canary"))?
            .ok_or_else(|| StoreError::Corrupt("no canary record".into()))?;
        let in_canary = BlobHeader::parse(&canary).map_err(|source| StoreError::Seal {
            record: "store canary".into(),
            source,
        })?;
        if in_canary.data_key.as_bytes().as_slice() != recorded.as_ref() {
            return Err(StoreError::Corrupt(
                "the canary and the data key id record disagree".into(),
            ));
        }
        match Slot::canary()?.open(&sealer, &canary) {
            Ok(p) if p.as_slice() == CANARY_PLAINTEXT => {}
            Ok(_) => return Err(StoreError::Corrupt("canary plaintext differs".into())),
            Err(StoreError::Seal {
                source: SealError::WrongDataKey { expected, found },
                ..
            }) => {
                return Err(StoreError::WrongDataKey {
                    store: found,
                    sealer: expected,
                })
            }
            Err(e) => return Err(e),
        }
        let vault = Self {
            db,
            trees,
            sealer,
            writer: Mutex::new(()),
            path,
        };
        vault.drop_stale_reservations()?;
        tracing::info!(path = %vault.path.display(), sealer = %vault.sealer.describe(), "opened the sealed store");
        Ok(vault)
    }

    /// Sessions do not survive a restart (their records are marked ABORTED at runner start),
    /// so a reservation found at open belongs to a DKG that is gone: drop it (audited), or the
    /// key id would stay blocked forever.
    fn drop_stale_reservations(&self) -> Result<(), StoreError> {
        let mut stale = Vec::new();
        for item in self.trees.reservations.iter() {
            let (k, v) = item.map_err(StoreError::db("reading reservations"))?;
            stale.push((
                id32(&k, "reserved key id")?,
                id32(&v, "reserving session id")?,
            ));
        }
        if stale.is_empty() {
            return Ok(());
        }
        let now = audit::now_ms();
        let t = &self.trees;
        (&t.meta, &t.reservations, &t.audit)
            .transaction(|(m, r, a)| {
                for (key_id, session) in &stale {
                    r.remove(key_id.as_slice())?;
                    let event = AuditEvent {
                        kind: AuditKind::SessionAborted,
                        session_id: Some(*session),
                        key_id: Some(*key_id),
                        detail: "store: reservation dropped at start; the DKG did not survive the restart".into(),
                    };
                    audit::append(m, a, &event, now)?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<VaultError>| {
                StoreError::Corrupt(format!("dropping stale reservations: {e}"))
            })?;
        self.flush()?;
        tracing::warn!(
            count = stale.len(),
            "dropped reservations of DKGs that did not survive the restart"
        );
        Ok(())
    }

    /// The directory of the sled database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, ()>, VaultError> {
        self.writer
            .lock()
            .map_err(|_| VaultError::Storage("store writer lock poisoned".into()))
    }

    /// fsync: every state change calls this before it returns.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(StoreError::db("flushing to disk"))
    }

    /// Reads and parses a key's entry.
    pub(crate) fn key_entry(&self, key_id: &KeyId) -> Result<Option<KeyEntry>, StoreError> {
        self.trees
            .keys
            .get(key_id)
            .map_err(StoreError::db("reading a key"))?
            .map(|v| KeyEntry::decode(&v, key_id))
            .transpose()
    }

    /// Opens and decodes a key's share and aux info.
    pub(crate) fn open_key(
        &self,
        key_id: &KeyId,
        entry: &KeyEntry,
    ) -> Result<(KeyShare, AuxInfo), StoreError> {
        let slot = Slot::key_share(key_id, entry.epoch)?;
        let plain = slot.open(&self.sealer, &entry.sealed_share)?;
        let share = KeyShare::from_bytes(&plain).map_err(|source| StoreError::Decode {
            record: slot.name().into(),
            source,
        })?;
        if share.epoch() != entry.epoch {
            return Err(StoreError::Corrupt(format!(
                "{} holds a share of epoch {}",
                slot.name(),
                share.epoch()
            )));
        }
        let aux_slot = Slot::aux_info(key_id, entry.epoch)?;
        let sealed_aux = self
            .trees
            .aux
            .get(key_id)
            .map_err(StoreError::db("reading aux info"))?
            .ok_or_else(|| StoreError::Corrupt(format!("{} is missing", aux_slot.name())))?;
        let plain = aux_slot.open(&self.sealer, &sealed_aux)?;
        let aux = AuxInfo::from_bytes(&plain).map_err(|source| StoreError::Decode {
            record: aux_slot.name().into(),
            source,
        })?;
        Ok((share, aux))
    }

    /// Opens and decodes one presignature (without removing it).
    pub(crate) fn open_presignature(
        &self,
        key_id: &KeyId,
        epoch: u64,
        session: &[u8; 32],
        sealed: &[u8],
    ) -> Result<Presignature, StoreError> {
        let slot = Slot::presignature(key_id, epoch, session)?;
        let plain = slot.open(&self.sealer, sealed)?;
        Presignature::from_bytes(&plain).map_err(|source| StoreError::Decode {
            record: slot.name().into(),
            source,
        })
    }

    /// The whole audit log, in order (no chain check: see [`SledVault::verify_audit`]).
    pub fn audit_log(&self) -> Result<Vec<AuditRecord>, StoreError> {
        audit::read_all(&self.trees.audit)
    }

    /// Walks the audit chain.
    pub fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        audit::verify_chain(&self.trees.audit, &self.trees.meta)
    }

    /// Checks the whole store: every share, aux info and presignature opens and decodes,
    /// every presignature belongs to a stored key, no stored key is also reserved, and the
    /// audit chain is intact. Unseals every secret once: an operator tool and a test oracle,
    /// not something to run per request.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let _guard = self
            .lock()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut keys = 0;
        for item in self.trees.keys.iter() {
            let (k, v) = item.map_err(StoreError::db("reading keys"))?;
            let key_id = id32(&k, "key id")?;
            let entry = KeyEntry::decode(&v, &key_id)?;
            self.open_key(&key_id, &entry)?;
            if self
                .trees
                .reservations
                .contains_key(key_id)
                .map_err(StoreError::db("reading reservations"))?
            {
                return Err(StoreError::Corrupt(format!(
                    "key {} is both stored and reserved",
                    hex::encode(key_id)
                )));
            }
            keys += 1;
        }
        for item in self.trees.aux.iter() {
            let (k, _) = item.map_err(StoreError::db("reading aux info"))?;
            if !self
                .trees
                .keys
                .contains_key(&k)
                .map_err(StoreError::db("reading keys"))?
            {
                return Err(StoreError::Corrupt(format!(
                    "aux info {} has no key",
                    hex::encode(&k)
                )));
            }
        }
        let mut presignatures = 0;
        for item in self.trees.presignatures.iter() {
            let (k, v) = item.map_err(StoreError::db("reading presignatures"))?;
            let (key_id, session) = parse_presignature_key(&k)?;
            let entry = self.key_entry(&key_id)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "presignature {} belongs to no stored key {}",
                    hex::encode(session),
                    hex::encode(key_id)
                ))
            })?;
            self.open_presignature(&key_id, entry.epoch, &session, &v)?;
            presignatures += 1;
        }
        let mut reservations = 0;
        for item in self.trees.reservations.iter() {
            let (k, v) = item.map_err(StoreError::db("reading reservations"))?;
            id32(&k, "reserved key id")?;
            id32(&v, "reserving session id")?;
            reservations += 1;
        }
        let mut sessions = 0;
        for item in self.trees.sessions.iter() {
            let (k, v) = item.map_err(StoreError::db("reading session records"))?;
            let id = id32(&k, "session id")?;
            crate::session_record::SessionRecord::decode(&id, &v)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sessions += 1;
        }
        let audit_entries = match self.verify_audit()? {
            ChainReport::Intact { entries, .. } => entries,
            ChainReport::Broken { at, reason } => {
                return Err(StoreError::Corrupt(format!(
                    "audit log broken at entry {at}: {reason}"
                )))
            }
        };
        Ok(CheckReport {
            keys,
            presignatures,
            reservations,
            sessions,
            audit_entries,
        })
    }
}
