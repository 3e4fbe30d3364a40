//! A runner started on a sealed store written by an earlier process: sessions the earlier
//! process left running come back ABORTED "interrupted by a restart of signer N", finished
//! ones keep their outcome, both answered by `SessionStatus` over mTLS, and their ids are
//! refused `ALREADY_EXISTS` with nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
mod store_support;

use std::sync::Arc;

use common::{connect, RunningNode, TestFleet};
use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_control_client::SignerControlClient, EcdsaSignature,
    ProtocolKind, SessionState, SessionStatusRequest, SessionStatusResponse, StartKeygenRequest,
};
use signer_node::gate::PolicyGate;
use signer_node::runner::primes::GeneratedPrimes;
use signer_node::runner::{Runner, RunnerParts};
use signer_node::server::Node;
use signer_node::store::SledVault;
use signer_node::vault::{AuditKind, Vault};
use store_support::file_sealer;
use tonic::Code;

const INTERRUPTED: [u8; 32] = [0x61; 32];
const DONE: [u8; 32] = [0x62; 32];

fn signature() -> Outcome {
    Outcome::Signature(EcdsaSignature {
        r_s: vec![0x44; 64],
        recovery_id: 1,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runner_reports_earlier_sessions_and_refuses_their_ids() {
    let net = TestFleet::new("restart", 2);
    let data = tempfile::tempdir().unwrap();
    {
        // the earlier process: one session still running, one ended with a signature
        let vault = SledVault::create(data.path(), file_sealer(data.path(), true)).unwrap();
        vault.put_session(&INTERRUPTED, ProtocolKind::Dkg).unwrap();
        vault.put_session(&DONE, ProtocolKind::Sign).unwrap();
        vault
            .end_session(
                &DONE,
                &SessionStatusResponse {
                    session_id: DONE.to_vec(),
                    protocol: ProtocolKind::Sign as i32,
                    state: SessionState::Completed as i32,
                    round: 1,
                    outcome: Some(signature()),
                    blame: None,
                },
            )
            .unwrap();
    }
    let store = Arc::new(SledVault::open(data.path(), file_sealer(data.path(), false)).unwrap());
    let vault: Arc<dyn Vault> = store.clone();
    let config = net.config(1);
    let runner = Runner::new(
        &config,
        net.material("signer-1"),
        net.node_key(1),
        RunnerParts {
            vault,
            gate: Arc::new(PolicyGate::from_config(&config)),
            primes: Arc::new(GeneratedPrimes),
        },
    )
    .unwrap();
    let node = RunningNode::start(Node::load(config).unwrap().with_runner(runner)).await;
    let mut control = SignerControlClient::new(
        connect(&net.material("coordinator-1"), &node.url())
            .await
            .unwrap(),
    );
    let status = |id: [u8; 32]| {
        let mut c = control.clone();
        async move {
            c.session_status(SessionStatusRequest {
                session_id: id.to_vec(),
            })
            .await
        }
    };

    let s = status(INTERRUPTED).await.unwrap().into_inner();
    assert_eq!(s.state, SessionState::Aborted as i32);
    assert_eq!(s.protocol, ProtocolKind::Dkg as i32);
    let blame = s.blame.unwrap();
    assert_eq!(blame.reason, "interrupted by a restart of signer 1");
    assert!(blame.culprits.is_empty());
    let s = status(DONE).await.unwrap().into_inner();
    assert_eq!(s.state, SessionState::Completed as i32);
    assert_eq!(s.outcome, Some(signature()));
    assert_eq!(status([0x63; 32]).await.unwrap_err().code(), Code::NotFound);

    // the interrupted session's id is refused, and nothing was reserved for its key
    let key_id = [0x99u8; 32];
    let refused = control
        .start_keygen(StartKeygenRequest {
            session_id: INTERRUPTED.to_vec(),
            key_id: key_id.to_vec(),
            threshold: 2,
            participants: vec![1, 2],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    store.reserve_key(&key_id, &[1; 32]).unwrap();
    store.release_reservation(&key_id).unwrap();

    // audited once, by the runner's start
    let aborted: Vec<_> = store
        .audit_log()
        .unwrap()
        .into_iter()
        .filter(|r| r.event.kind == AuditKind::SessionAborted)
        .map(|r| r.event.session_id)
        .collect();
    assert_eq!(aborted, vec![Some(INTERRUPTED)]);
    node.stop().await;
}
