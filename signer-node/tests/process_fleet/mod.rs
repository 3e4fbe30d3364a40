//! A fleet of real `signer-node` processes on loopback for the multi-process tests: a devnet
//! PKI from the real `pki` code, one `signer-node init` per signer (file keystore, sealed
//! sled store), `signer-node run` per signer (one can be started with an armed test fault),
//! SIGKILL or SIGTERM per signer, and a coordinator-certificate client that drives keygen,
//! presigning and authorized signing, checked with libsecp256k1.
//!
//! The binary is the one cargo built for this package (`CARGO_BIN_EXE_signer-node`), with
//! the features the dev-dependency on `signer-node` enables (`devnet-fixtures`,
//! `fault-injection`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_control_client::SignerControlClient, Authorization,
    AuthorizerSignature, DerivationPath as WirePath, FillPresignPoolRequest, KeyInfo,
    ListKeysRequest, SessionState, SessionStatusRequest, SessionStatusResponse, SignRequest,
    StartKeygenRequest,
};
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint};
use mpc_core::hd::{ChainCode, DerivationPath, ExtendedPublicKey};
use sha3::{Digest, Keccak256};
use signer_node::config::{FleetId, NodeConfig};
use signer_node::fault::FAULT_ENV;
use signer_node::gate::{authorization_signing_bytes, DigestRule, OrderInput, SigningOrder};
use signer_node::node_key::NodeKey;
use signer_node::pki::{write_devnet, DevnetLayout, DevnetSpec};
use signer_node::tls::TlsMaterial;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};
use zeroize::Zeroizing;

pub const BIN: &str = env!("CARGO_BIN_EXE_signer-node");

/// The path every presignature and signature of these tests is for.
pub const PATH: [u32; 5] = [44, 60, 0, 0, 0];

/// Ports the OS reports free right now (held together so they differ).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A fresh random 32-byte id.
pub fn random_id() -> Vec<u8> {
    let mut id = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    id.to_vec()
}

/// The wire form of [`PATH`].
pub fn wire_path() -> Option<WirePath> {
    Some(WirePath {
        indices: PATH.to_vec(),
    })
}

/// Runs `signer-node ARGS` to completion.
pub fn signer_node(args: &[&str], extra: &[&std::ffi::OsStr]) -> Output {
    signer_node_with_env(args, extra, &[])
}

/// Runs `signer-node ARGS` to completion with extra environment variables.
pub fn signer_node_with_env(
    args: &[&str],
    extra: &[&std::ffi::OsStr],
    env: &[(String, OsString)],
) -> Output {
    Command::new(BIN)
        .args(args)
        .args(extra)
        .env_remove(FAULT_ENV)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The signer processes of one devnet; every one still running is killed on drop.
pub struct ProcessFleet {
    pub dir: TempDir,
    pub layout: DevnetLayout,
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    pub coordinator: TlsMaterial,
    pub authorizers: Vec<NodeKey>,
    /// One SignerControl client per signer, index i at `controls[i - 1]`.
    pub controls: Vec<SignerControlClient<Channel>>,
    /// Environment variables of every `signer-node run` started from now on.
    pub env: Vec<(String, OsString)>,
}

impl Drop for ProcessFleet {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // a failing test shows the end of every signer's log (the directory is removed)
        if std::thread::panicking() {
            for i in 1..=self.children.len() as u16 {
                let log = self.log(i);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- signer {i} node.log (last {} lines) ----", tail.len());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl ProcessFleet {
    /// Writes a devnet of `signers` signers (fleet id "devnet", one coordinator, two
    /// authorizers with quorum 2, the public fixture primes), lets `tweak` edit each signer's
    /// config, and runs `signer-node init` for each. Nothing is started yet.
    pub fn create(signers: u16, tweak: impl Fn(u16, &Path, &mut NodeConfig)) -> Self {
        Self::create_with_env(signers, Vec::new(), tweak)
    }

    /// [`Self::create`] with environment variables for every `signer-node` process of the
    /// fleet (`init` and `run`), e.g. SOFTHSM2_CONF and the HSM PIN. `tweak` gets the
    /// signer's index, its config file's path and its config.
    pub fn create_with_env(
        signers: u16,
        env: Vec<(String, OsString)>,
        tweak: impl Fn(u16, &Path, &mut NodeConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(usize::from(signers));
        let layout = write_devnet(&DevnetSpec {
            fleet_id: FleetId::new("devnet").unwrap(),
            signers,
            coordinators: 1,
            clients: vec!["wallet".into()],
            authorizers: 2,
            quorum: 2,
            host: "127.0.0.1".into(),
            ports: ports.clone(),
            out: dir.path().join("net"),
        })
        .unwrap();
        for (i, path) in (1..=signers).zip(&layout.signer_configs) {
            let mut raw = NodeConfig::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
            raw.devnet.fixture_primes = true;
            tweak(i, path, &mut raw);
            std::fs::write(path, toml::to_string(&raw).unwrap()).unwrap();
            let init = signer_node_with_env(&["init", "--config"], &[path.as_os_str()], &env);
            assert!(
                init.status.success(),
                "signer {i} init: {}",
                String::from_utf8_lossy(&init.stderr)
            );
        }
        let root = dir.path().join("net");
        let coordinator = TlsMaterial::from_pem(
            std::fs::read(&layout.ca_cert).unwrap(),
            std::fs::read(root.join("coordinator-1/cert.pem")).unwrap(),
            Zeroizing::new(std::fs::read(root.join("coordinator-1/key.pem")).unwrap()),
        )
        .unwrap();
        let authorizers = layout
            .authorizer_keys
            .iter()
            .map(|p| NodeKey::load(p).unwrap())
            .collect();
        let controls = ports
            .iter()
            .map(|port| {
                let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
                    .unwrap()
                    .tls_config(coordinator.client_config(None))
                    .unwrap();
                SignerControlClient::new(endpoint.connect_lazy())
            })
            .collect();
        Self {
            dir,
            layout,
            ports,
            children: (0..signers).map(|_| None).collect(),
            coordinator,
            authorizers,
            controls,
            env,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    pub fn config_path(&self, index: u16) -> PathBuf {
        self.layout.signer_configs[usize::from(index) - 1].clone()
    }

    pub fn data_dir(&self, index: u16) -> PathBuf {
        self.root().join(format!("signer-{index}/data"))
    }

    pub fn url(&self, index: u16) -> String {
        format!("https://127.0.0.1:{}", self.ports[usize::from(index) - 1])
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

    /// An mTLS channel to signer `index` presenting `who`'s certificate.
    pub async fn channel_as(&self, who: &str, index: u16) -> Channel {
        Endpoint::from_shared(self.url(index))
            .unwrap()
            .tls_config(self.material(who).client_config(None))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Starts `signer-node run` for signer `index` (log in signer-N/node.log); with `fault`,
    /// the process gets `SIGNER_NODE_FAULT=fault` and `--dangerously-inject-faults`.
    pub fn start(&mut self, index: u16, fault: Option<&str>) {
        let config = self.config_path(index);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("node.log"))
            .unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["run", "--config"])
            .arg(&config)
            .env_remove(FAULT_ENV)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(fault) = fault {
            command
                .env(FAULT_ENV, fault)
                .arg("--dangerously-inject-faults");
        }
        let slot = &mut self.children[usize::from(index) - 1];
        assert!(slot.is_none(), "signer {index} is already running");
        *slot = Some(command.spawn().unwrap());
    }

    /// The process id of signer `index` while it runs (the load bench reads its memory).
    pub fn pid(&self, index: u16) -> Option<u32> {
        self.children[usize::from(index) - 1]
            .as_ref()
            .map(|c| c.id())
    }

    /// Edits signer `index`'s config file (takes effect at its next start).
    pub fn edit_config(&self, index: u16, edit: impl FnOnce(&mut NodeConfig)) {
        let path = self.config_path(index);
        let mut raw = NodeConfig::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut raw);
        std::fs::write(&path, toml::to_string(&raw).unwrap()).unwrap();
    }

    /// The node log of signer `index` so far.
    pub fn log(&self, index: u16) -> String {
        std::fs::read_to_string(self.config_path(index).with_file_name("node.log"))
            .unwrap_or_default()
    }

    /// Waits until every running signer answers `ListKeys` (60 s at most).
    pub async fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..self.children.len() {
            let Some(child) = self.children[i].as_mut() else {
                continue;
            };
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "signer {} exited at start ({status}):\n{}",
                        i + 1,
                        self.log(i as u16 + 1)
                    );
                }
                match self.controls[i].list_keys(ListKeysRequest {}).await {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(
                            Instant::now() < deadline,
                            "signer {} does not answer: {e}",
                            i + 1
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    /// SIGKILL: the process dies at once, no orderly shutdown.
    pub fn kill(&mut self, index: u16) {
        let mut child = self.children[usize::from(index) - 1]
            .take()
            .expect("signer is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM to every running signer, then waits for each to exit cleanly.
    pub fn stop_all(&mut self) {
        for i in 1..=self.children.len() as u16 {
            if self.children[usize::from(i) - 1].is_some() {
                self.stop(i);
            }
        }
    }

    /// SIGTERM to signer `index` (running), then waits for it to exit cleanly (30 s at most).
    pub fn stop(&mut self, index: u16) {
        let mut child = self.children[usize::from(index) - 1]
            .take()
            .expect("signer is running");
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("signer {index} did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(exit.success(), "signer {index} exited with {exit}");
    }

    /// `signer-node audit verify` on signer `index`'s data directory (stopped signer).
    pub fn audit_verify(&self, index: u16) {
        let out = signer_node(
            &["audit", "verify", "--data-dir"],
            &[self.data_dir(index).as_os_str()],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("audit log OK"),
            "signer {index}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn control(&mut self, index: u16) -> &mut SignerControlClient<Channel> {
        &mut self.controls[usize::from(index) - 1]
    }

    /// `ListKeys` of signer `index`.
    pub async fn list_keys(&mut self, index: u16) -> Vec<KeyInfo> {
        self.control(index)
            .list_keys(ListKeysRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys
    }

    /// A t-of-(participants) keygen; returns the key id and the key every signer reports.
    pub async fn keygen(&mut self, threshold: u16, participants: &[u16]) -> (Vec<u8>, KeyInfo) {
        let key_id = random_id();
        let session = random_id();
        for &i in participants {
            self.control(i)
                .start_keygen(StartKeygenRequest {
                    session_id: session.clone(),
                    key_id: key_id.clone(),
                    threshold: u32::from(threshold),
                    participants: participants.iter().map(|p| u32::from(*p)).collect(),
                })
                .await
                .unwrap();
        }
        let mut key: Option<KeyInfo> = None;
        for &i in participants {
            let status = self.wait_end(i, &session, Duration::from_secs(600)).await;
            let Some(Outcome::Key(info)) = status.outcome else {
                panic!("signer {i} ended keygen without a key: {status:?}");
            };
            match &key {
                None => key = Some(info),
                Some(k) => assert_eq!(k, &info, "signer {i} reports another key"),
            }
        }
        (key_id, key.unwrap())
    }

    /// Starts presigning session `session` of `key_id` (epoch 0) on `signers`.
    pub async fn start_presign(&mut self, key_id: &[u8], session: &[u8], signers: &[u16]) {
        self.start_presign_at(key_id, 0, session, signers).await;
    }

    /// Starts presigning session `session` of `key_id` at `epoch` on `signers`.
    pub async fn start_presign_at(
        &mut self,
        key_id: &[u8],
        epoch: u64,
        session: &[u8],
        signers: &[u16],
    ) {
        for &i in signers {
            self.control(i)
                .fill_presign_pool(FillPresignPoolRequest {
                    session_id: session.to_vec(),
                    key_id: key_id.to_vec(),
                    epoch,
                    path: wire_path(),
                    signers: signers.iter().map(|s| u32::from(*s)).collect(),
                })
                .await
                .unwrap();
        }
    }

    /// Polls signer `index` until `session` has ended (panics after `limit`).
    pub async fn wait_end(
        &mut self,
        index: u16,
        session: &[u8],
        limit: Duration,
    ) -> SessionStatusResponse {
        let start = Instant::now();
        loop {
            let status = self.status(index, session).await;
            let state = SessionState::try_from(status.state).unwrap();
            if !matches!(state, SessionState::Pending | SessionState::Running) {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "signer {index}: session still {state:?} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn status(&mut self, index: u16, session: &[u8]) -> SessionStatusResponse {
        self.control(index)
            .session_status(SessionStatusRequest {
                session_id: session.to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// An order for `key_id` and [`PATH`] over `message` (Keccak-256), signed by both devnet
    /// authorizers.
    pub fn authorization(&self, key_id: &[u8], message: &[u8]) -> Authorization {
        let not_after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let order = SigningOrder {
            fleet_id: "devnet".into(),
            key_id: key_id.try_into().unwrap(),
            not_after,
            inputs: vec![OrderInput {
                path: PATH.to_vec(),
                rule: DigestRule::Keccak256,
                message: message.to_vec(),
            }],
        }
        .encode()
        .unwrap();
        Authorization {
            signatures: self
                .authorizers
                .iter()
                .map(|k| AuthorizerSignature {
                    public_key: k.verifying_key().to_bytes().to_vec(),
                    signature: k
                        .sign(&authorization_signing_bytes(&order))
                        .to_bytes()
                        .to_vec(),
                })
                .collect(),
            order,
            chain: None,
        }
    }

    /// A `Sign` of input 0 of `authorization` by `signers` with presignature `presignature`.
    pub fn sign_request(
        &self,
        key_id: &[u8],
        presignature: &[u8],
        signers: &[u16],
        authorization: Authorization,
    ) -> SignRequest {
        SignRequest {
            session_id: random_id(),
            key_id: key_id.to_vec(),
            path: wire_path(),
            signers: signers.iter().map(|s| u32::from(*s)).collect(),
            authorization: Some(authorization),
            input_index: 0,
            presignature_id: presignature.to_vec(),
        }
    }

    /// Signs an authorized order over `message` with `signers` and presignature
    /// `presignature`, and checks the signature with libsecp256k1 against the child key of
    /// `key` at [`PATH`] (and that the recovery id recovers it).
    pub async fn sign_and_verify(
        &mut self,
        key_id: &[u8],
        key: &KeyInfo,
        presignature: &[u8],
        signers: &[u16],
        message: &[u8],
    ) {
        let authorization = self.authorization(key_id, message);
        let request = self.sign_request(key_id, presignature, signers, authorization);
        for &i in signers {
            self.control(i).sign(request.clone()).await.unwrap();
        }
        let mut signature = None;
        for &i in signers {
            let status = self
                .wait_end(i, &request.session_id, Duration::from_secs(60))
                .await;
            match status.outcome {
                Some(Outcome::Signature(s)) => signature = Some(s),
                _ => panic!("signer {i}: signing did not complete: {status:?}"),
            }
        }
        let signature = signature.unwrap();
        let digest: [u8; 32] = Keccak256::digest(message).into();
        let child = child_key(key);
        let secp = secp256k1::Secp256k1::verification_only();
        let msg = secp256k1::Message::from_digest(digest);
        let pk = secp256k1::PublicKey::from_slice(child.as_bytes()).unwrap();
        let sig = secp256k1::ecdsa::Signature::from_compact(&signature.r_s).unwrap();
        secp.verify_ecdsa(&msg, &sig, &pk)
            .expect("libsecp256k1 verifies the fleet's signature");
        let rid = secp256k1::ecdsa::RecoveryId::from_i32(signature.recovery_id as i32).unwrap();
        let rec =
            secp256k1::ecdsa::RecoverableSignature::from_compact(&signature.r_s, rid).unwrap();
        assert_eq!(secp.recover_ecdsa(&msg, &rec).unwrap(), pk, "recovery id");
    }
}

/// The child public key of `key` at [`PATH`] (compressed SEC1), from public data only.
pub fn child_key(key: &KeyInfo) -> EncodedPoint {
    let point: Option<AffinePoint> =
        AffinePoint::from_encoded_point(&EncodedPoint::from_bytes(&key.public_key).unwrap()).into();
    let chain_code: [u8; 32] = key.chain_code.as_slice().try_into().unwrap();
    let master =
        ExtendedPublicKey::new_master(ProjectivePoint::from(point.unwrap()), ChainCode(chain_code))
            .unwrap();
    let (child, _) = master
        .derive_path(&DerivationPath::from_indices(&PATH).unwrap())
        .unwrap();
    child.public_key().to_affine().to_encoded_point(true)
}
