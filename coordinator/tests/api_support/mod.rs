//! Shared set-up of the API tests: a devnet PKI made with rcgen (the same shape as
//! signer-node's `pki::write_devnet`: one CA, role URI SANs, EKUs), and a real coordinator
//! (sled chain in a temporary directory, node loop, mTLS server on 127.0.0.1:0) in-process.
//!
//! The PKI is generated here rather than by adding signer-node as a dev-dependency: that
//! would compile the whole signer (HSM profiles, PKCS#11, sealing) into every coordinator
//! test build for a few certificates on a 2-core machine; rcgen is already in the lockfile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use coordinator::chain::account::compressed;
use coordinator::chain::{Address, Chain, Consensus, Genesis, SoloConsensus, Transaction, TxBody};
use coordinator::node::{Node, NodeConfig};
use custody_proto::coordinator::v1::coordinator_client::CoordinatorClient;
use custody_proto::identity::CallerIdentity;
use custody_proto::tls::TlsMaterial;
use k256::ecdsa::SigningKey;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tonic::transport::Channel;

pub const CHAIN_ID: &str = "custody-api-test";

/// A CA and a way to issue role certificates.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// PEM certificate and key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "custody api test CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn issue(&self, identity: &CallerIdentity, hosts: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(hosts).unwrap();
        let uri = identity.to_uri();
        params
            .subject_alt_names
            .push(SanType::URI(uri.clone().try_into().unwrap()));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, uri);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn material(&self, identity: &CallerIdentity, hosts: &[&str]) -> TlsMaterial {
        let i = self.issue(identity, hosts);
        TlsMaterial::from_pem(
            self.ca_pem.clone().into_bytes(),
            i.cert_pem.into_bytes(),
            i.key_pem.into_bytes().into(),
        )
        .unwrap()
    }

    /// Writes ca.pem, cert.pem, key.pem for `identity` into `dir`.
    pub fn write_dir(&self, identity: &CallerIdentity, dir: &Path) -> PathBuf {
        self.write_dir_for_hosts(identity, &[], dir)
    }

    /// [`write_dir`](Self::write_dir) for a server reachable as `hosts`.
    pub fn write_dir_for_hosts(
        &self,
        identity: &CallerIdentity,
        hosts: &[&str],
        dir: &Path,
    ) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let i = self.issue(identity, hosts);
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("cert.pem"), i.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), i.key_pem).unwrap();
        dir.to_owned()
    }
}

/// An account key.
pub struct User {
    pub key: SigningKey,
    pub address: Address,
}

pub fn user(seed: u8) -> User {
    let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let address = Address::of_key(key.verifying_key());
    User { key, address }
}

/// The canonical encoding of `body` from `u` at `nonce`.
pub fn signed(u: &User, nonce: u64, body: TxBody) -> Vec<u8> {
    Transaction {
        chain_id: CHAIN_ID.into(),
        sender: compressed(u.key.verifying_key()),
        nonce,
        body,
    }
    .sign(&u.key)
    .encode()
}

/// A running coordinator: node loop + mTLS API on loopback.
pub struct Harness {
    pub dir: tempfile::TempDir,
    /// The engine journal the API reads blame evidence from.
    pub journal: std::sync::Arc<coordinator::engine::Journal>,
    pub pki: Pki,
    pub node: Node<SoloConsensus>,
    pub addr: std::net::SocketAddr,
    pub admin: User,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Harness {
    /// Admin is user 100; a block every 50 ms when something waits.
    pub async fn start() -> Self {
        Self::start_with_interval(Duration::from_millis(50)).await
    }

    /// [`start`](Self::start) with another block interval (a long one lets a test make
    /// blocks itself with `node.produce_once()`).
    pub async fn start_with_interval(block_interval: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let consensus =
            SoloConsensus::new(ed25519_dalek::SigningKey::from_bytes(&[200; 32])).unwrap();
        let admin = user(100);
        let genesis = Genesis {
            chain_id: CHAIN_ID.into(),
            admin: admin.address,
            validators: consensus.validator_set().clone(),
        };
        let chain = Chain::open(&dir.path().join("chain"), genesis, consensus).unwrap();
        let (node, _task) = Node::start(
            chain,
            NodeConfig {
                block_interval,
                ..NodeConfig::default()
            },
        );
        let pki = Pki::new();
        let server_tls = pki.material(&CallerIdentity::Coordinator(0), &["127.0.0.1", "localhost"]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = node.clone();
        let journal = std::sync::Arc::new(
            coordinator::engine::Journal::open(&dir.path().join("journal")).unwrap(),
        );
        let served_journal = std::sync::Arc::clone(&journal);
        tokio::spawn(async move {
            coordinator::api::serve(
                served,
                &server_tls,
                listener,
                coordinator::api::ApiSettings {
                    wait_timeout: Duration::from_secs(10),
                    addresses: coordinator::api::ExternalAddresses {
                        ethereum: true,
                        bitcoin_hrp: Some("rb".into()),
                    },
                    journal: Some(served_journal),
                },
                async {
                    let _ = rx.await;
                },
            )
            .await
            .unwrap();
        });
        Self {
            dir,
            journal,
            pki,
            node,
            addr,
            admin,
            shutdown: Some(tx),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn channel_as(&self, identity: &CallerIdentity) -> Channel {
        self.pki
            .material(identity, &[])
            .channel(&self.endpoint())
            .unwrap()
    }

    pub fn client(&self) -> CoordinatorClient<Channel> {
        CoordinatorClient::new(self.channel_as(&CallerIdentity::Client("wallet".into())))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
