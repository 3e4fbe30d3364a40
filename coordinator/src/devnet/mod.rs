//! `coordinator devnet`: the whole custody system on one machine, in one command (issue #5).
//!
//! 1. anvil (Ethereum, a block a second) and bcoin (Bitcoin regtest, segwit activated, a
//!    block a second mined in the background) as child processes ([`chain_nodes`],
//!    [`funding`]);
//! 2. a fresh PKI, five signer configs (3-of-5, PUBLIC fixture primes, pinned to the devnet
//!    chain's validator) and the coordinator's config ([`pki`]);
//! 3. five `signer-node` processes and one `coordinator run` ([`processes`]);
//! 4. the scripted flow over the public API ([`flow`]): the admin requests key generation
//!    and the coordinator runs the DKG; a user gets an ETH and a BTC deposit address; the dev
//!    chains fund them; the lock-ins are credited; each is locked out to a fresh external
//!    address; the external transactions confirm and the mapped balances are burned;
//! 5. a live status line until Ctrl-C ([`status`]), or exit 0 with `--exit-when-done`.
//!
//! For tests, `--dangerously-cheating-signer N` starts signer N with fault injection (it
//! sends one corrupted zero-knowledge proof in every presigning it joins; the signer-node
//! binary must be built with its `fault-injection` feature). The flow must still finish, and
//! the chain must blame signer N with evidence that verifies ([`blame`]).
//!
//! Everything lives under one directory (configs, keys, data, a log per process); every
//! child is killed when the command ends, however it ends.

pub mod blame;
pub mod chain_nodes;
pub mod flow;
pub mod funding;
pub mod pki;
pub mod processes;
pub mod status;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::adapter::ethereum::{EthereumAdapter, EthereumConfig};
use crate::adapter::{AdapterError, ChainAdapter};
use crate::client::{ApiClient, ClientError};
use chain_nodes::{Anvil, AnvilMining, AnvilOptions, Bcoin, BcoinOptions, ChainNodeError};
use processes::Processes;

/// What to start.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The devnet directory (configs, keys, data, logs).
    pub dir: PathBuf,
    /// Remove `dir` first if it exists (otherwise it must not exist or be empty).
    pub fresh: bool,
    /// The `signer-node` binary (built with the `devnet-fixtures` feature).
    pub signer_bin: PathBuf,
    /// The `coordinator` binary that runs the coordinator process (normally this one).
    pub coordinator_bin: PathBuf,
    /// The directory holding the `anvil` and `bcoin` launchers; `None` runs
    /// `scripts/install-chain-nodes.sh` of the source tree.
    pub chain_nodes_bin: Option<PathBuf>,
    /// Number of signers.
    pub signers: u16,
    /// Signers needed to sign.
    pub threshold: u16,
    /// Confirmations before a deposit is credited and a payout counts as final.
    pub confirmations: u64,
    /// Fixed ports, or free ones chosen at start (for tests and parallel devnets).
    pub ports: Ports,
    /// Ethereum deposit, in wei.
    pub eth_deposit_wei: u128,
    /// Bitcoin deposit (fee included), in satoshi.
    pub btc_deposit_sat: u128,
    /// Stop (exit 0) once the scripted flow has finished instead of showing live status.
    pub exit_when_done: bool,
    /// Tests only: this signer runs with fault injection (a corrupted Πelog proof in every
    /// presigning round 2 it sends), and the flow checks that the chain blames it.
    pub cheating_signer: Option<u16>,
}

/// Where things listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    /// Free loopback ports, probed at start.
    Free,
    /// Fixed ports: signer i on `signer_base + i − 1`.
    Fixed {
        /// The coordinator's API.
        coordinator: u16,
        /// Signer 1's port.
        signer_base: u16,
        /// anvil's JSON-RPC.
        anvil: u16,
        /// bcoin's HTTP.
        bcoin: u16,
    },
}

impl Ports {
    /// The defaults: API on 7300, signers on 7101.., anvil on 8545, bcoin on 48443.
    pub fn default_fixed() -> Self {
        Ports::Fixed {
            coordinator: 7300,
            signer_base: 7101,
            anvil: 8545,
            bcoin: 48443,
        }
    }
}

/// Why the devnet stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// Options that cannot work.
    #[error("{0}")]
    Usage(String),
    /// Setting up files failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The PKI could not be written.
    #[error("PKI: {0}")]
    Pki(#[from] signer_node::pki::PkiError),
    /// A config or key file could not be written.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// TLS material could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] custody_proto::tls::TlsError),
    /// A chain node could not be started.
    #[error(transparent)]
    ChainNode(#[from] ChainNodeError),
    /// A child process failed.
    #[error("{name} {detail}")]
    Process {
        /// Which process.
        name: String,
        /// What happened (with the log's path).
        detail: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// The coordinator API failed.
    #[error(transparent)]
    Api(#[from] ClientError),
    /// An external chain call failed.
    #[error("chain adapter: {0}")]
    Adapter(#[from] AdapterError),
    /// Funding a deposit on a dev chain failed.
    #[error("funding: {0}")]
    Funding(String),
    /// The flow reached a state it should not (refund, failed payout, wrong balance).
    #[error("{0}")]
    Flow(String),
    /// Ctrl-C or SIGTERM before the flow finished.
    #[error("interrupted")]
    Interrupted,
}

/// Everything running; dropped in field order: the background miner, the coordinator and
/// signers, then the chain nodes.
struct Running {
    miner: Option<funding::BackgroundMiner>,
    processes: Processes,
    bcoin: Bcoin,
    anvil: Anvil,
}

fn prepare_dir(options: &DevnetOptions) -> Result<(), DevnetError> {
    let dir = &options.dir;
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|source| DevnetError::Io {
                what: format!("reading {}", dir.display()),
                source,
            })?
            .next()
            .is_none();
        if !empty {
            if !options.fresh {
                return Err(DevnetError::Usage(format!(
                    "{} exists and is not empty; remove it or pass --fresh",
                    dir.display()
                )));
            }
            std::fs::remove_dir_all(dir).map_err(|source| DevnetError::Io {
                what: format!("removing {}", dir.display()),
                source,
            })?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| DevnetError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })
}

/// Runs the devnet; prints what happens on stdout. Returns when the flow is done (with
/// `exit_when_done`) or on Ctrl-C / SIGTERM after it; every child is gone when it returns.
pub fn run(options: DevnetOptions) -> Result<(), DevnetError> {
    if options.threshold == 0 || options.threshold > options.signers {
        return Err(DevnetError::Usage(format!(
            "need 1 ≤ threshold ≤ signers, got {}-of-{}",
            options.threshold, options.signers
        )));
    }
    if options.confirmations == 0 {
        return Err(DevnetError::Usage(
            "--confirmations must be at least 1".into(),
        ));
    }
    if let Some(n) = options.cheating_signer {
        if n == 0 || n > options.signers || options.signers - 1 < options.threshold {
            return Err(DevnetError::Usage(format!(
                "--dangerously-cheating-signer {n}: needs a signer index 1..={} and enough honest signers for the threshold {}",
                options.signers, options.threshold
            )));
        }
    }
    if !options.signer_bin.is_file() {
        return Err(DevnetError::Usage(format!(
            "no signer-node binary at {}; build it with `cargo build --release -p signer-node --features devnet-fixtures` or give --signer-bin",
            options.signer_bin.display()
        )));
    }
    prepare_dir(&options)?;
    // Absolute from here on: the coordinator's config names files in other directories, and
    // it resolves relative paths against its own directory.
    let mut options = options;
    options.dir = std::fs::canonicalize(&options.dir).map_err(|source| DevnetError::Io {
        what: format!("resolving {}", options.dir.display()),
        source,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| DevnetError::Io {
            what: "starting the async runtime".into(),
            source,
        })?;
    runtime.block_on(async move {
        let mut running = None;
        let done = std::cell::Cell::new(false);
        let result = tokio::select! {
            r = start_and_drive(&options, &mut running, &done) => r,
            // Ctrl-C after the flow is the normal way to stop; before it, an interruption.
            () = shutdown_signal() => if done.get() {
                println!("devnet: stopping every process");
                Ok(())
            } else {
                Err(DevnetError::Interrupted)
            },
        };
        if let Some(r) = running.as_mut() {
            r.processes.kill_all();
        }
        drop(running);
        result
    })
}

async fn start_and_drive(
    options: &DevnetOptions,
    slot: &mut Option<Running>,
    done: &std::cell::Cell<bool>,
) -> Result<(), DevnetError> {
    let dir = &options.dir;
    let m = options.signers;
    let (coordinator_port, signer_ports, anvil_port, bcoin_port) = match &options.ports {
        Ports::Free => {
            let mut signers = Vec::new();
            for _ in 0..m {
                signers.push(chain_nodes::free_port()?);
            }
            (chain_nodes::free_port()?, signers, None, None)
        }
        Ports::Fixed {
            coordinator,
            signer_base,
            anvil,
            bcoin,
        } => (
            *coordinator,
            (0..m).map(|i| signer_base + i).collect(),
            Some(*anvil),
            Some(*bcoin),
        ),
    };

    // PKI, signer configs, accounts (the PKI writer wants an empty directory)
    let files = pki::write_fleet(dir, m, &signer_ports)?;

    // chain nodes
    let bin_dir = match &options.chain_nodes_bin {
        Some(d) => d.clone(),
        None => {
            println!("installing the pinned chain nodes (scripts/install-chain-nodes.sh) ...");
            chain_nodes::install_chain_nodes(&chain_nodes::default_install_script())?
        }
    };
    let anvil = Anvil::start(&AnvilOptions {
        bin_dir: bin_dir.clone(),
        chain_id: 31337,
        port: anvil_port,
        mining: AnvilMining::Interval(1),
        accounts: 3,
        log: Some(dir.join("anvil.log")),
    })?;
    println!(
        "anvil (Ethereum dev chain 31337, a block a second): {}",
        anvil.url
    );
    let bcoin = Bcoin::start(&BcoinOptions {
        bin_dir,
        prefix: dir.join("bcoin"),
        port: bcoin_port,
        api_key: "custody-devnet".into(),
        // In memory: the devnet starts from a fresh directory anyway, and the address index of
        // an on-disk bcoin did not see the miner's coinbases in a trial run.
        memory: true,
    })
    .await?;
    println!("bcoin (Bitcoin regtest): {}", bcoin.url);
    let running = slot.insert(Running {
        miner: None,
        processes: Processes::default(),
        bcoin,
        anvil,
    });
    let btc = running.bcoin.adapter()?;
    let miner = funding::OutsideKey::random(&btc)?;
    let spinner = status::spinner("bcoin: mining ~432 regtest blocks to activate segwit");
    funding::activate_segwit(&btc, &miner.address.address).await?;
    spinner.finish_and_clear();
    let btc_start = btc.tip_height().await?;
    println!("bcoin: segwit active at height {btc_start}; mining a block a second from now on");
    running.miner = Some(funding::BackgroundMiner::start(
        running.bcoin.adapter()?,
        miner.address.address.clone(),
        Duration::from_secs(1),
    ));
    let eth = EthereumAdapter::connect(EthereumConfig::new(&running.anvil.url, 31337)).await?;

    // the coordinator's config, now that the chain nodes' endpoints are known
    let config = pki::write_coordinator_config(
        &files,
        coordinator_port,
        &signer_ports,
        options.threshold,
        options.confirmations,
        &pki::ChainEndpoints {
            eth_url: running.anvil.url.clone(),
            eth_chain_id: 31337,
            btc_url: running.bcoin.url.clone(),
            btc_api_key: running.bcoin.api_key.clone(),
            btc_start_height: btc_start,
        },
    )?;
    println!(
        "PKI, {m} signer configs ({}-of-{m}, PUBLIC fixture primes: devnet only) and the coordinator config in {}",
        options.threshold,
        dir.display()
    );

    // signers
    for (i, path) in files.signer_configs.iter().enumerate() {
        let log = path.with_file_name("node.log");
        let mut init = Command::new(&options.signer_bin);
        init.args(["init", "--config"]).arg(path);
        processes::run_once(&format!("signer {} init", i + 1), init, &log)?;
        let mut run = Command::new(&options.signer_bin);
        run.args(["run", "--config"]).arg(path);
        if options.cheating_signer == u16::try_from(i + 1).ok() {
            run.arg("--dangerously-inject-faults")
                .env(signer_node::fault::FAULT_ENV, "presign-r2-elog");
            println!(
                "signer {} runs as a DELIBERATE CHEATER (fault injection, tests only)",
                i + 1
            );
        }
        running
            .processes
            .spawn(&format!("signer {}", i + 1), run, &log)?;
    }
    for (i, port) in signer_ports.iter().enumerate() {
        running
            .processes
            .wait_for_port(&format!("signer {}", i + 1), *port, Duration::from_secs(60))
            .await?;
    }
    println!(
        "{m} signer processes up on ports {} (logs: {}/signer-N/node.log)",
        signer_ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        dir.display()
    );

    // coordinator
    let coordinator_log = files.coordinator_dir.join("coordinator.log");
    let mut run = Command::new(&options.coordinator_bin);
    run.args(["run", "--config"]).arg(&config);
    running
        .processes
        .spawn("coordinator", run, &coordinator_log)?;
    running
        .processes
        .wait_for_port("coordinator", coordinator_port, Duration::from_secs(60))
        .await?;
    let endpoint = format!("https://127.0.0.1:{coordinator_port}");
    let tls = custody_proto::tls::TlsMaterial::load(
        &files.ca,
        &files.client_tls.join("cert.pem"),
        &files.client_tls.join("key.pem"),
    )?;
    let api = ApiClient::connect(&tls, &endpoint)?;
    println!(
        "coordinator up: API {endpoint} (log: {})",
        coordinator_log.display()
    );
    println!(
        "  try: {} --endpoint {endpoint} --tls-dir {} status",
        options.coordinator_bin.with_file_name("custody").display(),
        files.client_tls.display()
    );

    let mut env = flow::Env {
        api,
        eth,
        btc,
        eth_rpc: crate::adapter::jsonrpc::JsonRpcClient::new(
            &running.anvil.url,
            None,
            Duration::from_secs(10),
        )
        .map_err(AdapterError::from)?,
        miner,
        files: &files,
        options,
        running_check: &mut running.processes,
    };
    let summary = flow::run(&mut env).await?;
    if let Some(cheater) = options.cheating_signer {
        blame::cheater_blamed(&mut env, cheater).await?;
    }
    done.set(true);
    if options.exit_when_done {
        println!("devnet: done; stopping every process (--exit-when-done)");
        return Ok(());
    }
    println!("devnet: running; Ctrl-C stops every process");
    status::live(&mut env, &summary).await
}

async fn shutdown_signal() {
    crate::signals::stop_requested("the devnet").await;
}
