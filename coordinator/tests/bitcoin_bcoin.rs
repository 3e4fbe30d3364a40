//! The Bitcoin adapter against a real bcoin 1.0.2 regtest node: deposits with growing depth,
//! a two-input withdrawal with change signed by BIP32 child keys and checked by
//! libbitcoinconsensus, reserved outpoints, refused signatures, rejected double and invalid
//! spends, and a deposit re-organised out by `invalidateblock`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bcoin_node;

use bcoin_node::BcoinNode;
use coordinator::adapter::bitcoin::{decode_raw, outputs_paying, BitcoinAdapter, BitcoinConfig};
use coordinator::adapter::{
    AdapterError, ChainAdapter, FleetAddress, FleetSignature, SignedWithdrawal, Spend, TxStatus,
    UnsignedWithdrawal, WithdrawalPlan,
};
use k256::ecdsa::SigningKey;
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use mpc_core::hd::{ChainCode, DerivationPath, ExtendedPublicKey};
use serde_json::json;

const BTC: u128 = 100_000_000;

/// A key the test holds, with the fleet address of its public key at `path`.
struct Key {
    signing: SigningKey,
    fleet: FleetAddress,
}

/// The fleet's child key at `path`: public derivation with `mpc_core::hd` (what the
/// coordinator does), and the matching secret x + shift standing in for the threshold signers.
fn fleet_key(adapter: &BitcoinAdapter, master: &Scalar, path: &[u32]) -> Key {
    let xpub =
        ExtendedPublicKey::new_master(ProjectivePoint::GENERATOR * master, ChainCode([0x22; 32]))
            .unwrap();
    let (child, shift) = xpub
        .derive_path(&DerivationPath::from_indices(path).unwrap())
        .unwrap();
    let secret = Option::<NonZeroScalar>::from(NonZeroScalar::new(*master + shift)).unwrap();
    let signing = SigningKey::from(secret);
    let public_key = k256::PublicKey::from(signing.verifying_key());
    assert_eq!(public_key.to_projective(), *child.public_key());
    Key {
        fleet: FleetAddress {
            path: path.to_vec(),
            address: adapter.address(&public_key).unwrap(),
            public_key,
        },
        signing,
    }
}

/// Signs every input with the key whose path it names (real ECDSA, low-s).
fn sign(unsigned: &UnsignedWithdrawal, keys: &[&Key]) -> Vec<FleetSignature> {
    unsigned
        .inputs
        .iter()
        .map(|input| {
            let key = keys
                .iter()
                .find(|k| k.fleet.path == input.path)
                .expect("a key for the path");
            let (signature, recovery_id) =
                key.signing.sign_prehash_recoverable(&input.digest).unwrap();
            FleetSignature {
                signature,
                recovery_id,
            }
        })
        .collect()
}

async fn mine(adapter: &BitcoinAdapter, blocks: u64, to: &str) -> Vec<String> {
    adapter
        .rpc()
        .call("generatetoaddress", json!([blocks, to]))
        .await
        .unwrap()
}

/// The BIP9 state of segwit for the block after the tip.
async fn segwit_status(adapter: &BitcoinAdapter) -> String {
    let info: serde_json::Value = adapter
        .rpc()
        .call("getblockchaininfo", json!([]))
        .await
        .unwrap();
    info["bip9_softforks"]["segwit"]["status"]
        .as_str()
        .unwrap_or("(missing)")
        .to_owned()
}

/// Pays `amount` (fee included) from `from` to `to`, change back to `from`.
async fn pay(
    adapter: &BitcoinAdapter,
    from: &Key,
    to: &str,
    amount: u128,
    reserved: Vec<Spend>,
) -> (UnsignedWithdrawal, SignedWithdrawal) {
    let plan = WithdrawalPlan {
        to: to.to_owned(),
        amount,
        sources: vec![from.fleet.clone()],
        change: Some(from.fleet.clone()),
        reserved,
    };
    let unsigned = adapter.build_withdrawal(&plan).await.unwrap();
    let signed = adapter
        .attach_signatures(&unsigned, &sign(&unsigned, &[from]))
        .unwrap();
    (unsigned, signed)
}

/// Broadcasts and expects acceptance; shows bcoin's log (where its reasons are) if not.
async fn accepted(node: &BcoinNode, adapter: &BitcoinAdapter, signed: &SignedWithdrawal) {
    if let Err(e) = adapter.broadcast(signed).await {
        panic!(
            "{} not accepted: {e}\n--- bcoin log ---\n{}",
            signed.txid,
            node.log()
        );
    }
}

#[tokio::test]
async fn bcoin_regtest_deposits_withdrawals_rejections_and_reorg() {
    let node = BcoinNode::start().await;
    let a = node.adapter();
    assert_eq!(a.tip_height().await.unwrap(), 0);

    // The test's own miner key, and the fleet: master key x with chain code 0x22…, children at
    // non-hardened paths.
    let miner = fleet_key(&a, &Scalar::from(0x4242_u64), &[]);
    let outside = fleet_key(&a, &Scalar::from(0x4343_u64), &[]);
    let master = Scalar::from(0x1111_u64);
    let fa = fleet_key(&a, &master, &[0, 1]);
    let fb = fleet_key(&a, &master, &[0, 2]);
    let fc = fleet_key(&a, &master, &[1, 0]);
    let fe = fleet_key(&a, &master, &[0, 3]);
    assert!(fa.fleet.address.starts_with("rb1q"), "{}", fa.fleet.address);

    // bcoin's regtest activates segwit by BIP9 signalling (window 144, threshold 108), not
    // from genesis as Bitcoin Core's does: until then its mempool refuses witness
    // transactions ("no-witness-yet"). Its miner signals, so 3 windows of blocks activate it
    // (and mature plenty of the miner's coinbases).
    mine(&a, 431, &miner.fleet.address).await;
    let mut tries = 0;
    while segwit_status(&a).await != "active" {
        tries += 1;
        assert!(tries < 20, "segwit still {}", segwit_status(&a).await);
        mine(&a, 1, &miner.fleet.address).await;
    }
    // getblockchaininfo reports the state for the block after the tip; the mempool follows
    // the rules of the tip itself, so one more block.
    mine(&a, 1, &miner.fleet.address).await;

    // Coinbase outputs count as payments only once mature: the miner's first coinbase is
    // reported (50 BTC, more than 100 deep), the one at the tip is not.
    let tip = a.tip_height().await.unwrap();
    let miner_watch = std::slice::from_ref(&miner.fleet);
    let first = a.deposits(miner_watch, 1, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].amount, first[0].confirmations), (50 * BTC, tip));
    assert!(a
        .deposits(miner_watch, tip - 98, tip)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        a.deposits(miner_watch, tip - 99, tip).await.unwrap().len(),
        1
    );

    // Fund two fleet addresses from the miner's coinbases, through the adapter's own path.
    let (fund_a_u, fund_a) = pay(&a, &miner, &fa.fleet.address, BTC, vec![]).await;
    let (fund_b_u, fund_b) = pay(
        &a,
        &miner,
        &fb.fleet.address,
        8 * BTC / 10,
        fund_a_u.spends.clone(),
    )
    .await;
    assert_ne!(fund_a_u.spends, fund_b_u.spends, "reserved coinbase reused");
    accepted(&node, &a, &fund_a).await;
    accepted(&node, &a, &fund_b).await;
    assert_eq!(a.status(&fund_a.txid).await.unwrap(), TxStatus::Pending);

    mine(&a, 1, &miner.fleet.address).await;
    let h = a.tip_height().await.unwrap();
    let watched = [fa.fleet.clone(), fb.fleet.clone()];
    let deposits = a.deposits(&watched, h, h).await.unwrap();
    assert_eq!(deposits.len(), 2, "{deposits:?}");
    let da = deposits
        .iter()
        .find(|d| d.address == fa.fleet.address)
        .unwrap();
    let db = deposits
        .iter()
        .find(|d| d.address == fb.fleet.address)
        .unwrap();
    assert_eq!(da.amount, fund_a_u.sent);
    assert_eq!(db.amount, fund_b_u.sent);
    assert_eq!(fund_a_u.sent, BTC - fund_a_u.fee);
    let fund_a_tx = decode_raw(&fund_a.raw).unwrap();
    let script_a = a.script_of(&fa.fleet.address).unwrap();
    assert_eq!(
        vec![da.deposit_id.clone()],
        outputs_paying(&fund_a_tx, &script_a)
    );
    assert_eq!((da.height, da.confirmations), (h, 1));
    let best: String = a.rpc().call("getblockhash", json!([h])).await.unwrap();
    assert_eq!(da.block_hash, best);
    // Nothing in the blocks before, nor for an address never paid.
    assert!(a.deposits(&watched, 0, h - 1).await.unwrap().is_empty());
    assert!(a
        .deposits(std::slice::from_ref(&fc.fleet), 0, h)
        .await
        .unwrap()
        .is_empty());

    mine(&a, 2, &miner.fleet.address).await;
    let later = a.deposits(&watched, h, h + 10).await.unwrap();
    assert_eq!(later.len(), 2);
    assert!(later.iter().all(|d| d.confirmations == 3), "{later:?}");
    assert_eq!(
        a.status(&fund_a.txid).await.unwrap(),
        TxStatus::Confirmed {
            confirmations: 3,
            success: true
        }
    );

    // The withdrawal: 1.5 BTC needs both fleet coins (1 BTC − fee, 0.8 BTC − fee); the rest
    // goes back to a third fleet address as change.
    let plan = WithdrawalPlan {
        to: outside.fleet.address.clone(),
        amount: 15 * BTC / 10,
        sources: vec![fa.fleet.clone(), fb.fleet.clone()],
        change: Some(fc.fleet.clone()),
        reserved: vec![],
    };
    let w = a.build_withdrawal(&plan).await.unwrap();
    assert_eq!(w.inputs.len(), 2);
    let mut paths: Vec<_> = w.inputs.iter().map(|i| i.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, vec![vec![0, 1], vec![0, 2]]);
    let mut spends = w.spends.clone();
    spends.sort();
    let mut funded = vec![
        Spend::Outpoint(da.deposit_id.clone()),
        Spend::Outpoint(db.deposit_id.clone()),
    ];
    funded.sort();
    assert_eq!(spends, funded);
    assert_eq!(w.sent, plan.amount - w.fee);

    // Reserved outpoints are never selected again.
    let mut again = plan.clone();
    again.reserved = w.spends.clone();
    assert!(matches!(
        a.build_withdrawal(&again).await,
        Err(AdapterError::InsufficientFunds(_))
    ));
    let mut smaller = plan.clone();
    smaller.amount = BTC / 2;
    smaller.reserved = vec![Spend::Outpoint(da.deposit_id.clone())];
    let other = a.build_withdrawal(&smaller).await.unwrap();
    assert_eq!(other.spends, vec![Spend::Outpoint(db.deposit_id.clone())]);

    // A signature by the wrong key is refused before anything is broadcast.
    let mut wrong = sign(&w, &[&fa, &fb]);
    wrong.swap(0, 1);
    assert!(matches!(
        a.attach_signatures(&w, &wrong),
        Err(AdapterError::Invalid(_))
    ));

    // A conflicting withdrawal spending the same two coins, signed too.
    let mut conflicting_plan = plan.clone();
    conflicting_plan.amount = 12 * BTC / 10;
    let w2 = a.build_withdrawal(&conflicting_plan).await.unwrap();
    assert_eq!(w2.spends.len(), 2);
    let signed2 = a.attach_signatures(&w2, &sign(&w2, &[&fa, &fb])).unwrap();

    let signed = a.attach_signatures(&w, &sign(&w, &[&fa, &fb])).unwrap();
    let tx = decode_raw(&signed.raw).unwrap();
    assert_eq!(tx.input.len(), 2);
    assert_eq!(tx.output.len(), 2, "destination and change");
    accepted(&node, &a, &signed).await;
    assert_eq!(a.status(&signed.txid).await.unwrap(), TxStatus::Pending);
    let mempool: Vec<String> = a.rpc().call("getrawmempool", json!([])).await.unwrap();
    assert!(mempool.contains(&signed.txid));

    // The double spend: bcoin answers sendrawtransaction with its txid all the same.
    let answer: String = a
        .rpc()
        .call("sendrawtransaction", json!([hex::encode(&signed2.raw)]))
        .await
        .unwrap();
    assert_eq!(
        answer, signed2.txid,
        "bcoin's answer says nothing about acceptance"
    );
    match a.broadcast(&signed2).await {
        Err(AdapterError::Rejected(reason)) => assert!(reason.contains("spent"), "{reason}"),
        other => panic!("double spend not rejected: {other:?}"),
    }

    mine(&a, 1, &miner.fleet.address).await;
    assert_eq!(
        a.status(&signed.txid).await.unwrap(),
        TxStatus::Confirmed {
            confirmations: 1,
            success: true
        }
    );
    assert_eq!(a.status(&signed2.txid).await.unwrap(), TxStatus::Unknown);
    // Once mined, re-broadcasting the same transaction is not an error.
    accepted(&node, &a, &signed).await;
    let change = a
        .deposits(std::slice::from_ref(&fc.fleet), h, h + 10)
        .await
        .unwrap();
    assert_eq!(change.len(), 1);
    assert_eq!(
        change[0].amount,
        BTC - fund_a_u.fee + 8 * BTC / 10 - fund_b_u.fee - plan.amount
    );

    // An invalid spend: a valid withdrawal of the change with one signature byte flipped
    // (the txid does not cover the witness). Refused by bcoin; the coin stays spendable.
    let (_, good) = pay(&a, &fc, &outside.fleet.address, BTC / 10, vec![]).await;
    let mut tampered = decode_raw(&good.raw).unwrap();
    let mut items = tampered.input[0].witness.to_vec();
    items[0][10] ^= 1; // inside r of the DER signature: still DER, no longer valid
    tampered.input[0].witness = bitcoin::Witness::from_slice(&items);
    let raw = bitcoin::consensus::encode::serialize(&tampered);
    assert_eq!(tampered.compute_txid().to_string(), good.txid);
    let bad = SignedWithdrawal {
        raw,
        txid: good.txid.clone(),
    };
    assert!(matches!(
        a.broadcast(&bad).await,
        Err(AdapterError::Rejected(_))
    ));
    assert_eq!(a.status(&good.txid).await.unwrap(), TxStatus::Unknown);
    accepted(&node, &a, &good).await;

    mine(&a, 1, &miner.fleet.address).await;
    assert_eq!(
        a.status(&signed2.txid).await.unwrap(),
        TxStatus::Unknown,
        "never confirmed"
    );
    assert!(matches!(
        a.status(&signed.txid).await.unwrap(),
        TxStatus::Confirmed {
            confirmations: 2,
            ..
        }
    ));
    assert!(matches!(
        a.status(&good.txid).await.unwrap(),
        TxStatus::Confirmed {
            confirmations: 1,
            ..
        }
    ));

    // A deposit re-organised out: invalidate its block and it is no longer reported.
    let (_, fund_e) = pay(&a, &miner, &fe.fleet.address, BTC / 2, vec![]).await;
    accepted(&node, &a, &fund_e).await;
    let block = mine(&a, 1, &miner.fleet.address).await;
    let he = a.tip_height().await.unwrap();
    let watched_e = [fe.fleet.clone()];
    assert_eq!(a.deposits(&watched_e, he, he).await.unwrap().len(), 1);
    let _: serde_json::Value = a
        .rpc()
        .call("invalidateblock", json!([block[0]]))
        .await
        .unwrap();
    assert_eq!(a.tip_height().await.unwrap(), he - 1);
    assert!(a.deposits(&watched_e, 0, he).await.unwrap().is_empty());
    // bcoin's invalidateblock is a chain reset to the parent, and a reset empties its
    // mempool: the funding transaction is gone, not pending.
    assert_eq!(a.status(&fund_e.txid).await.unwrap(), TxStatus::Unknown);
    // The chain grows again on another block at that height; still no deposit.
    let replacement = mine(&a, 1, &miner.fleet.address).await;
    assert_ne!(replacement, block);
    assert_eq!(a.tip_height().await.unwrap(), he);
    assert!(a.deposits(&watched_e, 0, he).await.unwrap().is_empty());
    assert_eq!(a.status(&fund_e.txid).await.unwrap(), TxStatus::Unknown);
}

#[tokio::test]
async fn invalid_requests_are_refused_without_side_effects() {
    let node = BcoinNode::start().await;
    let a = node.adapter();
    assert_eq!(a.check_node().await.unwrap(), "regtest");
    let core_hrp = BitcoinAdapter::new(BitcoinConfig {
        hrp: "bcrt".into(),
        ..a.config().clone()
    })
    .unwrap();
    assert!(matches!(
        core_hrp.check_node().await,
        Err(AdapterError::Invalid(_))
    ));
    let wrong_key = BitcoinAdapter::new(BitcoinConfig {
        api_key: "not-the-key".into(),
        ..a.config().clone()
    })
    .unwrap();
    assert!(matches!(
        wrong_key.tip_height().await,
        Err(AdapterError::Node(_))
    ));
    assert!(a.status("not a txid").await.is_err());
    assert_eq!(
        a.status("00000000000000000000000000000000000000000000000000000000000000aa")
            .await
            .unwrap(),
        TxStatus::Unknown
    );
    let key = fleet_key(&a, &Scalar::from(7_u64), &[3]);
    let plan = WithdrawalPlan {
        to: key.fleet.address.clone(),
        amount: BTC,
        sources: vec![key.fleet.clone()],
        change: Some(key.fleet.clone()),
        reserved: vec![],
    };
    assert!(matches!(
        a.build_withdrawal(&plan).await,
        Err(AdapterError::InsufficientFunds(_))
    ));
    let mut bitcoin_core_regtest = plan.clone();
    bitcoin_core_regtest.to = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into();
    assert!(matches!(
        a.build_withdrawal(&bitcoin_core_regtest).await,
        Err(AdapterError::Invalid(_))
    ));
    let mut nonce = plan.clone();
    nonce.reserved = vec![Spend::Nonce {
        address: "0x00".into(),
        nonce: 1,
    }];
    assert!(matches!(
        a.build_withdrawal(&nonce).await,
        Err(AdapterError::Invalid(_))
    ));
    // Garbage is not a transaction.
    let junk = SignedWithdrawal {
        raw: vec![1, 2, 3],
        txid: "00".repeat(32),
    };
    assert!(matches!(
        a.broadcast(&junk).await,
        Err(AdapterError::Invalid(_))
    ));
}
