//! `SignerClient.SignDigest` over real mTLS on loopback (2-of-3 fleet, keygen with the public
//! fixture primes): an allow-listed client's signatures verified with libsecp256k1 for the
//! derived child key, the allow-list, key and quota refusals, other roles refused, a malformed
//! request that changes nothing, the presignature pool untouched; and the Prometheus
//! endpoint scraped over TCP after the sessions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{bind_loopback, connect, id, wait_end, TestFleet};
use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_client_client::SignerClientClient,
    signer_control_client::SignerControlClient, DerivationPath as WirePath, FillPresignPoolRequest,
    KeyInfo, SessionState, SessionStatusRequest, SignDigestRequest, SignDigestResponse,
    StartKeygenRequest,
};
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint};
use mpc_core::hd::{DerivationPath, ExtendedPublicKey};
use sha2::{Digest, Sha256};
use signer_node::config::ClientConfig;
use signer_node::identity::CallerIdentity;
use signer_node::pki::FleetCa;
use signer_node::server::Node;
use signer_node::tls::TlsMaterial;
use signer_node::vault::{AuditKind, MemoryVault, Vault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::Channel;
use tonic::{Code, Status};
use zeroize::Zeroizing;

/// The wallet's quota on every signer.
const WALLET_QUOTA: u32 = 2;

struct Fleet {
    net: TestFleet,
    urls: Vec<String>,
    controls: Vec<SignerControlClient<Channel>>,
    vaults: Vec<Arc<MemoryVault>>,
    /// Where signer 1 serves its metrics.
    metrics_addr: std::net::SocketAddr,
}

impl Fleet {
    /// TLS material of a client certificate `custody://client/NAME` issued by the fleet CA.
    fn client_material(&self, name: &str) -> TlsMaterial {
        let root = self.net.root();
        let ca_pem = std::fs::read_to_string(root.join("ca.pem")).unwrap();
        let ca_key = Zeroizing::new(std::fs::read_to_string(root.join("ca.key")).unwrap());
        let ca = FleetCa::from_pem(&ca_pem, &ca_key).unwrap();
        let issued = ca
            .issue(&CallerIdentity::Client(name.to_owned()), &[])
            .unwrap();
        TlsMaterial::from_pem(
            ca_pem.into_bytes(),
            issued.cert_pem.into_bytes(),
            Zeroizing::new(issued.key_pem.as_bytes().to_vec()),
        )
        .unwrap()
    }

    async fn client(&self, material: &TlsMaterial, signer: u16) -> SignerClientClient<Channel> {
        SignerClientClient::new(
            connect(material, &self.urls[usize::from(signer) - 1])
                .await
                .unwrap(),
        )
    }
}

/// Three signers with the runner; every signer allows "wallet" for `key_id` (quota
/// [`WALLET_QUOTA`]) and "other" for another key only. Signer 1 serves metrics.
async fn start_fleet(name: &str, key_id: &[u8]) -> Fleet {
    let n = 3u16;
    let net = TestFleet::new(name, n);
    let (listeners, urls) = bind_loopback(n).await;
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics_listener.local_addr().unwrap();
    let mut metrics_listener = Some(metrics_listener);
    let coordinator = net.material("coordinator-1");
    let mut controls = Vec::new();
    let mut vaults = Vec::new();
    for (i, listener) in (1..=n).zip(listeners) {
        let config = net.fleet_config(i, &urls, 60_000, |raw| {
            raw.clients = vec![
                ClientConfig {
                    name: "wallet".into(),
                    keys: vec![hex::encode(key_id)],
                    all_keys: false,
                    max_signatures_per_hour: WALLET_QUOTA,
                },
                ClientConfig {
                    name: "other".into(),
                    keys: vec![hex::encode(id("another key"))],
                    all_keys: false,
                    max_signatures_per_hour: 100,
                },
            ];
        });
        let (runner, vault) = net.memory_runner(i, &config);
        if let Some(l) = metrics_listener.take() {
            tokio::spawn(signer_node::metrics::serve(
                l,
                Arc::clone(runner.metrics()),
                Arc::clone(runner.vault()),
                std::future::pending(),
            ));
        }
        let node = Node::load(config).unwrap().with_runner(runner);
        tokio::spawn(node.serve(listener, std::future::pending()));
        controls.push(SignerControlClient::new(
            connect(&coordinator, &urls[usize::from(i) - 1])
                .await
                .unwrap(),
        ));
        vaults.push(vault);
    }
    Fleet {
        net,
        urls,
        controls,
        vaults,
        metrics_addr,
    }
}

fn request(session: &str, key_id: &[u8], digest: &[u8], signers: &[u32]) -> SignDigestRequest {
    SignDigestRequest {
        key_id: key_id.to_vec(),
        path: Some(WirePath {
            indices: vec![3, 1],
        }),
        digest: digest.to_vec(),
        session_id: id(session),
        signers: signers.to_vec(),
    }
}

/// Calls SignDigest with the same request on each of `signers`, concurrently.
async fn sign_on(
    fleet: &Fleet,
    material: &TlsMaterial,
    req: &SignDigestRequest,
) -> Vec<Result<SignDigestResponse, Status>> {
    let mut calls = Vec::new();
    for s in &req.signers {
        let mut client = fleet.client(material, *s as u16).await;
        let req = req.clone();
        calls.push(tokio::spawn(async move {
            client.sign_digest(req).await.map(|r| r.into_inner())
        }));
    }
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

/// The child public key at m/3/1 of `info`, for libsecp256k1.
fn child_key(info: &KeyInfo) -> secp256k1::PublicKey {
    let point =
        AffinePoint::from_encoded_point(&EncodedPoint::from_bytes(&info.public_key).unwrap())
            .unwrap();
    let master = ExtendedPublicKey::new_master(
        ProjectivePoint::from(point),
        mpc_core::hd::ChainCode(info.chain_code.as_slice().try_into().unwrap()),
    )
    .unwrap();
    let (child, _) = master
        .derive_path(&DerivationPath::from_indices(&[3, 1]).unwrap())
        .unwrap();
    let sec1 = child.public_key().to_affine().to_encoded_point(true);
    secp256k1::PublicKey::from_slice(sec1.as_bytes()).unwrap()
}

/// Checks both answers are the same valid signature of `digest` under the child key.
fn check_signed(
    answers: Vec<Result<SignDigestResponse, Status>>,
    digest: &[u8; 32],
    child: &secp256k1::PublicKey,
) {
    let answers: Vec<SignDigestResponse> = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|s| panic!("SignDigest failed: {s:?}")))
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0], answers[1], "every signer returns the same");
    let a = &answers[0];
    assert_eq!(a.public_key, child.serialize().to_vec());
    let sig = a.signature.as_ref().unwrap();
    let message = secp256k1::Message::from_digest(*digest);
    let compact = secp256k1::ecdsa::Signature::from_compact(&sig.r_s).unwrap();
    secp256k1::SECP256K1
        .verify_ecdsa(&message, &compact, child)
        .unwrap();
    // low s: normalising changes nothing
    let mut normalized = compact;
    normalized.normalize_s();
    assert_eq!(normalized, compact);
    let recoverable = secp256k1::ecdsa::RecoverableSignature::from_compact(
        &sig.r_s,
        secp256k1::ecdsa::RecoveryId::from_i32(sig.recovery_id as i32).unwrap(),
    )
    .unwrap();
    assert_eq!(
        secp256k1::SECP256K1
            .recover_ecdsa(&message, &recoverable)
            .unwrap(),
        *child
    );
}

fn audit_count(vault: &MemoryVault, kind: AuditKind) -> usize {
    vault.audit_log().iter().filter(|e| e.kind == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_sign_digest_over_mtls() {
    let key_id = id("client key");
    let mut fleet = start_fleet("clients", &key_id).await;
    let key: [u8; 32] = key_id.clone().try_into().unwrap();

    for c in fleet.controls.iter_mut() {
        c.start_keygen(StartKeygenRequest {
            session_id: id("keygen"),
            key_id: key_id.clone(),
            threshold: 2,
            participants: vec![1, 2, 3],
        })
        .await
        .unwrap();
    }
    let mut info = None;
    for c in fleet.controls.iter_mut() {
        let status = wait_end(c, &id("keygen"), Duration::from_secs(200)).await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
        let Some(Outcome::Key(k)) = status.outcome else {
            panic!("no key outcome")
        };
        info = Some(k);
    }
    let info = info.unwrap();
    let child = child_key(&info);

    // one presignature in the pool of signers 1 and 2 (for another path): client signing
    // must leave it alone
    for c in fleet.controls[..2].iter_mut() {
        c.fill_presign_pool(FillPresignPoolRequest {
            session_id: id("pool"),
            key_id: key_id.clone(),
            epoch: 0,
            path: None,
            signers: vec![1, 2],
        })
        .await
        .unwrap();
    }
    for c in fleet.controls[..2].iter_mut() {
        let status = wait_end(c, &id("pool"), Duration::from_secs(120)).await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
    }
    let pool = |fleet: &Fleet, i: usize| fleet.vaults[i].presignatures(&key).unwrap();
    let pool_id: [u8; 32] = id("pool").try_into().unwrap();
    assert_eq!(pool(&fleet, 0), vec![pool_id]);

    let wallet = fleet.client_material("wallet");

    // the wallet signs a digest on signers 1 and 2
    let digest1: [u8; 32] = Sha256::digest(b"first raw digest").into();
    let answers = sign_on(
        &fleet,
        &wallet,
        &request("digest-1", &key_id, &digest1, &[1, 2]),
    )
    .await;
    check_signed(answers, &digest1, &child);
    // the pool is untouched
    assert_eq!(pool(&fleet, 0), vec![pool_id]);
    assert_eq!(pool(&fleet, 1), vec![pool_id]);
    // the session is visible to SessionStatus: protocol SIGN, completed with the signature
    let status = wait_end(
        &mut fleet.controls[0],
        &id("digest-1"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
    assert_eq!(
        status.protocol,
        custody_proto::signer::v1::ProtocolKind::Sign as i32
    );
    assert!(matches!(status.outcome, Some(Outcome::Signature(_))));
    // audited: accepted and issued, on each signer that took part; signer 3 saw nothing
    for v in &fleet.vaults[..2] {
        assert_eq!(audit_count(v, AuditKind::ClientSignature), 2);
        assert!(v
            .audit_log()
            .iter()
            .any(|e| e.kind == AuditKind::ClientSignature
                && e.detail.contains("\"wallet\"")
                && e.detail.contains(&hex::encode(digest1))));
    }
    assert_eq!(audit_count(&fleet.vaults[2], AuditKind::ClientSignature), 0);

    // refusals on signer 1; none of them changes anything there
    let audit_before = fleet.vaults[0].audit_log().len();
    // malformed: a 31-byte digest, a wrong session id length, a hardened path, a signer set
    // that is not the threshold, or without signer 1
    let mut client1 = fleet.client(&wallet, 1).await;
    let mut bad = request("bad", &key_id, &digest1[..31], &[1, 2]);
    let e = client1.sign_digest(bad.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("digest must be 32 bytes"), "{e:?}");
    bad.digest = digest1.to_vec();
    bad.session_id = vec![1; 31];
    let e = client1.sign_digest(bad.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    bad.session_id = id("bad");
    bad.path = Some(WirePath {
        indices: vec![1 << 31],
    });
    let e = client1.sign_digest(bad.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    bad.path = None;
    bad.signers = vec![1, 2, 3];
    let e = client1.sign_digest(bad.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    bad.signers = vec![2, 3];
    let e = client1.sign_digest(bad.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // nothing registered, audited or charged
    let e = fleet.controls[0]
        .session_status(SessionStatusRequest {
            session_id: id("bad"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(fleet.vaults[0].audit_log().len(), audit_before);

    // a client not on the allow-list
    let stranger = fleet.client_material("stranger");
    let e = fleet
        .client(&stranger, 1)
        .await
        .sign_digest(request("stranger", &key_id, &digest1, &[1, 2]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("not on this signer's raw-signing allow-list"),
        "{e:?}"
    );
    // a client allowed for another key only
    let other = fleet.client_material("other");
    let e = fleet
        .client(&other, 1)
        .await
        .sign_digest(request("other", &key_id, &digest1, &[1, 2]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("may not sign with key"), "{e:?}");
    // a coordinator's and a signer's certificate
    for who in ["coordinator-1", "signer-2"] {
        let material = fleet.net.material(who);
        let e = fleet
            .client(&material, 1)
            .await
            .sign_digest(request("role", &key_id, &digest1, &[1, 2]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{who}: {e:?}");
        assert!(e.message().contains("requires a client"), "{who}: {e:?}");
    }
    // the policy refusals are audited, nothing was signed or registered
    assert_eq!(
        fleet.vaults[0].audit_log().len(),
        audit_before + 2,
        "one RequestRefused each for stranger and other"
    );
    assert_eq!(audit_count(&fleet.vaults[0], AuditKind::ClientSignature), 2);
    for s in ["stranger", "other", "role"] {
        let e = fleet.controls[0]
            .session_status(SessionStatusRequest { session_id: id(s) })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{s}: {e:?}");
    }
    // a reused session id
    let e = client1
        .sign_digest(request("digest-1", &key_id, &digest1, &[1, 2]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");

    // the second signature of the wallet's quota of 2 on signer 1 (the malformed and refused
    // requests charged nothing), this time with signers 1 and 3
    let digest2: [u8; 32] = Sha256::digest(b"second raw digest").into();
    let answers = sign_on(
        &fleet,
        &wallet,
        &request("digest-2", &key_id, &digest2, &[1, 3]),
    )
    .await;
    check_signed(answers, &digest2, &child);

    // over quota on signer 1: RESOURCE_EXHAUSTED, nothing registered, nothing signed
    let signed_before = audit_count(&fleet.vaults[0], AuditKind::ClientSignature);
    let digest3: [u8; 32] = Sha256::digest(b"third raw digest").into();
    let e = client1
        .sign_digest(request("digest-3", &key_id, &digest3, &[1, 2]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("quota"), "{e:?}");
    assert_eq!(
        audit_count(&fleet.vaults[0], AuditKind::ClientSignature),
        signed_before
    );
    assert_eq!(
        audit_count(&fleet.vaults[0], AuditKind::PartialSignatureIssued),
        2
    );
    let e = fleet.controls[0]
        .session_status(SessionStatusRequest {
            session_id: id("digest-3"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // the pool is still untouched everywhere
    assert_eq!(pool(&fleet, 0), vec![pool_id]);
    assert_eq!(pool(&fleet, 1), vec![pool_id]);

    // metrics of signer 1
    let (head, body) = scrape(fleet.metrics_addr, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    let samples = parse_exposition(&body);
    let get = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        *samples
            .get(&(name.to_owned(), labels.clone()))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{body}"))
    };
    assert_eq!(
        get(
            "signer_node_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        get("signer_node_sessions_started_total", &[("kind", "dkg")]),
        1.0
    );
    assert_eq!(
        get("signer_node_sessions_started_total", &[("kind", "presign")]),
        1.0
    );
    // digest-1, digest-2 and the withdrawn digest-3
    assert_eq!(
        get("signer_node_sessions_started_total", &[("kind", "sign")]),
        3.0
    );
    assert_eq!(
        get(
            "signer_node_sessions_ended_total",
            &[("kind", "sign"), ("state", "completed")]
        ),
        2.0
    );
    assert_eq!(
        get("signer_node_sessions_withdrawn_total", &[("kind", "sign")]),
        1.0
    );
    assert_eq!(
        get(
            "signer_node_session_duration_seconds_count",
            &[("kind", "sign")]
        ),
        2.0
    );
    assert_eq!(
        get(
            "signer_node_session_duration_seconds_bucket",
            &[("kind", "sign"), ("le", "+Inf")]
        ),
        2.0
    );
    assert!(get("signer_node_envelopes_received_total", &[]) > 0.0);
    assert_eq!(
        get(
            "signer_node_client_signatures_total",
            &[("client", "wallet")]
        ),
        2.0
    );
    assert_eq!(
        get("signer_node_client_refusals_total", &[("reason", "quota")]),
        1.0
    );
    assert_eq!(
        get(
            "signer_node_client_refusals_total",
            &[("reason", "client_not_allowed")]
        ),
        1.0,
        "the stranger (other roles are refused by the role gate before the service)"
    );
    assert_eq!(
        get(
            "signer_node_client_refusals_total",
            &[("reason", "key_not_allowed")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "signer_node_client_refusals_total",
            &[("reason", "invalid_argument")]
        ),
        5.0
    );
    assert_eq!(
        get(
            "signer_node_client_refusals_total",
            &[("reason", "session_exists")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "signer_node_presignatures_in_pool",
            &[("key_id", &hex::encode(key))]
        ),
        1.0
    );
    // no session id appears anywhere
    for s in ["digest-1", "digest-2", "keygen", "pool"] {
        assert!(!body.contains(&hex::encode(id(s))), "{s} in metrics");
    }
    // other paths and methods
    let (head, _) = scrape(fleet.metrics_addr, "/").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let mut s = TcpStream::connect(fleet.metrics_addr).await.unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");

    // the wallet calls only signer 2 for a session with signer 3: signer 2 presigns alone
    // until the round deadline, then answers DEADLINE_EXCEEDED naming signer 3
    let digest4: [u8; 32] = Sha256::digest(b"fourth raw digest").into();
    let e = fleet
        .client(&wallet, 2)
        .await
        .sign_digest(request("digest-4", &key_id, &digest4, &[2, 3]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(e.message().contains("culprit signers [3]"), "{e:?}");
    let status = wait_end(
        &mut fleet.controls[1],
        &id("digest-4"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status.state, SessionState::Expired as i32, "{status:?}");
    assert_eq!(status.blame.unwrap().culprits, vec![3]);
    assert!(fleet.vaults[1]
        .audit_log()
        .iter()
        .any(|e| e.kind == AuditKind::SessionAborted
            && e.session_id == Some(id("digest-4").try_into().unwrap())));
    // no partial signature left signer 2 for it: still one per completed client signature
    assert_eq!(
        audit_count(&fleet.vaults[1], AuditKind::PartialSignatureIssued),
        1
    );
}

/// One HTTP/1.1 GET over TCP: (status line and headers, body).
async fn scrape(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(length, body.len());
    (format!("{head}\r\n"), body.to_owned())
}

type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn metric_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses text exposition format 0.0.4 line by line, panicking on any line that is not a
/// HELP, TYPE or sample line, or on a sample of a family without a TYPE line before it.
fn parse_exposition(text: &str) -> Samples {
    assert!(text.ends_with('\n'), "the text ends with a line feed");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (what, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(metric_name_ok(name), "bad name in {line:?}");
            match what {
                "HELP" => assert!(parts.next().is_some_and(|h| !h.is_empty()), "{line:?}"),
                "TYPE" => {
                    let t = parts.next().unwrap();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "{line:?}"
                    );
                    assert!(
                        types.insert(name.to_owned(), t.to_owned()).is_none(),
                        "TYPE twice: {line:?}"
                    );
                }
                _ => panic!("unexpected comment line {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                (name, parse_labels(inner, line))
            }
        };
        assert!(metric_name_ok(name), "bad name in {line:?}");
        let family = types
            .keys()
            .find(|f| {
                name == f.as_str()
                    || (types[*f] == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{f}{s}")))
            })
            .unwrap_or_else(|| panic!("sample without a TYPE line: {line:?}"));
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "counter name {name}");
        }
        assert!(
            samples.insert((name.to_owned(), labels), value).is_none(),
            "the same series twice: {line:?}"
        );
    }
    // histogram buckets are cumulative
    let mut buckets: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for ((name, labels), v) in &samples {
        if let (Some(base), Some(le)) = (name.strip_suffix("_bucket"), labels.get("le")) {
            let mut rest = labels.clone();
            rest.remove("le");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            buckets
                .entry((base.to_owned(), format!("{rest:?}")))
                .or_default()
                .push((bound, *v));
        }
    }
    for (_, mut b) in buckets {
        b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap());
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "{b:?}");
        assert_eq!(b.last().unwrap().0, f64::INFINITY);
    }
    samples
}

/// `k="v",k2="v2"` with the escapes \\, \" and \n.
fn parse_labels(inner: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    let mut seen = BTreeSet::new();
    while chars.peek().is_some() {
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        assert!(
            metric_name_ok(&key) && !key.contains(':'),
            "label {key:?} in {line:?}"
        );
        assert_eq!(chars.next(), Some('"'), "{line:?}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        }
        assert!(seen.insert(key.clone()), "label twice in {line:?}");
        labels.insert(key, value);
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => panic!("unexpected {c:?} in {line:?}"),
        }
    }
    labels
}
