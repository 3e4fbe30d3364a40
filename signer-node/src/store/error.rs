//! Typed errors of the sealed store. None carries secret material: messages name trees,
//! records (by key id and session id, which are public) and reasons.

use std::path::PathBuf;

use hsm_profiles::SealError;
use mpc_core::store::StoreDecodeError;

use crate::vault::VaultError;

/// Opening, reading or checking the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, lock held by another process, corruption sled itself detected).
    #[error("sled: {op}: {source}")]
    Db {
        /// What the store was doing.
        op: &'static str,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// Creating or inspecting the store directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `open` found no store in the data directory.
    #[error("no store at {0} (create one first)")]
    NotFound(PathBuf),
    /// `create` found a store (or something else) where it would create one.
    #[error("{0} already exists; refusing to create a store over it")]
    AlreadyExists(PathBuf),
    /// The store was written by a format version this build does not know.
    #[error("store format version {found} is not supported by this build (it reads version {supported})")]
    UnsupportedFormat {
        /// Version recorded in the store.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// The store was sealed under another data key than the sealer's (another keystore).
    #[error("store was sealed under data key {store}, but the sealer holds data key {sealer}: wrong keystore for this data directory")]
    WrongDataKey {
        /// Data key id recorded in the store at creation.
        store: String,
        /// Data key id of the sealer given to `open`.
        sealer: String,
    },
    /// A sealed record did not open (altered, or moved to another key id, kind or slot).
    #[error("{record}: {source}")]
    Seal {
        /// Which record (tree and public ids).
        record: String,
        /// The sealer's error.
        #[source]
        source: SealError,
    },
    /// An unsealed record did not decode as the record it claims to be.
    #[error("{record}: {source}")]
    Decode {
        /// Which record.
        record: String,
        /// The decoder's error.
        #[source]
        source: StoreDecodeError,
    },
    /// The store's own framing or invariants are broken (a record of the wrong length, a
    /// presignature without its key, a missing meta record, ...).
    #[error("store is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| Self::Db { op, source }
    }
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Decode { source, .. } => VaultError::Decode(source),
            other => VaultError::Storage(other.to_string()),
        }
    }
}
