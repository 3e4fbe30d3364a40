//! The coordinator's index of presignatures made ahead of time (CGGMP24 Fig. 8 run before
//! the message is known), so that a lock-out needs only the one-round signing of Fig. 10
//! once its order is committed.
//!
//! A presignature is bound to the key, its share epoch, the derivation path and the exact
//! signer set (DESIGN; issue #3 item 5), so the index is keyed by all four. The secret parts
//! stay on the signers; this index holds only session ids. Each id is handed out once
//! ([`PresignPool::take`]): whether the signing that uses it succeeds or not, it is never
//! offered again, so no presignature is ever used for two messages. Entries of an older
//! epoch are dropped when the epoch moves (a refresh erases them on the signers).

use std::collections::{BTreeMap, VecDeque};

/// Which presignatures an entry holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PoolKey {
    /// The key id.
    pub key_id: [u8; 32],
    /// Its share epoch.
    pub epoch: u64,
    /// The derivation path fixed at presigning.
    pub path: Vec<u32>,
    /// The signer set, sorted.
    pub signers: Vec<u16>,
}

/// Presignature ids by what they are bound to.
#[derive(Debug, Default)]
pub struct PresignPool {
    entries: BTreeMap<PoolKey, VecDeque<[u8; 32]>>,
}

impl PresignPool {
    /// Adds presignature `id` for `key`.
    pub fn put(&mut self, mut key: PoolKey, id: [u8; 32]) {
        key.signers.sort_unstable();
        key.signers.dedup();
        self.entries.entry(key).or_default().push_back(id);
    }

    /// How many presignatures there are for `key_id` at `epoch` and `path`, over every signer
    /// set.
    pub fn count(&self, key_id: &[u8; 32], epoch: u64, path: &[u32]) -> usize {
        self.entries
            .iter()
            .filter(|(k, _)| &k.key_id == key_id && k.epoch == epoch && k.path == path)
            .map(|(_, v)| v.len())
            .sum()
    }

    /// Takes (removes) the oldest presignature for `key_id` at `epoch` and `path` whose signer
    /// set avoids every signer in `avoid`; returns its signer set and id. Entries of older
    /// epochs of the key are dropped on the way.
    pub fn take(
        &mut self,
        key_id: &[u8; 32],
        epoch: u64,
        path: &[u32],
        avoid: &[u16],
    ) -> Option<(Vec<u16>, [u8; 32])> {
        self.entries
            .retain(|k, v| !v.is_empty() && (&k.key_id != key_id || k.epoch >= epoch));
        let (k, ids) = self.entries.iter_mut().find(|(k, _)| {
            &k.key_id == key_id
                && k.epoch == epoch
                && k.path == path
                && !k.signers.iter().any(|s| avoid.contains(s))
        })?;
        let id = ids.pop_front()?;
        Some((k.signers.clone(), id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(epoch: u64, path: &[u32], signers: &[u16]) -> PoolKey {
        PoolKey {
            key_id: [1; 32],
            epoch,
            path: path.to_vec(),
            signers: signers.to_vec(),
        }
    }

    #[test]
    fn each_id_is_taken_once_and_only_for_its_binding() {
        let mut pool = PresignPool::default();
        pool.put(key(0, &[0, 1], &[2, 1]), [7; 32]);
        pool.put(key(0, &[0, 1], &[1, 2]), [8; 32]);
        assert_eq!(pool.count(&[1; 32], 0, &[0, 1]), 2);
        assert_eq!(pool.take(&[1; 32], 0, &[0, 2], &[]), None, "other path");
        assert_eq!(pool.take(&[2; 32], 0, &[0, 1], &[]), None, "other key");
        assert_eq!(
            pool.take(&[1; 32], 0, &[0, 1], &[2]),
            None,
            "avoided signer"
        );
        assert_eq!(
            pool.take(&[1; 32], 0, &[0, 1], &[3]),
            Some((vec![1, 2], [7; 32])),
            "signer sets are sorted; oldest first"
        );
        assert_eq!(
            pool.take(&[1; 32], 0, &[0, 1], &[]),
            Some((vec![1, 2], [8; 32]))
        );
        assert_eq!(pool.take(&[1; 32], 0, &[0, 1], &[]), None, "never twice");
    }

    #[test]
    fn a_new_epoch_drops_the_old_ones() {
        let mut pool = PresignPool::default();
        pool.put(key(0, &[0, 1], &[1, 2]), [7; 32]);
        pool.put(key(1, &[0, 1], &[1, 2]), [9; 32]);
        assert_eq!(
            pool.take(&[1; 32], 1, &[0, 1], &[]),
            Some((vec![1, 2], [9; 32]))
        );
        assert_eq!(pool.count(&[1; 32], 0, &[0, 1]), 0);
    }
}
