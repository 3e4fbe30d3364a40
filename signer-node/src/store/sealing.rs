//! What each sealed record is bound to (OPS-04), and sealing/opening with errors that name
//! the record.
//!
//! | record | record kind | key id | context |
//! |---|---|---|---|
//! | key share | `key-share` | key id | format version (u32 BE) ‖ epoch (u64 BE) |
//! | aux info | `aux-info` | key id | format version ‖ epoch of the key it was stored with |
//! | presignature | `presignature` | key id | format version ‖ key epoch ‖ presign session id |
//! | canary | `store-canary` | empty | format version |
//! | prime set | `prime-set` | prime set id | format version |
//!
//! So a sealed value copied to another key id, another tree, another presignature slot, or
//! kept across a refresh (older epoch) fails to open, and the unsealed epoch beside a share
//! cannot be edited without the share failing to open.

use std::sync::Arc;

use hsm_profiles::{SealAad, Sealer};
use zeroize::Zeroizing;

use crate::store::error::StoreError;
use crate::store::layout::FORMAT_VERSION;
use crate::vault::{KeyId, SessionId32};

/// Record kind of key shares.
pub const KIND_KEY_SHARE: &str = "key-share";
/// Record kind of aux info.
pub const KIND_AUX_INFO: &str = "aux-info";
/// Record kind of presignatures.
pub const KIND_PRESIGNATURE: &str = "presignature";
/// Record kind of the prime pool's safe-prime sets.
pub const KIND_PRIME_SET: &str = "prime-set";
/// Record kind of the store's canary (a known plaintext that proves the sealer fits).
pub const KIND_CANARY: &str = "store-canary";

/// The canary's plaintext.
pub(crate) const CANARY_PLAINTEXT: &[u8] = b"custody-appliance signer-node store canary";

/// One sealed slot: which record it is and what it is bound to.
pub(crate) struct Slot {
    aad: SealAad,
    name: String,
}

impl Slot {
    fn new(kind: &str, key_id: &[u8], extra: &[&[u8]], name: String) -> Result<Self, StoreError> {
        let mut context = FORMAT_VERSION.to_be_bytes().to_vec();
        for e in extra {
            context.extend_from_slice(e);
        }
        let aad = SealAad::new(kind, key_id)
            .and_then(|a| a.with_context(&context))
            .map_err(|source| StoreError::Seal {
                record: name.clone(),
                source,
            })?;
        Ok(Self { aad, name })
    }

    /// The key share of `key_id` at `epoch`.
    pub(crate) fn key_share(key_id: &KeyId, epoch: u64) -> Result<Self, StoreError> {
        let name = format!("key share {} (epoch {epoch})", hex::encode(key_id));
        Self::new(KIND_KEY_SHARE, key_id, &[&epoch.to_be_bytes()], name)
    }

    /// The aux info of `key_id` stored with the share of `epoch`.
    pub(crate) fn aux_info(key_id: &KeyId, epoch: u64) -> Result<Self, StoreError> {
        let name = format!("aux info {} (epoch {epoch})", hex::encode(key_id));
        Self::new(KIND_AUX_INFO, key_id, &[&epoch.to_be_bytes()], name)
    }

    /// The presignature `session` of `key_id`, made at key epoch `epoch`.
    pub(crate) fn presignature(
        key_id: &KeyId,
        epoch: u64,
        session: &SessionId32,
    ) -> Result<Self, StoreError> {
        let name = format!(
            "presignature {} of key {} (epoch {epoch})",
            hex::encode(session),
            hex::encode(key_id)
        );
        Self::new(
            KIND_PRESIGNATURE,
            key_id,
            &[&epoch.to_be_bytes(), session],
            name,
        )
    }

    /// The prime set `id` of the prime pool.
    pub(crate) fn prime_set(id: &[u8; 32]) -> Result<Self, StoreError> {
        let name = format!("prime set {}", hex::encode(id));
        Self::new(KIND_PRIME_SET, id, &[], name)
    }

    /// The store's canary.
    pub(crate) fn canary() -> Result<Self, StoreError> {
        Self::new(KIND_CANARY, &[], &[], "store canary".into())
    }

    /// A human-readable name of the slot (public ids only).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Seals `plaintext` into this slot.
    pub(crate) fn seal(
        &self,
        sealer: &Arc<dyn Sealer>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        sealer
            .seal(&self.aad, plaintext)
            .map(|b| b.into_vec())
            .map_err(|source| StoreError::Seal {
                record: self.name.clone(),
                source,
            })
    }

    /// Opens a blob sealed into this slot.
    pub(crate) fn open(
        &self,
        sealer: &Arc<dyn Sealer>,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        sealer
            .open(&self.aad, blob)
            .map_err(|source| StoreError::Seal {
                record: self.name.clone(),
                source,
            })
    }
}
