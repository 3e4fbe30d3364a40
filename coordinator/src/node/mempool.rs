//! The mempool: transactions waiting for the next block.
//!
//! Signed transactions come from the public API, system transactions only from in-process
//! callers ([`super::Node::submit_system`]). Signed transactions are kept per sender in nonce
//! order; a sender's transactions must arrive without gaps. The node checks a transaction
//! before it gets here (see [`super::Node::submit`]); this type only keeps order, caps and
//! duplicates.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::chain::{Address, BlockTx, SignedTransaction, SystemTx};

/// Limits of the mempool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transactions waiting, signed and system together.
    pub max_transactions: usize,
    /// Most bytes (canonical encodings) waiting.
    pub max_bytes: usize,
    /// Most transactions of one sender waiting.
    pub max_per_sender: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            max_transactions: 10_000,
            max_bytes: 16 * 1024 * 1024,
            max_per_sender: 64,
        }
    }
}

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// The same transaction is already waiting.
    #[error("this transaction is already waiting for a block")]
    Duplicate,
    /// Another transaction of this sender with this nonce is already waiting.
    #[error("another transaction of this account with nonce {0} is already waiting; replacing it is not supported")]
    NonceTaken(u64),
    /// The pool is full.
    #[error("the mempool is full ({0}); try again after the next block")]
    Full(&'static str),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry<T> {
    pub(crate) tx: T,
    pub(crate) hash: [u8; 32],
    pub(crate) size: usize,
}

/// Waiting transactions.
#[derive(Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    signed: BTreeMap<Address, BTreeMap<u64, Entry<SignedTransaction>>>,
    system: VecDeque<Entry<SystemTx>>,
    hashes: HashSet<[u8; 32]>,
    bytes: usize,
}

impl Mempool {
    /// An empty pool with `limits`.
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `hash` is waiting.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.hashes.contains(hash)
    }

    /// The nonces of `sender`'s waiting transactions, in order.
    pub fn pending_nonces(&self, sender: &Address) -> Vec<u64> {
        self.signed
            .get(sender)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    fn admit(&self, hash: &[u8; 32], size: usize) -> Result<(), MempoolError> {
        if self.hashes.contains(hash) {
            return Err(MempoolError::Duplicate);
        }
        if self.hashes.len() >= self.limits.max_transactions {
            return Err(MempoolError::Full("transaction count"));
        }
        if self.bytes.saturating_add(size) > self.limits.max_bytes {
            return Err(MempoolError::Full("bytes"));
        }
        Ok(())
    }

    pub(crate) fn insert_signed(
        &mut self,
        tx: SignedTransaction,
        hash: [u8; 32],
        size: usize,
    ) -> Result<(), MempoolError> {
        self.admit(&hash, size)?;
        let sender = tx.sender();
        let nonce = tx.tx.nonce;
        let queue = self.signed.entry(sender).or_default();
        if queue.contains_key(&nonce) {
            return Err(MempoolError::NonceTaken(nonce));
        }
        if queue.len() >= self.limits.max_per_sender {
            return Err(MempoolError::Full("transactions of this account"));
        }
        queue.insert(nonce, Entry { tx, hash, size });
        self.hashes.insert(hash);
        self.bytes = self.bytes.saturating_add(size);
        Ok(())
    }

    pub(crate) fn insert_system(
        &mut self,
        tx: SystemTx,
        hash: [u8; 32],
        size: usize,
    ) -> Result<(), MempoolError> {
        self.admit(&hash, size)?;
        self.system.push_back(Entry { tx, hash, size });
        self.hashes.insert(hash);
        self.bytes = self.bytes.saturating_add(size);
        Ok(())
    }

    /// Up to `max` candidates for the next block: system transactions first (in arrival
    /// order), then each sender's transactions in nonce order. Nothing is removed.
    pub(crate) fn candidates(&self, max: usize) -> Vec<(BlockTx, [u8; 32])> {
        let system = self
            .system
            .iter()
            .map(|e| (BlockTx::System(e.tx.clone()), e.hash));
        let signed = self
            .signed
            .values()
            .flat_map(|q| q.values())
            .map(|e| (BlockTx::Signed(e.tx.clone()), e.hash));
        system.chain(signed).take(max).collect()
    }

    /// Removes the transactions with these hashes (included in or refused by a block).
    pub(crate) fn remove(&mut self, hashes: &HashSet<[u8; 32]>) {
        let mut freed = 0usize;
        self.system.retain(|e| {
            let gone = hashes.contains(&e.hash);
            if gone {
                freed = freed.saturating_add(e.size);
            }
            !gone
        });
        for queue in self.signed.values_mut() {
            queue.retain(|_, e| {
                let gone = hashes.contains(&e.hash);
                if gone {
                    freed = freed.saturating_add(e.size);
                }
                !gone
            });
        }
        self.signed.retain(|_, q| !q.is_empty());
        self.hashes.retain(|h| !hashes.contains(h));
        self.bytes = self.bytes.saturating_sub(freed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use k256::ecdsa::SigningKey;

    use super::*;
    use crate::chain::account::compressed;
    use crate::chain::{Asset, Transaction, TxBody};

    fn tx(seed: u8, nonce: u64) -> SignedTransaction {
        let k = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
        Transaction {
            chain_id: "t".into(),
            sender: compressed(k.verifying_key()),
            nonce,
            body: TxBody::Transfer {
                to: Address([1; 20]),
                asset: Asset::METH,
                amount: 1,
            },
        }
        .sign(&k)
    }

    fn hash(t: &SignedTransaction) -> [u8; 32] {
        super::super::tx_hash(&BlockTx::Signed(t.clone()).encode())
    }

    #[test]
    fn duplicates_nonces_and_caps_are_refused_and_removal_frees_room() {
        let mut pool = Mempool::new(MempoolLimits {
            max_transactions: 3,
            max_bytes: 1 << 20,
            max_per_sender: 2,
        });
        let a0 = tx(1, 0);
        pool.insert_signed(a0.clone(), hash(&a0), 10).unwrap();
        assert_eq!(
            pool.insert_signed(a0.clone(), hash(&a0), 10),
            Err(MempoolError::Duplicate)
        );
        // Another transaction with the same sender and nonce (different amount).
        let k = SigningKey::from_bytes(&[1; 32].into()).unwrap();
        let mut other = a0.tx.clone();
        other.body = TxBody::RequestKeygen;
        let other = other.sign(&k);
        assert_eq!(
            pool.insert_signed(other.clone(), hash(&other), 10),
            Err(MempoolError::NonceTaken(0))
        );
        let a1 = tx(1, 1);
        pool.insert_signed(a1.clone(), hash(&a1), 10).unwrap();
        let a2 = tx(1, 2);
        assert!(matches!(
            pool.insert_signed(a2.clone(), hash(&a2), 10),
            Err(MempoolError::Full(_))
        ));
        let b0 = tx(2, 0);
        pool.insert_signed(b0.clone(), hash(&b0), 10).unwrap();
        let c0 = tx(3, 0);
        assert_eq!(
            pool.insert_signed(c0.clone(), hash(&c0), 10),
            Err(MempoolError::Full("transaction count"))
        );
        // Candidates keep each sender's nonce order.
        let c = pool.candidates(10);
        assert_eq!(c.len(), 3);
        let a_nonces: Vec<u64> = c
            .iter()
            .filter_map(|(t, _)| match t {
                BlockTx::Signed(s) if s.sender() == a0.sender() => Some(s.tx.nonce),
                _ => None,
            })
            .collect();
        assert_eq!(a_nonces, vec![0, 1]);
        pool.remove(&[hash(&a0), hash(&a1)].into_iter().collect());
        assert_eq!(pool.len(), 1);
        assert!(pool.pending_nonces(&a0.sender()).is_empty());
        pool.insert_signed(c0.clone(), hash(&c0), 10).unwrap();
        assert_eq!(pool.len(), 2);
    }
}
