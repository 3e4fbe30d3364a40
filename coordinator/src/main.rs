//! `coordinator`: runs one coordinator replica (solo consensus: it proposes and certifies
//! every block) with its public gRPC API over mTLS.
//!
//! - `coordinator init-validator-key --out FILE` writes a new Ed25519 validator key (0600)
//!   and prints its public key.
//! - `coordinator run --config FILE` opens (or creates) the chain in `data_dir/chain`,
//!   starts the node loop and serves `custody.coordinator.v1`, health and reflection until
//!   Ctrl-C / SIGTERM.
//! - `coordinator devnet [--exit-when-done]` starts anvil, bcoin, five signers and a
//!   coordinator, runs a lock-in and a lock-out on each chain and shows live status
//!   (`coordinator::devnet`; `scripts/devnet.sh` builds and runs it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use coordinator::adapter::bitcoin::{BitcoinAdapter, BitcoinConfig};
use coordinator::adapter::ethereum::{EthTxType, EthereumAdapter, EthereumConfig};
use coordinator::api::{ApiSettings, ExternalAddresses};
use coordinator::chain::{Asset, Chain, Consensus, Genesis, SoloConsensus};
use coordinator::config::{self, Config};
use coordinator::engine::{FleetSigner, Journal};
use coordinator::fleet::FleetClient;
use coordinator::node::Node;
use coordinator::runner::{Engine, KeygenSettings};
use custody_proto::identity::Role;
use custody_proto::tls::TlsMaterial;

#[derive(Parser)]
#[command(name = "coordinator", version, about = "Custody coordinator replica")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the coordinator from a configuration file.
    Run {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// A whole local custody system: dev chains, 5 signers, a coordinator, and a scripted
    /// lock-in and lock-out on Ethereum and Bitcoin.
    Devnet(DevnetArgs),
    /// Write a new Ed25519 validator key for solo consensus (refuses to overwrite).
    InitValidatorKey {
        /// Where to write it (created with mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct DevnetArgs {
    /// The devnet directory: PKI, configs, keys, chain data and a log per process.
    #[arg(long, default_value = "devnet")]
    dir: PathBuf,
    /// Remove the directory first if it exists.
    #[arg(long)]
    fresh: bool,
    /// The signer-node binary, built with `--features devnet-fixtures` [default: signer-node
    /// beside this binary].
    #[arg(long)]
    signer_bin: Option<PathBuf>,
    /// The directory holding the anvil and bcoin launchers [default: run
    /// scripts/install-chain-nodes.sh of the source tree].
    #[arg(long)]
    chain_nodes_bin: Option<PathBuf>,
    /// Number of signers.
    #[arg(long, default_value_t = 5)]
    signers: u16,
    /// Signers needed to sign.
    #[arg(long, default_value_t = 3)]
    threshold: u16,
    /// Confirmations before a deposit is credited and a payout is final.
    #[arg(long, default_value_t = 2)]
    confirmations: u64,
    /// Ethereum deposit in wei.
    #[arg(long, default_value_t = 1_000_000_000_000_000_000)]
    eth_deposit_wei: u128,
    /// Bitcoin deposit in satoshi (the funding fee is paid out of it).
    #[arg(long, default_value_t = 100_000_000)]
    btc_deposit_sat: u128,
    /// Use free loopback ports instead of the fixed ones (API 7300, signers 7101.., anvil
    /// 8545, bcoin 48443).
    #[arg(long)]
    free_ports: bool,
    /// Exit 0 once the lock-ins and lock-outs are done instead of showing live status.
    #[arg(long)]
    exit_when_done: bool,
    /// TESTS ONLY: start signer N as a deliberate cheater (it corrupts a zero-knowledge proof
    /// in every presigning it joins; needs a signer-node built with `--features
    /// fault-injection`) and check that the chain blames it with verifiable evidence.
    #[arg(long, value_name = "N")]
    dangerously_cheating_signer: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("TLS: {0}")]
    Tls(#[from] custody_proto::tls::TlsError),
    #[error(
        "the TLS certificate is {0}; a coordinator needs a custody://coordinator/N certificate"
    )]
    WrongRole(String),
    #[error("consensus: {0}")]
    Consensus(#[from] coordinator::chain::ConsensusError),
    #[error("chain: {0}")]
    Chain(#[from] coordinator::chain::ChainError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Api(#[from] coordinator::api::ApiError),
    #[error("devnet: {0}")]
    Devnet(#[from] coordinator::devnet::DevnetError),
    #[error("engine: {0}")]
    Engine(#[from] coordinator::engine::EngineError),
    #[error("fleet: {0}")]
    Fleet(#[from] coordinator::fleet::FleetError),
    #[error("bitcoin adapter: {0}")]
    Adapter(#[from] coordinator::adapter::AdapterError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The devnet talks to a person on stdout; its own logs stay quiet unless RUST_LOG asks.
    let default_filter = match cli.command {
        Command::Devnet(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::InitValidatorKey { out } => config::write_validator_key(&out)
            .map(|public| {
                println!("validator public key: {}", hex::encode(public));
            })
            .map_err(RunError::from),
        Command::Run { config } => run(&config),
        Command::Devnet(args) => devnet(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn devnet(args: DevnetArgs) -> Result<(), RunError> {
    use coordinator::devnet::{DevnetError, DevnetOptions, Ports};
    let exe = std::env::current_exe().map_err(|source| DevnetError::Io {
        what: "finding this executable".into(),
        source,
    })?;
    let signer_bin = args
        .signer_bin
        .unwrap_or_else(|| exe.with_file_name("signer-node"));
    coordinator::devnet::run(DevnetOptions {
        dir: args.dir,
        fresh: args.fresh,
        signer_bin,
        coordinator_bin: exe,
        chain_nodes_bin: args.chain_nodes_bin,
        signers: args.signers,
        threshold: args.threshold,
        confirmations: args.confirmations,
        ports: if args.free_ports {
            Ports::Free
        } else {
            Ports::default_fixed()
        },
        eth_deposit_wei: args.eth_deposit_wei,
        btc_deposit_sat: args.btc_deposit_sat,
        exit_when_done: args.exit_when_done,
        cheating_signer: args.dangerously_cheating_signer,
    })?;
    Ok(())
}

fn run(path: &std::path::Path) -> Result<(), RunError> {
    let config = Config::load(path)?;
    let tls = TlsMaterial::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    if tls.identity().role() != Role::Coordinator {
        return Err(RunError::WrongRole(tls.identity().to_string()));
    }
    let key = config::read_validator_key(&config.validator_key)?;
    let consensus = SoloConsensus::new(key)?;
    let genesis = Genesis {
        chain_id: config.chain_id.clone(),
        admin: config
            .admin_address()
            .map_err(|reason| config::ConfigError::Invalid {
                path: path.to_owned(),
                key: "admin",
                reason: reason.into(),
            })?,
        validators: consensus.validator_set().clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async move {
        let chain = Chain::open(&config.data_dir.join("chain"), genesis, consensus)?;
        let (node, _producer) = Node::start(chain, config.node_config());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let journal = Arc::new(Journal::open(&config.data_dir.join("journal"))?);
        let tasks = start_engine(&config, &tls, &node, Arc::clone(&journal), stopped)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| RunError::Bind {
                addr: config.listen,
                source,
            })?;
        if let Ok(addr) = listener.local_addr() {
            // Tools and tests read this line to find the port when listen is :0.
            println!("listening on {addr}");
        }
        coordinator::api::serve(
            node,
            &tls,
            listener,
            ApiSettings {
                wait_timeout: Duration::from_millis(config.wait_timeout_ms),
                addresses: ExternalAddresses {
                    ethereum: config.ethereum.is_some(),
                    bitcoin_hrp: config.bitcoin.as_ref().map(|b| b.hrp.clone()),
                },
                journal: Some(journal),
            },
            shutdown_signal(),
        )
        .await?;
        let _ = stop.send(true);
        for task in tasks {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("an engine task did not stop within 10 s");
            }
        }
        Ok(())
    })
}

/// Starts the engine tasks the configuration asks for: the DKG of key requests (with
/// `[fleet]`), and the deposit watcher and lock-out saga of mETH (`[ethereum]`) and mBTC
/// (`[bitcoin]`). An Ethereum node that is not up yet is connected to in the background.
fn start_engine(
    config: &Config,
    tls: &TlsMaterial,
    node: &Node<SoloConsensus>,
    journal: Arc<Journal>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, RunError> {
    let fleet = match &config.fleet {
        Some(f) => Some(Arc::new(FleetSigner {
            client: FleetClient::connect(tls, &f.endpoints())?,
            attempts: f.sign_attempts,
            limit: Duration::from_secs(f.session_timeout_secs),
        })),
        None => {
            tracing::warn!("no [fleet] configured: no DKG runs and no lock-out is signed");
            None
        }
    };
    let fleet_id = config
        .fleet
        .as_ref()
        .map(|f| f.fleet_id.clone())
        .unwrap_or_default();
    let engine = Engine::new(
        node.clone(),
        journal,
        fleet,
        Duration::from_millis(config.engine.interval_ms),
        config.fleet.as_ref().map_or(0, |f| f.presign_per_path),
    );
    let mut tasks = Vec::new();
    if let Some(f) = &config.fleet {
        tasks.extend(engine.spawn_keygen(
            KeygenSettings {
                threshold: f.threshold,
                limit: Duration::from_secs(f.session_timeout_secs),
            },
            stop.clone(),
        ));
    }
    // Config::load checked these sections; an error here is a bug, reported as such.
    let engine_config = |depth: coordinator::config::DepthSettings| {
        depth.engine_config(&fleet_id).map_err(|(key, reason)| {
            coordinator::engine::EngineError::Config(format!("{key}: {reason}"))
        })
    };
    for (enabled, asset) in [
        (config.ethereum.is_some(), Asset::METH),
        (config.bitcoin.is_some(), Asset::MBTC),
    ] {
        if enabled {
            tasks.extend(engine.spawn_presign_pool(asset, stop.clone()));
        }
    }
    if let Some(eth) = &config.ethereum {
        let mut adapter_config = EthereumConfig::new(eth.rpc_url.clone(), eth.chain_id);
        if eth.legacy_transactions {
            adapter_config.tx_type = EthTxType::LegacyEip155;
        }
        let asset_config = engine_config(eth.depth)?;
        let engine = engine.clone();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let adapter = loop {
                match EthereumAdapter::connect(adapter_config.clone()).await {
                    Ok(a) => break a,
                    Err(e) => {
                        tracing::warn!(error = %e, "Ethereum node not usable yet; retrying");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => return,
                }
            };
            tracing::info!(depth = asset_config.depth, "mETH engine running");
            let _ = engine
                .spawn_asset(Asset::METH, adapter, asset_config, stop)
                .await;
        }));
    }
    if let Some(btc) = &config.bitcoin {
        let mut adapter_config = BitcoinConfig::bcoin_regtest(&btc.url, &btc.api_key);
        adapter_config.hrp = btc.hrp.clone();
        if let Some(rate) = btc.fee_rate_sat_per_vb {
            adapter_config.fee_rate_sat_per_vb = rate;
        }
        let asset_config = engine_config(btc.depth)?;
        // Spend only coins the chain could have credited.
        adapter_config.min_input_confirmations = asset_config.depth;
        let adapter = BitcoinAdapter::new(adapter_config)?;
        tracing::info!(depth = asset_config.depth, "mBTC engine running");
        tasks.push(engine.spawn_asset(Asset::MBTC, adapter, asset_config, stop.clone()));
    }
    Ok(tasks)
}

async fn shutdown_signal() {
    coordinator::signals::stop_requested("the server").await;
    tracing::info!("shutting down");
}
