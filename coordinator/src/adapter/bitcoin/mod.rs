//! The Bitcoin chain adapter: P2WPKH deposit addresses, deposit scanning, UTXO selection, BIP143
//! signing inputs, libbitcoinconsensus verification of every signed input, broadcast (DESIGN §6).
//!
//! It talks to a bcoin full node (tested with bcoin 1.0.2 in regtest) over its JSON-RPC and
//! REST API on one port, authenticated with the node's API key. The node must run with
//! `--index-tx` (transaction status from the chain) and `--index-address` (unspent coins of the
//! fleet addresses). Everything the node says is untrusted input: blocks and transactions are
//! fetched raw and decoded here (hashes recomputed), and coins are matched against the fleet's
//! own scripts. A node that lies about a coin's amount cannot make the fleet overpay: BIP143
//! commits to the amount, so such a signature is invalid on the real chain.
//!
//! | module | job |
//! |---|---|
//! | [`address`] | P2WPKH scripts and segwit addresses with a configurable HRP |
//! | [`sighash`] | the BIP143 preimage of a P2WPKH input |
//! | [`tx`] | the unsigned-withdrawal encoding, the vsize estimate, UTXO selection |
//! | [`rest`] | bcoin's REST endpoints |
//!
//! Choices (all documented on [`BitcoinConfig`] and [`BitcoinAdapter`]):
//! - inputs need [`BitcoinConfig::min_input_confirmations`] (default 1) and coinbase outputs
//!   100 confirmations (consensus maturity); unconfirmed coins are never spent;
//! - inputs carry nSequence `0xffffffff` and the lock time is 0: no replace-by-fee signal
//!   (bcoin's mempool refuses RBF-signalling transactions by default);
//! - the destination comes first, change (if any) second;
//! - the fee is the configured rate × the worst-case vsize ([`tx::estimate_vsize`]) and is paid
//!   out of the plan's amount; change below the dust limit is left to the miner, at the fleet's
//!   cost, and shows in [`UnsignedWithdrawal::fee`], which is always inputs − outputs;
//! - destinations are segwit addresses (v0 bech32, v1+ bech32m) under the configured HRP;
//!   base58 (P2PKH, P2SH) destinations are refused as invalid;
//! - `deposits` reports every output paying a watched address, change included: keep change
//!   addresses out of the deposit watch list.
//!
//! bcoin's regtest activates segwit by BIP9 signalling (432 blocks), not from genesis as
//! Bitcoin Core's does; before that its mempool refuses P2WPKH spends ("no-witness-yet").

pub mod address;
pub mod rest;
pub mod sighash;
pub mod tx;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::bech32::Hrp;
use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::VerifyingKey;
use serde::Deserialize;
use serde_json::json;

use super::jsonrpc::{JsonRpcClient, RpcError};
use super::{
    AdapterError, ChainAdapter, ExternalChain, FleetAddress, FleetSignature, ObservedDeposit,
    SighashRule, SignedWithdrawal, SigningInput, Spend, SpentBy, TxStatus, UnsignedWithdrawal,
    WithdrawalPlan,
};

/// Confirmations a coinbase output needs before it can be spent (consensus rule).
pub const COINBASE_MATURITY: u64 = 100;

/// Largest amount of bitcoin that can exist, in satoshi (21 million BTC).
pub const MAX_MONEY: u64 = 21_000_000 * 100_000_000;

/// The smallest accepted [`BitcoinConfig::dust_limit`]: Bitcoin Core's dust threshold of
/// P2WSH and P2TR outputs (the largest among segwit outputs, the only kind this adapter pays
/// to) at its default dust relay fee of 3 sat/vB.
pub const MIN_DUST_LIMIT: u64 = 330;

/// Longest pause between two mempool checks after a broadcast.
const MAX_POLL_DELAY: Duration = Duration::from_millis(400);

/// How the adapter reaches its node and builds transactions. `Debug` does not show the API
/// key.
#[derive(Clone, PartialEq, Eq)]
pub struct BitcoinConfig {
    /// The bcoin node's HTTP endpoint (JSON-RPC and REST on one port), e.g.
    /// `http://127.0.0.1:48332`.
    pub url: String,
    /// bcoin's `--api-key` (sent as HTTP basic auth with user `x`).
    pub api_key: String,
    /// bech32 human-readable part: `bc` (mainnet), `tb` (testnet), `bcrt` (Bitcoin Core
    /// regtest), `rb` (bcoin regtest).
    pub hrp: String,
    /// Fee rate in satoshi per virtual byte (regtest has no estimates).
    pub fee_rate_sat_per_vb: u64,
    /// No output below this many satoshi is created: change below it is dropped, a
    /// destination amount below it is refused. At least [`MIN_DUST_LIMIT`]; 546 (the P2PKH
    /// threshold) leaves a margin over every segwit output type.
    pub dust_limit: u64,
    /// Confirmations an unspent output needs before it is selected as an input (at least 1;
    /// coinbase outputs need [`COINBASE_MATURITY`] in any case). In production set it to the
    /// deposit depth z, so that only credited coins are spent.
    pub min_input_confirmations: u64,
    /// Timeout of one call to the node.
    pub timeout: Duration,
    /// How long [`ChainAdapter::broadcast`] waits for the transaction to appear in the
    /// node's mempool (bcoin's `sendrawtransaction` answers before it has checked it).
    pub acceptance_wait: Duration,
}

impl std::fmt::Debug for BitcoinConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoinConfig")
            .field("url", &self.url)
            .field("api_key", &"<redacted>")
            .field("hrp", &self.hrp)
            .field("fee_rate_sat_per_vb", &self.fee_rate_sat_per_vb)
            .field("dust_limit", &self.dust_limit)
            .field("min_input_confirmations", &self.min_input_confirmations)
            .field("timeout", &self.timeout)
            .field("acceptance_wait", &self.acceptance_wait)
            .finish()
    }
}

impl BitcoinConfig {
    /// Defaults for a bcoin regtest node at `url`: HRP `rb`, 2 sat/vB, dust 546, 1
    /// confirmation, 10 s per call, 5 s to see a broadcast in the mempool.
    pub fn bcoin_regtest(url: &str, api_key: &str) -> Self {
        Self {
            url: url.to_owned(),
            api_key: api_key.to_owned(),
            hrp: "rb".into(),
            fee_rate_sat_per_vb: 2,
            dust_limit: 546,
            min_input_confirmations: 1,
            timeout: Duration::from_secs(10),
            acceptance_wait: Duration::from_secs(5),
        }
    }
}

/// The Bitcoin [`ChainAdapter`] over a bcoin node. `Debug` does not show the API key.
pub struct BitcoinAdapter {
    config: BitcoinConfig,
    hrp: Hrp,
    rpc: JsonRpcClient,
    rest: rest::BcoinRest,
}

/// A coin as bcoin's `/coin/...` endpoints render it.
#[derive(Debug, Deserialize)]
struct RestCoin {
    height: i64,
    value: u64,
    script: String,
    coinbase: bool,
    hash: String,
    index: u32,
}

/// A transaction as bcoin's `/tx/:hash` renders it (mempool first, then the tx index).
#[derive(Debug, Deserialize)]
struct RestTxMeta {
    hash: String,
    height: i64,
    block: Option<String>,
    hex: String,
}

impl std::fmt::Debug for BitcoinAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not `rpc`: `JsonRpcClient`'s derived `Debug` prints its basic-auth password.
        f.debug_struct("BitcoinAdapter")
            .field("config", &self.config)
            .field("rest", &self.rest)
            .finish_non_exhaustive()
    }
}

impl BitcoinAdapter {
    /// An adapter for `config`. Checks the configuration; does not contact the node.
    pub fn new(config: BitcoinConfig) -> Result<Self, AdapterError> {
        let hrp = address::parse_hrp(&config.hrp)?;
        if config.fee_rate_sat_per_vb == 0 {
            return Err(AdapterError::Invalid(
                "fee rate must be at least 1 sat/vB".into(),
            ));
        }
        if config.dust_limit < MIN_DUST_LIMIT {
            return Err(AdapterError::Invalid(format!(
                "dust limit {} is below {MIN_DUST_LIMIT} sat",
                config.dust_limit
            )));
        }
        if config.min_input_confirmations == 0 {
            return Err(AdapterError::Invalid(
                "inputs need at least 1 confirmation".into(),
            ));
        }
        let auth = Some(("x".to_owned(), config.api_key.clone()));
        let rpc = JsonRpcClient::new(&config.url, auth, config.timeout)?;
        let rest = rest::BcoinRest::new(&config.url, &config.api_key, config.timeout)?;
        Ok(Self {
            config,
            hrp,
            rpc,
            rest,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BitcoinConfig {
        &self.config
    }

    /// The node's JSON-RPC client (for operator tools and tests: `generatetoaddress`, ...).
    pub fn rpc(&self) -> &JsonRpcClient {
        &self.rpc
    }

    /// Asks the node which network it runs (bcoin's REST `/`) and checks that its bech32 HRP
    /// is the configured one (bcoin: main `bc`, testnet `tb`, regtest `rb`, simnet `sb`), so
    /// that a configuration never drives a node of another network. Returns the network name.
    pub async fn check_node(&self) -> Result<String, AdapterError> {
        let info = self
            .rest
            .get("/")
            .await?
            .ok_or_else(|| AdapterError::Unexpected("/: not found".into()))?;
        let network = info
            .get("network")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| AdapterError::Unexpected("/: no network".into()))?;
        let hrp = match network {
            "main" => "bc",
            "testnet" => "tb",
            "regtest" => "rb",
            "simnet" => "sb",
            other => {
                return Err(AdapterError::Unexpected(format!(
                    "node runs the unknown network {other:?}"
                )))
            }
        };
        if hrp != self.hrp.as_str() {
            return Err(AdapterError::Invalid(format!(
                "node runs {network} (HRP {hrp}), the adapter is configured for HRP {}",
                self.hrp
            )));
        }
        Ok(network.to_owned())
    }

    /// The output script of a destination address under the configured HRP (segwit only).
    pub fn script_of(&self, address: &str) -> Result<ScriptBuf, AdapterError> {
        address::decode(self.hrp, address)
    }

    /// The P2WPKH script of a fleet address, after checking that its `address` is the one
    /// [`ChainAdapter::address`] renders for its key.
    fn fleet_script(&self, fleet: &FleetAddress) -> Result<ScriptBuf, AdapterError> {
        let script = address::p2wpkh_script(&fleet.public_key)?;
        let rendered = address::encode(self.hrp, &script)?;
        if rendered != fleet.address {
            return Err(AdapterError::Invalid(format!(
                "fleet address {} is not the P2WPKH address {rendered} of its key",
                fleet.address
            )));
        }
        Ok(script)
    }

    async fn block_hash(&self, height: u64) -> Result<BlockHash, AdapterError> {
        let hex: String = self.rpc.call("getblockhash", json!([height])).await?;
        BlockHash::from_str(&hex)
            .map_err(|e| AdapterError::Unexpected(format!("getblockhash {height}: {e}")))
    }

    /// The block `hash`, fetched raw and decoded here; its header must hash to `hash` and its
    /// transactions to its Merkle root.
    async fn block(&self, hash: &BlockHash) -> Result<Block, AdapterError> {
        let hex: String = self
            .rpc
            .call("getblock", json!([hash.to_string(), false]))
            .await?;
        let bad = |d: String| AdapterError::Unexpected(format!("block {hash}: {d}"));
        let raw = hex::decode(hex).map_err(|e| bad(e.to_string()))?;
        let block: Block = deserialize(&raw).map_err(|e| bad(e.to_string()))?;
        if block.block_hash() != *hash {
            return Err(bad(format!("header hashes to {}", block.block_hash())));
        }
        if !block.check_merkle_root() {
            return Err(bad("transactions do not match the Merkle root".into()));
        }
        Ok(block)
    }

    /// Every unspent coin the node lists for `sources` (by index), checked: it pays one of the
    /// asked scripts, its amount is in range, and a coin listed twice is listed alike. With
    /// its height (−1 unconfirmed) and whether it is a coinbase output.
    async fn fleet_coins(
        &self,
        sources: &[(ScriptBuf, &FleetAddress)],
    ) -> Result<Vec<(tx::Candidate, i64, bool)>, AdapterError> {
        let by_script: HashMap<&ScriptBuf, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, (script, _))| (script, i))
            .collect();
        let addresses: BTreeSet<&str> = sources.iter().map(|(_, f)| f.address.as_str()).collect();
        let answer = self
            .rest
            .post("/coin/address", &json!({ "addresses": addresses }))
            .await?;
        let coins: Vec<RestCoin> = serde_json::from_value(answer)
            .map_err(|e| AdapterError::Unexpected(format!("/coin/address: {e}")))?;
        let mut found: BTreeMap<OutPoint, (tx::Candidate, i64, bool)> = BTreeMap::new();
        for coin in coins {
            let bad = |d: String| AdapterError::Unexpected(format!("/coin/address: {d}"));
            let txid = Txid::from_str(&coin.hash).map_err(|e| bad(e.to_string()))?;
            let outpoint = OutPoint::new(txid, coin.index);
            let script =
                ScriptBuf::from_bytes(hex::decode(&coin.script).map_err(|e| bad(e.to_string()))?);
            let source = *by_script.get(&script).ok_or_else(|| {
                bad(format!(
                    "coin {outpoint} pays a script that was not asked for"
                ))
            })?;
            if coin.value == 0 || coin.value > MAX_MONEY {
                return Err(bad(format!("coin {outpoint} has amount {}", coin.value)));
            }
            let entry = (
                tx::Candidate {
                    outpoint,
                    value: coin.value,
                    source,
                },
                coin.height,
                coin.coinbase,
            );
            if let Some(previous) = found.get(&outpoint) {
                if *previous != entry {
                    return Err(bad(format!("coin {outpoint} listed twice, differently")));
                }
                continue;
            }
            found.insert(outpoint, entry);
        }
        Ok(found.into_values().collect())
    }

    /// The spendable coins of `sources` (by index), minus `reserved`, as of `tip`.
    async fn candidates(
        &self,
        sources: &[(ScriptBuf, &FleetAddress)],
        reserved: &BTreeSet<OutPoint>,
        tip: u64,
    ) -> Result<Vec<tx::Candidate>, AdapterError> {
        let mut out = Vec::new();
        for (candidate, height, coinbase) in self.fleet_coins(sources).await? {
            // Unconfirmed (-1) or above the tip we read first (a block arrived since): skip.
            let Ok(height) = u64::try_from(height) else {
                continue;
            };
            let Some(confirmations) = tip.checked_sub(height).map(|d| d + 1) else {
                continue;
            };
            let needed = if coinbase {
                COINBASE_MATURITY.max(self.config.min_input_confirmations)
            } else {
                self.config.min_input_confirmations
            };
            if confirmations < needed || reserved.contains(&candidate.outpoint) {
                continue;
            }
            out.push(candidate);
        }
        Ok(out)
    }

    /// Builds the unsigned withdrawal from chosen coins: outputs, fee, BIP143 preimages.
    /// Pure; [`ChainAdapter::build_withdrawal`] = fetch the coins, select, then this.
    pub(crate) fn assemble(
        &self,
        plan: &WithdrawalPlan,
        candidates: Vec<tx::Candidate>,
    ) -> Result<UnsignedWithdrawal, AdapterError> {
        let amount = u64::try_from(plan.amount)
            .ok()
            .filter(|a| *a > 0 && *a <= MAX_MONEY)
            .ok_or_else(|| AdapterError::Invalid(format!("amount {} satoshi", plan.amount)))?;
        let destination = self.script_of(&plan.to)?;
        let sources = plan
            .sources
            .iter()
            .map(|f| self.fleet_script(f).map(|s| (s, f)))
            .collect::<Result<Vec<_>, _>>()?;
        let change = plan
            .change
            .as_ref()
            .map(|f| self.fleet_script(f))
            .transpose()?;

        // Saturating: the coin list comes from the node, and its length is not bounded.
        let available = candidates
            .iter()
            .fold(0u64, |sum, c| sum.saturating_add(c.value));
        let (chosen, total) = tx::select(candidates, amount).ok_or_else(|| {
            AdapterError::InsufficientFunds(format!(
                "{available} sat spendable (confirmed, unreserved), {amount} sat asked"
            ))
        })?;
        let rest = total - amount;
        let change = match change {
            Some(script) if rest >= self.config.dust_limit => Some((script, rest)),
            None if rest >= self.config.dust_limit => {
                return Err(AdapterError::Invalid(format!(
                    "{rest} sat of change and no change address"
                )))
            }
            _ => None,
        };
        let mut script_lens = vec![destination.len()];
        script_lens.extend(change.iter().map(|(s, _)| s.len()));
        let vsize = tx::estimate_vsize(chosen.len(), &script_lens);
        let rate_fee = vsize
            .checked_mul(self.config.fee_rate_sat_per_vb)
            .ok_or_else(|| AdapterError::Invalid("fee overflows".into()))?;
        let sent = amount
            .checked_sub(rate_fee)
            .filter(|s| *s >= self.config.dust_limit)
            .ok_or_else(|| {
                AdapterError::InsufficientFunds(format!(
                    "{amount} sat minus a fee of {rate_fee} sat ({vsize} vB) leaves less than the \
                     dust limit of {} sat",
                    self.config.dust_limit
                ))
            })?;

        let mut output = vec![TxOut {
            value: Amount::from_sat(sent),
            script_pubkey: destination,
        }];
        let mut change_value = 0;
        if let Some((script, value)) = change {
            change_value = value;
            output.push(TxOut {
                value: Amount::from_sat(value),
                script_pubkey: script,
            });
        }
        let unsigned = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: chosen
                .iter()
                .map(|c| TxIn {
                    previous_output: c.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        };
        let mut spent = Vec::with_capacity(chosen.len());
        let mut inputs = Vec::with_capacity(chosen.len());
        for (index, coin) in chosen.iter().enumerate() {
            let (script, fleet) = sources
                .get(coin.source)
                .ok_or_else(|| AdapterError::Invalid(format!("no source {}", coin.source)))?;
            let txout = TxOut {
                value: Amount::from_sat(coin.value),
                script_pubkey: script.clone(),
            };
            let key_hash = address::pubkey_hash(&fleet.public_key)?;
            let preimage = sighash::p2wpkh_preimage(&unsigned, index, &txout, &key_hash)
                .ok_or_else(|| AdapterError::Invalid(format!("no input {index}")))?;
            inputs.push(SigningInput {
                path: fleet.path.clone(),
                public_key: fleet.public_key,
                digest: sighash::sha256d(&preimage),
                preimage,
                rule: SighashRule::DoubleSha256,
            });
            spent.push(txout);
        }
        let fee = total - sent - change_value;
        tracing::info!(
            inputs = chosen.len(),
            total,
            sent,
            change = change_value,
            fee,
            vsize,
            "bitcoin withdrawal built"
        );
        Ok(UnsignedWithdrawal {
            chain: ExternalChain::Bitcoin,
            unsigned_tx: tx::encode_unsigned(&unsigned, &spent),
            inputs,
            sent: u128::from(sent),
            fee: u128::from(fee),
            spends: chosen
                .iter()
                .map(|c| Spend::Outpoint(c.outpoint.to_string()))
                .collect(),
        })
    }

    /// Why the node did not take `tx`, as far as its coin set tells: the inputs it no longer
    /// has (spent in the chain or the mempool, or never created).
    async fn rejection_reason(&self, tx: &Transaction) -> String {
        let mut missing = Vec::new();
        for input in &tx.input {
            let op = input.previous_output;
            match self
                .rest
                .get(&format!("/coin/{}/{}", op.txid, op.vout))
                .await
            {
                Ok(None) => missing.push(op.to_string()),
                Ok(Some(_)) => {}
                Err(e) => return format!("not in the mempool; checking its inputs failed: {e}"),
            }
        }
        if missing.is_empty() {
            // bcoin relays refused transactions anyway when the refusal scores 0, which
            // covers policy and, for witness transactions, failed scripts too; its REST
            // `/broadcast` then answers success as well: the reason is only in its log.
            "not in the mempool (bcoin reports no reason over its API; its log has it)".into()
        } else {
            format!(
                "not in the mempool: input(s) {} spent or unknown",
                missing.join(", ")
            )
        }
    }
}

/// Parses a `txid:vout` outpoint.
fn parse_outpoint(s: &str) -> Result<OutPoint, AdapterError> {
    OutPoint::from_str(s).map_err(|e| AdapterError::Invalid(format!("outpoint {s:?}: {e}")))
}

impl ChainAdapter for BitcoinAdapter {
    fn chain(&self) -> ExternalChain {
        ExternalChain::Bitcoin
    }

    fn address(&self, public_key: &k256::PublicKey) -> Result<String, AdapterError> {
        address::encode(self.hrp, &address::p2wpkh_script(public_key)?)
    }

    async fn tip_height(&self) -> Result<u64, AdapterError> {
        Ok(self.rpc.call("getblockcount", json!([])).await?)
    }

    /// Scans blocks `from_height..=min(to_height, tip)` fetched raw, each linked to the one
    /// before, and reports every output paying a watched P2WPKH script. Coinbase outputs are
    /// reported only once mature ([`COINBASE_MATURITY`]). Fails with `Unexpected` when the
    /// best chain changed during the scan (call again).
    async fn deposits(
        &self,
        watched: &[FleetAddress],
        from_height: u64,
        to_height: u64,
    ) -> Result<Vec<ObservedDeposit>, AdapterError> {
        let mut scripts = HashMap::new();
        for fleet in watched {
            scripts.insert(self.fleet_script(fleet)?, fleet);
        }
        let tip = self.tip_height().await?;
        let to_height = to_height.min(tip);
        let mut found = Vec::new();
        let mut previous: Option<BlockHash> = None;
        for height in from_height..=to_height {
            let hash = self.block_hash(height).await?;
            let block = self.block(&hash).await?;
            if previous.is_some_and(|p| p != block.header.prev_blockhash) {
                return Err(AdapterError::Unexpected(format!(
                    "the best chain changed during the scan at height {height}"
                )));
            }
            previous = Some(hash);
            let confirmations = tip - height + 1;
            for tx in &block.txdata {
                if tx.is_coinbase() && confirmations < COINBASE_MATURITY {
                    continue;
                }
                let txid = tx.compute_txid();
                for (vout, out) in tx.output.iter().enumerate() {
                    if let Some(fleet) = scripts.get(&out.script_pubkey) {
                        found.push(ObservedDeposit {
                            deposit_id: format!("{txid}:{vout}"),
                            address: fleet.address.clone(),
                            amount: u128::from(out.value.to_sat()),
                            height,
                            block_hash: hash.to_string(),
                            confirmations,
                        });
                    }
                }
            }
        }
        if let Some(last) = previous {
            if self.block_hash(to_height).await? != last {
                return Err(AdapterError::Unexpected(
                    "the best chain changed during the scan".into(),
                ));
            }
        }
        tracing::debug!(
            from_height,
            to_height,
            found = found.len(),
            "bitcoin deposits scanned"
        );
        Ok(found)
    }

    async fn build_withdrawal(
        &self,
        plan: &WithdrawalPlan,
    ) -> Result<UnsignedWithdrawal, AdapterError> {
        if plan.sources.is_empty() {
            return Err(AdapterError::Invalid("no source addresses".into()));
        }
        let mut reserved = BTreeSet::new();
        for spend in &plan.reserved {
            match spend {
                Spend::Outpoint(s) => {
                    reserved.insert(parse_outpoint(s)?);
                }
                Spend::Nonce { .. } => {
                    return Err(AdapterError::Invalid(
                        "an account nonce is not a Bitcoin resource".into(),
                    ))
                }
            }
        }
        let sources = plan
            .sources
            .iter()
            .map(|f| self.fleet_script(f).map(|s| (s, f)))
            .collect::<Result<Vec<_>, _>>()?;
        let tip = self.tip_height().await?;
        let candidates = self.candidates(&sources, &reserved, tip).await?;
        self.assemble(plan, candidates)
    }

    fn attach_signatures(
        &self,
        unsigned: &UnsignedWithdrawal,
        signatures: &[FleetSignature],
    ) -> Result<SignedWithdrawal, AdapterError> {
        if unsigned.chain != ExternalChain::Bitcoin {
            return Err(AdapterError::Invalid("not a Bitcoin withdrawal".into()));
        }
        let (mut tx, spent) = tx::decode_unsigned(&unsigned.unsigned_tx)?;
        let n = tx.input.len();
        if unsigned.inputs.len() != n || signatures.len() != n {
            return Err(AdapterError::Invalid(format!(
                "{n} inputs, {} signing inputs, {} signatures",
                unsigned.inputs.len(),
                signatures.len()
            )));
        }
        let mut witnesses = Vec::with_capacity(n);
        for (index, (input, signature)) in unsigned.inputs.iter().zip(signatures).enumerate() {
            let bad = |d: &str| AdapterError::Invalid(format!("input {index}: {d}"));
            let txout = spent.get(index).ok_or_else(|| bad("no spent output"))?;
            if input.rule != SighashRule::DoubleSha256 {
                return Err(bad("rule is not double SHA-256"));
            }
            if address::p2wpkh_script(&input.public_key)? != txout.script_pubkey {
                return Err(bad("the public key does not own the spent output"));
            }
            let key_hash = address::pubkey_hash(&input.public_key)?;
            let preimage = sighash::p2wpkh_preimage(&tx, index, txout, &key_hash)
                .ok_or_else(|| bad("no such input"))?;
            if preimage != input.preimage || sighash::sha256d(&preimage) != input.digest {
                return Err(bad(
                    "preimage or digest is not this transaction's BIP143 sighash",
                ));
            }
            let sig = signature.signature;
            if sig.normalize_s().is_some() {
                return Err(bad("signature is not low-s"));
            }
            VerifyingKey::from(&input.public_key)
                .verify_prehash(&input.digest, &sig)
                .map_err(|_| bad("signature does not verify under the input's key"))?;
            let mut der = sig.to_der().as_bytes().to_vec();
            der.push(sighash::SIGHASH_ALL as u8);
            witnesses.push(Witness::from_slice(&[
                der,
                address::compressed(&input.public_key).to_vec(),
            ]));
        }
        for (txin, witness) in tx.input.iter_mut().zip(witnesses) {
            txin.witness = witness;
        }
        let raw = serialize(&tx);
        for (index, txout) in spent.iter().enumerate() {
            bitcoin::consensus::verify_script(&txout.script_pubkey, index, txout.value, &raw)
                .map_err(|e| {
                    AdapterError::Invalid(format!("input {index}: libbitcoinconsensus: {e}"))
                })?;
        }
        let txid = tx.compute_txid().to_string();
        tracing::info!(%txid, inputs = n, vsize = tx.vsize(), "bitcoin withdrawal signed");
        Ok(SignedWithdrawal { raw, txid })
    }

    /// `sendrawtransaction`, then waits up to [`BitcoinConfig::acceptance_wait`] for the
    /// transaction to be in the mempool (or a block). bcoin answers `sendrawtransaction` with
    /// the txid before checking anything, so the answer proves nothing; absence means
    /// `Rejected`, with the inputs the node no longer has as the reason where that explains it.
    async fn broadcast(&self, signed: &SignedWithdrawal) -> Result<(), AdapterError> {
        let tx: Transaction = deserialize(&signed.raw)
            .map_err(|e| AdapterError::Invalid(format!("raw transaction: {e}")))?;
        let txid = tx.compute_txid();
        if txid.to_string() != signed.txid {
            return Err(AdapterError::Invalid(format!(
                "raw transaction has txid {txid}, not {}",
                signed.txid
            )));
        }
        match self
            .rpc
            .call::<String>("sendrawtransaction", json!([hex::encode(&signed.raw)]))
            .await
        {
            Ok(answer) if answer == signed.txid => {}
            Ok(answer) => {
                return Err(AdapterError::Unexpected(format!(
                    "sendrawtransaction answered txid {answer}, not {txid}"
                )))
            }
            Err(RpcError::Node { message, .. }) => return Err(AdapterError::Rejected(message)),
            Err(e) => return Err(e.into()),
        }
        let deadline = Instant::now() + self.config.acceptance_wait;
        let mut delay = Duration::from_millis(25);
        loop {
            match self.status(&signed.txid).await? {
                TxStatus::Pending | TxStatus::Confirmed { .. } => {
                    tracing::info!(%txid, "bitcoin transaction accepted by the node");
                    return Ok(());
                }
                TxStatus::Unknown if Instant::now() >= deadline => break,
                TxStatus::Unknown => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL_DELAY);
        }
        let reason = self.rejection_reason(&tx).await;
        tracing::warn!(%txid, %reason, "bitcoin transaction rejected");
        Err(AdapterError::Rejected(reason))
    }

    /// bcoin's `/tx/:hash` looks in the mempool first, then the transaction index. A confirmed
    /// answer counts only if its block is the best chain's block at that height.
    async fn status(&self, txid: &str) -> Result<TxStatus, AdapterError> {
        let id = Txid::from_str(txid)
            .map_err(|e| AdapterError::Invalid(format!("txid {txid:?}: {e}")))?;
        let Some(answer) = self.rest.get(&format!("/tx/{id}")).await? else {
            return Ok(TxStatus::Unknown);
        };
        let bad = |d: String| AdapterError::Unexpected(format!("/tx/{id}: {d}"));
        let meta: RestTxMeta = serde_json::from_value(answer).map_err(|e| bad(e.to_string()))?;
        let raw = hex::decode(&meta.hex).map_err(|e| bad(e.to_string()))?;
        let tx: Transaction = deserialize(&raw).map_err(|e| bad(e.to_string()))?;
        if tx.compute_txid() != id || meta.hash != id.to_string() {
            return Err(bad("answer is another transaction".into()));
        }
        let (Ok(height), Some(block)) = (u64::try_from(meta.height), meta.block) else {
            return Ok(TxStatus::Pending);
        };
        let block = BlockHash::from_str(&block).map_err(|e| bad(e.to_string()))?;
        let tip = self.tip_height().await?;
        if height > tip || self.block_hash(height).await? != block {
            tracing::warn!(%id, height, %block, "indexed in a block off the best chain");
            return Ok(TxStatus::Unknown);
        }
        Ok(TxStatus::Confirmed {
            confirmations: tip - height + 1,
            success: true,
        })
    }

    /// Σ of the unspent outputs in blocks (height ≥ 0) paying `addresses`, from bcoin's
    /// address index, each coin checked as for spending.
    async fn holdings(&self, addresses: &[FleetAddress]) -> Result<u128, AdapterError> {
        if addresses.is_empty() {
            return Ok(0);
        }
        let sources = addresses
            .iter()
            .map(|f| self.fleet_script(f).map(|s| (s, f)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .fleet_coins(&sources)
            .await?
            .into_iter()
            .filter(|(_, height, _)| *height >= 0)
            .map(|(c, _, _)| u128::from(c.value))
            .sum())
    }

    /// Every input of the payment, in the same order and from the same keys, and one output
    /// of everything they hold less the fee (the configured rate × the worst-case vsize) to
    /// `change`. Without replace-by-fee (see the module docs) it only gets into a block when
    /// the payment is not in the node's mempool; if the payment is, the payment is mined and
    /// [`ChainAdapter::spent_by`] says so.
    async fn build_cancellation(
        &self,
        payment: &UnsignedWithdrawal,
        change: &FleetAddress,
    ) -> Result<UnsignedWithdrawal, AdapterError> {
        if payment.chain != ExternalChain::Bitcoin {
            return Err(AdapterError::Invalid("not a Bitcoin withdrawal".into()));
        }
        let (paid, spent) = tx::decode_unsigned(&payment.unsigned_tx)?;
        if payment.inputs.len() != paid.input.len() {
            return Err(AdapterError::Invalid(format!(
                "{} inputs, {} signing inputs",
                paid.input.len(),
                payment.inputs.len()
            )));
        }
        let script = self.fleet_script(change)?;
        let total = spent
            .iter()
            .try_fold(0u64, |sum, o| sum.checked_add(o.value.to_sat()))
            .ok_or_else(|| AdapterError::Invalid("input amounts overflow".into()))?;
        let vsize = tx::estimate_vsize(paid.input.len(), &[script.len()]);
        let fee = vsize
            .checked_mul(self.config.fee_rate_sat_per_vb)
            .ok_or_else(|| AdapterError::Invalid("fee overflows".into()))?;
        let back = total
            .checked_sub(fee)
            .filter(|b| *b >= self.config.dust_limit)
            .ok_or_else(|| {
                AdapterError::InsufficientFunds(format!(
                    "the payment's inputs hold {total} sat; a cancellation fee of {fee} sat leaves less than the dust limit"
                ))
            })?;
        let unsigned = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: paid
                .input
                .iter()
                .map(|i| TxIn {
                    previous_output: i.previous_output,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: vec![TxOut {
                value: Amount::from_sat(back),
                script_pubkey: script,
            }],
        };
        let mut inputs = Vec::with_capacity(spent.len());
        for (index, (txout, signer)) in spent.iter().zip(&payment.inputs).enumerate() {
            if address::p2wpkh_script(&signer.public_key)? != txout.script_pubkey {
                return Err(AdapterError::Invalid(format!(
                    "input {index}: the signing key does not own the spent output"
                )));
            }
            let key_hash = address::pubkey_hash(&signer.public_key)?;
            let preimage = sighash::p2wpkh_preimage(&unsigned, index, txout, &key_hash)
                .ok_or_else(|| AdapterError::Invalid(format!("no input {index}")))?;
            inputs.push(SigningInput {
                path: signer.path.clone(),
                public_key: signer.public_key,
                digest: sighash::sha256d(&preimage),
                preimage,
                rule: SighashRule::DoubleSha256,
            });
        }
        tracing::info!(
            inputs = inputs.len(),
            total,
            fee,
            "bitcoin cancellation built"
        );
        Ok(UnsignedWithdrawal {
            chain: ExternalChain::Bitcoin,
            unsigned_tx: tx::encode_unsigned(&unsigned, &spent),
            inputs,
            sent: 0,
            fee: u128::from(fee),
            spends: payment.spends.clone(),
        })
    }

    /// By transaction id: a segwit transaction's id does not cover its witnesses, so the
    /// unsigned payment and cancellation already have the ids any signed form of them will
    /// have. Each is looked up with [`ChainAdapter::status`].
    async fn spent_by(
        &self,
        payment: &UnsignedWithdrawal,
        cancellation: &UnsignedWithdrawal,
        depth: u64,
    ) -> Result<SpentBy, AdapterError> {
        let final_at = |status: TxStatus| matches!(status, TxStatus::Confirmed { confirmations, .. } if confirmations >= depth);
        for (which, unsigned) in [
            (SpentBy::Payment, payment),
            (SpentBy::Cancellation, cancellation),
        ] {
            let (tx, _) = tx::decode_unsigned(&unsigned.unsigned_tx)?;
            let txid = tx.compute_txid().to_string();
            if final_at(self.status(&txid).await?) {
                return Ok(which);
            }
        }
        Ok(SpentBy::Undecided)
    }
}

/// The `txid:vout` ids of a transaction's outputs that pay `script` (for tests and tools).
pub fn outputs_paying(tx: &Transaction, script: &ScriptBuf) -> Vec<String> {
    let txid = tx.compute_txid();
    tx.output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.script_pubkey == *script)
        .map(|(vout, _)| format!("{txid}:{vout}"))
        .collect()
}

/// Decodes a raw transaction (for tests and tools).
pub fn decode_raw(raw: &[u8]) -> Result<Transaction, AdapterError> {
    deserialize(raw).map_err(|e| AdapterError::Invalid(format!("raw transaction: {e}")))
}

#[cfg(test)]
mod tests;
