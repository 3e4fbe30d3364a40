//! What the adapter reads from an Ethereum node, parsed strictly. Every answer is untrusted:
//! quantities must be canonical `0x` hex that fits, hashes exactly 32 bytes, addresses exactly
//! 20, and a field the adapter relies on must be there. Fields the adapter does not use are
//! ignored.

use alloy_primitives::{Address, B256, U256};
use serde::Deserialize;
use serde_json::Value;

use super::tx::parse_address;
use crate::adapter::jsonrpc::JsonRpcClient;
use crate::adapter::AdapterError;

fn unexpected(what: &str, text: &str, why: &str) -> AdapterError {
    AdapterError::Unexpected(format!("{what} {text:?}: {why}"))
}

/// The hex digits of an Ethereum JSON-RPC quantity: `0x` then at least one digit, no leading
/// zero except for `0x0`, at most `max_digits`.
fn quantity_digits<'a>(
    what: &str,
    text: &'a str,
    max_digits: usize,
) -> Result<&'a str, AdapterError> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| unexpected(what, text, "quantity without 0x"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unexpected(what, text, "not a hex quantity"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(unexpected(what, text, "quantity with a leading zero"));
    }
    if digits.len() > max_digits {
        return Err(unexpected(what, text, "quantity too large"));
    }
    Ok(digits)
}

/// A quantity that must fit in 64 bits (heights, nonces, chain ids, gas).
pub fn quantity_u64(what: &str, text: &str) -> Result<u64, AdapterError> {
    let digits = quantity_digits(what, text, 16)?;
    u64::from_str_radix(digits, 16).map_err(|e| unexpected(what, text, &e.to_string()))
}

/// A quantity that must fit in 128 bits (fees per gas).
pub fn quantity_u128(what: &str, text: &str) -> Result<u128, AdapterError> {
    let digits = quantity_digits(what, text, 32)?;
    u128::from_str_radix(digits, 16).map_err(|e| unexpected(what, text, &e.to_string()))
}

/// A 256-bit quantity (values and balances in wei).
pub fn quantity_u256(what: &str, text: &str) -> Result<U256, AdapterError> {
    let digits = quantity_digits(what, text, 64)?;
    U256::from_str_radix(digits, 16).map_err(|e| unexpected(what, text, &e.to_string()))
}

/// A 32-byte hash: `0x` and exactly 64 hex digits.
pub fn hash32(what: &str, text: &str) -> Result<B256, AdapterError> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| unexpected(what, text, "hash without 0x"))?;
    if digits.len() != 64 {
        return Err(unexpected(what, text, "hash is not 32 bytes"));
    }
    let mut out = [0u8; 32];
    alloy_primitives::hex::decode_to_slice(digits, &mut out)
        .map_err(|e| unexpected(what, text, &e.to_string()))?;
    Ok(B256::from(out))
}

/// An address as a node writes it (lowercase or checksummed).
fn node_address(what: &str, text: &str) -> Result<Address, AdapterError> {
    parse_address(text).map_err(|e| unexpected(what, text, &e.to_string()))
}

/// A block header and, when asked for, its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Height.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// EIP-1559 base fee (absent before London).
    pub base_fee_per_gas: Option<u128>,
    /// The transactions (empty when fetched without them).
    pub transactions: Vec<BlockTx>,
}

/// The parts of a transaction in a block that deposits need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockTx {
    /// Transaction hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// The sender's account nonce it used.
    pub nonce: u64,
    /// Recipient (`None` for contract creation).
    pub to: Option<Address>,
    /// Wei moved by the transaction itself.
    pub value: U256,
}

/// The parts of a receipt that deposits and status need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub transaction_hash: B256,
    /// Block that holds it.
    pub block_hash: B256,
    /// Height of that block.
    pub block_number: u64,
    /// `status` was 0x1 (success), post-Byzantium.
    pub success: bool,
}

/// A transaction as `eth_getTransactionByHash` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownTx {
    /// The block holding it, `None` while pending.
    pub block_number: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBlock {
    number: String,
    hash: String,
    base_fee_per_gas: Option<String>,
    #[serde(default)]
    transactions: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBlockTx {
    hash: String,
    from: String,
    nonce: String,
    to: Option<String>,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReceipt {
    transaction_hash: String,
    block_hash: String,
    block_number: String,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKnownTx {
    hash: String,
    block_number: Option<String>,
}

impl Block {
    fn parse(raw: RawBlock, full: bool) -> Result<Self, AdapterError> {
        let number = quantity_u64("block number", &raw.number)?;
        let hash = hash32("block hash", &raw.hash)?;
        let base_fee_per_gas = raw
            .base_fee_per_gas
            .as_deref()
            .map(|f| quantity_u128("baseFeePerGas", f))
            .transpose()?;
        let transactions = if full {
            raw.transactions
                .into_iter()
                .map(BlockTx::parse)
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            number,
            hash,
            base_fee_per_gas,
            transactions,
        })
    }
}

impl BlockTx {
    fn parse(value: Value) -> Result<Self, AdapterError> {
        let raw: RawBlockTx = serde_json::from_value(value).map_err(|e| {
            AdapterError::Unexpected(format!("transaction in a block (full transactions): {e}"))
        })?;
        Ok(Self {
            hash: hash32("transaction hash", &raw.hash)?,
            from: node_address("transaction from", &raw.from)?,
            nonce: quantity_u64("transaction nonce", &raw.nonce)?,
            to: raw
                .to
                .as_deref()
                .map(|t| node_address("transaction to", t))
                .transpose()?,
            value: quantity_u256("transaction value", &raw.value)?,
        })
    }
}

/// Which state a call reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The best chain's latest block.
    Latest,
    /// The latest block plus the node's pool.
    Pending,
}

impl State {
    fn tag(self) -> &'static str {
        match self {
            State::Latest => "latest",
            State::Pending => "pending",
        }
    }
}

/// Typed calls to the node.
#[derive(Debug)]
pub struct Node {
    rpc: JsonRpcClient,
}

impl Node {
    /// Wraps a JSON-RPC client.
    pub fn new(rpc: JsonRpcClient) -> Self {
        Self { rpc }
    }

    async fn string(&self, method: &str, params: Value) -> Result<String, AdapterError> {
        Ok(self.rpc.call::<String>(method, params).await?)
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, AdapterError> {
        let id = self.string("eth_chainId", Value::Array(vec![])).await?;
        quantity_u64("chain id", &id)
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, AdapterError> {
        let n = self.string("eth_blockNumber", Value::Array(vec![])).await?;
        quantity_u64("block number", &n)
    }

    /// `eth_getBlockByNumber` at `height` (or `"latest"` when `None`); `None` when the node
    /// has no such block. With `full`, the transactions are parsed too. The block's number
    /// must be the one asked for.
    pub async fn block(
        &self,
        height: Option<u64>,
        full: bool,
    ) -> Result<Option<Block>, AdapterError> {
        let tag = match height {
            Some(h) => format!("{h:#x}"),
            None => "latest".to_owned(),
        };
        let raw: Option<RawBlock> = self
            .rpc
            .call("eth_getBlockByNumber", serde_json::json!([tag, full]))
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let block = Block::parse(raw, full)?;
        if let Some(h) = height {
            if block.number != h {
                return Err(AdapterError::Unexpected(format!(
                    "asked for block {h}, the node answered block {}",
                    block.number
                )));
            }
        }
        Ok(Some(block))
    }

    /// `eth_getBalance(address, state)`: the balance in the latest block, or counting the
    /// node's pool.
    pub async fn balance(&self, address: &Address, state: State) -> Result<U256, AdapterError> {
        let b = self
            .string(
                "eth_getBalance",
                serde_json::json!([format!("{address:#x}"), state.tag()]),
            )
            .await?;
        quantity_u256("balance", &b)
    }

    /// `eth_getTransactionCount(address, "pending")`: the next nonce counting the node's pool.
    pub async fn pending_nonce(&self, address: &Address) -> Result<u64, AdapterError> {
        let n = self
            .string(
                "eth_getTransactionCount",
                serde_json::json!([format!("{address:#x}"), "pending"]),
            )
            .await?;
        quantity_u64("transaction count", &n)
    }

    /// `eth_getTransactionCount(address, height)`: how many transactions `address` had sent
    /// in the best chain up to and including block `height` (needs the state of that block).
    pub async fn nonce_at(&self, address: &Address, height: u64) -> Result<u64, AdapterError> {
        let n = self
            .string(
                "eth_getTransactionCount",
                serde_json::json!([format!("{address:#x}"), format!("{height:#x}")]),
            )
            .await?;
        quantity_u64("transaction count", &n)
    }

    /// `eth_gasPrice`.
    pub async fn gas_price(&self) -> Result<u128, AdapterError> {
        let p = self.string("eth_gasPrice", Value::Array(vec![])).await?;
        quantity_u128("gas price", &p)
    }

    /// `eth_getTransactionReceipt`; `None` when the node has none. The receipt must be for
    /// `hash`.
    pub async fn receipt(&self, hash: &B256) -> Result<Option<Receipt>, AdapterError> {
        let raw: Option<RawReceipt> = self
            .rpc
            .call(
                "eth_getTransactionReceipt",
                serde_json::json!([format!("{hash:#x}")]),
            )
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let receipt = Receipt {
            transaction_hash: hash32("receipt transactionHash", &raw.transaction_hash)?,
            block_hash: hash32("receipt blockHash", &raw.block_hash)?,
            block_number: quantity_u64("receipt blockNumber", &raw.block_number)?,
            success: match raw.status.as_deref() {
                Some("0x1") => true,
                Some("0x0") => false,
                Some(other) => return Err(unexpected("receipt status", other, "not 0x0 or 0x1")),
                None => {
                    return Err(AdapterError::Unexpected(
                        "receipt without status (pre-Byzantium chains are not supported)".into(),
                    ))
                }
            },
        };
        if receipt.transaction_hash != *hash {
            return Err(AdapterError::Unexpected(format!(
                "asked for the receipt of {hash:#x}, got one for {:#x}",
                receipt.transaction_hash
            )));
        }
        Ok(Some(receipt))
    }

    /// `eth_getTransactionByHash`; `None` when the node does not know it.
    pub async fn transaction(&self, hash: &B256) -> Result<Option<KnownTx>, AdapterError> {
        let raw: Option<RawKnownTx> = self
            .rpc
            .call(
                "eth_getTransactionByHash",
                serde_json::json!([format!("{hash:#x}")]),
            )
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        if hash32("transaction hash", &raw.hash)? != *hash {
            return Err(AdapterError::Unexpected(format!(
                "asked for transaction {hash:#x}, got {}",
                raw.hash
            )));
        }
        Ok(Some(KnownTx {
            block_number: raw
                .block_number
                .as_deref()
                .map(|n| quantity_u64("transaction blockNumber", n))
                .transpose()?,
        }))
    }

    /// `eth_sendRawTransaction`; returns the hash the node reports.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256, AdapterError> {
        let hex = format!("0x{}", alloy_primitives::hex::encode(raw));
        let h = self
            .string("eth_sendRawTransaction", serde_json::json!([hex]))
            .await?;
        hash32("transaction hash", &h)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(quantity_u64("x", "0x0").unwrap(), 0);
        assert_eq!(quantity_u64("x", "0x7a69").unwrap(), 31337);
        assert_eq!(quantity_u64("x", "0xffffffffffffffff").unwrap(), u64::MAX);
        for bad in [
            "",
            "0x",
            "7a69",
            "0x07a69",
            "0xg",
            "0x10000000000000000",
            " 0x1",
            "0X1",
        ] {
            assert!(quantity_u64("x", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            quantity_u128("x", "0xffffffffffffffffffffffffffffffff").unwrap(),
            u128::MAX
        );
        assert!(quantity_u128("x", "0x100000000000000000000000000000000").is_err());
        assert_eq!(
            quantity_u256("x", "0xde0b6b3a7640000").unwrap(),
            U256::from(1_000_000_000_000_000_000u128)
        );
        assert!(quantity_u256("x", &format!("0x1{}", "0".repeat(64))).is_err());
    }

    #[test]
    fn hashes_are_32_bytes() {
        let h = format!("0x{}", "ab".repeat(32));
        assert_eq!(hash32("h", &h).unwrap(), B256::repeat_byte(0xab));
        assert!(hash32("h", &h[..65]).is_err());
        assert!(hash32("h", &format!("{h}00")).is_err());
        assert!(hash32("h", &"ab".repeat(32)).is_err());
        assert!(hash32("h", &format!("0x{}", "zz".repeat(32))).is_err());
    }

    #[test]
    fn blocks_parse_and_refuse_bad_transactions() {
        let good = serde_json::json!({
            "number": "0x4", "hash": format!("0x{}", "11".repeat(32)), "baseFeePerGas": "0x3b9aca00",
            "transactions": [
                { "hash": format!("0x{}", "22".repeat(32)), "from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "nonce": "0x7", "to": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "value": "0x1000" },
                { "hash": format!("0x{}", "33".repeat(32)), "from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "nonce": "0x8", "to": null, "value": "0x0" }
            ]
        });
        let block = Block::parse(serde_json::from_value(good.clone()).unwrap(), true).unwrap();
        assert_eq!(block.number, 4);
        assert_eq!(block.base_fee_per_gas, Some(1_000_000_000));
        assert_eq!(block.transactions.len(), 2);
        assert_eq!(block.transactions[0].value, U256::from(0x1000));
        assert_eq!(block.transactions[1].to, None);
        assert_eq!(block.transactions[1].nonce, 8);

        let mut bad = good.clone();
        bad["transactions"][0]["value"] = "1000".into();
        assert!(Block::parse(serde_json::from_value(bad).unwrap(), true).is_err());
        let mut bad = good.clone();
        bad["transactions"][0] = format!("0x{}", "22".repeat(32)).into();
        assert!(Block::parse(serde_json::from_value(bad).unwrap(), true).is_err());
        let mut bad = good.clone();
        bad["transactions"][0]["nonce"] = "0x07".into();
        assert!(Block::parse(serde_json::from_value(bad).unwrap(), true).is_err());
        let mut bad = good;
        bad["transactions"][0]["to"] = "0x7099".into();
        assert!(Block::parse(serde_json::from_value(bad).unwrap(), true).is_err());
    }
}
