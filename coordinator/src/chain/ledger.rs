//! [`Chain`]: the ledger of one coordinator replica. It executes transactions into blocks,
//! has consensus certify them, writes state and block atomically to sled, and answers
//! queries.

use std::path::Path;

use custody_proto::chain::{
    merkle_root, BlockHeader, CommitCertificate, InclusionProof, ValidatorSet, HEADER_VERSION,
};

use super::block::{Block, Genesis, MAX_BLOCK_TRANSACTIONS};
use super::consensus::{Consensus, ConsensusError};
use super::execute::{apply, TxContext};
use super::invariant::{self, InvariantViolation};
use super::state::{
    admin_key, deposit_address_prefix, Account, AssetTotals, BlameReport, DepositAddress,
    DepositRecord, FleetKeyRecord, KeygenRequest, LockOutRecord, Overlay, DEPOSIT_ADDRESS_PREFIX,
    FLEET_KEY_PREFIX, LOCKOUT_PREFIX,
};
use super::{Address, Amount, Asset, BlockTx, TxRejection};

const GENESIS_KEY: &[u8] = b"m/genesis";
const HEIGHT_KEY: &[u8] = b"m/height";
const TREE_NAME: &str = "chain";

fn block_key(height: u64) -> Vec<u8> {
    [b"b/".as_slice(), &height.to_be_bytes()].concat()
}

/// Why the chain could not open, produce a block or answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// sled failed.
    #[error("block store: {0}")]
    Store(#[from] sled::Error),
    /// A stored record does not decode, or state could not be read.
    #[error("corrupt chain store: {0}")]
    Corrupt(String),
    /// The directory holds another chain.
    #[error("the store holds a chain with another genesis")]
    GenesisMismatch,
    /// Consensus' validator set is not the genesis one.
    #[error("the consensus validator set is not the genesis validator set")]
    ValidatorSetMismatch,
    /// Recomputed state differs from the last block's state root.
    #[error("the stored state does not match the state root of block {height}")]
    StateRootMismatch {
        /// Height of the last block.
        height: u64,
    },
    /// Block time must not go backwards.
    #[error("block time {got} ms is before the previous block's {previous} ms")]
    TimeWentBackwards {
        /// Previous block's time.
        previous: u64,
        /// Requested time.
        got: u64,
    },
    /// More candidate transactions than a block may hold.
    #[error("{0} candidate transactions, a block holds at most {MAX_BLOCK_TRANSACTIONS}")]
    TooManyTransactions(usize),
    /// Consensus failed.
    #[error("consensus: {0}")]
    Consensus(#[from] ConsensusError),
    /// A block from another replica does not fit this chain.
    #[error("invalid block: {0}")]
    InvalidBlock(&'static str),
    /// A block's commit certificate does not verify under the genesis validator set.
    #[error("invalid commit certificate: {0}")]
    InvalidCertificate(custody_proto::chain::CertificateError),
    /// A block holds a transaction this replica refuses.
    #[error("transaction {index} of the block is invalid: {reason}")]
    InvalidTransaction {
        /// Its index in the block.
        index: u32,
        /// Why it is refused.
        reason: TxRejection,
    },
    /// The chain height is at its maximum.
    #[error("the chain height cannot grow further")]
    HeightExhausted,
}

/// What producing a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Height of the new block.
    pub height: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// For each candidate, in order: its index in the block, or why it was refused.
    pub results: Vec<Result<u32, TxRejection>>,
}

/// Everything a signer needs to check that a lock-out's order was committed: the
/// certified header, the order commitment leaf and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderProof {
    /// Header of the block holding the `CommitOrder` transaction.
    pub header: BlockHeader,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// The `OrderCommitment` encoding (the Merkle leaf).
    pub leaf: Vec<u8>,
    /// Proof of `leaf` against `header.tx_root`.
    pub proof: InclusionProof,
}

#[derive(Debug, Clone, Copy)]
struct Tip {
    height: u64,
    hash: [u8; 32],
    time_unix_ms: u64,
    state_root: [u8; 32],
}

/// The chain of one replica, stored in sled. It dereferences to its [`ChainReader`], so
/// every query is also a method of the chain.
pub struct Chain<C: Consensus> {
    db: sled::Db,
    reader: ChainReader,
    consensus: C,
    tip: Tip,
}

/// A read-only handle on a chain's committed state and blocks, cheap to clone, usable while
/// the [`Chain`] that owns the store produces blocks (a block's state, block and height are
/// one atomic sled batch, so a reader sees a block entirely or not at all). Each query reads
/// the latest committed state; two queries may see two different heights.
#[derive(Clone)]
pub struct ChainReader {
    tree: sled::Tree,
    genesis: Genesis,
}

impl<C: Consensus> std::ops::Deref for Chain<C> {
    type Target = ChainReader;

    fn deref(&self) -> &ChainReader {
        &self.reader
    }
}

impl<C: Consensus> Chain<C> {
    /// Opens the chain in `dir`, creating it from `genesis` if the directory is new. On
    /// reopening, the stored genesis must equal `genesis` and the stored state must hash to
    /// the last block's state root.
    pub fn open(dir: &Path, genesis: Genesis, consensus: C) -> Result<Self, ChainError> {
        if consensus.validator_set() != &genesis.validators {
            return Err(ChainError::ValidatorSetMismatch);
        }
        let db = sled::open(dir)?;
        let tree = db.open_tree(TREE_NAME)?;
        let tip = match tree.get(GENESIS_KEY)? {
            Some(stored) => {
                if stored.as_ref() != genesis.encode().as_slice() {
                    return Err(ChainError::GenesisMismatch);
                }
                Self::load_tip(&tree, &genesis)?
            }
            None => Self::init(&db, &tree, &genesis)?,
        };
        tracing::info!(chain_id = %genesis.chain_id, height = tip.height, "chain opened");
        Ok(Self {
            db,
            reader: ChainReader { tree, genesis },
            consensus,
            tip,
        })
    }

    fn init(db: &sled::Db, tree: &sled::Tree, genesis: &Genesis) -> Result<Tip, ChainError> {
        let mut view = Overlay::new(tree);
        view.put(admin_key(), genesis.admin.0.to_vec());
        for asset in Asset::ALL {
            view.put_totals(asset, &AssetTotals::default());
        }
        view.keep_transaction();
        let state_root = view
            .state_root()
            .map_err(|e| ChainError::Corrupt(e.to_string()))?;
        let mut batch = sled::Batch::default();
        for (k, v) in view.into_writes() {
            batch.insert(k, v);
        }
        batch.insert(GENESIS_KEY, genesis.encode());
        batch.insert(HEIGHT_KEY, 0u64.to_be_bytes().to_vec());
        tree.apply_batch(batch)?;
        db.flush()?;
        Ok(Tip {
            height: 0,
            hash: genesis.hash(),
            time_unix_ms: 0,
            state_root,
        })
    }

    fn load_tip(tree: &sled::Tree, genesis: &Genesis) -> Result<Tip, ChainError> {
        let height = tree
            .get(HEIGHT_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| ChainError::Corrupt("missing height".into()))?;
        let state_root = Overlay::new(tree)
            .state_root()
            .map_err(|e| ChainError::Corrupt(e.to_string()))?;
        if height == 0 {
            return Ok(Tip {
                height,
                hash: genesis.hash(),
                time_unix_ms: 0,
                state_root,
            });
        }
        let block = ChainReader::read_block(tree, height)?
            .ok_or_else(|| ChainError::Corrupt(format!("missing block {height}")))?;
        if block.header.state_root != state_root {
            return Err(ChainError::StateRootMismatch { height });
        }
        Ok(Tip {
            height,
            hash: block.header.hash(),
            time_unix_ms: block.header.time_unix_ms,
            state_root,
        })
    }

    /// Checks `tx` against the committed state as if it were the first transaction of the
    /// next block, at the last block's time. Changes nothing.
    pub fn check(&self, tx: &BlockTx) -> Result<(), TxRejection> {
        self.check_at(tx, self.tip.time_unix_ms)
    }

    /// [`check`](Self::check) for a next block made at `time_unix_ms` (raised to the last
    /// block's time, as block times never go back): a proposer checks with the time its next
    /// block will carry, so that a transaction valid only from some time on (a cancellation
    /// after its order's `not_after`) is not refused for the age of the last block.
    pub fn check_at(&self, tx: &BlockTx, time_unix_ms: u64) -> Result<(), TxRejection> {
        let mut view = Overlay::new(&self.reader.tree);
        let ctx = TxContext {
            chain_id: &self.reader.genesis.chain_id,
            height: self.tip.height.saturating_add(1),
            index: 0,
            time_unix_ms: time_unix_ms.max(self.tip.time_unix_ms),
        };
        apply(&mut view, &ctx, tx)
    }

    /// Executes `candidates` in order into the next block at `time_unix_ms`: refused ones
    /// are left out with their reason, the others change the state. Consensus certifies the
    /// header; then state, block and height are written in one sled batch and flushed.
    pub fn produce_block(
        &mut self,
        candidates: &[BlockTx],
        time_unix_ms: u64,
    ) -> Result<BlockOutcome, ChainError> {
        if candidates.len() > MAX_BLOCK_TRANSACTIONS {
            return Err(ChainError::TooManyTransactions(candidates.len()));
        }
        if time_unix_ms < self.tip.time_unix_ms {
            return Err(ChainError::TimeWentBackwards {
                previous: self.tip.time_unix_ms,
                got: time_unix_ms,
            });
        }
        let height = self
            .tip
            .height
            .checked_add(1)
            .ok_or(ChainError::HeightExhausted)?;
        let proposer = self.consensus.propose(height)?;
        let mut view = Overlay::new(&self.reader.tree);
        let mut transactions: Vec<Vec<u8>> = Vec::new();
        let mut results = Vec::with_capacity(candidates.len());
        for tx in candidates {
            let index = u32::try_from(transactions.len())
                .map_err(|_| ChainError::TooManyTransactions(candidates.len()))?;
            let ctx = TxContext {
                chain_id: &self.reader.genesis.chain_id,
                height,
                index,
                time_unix_ms,
            };
            match apply(&mut view, &ctx, tx) {
                Ok(()) => {
                    view.keep_transaction();
                    transactions.push(tx.encode());
                    results.push(Ok(index));
                }
                Err(TxRejection::Store(e)) => return Err(ChainError::Corrupt(e)),
                Err(reason) => {
                    view.drop_transaction();
                    tracing::info!(height, %reason, "transaction refused");
                    results.push(Err(reason));
                }
            }
        }
        let state_root = view
            .state_root()
            .map_err(|e| ChainError::Corrupt(e.to_string()))?;
        let header = BlockHeader {
            version: HEADER_VERSION,
            chain_id: self.reader.genesis.chain_id.clone(),
            height,
            previous_hash: self.tip.hash,
            time_unix_ms,
            tx_root: merkle_root(&transactions),
            state_root,
            proposer,
        };
        let certificate = self.consensus.decide(&header)?;
        certificate
            .verify(
                &self.reader.genesis.validators,
                &self.reader.genesis.chain_id,
                &header,
            )
            .map_err(ConsensusError::from)?;
        let hash = header.hash();
        let block = Block {
            header,
            certificate,
            transactions,
        };
        let writes = view.into_writes();
        self.commit(writes, &block)?;
        Ok(BlockOutcome {
            height,
            hash,
            results,
        })
    }

    /// Applies a block that another replica proposed and the validator set certified:
    /// checks chain id, version, height, link to the tip, time, the certificate against the
    /// genesis validator set, that the proposer is a validator, and `tx_root`; re-executes
    /// every transaction (each must be valid) and requires the same state root. On any
    /// failure nothing is written.
    pub fn import_block(&mut self, block: &Block) -> Result<(), ChainError> {
        let h = &block.header;
        let height = self
            .tip
            .height
            .checked_add(1)
            .ok_or(ChainError::HeightExhausted)?;
        if h.version != HEADER_VERSION || h.chain_id != self.reader.genesis.chain_id {
            return Err(ChainError::InvalidBlock("another chain or header version"));
        }
        if h.height != height {
            return Err(ChainError::InvalidBlock("not the next height"));
        }
        if h.previous_hash != self.tip.hash {
            return Err(ChainError::InvalidBlock(
                "does not extend this chain's last block",
            ));
        }
        if h.time_unix_ms < self.tip.time_unix_ms {
            return Err(ChainError::TimeWentBackwards {
                previous: self.tip.time_unix_ms,
                got: h.time_unix_ms,
            });
        }
        block
            .certificate
            .verify(
                &self.reader.genesis.validators,
                &self.reader.genesis.chain_id,
                h,
            )
            .map_err(ChainError::InvalidCertificate)?;
        if !self
            .genesis
            .validators
            .validators()
            .iter()
            .any(|v| v.key.as_bytes() == &h.proposer)
        {
            return Err(ChainError::InvalidBlock("the proposer is not a validator"));
        }
        if block.transactions.len() > MAX_BLOCK_TRANSACTIONS {
            return Err(ChainError::TooManyTransactions(block.transactions.len()));
        }
        if merkle_root(&block.transactions) != h.tx_root {
            return Err(ChainError::InvalidBlock(
                "transactions do not match tx_root",
            ));
        }
        let mut view = Overlay::new(&self.reader.tree);
        for (i, bytes) in block.transactions.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| ChainError::TooManyTransactions(i))?;
            let invalid = |reason| ChainError::InvalidTransaction { index, reason };
            let tx = BlockTx::decode(bytes).map_err(invalid)?;
            let ctx = TxContext {
                chain_id: &self.reader.genesis.chain_id,
                height,
                index,
                time_unix_ms: h.time_unix_ms,
            };
            match apply(&mut view, &ctx, &tx) {
                Ok(()) => view.keep_transaction(),
                Err(TxRejection::Store(e)) => return Err(ChainError::Corrupt(e)),
                Err(reason) => return Err(invalid(reason)),
            }
        }
        if view
            .state_root()
            .map_err(|e| ChainError::Corrupt(e.to_string()))?
            != h.state_root
        {
            return Err(ChainError::InvalidBlock(
                "re-execution gives another state root",
            ));
        }
        let writes = view.into_writes();
        self.commit(writes, block)
    }

    /// Writes a block's state changes, the block and the new height in one sled batch,
    /// flushes, and moves the tip.
    fn commit(
        &mut self,
        writes: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
        block: &Block,
    ) -> Result<(), ChainError> {
        let height = block.header.height;
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            batch.insert(k, v);
        }
        batch.insert(block_key(height), block.encode());
        batch.insert(HEIGHT_KEY, height.to_be_bytes().to_vec());
        self.reader.tree.apply_batch(batch)?;
        self.db.flush()?;
        self.tip = Tip {
            height,
            hash: block.header.hash(),
            time_unix_ms: block.header.time_unix_ms,
            state_root: block.header.state_root,
        };
        tracing::info!(height, txs = block.transactions.len(), "block committed");
        Ok(())
    }

    /// Height of the last block (0 before the first).
    pub fn height(&self) -> u64 {
        self.tip.height
    }

    /// State root after the last block.
    pub fn state_root(&self) -> [u8; 32] {
        self.tip.state_root
    }

    /// A read-only handle for queries from other tasks (see [`ChainReader`]).
    pub fn reader(&self) -> ChainReader {
        self.reader.clone()
    }
}

impl ChainReader {
    fn read_block(tree: &sled::Tree, height: u64) -> Result<Option<Block>, ChainError> {
        match tree.get(block_key(height))? {
            None => Ok(None),
            Some(v) => Block::decode(&v)
                .map(Some)
                .map_err(|e| ChainError::Corrupt(format!("block {height}: {e}"))),
        }
    }

    /// Height of the last committed block, read from the store (0 before the first).
    pub fn committed_height(&self) -> Result<u64, ChainError> {
        self.tree
            .get(HEIGHT_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| ChainError::Corrupt("missing height".into()))
    }

    fn view(&self) -> Overlay<'_> {
        Overlay::new(&self.tree)
    }

    fn corrupt(e: TxRejection) -> ChainError {
        ChainError::Corrupt(e.to_string())
    }

    /// The genesis this chain started from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The validator set that certifies blocks.
    pub fn validator_set(&self) -> &ValidatorSet {
        &self.genesis.validators
    }

    /// An account (the default, nonce 0 and no balance, if it never received anything).
    pub fn account(&self, address: &Address) -> Result<Account, ChainError> {
        self.view().account(address).map_err(Self::corrupt)
    }

    /// A balance.
    pub fn balance(&self, address: &Address, asset: Asset) -> Result<Amount, ChainError> {
        Ok(self.account(address)?.balance(asset))
    }

    /// Chain-wide totals of an asset.
    pub fn totals(&self, asset: Asset) -> Result<AssetTotals, ChainError> {
        self.view().totals(asset).map_err(Self::corrupt)
    }

    /// Lock-in status: the credited deposit with this id, if credited.
    pub fn deposit(&self, deposit_id: &[u8; 32]) -> Result<Option<DepositRecord>, ChainError> {
        self.view().deposit(deposit_id).map_err(Self::corrupt)
    }

    /// Lock-out status.
    pub fn lockout(&self, lockout_id: &[u8; 32]) -> Result<Option<LockOutRecord>, ChainError> {
        self.view().lockout(lockout_id).map_err(Self::corrupt)
    }

    /// A key generation request by id (ids count from 0).
    pub fn keygen_request(&self, id: u64) -> Result<Option<KeygenRequest>, ChainError> {
        self.view().keygen(id).map_err(Self::corrupt)
    }

    /// The key recorded for key generation request `request_id`, if its DKG finished.
    pub fn fleet_key(&self, request_id: u64) -> Result<Option<FleetKeyRecord>, ChainError> {
        self.view().fleet_key(request_id).map_err(Self::corrupt)
    }

    /// The most recently requested key that is recorded, with its request id: the key new
    /// deposit addresses and orders use.
    pub fn latest_fleet_key(&self) -> Result<Option<(u64, FleetKeyRecord)>, ChainError> {
        match self.tree.scan_prefix(FLEET_KEY_PREFIX).next_back() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                let id = k
                    .get(FLEET_KEY_PREFIX.len()..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| ChainError::Corrupt("fleet key key".into()))?;
                let r =
                    FleetKeyRecord::decode(&v).map_err(|e| ChainError::Corrupt(e.to_string()))?;
                Ok(Some((id, r)))
            }
        }
    }

    /// The blame report of an aborted fleet session (OPS-02), if reported.
    pub fn blame_report(&self, session_id: &[u8; 32]) -> Result<Option<BlameReport>, ChainError> {
        self.view().blame(session_id).map_err(Self::corrupt)
    }

    /// How many blame reports name `signer`.
    pub fn blame_count(&self, signer: u16) -> Result<u64, ChainError> {
        self.view().blame_count(signer).map_err(Self::corrupt)
    }

    /// Key generation requests whose key is not recorded yet, oldest first: the DKGs the
    /// coordinator still has to run.
    pub fn pending_keygen_requests(&self) -> Result<Vec<u64>, ChainError> {
        let mut out = Vec::new();
        let mut id = 0u64;
        while self.keygen_request(id)?.is_some() {
            if self.fleet_key(id)?.is_none() {
                out.push(id);
            }
            let Some(next) = id.checked_add(1) else { break };
            id = next;
        }
        Ok(out)
    }

    /// The deposit addresses issued to `address`, by asset then issue order.
    pub fn deposit_addresses(&self, address: &Address) -> Result<Vec<DepositAddress>, ChainError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(deposit_address_prefix(address)) {
            let (_, v) = item?;
            out.push(DepositAddress::decode(&v).map_err(|e| ChainError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Every deposit address issued for `asset`, in key order (account, then issue order):
    /// what the deposit watcher watches. O(all deposit addresses).
    pub fn deposit_addresses_of(&self, asset: Asset) -> Result<Vec<DepositAddress>, ChainError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(DEPOSIT_ADDRESS_PREFIX) {
            let (_, v) = item?;
            let a = DepositAddress::decode(&v).map_err(|e| ChainError::Corrupt(e.to_string()))?;
            if a.asset == asset {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Every lock-out with its id, in id order: what the lock-out saga walks. O(all
    /// lock-outs).
    pub fn lockouts(&self) -> Result<Vec<([u8; 32], LockOutRecord)>, ChainError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(LOCKOUT_PREFIX) {
            let (k, v) = item?;
            let id = k
                .get(LOCKOUT_PREFIX.len()..)
                .and_then(|id| <[u8; 32]>::try_from(id).ok())
                .ok_or_else(|| ChainError::Corrupt("lock-out key".into()))?;
            let r = LockOutRecord::decode(&v).map_err(|e| ChainError::Corrupt(e.to_string()))?;
            out.push((id, r));
        }
        Ok(out)
    }

    /// The block at `height`, if committed.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ChainError> {
        Self::read_block(&self.tree, height)
    }

    /// Transaction `index` of block `height` and its inclusion proof against the header's
    /// `tx_root`.
    pub fn transaction_proof(
        &self,
        height: u64,
        index: u32,
    ) -> Result<Option<(Vec<u8>, InclusionProof)>, ChainError> {
        let Some(block) = self.block(height)? else {
            return Ok(None);
        };
        let i = usize::try_from(index).unwrap_or(usize::MAX);
        Ok(block
            .transactions
            .get(i)
            .cloned()
            .zip(block.inclusion_proof(i)))
    }

    /// The proof a signer checks before signing the order of `lockout_id`; `None` until the
    /// order is committed.
    pub fn order_proof(&self, lockout_id: &[u8; 32]) -> Result<Option<OrderProof>, ChainError> {
        match self.lockout(lockout_id)?.and_then(|l| l.order) {
            Some(c) => self.proof_at(c.height, c.index).map(Some),
            None => Ok(None),
        }
    }

    /// The proof a signer checks before signing the cancellation of `lockout_id`'s order;
    /// `None` until a cancellation is committed.
    pub fn cancellation_proof(
        &self,
        lockout_id: &[u8; 32],
    ) -> Result<Option<OrderProof>, ChainError> {
        match self.lockout(lockout_id)?.and_then(|l| l.cancellation) {
            Some(c) => self.proof_at(c.height, c.index).map(Some),
            None => Ok(None),
        }
    }

    /// Header, certificate, leaf and inclusion proof of transaction `index` of block `height`.
    fn proof_at(&self, height: u64, index: u32) -> Result<OrderProof, ChainError> {
        let block = self
            .block(height)?
            .ok_or_else(|| ChainError::Corrupt(format!("missing block {height}")))?;
        let i = usize::try_from(index).unwrap_or(usize::MAX);
        let (Some(leaf), Some(proof)) =
            (block.transactions.get(i).cloned(), block.inclusion_proof(i))
        else {
            return Err(ChainError::Corrupt(format!(
                "no transaction {index} in block {height}"
            )));
        };
        Ok(OrderProof {
            header: block.header,
            certificate: block.certificate,
            leaf,
            proof,
        })
    }

    /// Checks conservation of mapped value over the whole committed state (see
    /// [`InvariantViolation`]). O(state); run after every block in tests.
    pub fn invariant_check(&self) -> Result<(), InvariantViolation> {
        invariant::check(&self.tree)
    }
}
