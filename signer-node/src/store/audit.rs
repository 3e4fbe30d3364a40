//! The audit log: an append-only SHA-256 hash chain in the `audit` tree.
//!
//! Entry `n` (sequence numbers start at 1) is stored under the sled key `n` (u64 BE) as its
//! canonical encoding followed by its hash:
//!
//! ```text
//! version u8 (1) ‖ seq u64 ‖ timestamp ms since the Unix epoch u64 ‖ kind u8
//! ‖ has session u8 (0/1) [‖ session id 32] ‖ has key u8 (0/1) [‖ key id 32]
//! ‖ detail length u32 ‖ detail UTF-8 ‖ hash of entry n-1 (32 zero bytes for entry 1)
//! hash = SHA-256("custody-appliance/signer-node/audit-entry/v1" ‖ encoding)
//! ```
//!
//! Kind codes (part of the stored format; a new kind takes a new code): 1 key created,
//! 2 key refreshed, 3 presignature added, 4 presignature consumed, 5 partial signature issued,
//! 6 session aborted, 7 request refused, 8 client signature (`SignDigest`).
//!
//! The `audit_head` meta record holds (seq, hash) of the last entry and is written in the same
//! transaction, so removing entries at the end is detected too. [`verify_chain`] walks the log
//! and reports the first entry that was edited, removed, inserted or moved.
//!
//! What the chain proves: that the log is the one the store wrote, **relative to a head hash
//! you trust**. Anyone who can write the data directory can recompute a whole new chain; to
//! catch that, the head hash must be kept somewhere else (printed by `signer-node audit
//! verify`, to be reported in status and anchored by the coordinator later).

use sha2::{Digest, Sha256};
use sled::transaction::{abort, ConflictableTransactionResult, TransactionalTree};

use crate::store::error::StoreError;
use crate::store::layout::{decode_head, encode_head, meta};
use crate::vault::{AuditEvent, AuditKind, VaultError};

/// Longest audit detail accepted, in bytes.
pub const MAX_DETAIL_LEN: usize = 16 * 1024;

const ENTRY_VERSION: u8 = 1;
const HASH_DOMAIN: &[u8] = b"custody-appliance/signer-node/audit-entry/v1";

/// One entry of the audit log as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was written (milliseconds since the Unix epoch, wall clock).
    pub timestamp_ms: u64,
    /// What happened.
    pub event: AuditEvent,
    /// Hash of the previous entry (zeros for the first).
    pub prev_hash: [u8; 32],
}

/// The result of walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every entry is in place and chained, and the head record matches the last one.
    Intact {
        /// Number of entries.
        entries: u64,
        /// Hash of the last entry (zeros for an empty log).
        head: [u8; 32],
    },
    /// The first problem found.
    Broken {
        /// The sequence number where the problem is.
        at: u64,
        /// What is wrong.
        reason: String,
    },
}

fn kind_code(kind: AuditKind) -> u8 {
    match kind {
        AuditKind::KeyCreated => 1,
        AuditKind::KeyRefreshed => 2,
        AuditKind::PresignatureAdded => 3,
        AuditKind::PresignatureConsumed => 4,
        AuditKind::PartialSignatureIssued => 5,
        AuditKind::SessionAborted => 6,
        AuditKind::RequestRefused => 7,
        // 8 and 9 came with refresh/reshare, 10 with client signing; codes 1..=7 keep their
        // meaning, so every log written before decodes as it did (a binary older than these
        // kinds refuses an entry with 8, 9 or 10 as unknown rather than misreading it).
        AuditKind::KeyRetired => 8,
        AuditKind::KeyReshared => 9,
        AuditKind::ClientSignature => 10,
    }
}

fn kind_from_code(code: u8) -> Option<AuditKind> {
    Some(match code {
        1 => AuditKind::KeyCreated,
        2 => AuditKind::KeyRefreshed,
        3 => AuditKind::PresignatureAdded,
        4 => AuditKind::PresignatureConsumed,
        5 => AuditKind::PartialSignatureIssued,
        6 => AuditKind::SessionAborted,
        7 => AuditKind::RequestRefused,
        8 => AuditKind::KeyRetired,
        9 => AuditKind::KeyReshared,
        10 => AuditKind::ClientSignature,
        _ => return None,
    })
}

impl AuditRecord {
    /// The canonical encoding (what the hash covers).
    pub fn encode(&self) -> Vec<u8> {
        let e = &self.event;
        let mut out = Vec::with_capacity(128 + e.detail.len());
        out.push(ENTRY_VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.push(kind_code(e.kind));
        for id in [&e.session_id, &e.key_id] {
            match id {
                None => out.push(0),
                Some(id) => {
                    out.push(1);
                    out.extend_from_slice(id);
                }
            }
        }
        // The detail length is checked against MAX_DETAIL_LEN before a record is made.
        let len = u32::try_from(e.detail.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e.detail.as_bytes());
        out.extend_from_slice(&self.prev_hash);
        out
    }

    /// SHA-256 over the domain tag and the canonical encoding.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(HASH_DOMAIN);
        h.update(self.encode());
        h.finalize().into()
    }

    /// Parses a canonical encoding (strict: no trailing bytes, flags 0 or 1, UTF-8 detail).
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        if r.u8()? != ENTRY_VERSION {
            return Err("unknown audit entry version".into());
        }
        let seq = r.u64()?;
        let timestamp_ms = r.u64()?;
        let kind = kind_from_code(r.u8()?).ok_or("unknown audit kind")?;
        let session_id = r.optional_id()?;
        let key_id = r.optional_id()?;
        let len = usize::try_from(r.u32()?).map_err(|_| "detail length")?;
        if len > MAX_DETAIL_LEN {
            return Err("detail longer than allowed".into());
        }
        let detail = String::from_utf8(r.take(len)?.to_vec())
            .map_err(|_| "detail is not UTF-8".to_string())?;
        let prev_hash = r.id()?;
        if !r.0.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(Self {
            seq,
            timestamp_ms,
            event: AuditEvent {
                kind,
                session_id,
                key_id,
                detail,
            },
            prev_hash,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }
    fn id(&mut self) -> Result<[u8; 32], String> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(b)
    }
    fn optional_id(&mut self) -> Result<Option<[u8; 32]>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.id()?)),
            _ => Err("bad presence flag".into()),
        }
    }
}

/// Refuses an event that cannot be logged (detail too long).
pub(crate) fn check_event(event: &AuditEvent) -> Result<(), VaultError> {
    if event.detail.len() > MAX_DETAIL_LEN {
        return Err(VaultError::Storage(format!(
            "audit detail is {} bytes; at most {MAX_DETAIL_LEN} are kept",
            event.detail.len()
        )));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Appends `event` inside a transaction over the `meta` and `audit` trees (callers checked
/// it with [`check_event`]).
pub(crate) fn append(
    meta_tree: &TransactionalTree,
    audit_tree: &TransactionalTree,
    event: &AuditEvent,
    timestamp_ms: u64,
) -> ConflictableTransactionResult<(), VaultError> {
    let head = meta_tree.get(meta::AUDIT_HEAD)?;
    let (seq, prev_hash) = match decode_head(head.as_deref()) {
        Ok(h) => h,
        Err(e) => return abort(VaultError::from(e)),
    };
    let Some(seq) = seq.checked_add(1) else {
        return abort(VaultError::Storage("audit log is full".into()));
    };
    let record = AuditRecord {
        seq,
        timestamp_ms,
        event: event.clone(),
        prev_hash,
    };
    let hash = record.hash();
    let mut value = record.encode();
    value.extend_from_slice(&hash);
    audit_tree.insert(&seq.to_be_bytes(), value)?;
    meta_tree.insert(meta::AUDIT_HEAD, encode_head(seq, &hash).as_slice())?;
    Ok(())
}

/// Splits a stored value into (record, stored hash).
fn parse_stored(value: &[u8]) -> Result<(AuditRecord, [u8; 32]), String> {
    let split = value
        .len()
        .checked_sub(32)
        .ok_or_else(|| "shorter than a hash".to_string())?;
    let record = AuditRecord::decode(&value[..split])?;
    let mut stored = [0u8; 32];
    stored.copy_from_slice(&value[split..]);
    Ok((record, stored))
}

/// Reads every entry in order (no chain check; see [`verify_chain`]).
pub(crate) fn read_all(audit_tree: &sled::Tree) -> Result<Vec<AuditRecord>, StoreError> {
    let mut out = Vec::new();
    for item in audit_tree.iter() {
        let (k, v) = item.map_err(StoreError::db("reading the audit log"))?;
        let (record, _) = parse_stored(&v).map_err(|reason| {
            StoreError::Corrupt(format!("audit entry {}: {reason}", hex::encode(&k)))
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Walks the chain in the `audit` tree and checks it against the `audit_head` meta record.
pub(crate) fn verify_chain(
    audit_tree: &sled::Tree,
    meta_tree: &sled::Tree,
) -> Result<ChainReport, StoreError> {
    let broken = |at: u64, reason: String| Ok(ChainReport::Broken { at, reason });
    let mut expected_seq: u64 = 1;
    let mut prev = [0u8; 32];
    for item in audit_tree.iter() {
        let (k, v) = item.map_err(StoreError::db("reading the audit log"))?;
        let Ok(key) = <[u8; 8]>::try_from(k.as_ref()) else {
            return broken(expected_seq, "an entry's sled key is not 8 bytes".into());
        };
        let key = u64::from_be_bytes(key);
        if key != expected_seq {
            return broken(
                expected_seq,
                format!("entry {expected_seq} is missing (next stored entry is {key})"),
            );
        }
        let (record, stored_hash) = match parse_stored(&v) {
            Ok(r) => r,
            Err(reason) => return broken(key, format!("entry does not decode: {reason}")),
        };
        if record.seq != key {
            return broken(
                key,
                format!(
                    "entry stored at {key} says it is entry {} (moved)",
                    record.seq
                ),
            );
        }
        if record.prev_hash != prev {
            return broken(
                key,
                "previous-hash field does not match the entry before it (edited, inserted or removed before this one)".into(),
            );
        }
        let hash = record.hash();
        if hash != stored_hash {
            return broken(key, "content does not match its hash (edited)".into());
        }
        prev = hash;
        expected_seq = expected_seq.saturating_add(1);
    }
    let entries = expected_seq.saturating_sub(1);
    let head = meta_tree
        .get(meta::AUDIT_HEAD)
        .map_err(StoreError::db("reading the audit head"))?;
    match decode_head(head.as_deref()) {
        Ok((seq, hash)) if seq == entries && hash == prev => Ok(ChainReport::Intact {
            entries,
            head: prev,
        }),
        Ok((seq, _)) => broken(
            entries.saturating_add(1).min(seq),
            format!("the head record names entry {seq}, the log ends at entry {entries} (entries removed or appended outside the store)"),
        ),
        Err(e) => broken(entries, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            seq: 3,
            timestamp_ms: 1_700_000_000_000,
            event: AuditEvent {
                kind: AuditKind::PresignatureConsumed,
                session_id: Some([5; 32]),
                key_id: None,
                detail: "détail".into(),
            },
            prev_hash: [9; 32],
        }
    }

    #[test]
    fn entries_round_trip_and_every_kind_has_a_code() {
        let r = record();
        assert_eq!(AuditRecord::decode(&r.encode()).unwrap(), r);
        for code in 1..=10 {
            assert_eq!(kind_code(kind_from_code(code).unwrap()), code);
        }
        assert!(kind_from_code(0).is_none() && kind_from_code(11).is_none());
        // the codes are part of the stored format: a new kind takes a new code
        assert_eq!(kind_code(AuditKind::KeyRetired), 8);
        assert_eq!(kind_code(AuditKind::KeyReshared), 9);
        assert_eq!(kind_code(AuditKind::ClientSignature), 10);
    }

    #[test]
    fn decoding_is_strict_and_the_hash_covers_every_field() {
        let r = record();
        let enc = r.encode();
        let mut long = enc.clone();
        long.push(0);
        assert!(AuditRecord::decode(&long).is_err());
        assert!(AuditRecord::decode(&enc[..enc.len() - 1]).is_err());
        let mut flag = enc.clone();
        flag[18] = 2; // session presence flag
        assert!(AuditRecord::decode(&flag).is_err());
        let mut other = r.clone();
        other.event.detail.push('x');
        assert_ne!(other.hash(), r.hash());
        let mut other = r.clone();
        other.timestamp_ms += 1;
        assert_ne!(other.hash(), r.hash());
        let mut other = r;
        other.event.key_id = Some([0; 32]);
        assert_ne!(other.hash(), record().hash());
    }
}
