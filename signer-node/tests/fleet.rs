//! Signer nodes driven end to end over real mTLS on loopback: 2-of-3 keygen (GJKR DKG + aux
//! info with the public fixture primes, `[devnet] fixture_primes = true`), presigning,
//! signing checked with libsecp256k1, the signing gate's refusal, a consumed presignature,
//! a signer that never starts; refresh (3-of-5) and reshare ((2, 3) → (3, 5) → (2, 3)).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bind_loopback, connect, id, wait_end, TestFleet};
use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_control_client::SignerControlClient, Authorization,
    AuthorizerSignature, DerivationPath as WirePath, FillPresignPoolRequest, KeyInfo,
    ListKeysRequest, ProtocolKind, SessionState, SessionStatusRequest, SignRequest,
    StartKeygenRequest, StartRefreshRequest, StartReshareRequest,
};
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint};
use mpc_core::hd::{DerivationPath, ExtendedPublicKey};
use sha2::{Digest, Sha256};
use signer_node::gate::{authorization_signing_bytes, DigestRule, OrderInput, SigningOrder};
use signer_node::node_key::NodeKey;
use signer_node::server::Node;
use signer_node::vault::{AuditKind, MemoryVault, Vault};
use tonic::transport::Channel;
use tonic::Code;

/// An authorization of `order` signed by every key in `keys`.
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

struct Fleet {
    _net: TestFleet,
    controls: Vec<SignerControlClient<Channel>>,
    vaults: Vec<Arc<MemoryVault>>,
    /// The devnet's authorizer keys (pinned in every signer's config, quorum 2).
    authorizers: Vec<NodeKey>,
}

/// `n` signers serving in this process with the runner, round deadline `deadline_ms`.
async fn start_fleet(name: &str, n: u16, deadline_ms: u64) -> Fleet {
    let net = TestFleet::new(name, n);
    let (listeners, urls) = bind_loopback(n).await;
    let coordinator = net.material("coordinator-1");
    let mut controls = Vec::new();
    let mut vaults = Vec::new();
    for (i, listener) in (1..=n).zip(listeners) {
        let config = net.fleet_config(i, &urls, deadline_ms, |_| {});
        // the node's real gate: pinned authorizers and quorum from the devnet config
        let (runner, vault) = net.memory_runner(i, &config);
        let node = Node::load(config).unwrap().with_runner(runner);
        tokio::spawn(node.serve(listener, std::future::pending()));
        controls.push(SignerControlClient::new(
            connect(&coordinator, &urls[usize::from(i) - 1])
                .await
                .unwrap(),
        ));
        vaults.push(vault);
    }
    let authorizers = net
        .layout
        .authorizer_keys
        .iter()
        .map(|p| NodeKey::load(p).unwrap())
        .collect();
    Fleet {
        _net: net,
        controls,
        vaults,
        authorizers,
    }
}

fn sign_request(session: &str, key_id: &[u8], presig: &[u8], auth: Authorization) -> SignRequest {
    SignRequest {
        session_id: id(session),
        key_id: key_id.to_vec(),
        path: Some(WirePath {
            indices: vec![0, 7],
        }),
        signers: vec![1, 2],
        authorization: Some(auth),
        input_index: 0,
        presignature_id: presig.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keygen_presign_sign_over_mtls() {
    let mut fleet = start_fleet("fleet", 3, 60_000).await;
    let key_id = id("key-1");

    // keygen on all three
    for c in fleet.controls.iter_mut() {
        let accepted = c
            .start_keygen(StartKeygenRequest {
                session_id: id("keygen-1"),
                key_id: key_id.clone(),
                threshold: 2,
                participants: vec![1, 2, 3],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(accepted.session_id, id("keygen-1"));
    }
    let mut public_key = None;
    for c in fleet.controls.iter_mut() {
        let status = wait_end(c, &id("keygen-1"), Duration::from_secs(150)).await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
        let Some(Outcome::Key(info)) = status.outcome else {
            panic!("no key outcome")
        };
        let keys = c
            .list_keys(ListKeysRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys;
        assert_eq!(keys, vec![info.clone()]);
        assert_eq!(info.public_key.len(), 33);
        assert_eq!(
            (info.threshold, info.holders.clone(), info.epoch),
            (2, vec![1, 2, 3], 0)
        );
        match &public_key {
            None => public_key = Some(info),
            Some(first) => assert_eq!(first, &info, "every node has the same public key"),
        }
    }
    let info = public_key.unwrap();
    // the same key id again is refused
    let again = fleet.controls[0]
        .start_keygen(StartKeygenRequest {
            session_id: id("keygen-2"),
            key_id: key_id.clone(),
            threshold: 2,
            participants: vec![1, 2, 3],
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");

    // presign with signers {1, 2}
    let presign = id("presign-1");
    for c in fleet.controls[..2].iter_mut() {
        c.fill_presign_pool(FillPresignPoolRequest {
            session_id: presign.clone(),
            key_id: key_id.clone(),
            epoch: 0,
            path: Some(WirePath {
                indices: vec![0, 7],
            }),
            signers: vec![1, 2],
        })
        .await
        .unwrap();
    }
    for c in fleet.controls[..2].iter_mut() {
        let status = wait_end(c, &presign, Duration::from_secs(60)).await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
        assert_eq!(status.outcome, Some(Outcome::PresignaturesAdded(1)));
    }

    // a custody.order.v1 order for this key and path; the signers hash its one input
    let message = b"send 1 BTC to bc1q-test".to_vec();
    let order = SigningOrder {
        fleet_id: "fleet".into(),
        key_id: key_id.clone().try_into().unwrap(),
        not_after: u64::MAX,
        inputs: vec![OrderInput {
            path: vec![0, 7],
            rule: DigestRule::Sha256,
            message: message.clone(),
        }],
    }
    .encode()
    .unwrap();
    let authorizers = &fleet.authorizers;
    // one authorizer is below the quorum of 2
    let below = fleet.controls[0]
        .sign(sign_request(
            "sign-below-quorum",
            &key_id,
            &presign,
            authorize(&authorizers[..1], &order),
        ))
        .await
        .unwrap_err();
    assert_eq!(below.code(), Code::PermissionDenied, "{below:?}");
    // the gate refuses an order signed by someone else: PERMISSION_DENIED, nothing consumed
    let stranger = NodeKey::generate();
    let mut forged = authorize(
        &[
            stranger,
            NodeKey::load(&fleet._net.layout.authorizer_keys[1]).unwrap(),
        ],
        &order,
    );
    forged.signatures[0].public_key = authorizers[0].verifying_key().to_bytes().to_vec();
    let refused = fleet.controls[0]
        .sign(sign_request("sign-refused", &key_id, &presign, forged))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(
        fleet.vaults[0]
            .presignatures(&key_id.clone().try_into().unwrap())
            .unwrap(),
        vec![<[u8; 32]>::try_from(presign.as_slice()).unwrap()]
    );
    // no presignature id: presign-on-demand is not built
    let on_demand = fleet.controls[0]
        .sign(sign_request(
            "sign-no-presig",
            &key_id,
            &[],
            authorize(authorizers, &order),
        ))
        .await
        .unwrap_err();
    assert_eq!(on_demand.code(), Code::FailedPrecondition);
    assert!(on_demand
        .message()
        .contains("presign-on-demand not built yet"));

    // sign on both signers
    for c in fleet.controls[..2].iter_mut() {
        c.sign(sign_request(
            "sign-1",
            &key_id,
            &presign,
            authorize(authorizers, &order),
        ))
        .await
        .unwrap();
    }
    let mut signatures = Vec::new();
    for c in fleet.controls[..2].iter_mut() {
        let status = wait_end(c, &id("sign-1"), Duration::from_secs(60)).await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
        let Some(Outcome::Signature(sig)) = status.outcome else {
            panic!("no signature")
        };
        signatures.push(sig);
    }
    assert_eq!(signatures[0], signatures[1]);
    let sig = &signatures[0];

    // the child key at m/0/7, derived publicly from the key's public key and chain code
    let point =
        AffinePoint::from_encoded_point(&EncodedPoint::from_bytes(&info.public_key).unwrap())
            .unwrap();
    let master = ExtendedPublicKey::new_master(
        ProjectivePoint::from(point),
        mpc_core::hd::ChainCode(info.chain_code.as_slice().try_into().unwrap()),
    )
    .unwrap();
    let (child, _) = master
        .derive_path(&DerivationPath::from_indices(&[0, 7]).unwrap())
        .unwrap();
    let child_sec1 = child.public_key().to_affine().to_encoded_point(true);
    let child_key = secp256k1::PublicKey::from_slice(child_sec1.as_bytes()).unwrap();

    // libsecp256k1 verifies it and recovers the child key from the recovery id
    let digest: [u8; 32] = Sha256::digest(&message).into();
    let message = secp256k1::Message::from_digest(digest);
    let compact = secp256k1::ecdsa::Signature::from_compact(&sig.r_s).unwrap();
    secp256k1::SECP256K1
        .verify_ecdsa(&message, &compact, &child_key)
        .unwrap();
    let recoverable = secp256k1::ecdsa::RecoverableSignature::from_compact(
        &sig.r_s,
        secp256k1::ecdsa::RecoveryId::from_i32(sig.recovery_id as i32).unwrap(),
    )
    .unwrap();
    assert_eq!(
        secp256k1::SECP256K1
            .recover_ecdsa(&message, &recoverable)
            .unwrap(),
        child_key
    );

    // the presignature is gone: a second Sign with it is refused
    let reuse = fleet.controls[0]
        .sign(sign_request(
            "sign-2",
            &key_id,
            &presign,
            authorize(authorizers, &order),
        ))
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::FailedPrecondition, "{reuse:?}");
    assert!(reuse.message().contains("not in the pool"), "{reuse:?}");
    // and the same session id is never reused
    let dup = fleet.controls[0]
        .sign(sign_request(
            "sign-1",
            &key_id,
            &presign,
            authorize(authorizers, &order),
        ))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");

    // a status of an unknown session
    let unknown = fleet.controls[2]
        .session_status(SessionStatusRequest {
            session_id: id("never"),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signer_that_never_starts_is_blamed_at_the_deadline() {
    let mut fleet = start_fleet("lonely", 2, 1_500).await;
    // only signer 1 is told about the session; signer 2 serves but never starts it
    fleet.controls[0]
        .start_keygen(StartKeygenRequest {
            session_id: id("keygen-lonely"),
            key_id: id("key-lonely"),
            threshold: 2,
            participants: vec![1, 2],
        })
        .await
        .unwrap();
    let status = wait_end(
        &mut fleet.controls[0],
        &id("keygen-lonely"),
        Duration::from_secs(60),
    )
    .await;
    assert!(
        status.state == SessionState::Expired as i32
            || status.state == SessionState::Aborted as i32,
        "{status:?}"
    );
    let blame = status.blame.unwrap();
    assert_eq!(blame.culprits, vec![2], "{blame:?}");
    // the key id was released: nothing is stored, and it may be used again
    assert!(fleet.vaults[0].list_keys().unwrap().is_empty());
}

/// Outgoing peer channels reach only the signer they name: the same server is refused in the
/// handshake when the channel expects another signer's certificate.
#[tokio::test]
async fn peer_channels_pin_the_server_role() {
    use custody_proto::signer::v1::{signer_peer_client::SignerPeerClient, Envelope};
    use signer_node::peer_tls::signer_channel;

    let net = TestFleet::new("pin", 3);
    let node = common::RunningNode::start(net.node(2)).await;
    let me = net.material("signer-1");
    // the right signer: the call reaches the server, which refuses the empty envelope
    let reached = SignerPeerClient::new(signer_channel(&me, &node.url(), 2).unwrap())
        .deliver(Envelope::default())
        .await
        .unwrap_err();
    assert_eq!(reached.code(), Code::InvalidArgument, "{reached:?}");
    // expecting signer 3 at signer 2's address: no request is ever sent
    let pinned = SignerPeerClient::new(signer_channel(&me, &node.url(), 3).unwrap())
        .deliver(Envelope::default())
        .await
        .unwrap_err();
    assert_eq!(pinned.code(), Code::Unavailable, "{pinned:?}");
    assert!(
        format!("{pinned:?}").contains("expected custody://signer/3"),
        "{pinned:?}"
    );
    node.stop().await;
}

/// Presigns with `signers` at `epoch` (presignature id = `tag`-presign), then signs an
/// authorized order with it and checks the signature with libsecp256k1 under the child key
/// m/0/7 derived publicly from `info`. Returns the presignature id (consumed by then).
async fn presign_and_sign(
    fleet: &mut Fleet,
    fleet_name: &str,
    info: &KeyInfo,
    epoch: u64,
    signers: &[u32],
    tag: &str,
) -> Vec<u8> {
    let key_id = info.key_id.clone();
    let presign = id(&format!("{tag}-presign"));
    for s in signers {
        fleet.controls[*s as usize - 1]
            .fill_presign_pool(FillPresignPoolRequest {
                session_id: presign.clone(),
                key_id: key_id.clone(),
                epoch,
                path: Some(WirePath {
                    indices: vec![0, 7],
                }),
                signers: signers.to_vec(),
            })
            .await
            .unwrap();
    }
    for s in signers {
        let c = &mut fleet.controls[*s as usize - 1];
        let status = wait_end(c, &presign, Duration::from_secs(300)).await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
    }
    let message = format!("{tag}: send 1 BTC").into_bytes();
    let order = SigningOrder {
        fleet_id: fleet_name.into(),
        key_id: key_id.clone().try_into().unwrap(),
        not_after: u64::MAX,
        inputs: vec![OrderInput {
            path: vec![0, 7],
            rule: DigestRule::Sha256,
            message: message.clone(),
        }],
    }
    .encode()
    .unwrap();
    let session = format!("{tag}-sign");
    for s in signers {
        let mut req = sign_request(
            &session,
            &key_id,
            &presign,
            authorize(&fleet.authorizers, &order),
        );
        req.signers = signers.to_vec();
        fleet.controls[*s as usize - 1].sign(req).await.unwrap();
    }
    let mut signatures = Vec::new();
    for s in signers {
        let c = &mut fleet.controls[*s as usize - 1];
        let status = wait_end(c, &id(&session), Duration::from_secs(120)).await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
        let Some(Outcome::Signature(sig)) = status.outcome else {
            panic!("no signature")
        };
        signatures.push(sig);
    }
    assert!(signatures.windows(2).all(|w| w[0] == w[1]));
    let point =
        AffinePoint::from_encoded_point(&EncodedPoint::from_bytes(&info.public_key).unwrap())
            .unwrap();
    let master = ExtendedPublicKey::new_master(
        ProjectivePoint::from(point),
        mpc_core::hd::ChainCode(info.chain_code.as_slice().try_into().unwrap()),
    )
    .unwrap();
    let (child, _) = master
        .derive_path(&DerivationPath::from_indices(&[0, 7]).unwrap())
        .unwrap();
    let child_key = secp256k1::PublicKey::from_slice(
        child
            .public_key()
            .to_affine()
            .to_encoded_point(true)
            .as_bytes(),
    )
    .unwrap();
    let digest: [u8; 32] = Sha256::digest(&message).into();
    secp256k1::SECP256K1
        .verify_ecdsa(
            &secp256k1::Message::from_digest(digest),
            &secp256k1::ecdsa::Signature::from_compact(&signatures[0].r_s).unwrap(),
            &child_key,
        )
        .unwrap();
    presign
}

/// Waits for `session` to end on every one of `signers` and returns their key outcomes.
async fn keys_after(
    fleet: &mut Fleet,
    signers: &[u32],
    session: &[u8],
    limit: Duration,
) -> Vec<KeyInfo> {
    let mut infos = Vec::new();
    for s in signers {
        let status = wait_end(&mut fleet.controls[*s as usize - 1], session, limit).await;
        assert_eq!(
            status.state,
            SessionState::Completed as i32,
            "signer {s}: {status:?}"
        );
        let Some(Outcome::Key(info)) = status.outcome else {
            panic!("signer {s}: no key outcome")
        };
        infos.push(info);
    }
    infos
}

async fn keygen(fleet: &mut Fleet, tag: &str, threshold: u32, participants: &[u32]) -> KeyInfo {
    for s in participants {
        fleet.controls[*s as usize - 1]
            .start_keygen(StartKeygenRequest {
                session_id: id(&format!("{tag}-keygen")),
                key_id: id(tag),
                threshold,
                participants: participants.to_vec(),
            })
            .await
            .unwrap();
    }
    let infos = keys_after(
        fleet,
        participants,
        &id(&format!("{tag}-keygen")),
        Duration::from_secs(600),
    )
    .await;
    assert!(infos.windows(2).all(|w| w[0] == w[1]), "{infos:?}");
    infos[0].clone()
}

fn secret_share(vault: &MemoryVault, key_id: &[u8]) -> Option<(u64, [u8; 32])> {
    vault
        .load_key(&key_id.try_into().unwrap())
        .unwrap()
        .map(|(share, _)| (share.epoch(), share.secret_share().to_bytes().into()))
}

/// 3-of-5 keygen, then a refresh: the same public key at epoch 1 with new shares; a
/// presignature made before the refresh is refused after it, a fresh one signs; a refresh
/// naming the wrong epoch is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_keeps_the_key_moves_the_epoch_and_retires_old_presignatures() {
    let mut fleet = start_fleet("refresh", 5, 120_000).await;
    let all = [1u32, 2, 3, 4, 5];
    let info = keygen(&mut fleet, "refresh-key", 3, &all).await;
    let key_id = info.key_id.clone();
    let key32: [u8; 32] = key_id.clone().try_into().unwrap();
    assert_eq!((info.threshold, info.epoch), (3, 0));

    // a presignature of epoch 0, still in the pool when the refresh runs
    let old_presign = id("refresh-old-presign");
    for s in [1u32, 2, 3] {
        fleet.controls[s as usize - 1]
            .fill_presign_pool(FillPresignPoolRequest {
                session_id: old_presign.clone(),
                key_id: key_id.clone(),
                epoch: 0,
                path: Some(WirePath {
                    indices: vec![0, 7],
                }),
                signers: vec![1, 2, 3],
            })
            .await
            .unwrap();
    }
    for s in [1usize, 2, 3] {
        let status = wait_end(
            &mut fleet.controls[s - 1],
            &old_presign,
            Duration::from_secs(300),
        )
        .await;
        assert_eq!(status.state, SessionState::Completed as i32, "{status:?}");
    }
    let before: Vec<_> = fleet
        .vaults
        .iter()
        .map(|v| secret_share(v, &key_id).unwrap())
        .collect();

    // the wrong epoch: refused before anything starts, nothing changes
    let wrong = fleet.controls[0]
        .start_refresh(StartRefreshRequest {
            session_id: id("refresh-wrong-epoch"),
            key_id: key_id.clone(),
            epoch: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::FailedPrecondition, "{wrong:?}");
    assert!(wrong.message().contains("epoch 0"), "{wrong:?}");
    let unknown = fleet.controls[0]
        .session_status(SessionStatusRequest {
            session_id: id("refresh-wrong-epoch"),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "no session was registered");
    assert_eq!(secret_share(&fleet.vaults[0], &key_id).unwrap(), before[0]);
    assert_eq!(
        fleet.vaults[0].presignatures(&key32).unwrap(),
        vec![<[u8; 32]>::try_from(old_presign.as_slice()).unwrap()]
    );
    // malformed ids and unknown keys
    let short = fleet.controls[0]
        .start_refresh(StartRefreshRequest {
            session_id: vec![1; 31],
            key_id: key_id.clone(),
            epoch: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument, "{short:?}");
    let nokey = fleet.controls[0]
        .start_refresh(StartRefreshRequest {
            session_id: id("refresh-no-key"),
            key_id: id("no such key"),
            epoch: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(nokey.code(), Code::NotFound, "{nokey:?}");

    // the refresh on every holder
    let session = id("refresh-1");
    for c in fleet.controls.iter_mut() {
        c.start_refresh(StartRefreshRequest {
            session_id: session.clone(),
            key_id: key_id.clone(),
            epoch: 0,
        })
        .await
        .unwrap();
    }
    let status = fleet.controls[0]
        .session_status(SessionStatusRequest {
            session_id: session.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.protocol, ProtocolKind::Refresh as i32);
    let infos = keys_after(&mut fleet, &all, &session, Duration::from_secs(600)).await;
    for after in &infos {
        assert_eq!(after.public_key, info.public_key, "the key is unchanged");
        assert_eq!(after.chain_code, info.chain_code);
        assert_eq!((after.threshold, after.epoch), (3, 1));
        assert_eq!(after.holders, info.holders);
    }
    for (i, v) in fleet.vaults.iter().enumerate() {
        let (epoch, share) = secret_share(v, &key_id).unwrap();
        assert_eq!(epoch, 1);
        assert_ne!(share, before[i].1, "signer {}: the share changed", i + 1);
        // REF-03: the old epoch's presignatures are gone from every pool
        assert!(v.presignatures(&key32).unwrap().is_empty());
        assert!(v
            .audit_log()
            .iter()
            .any(|e| e.kind == AuditKind::KeyRefreshed
                && e.session_id == Some(session.clone().try_into().unwrap())));
    }
    let listed = fleet.controls[3]
        .list_keys(ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed, vec![infos[3].clone()]);

    // the presignature made before the refresh is refused after it
    let order = SigningOrder {
        fleet_id: "refresh".into(),
        key_id: key32,
        not_after: u64::MAX,
        inputs: vec![OrderInput {
            path: vec![0, 7],
            rule: DigestRule::Sha256,
            message: b"with an old presignature".to_vec(),
        }],
    }
    .encode()
    .unwrap();
    let mut old = sign_request(
        "refresh-sign-old",
        &key_id,
        &old_presign,
        authorize(&fleet.authorizers, &order),
    );
    old.signers = vec![1, 2, 3];
    let refused = fleet.controls[0].sign(old).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    // presigning for the old epoch is refused too
    let stale = fleet.controls[0]
        .fill_presign_pool(FillPresignPoolRequest {
            session_id: id("refresh-stale-presign"),
            key_id: key_id.clone(),
            epoch: 0,
            path: None,
            signers: vec![1, 2, 3],
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");

    // a fresh presignature at epoch 1 signs, and the signature verifies under the same key
    presign_and_sign(
        &mut fleet,
        "refresh",
        &infos[0],
        1,
        &[2, 4, 5],
        "refresh-new",
    )
    .await;
}

/// Reshare (2, 3) → (3, 5) with two signers new to the key, then (3, 5) → (2, 3): the same
/// public key throughout, the new committees sign, and the holders that left can no longer
/// presign or sign.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reshare_moves_the_key_to_new_committees() {
    let mut fleet = start_fleet("reshare", 5, 120_000).await;
    let info = keygen(&mut fleet, "reshare-key", 2, &[1, 2, 3]).await;
    let key_id = info.key_id.clone();
    let key32: [u8; 32] = key_id.clone().try_into().unwrap();
    assert!(secret_share(&fleet.vaults[3], &key_id).is_none());

    // (2, 3) -> (3, 5): holders 1 and 2 deal; 4 and 5 hold nothing yet
    let grow = id("reshare-grow");
    let all = [1u32, 2, 3, 4, 5];
    for s in all {
        fleet.controls[s as usize - 1]
            .start_reshare(StartReshareRequest {
                session_id: grow.clone(),
                key_id: key_id.clone(),
                epoch: 0,
                dealers: vec![1, 2],
                new_committee: all.to_vec(),
                new_threshold: 3,
            })
            .await
            .unwrap();
    }
    let infos = keys_after(&mut fleet, &all, &grow, Duration::from_secs(600)).await;
    for after in &infos {
        assert_eq!(after.public_key, info.public_key, "the key is unchanged");
        assert_eq!(after.chain_code, info.chain_code);
        assert_eq!(
            (after.threshold, after.holders.clone(), after.epoch),
            (3, all.to_vec(), 1)
        );
    }
    for v in &fleet.vaults {
        assert_eq!(secret_share(v, &key_id).unwrap().0, 1);
    }
    // the newcomers sign with an old holder
    presign_and_sign(
        &mut fleet,
        "reshare",
        &infos[0],
        1,
        &[3, 4, 5],
        "reshare-grown",
    )
    .await;

    // refused before anything starts: holders 1 and 2 would leave without dealing
    let leaves = fleet.controls[2]
        .start_reshare(StartReshareRequest {
            session_id: id("reshare-bad"),
            key_id: key_id.clone(),
            epoch: 1,
            dealers: vec![3, 4, 5],
            new_committee: vec![3, 4, 5],
            new_threshold: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(leaves.code(), Code::InvalidArgument, "{leaves:?}");
    // the wrong epoch, and the wrong number of dealers
    let wrong_epoch = fleet.controls[2]
        .start_reshare(StartReshareRequest {
            session_id: id("reshare-bad"),
            key_id: key_id.clone(),
            epoch: 0,
            dealers: vec![1, 2, 3],
            new_committee: vec![3, 4, 5],
            new_threshold: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(
        wrong_epoch.code(),
        Code::FailedPrecondition,
        "{wrong_epoch:?}"
    );
    let two_dealers = fleet.controls[2]
        .start_reshare(StartReshareRequest {
            session_id: id("reshare-bad"),
            key_id: key_id.clone(),
            epoch: 1,
            dealers: vec![1, 2],
            new_committee: vec![1, 2, 3, 4, 5],
            new_threshold: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(two_dealers.code(), Code::InvalidArgument, "{two_dealers:?}");

    // (3, 5) -> (2, 3): 1 and 2 leave (so they deal, with 3); 3, 4, 5 keep the key
    let shrink = id("reshare-shrink");
    for s in all {
        fleet.controls[s as usize - 1]
            .start_reshare(StartReshareRequest {
                session_id: shrink.clone(),
                key_id: key_id.clone(),
                epoch: 1,
                dealers: vec![1, 2, 3],
                new_committee: vec![3, 4, 5],
                new_threshold: 2,
            })
            .await
            .unwrap();
    }
    let infos = keys_after(&mut fleet, &all, &shrink, Duration::from_secs(600)).await;
    for after in &infos {
        assert_eq!(after.public_key, info.public_key, "the key is unchanged");
        assert_eq!(
            (after.threshold, after.holders.clone(), after.epoch),
            (2, vec![3, 4, 5], 2)
        );
    }
    // the holders that left: nothing of the key is left, durably audited
    for s in [1usize, 2] {
        let v = &fleet.vaults[s - 1];
        assert!(secret_share(v, &key_id).is_none(), "signer {s} retired");
        assert!(v
            .audit_log()
            .iter()
            .any(|e| e.kind == AuditKind::KeyRetired && e.key_id == Some(key32)));
        let c = &mut fleet.controls[s - 1];
        assert!(c
            .list_keys(ListKeysRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys
            .is_empty());
        let presign = c
            .fill_presign_pool(FillPresignPoolRequest {
                session_id: id(&format!("retired-presign-{s}")),
                key_id: key_id.clone(),
                epoch: 2,
                path: None,
                signers: vec![s as u32, 3],
            })
            .await
            .unwrap_err();
        assert_eq!(presign.code(), Code::NotFound, "{presign:?}");
        let order = SigningOrder {
            fleet_id: "reshare".into(),
            key_id: key32,
            not_after: u64::MAX,
            inputs: vec![OrderInput {
                path: vec![0, 7],
                rule: DigestRule::Sha256,
                message: b"from a retired holder".to_vec(),
            }],
        }
        .encode()
        .unwrap();
        let mut req = sign_request(
            &format!("retired-sign-{s}"),
            &key_id,
            &id("reshare-grown-presign"),
            authorize(&fleet.authorizers, &order),
        );
        req.signers = vec![s as u32, 3];
        let sign = fleet.controls[s - 1].sign(req).await.unwrap_err();
        assert_eq!(sign.code(), Code::NotFound, "{sign:?}");
    }
    for s in [3usize, 4, 5] {
        assert_eq!(secret_share(&fleet.vaults[s - 1], &key_id).unwrap().0, 2);
    }
    // the new committee of three signs with two of its members
    presign_and_sign(
        &mut fleet,
        "reshare",
        &infos[2],
        2,
        &[4, 5],
        "reshare-shrunk",
    )
    .await;
}
