//! Shared test fixtures: a devnet written by the real PKI code, in-process nodes on
//! 127.0.0.1 port 0, and mTLS channels.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use signer_node::config::{NodeConfig, ValidatedConfig};
use signer_node::node_key::NodeKey;
use signer_node::pki::{write_devnet, DevnetLayout, DevnetSpec};
use signer_node::server::{Node, NodeError};
use signer_node::tls::TlsMaterial;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use zeroize::Zeroizing;

/// A devnet of `signers` signers, one coordinator and one client "wallet".
pub struct TestFleet {
    pub dir: TempDir,
    pub layout: DevnetLayout,
}

impl TestFleet {
    pub fn new(fleet_id: &str, signers: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(&DevnetSpec {
            fleet_id: signer_node::config::FleetId::new(fleet_id).unwrap(),
            signers,
            coordinators: 1,
            clients: vec!["wallet".into()],
            authorizers: 2,
            quorum: 2,
            host: "127.0.0.1".into(),
            ports: (0..signers).map(|i| 7001 + i).collect(),
            out: dir.path().join("net"),
        })
        .unwrap();
        Self { dir, layout }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    /// TLS material of `who` ("signer-1", "coordinator-1", "client-wallet").
    pub fn material(&self, who: &str) -> TlsMaterial {
        let root = self.root();
        TlsMaterial::from_pem(
            std::fs::read(root.join("ca.pem")).unwrap(),
            std::fs::read(root.join(who).join("cert.pem")).unwrap(),
            Zeroizing::new(std::fs::read(root.join(who).join("key.pem")).unwrap()),
        )
        .unwrap()
    }

    /// TLS material presenting `who`'s certificate of *this* fleet while trusting `other`'s CA.
    pub fn material_trusting(&self, who: &str, other: &TestFleet) -> TlsMaterial {
        let root = self.root();
        TlsMaterial::from_pem(
            std::fs::read(other.root().join("ca.pem")).unwrap(),
            std::fs::read(root.join(who).join("cert.pem")).unwrap(),
            Zeroizing::new(std::fs::read(root.join(who).join("key.pem")).unwrap()),
        )
        .unwrap()
    }

    pub fn node_key(&self, index: u16) -> NodeKey {
        NodeKey::load(&self.root().join(format!("signer-{index}/node.key"))).unwrap()
    }

    pub fn config_path(&self, index: u16) -> PathBuf {
        self.layout.signer_configs[usize::from(index) - 1].clone()
    }

    pub fn config(&self, index: u16) -> ValidatedConfig {
        NodeConfig::load(&self.config_path(index)).unwrap()
    }

    /// Signer `index`'s config for an in-process fleet: peers at `urls` (signer i at
    /// `urls[i - 1]`), the given round deadline, the public fixture primes, then `edit`.
    pub fn fleet_config(
        &self,
        index: u16,
        urls: &[String],
        deadline_ms: u64,
        edit: impl FnOnce(&mut NodeConfig),
    ) -> ValidatedConfig {
        let path = self.config_path(index);
        let mut raw = NodeConfig::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (peer, url) in raw.peers.iter_mut().zip(urls) {
            peer.endpoint = url.clone();
        }
        raw.round_deadline_ms = deadline_ms;
        raw.devnet.fixture_primes = true;
        edit(&mut raw);
        raw.resolve_paths(path.parent().unwrap());
        raw.validate().unwrap()
    }

    /// A runner for signer `index` with `config`, a fresh `MemoryVault`, the node's real gate
    /// (pinned authorizers and quorum from the config) and the fixture primes.
    pub fn memory_runner(
        &self,
        index: u16,
        config: &ValidatedConfig,
    ) -> (
        std::sync::Arc<signer_node::runner::Runner>,
        std::sync::Arc<signer_node::vault::MemoryVault>,
    ) {
        use std::sync::Arc;
        let vault = Arc::new(signer_node::vault::MemoryVault::new());
        let runner = signer_node::runner::Runner::new(
            config,
            self.material(&format!("signer-{index}")),
            self.node_key(index),
            signer_node::runner::RunnerParts {
                vault: vault.clone(),
                gate: Arc::new(signer_node::gate::PolicyGate::from_config(config)),
                primes: Arc::new(
                    signer_node::runner::primes::FixturePrimes::from_config(config).unwrap(),
                ),
            },
        )
        .unwrap();
        (runner, vault)
    }

    /// Signer `index`'s config with a different envelope payload cap.
    pub fn config_with_payload_cap(&self, index: u16, cap: usize) -> ValidatedConfig {
        let path = self.config_path(index);
        let mut raw = NodeConfig::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        raw.limits.max_envelope_payload_bytes = cap;
        raw.resolve_paths(path.parent().unwrap());
        raw.validate().unwrap()
    }

    pub fn node(&self, index: u16) -> Node {
        Node::load(self.config(index)).unwrap()
    }
}

/// A node serving in this process.
pub struct RunningNode {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<Result<(), NodeError>>,
}

impl RunningNode {
    pub async fn start(node: Node) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(node.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, stop, handle }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.unwrap().unwrap();
    }
}

/// An mTLS channel to `url` with `material`.
pub async fn connect(
    material: &TlsMaterial,
    url: &str,
) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(url.to_owned())
        .unwrap()
        .tls_config(material.client_config(None))
        .unwrap()
        .connect()
        .await
}

/// SHA-256 of a tag: a 32-byte id (session, key) that reads as its name in the test.
pub fn id(tag: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(tag.as_bytes()).to_vec()
}

/// Polls `SessionStatus` until the session has ended (panics after `limit`).
pub async fn wait_end(
    control: &mut custody_proto::signer::v1::signer_control_client::SignerControlClient<Channel>,
    session: &[u8],
    limit: std::time::Duration,
) -> custody_proto::signer::v1::SessionStatusResponse {
    use custody_proto::signer::v1::{SessionState, SessionStatusRequest};
    let start = std::time::Instant::now();
    loop {
        let status = control
            .session_status(SessionStatusRequest {
                session_id: session.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        let state = SessionState::try_from(status.state).unwrap();
        if !matches!(state, SessionState::Pending | SessionState::Running) {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "session still {state:?} after {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `n` listeners on 127.0.0.1 port 0 and their `https://` URLs (signer i at index i − 1).
pub async fn bind_loopback(n: u16) -> (Vec<TcpListener>, Vec<String>) {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let urls = listeners
        .iter()
        .map(|l| format!("https://127.0.0.1:{}", l.local_addr().unwrap().port()))
        .collect();
    (listeners, urls)
}
