//! Lock-out latency, from the `RequestLockOut` transaction's submission to the signed
//! external transaction in the Ethereum node's pool (broadcast), with a warm presignature
//! pool and, for comparison, presigning on demand.
//!
//! `cargo bench -p coordinator --bench lockout_latency -- [--lockouts N] [--cold N]
//! [--block-ms MS] [--engine-ms MS]`
//!
//! Everything is real and on this machine: a coordinator in-process (sled chain, solo
//! consensus, node loop, the engine runner of `coordinator run`), three signers in-process
//! (2-of-3, mTLS on loopback, fixture primes for aux info), and anvil. Each lock-out waits
//! for the previous one to be burned, so they do not overlap; anvil mines only when told, so
//! "broadcast" is observed as the fleet address's pending nonce moving. The path between the
//! two points: one block for the request, an engine tick to propose the order, one block for
//! the `CommitOrder`, an engine tick to probe the fleet and sign (one signing round with a
//! pooled presignature; presign + sign on demand), then `eth_sendRawTransaction`.
//! Prints one JSON line per series and a readable summary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/api_support/mod.rs"]
mod api_support;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_support::{signed, user, User, CHAIN_ID};
use coordinator::adapter::ethereum::{EthereumAdapter, EthereumConfig};
use coordinator::adapter::jsonrpc::JsonRpcClient;
use coordinator::chain::{
    lockout_id, Asset, Chain, Consensus, Genesis, LockOutStatus, SoloConsensus, TxBody,
};
use coordinator::engine::{FleetSigner, Journal};
use coordinator::fleet::FleetClient;
use coordinator::node::{Node, NodeConfig};
use coordinator::runner::{Engine, KeygenSettings};
use custody_proto::tls::TlsMaterial;
use serde_json::json;
use support::anvil::DEV_ACCOUNT_0;
use support::signers::Signers;

const ETH: u128 = 1_000_000_000_000_000_000;

struct Args {
    lockouts: usize,
    cold: usize,
    block_ms: u64,
    engine_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        lockouts: 20,
        cold: 5,
        block_ms: 100,
        engine_ms: 50,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = || argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match argv[i].as_str() {
            "--lockouts" => a.lockouts = value().expect("--lockouts N") as usize,
            "--cold" => a.cold = value().expect("--cold N") as usize,
            "--block-ms" => a.block_ms = value().expect("--block-ms MS"),
            "--engine-ms" => a.engine_ms = value().expect("--engine-ms MS"),
            // cargo bench passes --bench; anything else is ignored.
            _ => {}
        }
        i += 1;
    }
    a
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn pending_nonce(rpc: &JsonRpcClient, address: &str) -> u64 {
    let hex: String = rpc
        .call("eth_getTransactionCount", json!([address, "pending"]))
        .await
        .unwrap();
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap()
}

async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

struct World {
    node: Node<SoloConsensus>,
    rpc: JsonRpcClient,
    alice: User,
    nonce: u64,
    source: String,
    path: Vec<u32>,
}

impl World {
    async fn submit(&mut self, body: TxBody) -> u64 {
        let nonce = self.nonce;
        self.node
            .submit(&signed(&self.alice, nonce, body))
            .unwrap()
            .wait()
            .await
            .unwrap();
        self.nonce += 1;
        nonce
    }

    /// One lock-out: request → broadcast latency; then mined and burned.
    async fn lock_out(&mut self) -> Duration {
        let before = pending_nonce(&self.rpc, &self.source).await;
        let start = Instant::now();
        let nonce = self.nonce;
        let submitted = self
            .node
            .submit(&signed(
                &self.alice,
                nonce,
                TxBody::RequestLockOut {
                    asset: Asset::METH,
                    to_external: "0x00000000000000000000000000000000000b3e7c".into(),
                    amount: ETH / 100,
                },
            ))
            .unwrap();
        self.nonce += 1;
        loop {
            if pending_nonce(&self.rpc, &self.source).await > before {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no broadcast");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let latency = start.elapsed();
        submitted.wait().await.unwrap();
        let id = lockout_id(&self.alice.address, nonce);
        let _: serde_json::Value = self.rpc.call("anvil_mine", json!(["0x3"])).await.unwrap();
        let node = self.node.clone();
        wait_until(Duration::from_secs(60), || {
            node.with_chain(|c| c.lockout(&id).unwrap().unwrap().status)
                .unwrap()
                == LockOutStatus::Burned
        })
        .await;
        latency
    }
}

fn summary(name: &str, args: &Args, latencies: &mut [f64]) {
    latencies.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(latencies, 50.0),
        percentile(latencies, 99.0),
        percentile(latencies, 100.0),
    );
    println!(
        "{{\"bench\":\"lockout_latency\",\"series\":\"{name}\",\"chain\":\"ethereum\",\"threshold\":2,\"signers\":3,\"lockouts\":{},\"block_interval_ms\":{},\"engine_interval_ms\":{},\"p50_ms\":{p50:.1},\"p99_ms\":{p99:.1},\"max_ms\":{max:.1}}}",
        latencies.len(),
        args.block_ms,
        args.engine_ms
    );
    eprintln!(
        "{name}: {} lock-outs, request → broadcast p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        latencies.len()
    );
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let dir = tempfile::tempdir().unwrap();
    let anvil = support::anvil::start(31337);
    let rpc = JsonRpcClient::new(&anvil.url, None, Duration::from_secs(10)).unwrap();

    let validator_public =
        coordinator::config::write_validator_key(&dir.path().join("validator.key")).unwrap();
    let hex_key: String = validator_public
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let signers = Signers::start(dir.path(), "benchfleet", 3, CHAIN_ID, &hex_key, &[]).await;
    let material = TlsMaterial::load(
        &signers.layout.ca_cert,
        &signers.coordinator_dir().join("cert.pem"),
        &signers.coordinator_dir().join("key.pem"),
    )
    .unwrap();

    let consensus = SoloConsensus::new(
        coordinator::config::read_validator_key(&dir.path().join("validator.key")).unwrap(),
    )
    .unwrap();
    let admin = user(100);
    let genesis = Genesis {
        chain_id: CHAIN_ID.into(),
        admin: admin.address,
        validators: consensus.validator_set().clone(),
    };
    let chain = Chain::open(&dir.path().join("chain"), genesis, consensus).unwrap();
    let (node, _producer) = Node::start(
        chain,
        NodeConfig {
            block_interval: Duration::from_millis(args.block_ms),
            ..NodeConfig::default()
        },
    );
    let fleet = Arc::new(FleetSigner {
        client: FleetClient::connect(&material, &signers.endpoints).unwrap(),
        attempts: 3,
        limit: Duration::from_secs(120),
    });
    let engine = Engine::new(
        node.clone(),
        Arc::new(Journal::open(&dir.path().join("journal")).unwrap()),
        Some(Arc::clone(&fleet)),
        Duration::from_millis(args.engine_ms),
        2,
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    engine.spawn_keygen(
        KeygenSettings {
            threshold: 2,
            limit: Duration::from_secs(300),
        },
        stopped.clone(),
    );
    let adapter = EthereumAdapter::connect(EthereumConfig::new(anvil.url.clone(), 31337))
        .await
        .unwrap();
    let mut asset_config = coordinator::config::DepthSettings {
        confirmations: Some(2),
        ..Default::default()
    }
    .engine_config("benchfleet")
    .unwrap();
    asset_config.order_ttl_secs = 3600;
    engine.spawn_asset(Asset::METH, adapter, asset_config, stopped.clone());
    let pool_task = engine.spawn_presign_pool(Asset::METH, stopped.clone());

    // The key, a deposit address, 10 ETH credited.
    eprintln!("DKG (2-of-3) …");
    node.submit(&signed(&admin, 0, TxBody::RequestKeygen))
        .unwrap()
        .wait()
        .await
        .unwrap();
    let n = node.clone();
    wait_until(Duration::from_secs(300), || {
        n.with_chain(|c| c.latest_fleet_key().unwrap().is_some())
            .unwrap()
    })
    .await;
    let key = node
        .with_chain(|c| {
            coordinator::engine::keys::latest_fleet_key(c, 0)
                .unwrap()
                .unwrap()
        })
        .unwrap();
    let alice = user(1);
    let mut world = World {
        node: node.clone(),
        rpc,
        alice,
        nonce: 0,
        source: String::new(),
        path: Vec::new(),
    };
    world
        .submit(TxBody::RequestDepositAddress { asset: Asset::METH })
        .await;
    let issued = node
        .with_chain(|c| c.deposit_addresses(&world.alice.address).unwrap())
        .unwrap();
    world.path = issued[0].path.indices().iter().map(|i| i.get()).collect();
    let child = key.child_key(&world.path).unwrap();
    world.source = coordinator::adapter::ethereum::tx::checksummed(
        &coordinator::adapter::ethereum::tx::address_of(&child),
    );
    let _: String = world
        .rpc
        .call(
            "eth_sendTransaction",
            json!([{ "from": DEV_ACCOUNT_0, "to": world.source, "value": format!("{:#x}", 10 * ETH) }]),
        )
        .await
        .unwrap();
    let _: serde_json::Value = world.rpc.call("anvil_mine", json!(["0x3"])).await.unwrap();
    let n = node.clone();
    let alice_address = world.alice.address;
    wait_until(Duration::from_secs(60), || {
        n.with_chain(|c| c.balance(&alice_address, Asset::METH).unwrap())
            .unwrap()
            == 10 * ETH
    })
    .await;

    // Warm: before each lock-out the pool holds a presignature for the source path.
    eprintln!(
        "{} lock-outs with a warm presignature pool …",
        args.lockouts
    );
    let mut warm = Vec::new();
    for _ in 0..args.lockouts {
        let (fleet, key, path) = (Arc::clone(&fleet), key.clone(), world.path.clone());
        wait_until(Duration::from_secs(120), move || {
            fleet.client.pooled(&key, &path) >= 1
        })
        .await;
        warm.push(world.lock_out().await.as_secs_f64() * 1e3);
    }

    // Cold: the pool task stopped and emptied, every signature presigns on demand.
    if let Some(task) = pool_task {
        task.abort();
    }
    eprintln!("{} lock-outs presigning on demand …", args.cold);
    let mut cold = Vec::new();
    for _ in 0..args.cold {
        while fleet.client.pooled(&key, &world.path) > 0 {
            // Spend what the pool holds on a lock-out that is not measured.
            world.lock_out().await;
        }
        cold.push(world.lock_out().await.as_secs_f64() * 1e3);
    }
    summary("warm_pool", &args, &mut warm);
    summary("on_demand", &args, &mut cold);
}
