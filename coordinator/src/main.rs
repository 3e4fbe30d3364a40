//! `coordinator`: runs one coordinator replica (solo consensus: it proposes and certifies
//! every block) with its public gRPC API over mTLS.
//!
//! - `coordinator init-validator-key --out FILE` writes a new Ed25519 validator key (0600)
//!   and prints its public key.
//! - `coordinator run --config FILE` opens (or creates) the chain in `data_dir/chain`,
//!   starts the node loop and serves `custody.coordinator.v1`, health and reflection until
//!   Ctrl-C / SIGTERM.

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
    /// Write a new Ed25519 validator key for solo consensus (refuses to overwrite).
    InitValidatorKey {
        /// Where to write it (created with mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
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
    #[error("engine: {0}")]
    Engine(#[from] coordinator::engine::EngineError),
    #[error("fleet: {0}")]
    Fleet(#[from] coordinator::fleet::FleetError),
    #[error("bitcoin adapter: {0}")]
    Adapter(#[from] coordinator::adapter::AdapterError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
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
    let engine = Engine {
        node: node.clone(),
        journal,
        fleet,
        interval: Duration::from_millis(config.engine.interval_ms),
        presign_per_path: config.fleet.as_ref().map_or(0, |f| f.presign_per_path),
    };
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
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
