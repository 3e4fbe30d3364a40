//! Decoded keys, cached per key id: decoding aux info rebuilds the peers' fixed-base tables
//! (≈ 0.1–0.25 s and ≈ 2 MiB per peer), so each key is decoded once and its aux info shared
//! as an `Arc` by every presigning session.
//!
//! The runner is the only writer of keys in a node, so the cache is filled when the runner
//! stores a key and on first use after a restart. A refresh or reshare replaces the entry
//! right after the vault stored the new epoch; a signer retired by a reshare drops it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use custody_proto::signer::v1::KeyInfo;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use mpc_core::aux_info::AuxInfo;
use mpc_core::dkg::KeyShare;

use super::positions::Positions;
use crate::vault::{KeyId, Vault, VaultError};

/// One key: this signer's share, the committee's aux info, and who holds it.
pub struct LoadedKey {
    /// The key id.
    pub key_id: KeyId,
    /// Our share.
    pub share: KeyShare,
    /// Aux info of the committee (shared with presigning sessions).
    pub aux: Arc<AuxInfo>,
    /// The holders, by position.
    pub holders: Positions,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("key_id", &hex::encode(self.key_id))
            .field("holders", &self.holders)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// A key whose committee was made by [`Positions::committee`] from indices of `fleet`.
    pub fn new(
        key_id: KeyId,
        share: KeyShare,
        aux: Arc<AuxInfo>,
        fleet: &[u16],
    ) -> Result<Self, VaultError> {
        let holders = Positions::from_committee(share.committee(), fleet).ok_or_else(|| {
            VaultError::Storage(format!(
                "key {}: its committee is not a set of this fleet's signers",
                hex::encode(key_id)
            ))
        })?;
        Ok(Self {
            key_id,
            share,
            aux,
            holders,
        })
    }

    /// The public facts (`ListKeys`, keygen outcome).
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            key_id: self.key_id.to_vec(),
            public_key: self
                .share
                .public_key()
                .to_affine()
                .to_encoded_point(true)
                .as_bytes()
                .to_vec(),
            chain_code: self.share.chain_code().to_vec(),
            threshold: u32::from(self.share.threshold()),
            holders: self
                .holders
                .members()
                .iter()
                .map(|i| u32::from(*i))
                .collect(),
            epoch: self.share.epoch(),
        }
    }
}

/// The cache.
pub struct KeyCache {
    vault: Arc<dyn Vault>,
    fleet: Vec<u16>,
    keys: Mutex<BTreeMap<KeyId, Arc<LoadedKey>>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

impl KeyCache {
    /// A cache in front of `vault`, for a fleet of signers `fleet`.
    pub fn new(vault: Arc<dyn Vault>, fleet: Vec<u16>) -> Self {
        Self {
            vault,
            fleet,
            keys: Mutex::new(BTreeMap::new()),
        }
    }

    fn cached(&self, key_id: &KeyId) -> Option<Arc<LoadedKey>> {
        self.keys.lock().ok()?.get(key_id).cloned()
    }

    /// Puts a key the runner just stored.
    pub fn insert(&self, key: Arc<LoadedKey>) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(key.key_id, key);
        }
    }

    /// Drops a key this signer no longer holds (retired by a reshare).
    pub fn remove(&self, key_id: &KeyId) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(key_id);
        }
    }

    /// The key, decoded once (blocking: run it off the async threads on a miss).
    pub fn get_blocking(&self, key_id: &KeyId) -> Result<Option<Arc<LoadedKey>>, VaultError> {
        if let Some(k) = self.cached(key_id) {
            return Ok(Some(k));
        }
        let Some((share, aux)) = self.vault.load_key(key_id)? else {
            return Ok(None);
        };
        let key = Arc::new(LoadedKey::new(*key_id, share, Arc::new(aux), &self.fleet)?);
        self.insert(Arc::clone(&key));
        Ok(Some(key))
    }

    /// [`KeyCache::get_blocking`] on a blocking thread.
    pub async fn get(
        self: &Arc<Self>,
        key_id: KeyId,
    ) -> Result<Option<Arc<LoadedKey>>, VaultError> {
        if let Some(k) = self.cached(&key_id) {
            return Ok(Some(k));
        }
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.get_blocking(&key_id))
            .await
            .map_err(|e| VaultError::Storage(format!("key loading task failed: {e}")))?
    }
}
