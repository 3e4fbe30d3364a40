//! `signer-node`: run a signer, check its config, or make a devnet PKI.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hsm_profiles::Profile;
use signer_node::config::{FleetId, NodeConfig};
use signer_node::identity::CallerIdentity;
use signer_node::pki::{write_devnet, DevnetSpec, FleetCa};
use signer_node::server::Node;
use signer_node::store::ChainReport;
use signer_node::store::SledVault;
use signer_node::vault::Vault;

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
        /// TESTS ONLY: let this node send the deliberately corrupted message named by
        /// SIGNER_NODE_FAULT (builds with the `fault-injection` feature). Without this flag a
        /// node with SIGNER_NODE_FAULT set refuses to start.
        #[arg(long)]
        dangerously_inject_faults: bool,
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
    /// Blame records of aborted sessions.
    Blame {
        #[command(subcommand)]
        command: BlameCommand,
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
enum BlameCommand {
    /// Check a blame's evidence: every envelope's node signature against the fleet's pinned
    /// node keys (from the config), and, with --key-id, re-run the failing presigning proof
    /// check with this signer's key (opens its store: the node must be stopped). Exits
    /// non-zero unless everything checked holds.
    Verify {
        /// A signer config of the fleet (pinned node keys; data directory and HSM profile).
        #[arg(long)]
        config: PathBuf,
        /// The blame: a protobuf-encoded `custody.signer.v1.Blame` (SessionStatusResponse.blame).
        #[arg(long)]
        blame: PathBuf,
        /// The session id the blame is for (64 hex characters).
        #[arg(long)]
        session: String,
        /// The key of the presigning session (64 hex); re-checks the proof when given.
        #[arg(long)]
        key_id: Option<String>,
        /// The session's derivation path, comma-separated indices (default: the key itself).
        #[arg(long, value_delimiter = ',')]
        path: Vec<u32>,
        /// The session's signers, comma-separated indices.
        #[arg(long, value_delimiter = ',')]
        signers: Vec<u16>,
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
        Command::Run {
            config,
            dangerously_inject_faults,
        } => {
            arm_fault(dangerously_inject_faults)?;
            run(config)
        }
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
        Command::Blame {
            command:
                BlameCommand::Verify {
                    config,
                    blame,
                    session,
                    key_id,
                    path,
                    signers,
                },
        } => blame_verify(config, blame, session, key_id, path, signers),
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

/// `signer-node blame verify`: see [`BlameCommand::Verify`].
fn blame_verify(
    config_path: PathBuf,
    blame_path: PathBuf,
    session: String,
    key_id: Option<String>,
    path: Vec<u32>,
    signers: Vec<u16>,
) -> anyhow::Result<()> {
    use prost::Message;
    use signer_node::blame;
    let config = NodeConfig::load(&config_path)?;
    let bytes =
        std::fs::read(&blame_path).with_context(|| format!("reading {}", blame_path.display()))?;
    let record = custody_proto::signer::v1::Blame::decode(bytes.as_slice())
        .context("the blame file is not an encoded Blame")?;
    let session: [u8; 32] = hex::decode(&session)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("--session must be 64 hex characters")?;
    let session = signer_node::envelope::SessionId(session);
    let evidence = blame::verify_evidence(
        &record,
        config.fleet_id(),
        &session,
        &blame::pinned_keys(&config),
    )?;
    println!(
        "evidence signatures OK: {} envelopes, signed by blamed signers {:?} under the pinned node keys of fleet {}",
        evidence.len(),
        record.culprits,
        config.fleet_id()
    );
    println!("reason given: {}", record.reason);
    let Some(key_id) = key_id else {
        return Ok(());
    };
    let key_id: [u8; 32] = hex::decode(&key_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("--key-id must be 64 hex characters")?;
    let data_dir = &config.raw.data_dir;
    let profile = Profile::load(&config.raw.hsm_profile)?;
    let sealer = profile
        .open_sealer(data_dir)
        .with_context(|| format!("opening the keystore in {}", data_dir.display()))?;
    let store = SledVault::open(data_dir, Arc::new(sealer)).with_context(|| {
        format!(
            "opening the sealed store in {} (is the node stopped?)",
            data_dir.display()
        )
    })?;
    let (share, aux) = store
        .load_key(&key_id)?
        .with_context(|| format!("this signer holds no key {}", hex::encode(key_id)))?;
    drop(store);
    let holders = signer_node::runner::positions::Positions::from_committee(
        share.committee(),
        &config.peers.iter().map(|p| p.index).collect::<Vec<_>>(),
    )
    .context("the key's committee is not a set of this fleet's signers")?;
    let presign = blame::PresignSession {
        session,
        key_id,
        path: mpc_core::hd::DerivationPath::from_indices(&path)?,
        signers: &signers,
        holders: holders.members(),
    };
    let mut failed = false;
    for culprit in &record.culprits {
        let culprit = u16::try_from(*culprit).context("culprit index over 65535")?;
        match blame::recheck_presign(&evidence, culprit, &presign, &share, &aux) {
            Ok(finding) => println!("PROOF INVALID: {finding}"),
            Err(e) => {
                failed = true;
                println!("signer {culprit}: not shown invalid: {e}");
            }
        }
    }
    if failed {
        anyhow::bail!("the evidence does not show every blamed signer's proof invalid");
    }
    Ok(())
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
/// Refuses a node with SIGNER_NODE_FAULT set unless `--dangerously-inject-faults` was given
/// (and the build has the `fault-injection` feature); arms the fault when both are there.
fn arm_fault(opted_in: bool) -> anyhow::Result<()> {
    use signer_node::fault::{self, FaultSpec, FAULT_ENV};
    let Some(spec) = FaultSpec::from_env().map_err(anyhow::Error::msg)? else {
        if opted_in {
            anyhow::bail!("--dangerously-inject-faults given but {FAULT_ENV} names no fault");
        }
        return Ok(());
    };
    if !opted_in {
        anyhow::bail!(
            "{FAULT_ENV} is set ({spec:?}): this node would deliberately send corrupted \
             protocol messages. Refusing to start; tests that want this pass \
             --dangerously-inject-faults"
        );
    }
    fault::arm(spec).map_err(anyhow::Error::msg)?;
    tracing::error!(
        fault = ?spec,
        "FAULT INJECTION ARMED: this node will deliberately misbehave (tests only, never a real fleet)"
    );
    eprintln!("signer-node: FAULT INJECTION ARMED ({spec:?}); this node is a deliberate cheater");
    Ok(())
}

fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let config = NodeConfig::load(&config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(signer_node::launch::serve(config, None, shutdown_signal()))
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
