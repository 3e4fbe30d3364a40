//! The contract engine on Bitcoin, against a real bcoin 1.0.2 regtest node and a real chain
//! in sled: two deposits credited at depth z, a lock-out that needs both coins (two inputs,
//! two signatures, change to the fleet's change path) paid and burned, and the change output
//! never credited as a deposit; then a lock-out whose signing started and whose order expired
//! unsigned is cancelled on bcoin (its inputs spent back to the change address) and refunded
//! less the cancellation's fee. The signer fleet is stood in for by
//! `support::local_fleet::LocalFleet` (see there); the production `FleetSigner` is exercised by
//! the devnet / end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bcoin_node;
mod common;
mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use bcoin_node::{activate_segwit, mine, miner_pays, outside, BcoinNode};
use common::{signed, user, CHAIN_ID};
use coordinator::adapter::{ChainAdapter, FleetSignature};
use coordinator::chain::{lockout_id, Asset, BlockTx, Chain, LockOutStatus, SoloConsensus, TxBody};
use coordinator::engine::addresses::{change_path, deposit_addresses, fleet_address};
use coordinator::engine::keys::record_fleet_key;
use coordinator::engine::{
    DepositWatcher, EngineConfig, Journal, LockOutSaga, OrderSigner, SagaStatus, SignError,
};
use coordinator::fleet::{FleetKey, SignJob};
use support::local_fleet::LocalFleet;

const BTC: u128 = 100_000_000;

/// Added to every block's time once a test needs blocks past an order's `not_after`.
static TIME_SHIFT_MS: AtomicU64 = AtomicU64::new(0);

/// What every fleet address of mBTC (each deposit address and the change address) holds in
/// bcoin's blocks, and the mapped supply.
async fn held_and_supply(
    chain: &Chain<SoloConsensus>,
    key: &coordinator::fleet::FleetKey,
    a: &coordinator::adapter::bitcoin::BitcoinAdapter,
) -> (u128, u128) {
    let mut fleet: Vec<_> = deposit_addresses(chain, key, a, Asset::MBTC)
        .unwrap()
        .into_values()
        .map(|(fa, _)| fa)
        .collect();
    fleet.push(fleet_address(key, a, &change_path(Asset::MBTC)).unwrap());
    (
        a.holdings(&fleet).await.unwrap(),
        chain.totals(Asset::MBTC).unwrap().supply,
    )
}

fn block(chain: &mut Chain<SoloConsensus>, txs: &[BlockTx]) {
    let time = 1_000 * (chain.height() + 1) + TIME_SHIFT_MS.load(Ordering::SeqCst);
    let outcome = chain.produce_block(txs, time).unwrap();
    for (i, r) in outcome.results.iter().enumerate() {
        assert!(r.is_ok(), "transaction {i} refused: {r:?}");
    }
    chain.invariant_check().unwrap();
}

#[tokio::test]
async fn btc_deposits_credited_lock_out_with_change_paid_and_burned_change_not_credited() {
    let node = BcoinNode::start().await;
    let a = node.adapter();
    let miner = outside(&a, 0x42);
    let dest = outside(&a, 0x43);
    activate_segwit(&a, &miner.fleet.address).await;

    let dir = tempfile::tempdir().unwrap();
    let mut chain = common::open(&dir.path().join("chain"));
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let fleet = LocalFleet::new(chain.validator_set().clone(), CHAIN_ID);
    block(&mut chain, &[signed(&user(100), 0, TxBody::RequestKeygen)]);
    block(&mut chain, &[record_fleet_key(0, &fleet.key).unwrap()]);
    let config = EngineConfig {
        depth: EngineConfig::depth_for(0.1, 1e-3).unwrap(),
        reorg_margin: 12,
        start_height: a.tip_height().await.unwrap(),
        max_scan_blocks: 1000,
        fleet_id: "test-fleet".into(),
        order_ttl_secs: 600,
        commit_timeout_blocks: 50,
    };
    let watcher = DepositWatcher {
        asset: Asset::MBTC,
        adapter: &a,
        key: &fleet.key,
        journal: &journal,
        config: &config,
    };
    let saga = LockOutSaga {
        asset: Asset::MBTC,
        adapter: &a,
        signer: &fleet,
        key: &fleet.key,
        journal: &journal,
        config: &config,
    };

    // Two users, one deposit address each, paid 1 BTC and 0.8 BTC.
    let (kim, leo) = (user(11), user(12));
    let mut addresses = Vec::new();
    for u in [&kim, &leo] {
        block(
            &mut chain,
            &[signed(
                u,
                0,
                TxBody::RequestDepositAddress { asset: Asset::MBTC },
            )],
        );
        let issued = chain.deposit_addresses(&u.address).unwrap();
        let path: Vec<u32> = issued[0].path.indices().iter().map(|i| i.get()).collect();
        addresses.push(fleet_address(&fleet.key, &a, &path).unwrap().address);
    }
    let spent = miner_pays(&a, &miner, &addresses[0], BTC, vec![]).await;
    miner_pays(&a, &miner, &addresses[1], 8 * BTC / 10, spent).await;
    mine(&a, 1, &miner.fleet.address).await;
    for _ in 1..6 {
        assert!(watcher.scan(&chain).await.unwrap().is_empty(), "below z");
        mine(&a, 1, &miner.fleet.address).await;
    }
    let credits = watcher.scan(&chain).await.unwrap();
    assert_eq!(credits.len(), 2, "{credits:?}");
    block(&mut chain, &credits);
    let kim_mbtc = chain.balance(&kim.address, Asset::MBTC).unwrap();
    let leo_mbtc = chain.balance(&leo.address, Asset::MBTC).unwrap();
    assert!(
        kim_mbtc > BTC - BTC / 1000 && kim_mbtc < BTC,
        "fee paid by the miner's send"
    );
    assert!(leo_mbtc > 0);
    let credited = chain.totals(Asset::MBTC).unwrap().credited;
    // Reconciliation: the deposit addresses hold exactly what was credited.
    let (held, supply) = held_and_supply(&chain, &fleet.key, &a).await;
    assert_eq!((held, supply), (credited, credited));

    // Kim gets Leo's balance and locks out 1.5 BTC: no single coin covers it.
    block(
        &mut chain,
        &[signed(
            &leo,
            1,
            TxBody::Transfer {
                to: kim.address,
                asset: Asset::MBTC,
                amount: leo_mbtc,
            },
        )],
    );
    let amount = 15 * BTC / 10;
    block(
        &mut chain,
        &[signed(
            &kim,
            1,
            TxBody::RequestLockOut {
                asset: Asset::MBTC,
                to_external: dest.fleet.address.clone(),
                amount,
            },
        )],
    );
    let id = lockout_id(&kim.address, 1);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let mut txs = watcher.scan(&chain).await.unwrap();
        let out = saga
            .step(
                &chain,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            )
            .await
            .unwrap();
        seen.extend(out.statuses.into_iter().map(|(_, s)| s));
        txs.extend(out.txs);
        block(&mut chain, &txs);
        if !chain.lockout(&id).unwrap().unwrap().status.is_pending() {
            break;
        }
        mine(&a, 1, &miner.fleet.address).await;
    }
    assert_eq!(
        chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::Burned,
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed));
    let entry = journal.lockout(&id).unwrap().unwrap();
    assert_eq!(entry.withdrawal.inputs.len(), 2, "both deposit coins spent");
    assert_eq!(
        fleet.calls.load(Ordering::SeqCst),
        2,
        "one signature per input"
    );
    let tip = a.tip_height().await.unwrap();
    let paid = a
        .deposits(std::slice::from_ref(&dest.fleet), config.start_height, tip)
        .await
        .unwrap();
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0].amount, entry.withdrawal.sent);
    // The change went to the change path, which is not a deposit address: seen by the
    // adapter when asked, never credited by the watcher.
    let change = fleet_address(&fleet.key, &a, &change_path(Asset::MBTC)).unwrap();
    let change_outputs = a
        .deposits(std::slice::from_ref(&change), config.start_height, tip)
        .await
        .unwrap();
    assert_eq!(change_outputs.len(), 1, "{change_outputs:?}");
    mine(&a, 8, &miner.fleet.address).await;
    assert!(watcher.scan(&chain).await.unwrap().is_empty());
    let totals = chain.totals(Asset::MBTC).unwrap();
    assert_eq!(totals.credited, credited, "change is not a deposit");
    assert_eq!(totals.burned, amount);
    chain.invariant_check().unwrap();
    // Reconciliation: the fee was paid out of the burned amount; change below the dust
    // limit, if any, went to the miner at the fleet's cost, so the fleet holds that much less
    // than the supply.
    let dust_left = entry.withdrawal.fee - (amount - entry.withdrawal.sent);
    let (held, supply) = held_and_supply(&chain, &fleet.key, &a).await;
    assert_eq!(held + dust_left, supply, "held {held}, supply {supply}");

    // A second lock-out starts signing, every session fails, and its order expires: the
    // saga cancels it. The cancellation spends the payment's inputs (the change coin) back
    // to the change address; at depth z Kim gets the amount back less its fee.
    struct FailingSessions;
    impl OrderSigner for FailingSessions {
        async fn ready(&self, _key: &FleetKey) -> Result<(), SignError> {
            Ok(())
        }
        async fn sign(&self, _job: &SignJob) -> Result<FleetSignature, SignError> {
            Err(SignError::Failed("test: session aborted".into()))
        }
    }
    let kim_before = chain.balance(&kim.address, Asset::MBTC).unwrap();
    let second = BTC / 5;
    assert!(kim_before > second);
    block(
        &mut chain,
        &[signed(
            &kim,
            2,
            TxBody::RequestLockOut {
                asset: Asset::MBTC,
                to_external: dest.fleet.address.clone(),
                amount: second,
            },
        )],
    );
    let id2 = lockout_id(&kim.address, 2);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = saga.step(&chain, now).await.unwrap();
    block(&mut chain, &out.txs);
    let failing = LockOutSaga {
        asset: Asset::MBTC,
        adapter: &a,
        signer: &FailingSessions,
        key: &fleet.key,
        journal: &journal,
        config: &config,
    };
    let out = failing.step(&chain, now).await.unwrap();
    assert!(
        matches!(out.statuses[..], [(_, SagaStatus::Signing(Some(_)))]),
        "{out:?}"
    );
    let late = now + config.order_ttl_secs + 1;
    TIME_SHIFT_MS.store(late * 1000, Ordering::SeqCst);
    let out = failing.step(&chain, late).await.unwrap();
    assert_eq!(out.statuses, vec![(id2, SagaStatus::CancellationProposed)]);
    block(&mut chain, &out.txs);
    let record = chain.lockout(&id2).unwrap().unwrap();
    assert_eq!(record.status, LockOutStatus::Cancelling);
    let fee = record.cancellation.unwrap().fee;
    let calls = fleet.calls.load(Ordering::SeqCst);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let out = saga.step(&chain, late).await.unwrap();
        seen.extend(out.statuses.into_iter().map(|(_, s)| s));
        block(&mut chain, &out.txs);
        if !chain.lockout(&id2).unwrap().unwrap().status.is_pending() {
            break;
        }
        mine(&a, 1, &miner.fleet.address).await;
    }
    assert_eq!(
        seen.last(),
        Some(&SagaStatus::CancelledProposed),
        "{seen:?}"
    );
    let payment = journal.lockout(&id2).unwrap().unwrap();
    let cancel = journal.cancellation(&id2).unwrap().unwrap();
    assert_eq!(
        fleet.calls.load(Ordering::SeqCst) - calls,
        cancel.withdrawal.inputs.len(),
        "one signature per cancellation input"
    );
    assert_eq!(cancel.withdrawal.spends, payment.withdrawal.spends);
    assert_eq!(cancel.withdrawal.fee, fee);
    assert_eq!(
        chain.lockout(&id2).unwrap().unwrap().status,
        LockOutStatus::Cancelled
    );
    assert_eq!(
        chain.balance(&kim.address, Asset::MBTC).unwrap(),
        kim_before - fee
    );
    let totals = chain.totals(Asset::MBTC).unwrap();
    assert_eq!(totals.burned, amount + fee);
    // On bcoin: nothing more reached the destination, and the change address holds the
    // cancelled inputs less the fee.
    let tip = a.tip_height().await.unwrap();
    let paid = a
        .deposits(std::slice::from_ref(&dest.fleet), config.start_height, tip)
        .await
        .unwrap();
    assert_eq!(paid.len(), 1, "only the first lock-out paid out");
    let change_outputs = a
        .deposits(std::slice::from_ref(&change), config.start_height, tip)
        .await
        .unwrap();
    assert_eq!(change_outputs.len(), 2, "{change_outputs:?}");
    chain.invariant_check().unwrap();
    // Reconciliation: the cancellation's fee left both the fleet and the supply.
    let (held, supply) = held_and_supply(&chain, &fleet.key, &a).await;
    assert_eq!(held + dust_left, supply, "held {held}, supply {supply}");
}
