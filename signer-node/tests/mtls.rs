//! The node over real mTLS: handshake refusals, role checks, health and reflection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{connect, RunningNode, TestFleet};
use custody_proto::signer::v1::{
    signer_client_client::SignerClientClient, signer_control_client::SignerControlClient,
    signer_peer_client::SignerPeerClient, Envelope, ListKeysRequest, SessionStatusRequest,
    SignDigestRequest, StartKeygenRequest,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};
use tonic_reflection::pb::v1::{
    server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse, ServerReflectionRequest,
};

/// A call that should never reach a handler must end in a TLS alert from the server.
fn assert_refused_by_transport(outcome: Result<(), String>, what: &str, alert: &str) {
    match outcome {
        Ok(()) => panic!("{what}: the call succeeded"),
        Err(e) => {
            assert!(
                e.contains(alert),
                "{what}: expected TLS alert {alert:?}, got {e}"
            );
            eprintln!("{what}: refused as expected: {e}");
        }
    }
}

async fn health_check(
    channel: tonic::transport::Channel,
    service: &str,
) -> Result<i32, tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(response.into_inner().status)
}

/// Connects with `tls` and runs a health check; any failure (handshake, transport, status) is
/// reported as Err.
async fn try_health(tls: ClientTlsConfig, url: &str) -> Result<(), String> {
    let channel = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let status = health_check(channel, "").await.map_err(|s| {
        assert!(
            matches!(s.code(), Code::Unavailable | Code::Unknown),
            "a handshake refusal must be a transport failure, got {s:?}"
        );
        format!("call: {s:?}")
    })?;
    panic!("health answered {status} to a caller the handshake should have refused")
}

#[tokio::test]
async fn health_answers_serving_over_mtls() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(2)).await;
    for who in ["coordinator-1", "client-wallet", "signer-1"] {
        let channel = connect(&fleet.material(who), &node.url()).await.unwrap();
        assert_eq!(
            health_check(channel.clone(), "").await.unwrap(),
            ServingStatus::Serving as i32
        );
        assert_eq!(
            health_check(channel, "custody.signer.v1.SignerPeer")
                .await
                .unwrap(),
            ServingStatus::Serving as i32
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn client_without_certificate_is_refused_at_handshake() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(1)).await;
    let ca = std::fs::read(fleet.root().join("ca.pem")).unwrap();
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    assert_refused_by_transport(
        try_health(tls, &node.url()).await,
        "no client certificate",
        "CertificateRequired",
    );
    // the server keeps serving properly authenticated callers
    let channel = connect(&fleet.material("coordinator-1"), &node.url())
        .await
        .unwrap();
    assert_eq!(
        health_check(channel, "").await.unwrap(),
        ServingStatus::Serving as i32
    );
    node.stop().await;
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let fleet = TestFleet::new("devnet", 3);
    let impostors = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(1)).await;
    // A signer-1 certificate from another CA with the same name as ours, trusting our CA so
    // that only the server's check of the client certificate can fail (the signature of the
    // look-alike CA does not verify under our CA's key).
    let material = impostors.material_trusting("signer-1", &fleet);
    assert_refused_by_transport(
        try_health(material.client_config(None), &node.url()).await,
        "certificate of another CA",
        "fatal alert",
    );
    node.stop().await;
}

#[tokio::test]
async fn roles_are_checked_per_service() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(1)).await;
    let client = connect(&fleet.material("client-wallet"), &node.url())
        .await
        .unwrap();
    let coordinator = connect(&fleet.material("coordinator-1"), &node.url())
        .await
        .unwrap();
    let signer = connect(&fleet.material("signer-2"), &node.url())
        .await
        .unwrap();

    // client -> control
    let e = SignerControlClient::new(client.clone())
        .list_keys(ListKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("requires a coordinator"), "{e:?}");
    assert!(e.message().contains("custody://client/wallet"), "{e:?}");

    // coordinator -> peer
    let e = SignerPeerClient::new(coordinator.clone())
        .deliver(Envelope::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("requires a signer"), "{e:?}");

    // signer -> client service, and signer -> control
    let e = SignerClientClient::new(signer.clone())
        .sign_digest(SignDigestRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("custody://signer/2"), "{e:?}");
    let e = SignerControlClient::new(signer)
        .list_keys(ListKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // the right roles get past the gate
    let keys = SignerControlClient::new(coordinator)
        .list_keys(ListKeysRequest {})
        .await
        .unwrap();
    assert!(keys.into_inner().keys.is_empty());
    let e = SignerClientClient::new(client)
        .sign_digest(SignDigestRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    node.stop().await;
}

#[tokio::test]
async fn control_answers_truthfully_without_a_session_runner() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(1)).await;
    let mut control = SignerControlClient::new(
        connect(&fleet.material("coordinator-1"), &node.url())
            .await
            .unwrap(),
    );

    let e = control
        .start_keygen(StartKeygenRequest {
            session_id: vec![1; 32],
            key_id: vec![2; 32],
            threshold: 2,
            participants: vec![1, 2, 3],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("session runner"), "{e:?}");

    let e = control
        .session_status(SessionStatusRequest {
            session_id: vec![1; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = control
        .session_status(SessionStatusRequest {
            session_id: vec![1; 3],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    node.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_services() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(1)).await;
    let channel = connect(&fleet.material("client-wallet"), &node.url())
        .await
        .unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "custody.signer.v1.SignerPeer",
        "custody.signer.v1.SignerControl",
        "custody.signer.v1.SignerClient",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    node.stop().await;
}
