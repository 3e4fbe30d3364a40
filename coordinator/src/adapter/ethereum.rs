//! The Ethereum chain adapter (issue #5): EIP-1559 or legacy EIP-155 plain ETH transfers built
//! with alloy's consensus types, JSON-RPC to one node.
//!
//! | module | job |
//! |---|---|
//! | [`tx`] | addresses (EIP-55), the unsigned transaction, its signing preimage, attaching a signature |
//! | [`node`] | typed, strictly parsed node calls |
//!
//! # What the adapter sees, and what it does not
//!
//! A deposit is a top-level transaction of a block of the node's best chain whose `to` is a
//! watched address, whose `value` is above zero and whose receipt says success. The data field
//! is ignored (fleet addresses hold no code). Value that reaches a fleet address any other way
//! is **not seen** and so never credited: ETH moved by a contract's internal call (a
//! multisig or exchange contract paying out, `SELFDESTRUCT`), block rewards and withdrawals
//! credited to it, and token transfers (ERC-20 and the like are contract state, not ETH).
//!
//! # Lock-outs
//!
//! A lock-out spends from one fleet address whose balance covers the whole `amount`. The fee is
//! paid out of the amount: the transaction carries `value = amount − gas_limit × max_fee`, so
//! that even at the highest fee it may pay the source is left with at least its balance minus
//! `amount`. The gas actually charged is usually lower (EIP-1559 charges base fee + tip per gas,
//! not the cap); the difference is refunded by the protocol **to the source address** and stays
//! there, as fleet funds the mapped ledger does not track.
//!
//! The nonce is the larger of the node's pending transaction count and one above the highest
//! nonce the plan lists as reserved for that address, so two open orders never share a nonce.
//! A broadcast that the node accepts is not proof that it will be mined (anvil, for one,
//! returns a hash for a transaction it then keeps queued forever): only [`ChainAdapter::status`]
//! reporting `Confirmed` is.

pub mod node;
pub mod tx;

use std::time::Duration;

use alloy_primitives::{keccak256, Address, U256};

use self::node::{Node, State};
use self::tx::{address_of, checksummed, hash_hex, parse_address, Transfer, UnsignedTx};
use super::jsonrpc::{JsonRpcClient, RpcError};
use super::{
    AdapterError, ChainAdapter, ExternalChain, FleetAddress, FleetSignature, ObservedDeposit,
    SighashRule, SignedWithdrawal, SigningInput, Spend, SpentBy, TxStatus, UnsignedWithdrawal,
    WithdrawalPlan,
};

/// Gas of a plain ETH transfer to an account without code.
pub const TRANSFER_GAS: u64 = 21_000;

/// Most blocks one [`ChainAdapter::deposits`] call scans; wider ranges are refused so that a
/// caller's mistake cannot turn into millions of node calls.
pub const MAX_SCAN_BLOCKS: u64 = 10_000;

/// Which transaction type lock-outs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EthTxType {
    /// EIP-1559 (type 2): maxFeePerGas and maxPriorityFeePerGas.
    #[default]
    Eip1559,
    /// Legacy (type 0) with EIP-155 replay protection: one gasPrice, for chains or nodes
    /// without EIP-1559.
    LegacyEip155,
}

/// How the fee per gas is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeePolicy {
    /// From the latest block: maxFeePerGas = 2 × baseFee + `priority_fee_per_gas` (so the
    /// transaction stays includable while the base fee doubles), lowered to
    /// `max_fee_per_gas_cap` when one is set. A cap below the current base fee + tip refuses
    /// to build (such a transaction would wait in the pool indefinitely). Legacy transactions
    /// use the same figure as their gasPrice; on a chain without base fee they use
    /// `eth_gasPrice` + `priority_fee_per_gas`, also capped.
    Dynamic {
        /// maxPriorityFeePerGas (the tip), in wei per gas.
        priority_fee_per_gas: u128,
        /// Upper bound on maxFeePerGas (gasPrice for legacy), in wei per gas.
        max_fee_per_gas_cap: Option<u128>,
    },
    /// Fixed figures: maxFeePerGas (gasPrice for legacy) and maxPriorityFeePerGas.
    Fixed {
        /// maxFeePerGas, or the legacy gasPrice.
        max_fee_per_gas: u128,
        /// maxPriorityFeePerGas (unused by legacy).
        priority_fee_per_gas: u128,
    },
}

impl Default for FeePolicy {
    /// A 1 gwei tip, no cap.
    fn default() -> Self {
        Self::Dynamic {
            priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas_cap: None,
        }
    }
}

/// Configuration of an [`EthereumAdapter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthereumConfig {
    /// JSON-RPC endpoint of the node (`http://127.0.0.1:8545`).
    pub rpc_url: String,
    /// EIP-155 chain id; [`EthereumAdapter::connect`] checks it against `eth_chainId`.
    pub chain_id: u64,
    /// Transaction type of lock-outs.
    pub tx_type: EthTxType,
    /// Gas limit of a lock-out; at least [`TRANSFER_GAS`].
    pub gas_limit: u64,
    /// How the fee per gas is chosen.
    pub fee: FeePolicy,
    /// Per-call timeout of the node's JSON-RPC.
    pub rpc_timeout: Duration,
}

impl EthereumConfig {
    /// EIP-1559 transfers with the default fee policy, gas limit [`TRANSFER_GAS`] and a
    /// 10-second call timeout.
    pub fn new(rpc_url: impl Into<String>, chain_id: u64) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            chain_id,
            tx_type: EthTxType::default(),
            gas_limit: TRANSFER_GAS,
            fee: FeePolicy::default(),
            rpc_timeout: Duration::from_secs(10),
        }
    }
}

/// The fee figures of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fees {
    max_fee_per_gas: u128,
    priority_fee_per_gas: u128,
}

/// The Ethereum [`ChainAdapter`].
#[derive(Debug)]
pub struct EthereumAdapter {
    config: EthereumConfig,
    node: Node,
}

impl EthereumAdapter {
    /// Connects to the node and checks that it is on `config.chain_id`.
    pub async fn connect(config: EthereumConfig) -> Result<Self, AdapterError> {
        if config.gas_limit < TRANSFER_GAS {
            return Err(AdapterError::Invalid(format!(
                "gas limit {} is below the {TRANSFER_GAS} a transfer needs",
                config.gas_limit
            )));
        }
        if let FeePolicy::Fixed {
            max_fee_per_gas,
            priority_fee_per_gas,
        } = config.fee
        {
            if priority_fee_per_gas > max_fee_per_gas {
                return Err(AdapterError::Invalid(format!(
                    "priority fee {priority_fee_per_gas} wei/gas is above the max fee {max_fee_per_gas}"
                )));
            }
        }
        let rpc = JsonRpcClient::new(&config.rpc_url, None, config.rpc_timeout)?;
        let node = Node::new(rpc);
        let chain_id = node.chain_id().await?;
        if chain_id != config.chain_id {
            return Err(AdapterError::Invalid(format!(
                "the node at {} is on chain {chain_id}, the configuration says {}",
                config.rpc_url, config.chain_id
            )));
        }
        tracing::info!(url = %config.rpc_url, chain_id, tx_type = ?config.tx_type, "ethereum adapter connected");
        Ok(Self { config, node })
    }

    /// The configuration in force.
    pub fn config(&self) -> &EthereumConfig {
        &self.config
    }

    /// The address of a fleet address entry, checked against its public key.
    fn fleet_address(&self, fleet: &FleetAddress) -> Result<Address, AdapterError> {
        let derived = address_of(&fleet.public_key);
        let given = parse_address(&fleet.address)?;
        if given != derived {
            return Err(AdapterError::Invalid(format!(
                "fleet address {} (path {:?}) is not the address of its public key, {}",
                fleet.address,
                fleet.path,
                checksummed(&derived)
            )));
        }
        Ok(derived)
    }

    async fn fees(&self) -> Result<Fees, AdapterError> {
        let (priority, cap) = match self.config.fee {
            FeePolicy::Fixed {
                max_fee_per_gas,
                priority_fee_per_gas,
            } => {
                return Ok(Fees {
                    max_fee_per_gas,
                    priority_fee_per_gas,
                })
            }
            FeePolicy::Dynamic {
                priority_fee_per_gas,
                max_fee_per_gas_cap,
            } => (priority_fee_per_gas, max_fee_per_gas_cap),
        };
        let latest = self
            .node
            .block(None, false)
            .await?
            .ok_or_else(|| AdapterError::Unexpected("no latest block".into()))?;
        let overflow = || AdapterError::Unexpected("fee per gas overflows 128 bits".into());
        let (floor, wanted) = match (latest.base_fee_per_gas, self.config.tx_type) {
            (Some(base), _) => (
                base.checked_add(priority).ok_or_else(overflow)?,
                base.checked_mul(2)
                    .and_then(|b| b.checked_add(priority))
                    .ok_or_else(overflow)?,
            ),
            (None, EthTxType::LegacyEip155) => {
                let price = self.node.gas_price().await?;
                let p = price.checked_add(priority).ok_or_else(overflow)?;
                (price, p)
            }
            (None, EthTxType::Eip1559) => {
                return Err(AdapterError::Unexpected(
                    "the latest block has no base fee: the chain does not run EIP-1559; configure legacy transactions".into(),
                ))
            }
        };
        let max_fee_per_gas = cap.map_or(wanted, |c| wanted.min(c));
        if max_fee_per_gas < floor {
            return Err(AdapterError::Invalid(format!(
                "the configured fee cap {max_fee_per_gas} wei/gas is below the current base fee + tip {floor}"
            )));
        }
        Ok(Fees {
            max_fee_per_gas,
            priority_fee_per_gas: priority.min(max_fee_per_gas),
        })
    }
}

/// A fee per gas raised by one eighth plus one wei: above the 10 % that nodes require of a
/// transaction replacing another with the same nonce in their pool.
fn bumped(fee_per_gas: u128) -> u128 {
    fee_per_gas
        .saturating_add(fee_per_gas / 8)
        .saturating_add(1)
}

/// The payment's decoded transaction, its sender and its single signing input.
fn payment_parts(
    payment: &UnsignedWithdrawal,
) -> Result<(bool, Transfer, Address, &SigningInput), AdapterError> {
    if payment.chain != ExternalChain::Ethereum {
        return Err(AdapterError::Invalid("not an Ethereum transaction".into()));
    }
    let [input] = payment.inputs.as_slice() else {
        return Err(AdapterError::Invalid(
            "an Ethereum transaction has exactly one signing input".into(),
        ));
    };
    let (legacy, fields) = UnsignedTx::decode_preimage(&payment.unsigned_tx)?
        .fields()
        .ok_or_else(|| AdapterError::Invalid("not a plain transfer".into()))?;
    Ok((legacy, fields, address_of(&input.public_key), input))
}

/// `1 +` the highest nonce `plan.reserved` holds for `address`, if any. Addresses are compared
/// as addresses, not strings; Bitcoin outpoints are not ours and are skipped.
fn next_after_reserved(reserved: &[Spend], address: &Address) -> Result<Option<u64>, AdapterError> {
    let mut next: Option<u64> = None;
    for spend in reserved {
        if let Spend::Nonce { address: a, nonce } = spend {
            if parse_address(a)? == *address {
                let after = nonce.checked_add(1).ok_or_else(|| {
                    AdapterError::Invalid(format!("reserved nonce {nonce} of {a} has no successor"))
                })?;
                next = Some(next.map_or(after, |n| n.max(after)));
            }
        }
    }
    Ok(next)
}

fn u256_to_u128_saturating(v: U256) -> u128 {
    u128::try_from(v).unwrap_or(u128::MAX)
}

impl ChainAdapter for EthereumAdapter {
    fn chain(&self) -> ExternalChain {
        ExternalChain::Ethereum
    }

    /// The EIP-55 checksummed address of the key.
    fn address(&self, public_key: &k256::PublicKey) -> Result<String, AdapterError> {
        Ok(checksummed(&address_of(public_key)))
    }

    async fn tip_height(&self) -> Result<u64, AdapterError> {
        self.node.block_number().await
    }

    /// Scans blocks `from_height..=to_height` (at most [`MAX_SCAN_BLOCKS`], all at or below
    /// the tip) with full transactions; see the module docs for what counts as a deposit.
    /// `deposit_id` is the transaction hash in lowercase `0x` hex; `confirmations` is counted
    /// from the tip read before the scan.
    async fn deposits(
        &self,
        watched: &[FleetAddress],
        from_height: u64,
        to_height: u64,
    ) -> Result<Vec<ObservedDeposit>, AdapterError> {
        if from_height > to_height {
            return Ok(Vec::new());
        }
        if to_height - from_height >= MAX_SCAN_BLOCKS {
            return Err(AdapterError::Invalid(format!(
                "range {from_height}..={to_height} is more than {MAX_SCAN_BLOCKS} blocks"
            )));
        }
        let watched = watched
            .iter()
            .map(|w| Ok((self.fleet_address(w)?, w)))
            .collect::<Result<std::collections::HashMap<Address, &FleetAddress>, AdapterError>>()?;
        let tip = self.node.block_number().await?;
        if to_height > tip {
            return Err(AdapterError::Invalid(format!(
                "range ends at {to_height}, above the tip {tip}"
            )));
        }
        let mut found = Vec::new();
        for height in from_height..=to_height {
            let block = self.node.block(Some(height), true).await?.ok_or_else(|| {
                AdapterError::Unexpected(format!("no block at height {height} (tip {tip})"))
            })?;
            for t in &block.transactions {
                let Some(fleet) = t.to.and_then(|to| watched.get(&to)) else {
                    continue;
                };
                if t.value.is_zero() {
                    continue;
                }
                let receipt = self.node.receipt(&t.hash).await?.ok_or_else(|| {
                    AdapterError::Unexpected(format!(
                        "transaction {} of block {height} has no receipt",
                        hash_hex(&t.hash)
                    ))
                })?;
                if receipt.block_hash != block.hash {
                    // The chain moved between the two calls: this scan is not consistent.
                    return Err(AdapterError::Unexpected(format!(
                        "receipt of {} is in block {}, the scan read block {} at height {height} (re-organisation during the scan; retry)",
                        hash_hex(&t.hash),
                        hash_hex(&receipt.block_hash),
                        hash_hex(&block.hash)
                    )));
                }
                if !receipt.success {
                    tracing::debug!(tx = %hash_hex(&t.hash), "failed transaction to a fleet address ignored");
                    continue;
                }
                let amount = u128::try_from(t.value).map_err(|_| {
                    AdapterError::Unexpected(format!(
                        "transaction {} moves more than 2^128 wei",
                        hash_hex(&t.hash)
                    ))
                })?;
                found.push(ObservedDeposit {
                    deposit_id: hash_hex(&t.hash),
                    address: fleet.address.clone(),
                    amount,
                    height,
                    block_hash: hash_hex(&block.hash),
                    confirmations: tip - height + 1,
                });
            }
        }
        tracing::debug!(
            from_height,
            to_height,
            tip,
            deposits = found.len(),
            "deposit scan"
        );
        Ok(found)
    }

    async fn build_withdrawal(
        &self,
        plan: &WithdrawalPlan,
    ) -> Result<UnsignedWithdrawal, AdapterError> {
        let to = parse_address(&plan.to)?;
        if plan.amount == 0 {
            return Err(AdapterError::Invalid("amount is zero".into()));
        }
        let fees = self.fees().await?;
        let fee = u128::from(self.config.gas_limit)
            .checked_mul(fees.max_fee_per_gas)
            .ok_or_else(|| AdapterError::Invalid("gas limit × fee per gas overflows".into()))?;
        if plan.amount <= fee {
            return Err(AdapterError::InsufficientFunds(format!(
                "amount {} wei does not exceed the maximum fee {fee} wei",
                plan.amount
            )));
        }
        let mut chosen = None;
        for source in &plan.sources {
            let address = self.fleet_address(source)?;
            let balance =
                u256_to_u128_saturating(self.node.balance(&address, State::Pending).await?);
            if balance >= plan.amount {
                chosen = Some((source, address));
                break;
            }
            tracing::debug!(address = %checksummed(&address), balance, amount = plan.amount, "source cannot cover the amount");
        }
        let Some((source, from)) = chosen else {
            return Err(AdapterError::InsufficientFunds(format!(
                "none of the {} source addresses holds {} wei",
                plan.sources.len(),
                plan.amount
            )));
        };
        let pending = self.node.pending_nonce(&from).await?;
        let nonce = match next_after_reserved(&plan.reserved, &from)? {
            Some(after) => pending.max(after),
            None => pending,
        };
        let value = plan.amount - fee;
        let unsigned = UnsignedTx::transfer(
            self.config.tx_type == EthTxType::LegacyEip155,
            &Transfer {
                chain_id: self.config.chain_id,
                nonce,
                gas_limit: self.config.gas_limit,
                max_fee_per_gas: fees.max_fee_per_gas,
                max_priority_fee_per_gas: fees.priority_fee_per_gas,
                to,
                value,
            },
        );
        let preimage = unsigned.signing_preimage();
        let digest = keccak256(&preimage);
        let from_text = checksummed(&from);
        tracing::info!(from = %from_text, to = %checksummed(&to), nonce, value, fee, "ethereum lock-out built");
        Ok(UnsignedWithdrawal {
            chain: ExternalChain::Ethereum,
            unsigned_tx: preimage.clone(),
            inputs: vec![SigningInput {
                path: source.path.clone(),
                public_key: source.public_key,
                preimage,
                rule: SighashRule::Keccak256,
                digest: digest.0,
            }],
            sent: value,
            fee,
            spends: vec![Spend::Nonce {
                address: from_text,
                nonce,
            }],
        })
    }

    /// Exactly one signature; the unsigned transaction is decoded strictly from
    /// `unsigned.unsigned_tx`, must be for this adapter's chain id, and must be what the single
    /// input's preimage and digest say; the signature must verify under the input's public key
    /// (low s, recovery id recovering that key) before anything is encoded.
    fn attach_signatures(
        &self,
        unsigned: &UnsignedWithdrawal,
        signatures: &[FleetSignature],
    ) -> Result<SignedWithdrawal, AdapterError> {
        if unsigned.chain != ExternalChain::Ethereum {
            return Err(AdapterError::Invalid(format!(
                "a {:?} transaction given to the Ethereum adapter",
                unsigned.chain
            )));
        }
        let ([input], [signature]) = (unsigned.inputs.as_slice(), signatures) else {
            return Err(AdapterError::Invalid(format!(
                "an Ethereum transaction takes exactly one input and one signature, got {} and {}",
                unsigned.inputs.len(),
                signatures.len()
            )));
        };
        let tx = UnsignedTx::decode_preimage(&unsigned.unsigned_tx)?;
        if tx.chain_id() != Some(self.config.chain_id) {
            return Err(AdapterError::Invalid(format!(
                "transaction is for chain {:?}, this adapter for {}",
                tx.chain_id(),
                self.config.chain_id
            )));
        }
        let digest = tx.signing_hash();
        if input.rule != SighashRule::Keccak256
            || input.preimage != unsigned.unsigned_tx
            || input.digest != digest.0
        {
            return Err(AdapterError::Invalid(
                "the signing input does not describe this transaction (rule, preimage or digest differ)".into(),
            ));
        }
        let signed = tx.attach(&input.public_key, &digest, signature)?;
        tracing::info!(txid = %signed.txid, "ethereum lock-out signed");
        Ok(signed)
    }

    /// `eth_sendRawTransaction`. A node error answer is `Rejected` with the node's message,
    /// unless the node already holds the very same transaction (pending or mined), which makes
    /// a repeated broadcast succeed.
    async fn broadcast(&self, signed: &SignedWithdrawal) -> Result<(), AdapterError> {
        let txid = parse_txid(&signed.txid)?;
        if keccak256(&signed.raw) != txid {
            return Err(AdapterError::Invalid(format!(
                "txid {} is not the hash of the raw transaction",
                signed.txid
            )));
        }
        match self.node.send_raw(&signed.raw).await {
            Ok(hash) if hash == txid => {
                tracing::info!(txid = %signed.txid, "ethereum lock-out broadcast");
                Ok(())
            }
            Ok(hash) => Err(AdapterError::Unexpected(format!(
                "the node reports hash {} for transaction {}",
                hash_hex(&hash),
                signed.txid
            ))),
            Err(AdapterError::Node(RpcError::Node { message, .. })) => {
                if self.status(&signed.txid).await? != TxStatus::Unknown {
                    tracing::info!(txid = %signed.txid, %message, "node already holds the transaction");
                    return Ok(());
                }
                tracing::warn!(txid = %signed.txid, %message, "ethereum lock-out rejected");
                Err(AdapterError::Rejected(message))
            }
            Err(e) => Err(e),
        }
    }

    /// Confirmed when the node has a receipt whose block is still the best chain's block at
    /// that height; otherwise Pending when the node knows the transaction, else Unknown.
    async fn status(&self, txid: &str) -> Result<TxStatus, AdapterError> {
        let hash = parse_txid(txid)?;
        if let Some(receipt) = self.node.receipt(&hash).await? {
            let tip = self.node.block_number().await?;
            let canonical = self.node.block(Some(receipt.block_number), false).await?;
            match canonical {
                Some(block) if block.hash == receipt.block_hash && tip >= receipt.block_number => {
                    return Ok(TxStatus::Confirmed {
                        confirmations: tip - receipt.block_number + 1,
                        success: receipt.success,
                    });
                }
                _ => tracing::warn!(txid, "receipt names a block that is not on the best chain"),
            }
        }
        Ok(match self.node.transaction(&hash).await? {
            Some(_) => TxStatus::Pending,
            None => TxStatus::Unknown,
        })
    }

    /// Σ `eth_getBalance(address, "latest")`, each address checked against its public key and
    /// counted once.
    async fn holdings(&self, addresses: &[FleetAddress]) -> Result<u128, AdapterError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut total: u128 = 0;
        for fleet in addresses {
            let address = self.fleet_address(fleet)?;
            if !seen.insert(address) {
                continue;
            }
            let balance =
                u256_to_u128_saturating(self.node.balance(&address, State::Latest).await?);
            total = total
                .checked_add(balance)
                .ok_or_else(|| AdapterError::Unexpected("holdings overflow 128 bits".into()))?;
        }
        Ok(total)
    }

    /// The same nonce from the same address, 0 wei to that address itself, 21 000 gas, and
    /// fees per gas of at least one eighth above the payment's (so that a node holding the
    /// payment in its pool takes the cancellation in its place) and at least what
    /// [`FeePolicy`] asks now. `change` is not used: nothing leaves the sending address but
    /// the fee.
    async fn build_cancellation(
        &self,
        payment: &UnsignedWithdrawal,
        _change: &FleetAddress,
    ) -> Result<UnsignedWithdrawal, AdapterError> {
        let (legacy, paid, from, input) = payment_parts(payment)?;
        if paid.chain_id != self.config.chain_id {
            return Err(AdapterError::Invalid(format!(
                "the payment is for chain {}, this adapter for {}",
                paid.chain_id, self.config.chain_id
            )));
        }
        let now = self.fees().await?;
        let max_fee_per_gas = now.max_fee_per_gas.max(bumped(paid.max_fee_per_gas));
        let max_priority_fee_per_gas = now
            .priority_fee_per_gas
            .max(bumped(paid.max_priority_fee_per_gas))
            .min(max_fee_per_gas);
        let fee = u128::from(TRANSFER_GAS)
            .checked_mul(max_fee_per_gas)
            .ok_or_else(|| AdapterError::Invalid("gas × fee per gas overflows".into()))?;
        let unsigned = UnsignedTx::transfer(
            legacy,
            &Transfer {
                chain_id: paid.chain_id,
                nonce: paid.nonce,
                gas_limit: TRANSFER_GAS,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: from,
                value: 0,
            },
        );
        let preimage = unsigned.signing_preimage();
        let digest = keccak256(&preimage);
        tracing::info!(from = %checksummed(&from), nonce = paid.nonce, fee, "ethereum cancellation built");
        Ok(UnsignedWithdrawal {
            chain: ExternalChain::Ethereum,
            unsigned_tx: preimage.clone(),
            inputs: vec![SigningInput {
                path: input.path.clone(),
                public_key: input.public_key,
                preimage,
                rule: SighashRule::Keccak256,
                digest: digest.0,
            }],
            sent: 0,
            fee,
            spends: payment.spends.clone(),
        })
    }

    /// Decided by the sending address's nonce: once the state `depth − 1` blocks below the tip
    /// counts past the payment's nonce, the block that used the nonce is found (binary search
    /// over `eth_getTransactionCount` by height) and its transaction from that address with
    /// that nonce is the payment (same destination and value) or the cancellation (0 wei to
    /// itself). Any other transaction there means the fleet key signed something the chain
    /// did not commit, and is an error.
    async fn spent_by(
        &self,
        payment: &UnsignedWithdrawal,
        cancellation: &UnsignedWithdrawal,
        depth: u64,
    ) -> Result<SpentBy, AdapterError> {
        let (_, paid, from, _) = payment_parts(payment)?;
        let (_, cancel, cancel_from, _) = payment_parts(cancellation)?;
        if cancel_from != from || cancel.nonce != paid.nonce {
            return Err(AdapterError::Invalid(
                "the cancellation does not use the payment's address and nonce".into(),
            ));
        }
        let tip = self.node.block_number().await?;
        let Some(deep) = tip.checked_sub(depth.saturating_sub(1)) else {
            return Ok(SpentBy::Undecided);
        };
        if self.node.nonce_at(&from, deep).await? <= paid.nonce {
            return Ok(SpentBy::Undecided);
        }
        let height = self.block_of_nonce(&from, paid.nonce, deep).await?;
        let block = self
            .node
            .block(Some(height), true)
            .await?
            .ok_or_else(|| AdapterError::Unexpected(format!("no block {height}")))?;
        let mined = block
            .transactions
            .iter()
            .find(|t| t.from == from && t.nonce == paid.nonce)
            .ok_or_else(|| {
                AdapterError::Unexpected(format!(
                    "block {height} holds no transaction of {} with nonce {}",
                    checksummed(&from),
                    paid.nonce
                ))
            })?;
        if mined.to == Some(from) && mined.value.is_zero() {
            Ok(SpentBy::Cancellation)
        } else if mined.to == Some(paid.to) && mined.value == U256::from(paid.value) {
            Ok(SpentBy::Payment)
        } else {
            Err(AdapterError::Unexpected(format!(
                "nonce {} of {} was used by transaction {}, which is neither the payment nor its cancellation",
                paid.nonce,
                checksummed(&from),
                hash_hex(&mined.hash)
            )))
        }
    }
}

impl EthereumAdapter {
    /// The lowest block height whose state counts more than `nonce` transactions from `from`
    /// (the block that holds the transaction with that nonce), searched in `0..=high`, where
    /// the count at `high` is known to be above `nonce`. Needs the node to answer
    /// `eth_getTransactionCount` for old blocks (anvil does; a pruned node answers only for
    /// its recent state window, and this then fails with the node's error).
    async fn block_of_nonce(
        &self,
        from: &Address,
        nonce: u64,
        high: u64,
    ) -> Result<u64, AdapterError> {
        let (mut low, mut high) = (0u64, high);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.node.nonce_at(from, mid).await? > nonce {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        Ok(high)
    }
}

/// A transaction id as this adapter writes it: `0x` and 64 hex digits.
fn parse_txid(txid: &str) -> Result<alloy_primitives::B256, AdapterError> {
    node::hash32("txid", txid)
        .map_err(|_| AdapterError::Invalid(format!("txid {txid:?} is not 0x and 64 hex digits")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn nonce(address: &str, nonce: u64) -> Spend {
        Spend::Nonce {
            address: address.into(),
            nonce,
        }
    }

    #[test]
    fn reserved_nonces_are_matched_by_address_not_by_spelling() {
        let a = parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
        let reserved = [
            nonce("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", 4),
            nonce("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 9),
            nonce("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", 50),
            Spend::Outpoint("00:0".into()),
        ];
        assert_eq!(next_after_reserved(&reserved, &a).unwrap(), Some(10));
        assert_eq!(next_after_reserved(&reserved[2..], &a).unwrap(), None);
        assert!(next_after_reserved(&[nonce("0xnope", 1)], &a).is_err());
        assert!(next_after_reserved(&[nonce(&checksummed(&a), u64::MAX)], &a).is_err());
    }

    #[test]
    fn txids_are_strict() {
        assert!(parse_txid(&format!("0x{}", "ab".repeat(32))).is_ok());
        assert!(parse_txid(&"ab".repeat(32)).is_err());
        assert!(parse_txid("0x1234").is_err());
    }
}
