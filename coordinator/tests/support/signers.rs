//! Real signers in-process for the coordinator's tests: `signer-node` instances started with
//! `signer_node::launch::serve` on loopback (real mTLS, session runner and signing gate,
//! memory vaults, the committed fixture primes), each pinning a chain's validator set in
//! `[chain]`, so they sign only what that chain's certificate proves was committed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use coordinator::fleet::SignerEndpoint;
use signer_node::config::{FleetId, NodeConfig};
use signer_node::pki::{write_devnet, DevnetLayout, DevnetSpec};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running fleet.
pub struct Signers {
    /// What the PKI writer wrote (CA, coordinator and client certificate directories).
    pub layout: DevnetLayout,
    /// Each signer's endpoint, in index order.
    pub endpoints: Vec<SignerEndpoint>,
    /// Send to stop signer `i + 1`; `None` once stopped.
    stops: Vec<Option<oneshot::Sender<()>>>,
}

impl Signers {
    /// Starts `n` signers of fleet `fleet` (PKI in `dir/net`, with the named client
    /// certificates) pinned to the chain `chain_id` whose only validator is
    /// `validator_hex` (an Ed25519 public key in hex).
    pub async fn start(
        dir: &Path,
        fleet: &str,
        n: u16,
        chain_id: &str,
        validator_hex: &str,
        clients: &[&str],
    ) -> Self {
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let layout = write_devnet(&DevnetSpec {
            fleet_id: FleetId::new(fleet).unwrap(),
            signers: n,
            coordinators: 1,
            clients: clients.iter().map(|c| (*c).to_owned()).collect(),
            authorizers: 1,
            quorum: 1,
            host: "127.0.0.1".into(),
            ports: ports.clone(),
            out: dir.join("net"),
        })
        .unwrap();
        let mut stops = Vec::new();
        for (path, listener) in layout.signer_configs.iter().zip(listeners) {
            let text = std::fs::read_to_string(path)
                .unwrap()
                .replace("fixture_primes = false", "fixture_primes = true")
                .replace("ephemeral_vault = false", "ephemeral_vault = true");
            let text = format!(
                "{text}\n[chain]\nchain_id = \"{chain_id}\"\nvalidators = [{{ key = \"{validator_hex}\", power = 1 }}]\n"
            );
            std::fs::write(path, text).unwrap();
            let config = NodeConfig::load(path).unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            tokio::spawn(signer_node::launch::serve(
                config,
                Some(listener),
                async move {
                    let _ = stopped.await;
                },
            ));
            stops.push(Some(stop));
        }
        let endpoints = ports
            .iter()
            .zip(1u16..)
            .map(|(p, index)| SignerEndpoint {
                index,
                url: format!("https://127.0.0.1:{p}"),
            })
            .collect();
        Self {
            layout,
            endpoints,
            stops,
        }
    }

    /// Stops signer `index` (1-based); it no longer answers.
    pub async fn stop(&mut self, index: u16) {
        if let Some(stop) = self.stops[usize::from(index) - 1].take() {
            let _ = stop.send(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    /// The coordinator's certificate directory (cert.pem, key.pem).
    pub fn coordinator_dir(&self) -> &Path {
        &self.layout.coordinator_dirs[0]
    }
}
