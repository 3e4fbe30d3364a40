//! The store's on-disk layout: tree names, meta records and the typed encodings of sled keys
//! and of the store's own (unsealed) framing around sealed blobs.
//!
//! | tree | sled key | value |
//! |---|---|---|
//! | `meta` | `format_version` | u32 BE, [`FORMAT_VERSION`] |
//! | `meta` | `data_key_id` | 16 bytes: the sealer's data key id at creation |
//! | `meta` | `canary` | a sealed known plaintext (kind `store-canary`) |
//! | `meta` | `audit_head` | u64 BE sequence number ‖ 32-byte hash of the last audit entry |
//! | `keys` | key id (32) | epoch u64 BE ‖ sealed key share |
//! | `aux` | key id (32) | sealed aux info |
//! | `presignatures` | key id (32) ‖ presign session id (32) | sealed presignature |
//! | `reservations` | key id (32) | DKG session id (32) |
//! | `prime_sets` | prime set id (32, random) | sealed prime set (the prime pool) |
//! | `audit` | sequence number u64 BE (from 1) | audit entry ‖ its SHA-256 |
//! | `sessions` | session id (32) | session record, not sealed (public), with its SHA-256 ([`crate::session_record`]) |
//!
//! All integers are big-endian, so sled's byte order is numeric order.
//!
//! The `sessions` tree was added within format version 1: a store written before it simply
//! has no session records (nothing to mark at start), and a binary from before it ignores the
//! tree (it would not refuse a reused session id from the earlier run, but nothing secret or
//! needed to sign is in it).

use crate::store::error::StoreError;
use crate::vault::{KeyId, SessionId32};

/// Format version of the store written by this build. `open` refuses any other.
pub const FORMAT_VERSION: u32 = 1;

/// Subdirectory of the node's data directory that holds the sled database.
pub const STORE_DIR: &str = "store";

/// Names of the sled trees.
pub(crate) mod tree {
    pub(crate) const META: &str = "meta";
    pub(crate) const KEYS: &str = "keys";
    pub(crate) const AUX: &str = "aux";
    pub(crate) const PRESIGNATURES: &str = "presignatures";
    pub(crate) const RESERVATIONS: &str = "reservations";
    pub(crate) const AUDIT: &str = "audit";
    pub(crate) const PRIME_SETS: &str = "prime_sets";
    pub(crate) const SESSIONS: &str = "sessions";
}

/// Keys of the `meta` tree.
pub(crate) mod meta {
    pub(crate) const FORMAT_VERSION: &[u8] = b"format_version";
    pub(crate) const DATA_KEY_ID: &[u8] = b"data_key_id";
    pub(crate) const CANARY: &[u8] = b"canary";
    pub(crate) const AUDIT_HEAD: &[u8] = b"audit_head";
}

/// A 32-byte id read back from a sled key or value.
pub(crate) fn id32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// The sled key of a presignature: key id ‖ presign session id (so a prefix scan by key id
/// lists one key's pool in session-id order).
pub(crate) fn presignature_key(key_id: &KeyId, session: &SessionId32) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(key_id);
    k[32..].copy_from_slice(session);
    k
}

/// Splits a presignature's sled key back into (key id, presign session id).
pub(crate) fn parse_presignature_key(k: &[u8]) -> Result<(KeyId, SessionId32), StoreError> {
    if k.len() != 64 {
        return Err(StoreError::Corrupt(format!(
            "presignature slot key is {} bytes, not 64",
            k.len()
        )));
    }
    Ok((id32(&k[..32], "key id")?, id32(&k[32..], "session id")?))
}

/// The value of the `keys` tree: the epoch in the clear (for the refresh rule without
/// unsealing, and as part of the share's AAD) and the sealed share.
pub(crate) struct KeyEntry {
    pub(crate) epoch: u64,
    pub(crate) sealed_share: Vec<u8>,
}

impl KeyEntry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.sealed_share.len());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.sealed_share);
        out
    }

    pub(crate) fn decode(bytes: &[u8], key_id: &KeyId) -> Result<Self, StoreError> {
        let (epoch, sealed) = bytes.split_first_chunk::<8>().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "key entry {} is shorter than its epoch",
                hex::encode(key_id)
            ))
        })?;
        Ok(Self {
            epoch: u64::from_be_bytes(*epoch),
            sealed_share: sealed.to_vec(),
        })
    }
}

/// The `audit_head` meta record: (sequence number, hash) of the last entry; (0, zeros) when
/// the log is empty.
pub(crate) fn encode_head(seq: u64, hash: &[u8; 32]) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&seq.to_be_bytes());
    out[8..].copy_from_slice(hash);
    out
}

/// Parses the `audit_head` meta record (absent = empty log).
pub(crate) fn decode_head(bytes: Option<&[u8]>) -> Result<(u64, [u8; 32]), StoreError> {
    match bytes {
        None => Ok((0, [0u8; 32])),
        Some(b) if b.len() == 40 => {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&b[..8]);
            Ok((u64::from_be_bytes(seq), id32(&b[8..], "audit head hash")?))
        }
        Some(b) => Err(StoreError::Corrupt(format!(
            "audit head record is {} bytes, not 40",
            b.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn presignature_keys_round_trip_and_sort_by_key_then_session() {
        let a = presignature_key(&[1; 32], &[9; 32]);
        let b = presignature_key(&[2; 32], &[0; 32]);
        assert!(a < b);
        assert_eq!(parse_presignature_key(&a).unwrap(), ([1; 32], [9; 32]));
        assert!(parse_presignature_key(&a[..63]).is_err());
    }

    #[test]
    fn key_entries_and_heads_refuse_short_records() {
        let e = KeyEntry {
            epoch: 7,
            sealed_share: vec![1, 2, 3],
        };
        let d = KeyEntry::decode(&e.encode(), &[0; 32]).unwrap();
        assert_eq!((d.epoch, d.sealed_share), (7, vec![1, 2, 3]));
        assert!(KeyEntry::decode(&[0; 7], &[0; 32]).is_err());
        assert_eq!(decode_head(None).unwrap(), (0, [0; 32]));
        assert_eq!(
            decode_head(Some(&encode_head(5, &[3; 32]))).unwrap(),
            (5, [3; 32])
        );
        assert!(decode_head(Some(&[0; 39])).is_err());
    }
}
