//! The Ethereum adapter against a real anvil (pinned by chain-nodes/, installed by
//! scripts/install-chain-nodes.sh). Fleet keys are BIP32 children (mpc_core::hd) of a local
//! master key; a local k256 key signs in place of the fleet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use alloy_primitives::keccak256;
use coordinator::adapter::ethereum::{EthTxType, EthereumAdapter, EthereumConfig};
use coordinator::adapter::jsonrpc::JsonRpcClient;
use coordinator::adapter::{
    AdapterError, ChainAdapter, FleetAddress, FleetSignature, SigningInput, Spend, SpentBy,
    TxStatus, UnsignedWithdrawal, WithdrawalPlan,
};
use k256::ecdsa::SigningKey;
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use mpc_core::hd::{ChainCode, DerivationPath, ExtendedPublicKey};
use serde_json::json;
use support::anvil::{Anvil, DEV_ACCOUNT_0, DEV_ACCOUNT_1};

const CHAIN_ID: u64 = 31_337;
const ETH: u128 = 1_000_000_000_000_000_000;

/// A stand-in for the fleet: a master key whose non-hardened children give the deposit
/// addresses, as the fleet's DKG key does.
struct Fleet {
    master: NonZeroScalar,
    xpub: ExtendedPublicKey,
}

impl Fleet {
    fn new() -> Self {
        let master = NonZeroScalar::try_from(&[0x42u8; 32][..]).unwrap();
        let xpub = ExtendedPublicKey::new_master(
            ProjectivePoint::GENERATOR * *master,
            ChainCode([0x17; 32]),
        )
        .unwrap();
        Self { master, xpub }
    }

    /// The child at `path`, its address as the adapter renders it, and its secret key.
    fn child(&self, adapter: &EthereumAdapter, path: &[u32]) -> (FleetAddress, SigningKey) {
        let (child, shift) = self
            .xpub
            .derive_path(&DerivationPath::from_indices(path).unwrap())
            .unwrap();
        let public_key = k256::PublicKey::from_affine(child.public_key().to_affine()).unwrap();
        let secret: Scalar = *self.master + shift;
        let key = SigningKey::from(NonZeroScalar::new(secret).unwrap());
        assert_eq!(k256::PublicKey::from(key.verifying_key()), public_key);
        let address = adapter.address(&public_key).unwrap();
        (
            FleetAddress {
                path: path.to_vec(),
                public_key,
                address,
            },
            key,
        )
    }
}

/// Signs as a fleet signer would: hashes the preimage itself and checks the adapter's digest.
fn fleet_sign(key: &SigningKey, input: &SigningInput) -> FleetSignature {
    let digest = keccak256(&input.preimage);
    assert_eq!(
        digest.0, input.digest,
        "adapter's digest is the preimage's Keccak-256"
    );
    let (signature, recovery_id) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
    // k256 already gives low s; normalising again documents the requirement.
    let (signature, recovery_id) = match signature.normalize_s() {
        Some(low) => (
            low,
            k256::ecdsa::RecoveryId::new(!recovery_id.is_y_odd(), recovery_id.is_x_reduced()),
        ),
        None => (signature, recovery_id),
    };
    FleetSignature {
        signature,
        recovery_id,
    }
}

struct Env {
    anvil: Anvil,
    rpc: JsonRpcClient,
    adapter: EthereumAdapter,
    fleet: Fleet,
}

impl Env {
    async fn start(tx_type: EthTxType) -> Self {
        let anvil = support::anvil::start(CHAIN_ID);
        let rpc = JsonRpcClient::new(&anvil.url, None, Duration::from_secs(10)).unwrap();
        let mut config = EthereumConfig::new(anvil.url.clone(), CHAIN_ID);
        config.tx_type = tx_type;
        let adapter = EthereumAdapter::connect(config).await.unwrap();
        Self {
            anvil,
            rpc,
            adapter,
            fleet: Fleet::new(),
        }
    }

    /// A dev account pays `value` wei to `to`, mined in a block of its own; the tx hash.
    async fn pay(&self, from: &str, to: &str, value: u128) -> String {
        let hash = self
            .rpc
            .call(
                "eth_sendTransaction",
                json!([{ "from": from, "to": to, "value": format!("{value:#x}") }]),
            )
            .await
            .unwrap();
        self.mine(1).await;
        hash
    }

    async fn mine(&self, blocks: u64) {
        self.rpc
            .call_value("anvil_mine", json!([format!("{blocks:#x}")]))
            .await
            .unwrap();
    }

    async fn balance(&self, address: &str) -> u128 {
        let b: String = self
            .rpc
            .call("eth_getBalance", json!([address, "latest"]))
            .await
            .unwrap();
        u128::from_str_radix(b.trim_start_matches("0x"), 16).unwrap()
    }

    async fn nonce(&self, address: &str) -> u64 {
        let n: String = self
            .rpc
            .call("eth_getTransactionCount", json!([address, "pending"]))
            .await
            .unwrap();
        u64::from_str_radix(n.trim_start_matches("0x"), 16).unwrap()
    }

    /// A funded fleet address at `path`.
    async fn funded(&self, path: &[u32], wei: u128) -> (FleetAddress, SigningKey) {
        let (fa, key) = self.fleet.child(&self.adapter, path);
        self.pay(DEV_ACCOUNT_0, &fa.address, wei).await;
        (fa, key)
    }

    fn plan(&self, to: &str, amount: u128, sources: &[FleetAddress]) -> WithdrawalPlan {
        WithdrawalPlan {
            to: to.into(),
            amount,
            sources: sources.to_vec(),
            change: None,
            reserved: Vec::new(),
        }
    }

    /// Signs and attaches.
    fn sign(
        &self,
        unsigned: &UnsignedWithdrawal,
        key: &SigningKey,
    ) -> coordinator::adapter::SignedWithdrawal {
        let sigs: Vec<_> = unsigned.inputs.iter().map(|i| fleet_sign(key, i)).collect();
        self.adapter.attach_signatures(unsigned, &sigs).unwrap()
    }
}

#[tokio::test]
async fn connect_checks_the_chain_id() {
    let anvil = support::anvil::start(CHAIN_ID);
    let err = EthereumAdapter::connect(EthereumConfig::new(anvil.url.clone(), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, AdapterError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn deposit_is_found_with_its_depth_and_gains_confirmations() {
    let env = Env::start(EthTxType::Eip1559).await;
    let (watched, _) = env.fleet.child(&env.adapter, &[0, 7]);
    let (other, _) = env.fleet.child(&env.adapter, &[0, 8]);
    assert_ne!(watched.address, other.address);

    let deposit_tx = env.pay(DEV_ACCOUNT_0, &watched.address, 3 * ETH / 2).await;
    // Not deposits: zero value to the watched address, value to an unwatched address.
    env.pay(DEV_ACCOUNT_1, &watched.address, 0).await;
    env.pay(DEV_ACCOUNT_1, &other.address, ETH).await;

    let tip = env.adapter.tip_height().await.unwrap();
    let found = env
        .adapter
        .deposits(std::slice::from_ref(&watched), 0, tip)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let d = &found[0];
    assert_eq!(d.deposit_id, deposit_tx.to_lowercase());
    assert_eq!(d.address, watched.address);
    assert_eq!(d.amount, 3 * ETH / 2);
    assert_eq!(d.height, tip - 2, "automine: one block per transaction");
    assert_eq!(d.confirmations, 3);

    env.mine(5).await;
    let tip = env.adapter.tip_height().await.unwrap();
    let again = env
        .adapter
        .deposits(std::slice::from_ref(&watched), d.height, tip)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].deposit_id, d.deposit_id);
    assert_eq!(again[0].block_hash, d.block_hash);
    assert_eq!(again[0].confirmations, 8);
    // A range that starts after it does not see it; a range above the tip is refused.
    assert!(env
        .adapter
        .deposits(std::slice::from_ref(&watched), d.height + 1, tip)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        env.adapter
            .deposits(std::slice::from_ref(&watched), 0, tip + 1)
            .await,
        Err(AdapterError::Invalid(_))
    ));
    // The status of the deposit transaction agrees.
    assert_eq!(
        env.adapter.status(&d.deposit_id).await.unwrap(),
        TxStatus::Confirmed {
            confirmations: 8,
            success: true
        }
    );
}

#[tokio::test]
async fn deposit_reorganised_out_disappears() {
    let env = Env::start(EthTxType::Eip1559).await;
    let (watched, _) = env.fleet.child(&env.adapter, &[1, 2]);
    let hash = env.pay(DEV_ACCOUNT_0, &watched.address, ETH).await;
    let tip = env.adapter.tip_height().await.unwrap();
    let before = env
        .adapter
        .deposits(std::slice::from_ref(&watched), tip, tip)
        .await
        .unwrap();
    assert_eq!(before.len(), 1);

    // anvil replaces the last block with one without the transaction (same height).
    env.rpc
        .call_value("anvil_reorg", json!([1, []]))
        .await
        .unwrap();
    assert_eq!(env.adapter.tip_height().await.unwrap(), tip);
    let after = env
        .adapter
        .deposits(std::slice::from_ref(&watched), tip, tip)
        .await
        .unwrap();
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(
        env.adapter.status(&hash.to_lowercase()).await.unwrap(),
        TxStatus::Unknown
    );
}

/// Build, sign, attach, broadcast, mined with a successful receipt, destination credited with
/// `sent`; a second order built while the first is open, with its nonce reserved, gets the next
/// nonce and is mined too.
async fn withdrawal_round_trip(tx_type: EthTxType) {
    let env = Env::start(tx_type).await;
    let (poor, _) = env.funded(&[0, 1], ETH / 1000).await;
    let (rich, key) = env.funded(&[0, 2], 10 * ETH).await;
    let dest = env.fleet.child(&env.adapter, &[9, 9]).0.address;

    let mut plan = env.plan(&dest, 2 * ETH, &[poor.clone(), rich.clone()]);
    let first = env.adapter.build_withdrawal(&plan).await.unwrap();
    assert_eq!(first.inputs.len(), 1);
    assert_eq!(
        first.inputs[0].public_key, rich.public_key,
        "the source that covers it"
    );
    assert_eq!(first.inputs[0].path, rich.path);
    assert_eq!(first.sent + first.fee, 2 * ETH);
    assert_eq!(first.fee % 21_000, 0);
    assert_eq!(
        first.spends,
        vec![Spend::Nonce {
            address: rich.address.clone(),
            nonce: 0
        }]
    );
    match tx_type {
        EthTxType::Eip1559 => assert_eq!(first.unsigned_tx[0], 0x02),
        EthTxType::LegacyEip155 => assert!(first.unsigned_tx[0] >= 0xc0),
    }

    plan.amount = ETH;
    plan.reserved = first.spends.clone();
    let second = env.adapter.build_withdrawal(&plan).await.unwrap();
    assert_eq!(
        second.spends,
        vec![Spend::Nonce {
            address: rich.address.clone(),
            nonce: 1
        }]
    );

    let dest_before = env.balance(&dest).await;
    let source_before = env.balance(&rich.address).await;
    for unsigned in [&first, &second] {
        let signed = env.sign(unsigned, &key);
        env.adapter.broadcast(&signed).await.unwrap();
        // A repeated broadcast of the same transaction is not an error.
        env.adapter.broadcast(&signed).await.unwrap();
        assert_eq!(
            env.adapter.status(&signed.txid).await.unwrap(),
            TxStatus::Pending
        );
        env.mine(1).await;
        match env.adapter.status(&signed.txid).await.unwrap() {
            TxStatus::Confirmed {
                confirmations,
                success,
            } => {
                assert!(success);
                assert_eq!(confirmations, 1);
            }
            other => panic!("{other:?}"),
        }
        let seen: serde_json::Value = env
            .rpc
            .call("eth_getTransactionByHash", json!([signed.txid]))
            .await
            .unwrap();
        let want_type = match tx_type {
            EthTxType::Eip1559 => "0x2",
            EthTxType::LegacyEip155 => "0x0",
        };
        assert_eq!(seen["type"], want_type);
        assert_eq!(seen["chainId"], format!("{CHAIN_ID:#x}"));
        if tx_type == EthTxType::LegacyEip155 {
            // EIP-155: v = chain_id × 2 + 35 + y parity.
            let v = u64::from_str_radix(seen["v"].as_str().unwrap().trim_start_matches("0x"), 16)
                .unwrap();
            assert!(v == CHAIN_ID * 2 + 35 || v == CHAIN_ID * 2 + 36, "v = {v}");
        }
        assert_eq!(seen["from"].as_str().unwrap(), rich.address.to_lowercase());
    }
    assert_eq!(
        env.balance(&dest).await - dest_before,
        first.sent + second.sent
    );
    // The source paid at most the amounts; the unused part of the fee stayed with it.
    let spent = source_before - env.balance(&rich.address).await;
    assert!(
        spent <= 3 * ETH && spent > first.sent + second.sent,
        "{spent}"
    );
}

#[tokio::test]
async fn eip1559_withdrawal_is_mined_and_pays_the_destination() {
    withdrawal_round_trip(EthTxType::Eip1559).await;
}

#[tokio::test]
async fn legacy_eip155_withdrawal_is_mined_and_pays_the_destination() {
    withdrawal_round_trip(EthTxType::LegacyEip155).await;
}

#[tokio::test]
async fn unpayable_plans_are_refused() {
    let env = Env::start(EthTxType::Eip1559).await;
    let (src, _) = env.funded(&[0, 3], ETH).await;
    let too_much = env
        .adapter
        .build_withdrawal(&env.plan(DEV_ACCOUNT_1, 2 * ETH, std::slice::from_ref(&src)))
        .await;
    assert!(
        matches!(too_much, Err(AdapterError::InsufficientFunds(_))),
        "{too_much:?}"
    );
    // Less than the fee (21000 gas at ≥ 1 gwei).
    let dust = env
        .adapter
        .build_withdrawal(&env.plan(DEV_ACCOUNT_1, 1_000, std::slice::from_ref(&src)))
        .await;
    assert!(
        matches!(dust, Err(AdapterError::InsufficientFunds(_))),
        "{dust:?}"
    );
    let none = env
        .adapter
        .build_withdrawal(&env.plan(DEV_ACCOUNT_1, ETH / 2, &[]))
        .await;
    assert!(
        matches!(none, Err(AdapterError::InsufficientFunds(_))),
        "{none:?}"
    );
    // A mistyped destination checksum.
    let typo = env
        .adapter
        .build_withdrawal(&env.plan(
            "0x70997970C51812dc3A010C7d01b50e0d17dc79c8",
            ETH / 2,
            std::slice::from_ref(&src),
        ))
        .await;
    assert!(matches!(typo, Err(AdapterError::Invalid(_))), "{typo:?}");
    // A source whose address is not its key's.
    let mut forged = src;
    forged.address = DEV_ACCOUNT_0.into();
    let forged = env
        .adapter
        .build_withdrawal(&env.plan(DEV_ACCOUNT_1, ETH / 2, &[forged]))
        .await;
    assert!(
        matches!(forged, Err(AdapterError::Invalid(_))),
        "{forged:?}"
    );
}

#[tokio::test]
async fn signature_from_another_key_is_refused_before_broadcast() {
    let env = Env::start(EthTxType::Eip1559).await;
    let (src, key) = env.funded(&[0, 4], ETH).await;
    let (_, wrong_key) = env.fleet.child(&env.adapter, &[0, 5]);
    let unsigned = env
        .adapter
        .build_withdrawal(&env.plan(DEV_ACCOUNT_1, ETH / 2, std::slice::from_ref(&src)))
        .await
        .unwrap();
    let bad = fleet_sign(&wrong_key, &unsigned.inputs[0]);
    let err = env
        .adapter
        .attach_signatures(&unsigned, &[bad])
        .unwrap_err();
    assert!(matches!(err, AdapterError::Invalid(_)), "{err}");
    // Wrong count of signatures.
    let good = fleet_sign(&key, &unsigned.inputs[0]);
    assert!(env.adapter.attach_signatures(&unsigned, &[]).is_err());
    assert!(env
        .adapter
        .attach_signatures(&unsigned, &[good, good])
        .is_err());
    // A tampered transaction (value changed after signing) does not match its input.
    let mut tampered = unsigned.clone();
    let last = tampered.unsigned_tx.len() - 3;
    tampered.unsigned_tx[last] ^= 1;
    assert!(env.adapter.attach_signatures(&tampered, &[good]).is_err());
    // Nothing reached the node: the source never sent a transaction.
    assert_eq!(env.nonce(&src.address).await, 0);
}

#[tokio::test]
async fn dropped_or_rejected_transactions_never_confirm() {
    let env = Env::start(EthTxType::Eip1559).await;
    let (src, key) = env.funded(&[0, 6], ETH).await;
    let plan = env.plan(DEV_ACCOUNT_1, ETH / 10, std::slice::from_ref(&src));

    // A nonce far in the future: anvil answers with a hash, then keeps it queued forever.
    let mut future = plan.clone();
    future.reserved = vec![Spend::Nonce {
        address: src.address.clone(),
        nonce: 99,
    }];
    let gap = env.adapter.build_withdrawal(&future).await.unwrap();
    assert_eq!(
        gap.spends[0],
        Spend::Nonce {
            address: src.address.clone(),
            nonce: 100
        }
    );
    let gap = env.sign(&gap, &key);
    env.adapter.broadcast(&gap).await.unwrap();
    env.mine(3).await;
    let status = env.adapter.status(&gap.txid).await.unwrap();
    assert!(
        matches!(status, TxStatus::Pending | TxStatus::Unknown),
        "{status:?}"
    );

    // Two orders built without reserving each other's nonce (what `reserved` prevents): the
    // second is refused by the node as a replay of nonce 0.
    let a = env.adapter.build_withdrawal(&plan).await.unwrap();
    let b = env
        .adapter
        .build_withdrawal(&env.plan(DEV_ACCOUNT_0, ETH / 5, std::slice::from_ref(&src)))
        .await
        .unwrap();
    assert_eq!(a.spends, b.spends);
    let (a, b) = (env.sign(&a, &key), env.sign(&b, &key));
    env.adapter.broadcast(&a).await.unwrap();
    env.mine(1).await;
    assert!(matches!(
        env.adapter.status(&a.txid).await.unwrap(),
        TxStatus::Confirmed { success: true, .. }
    ));
    let err = env.adapter.broadcast(&b).await.unwrap_err();
    match &err {
        AdapterError::Rejected(message) => {
            assert!(message.to_lowercase().contains("nonce"), "{message}")
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        env.adapter.status(&b.txid).await.unwrap(),
        TxStatus::Unknown
    );
    // The gapped one is still not confirmed.
    let status = env.adapter.status(&gap.txid).await.unwrap();
    assert!(
        matches!(status, TxStatus::Pending | TxStatus::Unknown),
        "{status:?}"
    );
    drop(env.anvil);
}

/// The cancellation of a payment that already sits in the node's pool takes its place (same
/// nonce, fees at least one eighth higher), pays nothing out, and `spent_by` reads from the
/// chain which of the two used the nonce, at the asked depth.
async fn cancellation_replaces_a_pending_payment(tx_type: EthTxType) {
    let env = Env::start(tx_type).await;
    let (source, key) = env.funded(&[0, 3], 3 * ETH).await;
    let dest = env.fleet.child(&env.adapter, &[9, 8]).0.address;
    let payment = env
        .adapter
        .build_withdrawal(&env.plan(&dest, ETH, std::slice::from_ref(&source)))
        .await
        .unwrap();
    let change = env.fleet.child(&env.adapter, &[0, 0]).0;
    let cancel = env
        .adapter
        .build_cancellation(&payment, &change)
        .await
        .unwrap();
    assert_eq!(cancel.spends, payment.spends);
    assert_eq!(cancel.sent, 0);
    assert!(
        cancel.fee > payment.fee && cancel.fee < ETH,
        "{} vs {}",
        cancel.fee,
        payment.fee
    );
    assert_eq!(cancel.inputs[0].path, payment.inputs[0].path);
    // Neither is mined: undecided.
    assert_eq!(
        env.adapter.spent_by(&payment, &cancel, 2).await.unwrap(),
        SpentBy::Undecided
    );
    // The payment reaches the pool first; the cancellation replaces it.
    let paid = env.sign(&payment, &key);
    env.adapter.broadcast(&paid).await.unwrap();
    let cancelled = env.sign(&cancel, &key);
    env.adapter.broadcast(&cancelled).await.unwrap();
    env.mine(1).await;
    assert!(matches!(
        env.adapter.status(&cancelled.txid).await.unwrap(),
        TxStatus::Confirmed { success: true, .. }
    ));
    assert_eq!(
        env.adapter.status(&paid.txid).await.unwrap(),
        TxStatus::Unknown
    );
    assert_eq!(env.balance(&dest).await, 0, "nothing paid out");
    let cost = 3 * ETH - env.balance(&source.address).await;
    assert!(cost > 0 && cost <= cancel.fee, "{cost} > {}", cancel.fee);
    // One confirmation: final at depth 1, not yet at depth 2.
    assert_eq!(
        env.adapter.spent_by(&payment, &cancel, 2).await.unwrap(),
        SpentBy::Undecided
    );
    assert_eq!(
        env.adapter.spent_by(&payment, &cancel, 1).await.unwrap(),
        SpentBy::Cancellation
    );
    env.mine(1).await;
    assert_eq!(
        env.adapter.spent_by(&payment, &cancel, 2).await.unwrap(),
        SpentBy::Cancellation
    );
    // A cancellation of another address's nonce is refused.
    let (other, _) = env.fleet.child(&env.adapter, &[0, 4]);
    let mut wrong = cancel.clone();
    wrong.spends = vec![Spend::Nonce {
        address: other.address,
        nonce: 0,
    }];
    wrong.inputs[0].public_key = other.public_key;
    assert!(env.adapter.spent_by(&payment, &wrong, 1).await.is_err());
}

#[tokio::test]
async fn eip1559_cancellation_replaces_a_pending_payment() {
    cancellation_replaces_a_pending_payment(EthTxType::Eip1559).await;
}

#[tokio::test]
async fn legacy_cancellation_replaces_a_pending_payment() {
    cancellation_replaces_a_pending_payment(EthTxType::LegacyEip155).await;
}
