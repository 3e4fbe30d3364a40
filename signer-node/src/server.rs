//! The node's gRPC server: SignerPeer, SignerControl, SignerClient, gRPC health and server
//! reflection, on one mTLS listener.
//!
//! Each custody service sits behind a [`RoleGate`] (signer, coordinator, client). Health and
//! reflection answer any caller with a fleet certificate. What works today:
//!
//! - `SignerPeer.Deliver` runs the full envelope verification ([`crate::envelope`]) and hands
//!   the envelope to the [`SessionInbox`].
//! - With a session runner ([`Node::with_runner`], what `signer-node run` does), the runner is
//!   the inbox and serves `SignerControl` ([`crate::runner::control`]).
//! - Without one (a bare [`Node`]): the inbox ([`NoSessions`]) answers `FAILED_PRECONDITION`
//!   "no such session", `SessionStatus` answers `NOT_FOUND`, `ListKeys` an empty list and the
//!   other control RPCs `UNIMPLEMENTED`.
//! - `SignerClient.SignDigest` is served by the runner ([`crate::runner::sign_digest`]); a
//!   node without a runner answers `UNIMPLEMENTED`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use custody_proto::signer::v1::{
    signer_client_server::{SignerClient, SignerClientServer},
    signer_control_server::{SignerControl, SignerControlServer},
    signer_peer_server::{SignerPeer, SignerPeerServer},
    DeliverReceipt, Envelope, FillPresignPoolRequest, ListKeysRequest, ListKeysResponse,
    SessionAccepted, SessionStatusRequest, SessionStatusResponse, SignDigestRequest,
    SignDigestResponse, SignRequest, StartKeygenRequest, StartRefreshRequest, StartReshareRequest,
};
use custody_proto::signer::v1::{
    PoolStatusRequest, PoolStatusResponse, PresignProposalReceipt, ProtocolKind,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use crate::config::ValidatedConfig;
use crate::envelope::{EnvelopeVerifier, ENVELOPE_OVERHEAD_BYTES, SESSION_ID_LEN};
use crate::identity::{caller, CallerIdentity, Role, RoleGate};
use crate::inbox::{NoSessions, SessionInbox};
use crate::metrics::Metrics;
use crate::node_key::{NodeKey, NodeKeyError};
use crate::pools::proposals::{NoProposals, PresignProposals};
use crate::runner::control::ControlService as RunnerControl;
use crate::runner::sign_digest::ClientService as RunnerClient;
use crate::runner::Runner;
use crate::tls::{TlsError, TlsMaterial};

/// The message of every RPC that needs the session runner.
pub const RUNNER_NOT_BUILT: &str =
    "not implemented yet: the session runner that drives mpc-core protocols is not built yet";

/// Everything a node serves with, loaded and cross-checked.
pub struct Node {
    config: ValidatedConfig,
    tls: TlsMaterial,
    node_key: NodeKey,
    inbox: Arc<dyn SessionInbox>,
    control: Arc<dyn SignerControl>,
    proposals: Arc<dyn PresignProposals>,
    client: Arc<dyn SignerClient>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("fleet", self.config.fleet_id())
            .field("index", &self.config.index())
            .field("node_key", &self.node_key)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Loads the TLS files and node key named by `config` and checks they belong to this
    /// node: the certificate must be `custody://signer/INDEX` and the node key must be the
    /// one pinned for INDEX in `peers`. The inbox is [`NoSessions`].
    pub fn load(config: ValidatedConfig) -> Result<Self, NodeError> {
        let tls = TlsMaterial::load(
            &config.raw.tls.ca,
            &config.raw.tls.cert,
            &config.raw.tls.key,
        )?;
        let node_key = NodeKey::load(&config.raw.node_key)?;
        Self::new(config, tls, node_key)
    }

    /// A node from loaded parts (same checks as [`Node::load`]).
    pub fn new(
        config: ValidatedConfig,
        tls: TlsMaterial,
        node_key: NodeKey,
    ) -> Result<Self, NodeError> {
        let expected = CallerIdentity::Signer(config.index());
        if tls.identity() != &expected {
            return Err(NodeError::WrongCertificate {
                expected: expected.to_string(),
                found: tls.identity().to_string(),
            });
        }
        let pinned = config
            .peer(config.index())
            .map(|p| p.node_key)
            .ok_or(NodeError::KeyNotPinned(config.index()))?;
        if pinned != node_key.verifying_key() {
            return Err(NodeError::KeyNotPinned(config.index()));
        }
        Ok(Self {
            config,
            tls,
            node_key,
            inbox: Arc::new(NoSessions),
            control: Arc::new(ControlService),
            proposals: Arc::new(NoProposals),
            client: Arc::new(ClientService),
            metrics: None,
        })
    }

    /// Replaces the inbox that receives verified envelopes (the session runner's).
    pub fn with_inbox(mut self, inbox: Arc<dyn SessionInbox>) -> Self {
        self.inbox = inbox;
        self
    }

    /// Makes `runner` this node's inbox and control service: envelopes go to its sessions
    /// and `SignerControl` starts and reports them.
    pub fn with_runner(mut self, runner: Arc<Runner>) -> Self {
        self.inbox = runner.clone();
        self.proposals = Arc::new(crate::runner::presign_pool::ProposalService::new(
            runner.clone(),
        ));
        self.metrics = Some(Arc::clone(runner.metrics()));
        self.client = Arc::new(RunnerClient::new(runner.clone()));
        self.control = Arc::new(RunnerControl::new(runner));
        self
    }

    /// The validated configuration.
    pub fn config(&self) -> &ValidatedConfig {
        &self.config
    }

    /// The node's TLS material (for outgoing channels).
    pub fn tls(&self) -> &TlsMaterial {
        &self.tls
    }

    /// The node's envelope signing key.
    pub fn node_key(&self) -> &NodeKey {
        &self.node_key
    }

    /// Binds the configured listen address.
    pub async fn bind(&self) -> Result<TcpListener, NodeError> {
        let addr = self.config.raw.listen;
        TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Bind { addr, source })
    }

    /// Serves on `listener` (mTLS only) until `shutdown` completes, then stops accepting and
    /// lets running calls finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        let local = listener.local_addr().ok();
        let limits = &self.config.raw.limits;
        let peer_cap = limits.max_envelope_payload_bytes + ENVELOPE_OVERHEAD_BYTES;
        let request_cap = limits.max_request_bytes;

        let peer = PeerService {
            verifier: EnvelopeVerifier::from_config(&self.config),
            inbox: self.inbox.clone(),
            proposals: self.proposals.clone(),
            metrics: self.metrics.clone(),
        };
        let peer = MalformedInputCodes::new(InterceptedService::new(
            SignerPeerServer::new(peer).max_decoding_message_size(peer_cap),
            RoleGate::new(Role::Signer),
        ));
        let control = MalformedInputCodes::new(InterceptedService::new(
            SignerControlServer::new(SharedControl(self.control.clone()))
                .max_decoding_message_size(request_cap),
            RoleGate::new(Role::Coordinator),
        ));
        let client = MalformedInputCodes::new(InterceptedService::new(
            SignerClientServer::new(SharedClient(self.client.clone()))
                .max_decoding_message_size(request_cap),
            RoleGate::new(Role::Client),
        ));

        let (health_reporter, health) = tonic_health::server::health_reporter();
        for name in [
            custody_proto::signer::v1::signer_peer_server::SERVICE_NAME,
            custody_proto::signer::v1::signer_control_server::SERVICE_NAME,
            custody_proto::signer::v1::signer_client_server::SERVICE_NAME,
        ] {
            health_reporter
                .set_service_status(name, tonic_health::ServingStatus::Serving)
                .await;
        }
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(custody_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1().map_err(NodeError::Reflection)?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .map_err(NodeError::Reflection)?;

        tracing::info!(
            listen = ?local,
            fleet = %self.config.fleet_id(),
            index = self.config.index(),
            "serving SignerPeer, SignerControl, SignerClient, health and reflection over mTLS"
        );
        Server::builder()
            .tls_config(self.tls.server_config())
            .map_err(|e| NodeError::Serve(e.to_string()))?
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(peer)
            .add_service(control)
            .add_service(client)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await
            .map_err(|e| NodeError::Serve(e.to_string()))?;
        tracing::info!("server stopped");
        Ok(())
    }

    /// The node's address to local tools: where it listens.
    pub fn listen_address(&self) -> SocketAddr {
        self.config.raw.listen
    }
}

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// TLS material is missing or unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The node key is missing or unusable.
    #[error(transparent)]
    NodeKey(#[from] NodeKeyError),
    /// The certificate is not this node's.
    #[error("tls.cert is for {found}, but this node is {expected}")]
    WrongCertificate {
        /// What the config's index calls for.
        expected: String,
        /// What the certificate says.
        found: String,
    },
    /// The node key does not match the key pinned for this node.
    #[error(
        "the node key file does not hold the key pinned for signer {0} in peers[].node_public_key"
    )]
    KeyNotPinned(u16),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
    /// The transport failed.
    #[error("server: {0}")]
    Serve(String),
}

/// `SignerPeer`: verified envelopes into the inbox.
struct PeerService {
    verifier: EnvelopeVerifier,
    inbox: Arc<dyn SessionInbox>,
    proposals: Arc<dyn PresignProposals>,
    metrics: Option<Arc<Metrics>>,
}

#[tonic::async_trait]
impl SignerPeer for PeerService {
    async fn deliver(
        &self,
        request: Request<Envelope>,
    ) -> Result<Response<DeliverReceipt>, Status> {
        let caller = caller(&request)?.clone();
        let metrics = self.metrics.as_deref();
        if let Some(m) = metrics {
            m.envelope_received();
        }
        let verified = self
            .verifier
            .verify(&caller, request.into_inner())
            .map_err(|e| {
                tracing::warn!(%caller, error = %e, "envelope refused");
                if let Some(m) = metrics {
                    m.envelope_refused(&e);
                }
                Status::from(e)
            })?;
        if verified.header().protocol == ProtocolKind::PresignProposal {
            return Err(Status::invalid_argument(
                "a PRESIGN_PROPOSAL envelope goes to ProposePresign, not Deliver",
            ));
        }
        let payload_hash = verified.payload_hash().to_vec();
        let header = verified.header().clone();
        self.inbox.deliver(verified).map_err(|refusal| {
            tracing::debug!(%caller, session = %header.session_id, round = header.round, %refusal, "inbox refused envelope");
            if let Some(m) = metrics {
                m.envelope_refused_by_inbox(&refusal);
            }
            Status::from(refusal)
        })?;
        Ok(Response::new(DeliverReceipt { payload_hash }))
    }

    async fn propose_presign(
        &self,
        request: Request<Envelope>,
    ) -> Result<Response<PresignProposalReceipt>, Status> {
        let caller = caller(&request)?.clone();
        let verified = self
            .verifier
            .verify(&caller, request.into_inner())
            .map_err(|e| {
                tracing::warn!(%caller, error = %e, "presign proposal envelope refused");
                Status::from(e)
            })?;
        let session = verified.header().session_id;
        self.proposals
            .propose(verified)
            .await
            .map(Response::new)
            .inspect_err(|s| {
                tracing::info!(%caller, %session, code = ?s.code(), message = s.message(), "presign proposal refused");
            })
    }
}

/// `SignerControl` of a node without a runner: no sessions, no keys.
struct ControlService;

fn runner_not_built<T>(rpc: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!("{rpc}: {RUNNER_NOT_BUILT}")))
}

#[tonic::async_trait]
impl SignerControl for ControlService {
    async fn start_keygen(
        &self,
        _request: Request<StartKeygenRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        runner_not_built("StartKeygen")
    }

    async fn start_refresh(
        &self,
        _request: Request<StartRefreshRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        runner_not_built("StartRefresh")
    }

    async fn start_reshare(
        &self,
        _request: Request<StartReshareRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        runner_not_built("StartReshare")
    }

    async fn fill_presign_pool(
        &self,
        _request: Request<FillPresignPoolRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        runner_not_built("FillPresignPool")
    }

    async fn sign(
        &self,
        _request: Request<SignRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        runner_not_built("Sign")
    }

    async fn session_status(
        &self,
        request: Request<SessionStatusRequest>,
    ) -> Result<Response<SessionStatusResponse>, Status> {
        let id = &request.get_ref().session_id;
        if id.len() != SESSION_ID_LEN {
            return Err(Status::invalid_argument(format!(
                "session_id must be {SESSION_ID_LEN} bytes, got {}",
                id.len()
            )));
        }
        Err(Status::not_found(format!(
            "no such session {}: this node runs no sessions yet (the session runner is not built yet)",
            hex::encode(id)
        )))
    }

    async fn list_keys(
        &self,
        _request: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        // No store yet, so this node holds no key shares.
        Ok(Response::new(ListKeysResponse { keys: Vec::new() }))
    }

    async fn pool_status(
        &self,
        _request: Request<PoolStatusRequest>,
    ) -> Result<Response<PoolStatusResponse>, Status> {
        // No runner: no pools.
        Ok(Response::new(PoolStatusResponse::default()))
    }
}

/// The node's control service behind one type for tonic (the runner's, or [`ControlService`]).
struct SharedControl(Arc<dyn SignerControl>);

#[tonic::async_trait]
impl SignerControl for SharedControl {
    async fn start_keygen(
        &self,
        request: Request<StartKeygenRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        self.0.start_keygen(request).await
    }

    async fn start_refresh(
        &self,
        request: Request<StartRefreshRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        self.0.start_refresh(request).await
    }

    async fn start_reshare(
        &self,
        request: Request<StartReshareRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        self.0.start_reshare(request).await
    }

    async fn fill_presign_pool(
        &self,
        request: Request<FillPresignPoolRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        self.0.fill_presign_pool(request).await
    }

    async fn sign(
        &self,
        request: Request<SignRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        self.0.sign(request).await
    }

    async fn session_status(
        &self,
        request: Request<SessionStatusRequest>,
    ) -> Result<Response<SessionStatusResponse>, Status> {
        self.0.session_status(request).await
    }

    async fn list_keys(
        &self,
        request: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        self.0.list_keys(request).await
    }

    async fn pool_status(
        &self,
        request: Request<PoolStatusRequest>,
    ) -> Result<Response<PoolStatusResponse>, Status> {
        self.0.pool_status(request).await
    }
}

/// `SignerClient` of a node without a runner: raw digest signing needs the runner.
struct ClientService;

#[tonic::async_trait]
impl SignerClient for ClientService {
    async fn sign_digest(
        &self,
        _request: Request<SignDigestRequest>,
    ) -> Result<Response<SignDigestResponse>, Status> {
        runner_not_built("SignDigest")
    }
}

/// The node's client service behind one type for tonic (the runner's, or [`ClientService`]).
struct SharedClient(Arc<dyn SignerClient>);

#[tonic::async_trait]
impl SignerClient for SharedClient {
    async fn sign_digest(
        &self,
        request: Request<SignDigestRequest>,
    ) -> Result<Response<SignDigestResponse>, Status> {
        self.0.sign_digest(request).await
    }
}

/// Gives refusals that tonic produces before a handler runs the codes of DESIGN §7:
///
/// - a message over the decoding cap: tonic 0.14 answers `OUT_OF_RANGE`; this makes it
///   `RESOURCE_EXHAUSTED`, the code the gRPC status code guide gives for it. The refusal
///   still happens before the message is decoded (NET-04).
/// - a request that is not a valid protobuf message (or a malformed gRPC frame): tonic
///   answers `INTERNAL`; this makes it `INVALID_ARGUMENT` (malformed input).
///
/// Sound because no handler of this crate returns `OUT_OF_RANGE` or `INTERNAL`: on a wrapped
/// service, both can only come from tonic's request decoding.
#[derive(Debug, Clone)]
pub struct MalformedInputCodes<S> {
    inner: S,
}

impl<S> MalformedInputCodes<S> {
    /// Wraps a service.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for MalformedInputCodes<S> {
    const NAME: &'static str = S::NAME;
}

/// (code tonic sends, code we send), as `grpc-status` header values.
const STATUS_REWRITES: [(&str, &str); 2] = [
    // OUT_OF_RANGE -> RESOURCE_EXHAUSTED
    ("11", "8"),
    // INTERNAL -> INVALID_ARGUMENT
    ("13", "3"),
];

impl<S, B, R> Service<http::Request<B>> for MalformedInputCodes<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let headers = response.headers_mut();
            let rewrite = headers.get("grpc-status").and_then(|code| {
                STATUS_REWRITES
                    .iter()
                    .find(|(from, _)| code.as_bytes() == from.as_bytes())
                    .map(|(_, to)| *to)
            });
            if let Some(to) = rewrite {
                headers.insert("grpc-status", http::HeaderValue::from_static(to));
            }
            Ok(response)
        })
    }
}
