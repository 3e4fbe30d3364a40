//! Starting a signer from its validated configuration: the sealed store (or the devnet's
//! ephemeral vault), the prime supply, the session runner, the background pools, the metrics
//! endpoint and the mTLS server. `signer-node run` calls [`serve`] inside its runtime; other
//! crates' tests start real signers in-process with it.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use hsm_profiles::Profile;
use tokio::net::TcpListener;

use crate::config::ValidatedConfig;
use crate::gate::PolicyGate;
use crate::node_key::NodeKey;
use crate::runner::{self, Runner, RunnerParts};
use crate::server::Node;
use crate::store::SledVault;
use crate::vault::{MemoryVault, Vault};

/// Opens the node's vault: the sealed sled store through its HSM profile (after applying the
/// profile's process hardening), or a memory vault when `[devnet] ephemeral_vault = true`.
pub fn open_vault(config: &ValidatedConfig) -> anyhow::Result<Arc<dyn Vault>> {
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

/// Runs a signer until `shutdown` completes: vault, primes, runner, pools and metrics from
/// `config`, served on `listener` (bound to the configured address when `None`). Must run
/// inside a multi-threaded tokio runtime.
pub async fn serve(
    config: ValidatedConfig,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let node = Node::load(config)?;
    let vault = open_vault(node.config())?;
    let supply = crate::pools::prime_pool::prime_source(node.config(), Arc::clone(&vault))?;
    let node_key = NodeKey::load(&node.config().raw.node_key)?;
    let runner = Runner::new(
        node.config(),
        node.tls().clone(),
        node_key,
        RunnerParts {
            vault,
            gate: Arc::new(PolicyGate::from_config(node.config())),
            primes: supply.source,
        },
    )
    .context("starting the session runner (marking sessions interrupted by the restart)")?;
    if let Some(pool) = &supply.pool {
        pool.spawn();
    }
    runner::presign_pool::spawn_workers(&runner);
    let (counters, vault) = (Arc::clone(runner.metrics()), Arc::clone(runner.vault()));
    let node = node.with_runner(runner);
    if let Some(addr) = node.config().raw.metrics_listen {
        let metrics = crate::metrics::bind(addr).await?;
        // stops with the runtime when the node has stopped
        tokio::spawn(crate::metrics::serve(
            metrics,
            counters,
            vault,
            std::future::pending(),
        ));
    }
    let listener = match listener {
        Some(l) => l,
        None => node.bind().await?,
    };
    node.serve(listener, shutdown).await?;
    Ok(())
}
