//! The node loop of one coordinator replica: the mempool, the solo block producer and the
//! broadcast of committed blocks.
//!
//! ## Ownership of the chain
//!
//! The [`Chain`] lives behind one `std::sync::Mutex` inside [`Node`]. Queries lock it for
//! one sled read and release it; the block producer task takes it inside
//! `spawn_blocking` for one `produce_block` (execution, certificate, one sled batch and a
//! flush), so async tasks never hold it across an `.await` and never block a runtime
//! thread on the flush. The mempool has its own mutex; the lock order is always chain
//! first, then mempool, so the two cannot deadlock.
//!
//! ## Hooks for the engine and the chain adapters
//!
//! - [`Node::submit_system`] puts a [`SystemTx`] in the mempool (checked against the
//!   committed state first), and [`Node::submit_system_and_wait`] also waits for the block.
//!   Only in-process callers can reach it: the public API decodes signed transactions only.
//! - [`Node::subscribe`] gives every committed block ([`CommittedBlock`]) as it is
//!   committed; [`Node::block`] reads older ones, so a watcher replays then follows.
//! - [`Node::with_chain`] runs a read-only closure on the chain (queries, order proofs).

pub mod mempool;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, oneshot};

use crate::chain::block::MAX_BLOCK_TRANSACTIONS;
use crate::chain::tx::MAX_TRANSACTION_BYTES;
use crate::chain::{
    Block, BlockTx, Chain, ChainError, ChainReader, Consensus, SignedTransaction, SystemTx,
    TxRejection,
};
pub use mempool::{Mempool, MempoolError, MempoolLimits};

/// SHA-256 of a transaction's canonical encoding: the transaction hash of the API.
pub fn tx_hash(encoding: &[u8]) -> [u8; 32] {
    Sha256::digest(encoding).into()
}

/// How the node loop runs.
#[derive(Debug, Clone, Copy)]
pub struct NodeConfig {
    /// How often the producer makes a block when something waits.
    pub block_interval: Duration,
    /// Mempool caps.
    pub mempool: MempoolLimits,
    /// Committed blocks a slow subscriber may lag behind before it is dropped.
    pub event_buffer: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            block_interval: Duration::from_millis(500),
            mempool: MempoolLimits::default(),
            event_buffer: 1024,
        }
    }
}

/// Why a transaction was not accepted or did not make it into a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The chain refuses it (on entry, or the block that would have held it).
    #[error("{0}")]
    Rejected(#[from] TxRejection),
    /// The mempool refuses it.
    #[error("{0}")]
    Mempool(#[from] MempoolError),
    /// The encoding is longer than a transaction may be.
    #[error("the transaction is {0} bytes, at most {MAX_TRANSACTION_BYTES} are accepted")]
    TooLong(usize),
    /// The node stopped, or producing the block failed; the transaction's fate is unknown
    /// to this call.
    #[error("the node could not produce a block: {0}")]
    Node(String),
}

/// Where a transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Included {
    /// Height of its block.
    pub height: u64,
    /// Its index in the block.
    pub index: u32,
}

/// A committed block as the node broadcasts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBlock {
    /// The block (header, certificate, transaction encodings).
    pub block: Block,
    /// Its hash.
    pub hash: [u8; 32],
}

/// A pending submission: the transaction, its hash, and a receiver for its fate.
#[derive(Debug)]
pub struct Submitted {
    /// The transaction hash.
    pub hash: [u8; 32],
    receiver: oneshot::Receiver<Result<Included, TxRejection>>,
}

impl Submitted {
    /// Waits for the block that includes or refuses the transaction.
    pub async fn wait(self) -> Result<Included, SubmitError> {
        match self.receiver.await {
            Ok(Ok(included)) => Ok(included),
            Ok(Err(reason)) => Err(SubmitError::Rejected(reason)),
            Err(_) => Err(SubmitError::Node(
                "the node stopped before the transaction was decided".into(),
            )),
        }
    }
}

type Waiters = HashMap<[u8; 32], Vec<oneshot::Sender<Result<Included, TxRejection>>>>;

struct Pool {
    mempool: Mempool,
    waiters: Waiters,
}

struct Inner<C: Consensus> {
    chain: Mutex<Chain<C>>,
    pool: Mutex<Pool>,
    events: broadcast::Sender<Arc<CommittedBlock>>,
    config: NodeConfig,
}

/// A handle on the running node loop; cheap to clone. The producer task stops once every
/// handle is dropped.
pub struct Node<C: Consensus> {
    inner: Arc<Inner<C>>,
}

impl<C: Consensus> Clone for Node<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

fn poisoned<T>(_: T) -> SubmitError {
    SubmitError::Node("a node task panicked while holding a lock".into())
}

impl<C: Consensus + Send + 'static> Node<C> {
    /// Starts the node loop on `chain` (this node proposes every block: solo consensus) and
    /// spawns the block producer on the current tokio runtime.
    pub fn start(chain: Chain<C>, config: NodeConfig) -> (Self, tokio::task::JoinHandle<()>) {
        let (events, _) = broadcast::channel(config.event_buffer.max(1));
        let inner = Arc::new(Inner {
            chain: Mutex::new(chain),
            pool: Mutex::new(Pool {
                mempool: Mempool::new(config.mempool),
                waiters: HashMap::new(),
            }),
            events,
            config,
        });
        let task = tokio::spawn(produce_loop(Arc::downgrade(&inner), config.block_interval));
        (Self { inner }, task)
    }

    fn chain(&self) -> Result<MutexGuard<'_, Chain<C>>, SubmitError> {
        self.inner.chain.lock().map_err(poisoned)
    }

    /// Runs `f` on the chain (queries). Keep it short: block production waits for it.
    pub fn with_chain<T>(&self, f: impl FnOnce(&Chain<C>) -> T) -> Result<T, SubmitError> {
        Ok(f(&*self.chain()?))
    }

    /// A read-only handle on the committed state for tasks that must not hold the chain's
    /// lock across an `.await` (the engine: adapter and signer calls).
    pub fn reader(&self) -> Result<ChainReader, SubmitError> {
        Ok(self.chain()?.reader())
    }

    /// Decodes and submits a signed transaction from outside (the API). It must decode as a
    /// signed transaction (system transactions are refused as malformed input here), verify,
    /// and, if it is its sender's next transaction, pass [`Chain::check`] against the
    /// committed state. A transaction that follows others of the same sender still waiting
    /// must carry the next nonce after them; its signature and chain are checked now and
    /// the state rules when its block executes it.
    pub fn submit(&self, encoding: &[u8]) -> Result<Submitted, SubmitError> {
        if encoding.len() > MAX_TRANSACTION_BYTES + 128 {
            return Err(SubmitError::TooLong(encoding.len()));
        }
        let tx = SignedTransaction::decode(encoding)?;
        let hash = tx_hash(encoding);
        let chain = self.chain()?;
        let mut pool = self.inner.pool.lock().map_err(poisoned)?;
        if pool.mempool.contains(&hash) {
            return Err(MempoolError::Duplicate.into());
        }
        let sender = tx.sender();
        let pending = pool.mempool.pending_nonces(&sender);
        match pending.last() {
            None => chain.check_at(&BlockTx::Signed(tx.clone()), now_ms())?,
            Some(last) => {
                tx.verify_signature()?;
                let expected_chain = &chain.genesis().chain_id;
                if &tx.tx.chain_id != expected_chain {
                    return Err(TxRejection::WrongChain {
                        expected: expected_chain.clone(),
                        got: tx.tx.chain_id.clone(),
                    }
                    .into());
                }
                let committed = chain
                    .account(&sender)
                    .map_err(|e| TxRejection::Store(e.to_string()))?
                    .nonce;
                let next = last.saturating_add(1);
                if tx.tx.nonce < committed || tx.tx.nonce > next {
                    return Err(TxRejection::BadNonce {
                        expected: next,
                        got: tx.tx.nonce,
                    }
                    .into());
                }
            }
        }
        pool.mempool.insert_signed(tx, hash, encoding.len())?;
        Ok(self.register(&mut pool, hash))
    }

    /// Submits a system transaction made in-process (engine, adapters). It is checked
    /// against the committed state first, as if it were the next block's first
    /// transaction.
    pub fn submit_system(&self, tx: SystemTx) -> Result<Submitted, SubmitError> {
        let block_tx = BlockTx::System(tx);
        let encoding = block_tx.encode();
        let hash = tx_hash(&encoding);
        let chain = self.chain()?;
        let mut pool = self.inner.pool.lock().map_err(poisoned)?;
        if pool.mempool.contains(&hash) {
            return Err(MempoolError::Duplicate.into());
        }
        // At the time the next block will carry (see `produce`).
        chain.check_at(&block_tx, now_ms())?;
        let BlockTx::System(tx) = block_tx else {
            return Err(SubmitError::Node("not a system transaction".into()));
        };
        pool.mempool.insert_system(tx, hash, encoding.len())?;
        Ok(self.register(&mut pool, hash))
    }

    /// [`submit_system`](Self::submit_system), then waits for its block.
    pub async fn submit_system_and_wait(&self, tx: SystemTx) -> Result<Included, SubmitError> {
        self.submit_system(tx)?.wait().await
    }

    fn register(&self, pool: &mut Pool, hash: [u8; 32]) -> Submitted {
        let (sender, receiver) = oneshot::channel();
        pool.waiters.entry(hash).or_default().push(sender);
        tracing::debug!(hash = %hex::encode(hash), "transaction accepted into the mempool");
        Submitted { hash, receiver }
    }

    /// Committed blocks from now on. A receiver that lags more than the event buffer gets
    /// `RecvError::Lagged` and should re-read the missed heights with [`Node::block`].
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.inner.events.subscribe()
    }

    /// A committed block.
    pub fn block(&self, height: u64) -> Result<Option<Block>, SubmitError> {
        self.chain()?
            .block(height)
            .map_err(|e| SubmitError::Node(e.to_string()))
    }

    /// Height of the last committed block.
    pub fn height(&self) -> Result<u64, SubmitError> {
        Ok(self.chain()?.height())
    }

    /// Transactions waiting.
    pub fn mempool_len(&self) -> Result<usize, SubmitError> {
        Ok(self.inner.pool.lock().map_err(poisoned)?.mempool.len())
    }

    /// The block interval.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// Makes one block now from what waits (nothing if the mempool is empty). The producer
    /// task calls this every interval.
    pub async fn produce_once(&self) -> Result<Option<u64>, SubmitError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || produce(&inner))
            .await
            .map_err(|e| SubmitError::Node(e.to_string()))?
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One block: candidates from the mempool, `produce_block`, evict every candidate, tell
/// the waiters, broadcast the block.
fn produce<C: Consensus>(inner: &Inner<C>) -> Result<Option<u64>, SubmitError> {
    let mut chain = inner.chain.lock().map_err(poisoned)?;
    let candidates = {
        let pool = inner.pool.lock().map_err(poisoned)?;
        pool.mempool.candidates(MAX_BLOCK_TRANSACTIONS)
    };
    if candidates.is_empty() {
        return Ok(None);
    }
    let txs: Vec<BlockTx> = candidates.iter().map(|(t, _)| t.clone()).collect();
    let time = now_ms().max(
        chain
            .block(chain.height())
            .ok()
            .flatten()
            .map(|b| b.header.time_unix_ms)
            .unwrap_or(0),
    );
    let outcome = match chain.produce_block(&txs, time) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "block production failed; transactions stay in the mempool");
            return Err(SubmitError::Node(e.to_string()));
        }
    };
    let block = chain
        .block(outcome.height)
        .map_err(|e: ChainError| SubmitError::Node(e.to_string()))?
        .ok_or_else(|| SubmitError::Node("the block just committed cannot be read".into()))?;
    // The chain stays locked until the mempool forgets the candidates, so no submission
    // sees the new state beside a mempool that still holds what the block decided.
    let mut pool = inner.pool.lock().map_err(poisoned)?;
    let hashes: HashSet<[u8; 32]> = candidates.iter().map(|(_, h)| *h).collect();
    pool.mempool.remove(&hashes);
    for ((_, hash), result) in candidates.iter().zip(outcome.results) {
        let result = result.map(|index| Included {
            height: outcome.height,
            index,
        });
        if let Err(reason) = &result {
            tracing::info!(hash = %hex::encode(hash), %reason, "evicted: the block refused it");
        }
        for waiter in pool.waiters.remove(hash).unwrap_or_default() {
            let _ = waiter.send(result.clone());
        }
    }
    drop(pool);
    drop(chain);
    // No subscriber is not an error.
    let _ = inner.events.send(Arc::new(CommittedBlock {
        block,
        hash: outcome.hash,
    }));
    Ok(Some(outcome.height))
}

async fn produce_loop<C: Consensus + Send + 'static>(inner: Weak<Inner<C>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(strong) = inner.upgrade() else {
            tracing::info!("every node handle is gone; the block producer stops");
            return;
        };
        let node = Node { inner: strong };
        if let Err(e) = node.produce_once().await {
            tracing::error!(error = %e, "block producer");
        }
    }
}
