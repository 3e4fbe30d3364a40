//! The presignature pool over real mTLS, in-process signers with the runner (fixture primes):
//! after one 2-of-3 keygen, the workers of the sets' lowest signers fill every configured
//! pool to its target with no coordinator call; a pooled presignature signs (checked with
//! libsecp256k1) and the pool refills; proposals a peer must refuse (proposer not the lowest
//! index, unknown key, other epoch, pool at the cap, sent to Deliver) are refused and start
//! nothing; with a peer down the proposer backs off instead of retrying in a loop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bind_loopback, connect, id, wait_end, TestFleet};
use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_control_client::SignerControlClient,
    signer_peer_client::SignerPeerClient, Authorization, AuthorizerSignature, PoolStatusRequest,
    PresignPoolStatus, PresignProposal, ProtocolKind, SessionStatusRequest, SignRequest,
    StartKeygenRequest,
};
use prost::Message;
use sha2::{Digest, Sha256};
use signer_node::envelope::{seal, EnvelopeHeader, Recipient, SessionId};
use signer_node::gate::{authorization_signing_bytes, DigestRule, OrderInput, SigningOrder};
use signer_node::node_key::NodeKey;
use signer_node::pools::PoolSettings;
use signer_node::runner::{presign_pool, Runner};
use signer_node::server::Node;
use signer_node::vault::{MemoryVault, Vault};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::Code;

const TARGET: u32 = 2;

struct Fleet {
    net: TestFleet,
    urls: Vec<String>,
    controls: Vec<SignerControlClient<Channel>>,
    vaults: Vec<Arc<MemoryVault>>,
    runners: Vec<Arc<Runner>>,
    stops: Vec<Option<oneshot::Sender<()>>>,
    authorizers: Vec<NodeKey>,
}

async fn start_fleet(name: &str, pools: &PoolSettings) -> Fleet {
    let n = 3u16;
    let net = TestFleet::new(name, n);
    let (listeners, urls) = bind_loopback(n).await;
    let coordinator = net.material("coordinator-1");
    let (mut controls, mut vaults, mut runners, mut stops) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, listener) in (1..=n).zip(listeners) {
        let config = net.fleet_config(i, &urls, 60_000, |raw| raw.pools = pools.clone());
        let (runner, vault) = net.memory_runner(i, &config);
        let node = Node::load(config).unwrap().with_runner(runner.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(node.serve(listener, async {
            let _ = stopped.await;
        }));
        controls.push(SignerControlClient::new(
            connect(&coordinator, &urls[usize::from(i) - 1])
                .await
                .unwrap(),
        ));
        vaults.push(vault);
        runners.push(runner);
        stops.push(Some(stop));
    }
    let authorizers = net
        .layout
        .authorizer_keys
        .iter()
        .map(|p| NodeKey::load(p).unwrap())
        .collect();
    Fleet {
        net,
        urls,
        controls,
        vaults,
        runners,
        stops,
        authorizers,
    }
}

async fn keygen(fleet: &mut Fleet, key_id: &[u8]) -> Vec<u8> {
    for c in fleet.controls.iter_mut() {
        c.start_keygen(StartKeygenRequest {
            session_id: id("keygen"),
            key_id: key_id.to_vec(),
            threshold: 2,
            participants: vec![1, 2, 3],
        })
        .await
        .unwrap();
    }
    let mut public_key = Vec::new();
    for c in fleet.controls.iter_mut() {
        let status = wait_end(c, &id("keygen"), Duration::from_secs(300)).await;
        let Some(Outcome::Key(info)) = status.outcome else {
            panic!("keygen: {status:?}")
        };
        public_key = info.public_key;
    }
    public_key
}

/// Signer `index`'s pool entry for `signers`.
async fn level(fleet: &mut Fleet, index: u16, signers: &[u32]) -> PresignPoolStatus {
    let status = fleet.controls[usize::from(index) - 1]
        .pool_status(PoolStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.primes.is_none(), "fixture primes bypass the pool");
    status
        .presignatures
        .into_iter()
        .find(|l| l.signers == signers)
        .unwrap_or_else(|| panic!("signer {index} reports no pool for {signers:?}"))
}

/// Waits until each signer of each set reports `TARGET` presignatures for it.
async fn wait_full(fleet: &mut Fleet, sets: &[&[u32]], limit: Duration) {
    let start = Instant::now();
    'again: loop {
        assert!(start.elapsed() < limit, "pools not full after {limit:?}");
        for set in sets {
            for &i in set.iter() {
                let l = level(fleet, i as u16, set).await;
                if l.ready < TARGET {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue 'again;
                }
                assert_eq!(l.ready, TARGET, "never above the target: {l:?}");
            }
        }
        return;
    }
}

fn presignature_count(vault: &MemoryVault, key: &[u8; 32]) -> usize {
    vault.presignatures(key).unwrap().len()
}

/// A proposal envelope from signer `from` (its own certificate and node key) to `to`.
async fn propose(
    fleet: &Fleet,
    from: u16,
    to: u16,
    session: [u8; 32],
    proposal: &PresignProposal,
) -> tonic::Status {
    let mut client = SignerPeerClient::new(
        connect(
            &fleet.net.material(&format!("signer-{from}")),
            &fleet.urls[usize::from(to) - 1],
        )
        .await
        .unwrap(),
    );
    let header = EnvelopeHeader {
        fleet_id: signer_node::config::FleetId::new("pools").unwrap(),
        session_id: SessionId(session),
        protocol: ProtocolKind::PresignProposal,
        round: 0,
        from,
        to: Recipient::Signer(to),
    };
    let envelope = seal(&fleet.net.node_key(from), &header, proposal.encode_to_vec());
    client.propose_presign(envelope).await.unwrap_err()
}

fn authorize(keys: &[NodeKey], order: &[u8]) -> Authorization {
    Authorization {
        order: order.to_vec(),
        signatures: keys
            .iter()
            .map(|key| AuthorizerSignature {
                public_key: key.verifying_key().to_bytes().to_vec(),
                signature: key
                    .sign(&authorization_signing_bytes(order))
                    .to_bytes()
                    .to_vec(),
            })
            .collect(),
        chain: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presign_pools_fill_without_a_coordinator_refuse_bad_proposals_and_back_off() {
    let pools = PoolSettings {
        presignatures_per_key: TARGET,
        presign_signer_sets: vec![vec![1, 2], vec![2, 3]],
        status_log_secs: 1,
        ..PoolSettings::default()
    };
    let mut fleet = start_fleet("pools", &pools).await;
    let key_id = id("pool-key");
    let key: [u8; 32] = key_id.clone().try_into().unwrap();
    let public_key = keygen(&mut fleet, &key_id).await;

    // the workers start; nobody calls FillPresignPool
    let started = Instant::now();
    for r in &fleet.runners {
        presign_pool::spawn_workers(r);
    }
    wait_full(&mut fleet, &[&[1, 2], &[2, 3]], Duration::from_secs(300)).await;
    eprintln!("pools full after {:?}", started.elapsed());
    let l = level(&mut fleet, 1, &[1, 2]).await;
    assert!(l.proposer && l.consecutive_failures == 0, "{l:?}");
    assert!(!level(&mut fleet, 2, &[1, 2]).await.proposer);
    assert!(level(&mut fleet, 2, &[2, 3]).await.proposer);
    // signer 1 proposes for {1,2} only, signer 2 for {2,3} only, signer 3 for nothing
    assert_eq!(
        fleet.runners[0].presign_pool().attempts(),
        u64::from(TARGET)
    );
    assert_eq!(
        fleet.runners[1].presign_pool().attempts(),
        u64::from(TARGET)
    );
    assert_eq!(fleet.runners[2].presign_pool().attempts(), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts: Vec<usize> = fleet
        .vaults
        .iter()
        .map(|v| presignature_count(v, &key))
        .collect();
    assert_eq!(counts, vec![2, 4, 2], "full pools stay at the target");

    // refusals: each starts nothing and stores nothing
    let good = PresignProposal {
        key_id: key_id.clone(),
        epoch: 0,
        signers: vec![2, 3],
    };
    let cases: Vec<(u16, u16, PresignProposal, Code)> = vec![
        // signer 3 is not the lowest of {2,3}
        (3, 2, good.clone(), Code::PermissionDenied),
        // a key signer 3 does not hold
        (
            2,
            3,
            PresignProposal {
                key_id: id("no-such-key"),
                ..good.clone()
            },
            Code::FailedPrecondition,
        ),
        // another epoch
        (
            2,
            3,
            PresignProposal {
                epoch: 1,
                ..good.clone()
            },
            Code::FailedPrecondition,
        ),
        // a set without the receiver
        (
            1,
            2,
            PresignProposal {
                signers: vec![1, 3],
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        // signer 3's pool for {2,3} is at its cap
        (2, 3, good.clone(), Code::ResourceExhausted),
    ];
    for (n, (from, to, proposal, code)) in cases.into_iter().enumerate() {
        let session: [u8; 32] = id(&format!("refused-{n}")).try_into().unwrap();
        let status = propose(&fleet, from, to, session, &proposal).await;
        assert_eq!(status.code(), code, "case {n}: {status:?}");
        let unknown = fleet.controls[usize::from(to) - 1]
            .session_status(SessionStatusRequest {
                session_id: session.to_vec(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound, "case {n} started a session");
    }
    // a proposal envelope handed to Deliver is refused too
    let mut peer = SignerPeerClient::new(
        connect(&fleet.net.material("signer-2"), &fleet.urls[2])
            .await
            .unwrap(),
    );
    let header = EnvelopeHeader {
        fleet_id: signer_node::config::FleetId::new("pools").unwrap(),
        session_id: SessionId([7; 32]),
        protocol: ProtocolKind::PresignProposal,
        round: 0,
        from: 2,
        to: Recipient::Signer(3),
    };
    let delivered = peer
        .deliver(seal(&fleet.net.node_key(2), &header, good.encode_to_vec()))
        .await
        .unwrap_err();
    assert_eq!(delivered.code(), Code::InvalidArgument, "{delivered:?}");
    let counts_after: Vec<usize> = fleet
        .vaults
        .iter()
        .map(|v| presignature_count(v, &key))
        .collect();
    assert_eq!(counts_after, counts, "refused proposals change nothing");

    // a pooled presignature of {1,2} signs an authorized order for the key itself
    let presig = fleet.vaults[0].presignatures(&key).unwrap()[0];
    let message = b"pay 2 ETH from the pool".to_vec();
    let order = SigningOrder {
        fleet_id: "pools".into(),
        key_id: key,
        not_after: u64::MAX,
        inputs: vec![OrderInput {
            path: vec![],
            rule: DigestRule::Sha256,
            message: message.clone(),
        }],
    }
    .encode()
    .unwrap();
    for c in fleet.controls[..2].iter_mut() {
        c.sign(SignRequest {
            session_id: id("sign"),
            key_id: key_id.clone(),
            path: None,
            signers: vec![1, 2],
            authorization: Some(authorize(&fleet.authorizers, &order)),
            input_index: 0,
            presignature_id: presig.to_vec(),
        })
        .await
        .unwrap();
    }
    let status = wait_end(&mut fleet.controls[0], &id("sign"), Duration::from_secs(60)).await;
    let Some(Outcome::Signature(sig)) = status.outcome else {
        panic!("sign: {status:?}")
    };
    let digest: [u8; 32] = Sha256::digest(&message).into();
    secp256k1::SECP256K1
        .verify_ecdsa(
            &secp256k1::Message::from_digest(digest),
            &secp256k1::ecdsa::Signature::from_compact(&sig.r_s).unwrap(),
            &secp256k1::PublicKey::from_slice(&public_key).unwrap(),
        )
        .unwrap();
    // the consumed presignature is replaced by the worker
    wait_full(&mut fleet, &[&[1, 2]], Duration::from_secs(120)).await;
    assert_eq!(
        fleet.runners[0].presign_pool().attempts(),
        u64::from(TARGET) + 1
    );
    assert!(!fleet.vaults[0]
        .presignatures(&key)
        .unwrap()
        .contains(&presig));

    // signer 3 goes down; signer 2's {2,3} pool loses its presignatures (as if consumed):
    // its proposals fail and it backs off (1 s, 2 s, 4 s, ...) instead of looping
    if let Some(stop) = fleet.stops[2].take() {
        let _ = stop.send(());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for p in fleet.vaults[1].presignature_publics(&key).unwrap() {
        if p.1.signers.len() == 2 && p.1.signers[0].get() == 1 {
            // positions 1 and 2 = signers 2 and 3
            fleet.vaults[1].take_presignature(&key, &p.0).unwrap();
        }
    }
    let before = fleet.runners[1].presign_pool().attempts();
    let window = Duration::from_secs(8);
    tokio::time::sleep(window).await;
    let attempts = fleet.runners[1].presign_pool().attempts() - before;
    // without backoff: one attempt per 0.5 s poll, 16 in the window
    assert!(
        (2..=5).contains(&attempts),
        "{attempts} proposals to a peer that is down in {window:?}"
    );
    let l = level(&mut fleet, 2, &[2, 3]).await;
    assert!(l.consecutive_failures >= 2 && l.ready == 0, "{l:?}");
}
