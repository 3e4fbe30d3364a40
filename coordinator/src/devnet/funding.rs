//! Money on the dev chains: anvil's unlocked dev account 0 pays Ethereum deposits; on bcoin a
//! local "miner" key mines the blocks (segwit activation, then one block a second in the
//! background so confirmations keep coming) and pays Bitcoin deposits from its mature
//! coinbases with an ordinary P2WPKH transaction (a deposit that is itself a coinbase would
//! need 100 confirmations before a lock-out could spend it).

use std::time::Duration;

use k256::ecdsa::SigningKey;
use serde_json::json;

use super::DevnetError;
use crate::adapter::bitcoin::BitcoinAdapter;
use crate::adapter::jsonrpc::JsonRpcClient;
use crate::adapter::{ChainAdapter, FleetAddress, FleetSignature, WithdrawalPlan};
use crate::devnet::chain_nodes::ANVIL_DEV_ACCOUNT_0;

/// Pays `wei` from anvil's dev account 0 to `to`; returns the transaction hash.
pub async fn fund_eth(rpc: &JsonRpcClient, to: &str, wei: u128) -> Result<String, DevnetError> {
    let hash: String = rpc
        .call(
            "eth_sendTransaction",
            json!([{
                "from": ANVIL_DEV_ACCOUNT_0,
                "to": to,
                "value": format!("{wei:#x}"),
            }]),
        )
        .await
        .map_err(|e| DevnetError::Funding(format!("anvil eth_sendTransaction: {e}")))?;
    Ok(hash)
}

/// A key outside the fleet, with its address on one chain.
#[derive(Debug, Clone)]
pub struct OutsideKey {
    /// The secret key.
    pub key: SigningKey,
    /// Its public key and address (path empty: not a fleet key).
    pub address: FleetAddress,
}

impl OutsideKey {
    /// A fresh random key and its address as `adapter` renders it.
    pub fn random<A: ChainAdapter>(adapter: &A) -> Result<Self, DevnetError> {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let public_key = k256::PublicKey::from(key.verifying_key());
        let address = adapter.address(&public_key)?;
        Ok(Self {
            key,
            address: FleetAddress {
                path: Vec::new(),
                public_key,
                address,
            },
        })
    }
}

/// Mines `blocks` blocks to `to`.
pub async fn mine(adapter: &BitcoinAdapter, blocks: u64, to: &str) -> Result<(), DevnetError> {
    let _: Vec<String> = adapter
        .rpc()
        .call("generatetoaddress", json!([blocks, to]))
        .await
        .map_err(|e| DevnetError::Funding(format!("bcoin generatetoaddress: {e}")))?;
    Ok(())
}

async fn segwit_active(adapter: &BitcoinAdapter) -> Result<bool, DevnetError> {
    let info: serde_json::Value = adapter
        .rpc()
        .call("getblockchaininfo", json!([]))
        .await
        .map_err(|e| DevnetError::Funding(format!("bcoin getblockchaininfo: {e}")))?;
    Ok(info["bip9_softforks"]["segwit"]["status"] == "active")
}

/// bcoin regtest activates segwit by BIP9 signalling (three windows of 144 blocks): mines
/// to `miner` until it is active, plus one block. The miner's early coinbases are mature
/// afterwards.
pub async fn activate_segwit(adapter: &BitcoinAdapter, miner: &str) -> Result<(), DevnetError> {
    if segwit_active(adapter).await? {
        return Ok(());
    }
    mine(adapter, 431, miner).await?;
    for _ in 0..20 {
        if segwit_active(adapter).await? {
            return mine(adapter, 1, miner).await;
        }
        mine(adapter, 1, miner).await?;
    }
    Err(DevnetError::Funding(
        "segwit did not activate on bcoin regtest".into(),
    ))
}

/// The miner pays `amount` satoshi (fee included) to `to` from its coinbases; returns the
/// transaction id.
pub async fn pay_btc(
    adapter: &BitcoinAdapter,
    miner: &OutsideKey,
    to: &str,
    amount: u128,
) -> Result<String, DevnetError> {
    let plan = WithdrawalPlan {
        to: to.into(),
        amount,
        sources: vec![miner.address.clone()],
        change: Some(miner.address.clone()),
        reserved: Vec::new(),
    };
    let unsigned = adapter.build_withdrawal(&plan).await?;
    let mut signatures = Vec::new();
    for input in &unsigned.inputs {
        let (signature, recovery_id) = miner
            .key
            .sign_prehash_recoverable(&input.digest)
            .map_err(|e| DevnetError::Funding(format!("signing the miner's payment: {e}")))?;
        signatures.push(FleetSignature {
            signature,
            recovery_id,
        });
    }
    let signed = adapter.attach_signatures(&unsigned, &signatures)?;
    adapter.broadcast(&signed).await?;
    Ok(signed.txid)
}

/// Mines one block to `miner` every `interval` until dropped.
pub struct BackgroundMiner(tokio::task::JoinHandle<()>);

impl BackgroundMiner {
    /// Starts mining.
    pub fn start(adapter: BitcoinAdapter, miner: String, interval: Duration) -> Self {
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                if let Err(e) = mine(&adapter, 1, &miner).await {
                    tracing::warn!(error = %e, "background bcoin mining failed");
                }
            }
        }))
    }
}

impl Drop for BackgroundMiner {
    fn drop(&mut self) {
        self.0.abort();
    }
}
