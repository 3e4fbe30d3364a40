//! The real `signer-node` binary: `pki devnet` writes a fleet (with its `--client` on every
//! signer's allow-list), `run` serves health over mTLS and admits the allow-listed client,
//! SIGTERM stops it cleanly; `check-config` refuses a broken config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custody_proto::signer::v1::{signer_client_client::SignerClientClient, SignDigestRequest};
use tonic::transport::Endpoint;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};
use zeroize::Zeroizing;

const BIN: &str = env!("CARGO_BIN_EXE_signer-node");

/// Ports the OS reports free right now (held together so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Kills the child if the test fails before stopping it.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn devnet_node_process_serves_health_over_mtls_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let ports = free_ports(3);
    let status = Command::new(BIN)
        .args([
            "pki",
            "devnet",
            "--signers",
            "3",
            "--client",
            "wallet",
            "--out",
        ])
        .arg(&out)
        .arg("--ports")
        .arg(
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
        .status()
        .unwrap();
    assert!(status.success());
    let config = out.join("signer-1/signer.toml");

    // `signer-node SUBCOMMAND --config signer-1/signer.toml`, run to completion
    let node = |subcommand: &str| {
        Command::new(BIN)
            .args([subcommand, "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(&node("check-config"));
    // `run` refuses a node whose keystore and store do not exist yet
    let early = node("run");
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("signer-node init"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    ok(&node("init"));
    // a second init refuses and changes nothing
    assert!(!node("init").status.success());

    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut guard = Guard(Some(child));

    let tls = signer_node::tls::TlsMaterial::from_pem(
        std::fs::read(out.join("ca.pem")).unwrap(),
        std::fs::read(out.join("coordinator-1/cert.pem")).unwrap(),
        Zeroizing::new(std::fs::read(out.join("coordinator-1/key.pem")).unwrap()),
    )
    .unwrap();
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{}", ports[0]))
        .unwrap()
        .tls_config(tls.client_config(None))
        .unwrap();

    // The node needs a moment to start: retry until it answers, for at most 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let serving = loop {
        let attempt = async {
            let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status)
                .map_err(|s| s.to_string())
        };
        match attempt.await {
            Ok(status) => break status,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not serving yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("node never served health: {e}"),
        }
    };
    assert_eq!(serving, ServingStatus::Serving as i32);

    // `--client wallet` put wallet on every signer's allow-list (every key, the devnet
    // quota): SignDigest from wallet's certificate passes the allow-list and stops at the
    // unknown key (NOT_FOUND), while a client certificate of the same CA that is not on the
    // list (`pki issue`) is refused PERMISSION_DENIED
    for i in 1..=3 {
        let validated =
            signer_node::config::NodeConfig::load(&out.join(format!("signer-{i}/signer.toml")))
                .unwrap();
        assert_eq!(
            validated.clients,
            vec![signer_node::config::ClientPolicy {
                name: "wallet".into(),
                keys: signer_node::config::AllowedKeys::All,
                max_signatures_per_hour: signer_node::pki::DEVNET_CLIENT_SIGNATURES_PER_HOUR,
            }],
            "signer {i}"
        );
    }
    let bridge = dir.path().join("client-bridge");
    let issued = Command::new(BIN)
        .args([
            "pki",
            "issue",
            "--role",
            "custody://client/bridge",
            "--ca-cert",
        ])
        .arg(out.join("ca.pem"))
        .arg("--ca-key")
        .arg(out.join("ca.key"))
        .arg("--out")
        .arg(&bridge)
        .status()
        .unwrap();
    assert!(issued.success());
    let sign_digest_as = |cert_dir: std::path::PathBuf| {
        let endpoint = endpoint.clone();
        let ca = out.join("ca.pem");
        async move {
            let material = signer_node::tls::TlsMaterial::from_pem(
                std::fs::read(ca).unwrap(),
                std::fs::read(cert_dir.join("cert.pem")).unwrap(),
                Zeroizing::new(std::fs::read(cert_dir.join("key.pem")).unwrap()),
            )
            .unwrap();
            let channel = endpoint
                .tls_config(material.client_config(None))
                .unwrap()
                .connect()
                .await
                .unwrap();
            SignerClientClient::new(channel)
                .sign_digest(SignDigestRequest {
                    key_id: vec![7; 32],
                    path: None,
                    digest: vec![9; 32],
                    session_id: vec![1; 32],
                    signers: vec![1, 2],
                })
                .await
                .unwrap_err()
        }
    };
    let wallet = sign_digest_as(out.join("client-wallet")).await;
    assert_eq!(wallet.code(), tonic::Code::NotFound, "{wallet:?}");
    let outsider = sign_digest_as(bridge).await;
    assert_eq!(
        outsider.code(),
        tonic::Code::PermissionDenied,
        "{outsider:?}"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut child = guard.0.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "node did not stop within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "node exited with {exit:?} after SIGTERM");
}

#[test]
fn check_config_refuses_a_broken_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let status = Command::new(BIN)
        .args([
            "pki",
            "devnet",
            "--signers",
            "2",
            "--base-port",
            "17001",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let config = out.join("signer-2/signer.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("quorum = 1", "quorum = 5")).unwrap();
    let check = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("authorizers.quorum"), "{stderr}");

    // pki devnet refuses to write into a directory that is not empty
    let again = Command::new(BIN)
        .args(["pki", "devnet", "--signers", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[test]
fn pki_issue_adds_a_certificate_from_the_devnet_ca() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let status = Command::new(BIN)
        .args([
            "pki",
            "devnet",
            "--signers",
            "1",
            "--base-port",
            "17101",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let issued = dir.path().join("client-bridge");
    let status = Command::new(BIN)
        .args([
            "pki",
            "issue",
            "--role",
            "custody://client/bridge",
            "--ca-cert",
        ])
        .arg(out.join("ca.pem"))
        .arg("--ca-key")
        .arg(out.join("ca.key"))
        .arg("--out")
        .arg(&issued)
        .status()
        .unwrap();
    assert!(status.success());
    let material = signer_node::tls::TlsMaterial::from_pem(
        std::fs::read(out.join("ca.pem")).unwrap(),
        std::fs::read(issued.join("cert.pem")).unwrap(),
        Zeroizing::new(std::fs::read(issued.join("key.pem")).unwrap()),
    )
    .unwrap();
    assert_eq!(
        material.identity(),
        &signer_node::identity::CallerIdentity::Client("bridge".into())
    );

    // a malformed role is refused and writes nothing
    let bad = Command::new(BIN)
        .args(["pki", "issue", "--role", "custody://admin/1", "--ca-cert"])
        .arg(out.join("ca.pem"))
        .arg("--ca-key")
        .arg(out.join("ca.key"))
        .arg("--out")
        .arg(dir.path().join("admin"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(!dir.path().join("admin").exists());
}
