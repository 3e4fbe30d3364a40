//! Chain adapters: one trait for every external chain the custody chain maps (DESIGN §6).
//!
//! An adapter derives deposit addresses from fleet child keys, finds deposits with their
//! depth, builds the complete unsigned external transaction of a lock-out together with what
//! each signature must cover, attaches the fleet's signatures, broadcasts, and reports how deep
//! a transaction is. It holds no secret and decides nothing: which deposits are credited and
//! which lock-outs are signed is the chain's decision (contract engine), made from what the
//! adapter reports.
//!
//! | module | job |
//! |---|---|
//! | [`bitcoin`] | Bitcoin: P2WPKH, BIP143, libbitcoinconsensus, against a bcoin node |
//! | [`confirmations`] | the depth z from the attacker catch-up probability |
//! | [`ethereum`] | Ethereum: EIP-1559 and legacy EIP-155 transfers over JSON-RPC |
//! | [`jsonrpc`] | a small JSON-RPC client over HTTP for the chain nodes |

pub mod bitcoin;
pub mod confirmations;
pub mod ethereum;
pub mod jsonrpc;

use std::future::Future;

use k256::ecdsa::{RecoveryId, Signature};

/// The external chains the custody chain maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExternalChain {
    /// Ethereum or an EVM chain; amounts in wei.
    Ethereum,
    /// Bitcoin; amounts in satoshi.
    Bitcoin,
}

/// A fleet child key the chain controls: the BIP32 non-hardened path below the fleet key and
/// the child public key at that path (derived by the coordinator with `mpc_core::hd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetAddress {
    /// Non-hardened BIP32 path below the fleet key.
    pub path: Vec<u32>,
    /// The child public key at `path`.
    pub public_key: k256::PublicKey,
    /// The external address of that key, as [`ChainAdapter::address`] renders it.
    pub address: String,
}

/// One payment to a fleet address found on the external chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDeposit {
    /// Identifies the payment uniquely and forever on its chain: Ethereum `txhash`, Bitcoin
    /// `txid:vout`. The chain credits each id at most once.
    pub deposit_id: String,
    /// The fleet address paid.
    pub address: String,
    /// Amount in the chain's smallest unit.
    pub amount: u128,
    /// Height of the block that holds it.
    pub height: u64,
    /// Hash of that block (hex), to notice re-organisations.
    pub block_hash: String,
    /// Blocks on top of it including its own (tip − height + 1) when it was observed.
    pub confirmations: u64,
}

/// How the digest that one signature covers is computed from its preimage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SighashRule {
    /// Keccak-256 (Ethereum transaction signing hash).
    Keccak256,
    /// SHA-256 applied twice (Bitcoin BIP143 sighash).
    DoubleSha256,
}

/// One signature a lock-out needs: made by the child key at `path` over the digest of
/// `preimage` under `rule`. The preimage goes into the signing order so that every signer
/// hashes it itself (SIG-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningInput {
    /// Path of the child key that signs.
    pub path: Vec<u32>,
    /// The public key expected at `path` (the finished signature must verify under it).
    pub public_key: k256::PublicKey,
    /// The exact bytes whose digest is signed.
    pub preimage: Vec<u8>,
    /// How the digest is computed.
    pub rule: SighashRule,
    /// The digest, as the adapter computed it.
    pub digest: [u8; 32],
}

/// An external resource a transaction uses up, so that no two orders ever spend it twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Spend {
    /// An Ethereum account nonce of a fleet address.
    Nonce {
        /// The sending address.
        address: String,
        /// The nonce the transaction carries.
        nonce: u64,
    },
    /// A Bitcoin output (`txid:vout`).
    Outpoint(String),
}

/// What the chain asks an adapter to build for a lock-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalPlan {
    /// External destination address.
    pub to: String,
    /// Mapped amount burned for this lock-out, in the smallest unit. The fee is paid out of it:
    /// the destination receives `amount − fee`.
    pub amount: u128,
    /// Fleet addresses that may fund it.
    pub sources: Vec<FleetAddress>,
    /// Where change goes (UTXO chains).
    pub change: Option<FleetAddress>,
    /// Resources already committed to other orders that are not final yet: never reused.
    pub reserved: Vec<Spend>,
}

/// A complete unsigned external transaction and what must be signed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedWithdrawal {
    /// The chain.
    pub chain: ExternalChain,
    /// The adapter's canonical encoding of the unsigned transaction, from which
    /// [`ChainAdapter::attach_signatures`] rebuilds it.
    pub unsigned_tx: Vec<u8>,
    /// One entry per signature, in the order `attach_signatures` expects them.
    pub inputs: Vec<SigningInput>,
    /// What the destination receives.
    pub sent: u128,
    /// The fee (an upper bound where the chain refunds unused gas).
    pub fee: u128,
    /// What it uses up.
    pub spends: Vec<Spend>,
}

/// A signature from the fleet for one [`SigningInput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetSignature {
    /// Low-s ECDSA signature.
    pub signature: Signature,
    /// Recovery id (Ethereum's y parity).
    pub recovery_id: RecoveryId,
}

/// A signed external transaction ready to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWithdrawal {
    /// The raw transaction as the chain's nodes take it.
    pub raw: Vec<u8>,
    /// Its id on that chain (hex, as the chain's tools show it).
    pub txid: String,
}

/// Where an external transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// The node does not know it (never seen, dropped, or re-organised out and evicted).
    Unknown,
    /// In the node's mempool, not in a block.
    Pending,
    /// In a block of the best chain with this many confirmations (≥ 1).
    Confirmed {
        /// tip − height + 1.
        confirmations: u64,
        /// Ethereum: the receipt's status was success. Bitcoin: always true.
        success: bool,
    },
}

/// Which of a lock-out's payment and its cancellation used up their common nonce or outputs
/// on the external chain, with the required depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpentBy {
    /// Neither is mined to the required depth yet.
    Undecided,
    /// The payment is mined to the required depth: the lock-out is paid out.
    Payment,
    /// The cancellation is mined to the required depth: the payment can never be mined.
    Cancellation,
}

/// Why an adapter call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// An address, key or amount the caller gave is not valid for this chain.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The fleet addresses cannot pay for the plan (amount, fee or dust rules).
    #[error("insufficient funds: {0}")]
    InsufficientFunds(String),
    /// The node could not be reached or answered with an error.
    #[error("node: {0}")]
    Node(#[from] jsonrpc::RpcError),
    /// The node answered something this adapter does not accept.
    #[error("unexpected answer from the node: {0}")]
    Unexpected(String),
    /// The node refused the transaction.
    #[error("transaction rejected: {0}")]
    Rejected(String),
}

/// One external chain. Methods that talk to the node are async; the rest are pure.
pub trait ChainAdapter: Send + Sync {
    /// Which chain.
    fn chain(&self) -> ExternalChain;

    /// The external address of a fleet child key.
    fn address(&self, public_key: &k256::PublicKey) -> Result<String, AdapterError>;

    /// Height of the node's best block.
    fn tip_height(&self) -> impl Future<Output = Result<u64, AdapterError>> + Send;

    /// Every payment to one of `watched` in blocks `from_height..=to_height` of the best
    /// chain, with its confirmations as of now.
    fn deposits(
        &self,
        watched: &[FleetAddress],
        from_height: u64,
        to_height: u64,
    ) -> impl Future<Output = Result<Vec<ObservedDeposit>, AdapterError>> + Send;

    /// Builds the complete unsigned transaction for `plan`: fee, nonce or inputs chosen here.
    fn build_withdrawal(
        &self,
        plan: &WithdrawalPlan,
    ) -> impl Future<Output = Result<UnsignedWithdrawal, AdapterError>> + Send;

    /// Puts the signatures (one per input, in order) into the transaction, checking each
    /// against its input's public key and digest first.
    fn attach_signatures(
        &self,
        unsigned: &UnsignedWithdrawal,
        signatures: &[FleetSignature],
    ) -> Result<SignedWithdrawal, AdapterError>;

    /// Hands the transaction to the node. Success means "accepted for relay", not "mined":
    /// follow with [`ChainAdapter::status`].
    fn broadcast(
        &self,
        signed: &SignedWithdrawal,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send;

    /// Where the transaction `txid` stands.
    fn status(&self, txid: &str) -> impl Future<Output = Result<TxStatus, AdapterError>> + Send;

    /// What the external chain holds at `addresses` in its blocks (not counting the node's
    /// pool), in the smallest unit: Ethereum, the balances at the latest block; Bitcoin, the
    /// unspent outputs in blocks. For reconciling the mapped supply with the external chain.
    fn holdings(
        &self,
        addresses: &[FleetAddress],
    ) -> impl Future<Output = Result<u128, AdapterError>> + Send;

    /// Builds the transaction that cancels `payment` (whitepaper §3.4.3, a lock-out that
    /// cannot be completed is returned): it uses up exactly the payment's nonce or outputs
    /// and pays nothing out of the fleet (Ethereum: the same nonce, 0 wei to the sending
    /// address itself, a higher fee than the payment's; Bitcoin: every input of the payment,
    /// one output to `change`). Its [`UnsignedWithdrawal::fee`] is the most it costs, and its
    /// spends are the payment's.
    fn build_cancellation(
        &self,
        payment: &UnsignedWithdrawal,
        change: &FleetAddress,
    ) -> impl Future<Output = Result<UnsignedWithdrawal, AdapterError>> + Send;

    /// Which of `payment` and `cancellation` (built by [`ChainAdapter::build_cancellation`]
    /// from it) is mined with at least `depth` confirmations. Decided from the chain's
    /// content, not from transaction ids the coordinator knows: a signer may have combined a
    /// signature of its own in a session whose result the coordinator never received.
    fn spent_by(
        &self,
        payment: &UnsignedWithdrawal,
        cancellation: &UnsignedWithdrawal,
        depth: u64,
    ) -> impl Future<Output = Result<SpentBy, AdapterError>> + Send;
}
