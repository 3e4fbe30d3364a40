//! The contract engine (lock-in watcher and lock-out saga) against a real anvil and a real
//! chain in sled (solo consensus). Standing in for the signer fleet in these tests only is
//! `support::local_fleet::LocalFleet`, an `OrderSigner` over a local k256 master key with
//! BIP32 children (`mpc_core::hd`) that checks the chain authorization the way a signer's
//! gate does (certificate under the genesis validator set, inclusion proof, the order's input
//! and digest) before it signs. The production `FleetSigner` over `FleetClient` is exercised
//! by the devnet / end-to-end tests, not here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{signed, user, User, CHAIN_ID};
use coordinator::adapter::ethereum::{EthereumAdapter, EthereumConfig};
use coordinator::adapter::jsonrpc::JsonRpcClient;
use coordinator::adapter::{
    AdapterError, ChainAdapter, ExternalChain, FleetAddress, FleetSignature, ObservedDeposit,
    SignedWithdrawal, Spend, SpentBy, TxStatus, UnsignedWithdrawal, WithdrawalPlan,
};
use coordinator::chain::{
    lockout_id, Asset, BlockOutcome, BlockTx, Chain, LockOutOutcome, LockOutStatus, SoloConsensus,
    SystemTx, TxBody, TxRejection,
};
use coordinator::engine::addresses::{change_path, deposit_addresses, fleet_address};
use coordinator::engine::keys::{latest_fleet_key, record_fleet_key};
use coordinator::engine::{
    DepositWatcher, EngineConfig, Journal, LockOutEntry, LockOutSaga, OrderSigner, SagaStatus,
    SignError, StepOutcome,
};
use coordinator::fleet::{FleetKey, SignJob};
use serde_json::json;
use support::anvil::{Anvil, DEV_ACCOUNT_0};
use support::local_fleet::LocalFleet;

const ANVIL_CHAIN_ID: u64 = 31_337;
const ETH: u128 = 1_000_000_000_000_000_000;
/// An external destination no test account pays from.
const DEST: &str = "0x1111111111111111111111111111111111111111";

/// The Ethereum adapter, with a failure injected into `attach_signatures` a set number of
/// times (the state a coordinator killed after journaling a signature leaves behind), and a
/// count of the broadcasts the node accepted.
struct TestAdapter {
    inner: EthereumAdapter,
    fail_attach: AtomicUsize,
    /// How many coming broadcasts are lost before reaching the node.
    fail_broadcast: AtomicUsize,
    broadcasts: AtomicUsize,
}

impl ChainAdapter for TestAdapter {
    fn chain(&self) -> ExternalChain {
        self.inner.chain()
    }
    fn address(&self, public_key: &k256::PublicKey) -> Result<String, AdapterError> {
        self.inner.address(public_key)
    }
    async fn tip_height(&self) -> Result<u64, AdapterError> {
        self.inner.tip_height().await
    }
    async fn deposits(
        &self,
        watched: &[FleetAddress],
        from_height: u64,
        to_height: u64,
    ) -> Result<Vec<ObservedDeposit>, AdapterError> {
        self.inner.deposits(watched, from_height, to_height).await
    }
    async fn build_withdrawal(
        &self,
        plan: &WithdrawalPlan,
    ) -> Result<UnsignedWithdrawal, AdapterError> {
        self.inner.build_withdrawal(plan).await
    }
    fn attach_signatures(
        &self,
        unsigned: &UnsignedWithdrawal,
        signatures: &[FleetSignature],
    ) -> Result<SignedWithdrawal, AdapterError> {
        if self
            .fail_attach
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AdapterError::Invalid("test: crash before attaching".into()));
        }
        self.inner.attach_signatures(unsigned, signatures)
    }
    async fn broadcast(&self, signed: &SignedWithdrawal) -> Result<(), AdapterError> {
        if self
            .fail_broadcast
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AdapterError::Unexpected(
                "test: crash before the node got it".into(),
            ));
        }
        self.inner.broadcast(signed).await?;
        self.broadcasts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn status(&self, txid: &str) -> Result<TxStatus, AdapterError> {
        self.inner.status(txid).await
    }
    async fn holdings(&self, addresses: &[FleetAddress]) -> Result<u128, AdapterError> {
        self.inner.holdings(addresses).await
    }
    async fn build_cancellation(
        &self,
        payment: &UnsignedWithdrawal,
        change: &FleetAddress,
    ) -> Result<UnsignedWithdrawal, AdapterError> {
        self.inner.build_cancellation(payment, change).await
    }
    async fn spent_by(
        &self,
        payment: &UnsignedWithdrawal,
        cancellation: &UnsignedWithdrawal,
        depth: u64,
    ) -> Result<SpentBy, AdapterError> {
        self.inner.spent_by(payment, cancellation, depth).await
    }
}

struct Env {
    _anvil: Anvil,
    rpc: JsonRpcClient,
    adapter: TestAdapter,
    dir: tempfile::TempDir,
    chain: Chain<SoloConsensus>,
    journal: Journal,
    config: EngineConfig,
    fleet: LocalFleet,
    /// Added to every block's time: the chain compares an order's `not_after` with it.
    time_shift_ms: u64,
}

/// `u`'s request (at `nonce`) to lock out `amount` wei to [`DEST`].
fn lock_out_tx(u: &User, nonce: u64, amount: u128) -> BlockTx {
    signed(
        u,
        nonce,
        TxBody::RequestLockOut {
            asset: Asset::METH,
            to_external: DEST.into(),
            amount,
        },
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn chain_dir(dir: &Path) -> PathBuf {
    dir.join("chain")
}

fn journal_dir(dir: &Path) -> PathBuf {
    dir.join("journal")
}

impl Env {
    async fn start() -> Self {
        let anvil = support::anvil::start(ANVIL_CHAIN_ID);
        let rpc = JsonRpcClient::new(&anvil.url, None, Duration::from_secs(10)).unwrap();
        let inner =
            EthereumAdapter::connect(EthereumConfig::new(anvil.url.clone(), ANVIL_CHAIN_ID))
                .await
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let chain = common::open(&chain_dir(dir.path()));
        let journal = Journal::open(&journal_dir(dir.path())).unwrap();
        let z = EngineConfig::depth_for(0.1, 1e-3).unwrap();
        assert_eq!(z, 6);
        assert!(EngineConfig::depth_for(0.5, 1e-3).is_err());
        let config = EngineConfig {
            depth: z,
            reorg_margin: 12,
            start_height: 0,
            max_scan_blocks: 1000,
            fleet_id: "test-fleet".into(),
            order_ttl_secs: 600,
            commit_timeout_blocks: 50,
        };
        let fleet = LocalFleet::new(chain.validator_set().clone(), CHAIN_ID);
        let mut env = Self {
            _anvil: anvil,
            rpc,
            adapter: TestAdapter {
                inner,
                fail_attach: AtomicUsize::new(0),
                fail_broadcast: AtomicUsize::new(0),
                broadcasts: AtomicUsize::new(0),
            },
            dir,
            chain,
            journal,
            config,
            fleet,
            time_shift_ms: 0,
        };
        // The admin asks for a key; the DKG's result (here the local master key) is recorded
        // on chain, and the engine reads it back from there.
        env.block(&[signed(&user(100), 0, TxBody::RequestKeygen)]);
        env.block(&[record_fleet_key(0, &env.fleet.key).unwrap()]);
        assert_eq!(
            latest_fleet_key(&env.chain, 0).unwrap().as_ref(),
            Some(&env.fleet.key)
        );
        env
    }

    /// Closes chain and journal (as a killed coordinator leaves them) and opens both again
    /// from disk.
    fn restart(self) -> Self {
        let Env {
            _anvil,
            rpc,
            adapter,
            dir,
            chain,
            journal,
            config,
            fleet,
            time_shift_ms,
        } = self;
        drop(chain);
        drop(journal);
        let chain = common::open(&chain_dir(dir.path()));
        let journal = Journal::open(&journal_dir(dir.path())).unwrap();
        Env {
            _anvil,
            rpc,
            adapter,
            dir,
            chain,
            journal,
            config,
            fleet,
            time_shift_ms,
        }
    }

    async fn mine(&self, blocks: u64) {
        self.rpc
            .call_value("anvil_mine", json!([format!("{blocks:#x}")]))
            .await
            .unwrap();
    }

    /// A dev account pays `value` wei to `to`, mined in a block of its own; the tx hash.
    async fn pay(&self, to: &str, value: u128) -> String {
        let hash = self
            .rpc
            .call(
                "eth_sendTransaction",
                json!([{ "from": DEV_ACCOUNT_0, "to": to, "value": format!("{value:#x}") }]),
            )
            .await
            .unwrap();
        self.mine(1).await;
        hash
    }

    async fn eth_balance(&self, address: &str) -> u128 {
        let b: String = self
            .rpc
            .call("eth_getBalance", json!([address, "latest"]))
            .await
            .unwrap();
        u128::from_str_radix(b.trim_start_matches("0x"), 16).unwrap()
    }

    /// Produces a block with `txs`; every one must be accepted and the invariant hold.
    fn block(&mut self, txs: &[BlockTx]) -> BlockOutcome {
        let time = 1_000 * (self.chain.height() + 1) + self.time_shift_ms;
        let outcome = self.chain.produce_block(txs, time).unwrap();
        for (i, r) in outcome.results.iter().enumerate() {
            assert!(r.is_ok(), "transaction {i} refused: {r:?}");
        }
        self.chain.invariant_check().unwrap();
        outcome
    }

    /// Wei a mined transaction cost its sender: gasUsed × effectiveGasPrice of its receipt.
    async fn gas_cost(&self, txid: &str) -> u128 {
        let r: serde_json::Value = self
            .rpc
            .call("eth_getTransactionReceipt", json!([txid]))
            .await
            .unwrap();
        let q = |f: &str| {
            u128::from_str_radix(r[f].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        };
        q("gasUsed") * q("effectiveGasPrice")
    }

    /// Reconciliation with the external chain (issue #5: mapped supply = what the external
    /// chain holds minus fees): what every fleet address of the asset (each deposit address
    /// and the change address) holds on anvil is the mapped supply plus `unused_fees`, the part
    /// of the burned fees (committed maxima) the transactions did not use.
    async fn assert_reconciled(&self, unused_fees: u128) {
        let mut fleet: Vec<FleetAddress> =
            deposit_addresses(&self.chain, &self.fleet.key, &self.adapter, Asset::METH)
                .unwrap()
                .into_values()
                .map(|(fa, _)| fa)
                .collect();
        fleet.push(
            fleet_address(&self.fleet.key, &self.adapter, &change_path(Asset::METH)).unwrap(),
        );
        let held = self.adapter.holdings(&fleet).await.unwrap();
        let supply = self.chain.totals(Asset::METH).unwrap().supply;
        assert_eq!(held, supply + unused_fees, "held {held}, supply {supply}");
    }

    fn watcher(&self) -> DepositWatcher<'_, TestAdapter> {
        DepositWatcher {
            asset: Asset::METH,
            adapter: &self.adapter,
            key: &self.fleet.key,
            journal: &self.journal,
            config: &self.config,
        }
    }

    fn saga(&self) -> LockOutSaga<'_, TestAdapter, LocalFleet> {
        LockOutSaga {
            asset: Asset::METH,
            adapter: &self.adapter,
            signer: &self.fleet,
            key: &self.fleet.key,
            journal: &self.journal,
            config: &self.config,
        }
    }

    async fn scan(&self) -> Vec<BlockTx> {
        self.watcher().scan(&self.chain).await.unwrap()
    }

    async fn step(&self) -> StepOutcome {
        self.saga().step(&self.chain, now_secs()).await.unwrap()
    }

    /// Issues `u` a deposit address on chain (transaction nonce `nonce`); its external
    /// address.
    fn deposit_address(&mut self, u: &User, nonce: u64) -> String {
        self.block(&[signed(
            u,
            nonce,
            TxBody::RequestDepositAddress { asset: Asset::METH },
        )]);
        let issued = self.chain.deposit_addresses(&u.address).unwrap();
        let path: Vec<u32> = issued
            .last()
            .unwrap()
            .path
            .indices()
            .iter()
            .map(|i| i.get())
            .collect();
        assert_eq!(path[0], u32::from(Asset::METH.code()));
        fleet_address(&self.fleet.key, &self.adapter, &path)
            .unwrap()
            .address
    }

    /// Pays `wei` to `address` on anvil, mines to depth z and credits it through the watcher.
    /// `u` gets a deposit address (nonce 0), `deposit` wei are paid to it and credited at depth
    /// z, then `u` asks (nonce 1) to lock out `amount`; returns the lock-out id.
    async fn funded_lock_out(&mut self, u: &User, deposit: u128, amount: u128) -> [u8; 32] {
        let address = self.deposit_address(u, 0);
        self.deposit_and_credit(&address, deposit).await;
        self.request_lock_out(u, 1, amount)
    }

    /// `u` (at `nonce`) asks to lock out `amount` wei to [`DEST`]; returns the lock-out id.
    fn request_lock_out(&mut self, u: &User, nonce: u64, amount: u128) -> [u8; 32] {
        self.block(&[lock_out_tx(u, nonce, amount)]);
        lockout_id(&u.address, nonce)
    }

    async fn deposit_and_credit(&mut self, address: &str, wei: u128) {
        self.pay(address, wei).await;
        self.mine(self.config.depth - 1).await;
        let credits = self.scan().await;
        assert_eq!(credits.len(), 1, "{credits:?}");
        self.block(&credits);
    }

    fn status_of(out: &StepOutcome, id: &[u8; 32]) -> Option<SagaStatus> {
        out.statuses
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s.clone())
    }

    /// Runs engine steps, one chain block and one anvil block each, until lock-out `id` is
    /// settled; every status seen for it.
    async fn drive(&mut self, id: &[u8; 32], rounds: usize) -> Vec<SagaStatus> {
        let mut seen = Vec::new();
        for _ in 0..rounds {
            let mut txs = self.scan().await;
            let out = self.step().await;
            if let Some(s) = Self::status_of(&out, id) {
                seen.push(s);
            }
            txs.extend(out.txs);
            self.block(&txs);
            if !self.chain.lockout(id).unwrap().unwrap().status.is_pending() {
                return seen;
            }
            self.mine(1).await;
        }
        panic!("lock-out not settled after {rounds} rounds: {seen:?}");
    }
}

#[tokio::test]
async fn deposit_is_credited_at_depth_z_exactly_once() {
    let mut env = Env::start().await;
    let alice = user(1);
    let address = env.deposit_address(&alice, 0);
    env.pay(&address, 2 * ETH).await;
    // 1..=5 confirmations: nothing to credit.
    for confirmations in 1..env.config.depth {
        assert!(env.scan().await.is_empty(), "credited at {confirmations}");
        env.mine(1).await;
    }
    // 6 = z confirmations: one credit, to alice.
    let credits = env.scan().await;
    assert_eq!(credits.len(), 1);
    let BlockTx::System(SystemTx::CreditDeposit {
        asset,
        account,
        amount,
        ..
    }) = &credits[0]
    else {
        panic!("{credits:?}")
    };
    assert_eq!(
        (*asset, *account, *amount),
        (Asset::METH, alice.address, 2 * ETH)
    );
    // Before the block holds it, a scan proposes it again (a dropped proposal is not lost)...
    assert_eq!(env.scan().await, credits);
    env.block(&credits);
    assert_eq!(
        env.chain.balance(&alice.address, Asset::METH).unwrap(),
        2 * ETH
    );
    // ...after, never again, however deep it gets; and the chain refuses a replay.
    for _ in 0..3 {
        env.mine(4).await;
        assert!(env.scan().await.is_empty());
    }
    let replay = env
        .chain
        .produce_block(&credits, 1_000 * (env.chain.height() + 1))
        .unwrap();
    assert!(matches!(
        replay.results[0],
        Err(TxRejection::DuplicateDeposit(_))
    ));
    assert_eq!(
        env.chain.balance(&alice.address, Asset::METH).unwrap(),
        2 * ETH
    );
    assert_eq!(env.chain.totals(Asset::METH).unwrap().credited, 2 * ETH);
    env.chain.invariant_check().unwrap();
}

#[tokio::test]
async fn deposit_reorganised_out_before_z_is_never_credited() {
    let mut env = Env::start().await;
    let bob = user(2);
    let address = env.deposit_address(&bob, 0);
    let hash = env.pay(&address, ETH).await;
    env.mine(2).await;
    assert!(env.scan().await.is_empty(), "3 confirmations < z");
    // The three blocks from the deposit's on are replaced by empty ones.
    env.rpc
        .call_value("anvil_reorg", json!([3, []]))
        .await
        .unwrap();
    assert_eq!(
        env.adapter.status(&hash.to_lowercase()).await.unwrap(),
        TxStatus::Unknown
    );
    env.mine(10).await;
    for _ in 0..3 {
        assert!(env.scan().await.is_empty());
        env.mine(3).await;
    }
    assert_eq!(env.chain.balance(&bob.address, Asset::METH).unwrap(), 0);
    assert_eq!(env.chain.totals(Asset::METH).unwrap().credited, 0);
}

/// Locked → order committed → signed (once, with the chain's authorization) → broadcast →
/// z confirmations → burned; the destination got the payment. A second and third lock-out
/// committed while the earlier ones are open get the following nonces.
#[tokio::test]
async fn eth_lock_out_is_paid_and_burned_and_nonces_are_not_reused() {
    let mut env = Env::start().await;
    let carol = user(3);
    let address = env.deposit_address(&carol, 0);
    env.deposit_and_credit(&address, 5 * ETH).await;
    let dest_before = env.eth_balance(DEST).await;

    let id = env.request_lock_out(&carol, 1, ETH);
    assert_eq!(
        env.chain.balance(&carol.address, Asset::METH).unwrap(),
        4 * ETH
    );
    let seen = env.drive(&id, 20).await;
    assert_eq!(seen[0], SagaStatus::CommitProposed, "{seen:?}");
    assert!(
        seen.iter()
            .any(|s| matches!(s, SagaStatus::Broadcast { .. })),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed));
    let record = env.chain.lockout(&id).unwrap().unwrap();
    assert_eq!(record.status, LockOutStatus::Burned);
    assert_eq!(
        env.fleet.calls.load(Ordering::SeqCst),
        1,
        "one input, one signature"
    );
    assert_eq!(env.adapter.broadcasts.load(Ordering::SeqCst), 1);
    let entry = env.journal.lockout(&id).unwrap().unwrap();
    assert!(entry.signing_started);
    assert_eq!(
        env.eth_balance(DEST).await - dest_before,
        entry.withdrawal.sent
    );
    let totals = env.chain.totals(Asset::METH).unwrap();
    assert_eq!(
        (totals.burned, totals.locked, totals.supply),
        (ETH, 0, 4 * ETH)
    );
    // Settled: the saga leaves it alone.
    assert!(env.step().await.statuses.is_empty());

    // Two lock-outs requested in one block, both committed before either is signed.
    env.block(&[lock_out_tx(&carol, 2, ETH), lock_out_tx(&carol, 3, ETH / 2)]);
    let (a, b) = (lockout_id(&carol.address, 2), lockout_id(&carol.address, 3));
    let out = env.step().await;
    assert_eq!(out.txs.len(), 2, "{out:?}");
    env.block(&out.txs);
    let nonce_of = |e: &coordinator::engine::LockOutEntry| match &e.withdrawal.spends[..] {
        [Spend::Nonce { nonce, .. }] => *nonce,
        other => panic!("{other:?}"),
    };
    let first = nonce_of(&entry);
    let na = nonce_of(&env.journal.lockout(&a).unwrap().unwrap());
    let nb = nonce_of(&env.journal.lockout(&b).unwrap().unwrap());
    assert_eq!(first, 0);
    assert_eq!(
        [na, nb]
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [1, 2].into_iter().collect()
    );
    env.drive(&a, 20).await;
    if env.chain.lockout(&b).unwrap().unwrap().status.is_pending() {
        env.drive(&b, 20).await;
    }
    for id in [a, b] {
        assert_eq!(
            env.chain.lockout(&id).unwrap().unwrap().status,
            LockOutStatus::Burned
        );
    }
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 3);
    assert_eq!(env.adapter.broadcasts.load(Ordering::SeqCst), 3);
    assert_eq!(env.chain.totals(Asset::METH).unwrap().burned, 5 * ETH / 2);
}

/// No single fleet address holds the amount: refunded once, reason journaled, nothing signed.
#[tokio::test]
async fn lock_out_without_funds_is_refunded_once() {
    let mut env = Env::start().await;
    let (dave, erin) = (user(4), user(5));
    let a = env.deposit_address(&dave, 0);
    env.deposit_and_credit(&a, ETH).await;
    let b = env.deposit_address(&erin, 0);
    env.deposit_and_credit(&b, ETH).await;
    env.block(&[signed(
        &dave,
        1,
        TxBody::Transfer {
            to: erin.address,
            asset: Asset::METH,
            amount: ETH,
        },
    )]);
    // Erin holds 2 mETH, but each fleet address only 1 ETH.
    let id = env.request_lock_out(&erin, 1, 2 * ETH);
    assert_eq!(env.chain.balance(&erin.address, Asset::METH).unwrap(), 0);
    let out = env.step().await;
    assert!(
        matches!(Env::status_of(&out, &id), Some(SagaStatus::RefundProposed(ref r)) if r.contains("insufficient funds")),
        "{out:?}"
    );
    env.block(&out.txs);
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::Refunded
    );
    assert_eq!(
        env.chain.balance(&erin.address, Asset::METH).unwrap(),
        2 * ETH
    );
    assert!(env.journal.refund_reason(&id).unwrap().is_some());
    assert!(
        env.journal.lockout(&id).unwrap().is_none(),
        "no order planned"
    );
    // Once: the saga does not touch it again, and the chain refuses a second refund.
    assert!(env.step().await.txs.is_empty());
    let again = env
        .chain
        .produce_block(&out.txs, 1_000 * (env.chain.height() + 1))
        .unwrap();
    assert!(matches!(
        again.results[0],
        Err(TxRejection::WrongLockOutState { .. })
    ));
    assert_eq!(
        env.chain.balance(&erin.address, Asset::METH).unwrap(),
        2 * ETH
    );
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 0);
    env.chain.invariant_check().unwrap();
}

/// The order is committed, but no signing quorum is reachable when the first session would
/// start: refunded, and no session was ever started.
#[tokio::test]
async fn quorum_lost_before_signing_refunds() {
    let mut env = Env::start().await;
    let frank = user(6);
    let address = env.deposit_address(&frank, 0);
    env.deposit_and_credit(&address, 2 * ETH).await;
    let id = env.request_lock_out(&frank, 1, ETH);
    let out = env.step().await;
    assert_eq!(Env::status_of(&out, &id), Some(SagaStatus::CommitProposed));
    env.block(&out.txs);
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::OrderCommitted
    );
    env.fleet.down.store(true, Ordering::SeqCst);
    let out = env.step().await;
    assert!(
        matches!(Env::status_of(&out, &id), Some(SagaStatus::RefundProposed(ref r)) if r.contains("quorum")),
        "{out:?}"
    );
    // The quorum is back before the block holding the refund is made (the node loop steps
    // the saga again meanwhile): the decided refund stands, nothing is signed.
    env.fleet.down.store(false, Ordering::SeqCst);
    let again = env.step().await;
    assert!(
        matches!(Env::status_of(&again, &id), Some(SagaStatus::RefundProposed(ref r)) if r.contains("quorum")),
        "{again:?}"
    );
    assert_eq!(again.txs, out.txs);
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 0);
    env.block(&out.txs);
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::Refunded
    );
    assert_eq!(
        env.chain.balance(&frank.address, Asset::METH).unwrap(),
        2 * ETH
    );
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 0);
    assert!(!env.journal.lockout(&id).unwrap().unwrap().signing_started);
    assert_eq!(env.adapter.broadcasts.load(Ordering::SeqCst), 0);
}

/// Once signing has started, losing the quorum does not refund: the saga keeps the lock-out
/// committed and retries. When the order expires with its signature missing, the saga
/// cancels it on the external chain (same nonce, nothing paid out) and, once the
/// cancellation is z deep, returns the amount less the cancellation's fee.
#[tokio::test]
async fn signing_failure_after_start_never_refunds_and_expiry_cancels() {
    let mut env = Env::start().await;
    let gina = user(7);
    let id = env.funded_lock_out(&gina, 2 * ETH, ETH).await;
    let out = env.step().await;
    env.block(&out.txs);
    // ready() passes, then every session fails.
    struct FailingSessions<'a>(&'a LocalFleet);
    impl OrderSigner for FailingSessions<'_> {
        async fn ready(&self, _key: &FleetKey) -> Result<(), SignError> {
            Ok(())
        }
        async fn sign(&self, _job: &SignJob) -> Result<FleetSignature, SignError> {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            Err(SignError::Failed("test: session aborted".into()))
        }
    }
    let failing = FailingSessions(&env.fleet);
    let saga = LockOutSaga {
        asset: Asset::METH,
        adapter: &env.adapter,
        signer: &failing,
        key: &env.fleet.key,
        journal: &env.journal,
        config: &env.config,
    };
    for _ in 0..3 {
        let out = saga.step(&env.chain, now_secs()).await.unwrap();
        assert!(out.txs.is_empty(), "{out:?}");
        assert!(matches!(
            Env::status_of(&out, &id),
            Some(SagaStatus::Signing(Some(_)))
        ));
    }
    // Even with the quorum gone now, no refund: signing started.
    env.fleet.down.store(true, Ordering::SeqCst);
    let out = env.step().await;
    assert!(out.txs.is_empty(), "{out:?}");
    // An order past not_after with signing started is cancelled, not refunded: the
    // cancellation (same nonce, 0 wei to the fleet address itself) is journaled and
    // committed; the chain accepts it only once a block's time is past the order's not_after.
    let late = now_secs() + env.config.order_ttl_secs + 1;
    let out = saga.step(&env.chain, late).await.unwrap();
    assert_eq!(
        Env::status_of(&out, &id),
        Some(SagaStatus::CancellationProposed)
    );
    let refused = env
        .chain
        .produce_block(&out.txs, 1_000 * (env.chain.height() + 1));
    assert!(
        matches!(
            refused.unwrap().results[0],
            Err(TxRejection::BadCancellation { .. })
        ),
        "a cancellation before the order expired on chain"
    );
    // Killed after the cancellation was journaled, before a block held it: the restarted
    // coordinator proposes the very same cancellation.
    let proposed = out.txs;
    let mut env = env.restart();
    let out = env.saga().step(&env.chain, late).await.unwrap();
    assert_eq!(
        out.txs, proposed,
        "the journaled cancellation, not a new one"
    );
    env.time_shift_ms = late * 1000;
    env.block(&out.txs);
    let record = env.chain.lockout(&id).unwrap().unwrap();
    assert_eq!(record.status, LockOutStatus::Cancelling);
    let fee = record.cancellation.as_ref().unwrap().fee;
    assert!(fee > 0 && fee < ETH, "{fee}");
    let payment = env.journal.lockout(&id).unwrap().unwrap();
    assert!(payment.signing_started);
    assert_eq!(payment.failures, 4);
    let cancel = env.journal.cancellation(&id).unwrap().unwrap();
    assert_eq!(cancel.withdrawal.spends, payment.withdrawal.spends);
    // A refund is refused now: the payment could still be mined.
    let refund = env.chain.check(&BlockTx::System(SystemTx::SettleLockOut {
        lockout_id: id,
        outcome: LockOutOutcome::Refunded,
    }));
    assert!(matches!(refund, Err(TxRejection::WrongLockOutState { .. })));
    // The quorum is back: the fleet signs the cancellation under its own chain authorization
    // (the signers' code checks it), it is broadcast and mined; at depth z the lock-out is
    // settled Cancelled: the amount less the fee goes back.
    env.fleet.down.store(false, Ordering::SeqCst);
    let calls = env.fleet.calls.load(Ordering::SeqCst);
    let fleet_address = payment_sender(&payment);
    // Signed and broadcast; then killed again: after the restart the journaled cancellation
    // is followed, never signed a second time.
    let out = env.saga().step(&env.chain, late).await.unwrap();
    assert!(
        matches!(Env::status_of(&out, &id), Some(SagaStatus::Cancelling(ref s)) if s.ends_with("broadcast")),
        "{out:?}"
    );
    assert!(out.txs.is_empty());
    let mut env = env.restart();
    let mut seen = Vec::new();
    for _ in 0..12 {
        env.mine(1).await;
        let out = env.saga().step(&env.chain, late).await.unwrap();
        seen.push(Env::status_of(&out, &id).unwrap());
        env.block(&out.txs);
        if !env.chain.lockout(&id).unwrap().unwrap().status.is_pending() {
            break;
        }
    }
    assert_eq!(
        seen.last(),
        Some(&SagaStatus::CancelledProposed),
        "{seen:?}"
    );
    assert_eq!(
        env.fleet.calls.load(Ordering::SeqCst),
        calls + 1,
        "one cancellation signature"
    );
    let record = env.chain.lockout(&id).unwrap().unwrap();
    assert_eq!(record.status, LockOutStatus::Cancelled);
    assert_eq!(
        env.chain
            .account(&gina.address)
            .unwrap()
            .balance(Asset::METH),
        2 * ETH - fee
    );
    let totals = env.chain.totals(Asset::METH).unwrap();
    assert_eq!(
        (totals.burned, totals.locked, totals.supply),
        (fee, 0, 2 * ETH - fee)
    );
    // On anvil: the nonce is used, nothing reached the destination, and the fleet address
    // paid at most the committed fee.
    let count: String = env
        .rpc
        .call("eth_getTransactionCount", json!([fleet_address, "latest"]))
        .await
        .unwrap();
    assert_eq!(count, "0x1");
    assert_eq!(env.eth_balance(DEST).await, 0);
    assert!(env.eth_balance(&fleet_address).await >= 2 * ETH - fee);
    // The next lock-out takes the next nonce and is paid out.
    let id2 = env.request_lock_out(&gina, 2, ETH / 2);
    let seen = env.drive(&id2, 20).await;
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed), "{seen:?}");
    let next = env.journal.lockout(&id2).unwrap().unwrap();
    assert!(matches!(
        next.withdrawal.spends[..],
        [Spend::Nonce { nonce: 1, .. }]
    ));
    assert_eq!(env.eth_balance(DEST).await, next.withdrawal.sent);
    let cancel = env.journal.cancellation(&id).unwrap().unwrap();
    let cancel_cost = env.gas_cost(&cancel.broadcast.unwrap().txid).await;
    let next_cost = env.gas_cost(&next.broadcast.unwrap().txid).await;
    env.assert_reconciled((fee - cancel_cost) + (next.withdrawal.fee - next_cost))
        .await;
}

/// The sending address of an Ethereum payment (its nonce spend).
fn payment_sender(entry: &LockOutEntry) -> String {
    match &entry.withdrawal.spends[..] {
        [Spend::Nonce { address, .. }] => address.clone(),
        other => panic!("not an Ethereum payment: {other:?}"),
    }
}

/// A signer combined the payment's signature although the coordinator never got it (the
/// journal lost it), and broadcasts it after the order expired and its cancellation was
/// committed. The chain content decides: the payment was mined, so the lock-out is burned and
/// the cancellation is never signed.
#[tokio::test]
async fn payment_mined_over_its_cancellation_is_burned() {
    let mut env = Env::start().await;
    let ivy = user(9);
    let id = env.funded_lock_out(&ivy, 2 * ETH, ETH).await;
    let out = env.step().await;
    env.block(&out.txs);
    // Signed, but the answer lost before it was attached.
    env.adapter.fail_attach.store(1, Ordering::SeqCst);
    let out = env.step().await;
    assert!(out.txs.is_empty());
    let mut entry = env.journal.lockout(&id).unwrap().unwrap();
    let rogue = env
        .adapter
        .inner
        .attach_signatures(
            &entry.withdrawal,
            &entry
                .signatures
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>(),
        )
        .unwrap();
    entry.signatures = vec![None; entry.signatures.len()];
    env.journal.put_lockout(&id, &entry).unwrap();
    // The order expires; the cancellation is committed.
    let late = now_secs() + env.config.order_ttl_secs + 1;
    env.time_shift_ms = late * 1000;
    let out = env.saga().step(&env.chain, late).await.unwrap();
    assert_eq!(
        Env::status_of(&out, &id),
        Some(SagaStatus::CancellationProposed)
    );
    env.block(&out.txs);
    // The rogue payment reaches the node first and is mined to depth z.
    env.adapter.inner.broadcast(&rogue).await.unwrap();
    env.mine(env.config.depth).await;
    let cancel = env.journal.cancellation(&id).unwrap().unwrap();
    assert_eq!(
        env.adapter
            .spent_by(&entry.withdrawal, &cancel.withdrawal, env.config.depth)
            .await
            .unwrap(),
        SpentBy::Payment
    );
    let calls = env.fleet.calls.load(Ordering::SeqCst);
    let out = env.saga().step(&env.chain, late).await.unwrap();
    assert_eq!(Env::status_of(&out, &id), Some(SagaStatus::BurnProposed));
    env.block(&out.txs);
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::Burned
    );
    assert_eq!(
        env.fleet.calls.load(Ordering::SeqCst),
        calls,
        "cancellation never signed"
    );
    assert_eq!(env.eth_balance(DEST).await, entry.withdrawal.sent);
    assert_eq!(env.chain.totals(Asset::METH).unwrap().burned, ETH);
    assert_eq!(
        env.chain
            .account(&ivy.address)
            .unwrap()
            .balance(Asset::METH),
        ETH
    );
    let cost = env.gas_cost(&rogue.txid).await;
    env.assert_reconciled(entry.withdrawal.fee - cost).await;
}

/// The coordinator dies after the signature is journaled and before the payment is
/// broadcast; chain and journal are reopened from disk. The saga attaches the journaled
/// signature (no second signing request), broadcasts once and burns once.
#[tokio::test]
async fn restart_after_signature_resumes_without_signing_again() {
    let mut env = Env::start().await;
    let hank = user(8);
    let id = env.funded_lock_out(&hank, 3 * ETH, ETH).await;
    let dest_before = env.eth_balance(DEST).await;
    let out = env.step().await;
    env.block(&out.txs);
    env.adapter.fail_attach.store(1, Ordering::SeqCst);
    let out = env.step().await;
    assert!(out.txs.is_empty());
    let entry = env.journal.lockout(&id).unwrap().unwrap();
    assert!(entry.signatures.iter().all(Option::is_some));
    assert!(entry.broadcast.is_none());
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 1);

    let mut env = env.restart();
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::OrderCommitted
    );
    let seen = env.drive(&id, 20).await;
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed), "{seen:?}");
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 1, "signed once");
    assert_eq!(
        env.adapter.broadcasts.load(Ordering::SeqCst),
        1,
        "broadcast once"
    );
    let entry = env.journal.lockout(&id).unwrap().unwrap();
    assert_eq!(
        env.eth_balance(DEST).await - dest_before,
        entry.withdrawal.sent
    );
    assert_eq!(env.chain.totals(Asset::METH).unwrap().burned, ETH);
    let paid = env.gas_cost(&entry.broadcast.as_ref().unwrap().txid).await;
    env.assert_reconciled(entry.withdrawal.fee - paid).await;
    // A restart after the burn changes nothing.
    let env = env.restart();
    assert!(env.step().await.statuses.is_empty());
    assert_eq!(env.chain.totals(Asset::METH).unwrap().burned, ETH);
    env.chain.invariant_check().unwrap();
}

/// The coordinator dies after broadcasting, before the payment is final: after the restart
/// the saga asks the node first, does not broadcast or sign again, and burns at depth z.
#[tokio::test]
async fn restart_after_broadcast_queries_status_first() {
    let mut env = Env::start().await;
    let ivan = user(9);
    let id = env.funded_lock_out(&ivan, 3 * ETH, ETH).await;
    let out = env.step().await;
    env.block(&out.txs);
    let out = env.step().await;
    assert!(matches!(
        Env::status_of(&out, &id),
        Some(SagaStatus::Broadcast { .. })
    ));
    env.mine(2).await;
    let mut env = env.restart();
    let seen = env.drive(&id, 20).await;
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed), "{seen:?}");
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 1);
    assert_eq!(env.adapter.broadcasts.load(Ordering::SeqCst), 1);
    let _ = env.dir.path();
}

/// Two orders from one fleet address hold nonces 0 and 1. The quorum is gone just when the
/// first would start signing: it is refunded. The second does not sign meanwhile (it waits
/// for the older one), and once the refund released nonce 0 it is refunded too, unsigned,
/// instead of signing a payment that could never be mined. The next lock-out reuses nonce 0
/// and is paid and burned.
#[tokio::test]
async fn refund_of_an_older_order_never_leaves_a_nonce_gap_under_a_signed_payment() {
    let mut env = Env::start().await;
    let jane = user(10);
    let address = env.deposit_address(&jane, 0);
    env.deposit_and_credit(&address, 5 * ETH).await;
    env.block(&[lock_out_tx(&jane, 1, ETH), lock_out_tx(&jane, 2, ETH)]);
    let (a, b) = (lockout_id(&jane.address, 1), lockout_id(&jane.address, 2));
    let out = env.step().await;
    env.block(&out.txs);
    assert_eq!(
        (nonce_of(&env.journal, &a), nonce_of(&env.journal, &b)),
        (0, 1)
    );

    env.fleet.fail_ready.store(1, Ordering::SeqCst);
    let out = env.step().await;
    assert!(
        matches!(
            Env::status_of(&out, &a),
            Some(SagaStatus::RefundProposed(_))
        ),
        "{out:?}"
    );
    assert!(
        matches!(
            Env::status_of(&out, &b),
            Some(SagaStatus::WaitingForOlderOrder(_))
        ),
        "{out:?}"
    );
    env.block(&out.txs);
    let out = env.step().await;
    assert!(
        matches!(Env::status_of(&out, &b), Some(SagaStatus::RefundProposed(ref r)) if r.contains("nonce 0")),
        "{out:?}"
    );
    env.block(&out.txs);
    for id in [a, b] {
        assert_eq!(
            env.chain.lockout(&id).unwrap().unwrap().status,
            LockOutStatus::Refunded
        );
    }
    assert_eq!(
        env.fleet.calls.load(Ordering::SeqCst),
        0,
        "nothing was signed"
    );
    assert_eq!(
        env.chain.balance(&jane.address, Asset::METH).unwrap(),
        5 * ETH
    );

    env.block(&[lock_out_tx(&jane, 3, ETH)]);
    let c = lockout_id(&jane.address, 3);
    let seen = env.drive(&c, 20).await;
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed), "{seen:?}");
    assert_eq!(
        nonce_of(&env.journal, &c),
        0,
        "the released nonce is reused"
    );
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 1);
}

/// The one account nonce a journaled Ethereum order spends.
fn nonce_of(journal: &Journal, id: &[u8; 32]) -> u64 {
    match &journal.lockout(id).unwrap().unwrap().withdrawal.spends[..] {
        [Spend::Nonce { nonce, .. }] => *nonce,
        other => panic!("{other:?}"),
    }
}

/// The order is planned but never makes it into a block (the proposer drops it): after
/// `commit_timeout_blocks` the lock-out is refunded, and its planned nonce is free again for
/// the next order.
#[tokio::test]
async fn lock_out_not_committed_in_time_is_refunded_and_frees_its_nonce() {
    let mut env = Env::start().await;
    env.config.commit_timeout_blocks = 3;
    let kate = user(13);
    let address = env.deposit_address(&kate, 0);
    env.deposit_and_credit(&address, 3 * ETH).await;
    let id = env.request_lock_out(&kate, 1, ETH);
    let mut refund = None;
    for _ in 0..5 {
        let out = env.step().await;
        match Env::status_of(&out, &id) {
            Some(SagaStatus::CommitProposed) => env.block(&[]),
            Some(SagaStatus::RefundProposed(reason)) => {
                assert!(reason.contains("no order committed"), "{reason}");
                refund = Some(out.txs);
                break;
            }
            other => panic!("{other:?}"),
        };
    }
    let refund = refund.expect("refunded after the timeout");
    // The same planned order was proposed each time, not a new one.
    assert_eq!(nonce_of(&env.journal, &id), 0);
    env.block(&refund);
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::Refunded
    );
    assert_eq!(
        env.chain.balance(&kate.address, Asset::METH).unwrap(),
        3 * ETH
    );

    env.config.commit_timeout_blocks = 50;
    let next = env.request_lock_out(&kate, 2, ETH);
    let seen = env.drive(&next, 20).await;
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed), "{seen:?}");
    assert_eq!(
        nonce_of(&env.journal, &next),
        0,
        "the unused nonce is reused"
    );
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 1);
}

/// The coordinator dies after journaling the raw transaction but before the node got it.
/// After the restart the node does not know the txid, so the saga hands it the very same
/// bytes (no new signature, no new nonce) and burns once it is final.
#[tokio::test]
async fn restart_after_journaling_the_raw_tx_sends_the_same_bytes() {
    let mut env = Env::start().await;
    let liz = user(14);
    let id = env.funded_lock_out(&liz, 3 * ETH, ETH).await;
    let out = env.step().await;
    env.block(&out.txs);
    env.adapter.fail_broadcast.store(1, Ordering::SeqCst);
    let out = env.step().await;
    assert!(
        matches!(Env::status_of(&out, &id), Some(SagaStatus::Retry(_))),
        "{out:?}"
    );
    let journaled = env
        .journal
        .lockout(&id)
        .unwrap()
        .unwrap()
        .broadcast
        .unwrap();
    assert_eq!(
        env.adapter.status(&journaled.txid).await.unwrap(),
        TxStatus::Unknown
    );
    let mut env = env.restart();
    let seen = env.drive(&id, 20).await;
    assert_eq!(seen.last(), Some(&SagaStatus::BurnProposed), "{seen:?}");
    let entry = env.journal.lockout(&id).unwrap().unwrap();
    assert_eq!(
        entry.broadcast.as_ref(),
        Some(&journaled),
        "the same raw transaction"
    );
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 1);
    assert_eq!(env.adapter.broadcasts.load(Ordering::SeqCst), 1);
    assert_eq!(env.chain.totals(Asset::METH).unwrap().burned, ETH);
}

/// Coordinator TLS material signed by a throw-away CA (`custody://coordinator/1`).
fn coordinator_material() -> custody_proto::tls::TlsMaterial {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names.push(SanType::URI(
        "custody://coordinator/1".to_string().try_into().unwrap(),
    ));
    let cert = params.signed_by(&key, &issuer).unwrap();
    custody_proto::tls::TlsMaterial::from_pem(
        ca_cert.pem().into_bytes(),
        cert.pem().into_bytes(),
        zeroize::Zeroizing::new(key.serialize_pem().into_bytes()),
    )
    .unwrap()
}

/// The production signer, `FleetSigner` over a real `FleetClient`, with every signer of the
/// fleet down (nothing listens on their ports): its probe finds no quorum before any session,
/// so the committed lock-out is refunded and nothing is journaled as signing.
#[tokio::test]
async fn fleet_signer_with_every_signer_down_refunds_before_any_session() {
    use coordinator::engine::FleetSigner;
    use coordinator::fleet::{FleetClient, SignerEndpoint};
    let mut env = Env::start().await;
    let mona = user(15);
    let address = env.deposit_address(&mona, 0);
    env.deposit_and_credit(&address, 2 * ETH).await;
    let id = env.request_lock_out(&mona, 1, ETH);
    let out = env.step().await;
    env.block(&out.txs);

    // Ports that were free a moment ago: connections are refused.
    let endpoints: Vec<SignerEndpoint> = (1..=3u16)
        .map(|index| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            SignerEndpoint {
                index,
                url: format!("https://127.0.0.1:{port}"),
            }
        })
        .collect();
    let client = FleetClient::connect(&coordinator_material(), &endpoints).unwrap();
    let signer = FleetSigner {
        client,
        attempts: 2,
        limit: Duration::from_secs(2),
    };
    let saga = LockOutSaga {
        asset: Asset::METH,
        adapter: &env.adapter,
        signer: &signer,
        key: &env.fleet.key,
        journal: &env.journal,
        config: &env.config,
    };
    let out = saga.step(&env.chain, now_secs()).await.unwrap();
    assert!(
        matches!(Env::status_of(&out, &id), Some(SagaStatus::RefundProposed(ref r)) if r.contains("quorum")),
        "{out:?}"
    );
    assert!(!env.journal.lockout(&id).unwrap().unwrap().signing_started);
    env.block(&out.txs);
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::Refunded
    );
    assert_eq!(
        env.chain.balance(&mona.address, Asset::METH).unwrap(),
        2 * ETH
    );
}

/// A committed order this coordinator did not plan (another proposer's, or a journal lost) is
/// neither signed nor refunded: the saga reports it for an operator and proposes nothing.
#[tokio::test]
async fn committed_order_missing_from_the_journal_is_left_to_an_operator() {
    let mut env = Env::start().await;
    let jay = user(10);
    let id = env.funded_lock_out(&jay, 2 * ETH, ETH).await;
    let foreign =
        custody_proto::chain::OrderCommitment::new(id, b"planned elsewhere".to_vec()).unwrap();
    env.block(&[BlockTx::System(SystemTx::CommitOrder(foreign))]);
    let out = env.step().await;
    assert!(out.txs.is_empty(), "{out:?}");
    assert!(
        matches!(
            Env::status_of(&out, &id),
            Some(SagaStatus::NeedsAttention(ref why)) if why.contains("not in this coordinator's journal")
        ),
        "{out:?}"
    );
    assert_eq!(env.fleet.calls.load(Ordering::SeqCst), 0, "nothing signed");
    assert_eq!(
        env.chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::OrderCommitted
    );
}
