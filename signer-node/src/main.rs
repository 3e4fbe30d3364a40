//! `signer-node`: run a signer, check its config, or make a devnet PKI.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hsm_profiles::Profile;
use signer_node::config::{FleetId, NodeConfig};
use signer_node::gate::PolicyGate;
use signer_node::identity::CallerIdentity;
use signer_node::node_key::NodeKey;
use signer_node::pki::{write_devnet, DevnetSpec, FleetCa};
use signer_node::runner::{self, Runner, RunnerParts};
use signer_node::server::Node;
use signer_node::store::ChainReport;
use signer_node::store::SledVault;
use signer_node::vault::{MemoryVault, Vault};

/// One shard holder of the custody fleet.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the node's mTLS gRPC services until SIGTERM or Ctrl-C.
    Run {
        /// The node's TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Create the node's keystore (through its HSM profile) and its sealed store, once.
    Init {
        /// The node's TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a config file and the files it names, then exit.
    CheckConfig {
        /// The node's TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// A local fleet of signer processes on loopback: keygen, a presignature and an authorized
    /// signature, verified (the README's main command; devnet only).
    Devnet {
        /// Number of signers.
        #[arg(long, default_value_t = 5)]
        signers: u16,
        /// Signers needed to sign.
        #[arg(long, default_value_t = 3)]
        threshold: u16,
        /// Directory for PKI, configs and logs (default: a new directory under the system's
        /// temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Signer i listens on BASE_PORT + i - 1.
        #[arg(long, default_value_t = 7101)]
        base_port: u16,
        /// Generate safe primes instead of the public fixture primes.
        #[arg(long)]
        real_primes: bool,
        /// Keep the signers running after the demonstration until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
    /// The signer's audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Devnet certificates and keys (production operators bring their own CA).
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain of the store's audit log (needs no keystore; the node must not be
    /// running, sled locks its database). Prints the entry count and head hash, or the first
    /// broken entry and exits non-zero.
    Verify {
        /// The node's data directory (the one holding `store/`).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a fleet CA, signer/coordinator/client certificates, node and authorizer keys,
    /// and one ready-to-run config per signer, in a new directory.
    Devnet {
        /// Number of signers (indices 1..=N).
        #[arg(long)]
        signers: u16,
        /// Directory to create (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// Fleet id.
        #[arg(long, default_value = "devnet")]
        fleet_id: String,
        /// Number of coordinator certificates.
        #[arg(long, default_value_t = 1)]
        coordinators: u16,
        /// Client certificate names (repeat the flag for several).
        #[arg(long = "client")]
        clients: Vec<String>,
        /// Number of authorizer keys pinned in the configs.
        #[arg(long, default_value_t = 1)]
        authorizers: usize,
        /// Authorizer signatures an order needs.
        #[arg(long, default_value_t = 1)]
        quorum: usize,
        /// IP address (or localhost) the signers listen on and their certificates name.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Signer i listens on BASE_PORT + i - 1.
        #[arg(long, default_value_t = 7001, conflicts_with = "ports")]
        base_port: u16,
        /// Explicit ports, one per signer in index order, comma separated.
        #[arg(long, value_delimiter = ',')]
        ports: Option<Vec<u16>>,
    },
    /// Issue one more certificate from an existing devnet CA.
    Issue {
        /// The CA certificate (PEM).
        #[arg(long)]
        ca_cert: PathBuf,
        /// The CA private key (PEM).
        #[arg(long)]
        ca_key: PathBuf,
        /// The role URI, e.g. custody://signer/6 or custody://client/wallet-1.
        #[arg(long)]
        role: String,
        /// DNS names or IP addresses the certificate serves as (repeat the flag).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// New directory for cert.pem and key.pem.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run { config } => run(config),
        Command::Init { config } => init(config),
        Command::CheckConfig { config } => {
            let config = NodeConfig::load(&config)?;
            let node = Node::load(config)?;
            println!(
                "config OK: signer {} of fleet {}, {} peers, listening on {}",
                node.config().index(),
                node.config().fleet_id(),
                node.config().peers.len(),
                node.listen_address()
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { data_dir },
        } => match signer_node::store::verify_audit_at(&data_dir)? {
            ChainReport::Intact { entries, head } => {
                println!(
                    "audit log OK: {entries} entries, head {}",
                    hex::encode(head)
                );
                Ok(())
            }
            ChainReport::Broken { at, reason } => {
                println!("audit log BROKEN at entry {at}: {reason}");
                anyhow::bail!("audit log of {} is broken", data_dir.display())
            }
        },
        Command::Pki { command } => pki(command),
        Command::Devnet {
            signers,
            threshold,
            dir,
            base_port,
            real_primes,
            keep_running,
        } => {
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("custody-devnet-{}", std::process::id()))
            });
            let exe = std::env::current_exe().context("locating the signer-node binary")?;
            signer_node::devnet::run(
                signer_node::devnet::DevnetOptions {
                    signers,
                    threshold,
                    dir,
                    base_port,
                    real_primes,
                    keep_running,
                },
                &exe,
            )
        }
    }
}

/// Creates the node's keystore (through its HSM profile) and its sealed store.
fn init(config_path: PathBuf) -> anyhow::Result<()> {
    let config = NodeConfig::load(&config_path)?;
    let data_dir = &config.raw.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let profile = Profile::load(&config.raw.hsm_profile)?;
    let sealer = profile
        .init_sealer(data_dir)
        .context("creating the keystore")?;
    let store = SledVault::create(data_dir, Arc::new(sealer)).context("creating the store")?;
    println!(
        "initialised signer {} of fleet {}: keystore and sealed store in {}",
        config.index(),
        config.fleet_id(),
        store.path().display()
    );
    Ok(())
}

/// The node's vault: the sealed store opened through the HSM profile (after process
/// hardening), or, for a devnet that says so, memory.
fn open_vault(config: &signer_node::config::ValidatedConfig) -> anyhow::Result<Arc<dyn Vault>> {
    if config.raw.devnet.ephemeral_vault {
        tracing::warn!("[devnet] ephemeral_vault = true: key shares and presignatures live in memory and are lost when the node stops");
        return Ok(Arc::new(MemoryVault::new()));
    }
    let profile = Profile::load(&config.raw.hsm_profile)?;
    let report = hsm_profiles::harden(profile.hardening()).context("process hardening")?;
    tracing::info!(?report, "process hardening");
    let data_dir = &config.raw.data_dir;
    let sealer = profile.open_sealer(data_dir).with_context(|| {
        format!(
            "opening the keystore in {} (run `signer-node init --config ...` once first)",
            data_dir.display()
        )
    })?;
    let store = SledVault::open(data_dir, Arc::new(sealer))
        .with_context(|| format!("opening the sealed store in {}", data_dir.display()))?;
    tracing::info!(path = %store.path().display(), "sealed store open");
    Ok(Arc::new(store))
}

fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let config = NodeConfig::load(&config_path)?;
    let node = Node::load(config)?;
    let vault = open_vault(node.config())?;
    let primes = runner::primes::from_config(node.config())?;
    let node_key = NodeKey::load(&node.config().raw.node_key)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let _guard = runtime.enter();
    let runner = Runner::new(
        node.config(),
        node.tls().clone(),
        node_key,
        RunnerParts {
            vault,
            gate: Arc::new(PolicyGate::from_config(node.config())),
            primes,
        },
    );
    let metrics = (Arc::clone(runner.metrics()), Arc::clone(runner.vault()));
    let node = node.with_runner(runner);
    runtime.block_on(async move {
        if let Some(addr) = node.config().raw.metrics_listen {
            let listener = signer_node::metrics::bind(addr).await?;
            let (counters, vault) = metrics;
            // stops with the runtime when the node has stopped
            tokio::spawn(signer_node::metrics::serve(
                listener,
                counters,
                vault,
                std::future::pending(),
            ));
        }
        let listener = node.bind().await?;
        node.serve(listener, shutdown_signal()).await?;
        Ok(())
    })
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the node");
            if ctrl_c.await.is_ok() {
                tracing::info!("Ctrl-C: shutting down");
            }
        }
    }
}

fn pki(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::Devnet {
            signers,
            out,
            fleet_id,
            coordinators,
            clients,
            authorizers,
            quorum,
            host,
            base_port,
            ports,
        } => {
            let fleet_id =
                FleetId::new(&fleet_id).map_err(|e| anyhow::anyhow!("--fleet-id: {e}"))?;
            let ports = match ports {
                Some(p) => p,
                None => (0..signers)
                    .map(|i| base_port.checked_add(i).filter(|p| *p != 0))
                    .collect::<Option<Vec<u16>>>()
                    .context("--base-port + --signers runs past port 65535")?,
            };
            let layout = write_devnet(&DevnetSpec {
                fleet_id,
                signers,
                coordinators,
                clients,
                authorizers,
                quorum,
                host,
                ports,
                out,
            })?;
            println!("fleet CA: {}", layout.ca_cert.display());
            for c in &layout.signer_configs {
                println!("signer config: {}", c.display());
            }
            for d in layout.coordinator_dirs.iter().chain(&layout.client_dirs) {
                println!("certificate: {}", d.display());
            }
            for k in &layout.authorizer_keys {
                println!("authorizer key: {}", k.display());
            }
            Ok(())
        }
        PkiCommand::Issue {
            ca_cert,
            ca_key,
            role,
            hosts,
            out,
        } => {
            let identity = CallerIdentity::from_uri(&role)?;
            let cert_pem = std::fs::read_to_string(&ca_cert)
                .with_context(|| format!("reading {}", ca_cert.display()))?;
            let key_pem = zeroize::Zeroizing::new(
                std::fs::read_to_string(&ca_key)
                    .with_context(|| format!("reading {}", ca_key.display()))?,
            );
            let ca = FleetCa::from_pem(&cert_pem, &key_pem)?;
            let issued = ca.issue(&identity, &hosts)?;
            std::fs::create_dir(&out).with_context(|| format!("creating {}", out.display()))?;
            issued.write(&out)?;
            println!("{identity}: {}", out.display());
            Ok(())
        }
    }
}
