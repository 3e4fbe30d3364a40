//! Both flows on both chains, end to end, with real processes: the `coordinator` binary
//! (solo chain, engine loop, API over mTLS) as a child process, a real anvil and a real
//! bcoin regtest node, and three real signers (2-of-3, in this test's process, pinned to the
//! coordinator's validator key). Everything a wallet does goes through the public gRPC API.
//!
//! One run, in order (one DKG for all of it):
//! 1. the admin's `RequestKeygen`: the coordinator runs the DKG and records the key;
//! 2. deposit addresses on both chains (external addresses from the API), funded on anvil
//!    and bcoin; an ETH deposit with 1 confirmation is not credited, both are once they have
//!    z = 2;
//! 3. an ETH lock-out during which the coordinator is killed (SIGKILL) once the order is
//!    committed, and restarted: paid exactly once (the fleet address's nonce is 1), burned,
//!    signed with a presignature made ahead (`presign_per_path = 1`);
//! 4. a BTC lock-out with signer 1 down: the other two sign; paid and burned;
//! 5. signer 2 down too (quorum lost): an ETH lock-out is refunded, nothing is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_support;
mod bcoin_node;
mod support;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_support::{signed, user, User, CHAIN_ID};
use bcoin_node::{activate_segwit, miner_pays, outside, BcoinNode};
use coordinator::adapter::jsonrpc::JsonRpcClient;
use coordinator::adapter::ChainAdapter;
use coordinator::chain::{Asset, TxBody};
use custody_proto::coordinator::v1 as pb;
use custody_proto::coordinator::v1::coordinator_client::CoordinatorClient;
use custody_proto::tls::TlsMaterial;
use serde_json::json;
use support::anvil::{Anvil, DEV_ACCOUNT_0};
use support::signers::Signers;
use tonic::transport::Channel;

const ETH: u128 = 1_000_000_000_000_000_000;
const BTC: u128 = 100_000_000;
const FLEET: &str = "e2efleet";

/// The coordinator process; killed when dropped.
struct Coordinator {
    child: Child,
    addr: String,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `coordinator run`, its log appended to `log`; returns once it listens.
fn start_coordinator(config: &Path, log: &Path) -> Coordinator {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Coordinator { child, addr }
}

/// Runs the `custody` CLI against the coordinator at `addr` with the wallet's client
/// certificate; its stdout, after checking it succeeded.
fn custody(signers: &Signers, addr: &str, args: &[&str]) -> String {
    let client = &signers.layout.client_dirs[0];
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .arg("--endpoint")
        .arg(format!("https://{addr}"))
        .arg("--ca")
        .arg(&signers.layout.ca_cert)
        .arg("--cert")
        .arg(client.join("cert.pem"))
        .arg("--tls-key")
        .arg(client.join("key.pem"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "custody {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls `probe` every 200 ms until it gives a value; panics with `what` (and the
/// coordinator's log) after `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, log: &Path, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if start.elapsed() > limit {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "timed out after {limit:?} waiting for {what}; coordinator log (last lines, newest first):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Wallet {
    tls: TlsMaterial,
    client: CoordinatorClient<Channel>,
}

impl Wallet {
    fn connect(tls: TlsMaterial, addr: &str) -> Self {
        let client = CoordinatorClient::new(tls.channel(&format!("https://{addr}")).unwrap());
        Self { tls, client }
    }

    fn reconnect(&mut self, addr: &str) {
        self.client = CoordinatorClient::new(self.tls.channel(&format!("https://{addr}")).unwrap());
    }

    async fn submit(
        &mut self,
        u: &User,
        nonce: u64,
        body: TxBody,
    ) -> pb::SubmitTransactionResponse {
        self.client
            .submit_transaction(pb::SubmitTransactionRequest {
                transaction: signed(u, nonce, body),
                wait: true,
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn balance(&mut self, u: &User, asset: Asset) -> u128 {
        let account = self
            .client
            .get_account(pb::GetAccountRequest {
                address: u.address.0.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        let code = match asset {
            Asset::METH => pb::Asset::Meth,
            _ => pb::Asset::Mbtc,
        } as i32;
        account
            .balances
            .iter()
            .find(|b| b.asset == code)
            .map(|b| b.amount.parse().unwrap())
            .unwrap_or(0)
    }

    /// Waits until lock-out `id` reaches `stage` (see [`wait_for`]).
    async fn wait_stage(
        &self,
        id: &[u8],
        stage: pb::LockOutStage,
        what: &str,
        limit: Duration,
        log: &Path,
    ) {
        wait_for(what, limit, log, || {
            let mut w = Wallet {
                tls: self.tls.clone(),
                client: self.client.clone(),
            };
            async move { (w.stage(id).await == Some(stage)).then_some(()) }
        })
        .await;
    }

    /// The lock-out's stage, `None` while the coordinator does not answer.
    async fn stage(&mut self, id: &[u8]) -> Option<pb::LockOutStage> {
        let r = self
            .client
            .get_lock_out(pb::GetLockOutRequest {
                lock_out_id: id.to_vec(),
            })
            .await
            .ok()?
            .into_inner();
        pb::LockOutStage::try_from(r.stage).ok()
    }
}

/// Mines a block on both dev chains every 300 ms while `on` is set.
fn spawn_miner(anvil: JsonRpcClient, bcoin: JsonRpcClient, to: String, on: Arc<AtomicBool>) {
    tokio::spawn(async move {
        loop {
            if on.load(Ordering::SeqCst) {
                let _ = anvil.call::<serde_json::Value>("evm_mine", json!([])).await;
                let _ = bcoin
                    .call::<Vec<String>>("generatetoaddress", json!([1, to]))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}

async fn eth_balance(anvil: &JsonRpcClient, address: &str) -> u128 {
    let hex: String = anvil
        .call("eth_getBalance", json!([address, "latest"]))
        .await
        .unwrap();
    u128::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap()
}

async fn eth_nonce(anvil: &JsonRpcClient, address: &str) -> u64 {
    let hex: String = anvil
        .call("eth_getTransactionCount", json!([address, "latest"]))
        .await
        .unwrap();
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap()
}

fn write_config(
    dir: &Path,
    signers: &Signers,
    admin: &User,
    anvil: &Anvil,
    bcoin: &BcoinNode,
) -> PathBuf {
    let net = &signers.layout;
    let coordinator_dir = signers.coordinator_dir();
    let list: Vec<String> = signers
        .endpoints
        .iter()
        .map(|e| format!("{{ index = {}, url = \"{}\" }}", e.index, e.url))
        .collect();
    let path = dir.join("coordinator.toml");
    std::fs::write(
        &path,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "data"
chain_id = "{CHAIN_ID}"
admin = "{admin}"
validator_key = "validator.key"
block_interval_ms = 100

[tls]
ca = "{ca}"
cert = "{cert}"
key = "{key}"

[fleet]
fleet_id = "{FLEET}"
threshold = 2
session_timeout_secs = 120
presign_per_path = 1
signers = [{list}]

[ethereum]
rpc_url = "{eth}"
chain_id = {eth_chain}
confirmations = 2

[bitcoin]
url = "{btc}"
api_key = "{btc_key}"
hrp = "rb"
confirmations = 2

[engine]
interval_ms = 200
"#,
            admin = hex_string(&admin.address.0),
            ca = net.ca_cert.display(),
            cert = coordinator_dir.join("cert.pem").display(),
            key = coordinator_dir.join("key.pem").display(),
            list = list.join(", "),
            eth = anvil.url,
            eth_chain = anvil.chain_id,
            btc = bcoin.url,
            btc_key = bcoin.api_key,
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_in_and_lock_out_on_both_chains_with_a_restart_a_signer_down_and_quorum_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("coordinator.log");
    let (bcoin, anvil) = tokio::join!(BcoinNode::start(), async { support::anvil::start(31337) });
    let btc_adapter = bcoin.adapter();
    let miner = outside(&btc_adapter, 0x42);
    activate_segwit(&btc_adapter, &miner.fleet.address).await;
    let anvil_rpc = JsonRpcClient::new(&anvil.url, None, Duration::from_secs(10)).unwrap();
    let mining = Arc::new(AtomicBool::new(true));
    spawn_miner(
        JsonRpcClient::new(&anvil.url, None, Duration::from_secs(10)).unwrap(),
        JsonRpcClient::new(
            &bcoin.url,
            Some(("x".into(), bcoin.api_key.clone())),
            Duration::from_secs(10),
        )
        .unwrap(),
        miner.fleet.address.clone(),
        Arc::clone(&mining),
    );

    let validator =
        coordinator::config::write_validator_key(&dir.path().join("validator.key")).unwrap();
    let mut signers = Signers::start(
        dir.path(),
        FLEET,
        3,
        CHAIN_ID,
        &hex_string(&validator),
        &["wallet"],
    )
    .await;
    let admin = user(100);
    let alice = user(1);
    let config = write_config(dir.path(), &signers, &admin, &anvil, &bcoin);
    let mut coordinator = start_coordinator(&config, &log);
    let client_dir = &signers.layout.client_dirs[0];
    let mut wallet = Wallet::connect(
        TlsMaterial::load(
            &signers.layout.ca_cert,
            &client_dir.join("cert.pem"),
            &client_dir.join("key.pem"),
        )
        .unwrap(),
        &coordinator.addr,
    );

    // 1. The chain asks for a key; the coordinator runs the DKG on the fleet and records it.
    //    Through the `custody` CLI as an operator runs it: it waits for the key.
    let admin_key = dir.path().join("admin.key");
    std::fs::write(&admin_key, hex_string(&admin.key.to_bytes())).unwrap();
    let out = custody(
        &signers,
        &coordinator.addr,
        &["keygen", "--key", admin_key.to_str().unwrap()],
    );
    assert!(
        out.contains("fleet key 0") && out.contains("(2-of-3"),
        "{out}"
    );
    let key = wait_for("the fleet key", Duration::from_secs(10), &log, || {
        let mut c = wallet.client.clone();
        async move {
            c.get_status(pb::GetStatusRequest {})
                .await
                .ok()?
                .into_inner()
                .fleet_key
        }
    })
    .await;
    assert_eq!((key.threshold, key.holders.clone()), (2, vec![1, 2, 3]));

    // 2. Deposit addresses, funded on both chains, credited at depth 2.
    wallet
        .submit(
            &alice,
            0,
            TxBody::RequestDepositAddress { asset: Asset::METH },
        )
        .await;
    wallet
        .submit(
            &alice,
            1,
            TxBody::RequestDepositAddress { asset: Asset::MBTC },
        )
        .await;
    let addresses = wallet
        .client
        .get_deposit_addresses(pb::GetDepositAddressesRequest {
            account: alice.address.0.to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .addresses;
    let external = |asset: pb::Asset| {
        addresses
            .iter()
            .find(|a| a.asset == asset as i32)
            .map(|a| a.address.clone())
            .unwrap()
    };
    let (eth_deposit, btc_deposit) = (external(pb::Asset::Meth), external(pb::Asset::Mbtc));
    assert!(eth_deposit.starts_with("0x") && btc_deposit.starts_with("rb1q"));
    // Mining paused: the ETH deposit gets one confirmation, below z = 2, and is not
    // credited however long the watcher looks; the next block makes it creditable.
    mining.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _: String = anvil_rpc
        .call(
            "eth_sendTransaction",
            json!([{ "from": DEV_ACCOUNT_0, "to": eth_deposit, "value": format!("{:#x}", 2 * ETH) }]),
        )
        .await
        .unwrap();
    let _: serde_json::Value = anvil_rpc.call("evm_mine", json!([])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        wallet.balance(&alice, Asset::METH).await,
        0,
        "a deposit with 1 confirmation (z = 2) is not credited"
    );
    mining.store(true, Ordering::SeqCst);
    miner_pays(&btc_adapter, &miner, &btc_deposit, BTC, vec![]).await;
    // The miner's payment of 1 BTC includes its fee: what arrived is credited.
    let mut credited = Vec::new();
    for asset in [Asset::METH, Asset::MBTC] {
        let amount = wait_for(
            &format!("{asset} credited"),
            Duration::from_secs(60),
            &log,
            || {
                let mut w = Wallet {
                    tls: wallet.tls.clone(),
                    client: wallet.client.clone(),
                };
                let alice = &alice;
                async move { Some(w.balance(alice, asset).await).filter(|b| *b > 0) }
            },
        )
        .await;
        credited.push(amount);
    }
    assert_eq!(credited[0], 2 * ETH);
    let btc_credited = credited[1];
    assert!(
        btc_credited > BTC - 10_000 && btc_credited <= BTC,
        "{btc_credited}"
    );

    // 3. An ETH lock-out; the coordinator is killed once its order is committed (mining
    //    paused, so the payment cannot be final yet) and restarted.
    let eth_dest = "0x000000000000000000000000000000000000e2e1";
    // The pool task has made a presignature ahead for the mETH deposit path (m/1/0).
    wait_for(
        "a presignature made ahead for the mETH deposit path",
        Duration::from_secs(120),
        &log,
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .any(|l| {
                    l.contains("presignature made ahead")
                        && l.contains("asset=mETH")
                        && l.contains("path=[1, 0]")
                })
                .then_some(())
        },
    )
    .await;
    mining.store(false, Ordering::SeqCst);
    let r = wallet
        .submit(
            &alice,
            2,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: eth_dest.into(),
                amount: ETH / 2,
            },
        )
        .await;
    let eth_lock_out = r.lock_out_id.clone();
    wallet
        .wait_stage(
            &eth_lock_out,
            pb::LockOutStage::OrderCommitted,
            "the ETH order committed",
            Duration::from_secs(60),
            &log,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    coordinator.child.kill().unwrap();
    coordinator.child.wait().unwrap();
    mining.store(true, Ordering::SeqCst);
    coordinator = start_coordinator(&config, &log);
    wallet.reconnect(&coordinator.addr);
    wallet
        .wait_stage(
            &eth_lock_out,
            pb::LockOutStage::Burned,
            "the ETH lock-out burned",
            Duration::from_secs(120),
            &log,
        )
        .await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("signing with a pooled presignature"),
        "the deposit path's presignature was made ahead"
    );
    // The lock-out's fee is paid from its amount (the mapped supply covers what left).
    let received = eth_balance(&anvil_rpc, eth_dest).await;
    assert!(
        received < ETH / 2 && received > ETH / 2 - ETH / 1000,
        "{received}"
    );
    assert_eq!(
        eth_nonce(&anvil_rpc, &eth_deposit).await,
        1,
        "one payment from the deposit address, not two"
    );

    // 4. Signer 1 down: a BTC lock-out is signed by the other two.
    signers.stop(1).await;
    let btc_dest = outside(&btc_adapter, 0x77);
    let start_height = btc_adapter.tip_height().await.unwrap();
    //    Through the CLI, which waits until the lock-out is burned.
    let alice_key = dir.path().join("alice.key");
    std::fs::write(&alice_key, hex_string(&alice.key.to_bytes())).unwrap();
    let amount = (BTC * 3 / 10).to_string();
    let out = custody(
        &signers,
        &coordinator.addr,
        &[
            "lock-out",
            "--key",
            alice_key.to_str().unwrap(),
            "--asset",
            "mbtc",
            "--to",
            &btc_dest.fleet.address,
            "--amount",
            &amount,
            "--wait",
            "--timeout-secs",
            "120",
        ],
    );
    assert!(out.contains(": burned"), "{out}");
    let tip = btc_adapter.tip_height().await.unwrap();
    let paid = btc_adapter
        .deposits(std::slice::from_ref(&btc_dest.fleet), start_height, tip)
        .await
        .unwrap();
    assert_eq!(paid.len(), 1, "{paid:?}");
    let fee = BTC * 3 / 10 - paid[0].amount;
    assert!(fee > 0 && fee < 10_000, "fee {fee}: paid from the amount");

    // 5. Signer 2 down as well: one of three, t = 2. The lock-out is refunded.
    signers.stop(2).await;
    let r = wallet
        .submit(
            &alice,
            4,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "0x000000000000000000000000000000000000e2e2".into(),
                amount: ETH / 4,
            },
        )
        .await;
    let refunded = r.lock_out_id.clone();
    wallet
        .wait_stage(
            &refunded,
            pb::LockOutStage::Refunded,
            "the ETH lock-out refunded",
            Duration::from_secs(120),
            &log,
        )
        .await;
    assert_eq!(
        eth_balance(&anvil_rpc, "0x000000000000000000000000000000000000e2e2").await,
        0
    );

    // Balances: 2 − 0.5 ETH and the BTC credit − 0.3 BTC; supply follows the burns.
    assert_eq!(wallet.balance(&alice, Asset::METH).await, 2 * ETH - ETH / 2);
    assert_eq!(
        wallet.balance(&alice, Asset::MBTC).await,
        btc_credited - BTC * 3 / 10
    );
    let status = wallet
        .client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let supply: Vec<&str> = status.totals.iter().map(|t| t.supply.as_str()).collect();
    assert_eq!(
        supply,
        vec![
            (2 * ETH - ETH / 2).to_string().as_str(),
            (btc_credited - BTC * 3 / 10).to_string().as_str()
        ]
    );
}
