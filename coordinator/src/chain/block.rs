//! A committed block as the block store keeps it, and the genesis that starts a chain.

use custody_proto::chain::codec::{Reader, Writer};
use custody_proto::chain::{
    BlockHeader, CommitCertificate, DecodeError, InclusionProof, ValidatorSet, MAX_CHAIN_ID_BYTES,
};
use sha2::{Digest, Sha256};

use super::{Address, BlockTx, TxRejection};

/// Most transactions one block may hold.
pub const MAX_BLOCK_TRANSACTIONS: usize = 10_000;

const STORED_BLOCK_TAG: &str = "custody.chain.v1/stored-block";
const GENESIS_TAG: &str = "custody.chain.v1/genesis";

/// A committed block: header, commit certificate and transaction encodings in block order
/// (the leaves of `header.tx_root`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Proof that the validator set committed the header.
    pub certificate: CommitCertificate,
    /// The canonical encoding of each transaction.
    pub transactions: Vec<Vec<u8>>,
}

impl Block {
    /// The transaction at `index`, decoded.
    pub fn transaction(&self, index: usize) -> Option<Result<BlockTx, TxRejection>> {
        self.transactions
            .get(index)
            .map(|bytes| BlockTx::decode(bytes))
    }

    /// Proof that transaction `index` is a leaf of `header.tx_root`.
    pub fn inclusion_proof(&self, index: usize) -> Option<InclusionProof> {
        InclusionProof::build(&self.transactions, index)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(STORED_BLOCK_TAG);
        w.var(&self.header.encode());
        w.var(&self.certificate.encode());
        w.u32(u32::try_from(self.transactions.len()).unwrap_or(u32::MAX));
        for tx in &self.transactions {
            w.var(tx);
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, STORED_BLOCK_TAG)?;
        let header = BlockHeader::decode(r.var("header", 1024)?)?;
        let certificate = CommitCertificate::decode(r.var("certificate", usize::MAX)?)?;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if count > MAX_BLOCK_TRANSACTIONS {
            return Err(DecodeError::TooLong {
                field: "transactions",
                len: count,
                max: MAX_BLOCK_TRANSACTIONS,
            });
        }
        let mut transactions = Vec::with_capacity(count);
        for _ in 0..count {
            transactions.push(r.var("transaction", usize::MAX)?.to_vec());
        }
        r.finish()?;
        Ok(Self {
            header,
            certificate,
            transactions,
        })
    }
}

/// What a chain starts from: its name, the admin account allowed to request key
/// generations, and the validator set that certifies its blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// Chain id, 1..=64 bytes of UTF-8.
    pub chain_id: String,
    /// The only account that may send `RequestKeygen`.
    pub admin: Address,
    /// Validators; signers pin its hash.
    pub validators: ValidatorSet,
}

impl Genesis {
    /// Canonical encoding: tag, `chain_id` (var), `admin` (20), validator set encoding (var).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(GENESIS_TAG);
        w.var(self.chain_id.as_bytes());
        w.fixed(&self.admin.0);
        w.var(&self.validators.encode());
        w.finish()
    }

    /// Strict decoding of [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, GENESIS_TAG)?;
        let chain_id = r.string("chain_id", MAX_CHAIN_ID_BYTES)?;
        let admin = Address(r.array()?);
        let validators = ValidatorSet::decode(r.var("validators", usize::MAX)?)?;
        r.finish()?;
        Ok(Self {
            chain_id,
            admin,
            validators,
        })
    }

    /// SHA-256 of the encoding; the `previous_hash` of block 1, so every block is bound
    /// to the genesis (admin and validator set).
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}
