//! SignerPeer.Deliver over real mTLS: the envelope checks and their status codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::{connect, RunningNode, TestFleet};
use custody_proto::signer::v1::{signer_peer_client::SignerPeerClient, Envelope, ProtocolKind};
use signer_node::config::FleetId;
use signer_node::envelope::{
    payload_hash, seal, verify_evidence, EnvelopeHeader, Recipient, SessionId, VerifiedEnvelope,
};
use signer_node::inbox::{DuplicateFilter, InboxRefusal, SessionInbox};
use signer_node::node_key::NodeKey;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Code;

fn header(from: u16, to: Recipient) -> EnvelopeHeader {
    EnvelopeHeader {
        fleet_id: FleetId::new("devnet").unwrap(),
        session_id: SessionId([9; 32]),
        protocol: ProtocolKind::Dkg,
        round: 1,
        from,
        to,
    }
}

async fn peer_client(
    fleet: &TestFleet,
    who: &str,
    node: &RunningNode,
) -> SignerPeerClient<tonic::transport::Channel> {
    SignerPeerClient::new(connect(&fleet.material(who), &node.url()).await.unwrap())
}

/// An inbox that accepts envelopes of one session, refusing duplicates: what the session
/// runner's inbox must do at the least.
#[derive(Default)]
struct OneSessionInbox {
    seen: Mutex<DuplicateFilter>,
    received: Mutex<Vec<VerifiedEnvelope>>,
}

impl SessionInbox for OneSessionInbox {
    fn deliver(&self, envelope: VerifiedEnvelope) -> Result<(), InboxRefusal> {
        if envelope.header().session_id != SessionId([9; 32]) {
            return Err(InboxRefusal::NoSuchSession(envelope.header().session_id));
        }
        self.seen.lock().unwrap().admit(envelope.delivery_key())?;
        self.received.lock().unwrap().push(envelope);
        Ok(())
    }
}

#[tokio::test]
async fn default_inbox_says_no_such_session() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(2)).await;
    let env = seal(
        &fleet.node_key(1),
        &header(1, Recipient::Signer(2)),
        b"r1".to_vec(),
    );
    let e = peer_client(&fleet, "signer-1", &node)
        .await
        .deliver(env)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("no such session"), "{e:?}");
    node.stop().await;
}

#[tokio::test]
async fn verified_envelope_reaches_the_inbox_once() {
    let fleet = TestFleet::new("devnet", 3);
    let inbox = Arc::new(OneSessionInbox::default());
    let node = RunningNode::start(fleet.node(2).with_inbox(inbox.clone())).await;
    let mut client = peer_client(&fleet, "signer-1", &node).await;

    let env = seal(
        &fleet.node_key(1),
        &header(1, Recipient::Signer(2)),
        b"round one".to_vec(),
    );
    let receipt = client.deliver(env.clone()).await.unwrap().into_inner();
    assert_eq!(receipt.payload_hash, payload_hash(b"round one").to_vec());
    let e = client.deliver(env).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");

    let broadcast = seal(
        &fleet.node_key(3),
        &header(3, Recipient::Broadcast),
        b"all".to_vec(),
    );
    peer_client(&fleet, "signer-3", &node)
        .await
        .deliver(broadcast)
        .await
        .unwrap();

    let received = inbox.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].payload(), b"round one");
    // what the inbox keeps is evidence a third party can check with the sender's pinned key
    let h = verify_evidence(received[0].encoded(), &fleet.node_key(1).verifying_key()).unwrap();
    assert_eq!(h, header(1, Recipient::Signer(2)));
    node.stop().await;
}

#[tokio::test]
async fn sender_index_must_match_the_certificate() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(2)).await;
    // signer 3's certificate delivers an envelope that says (and is validly signed) from 1
    let env = seal(
        &fleet.node_key(1),
        &header(1, Recipient::Signer(2)),
        b"x".to_vec(),
    );
    let e = peer_client(&fleet, "signer-3", &node)
        .await
        .deliver(env)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("signer 3"), "{e:?}");
    node.stop().await;
}

#[tokio::test]
async fn bad_signature_is_permission_denied() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(2)).await;
    let mut client = peer_client(&fleet, "signer-1", &node).await;

    // signed by a key that is not signer 1's pinned key
    let env = seal(
        &NodeKey::generate(),
        &header(1, Recipient::Signer(2)),
        b"x".to_vec(),
    );
    let e = client.deliver(env).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("signature"), "{e:?}");

    // signed correctly, then the payload changed in transit
    let mut env = seal(
        &fleet.node_key(1),
        &header(1, Recipient::Signer(2)),
        b"x".to_vec(),
    );
    env.payload = b"y".to_vec();
    let e = client.deliver(env).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    node.stop().await;
}

#[tokio::test]
async fn oversized_envelope_is_resource_exhausted() {
    let fleet = TestFleet::new("devnet", 3);
    let cap = 4096;
    let node = signer_node::server::Node::load(fleet.config_with_payload_cap(2, cap)).unwrap();
    let node = RunningNode::start(node).await;
    let mut client = peer_client(&fleet, "signer-1", &node).await;
    let key = fleet.node_key(1);

    // just over the payload cap: refused by the envelope check before anything else
    let env = seal(&key, &header(1, Recipient::Signer(2)), vec![0; cap + 1]);
    let e = client.deliver(env).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // far over: refused by the transport before decoding
    let env = seal(&key, &header(1, Recipient::Signer(2)), vec![0; 4 * cap]);
    let e = client.deliver(env).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // at the cap it passes the size check (and reaches the inbox, which knows no session)
    let env = seal(&key, &header(1, Recipient::Signer(2)), vec![0; cap]);
    let e = client.deliver(env).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    node.stop().await;
}

#[tokio::test]
async fn malformed_envelopes_are_invalid_argument() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(2)).await;
    let mut client = peer_client(&fleet, "signer-1", &node).await;
    let key = fleet.node_key(1);

    let mut short_session = seal(&key, &header(1, Recipient::Signer(2)), vec![]);
    short_session.session_id.truncate(5);
    let mut no_recipient = seal(&key, &header(1, Recipient::Signer(2)), vec![]);
    no_recipient.to = None;
    let mut other_fleet_header = header(1, Recipient::Signer(2));
    other_fleet_header.fleet_id = FleetId::new("elsewhere").unwrap();
    let other_fleet = seal(&key, &other_fleet_header, vec![]);
    let not_for_us = seal(&key, &header(1, Recipient::Signer(3)), vec![]);
    for (what, env) in [
        ("empty", Envelope::default()),
        ("short session id", short_session),
        ("no recipient", no_recipient),
        ("other fleet", other_fleet),
        ("addressed to signer 3", not_for_us),
    ] {
        let e = client.deliver(env).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
    }
    node.stop().await;
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

#[tokio::test]
async fn bytes_that_are_not_protobuf_are_invalid_argument() {
    let fleet = TestFleet::new("devnet", 3);
    let node = RunningNode::start(fleet.node(2)).await;
    let channel = connect(&fleet.material("signer-1"), &node.url())
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    // field 1 announced as length-delimited with a length far past the end
    let garbage = vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01];
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
    node.stop().await;
}
