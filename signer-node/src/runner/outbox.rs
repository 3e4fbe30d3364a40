//! Sending envelopes to peer signers: one lazily created, role-pinned mTLS channel per peer
//! ([`crate::peer_tls::signer_channel`]), a few retries on transport errors, and
//! `ALREADY_EXISTS` counted as delivered (the peer has the message: NET-01 duplicates).
//!
//! Each delivery runs as its own task, so a slow or dead peer never holds up the session's
//! driver; a message that cannot be delivered shows up as that peer's missing message at the
//! receiver's round deadline, which is where the protocol decides what it means.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_proto::signer::v1::signer_peer_client::SignerPeerClient;
use custody_proto::signer::v1::Envelope;
use tonic::transport::Channel;
use tonic::Code;

use crate::config::ValidatedConfig;
use crate::envelope::{seal, EnvelopeHeader, ENVELOPE_OVERHEAD_BYTES};
use crate::node_key::NodeKey;
use crate::peer_tls::signer_channel;
use crate::tls::TlsMaterial;

/// Delivery attempts per envelope and recipient.
pub const DELIVERY_ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubles after each.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Time limit of one `Deliver` call.
pub const DELIVER_TIMEOUT: Duration = Duration::from_secs(30);

/// Signs and sends envelopes.
pub struct Outbox {
    node_key: NodeKey,
    tls: TlsMaterial,
    endpoints: BTreeMap<u16, String>,
    max_message: usize,
    clients: Mutex<BTreeMap<u16, SignerPeerClient<Channel>>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("node_key", &self.node_key)
            .field("peers", &self.endpoints.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox for the peers of `config`, signing with `node_key`.
    pub fn new(config: &ValidatedConfig, tls: TlsMaterial, node_key: NodeKey) -> Self {
        Self {
            node_key,
            tls,
            endpoints: config
                .peers
                .iter()
                .filter(|p| p.index != config.index())
                .map(|p| (p.index, p.endpoint.clone()))
                .collect(),
            max_message: config.raw.limits.max_envelope_payload_bytes + ENVELOPE_OVERHEAD_BYTES,
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    /// Signs one envelope with `header` and `payload` and sends it, in the background, to
    /// each of `recipients` (for a broadcast the header says `Broadcast` and the same signed
    /// envelope goes to every recipient).
    pub fn send(self: &Arc<Self>, header: &EnvelopeHeader, payload: Vec<u8>, recipients: &[u16]) {
        let envelope = seal(&self.node_key, header, payload);
        for &to in recipients {
            let this = Arc::clone(self);
            let envelope = envelope.clone();
            tokio::spawn(async move { this.deliver(to, envelope).await });
        }
    }

    fn client(&self, to: u16) -> Result<SignerPeerClient<Channel>, String> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| "outbox lock poisoned".to_owned())?;
        if let Some(c) = clients.get(&to) {
            return Ok(c.clone());
        }
        let endpoint = self
            .endpoints
            .get(&to)
            .ok_or_else(|| format!("signer {to} is not a configured peer"))?;
        let channel = signer_channel(&self.tls, endpoint, to).map_err(|e| e.to_string())?;
        let client = SignerPeerClient::new(channel)
            .max_encoding_message_size(self.max_message)
            .max_decoding_message_size(self.max_message);
        clients.insert(to, client.clone());
        Ok(client)
    }

    /// Signs `payload` under `header` and sends it to `to` with `SignerPeer.ProposePresign`
    /// (one attempt, `timeout`): the peer's answer, or the transport's error.
    pub async fn propose_presign(
        &self,
        header: &EnvelopeHeader,
        payload: Vec<u8>,
        to: u16,
        timeout: Duration,
    ) -> Result<custody_proto::signer::v1::PresignProposalReceipt, tonic::Status> {
        let envelope = seal(&self.node_key, header, payload);
        let mut client = self.client(to).map_err(tonic::Status::unavailable)?;
        let mut request = tonic::Request::new(envelope);
        request.set_timeout(timeout);
        client
            .propose_presign(request)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn deliver(&self, to: u16, envelope: Envelope) {
        let (round, protocol) = (envelope.round, envelope.protocol);
        let session = hex::encode(&envelope.session_id);
        let mut delay = FIRST_RETRY_DELAY;
        for attempt in 1..=DELIVERY_ATTEMPTS {
            let mut client = match self.client(to) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(to, %session, error = %e, "cannot reach peer");
                    return;
                }
            };
            let mut request = tonic::Request::new(envelope.clone());
            request.set_timeout(DELIVER_TIMEOUT);
            match client.deliver(request).await {
                Ok(_) => return,
                Err(s) if s.code() == Code::AlreadyExists => return,
                Err(s)
                    if matches!(
                        s.code(),
                        Code::Unavailable
                            | Code::Unknown
                            | Code::DeadlineExceeded
                            | Code::Cancelled
                    ) && attempt < DELIVERY_ATTEMPTS =>
                {
                    tracing::debug!(to, %session, round, protocol, attempt, error = %s, "delivery failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(s) => {
                    tracing::warn!(to, %session, round, protocol, code = ?s.code(), message = s.message(), "peer refused or unreachable; giving up on this message");
                    return;
                }
            }
        }
    }
}
