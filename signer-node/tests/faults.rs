//! Issue #4's multi-process fault tests: five real `signer-node` processes on loopback with a
//! devnet PKI, sealed stores and mTLS, one 3-of-5 key, and
//!
//! 1. a signer killed (SIGKILL) in the middle of presigning: the survivors end the session
//!    EXPIRED/ABORTED with a blame naming it, file no presignature for that session, and a
//!    retry with a subset without it presigns and signs an authorized order (libsecp256k1);
//! 2. malformed and oversized input against the running fleet (garbage envelope bytes, an
//!    envelope over the cap, a forged signature, wrong field lengths and an oversized control
//!    request): INVALID_ARGUMENT / RESOURCE_EXHAUSTED / PERMISSION_DENIED, and nothing changes
//!    (keys the same, the session running meanwhile completes, audit chains verify);
//! 3. a signer started with a test-only fault (`fault-injection`: its round-2 Πelog proof is
//!    corrupted inside a correctly signed envelope): the honest signers abort and blame it,
//!    and the blame's evidence verifies (node signatures under the pinned keys, and the proof
//!    re-checked and found invalid), with the library and with `signer-node blame verify`.
//!
//! One fleet and one keygen serve all three (keygen's aux info is most of the cost): about
//! 3.5 minutes on two cores shared with four other builds (keygen 155 s of it), roughly a
//! minute and a half on two idle cores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process_fleet;

use std::time::{Duration, Instant};

use custody_proto::signer::v1::{
    signer_peer_client::SignerPeerClient, Blame, Envelope, FillPresignPoolRequest, ProtocolKind,
    SessionState, SessionStatusRequest, StartKeygenRequest,
};
use process_fleet::{random_id, signer_node, wire_path, ProcessFleet};
use prost::Message;
use signer_node::blame::{pinned_keys, recheck_presign, verify_evidence, PresignSession};
use signer_node::config::{FleetId, NodeConfig};
use signer_node::envelope::SessionId;
use signer_node::store::SledVault;
use signer_node::vault::Vault;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Code;

/// Signer 3 is killed mid-presign; signer 5 cheats in presigning round 2.
const KILLED: u16 = 3;
const CHEATER: u16 = 5;
/// Envelope payload cap of the test fleet (the default is 32 MiB; a smaller cap keeps the
/// oversized envelope cheap). Keygen messages of 5 signers stay far below it.
const PAYLOAD_CAP: usize = 4 << 20;
/// Round deadline during keygen: aux-info rounds of 5 processes on 2 shared cores can take
/// tens of seconds.
const KEYGEN_DEADLINE_MS: u64 = 180_000;
/// Round deadline afterwards (the fleet is restarted with it): what the survivors wait for
/// the killed signer.
const DEADLINE_MS: u64 = 15_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_signer_malformed_input_and_a_cheater_are_handled_and_blamed() {
    let started = Instant::now();
    let mut fleet = ProcessFleet::create(5, |_, _, raw: &mut NodeConfig| {
        raw.round_deadline_ms = KEYGEN_DEADLINE_MS;
        raw.limits.max_envelope_payload_bytes = PAYLOAD_CAP;
    });

    // a node with a fault armed but without the loud opt-in refuses to start
    let refused = std::process::Command::new(process_fleet::BIN)
        .args(["run", "--config"])
        .arg(fleet.config_path(CHEATER))
        .env(signer_node::fault::FAULT_ENV, "presign-r2-elog")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--dangerously-inject-faults"),
        "refusal names the opt-in: {stderr}"
    );

    for i in 1..=5 {
        let fault = (i == CHEATER).then_some("presign-r2-elog");
        fleet.start(i, fault);
    }
    fleet.wait_serving().await;
    assert!(
        fleet.log(CHEATER).contains("FAULT INJECTION ARMED"),
        "the cheater says so loudly"
    );

    let all = [1, 2, 3, 4, 5];
    let (key_id, key) = fleet.keygen(3, &all).await;
    eprintln!("keygen 3-of-5 done after {:?}", started.elapsed());

    // restart every signer with the short round deadline; the key stays (sealed stores)
    fleet.stop_all();
    for i in all {
        fleet.edit_config(i, |raw| raw.round_deadline_ms = DEADLINE_MS);
        fleet.start(i, (i == CHEATER).then_some("presign-r2-elog"));
    }
    fleet.wait_serving().await;
    let mut keys_before = Vec::new();
    for i in all {
        let keys = fleet.list_keys(i).await;
        assert_eq!(keys, vec![key.clone()], "signer {i} after the restart");
        keys_before.push(keys);
    }

    // ---- 1. a signer killed in the middle of presigning --------------------------------
    let dead_session = random_id();
    fleet
        .start_presign(&key_id, &dead_session, &[1, 2, KILLED])
        .await;
    // kill as soon as a survivor is past round 1 (it holds the victim's round-1 messages),
    // long before anyone can finish round 3
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s1 = fleet.status(1, &dead_session).await;
        let s2 = fleet.status(2, &dead_session).await;
        if s1.round >= 2 || s2.round >= 2 {
            break;
        }
        assert!(
            s1.state == SessionState::Running as i32 || s1.state == SessionState::Pending as i32,
            "{s1:?}"
        );
        assert!(
            Instant::now() < deadline,
            "presigning never reached round 2"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fleet.kill(KILLED);
    eprintln!("signer {KILLED} killed mid-presign");

    // ---- 2. (while the survivors wait) a retry without the dead signer, and malformed
    //         input against signer 1 while that retry runs ---------------------------------
    let retry = random_id();
    fleet.start_presign(&key_id, &retry, &[1, 2, 4]).await;
    malformed_input(&mut fleet, &retry).await;
    for i in [1, 2, 4] {
        let status = fleet.wait_end(i, &retry, Duration::from_secs(120)).await;
        assert_eq!(
            status.state,
            SessionState::Completed as i32,
            "signer {i}: the retry presigns despite the malformed input: {status:?}"
        );
    }
    fleet
        .sign_and_verify(
            &key_id,
            &key,
            &retry,
            &[1, 2, 4],
            b"order after a dead signer",
        )
        .await;
    eprintln!(
        "retry without signer {KILLED} signed after {:?}",
        started.elapsed()
    );

    // the survivors' sessions end naming the killed signer
    for i in [1, 2] {
        let status = fleet
            .wait_end(i, &dead_session, Duration::from_secs(120))
            .await;
        let state = SessionState::try_from(status.state).unwrap();
        assert!(
            matches!(state, SessionState::Expired | SessionState::Aborted),
            "signer {i}: {status:?}"
        );
        let blame = status.blame.expect("a blame");
        assert_eq!(
            blame.culprits,
            vec![u32::from(KILLED)],
            "signer {i}: {blame:?}"
        );
        assert!(
            blame
                .reason
                .contains("no valid message before the deadline")
                && blame.reason.contains(&format!("(signers {{{KILLED}}})")),
            "the reason names the missing signer: {}",
            blame.reason
        );
        // no presignature was filed for that session: signing with it is refused
        let authorization = fleet.authorization(&key_id, b"must not be signed");
        let request = fleet.sign_request(&key_id, &dead_session, &[1, 2, KILLED], authorization);
        let e = fleet.control(i).sign(request).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "signer {i}: {e:?}");
    }

    // ---- 3. a cheater: a corrupted proof in a correctly signed envelope -----------------
    let cheat_session = random_id();
    let cheat_signers = [1, 2, CHEATER];
    fleet
        .start_presign(&key_id, &cheat_session, &cheat_signers)
        .await;
    let mut blame: Option<Blame> = None;
    for i in [1, 2] {
        let status = fleet
            .wait_end(i, &cheat_session, Duration::from_secs(120))
            .await;
        assert_eq!(
            status.state,
            SessionState::Aborted as i32,
            "signer {i}: {status:?}"
        );
        let b = status.blame.expect("a blame");
        assert_eq!(b.culprits, vec![u32::from(CHEATER)], "signer {i}: {b:?}");
        assert!(b.reason.contains("Πelog"), "{}", b.reason);
        assert!(!b.evidence.is_empty());
        if i == 1 {
            blame = Some(b);
        }
    }
    let blame = blame.unwrap();

    // nothing else changed: the same keys everywhere alive
    for i in [1, 2, 4, 5] {
        assert_eq!(
            fleet.list_keys(i).await,
            keys_before[usize::from(i) - 1],
            "signer {i}'s keys"
        );
    }
    fleet.stop_all();
    for i in all {
        fleet.audit_verify(i);
    }

    // ---- the blame verifies: signatures (library) ---------------------------------------
    let config = NodeConfig::load(&fleet.config_path(1)).unwrap();
    let pinned = pinned_keys(&config);
    let fleet_id = FleetId::new("devnet").unwrap();
    let session = SessionId(cheat_session.as_slice().try_into().unwrap());
    let evidence = verify_evidence(&blame, &fleet_id, &session, &pinned).unwrap();
    assert!(evidence.iter().all(|e| e.header.from == CHEATER));
    // a tampered evidence envelope does not verify
    let mut tampered = blame.clone();
    let mut env = Envelope::decode(tampered.evidence[0].as_slice()).unwrap();
    env.payload.push(0);
    tampered.evidence[0] = env.encode_to_vec();
    assert!(verify_evidence(&tampered, &fleet_id, &session, &pinned).is_err());
    // evidence of another session is refused
    assert!(verify_evidence(&blame, &fleet_id, &SessionId([7; 32]), &pinned).is_err());

    // ---- ... and the proof re-checked from signer 1's key material is invalid ------------
    let data_dir = config.raw.data_dir.clone();
    let profile = hsm_profiles::Profile::load(&config.raw.hsm_profile).unwrap();
    let sealer = profile.open_sealer(&data_dir).unwrap();
    let store = SledVault::open(&data_dir, std::sync::Arc::new(sealer)).unwrap();
    let key_id32: [u8; 32] = key_id.as_slice().try_into().unwrap();
    let (share, aux) = store.load_key(&key_id32).unwrap().unwrap();
    // signer 1 still holds no presignature of the failed sessions
    let pooled = store.presignatures(&key_id32).unwrap();
    assert!(!pooled
        .iter()
        .any(|p| p.as_slice() == dead_session.as_slice()));
    assert!(!pooled
        .iter()
        .any(|p| p.as_slice() == cheat_session.as_slice()));
    drop(store);
    let holders = [1, 2, 3, 4, 5];
    let presign = PresignSession {
        session,
        key_id: key_id32,
        path: mpc_core::hd::DerivationPath::from_indices(&process_fleet::PATH).unwrap(),
        signers: &cheat_signers,
        holders: &holders,
    };
    let finding = recheck_presign(&evidence, CHEATER, &presign, &share, &aux).unwrap();
    assert_eq!(finding.culprit, CHEATER);
    assert_eq!(finding.round, 2);
    assert!(finding.proof.contains("Πelog"), "{finding}");
    // the honest signer 2's messages are not evidence of anything: re-checking them fails
    assert!(recheck_presign(&evidence, 2, &presign, &share, &aux).is_err());

    // ---- ... and with the subcommand ------------------------------------------------------
    let blame_file = fleet.dir.path().join("blame.bin");
    std::fs::write(&blame_file, blame.encode_to_vec()).unwrap();
    let session_hex = hex::encode(&cheat_session);
    let key_hex = hex::encode(&key_id);
    let out = signer_node(
        &["blame", "verify", "--config"],
        &[
            fleet.config_path(1).as_os_str(),
            "--blame".as_ref(),
            blame_file.as_os_str(),
            "--session".as_ref(),
            session_hex.as_ref(),
            "--key-id".as_ref(),
            key_hex.as_ref(),
            "--path".as_ref(),
            "44,60,0,0,0".as_ref(),
            "--signers".as_ref(),
            "1,2,5".as_ref(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("signatures OK"), "{stdout}");
    assert!(stdout.contains("PROOF INVALID"), "{stdout}");
    std::fs::write(&blame_file, tampered.encode_to_vec()).unwrap();
    let out = signer_node(
        &["blame", "verify", "--config"],
        &[
            fleet.config_path(1).as_os_str(),
            "--blame".as_ref(),
            blame_file.as_os_str(),
            "--session".as_ref(),
            session_hex.as_ref(),
        ],
    );
    assert!(!out.status.success(), "a tampered blame is refused");
    eprintln!("all done after {:?}", started.elapsed());
}

/// Sends malformed, oversized and forged input to signer 1 while `running` presigns, and
/// checks each status code.
async fn malformed_input(fleet: &mut ProcessFleet, running: &[u8]) {
    // a peer (signer 4's certificate) sending bytes that are not an envelope
    let channel = fleet.channel_as("signer-4", 1).await;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    for garbage in [
        vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01],
        vec![0xff; 64],
        b"not protobuf at all".to_vec(),
    ] {
        grpc.ready().await.unwrap();
        let e = grpc
            .unary(
                tonic::Request::new(garbage),
                tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/custody.signer.v1.SignerPeer/Deliver",
                ),
                RawBytes,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    let mut peer = SignerPeerClient::new(channel).max_encoding_message_size(64 << 20);
    let envelope = |payload: Vec<u8>, session: &[u8], signature: Vec<u8>| Envelope {
        fleet_id: "devnet".into(),
        session_id: session.to_vec(),
        protocol: ProtocolKind::Presign as i32,
        round: 1,
        from: 4,
        to: Some(custody_proto::signer::v1::envelope::To::Signer(1)),
        payload,
        signature,
    };
    // an envelope over the cap, for the running session
    let e = peer
        .deliver(envelope(vec![0; PAYLOAD_CAP + 2048], running, vec![0; 64]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // wrong lengths inside an envelope
    for (what, env) in [
        (
            "31-byte session id",
            envelope(vec![1], &[0; 31], vec![0; 64]),
        ),
        ("63-byte signature", envelope(vec![1], running, vec![0; 63])),
    ] {
        let e = peer.deliver(env).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
    }
    // a well-formed envelope for the running session whose signature is not signer 4's: it
    // is refused before the session sees it (and does not take signer 4's delivery slot)
    let e = peer
        .deliver(envelope(vec![1, 2, 3], running, vec![7; 64]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // control requests with wrong lengths (coordinator certificate)
    let key_id = fleet.list_keys(1).await[0].key_id.clone();
    let control = fleet.control(1);
    let e = control
        .start_keygen(StartKeygenRequest {
            session_id: vec![1; 31],
            key_id: vec![2; 32],
            threshold: 2,
            participants: vec![1, 2],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("session_id"), "{e:?}");
    let e = control
        .fill_presign_pool(FillPresignPoolRequest {
            session_id: random_id(),
            key_id: vec![2; 33],
            epoch: 0,
            path: wire_path(),
            signers: vec![1, 2, 4],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("key_id"), "{e:?}");
    let e = control
        .session_status(SessionStatusRequest {
            session_id: vec![3; 5],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // the same session id as the running presign, other field wrong: refused, and the
    // running session is not disturbed (checked by the caller)
    let e = control
        .fill_presign_pool(FillPresignPoolRequest {
            session_id: running.to_vec(),
            key_id,
            epoch: 0,
            path: wire_path(),
            signers: vec![1, 2, 4, 5],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::InvalidArgument | Code::AlreadyExists),
        "{e:?}"
    );
    // a control request over max_request_bytes (1 MiB)
    let e = control
        .fill_presign_pool(FillPresignPoolRequest {
            session_id: vec![0; 2 << 20],
            key_id: vec![2; 32],
            epoch: 0,
            path: wire_path(),
            signers: vec![1],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
}

/// Sends bytes as they are, without protobuf encoding.
#[derive(Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;
    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }
    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
