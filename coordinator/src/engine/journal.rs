//! The engine's own persistent journal: what a restart needs that the chain does not hold.
//! A sled database of its own (the chain's store is another directory), every write flushed
//! before the engine acts on it.
//!
//! | key | value |
//! |---|---|
//! | `lo/` lock-out id | [`LockOutEntry`]: the committed order, the adapter's unsigned transaction and its spends, whether signing started, the signatures obtained, the raw transaction broadcast |
//! | `ca/` lock-out id | [`LockOutEntry`] of the lock-out's cancellation (its order, unsigned transaction, signatures, broadcast), written before `CommitCancellation` is proposed |
//! | `rr/` lock-out id | why a lock-out was refunded (UTF-8) |
//! | `fr/` asset code | the deposit watcher's frontier (u64 BE) |
//!
//! Records use the canonical codec of `custody_proto::chain::codec` and are decoded strictly.

use std::path::Path;

use custody_proto::chain::codec::{Reader, Writer};
use custody_proto::chain::DecodeError;
use k256::ecdsa::{RecoveryId, Signature};
use k256::elliptic_curve::sec1::ToEncodedPoint;

use crate::adapter::{
    ExternalChain, FleetSignature, SighashRule, SignedWithdrawal, SigningInput, Spend,
    UnsignedWithdrawal,
};
use crate::chain::Asset;

use super::EngineError;

const ENTRY_TAG: &str = "custody.engine.v1/lockout-entry";
const MAX_BYTES: usize = 8 << 20;
const MAX_ITEMS: u32 = 4096;

/// What the engine knows about one lock-out beyond the chain record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOutEntry {
    /// The `custody.order.v2` bytes committed (or to be committed) for it.
    pub order: Vec<u8>,
    /// The adapter's unsigned transaction, with its spends (reserved while the lock-out is
    /// pending).
    pub withdrawal: UnsignedWithdrawal,
    /// Set and flushed before the first signing session: from then on the lock-out is never
    /// refunded by the engine.
    pub signing_started: bool,
    /// One slot per input; a signature once obtained is reused, never requested again.
    pub signatures: Vec<Option<FleetSignature>>,
    /// The signed transaction, written before it is first handed to the node.
    pub broadcast: Option<SignedWithdrawal>,
    /// Failed signing attempts.
    pub failures: u32,
    /// The last signing or broadcast error.
    pub last_error: Option<String>,
}

impl LockOutEntry {
    /// A new entry for a planned order: nothing signed yet.
    pub fn planned(order: Vec<u8>, withdrawal: UnsignedWithdrawal) -> Self {
        let n = withdrawal.inputs.len();
        Self {
            order,
            withdrawal,
            signing_started: false,
            signatures: vec![None; n],
            broadcast: None,
            failures: 0,
            last_error: None,
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(ENTRY_TAG);
        w.var(&self.order);
        let u = &self.withdrawal;
        w.u8(match u.chain {
            ExternalChain::Ethereum => 1,
            ExternalChain::Bitcoin => 2,
        });
        w.var(&u.unsigned_tx);
        w.u32(count(u.inputs.len()));
        for i in &u.inputs {
            w.u32(count(i.path.len()));
            for p in &i.path {
                w.u32(*p);
            }
            w.fixed(i.public_key.to_encoded_point(true).as_bytes());
            w.var(&i.preimage);
            w.u8(match i.rule {
                SighashRule::Keccak256 => 1,
                SighashRule::DoubleSha256 => 2,
            });
            w.fixed(&i.digest);
        }
        w.u128(u.sent);
        w.u128(u.fee);
        w.u32(count(u.spends.len()));
        for s in &u.spends {
            match s {
                Spend::Nonce { address, nonce } => {
                    w.u8(1);
                    w.var(address.as_bytes());
                    w.u64(*nonce);
                }
                Spend::Outpoint(o) => {
                    w.u8(2);
                    w.var(o.as_bytes());
                }
            }
        }
        w.u8(u8::from(self.signing_started));
        w.u32(count(self.signatures.len()));
        for s in &self.signatures {
            match s {
                None => w.u8(0),
                Some(sig) => {
                    w.u8(1);
                    w.fixed(&sig.signature.to_bytes());
                    w.u8(sig.recovery_id.to_byte());
                }
            }
        }
        match &self.broadcast {
            None => w.u8(0),
            Some(b) => {
                w.u8(1);
                w.var(&b.raw);
                w.var(b.txid.as_bytes());
            }
        }
        w.u32(self.failures);
        match &self.last_error {
            None => w.u8(0),
            Some(e) => {
                w.u8(1);
                w.var(e.as_bytes());
            }
        }
        w.finish()
    }

    /// Decodes exactly one entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let bad = |field, reason| DecodeError::Invalid { field, reason };
        let mut r = Reader::tagged(bytes, ENTRY_TAG)?;
        let order = r.var("order", MAX_BYTES)?.to_vec();
        let chain = match r.u8()? {
            1 => ExternalChain::Ethereum,
            2 => ExternalChain::Bitcoin,
            _ => return Err(bad("chain", "unknown chain")),
        };
        let unsigned_tx = r.var("unsigned_tx", MAX_BYTES)?.to_vec();
        let n = items(&mut r)?;
        let mut inputs = Vec::new();
        for _ in 0..n {
            let depth = items(&mut r)?;
            let mut path = Vec::new();
            for _ in 0..depth {
                path.push(r.u32()?);
            }
            let pk: [u8; 33] = r.array()?;
            let public_key = k256::PublicKey::from_sec1_bytes(&pk)
                .map_err(|_| bad("public_key", "not a curve point"))?;
            let preimage = r.var("preimage", MAX_BYTES)?.to_vec();
            let rule = match r.u8()? {
                1 => SighashRule::Keccak256,
                2 => SighashRule::DoubleSha256,
                _ => return Err(bad("rule", "unknown sighash rule")),
            };
            inputs.push(SigningInput {
                path,
                public_key,
                preimage,
                rule,
                digest: r.array()?,
            });
        }
        let sent = r.u128()?;
        let fee = r.u128()?;
        let n = items(&mut r)?;
        let mut spends = Vec::new();
        for _ in 0..n {
            spends.push(match r.u8()? {
                1 => Spend::Nonce {
                    address: r.string("address", 256)?,
                    nonce: r.u64()?,
                },
                2 => Spend::Outpoint(r.string("outpoint", 256)?),
                _ => return Err(bad("spend", "unknown spend kind")),
            });
        }
        let signing_started = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(bad("signing_started", "not a boolean")),
        };
        let n = items(&mut r)?;
        let mut signatures = Vec::new();
        for _ in 0..n {
            signatures.push(match r.u8()? {
                0 => None,
                1 => {
                    let rs: [u8; 64] = r.array()?;
                    let signature = Signature::from_slice(&rs)
                        .map_err(|_| bad("signature", "not an ECDSA signature"))?;
                    let recovery_id =
                        RecoveryId::from_byte(r.u8()?).ok_or(bad("recovery_id", "out of range"))?;
                    Some(FleetSignature {
                        signature,
                        recovery_id,
                    })
                }
                _ => return Err(bad("signature", "bad option flag")),
            });
        }
        let broadcast = match r.u8()? {
            0 => None,
            1 => Some(SignedWithdrawal {
                raw: r.var("raw", MAX_BYTES)?.to_vec(),
                txid: r.string("txid", 256)?,
            }),
            _ => return Err(bad("broadcast", "bad option flag")),
        };
        let failures = r.u32()?;
        let last_error = match r.u8()? {
            0 => None,
            1 => Some(r.string("last_error", MAX_BYTES)?),
            _ => return Err(bad("last_error", "bad option flag")),
        };
        r.finish()?;
        if signatures.len() != inputs.len() {
            return Err(bad("signatures", "not one slot per input"));
        }
        Ok(Self {
            order,
            withdrawal: UnsignedWithdrawal {
                chain,
                unsigned_tx,
                inputs,
                sent,
                fee,
                spends,
            },
            signing_started,
            signatures,
            broadcast,
            failures,
            last_error,
        })
    }
}

fn count(n: usize) -> u32 {
    // Lengths come from adapter output bounded far below u32::MAX; saturating keeps encode
    // total and decode refuses what it cannot read back.
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn items(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let n = r.u32()?;
    if n > MAX_ITEMS {
        return Err(DecodeError::Invalid {
            field: "count",
            reason: "too many items",
        });
    }
    Ok(n)
}

const BLAME_EVIDENCE_TAG: &str = "custody.journal.v1/blame-evidence";

fn key(prefix: &[u8], id: &[u8]) -> Vec<u8> {
    [prefix, id].concat()
}

/// The journal store.
pub struct Journal {
    db: sled::Db,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, a directory of its own.
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        Ok(Self {
            db: sled::open(dir)?,
        })
    }

    /// The entry of a lock-out, if the engine planned it.
    pub fn lockout(&self, id: &[u8; 32]) -> Result<Option<LockOutEntry>, EngineError> {
        match self.db.get(key(b"lo/", id))? {
            None => Ok(None),
            Some(v) => LockOutEntry::decode(&v)
                .map(Some)
                .map_err(|e| EngineError::CorruptJournal(e.to_string())),
        }
    }

    /// Writes a lock-out entry and flushes it to disk before returning.
    pub fn put_lockout(&self, id: &[u8; 32], entry: &LockOutEntry) -> Result<(), EngineError> {
        self.db.insert(key(b"lo/", id), entry.encode())?;
        self.db.flush()?;
        Ok(())
    }

    /// Every lock-out entry with its id.
    pub fn lockouts(&self) -> Result<Vec<([u8; 32], LockOutEntry)>, EngineError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(b"lo/") {
            let (k, v) = item?;
            let id = k
                .get(3..)
                .and_then(|id| <[u8; 32]>::try_from(id).ok())
                .ok_or_else(|| EngineError::CorruptJournal("lock-out key".into()))?;
            let e =
                LockOutEntry::decode(&v).map_err(|e| EngineError::CorruptJournal(e.to_string()))?;
            out.push((id, e));
        }
        Ok(out)
    }

    /// The entry of a lock-out's cancellation, if the engine planned one.
    pub fn cancellation(&self, id: &[u8; 32]) -> Result<Option<LockOutEntry>, EngineError> {
        match self.db.get(key(b"ca/", id))? {
            None => Ok(None),
            Some(v) => LockOutEntry::decode(&v)
                .map(Some)
                .map_err(|e| EngineError::CorruptJournal(e.to_string())),
        }
    }

    /// Writes a cancellation entry and flushes it to disk before returning.
    pub fn put_cancellation(&self, id: &[u8; 32], entry: &LockOutEntry) -> Result<(), EngineError> {
        self.db.insert(key(b"ca/", id), entry.encode())?;
        self.db.flush()?;
        Ok(())
    }

    /// Records why a lock-out is refunded.
    pub fn put_refund_reason(&self, id: &[u8; 32], reason: &str) -> Result<(), EngineError> {
        self.db.insert(key(b"rr/", id), reason.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Why a lock-out was refunded, if the engine refunded it.
    pub fn refund_reason(&self, id: &[u8; 32]) -> Result<Option<String>, EngineError> {
        Ok(self
            .db
            .get(key(b"rr/", id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Keeps the evidence of a blame reported on chain (the chain holds its digest).
    pub fn put_blame_evidence(
        &self,
        session_id: &[u8; 32],
        evidence: &[Vec<u8>],
    ) -> Result<(), EngineError> {
        let mut w = custody_proto::chain::codec::Writer::tagged(BLAME_EVIDENCE_TAG);
        w.u32(u32::try_from(evidence.len()).map_err(|_| {
            EngineError::CorruptJournal("more evidence envelopes than fit a u32".into())
        })?);
        for e in evidence {
            w.var(e);
        }
        self.db.insert(key(b"be/", session_id), w.finish())?;
        self.db.flush()?;
        Ok(())
    }

    /// The evidence of a reported blame, as [`Journal::put_blame_evidence`] kept it.
    pub fn blame_evidence(
        &self,
        session_id: &[u8; 32],
    ) -> Result<Option<Vec<Vec<u8>>>, EngineError> {
        let Some(v) = self.db.get(key(b"be/", session_id))? else {
            return Ok(None);
        };
        let corrupt = |e: custody_proto::chain::DecodeError| {
            EngineError::CorruptJournal(format!("blame evidence: {e}"))
        };
        let mut r =
            custody_proto::chain::codec::Reader::tagged(&v, BLAME_EVIDENCE_TAG).map_err(corrupt)?;
        let n = r.u32().map_err(corrupt)?;
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(r.var("evidence", usize::MAX).map_err(corrupt)?.to_vec());
        }
        r.finish().map_err(corrupt)?;
        Ok(Some(out))
    }

    /// The deposit watcher's frontier for `asset`.
    pub fn frontier(&self, asset: Asset) -> Result<Option<u64>, EngineError> {
        match self.db.get(key(b"fr/", &[asset.code()]))? {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(|b| Some(u64::from_be_bytes(b)))
                .map_err(|_| EngineError::CorruptJournal("frontier".into())),
        }
    }

    /// Stores the deposit watcher's frontier for `asset`.
    pub fn put_frontier(&self, asset: Asset, height: u64) -> Result<(), EngineError> {
        self.db
            .insert(key(b"fr/", &[asset.code()]), height.to_be_bytes().to_vec())?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use k256::ecdsa::SigningKey;

    fn entry() -> LockOutEntry {
        let key = SigningKey::from_bytes(&[3u8; 32].into()).unwrap();
        let (signature, recovery_id) = key.sign_prehash_recoverable(&[9u8; 32]).unwrap();
        let input = |path: Vec<u32>, rule| SigningInput {
            path,
            public_key: k256::PublicKey::from(key.verifying_key()),
            preimage: vec![1, 2, 3],
            rule,
            digest: [9; 32],
        };
        LockOutEntry {
            order: vec![5; 40],
            withdrawal: UnsignedWithdrawal {
                chain: ExternalChain::Bitcoin,
                unsigned_tx: vec![7; 20],
                inputs: vec![
                    input(vec![2, 0], SighashRule::DoubleSha256),
                    input(vec![2, 1], SighashRule::Keccak256),
                ],
                sent: 10,
                fee: 2,
                spends: vec![
                    Spend::Outpoint("ab:0".into()),
                    Spend::Nonce {
                        address: "0xabc".into(),
                        nonce: 4,
                    },
                ],
            },
            signing_started: true,
            signatures: vec![
                Some(FleetSignature {
                    signature,
                    recovery_id,
                }),
                None,
            ],
            broadcast: Some(SignedWithdrawal {
                raw: vec![1; 10],
                txid: "ff".into(),
            }),
            failures: 3,
            last_error: Some("aborted".into()),
        }
    }

    #[test]
    fn blame_evidence_round_trips_and_is_absent_until_kept() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.blame_evidence(&[1; 32]).unwrap(), None);
        let evidence = vec![vec![1, 2, 3], vec![], vec![9; 1000]];
        j.put_blame_evidence(&[1; 32], &evidence).unwrap();
        assert_eq!(j.blame_evidence(&[1; 32]).unwrap(), Some(evidence));
        j.put_blame_evidence(&[2; 32], &[]).unwrap();
        assert_eq!(j.blame_evidence(&[2; 32]).unwrap(), Some(vec![]));
    }

    #[test]
    fn entry_round_trips_strictly() {
        for e in [entry(), {
            let mut e = entry();
            e.signing_started = false;
            e.signatures = vec![None, None];
            e.broadcast = None;
            e.last_error = None;
            e
        }] {
            let bytes = e.encode();
            assert_eq!(LockOutEntry::decode(&bytes).unwrap(), e);
            for cut in 0..bytes.len() {
                assert!(LockOutEntry::decode(&bytes[..cut]).is_err(), "prefix {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(LockOutEntry::decode(&longer).is_err());
        }
    }

    #[test]
    fn journal_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = [4u8; 32];
        {
            let j = Journal::open(dir.path()).unwrap();
            j.put_lockout(&id, &entry()).unwrap();
            j.put_refund_reason(&[5; 32], "no funds").unwrap();
            j.put_frontier(Asset::MBTC, 77).unwrap();
            let mut cancel = entry();
            cancel.order = vec![9, 9];
            j.put_cancellation(&id, &cancel).unwrap();
        }
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.lockout(&id).unwrap(), Some(entry()));
        // The cancellation is kept apart: not listed among the payments.
        assert_eq!(j.lockouts().unwrap(), vec![(id, entry())]);
        assert_eq!(j.cancellation(&id).unwrap().unwrap().order, vec![9, 9]);
        assert_eq!(j.cancellation(&[5; 32]).unwrap(), None);
        assert_eq!(
            j.refund_reason(&[5; 32]).unwrap().as_deref(),
            Some("no funds")
        );
        assert_eq!(j.frontier(Asset::MBTC).unwrap(), Some(77));
        assert_eq!(j.frontier(Asset::METH).unwrap(), None);
    }
}
