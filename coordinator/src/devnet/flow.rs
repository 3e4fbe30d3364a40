//! The scripted flow over the public API, as a user and the genesis admin would drive it:
//! key generation (the coordinator runs the DKG on the signers), deposit addresses, funding
//! from the dev chains, credits, one lock-out per chain to a fresh external address, the
//! payouts confirmed and the mapped amounts burned. Each step checks what it expects and
//! fails with a readable error otherwise.

use std::time::{Duration, Instant};

use custody_proto::coordinator::v1 as pb;
use k256::ecdsa::SigningKey;

use super::funding::{self, OutsideKey};
use super::pki::FleetFiles;
use super::processes::Processes;
use super::status::{self, fmt_amount, fmt_external};
use super::{DevnetError, DevnetOptions};
use crate::adapter::bitcoin::BitcoinAdapter;
use crate::adapter::ethereum::EthereumAdapter;
use crate::adapter::jsonrpc::JsonRpcClient;
use crate::adapter::{ChainAdapter, FleetAddress, TxStatus};
use crate::api::convert::asset_to_pb;
use crate::chain::{Address, Asset, TxBody};
use crate::client::ApiClient;
use crate::engine::addresses::{change_path, fleet_address};
use crate::fleet::FleetKey;

/// How long the DKG may take (5 signers with fixture primes take well under a minute).
const DKG_LIMIT: Duration = Duration::from_secs(600);
/// How long a deposit may take to be credited.
const CREDIT_LIMIT: Duration = Duration::from_secs(300);
/// How long a lock-out may take to be burned.
const LOCK_OUT_LIMIT: Duration = Duration::from_secs(600);
/// How often waits poll.
const POLL: Duration = Duration::from_millis(500);

/// What the flow works with.
pub struct Env<'a> {
    /// The coordinator's API (client certificate).
    pub api: ApiClient,
    /// The Ethereum adapter on anvil.
    pub eth: EthereumAdapter,
    /// The Bitcoin adapter on bcoin.
    pub btc: BitcoinAdapter,
    /// anvil's JSON-RPC (dev account 0 funds deposits).
    pub eth_rpc: JsonRpcClient,
    /// The bcoin miner's key (funds deposits).
    pub miner: OutsideKey,
    /// The devnet's files and accounts.
    pub files: &'a FleetFiles,
    /// The options.
    pub options: &'a DevnetOptions,
    /// The child processes, checked while waiting.
    pub running_check: &'a mut Processes,
}

/// One finished lock-out.
#[derive(Debug, Clone)]
pub struct LockOutDone {
    /// The asset.
    pub asset: Asset,
    /// Its id.
    pub id: [u8; 32],
    /// The external destination.
    pub destination: String,
    /// The payout transaction on the external chain.
    pub txid: String,
    /// What the destination received.
    pub received: u128,
}

/// What the flow did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The user account.
    pub user: Address,
    /// The fleet key.
    pub fleet_key: FleetKey,
    /// The user's deposit addresses (ETH, BTC).
    pub deposit_addresses: Vec<(Asset, String)>,
    /// The lock-outs.
    pub lock_outs: Vec<LockOutDone>,
}

impl Env<'_> {
    /// Between two polls: fails if a child died or `limit` has passed since `started`.
    pub(super) async fn pause(
        &mut self,
        started: Instant,
        limit: Duration,
        what: &str,
    ) -> Result<(), DevnetError> {
        self.running_check.check()?;
        if started.elapsed() >= limit {
            return Err(DevnetError::Timeout {
                what: what.to_owned(),
                after: limit,
            });
        }
        tokio::time::sleep(POLL).await;
        Ok(())
    }

    async fn submit(
        &mut self,
        key: &SigningKey,
        body: TxBody,
    ) -> Result<pb::SubmitTransactionResponse, DevnetError> {
        let (tx, _) = self.api.sign(key, body).await?;
        Ok(self.api.submit_and_wait(tx).await?)
    }

    async fn balance(&mut self, who: &Address, asset: Asset) -> Result<u128, DevnetError> {
        let account = self.api.account(who).await?;
        let wanted = asset_to_pb(asset);
        match account.balances.iter().find(|b| b.asset == wanted) {
            Some(b) => parse_amount(&b.amount),
            None => Ok(0),
        }
    }

    fn address_of(
        &self,
        key: &FleetKey,
        asset: Asset,
        path: &[u32],
    ) -> Result<FleetAddress, DevnetError> {
        let fa = match asset {
            Asset::METH => fleet_address(key, &self.eth, path),
            Asset::MBTC => fleet_address(key, &self.btc, path),
        };
        fa.map_err(|e| DevnetError::Flow(format!("deriving the {asset} deposit address: {e}")))
    }

    async fn tip(&self, asset: Asset) -> Result<u64, DevnetError> {
        Ok(match asset {
            Asset::METH => self.eth.tip_height().await?,
            Asset::MBTC => self.btc.tip_height().await?,
        })
    }

    /// Payments to `watched` on the chain of `asset` since `from`.
    async fn payments(
        &self,
        asset: Asset,
        watched: &FleetAddress,
        from: u64,
    ) -> Result<Vec<crate::adapter::ObservedDeposit>, DevnetError> {
        let tip = self.tip(asset).await?;
        let watched = std::slice::from_ref(watched);
        Ok(match asset {
            Asset::METH => self.eth.deposits(watched, from, tip).await?,
            Asset::MBTC => self.btc.deposits(watched, from, tip).await?,
        })
    }
}

fn parse_amount(text: &str) -> Result<u128, DevnetError> {
    text.parse()
        .map_err(|_| DevnetError::Flow(format!("the API sent the amount {text:?}")))
}

fn chain_name(asset: Asset) -> &'static str {
    match asset {
        Asset::METH => "Ethereum",
        Asset::MBTC => "Bitcoin",
    }
}

/// The fleet key as `GetStatus` reports it.
fn fleet_key_from(k: &pb::FleetKey) -> Result<FleetKey, DevnetError> {
    FleetKey::from_wire(
        &k.key_id,
        &k.public_key,
        &k.chain_code,
        k.threshold,
        &k.holders,
        0,
    )
    .map_err(|why| DevnetError::Flow(format!("the recorded fleet key: {why}")))
}

/// Runs the flow; prints each step.
pub async fn run(env: &mut Env<'_>) -> Result<Summary, DevnetError> {
    let files = env.files;
    let user = Address::of_key(files.user.verifying_key());
    let admin = Address::of_key(files.admin.verifying_key());
    println!();
    println!("== key generation");
    let r = env.submit(&files.admin, TxBody::RequestKeygen).await?;
    println!(
        "admin {admin} requested key generation (block {})",
        r.height
    );
    let fleet_key = keygen(env).await?;

    println!();
    println!("== lock-in");
    println!("user account {user}");
    let mut deposit_addresses = Vec::new();
    let mut watched = Vec::new();
    for asset in Asset::ALL {
        let r = env
            .submit(&files.user, TxBody::RequestDepositAddress { asset })
            .await?;
        let issued = env.api.deposit_addresses(&user).await?;
        let Some(d) = issued.iter().rev().find(|d| d.asset == asset_to_pb(asset)) else {
            return Err(DevnetError::Flow(format!(
                "block {} issued no {asset} deposit address",
                r.height
            )));
        };
        let fa = env.address_of(&fleet_key, asset, &d.path)?;
        // The API renders the external address too; both derivations must agree.
        if !d.address.is_empty() && d.address != fa.address {
            return Err(DevnetError::Flow(format!(
                "the API shows {asset} deposit address {} but the fleet key gives {}",
                d.address, fa.address
            )));
        }
        let path: Vec<String> = d.path.iter().map(u32::to_string).collect();
        println!(
            "{asset} deposit address (block {}, path m/{}): {} on {}",
            d.height,
            path.join("/"),
            fa.address,
            chain_name(asset)
        );
        deposit_addresses.push((asset, fa.address.clone()));
        watched.push((asset, fa));
    }

    // funding
    let mut from = Vec::new();
    for (asset, fa) in &watched {
        let height = env.tip(*asset).await?;
        let txid = match asset {
            Asset::METH => {
                funding::fund_eth(&env.eth_rpc, &fa.address, env.options.eth_deposit_wei).await?
            }
            Asset::MBTC => {
                funding::pay_btc(
                    &env.btc,
                    &env.miner,
                    &fa.address,
                    env.options.btc_deposit_sat,
                )
                .await?
            }
        };
        let (who, amount) = match asset {
            Asset::METH => ("anvil dev account 0", env.options.eth_deposit_wei),
            Asset::MBTC => ("the bcoin miner", env.options.btc_deposit_sat),
        };
        println!(
            "{who} pays {} to it: transaction {txid}",
            fmt_external(*asset, amount)
        );
        from.push(height);
    }

    // credits
    let started = Instant::now();
    let spinner = status::spinner("waiting for the deposits to be credited");
    let mut credited = [None, None];
    while credited.iter().any(Option::is_none) {
        let mut parts = Vec::new();
        for (i, (asset, fa)) in watched.iter().enumerate() {
            if credited[i].is_some() {
                continue;
            }
            let balance = env.balance(&user, *asset).await?;
            if balance > 0 {
                credited[i] = Some(balance);
                status::say(
                    &spinner,
                    format!(
                        "{asset} credited: {} to {user} at depth {} ({:.0} s after funding)",
                        fmt_amount(*asset, balance),
                        env.options.confirmations,
                        started.elapsed().as_secs_f64()
                    ),
                );
                continue;
            }
            let seen = env.payments(*asset, fa, from[i]).await?;
            let confs = seen.iter().map(|d| d.confirmations).max();
            parts.push(match confs {
                Some(c) => format!("{asset}: {c}/{} confirmations", env.options.confirmations),
                None => format!("{asset}: not yet in a block"),
            });
        }
        spinner.set_message(format!(
            "waiting for the deposits to be credited: {}",
            parts.join(", ")
        ));
        if credited.iter().any(Option::is_none) {
            env.pause(started, CREDIT_LIMIT, "the deposits to be credited")
                .await?;
        }
    }
    spinner.finish_and_clear();

    println!();
    println!("== lock-out");
    let mut pending = Vec::new();
    for (i, (asset, _)) in watched.iter().enumerate() {
        let amount = credited[i].unwrap_or_default();
        let destination = match asset {
            Asset::METH => OutsideKey::random(&env.eth)?,
            Asset::MBTC => OutsideKey::random(&env.btc)?,
        };
        let height = env.tip(*asset).await?;
        let r = env
            .submit(
                &files.user,
                TxBody::RequestLockOut {
                    asset: *asset,
                    to_external: destination.address.address.clone(),
                    amount,
                },
            )
            .await?;
        let id: [u8; 32] = r.lock_out_id.as_slice().try_into().map_err(|_| {
            DevnetError::Flow("the API answered a lock-out without a lock-out id".into())
        })?;
        println!(
            "lock-out {} of {} to a fresh {} address {} (block {})",
            hex::encode(id),
            fmt_amount(*asset, amount),
            chain_name(*asset),
            destination.address.address,
            r.height
        );
        pending.push((*asset, id, destination, height));
    }

    let started = Instant::now();
    let spinner = status::spinner("waiting for the lock-outs");
    let mut lock_outs: Vec<Option<LockOutDone>> = vec![None; pending.len()];
    while lock_outs.iter().any(Option::is_none) {
        let mut parts = Vec::new();
        for (i, (asset, id, destination, from)) in pending.iter().enumerate() {
            if lock_outs[i].is_some() {
                continue;
            }
            let l = env.api.lock_out(id).await?;
            match pb::LockOutStage::try_from(l.stage) {
                Ok(pb::LockOutStage::Burned) => {
                    let done = payout(env, *asset, *id, destination, *from).await?;
                    status::say(&spinner, format!(
                        "{asset} lock-out burned after {:.0} s; {} payout {} confirmed ({} received at {})",
                        started.elapsed().as_secs_f64(),
                        chain_name(*asset),
                        done.txid,
                        fmt_external(*asset, done.received),
                        done.destination
                    ));
                    lock_outs[i] = Some(done);
                }
                Ok(pb::LockOutStage::Refunded | pb::LockOutStage::Cancelled) => {
                    return Err(DevnetError::Flow(format!(
                        "the {asset} lock-out {} was refunded (see the coordinator log)",
                        hex::encode(id)
                    )))
                }
                Ok(pb::LockOutStage::OrderCommitted) => {
                    parts.push(format!("{asset}: order committed, signing and paying out"))
                }
                Ok(pb::LockOutStage::Cancelling) => parts.push(format!(
                    "{asset}: its order expired unsigned, cancelling on the external chain"
                )),
                _ => parts.push(format!("{asset}: locked, waiting for its order")),
            }
        }
        spinner.set_message(format!("waiting for the lock-outs: {}", parts.join(", ")));
        if lock_outs.iter().any(Option::is_none) {
            env.pause(
                started,
                LOCK_OUT_LIMIT,
                "the lock-outs to be paid out and burned",
            )
            .await?;
        }
    }
    spinner.finish_and_clear();
    let lock_outs: Vec<LockOutDone> = lock_outs.into_iter().flatten().collect();

    println!();
    println!("== result");
    let mut problems = Vec::new();
    let status = env.api.status().await?;
    for asset in Asset::ALL {
        let balance = env.balance(&user, asset).await?;
        let totals = status.totals.iter().find(|t| t.asset == asset_to_pb(asset));
        let (supply, credited, burned) = match totals {
            Some(t) => (
                parse_amount(&t.supply)?,
                parse_amount(&t.credited)?,
                parse_amount(&t.burned)?,
            ),
            None => (0, 0, 0),
        };
        println!(
            "{asset}: user balance {}, credited {}, burned {}, supply {}",
            fmt_amount(asset, balance),
            fmt_amount(asset, credited),
            fmt_amount(asset, burned),
            fmt_amount(asset, supply)
        );
        if balance != 0 || supply != 0 || credited == 0 || burned != credited {
            problems.push(format!("{asset} is not fully burned"));
        }
        // What backs the supply on the external chain: the deposit address and the change
        // address of the fleet.
        let mut fleet: Vec<FleetAddress> = watched
            .iter()
            .filter(|(a, _)| *a == asset)
            .map(|(_, fa)| fa.clone())
            .collect();
        fleet.push(env.address_of(&fleet_key, asset, &change_path(asset))?);
        let held = match asset {
            Asset::METH => env.eth.holdings(&fleet).await?,
            Asset::MBTC => env.btc.holdings(&fleet).await?,
        };
        println!(
            "  {} holds {} at the fleet's addresses for a supply of {} ({})",
            chain_name(asset),
            fmt_external(asset, held),
            fmt_amount(asset, supply),
            match asset {
                Asset::METH => "the rest of the fee maxima the payouts did not use",
                Asset::MBTC => "exact, less any change below the dust limit left to miners",
            }
        );
    }
    if !problems.is_empty() {
        return Err(DevnetError::Flow(problems.join("; ")));
    }
    println!("devnet: lock-in and lock-out done on both chains; mapped balances burned");
    Ok(Summary {
        user,
        fleet_key,
        deposit_addresses,
        lock_outs,
    })
}

/// Waits for the fleet key on chain (the coordinator runs the DKG for the request).
async fn keygen(env: &mut Env<'_>) -> Result<FleetKey, DevnetError> {
    let started = Instant::now();
    let spinner = status::spinner(&format!(
        "DKG on {} signers, threshold {} (GJKR + CGGMP24 aux info)",
        env.options.signers, env.options.threshold
    ));
    loop {
        let s = env.api.status().await?;
        if let Some(k) = &s.fleet_key {
            spinner.finish_and_clear();
            let key = fleet_key_from(k)?;
            println!(
                "DKG done in {:.0} s: fleet key {} ({}-of-{}, key id {}), recorded in block {}",
                started.elapsed().as_secs_f64(),
                hex::encode(&k.public_key),
                k.threshold,
                k.holders.len(),
                hex::encode(&k.key_id),
                k.height
            );
            return Ok(key);
        }
        env.pause(started, DKG_LIMIT, "the DKG (fleet key on chain)")
            .await?;
    }
}

/// Finds the payout to `destination` on the external chain and checks it is confirmed.
async fn payout(
    env: &mut Env<'_>,
    asset: Asset,
    id: [u8; 32],
    destination: &OutsideKey,
    from: u64,
) -> Result<LockOutDone, DevnetError> {
    let seen = env.payments(asset, &destination.address, from).await?;
    let Some(p) = seen.first() else {
        return Err(DevnetError::Flow(format!(
            "the {asset} lock-out {} is burned but {} shows no payment to {}",
            hex::encode(id),
            chain_name(asset),
            destination.address.address
        )));
    };
    // Ethereum names a payment by its transaction hash, Bitcoin by txid:vout.
    let txid = p
        .deposit_id
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let status = match asset {
        Asset::METH => env.eth.status(&txid).await?,
        Asset::MBTC => env.btc.status(&txid).await?,
    };
    match status {
        TxStatus::Confirmed {
            success: true,
            confirmations,
        } if confirmations >= 1 => Ok(LockOutDone {
            asset,
            id,
            destination: destination.address.address.clone(),
            txid,
            received: seen.iter().map(|d| d.amount).sum(),
        }),
        other => Err(DevnetError::Flow(format!(
            "the {asset} payout {txid} is {other:?}, not confirmed"
        ))),
    }
}
