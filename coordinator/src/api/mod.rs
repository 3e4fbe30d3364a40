//! The coordinator's public gRPC API (`custody.coordinator.v1.Coordinator`), gRPC health
//! and server reflection, on one mTLS listener.
//!
//! Every connection must present a certificate of the fleet CA (rustls refuses the
//! handshake otherwise); the [`CallerGate`] interceptor then admits only the roles `client`
//! and `coordinator` to the custody service, so a signer certificate gets
//! `PERMISSION_DENIED`. Health and reflection answer any fleet certificate.
//!
//! Handlers read the chain through [`Node::with_chain`] and submit through [`Node::submit`];
//! only signed transactions can enter from here.

pub mod convert;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use custody_proto::coordinator::v1 as pb;
use custody_proto::coordinator::v1::coordinator_server::{Coordinator, CoordinatorServer};
use custody_proto::identity::{CallerIdentity, Role};
use custody_proto::tls::TlsMaterial;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::Stream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use crate::chain::{Asset, Consensus, SignedTransaction, TxBody};
use crate::node::{Node, SubmitError};
use convert::{address, fixed};

/// Largest request the service decodes (a transaction is at most a few KiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Admits callers whose certificate role is `client` or `coordinator`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerGate;

impl tonic::service::Interceptor for CallerGate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let identity = CallerIdentity::from_request(&request)?;
        match identity.role() {
            Role::Client | Role::Coordinator => {
                request.extensions_mut().insert(identity);
                Ok(request)
            }
            Role::Signer => Err(Status::permission_denied(format!(
                "the coordinator API serves clients and coordinators; the caller presented {identity} (role signer)"
            ))),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The reflection service could not be built.
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// tonic's server failed.
    #[error("gRPC server: {0}")]
    Serve(String),
}

/// The service implementation over a running node.
pub struct CoordinatorService<C: Consensus> {
    node: Node<C>,
    settings: ApiSettings,
}

/// What the API serves beyond the node itself.
#[derive(Clone, Default)]
pub struct ApiSettings {
    /// How long `SubmitTransaction { wait }` waits.
    pub wait_timeout: Duration,
    /// External address formats for deposit paths.
    pub addresses: ExternalAddresses,
    /// The engine journal, for blame evidence (`GetBlame`); `None` serves reports without it.
    pub journal: Option<std::sync::Arc<crate::engine::Journal>>,
}

/// Which external address formats the API can render for deposit paths: those of the chains
/// this coordinator runs an adapter for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalAddresses {
    /// mETH addresses (EIP-55).
    pub ethereum: bool,
    /// The bech32 prefix of mBTC addresses (P2WPKH), if Bitcoin is configured.
    pub bitcoin_hrp: Option<String>,
}

impl ExternalAddresses {
    /// The external address of `asset` at `path` below `key`, or `None` if this
    /// coordinator has no format for the asset.
    pub fn render(
        &self,
        asset: crate::chain::Asset,
        key: &crate::fleet::FleetKey,
        path: &[u32],
    ) -> Option<String> {
        let child = key.child_key(path).ok()?;
        if asset == crate::chain::Asset::METH && self.ethereum {
            let a = crate::adapter::ethereum::tx::address_of(&child);
            return Some(crate::adapter::ethereum::tx::checksummed(&a));
        }
        if asset == crate::chain::Asset::MBTC {
            use crate::adapter::bitcoin::address;
            let hrp = address::parse_hrp(self.bitcoin_hrp.as_deref()?).ok()?;
            return address::encode(hrp, &address::p2wpkh_script(&child).ok()?).ok();
        }
        None
    }
}

impl<C: Consensus + Send + 'static> CoordinatorService<C> {
    /// A service over `node` with `settings`.
    pub fn new(node: Node<C>, settings: ApiSettings) -> Self {
        Self { node, settings }
    }

    /// Runs a chain query on the blocking pool: the chain's mutex may be held by the block
    /// producer for a whole block (execution and sled flush), which must not stall the
    /// runtime's worker threads.
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::chain::Chain<C>) -> Result<T, crate::chain::ChainError> + Send + 'static,
    ) -> Result<T, Status> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || node.with_chain(f))
            .await
            .map_err(|e| Status::internal(format!("query task failed: {e}")))?
            .map_err(|e| convert::submit_status(&e))?
            .map_err(|e| {
                tracing::error!(error = %e, "chain query failed");
                Status::internal(format!("chain store: {e}"))
            })
    }
}

/// Serves the API, health and reflection over mTLS on `listener` until `shutdown`.
pub async fn serve<C: Consensus + Send + 'static>(
    node: Node<C>,
    tls: &TlsMaterial,
    listener: TcpListener,
    settings: ApiSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ApiError> {
    let local = listener.local_addr().ok();
    let service = InterceptedService::new(
        CoordinatorServer::new(CoordinatorService::new(node, settings))
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        CallerGate,
    );
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(
            pb::coordinator_server::SERVICE_NAME,
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(custody_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    tracing::info!(listen = ?local, "serving custody.coordinator.v1, health and reflection over mTLS");
    Server::builder()
        .tls_config(tls.server_config())
        .map_err(|e| ApiError::Serve(e.to_string()))?
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| ApiError::Serve(e.to_string()))?;
    tracing::info!("API server stopped");
    Ok(())
}

/// Runs `f` on the node from the blocking pool (it may wait for the chain's mutex).
async fn on_blocking_pool<C: Consensus + Send + 'static, T: Send + 'static>(
    node: &Node<C>,
    f: impl FnOnce(&Node<C>) -> Result<T, SubmitError> + Send + 'static,
) -> Result<T, SubmitError> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || f(&node))
        .await
        .map_err(|e| SubmitError::Node(format!("task failed: {e}")))?
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::BlockEvents, Status>> + Send>>;

#[tonic::async_trait]
impl<C: Consensus + Send + 'static> Coordinator for CoordinatorService<C> {
    async fn submit_transaction(
        &self,
        request: Request<pb::SubmitTransactionRequest>,
    ) -> Result<Response<pb::SubmitTransactionResponse>, Status> {
        let req = request.into_inner();
        let node = self.node.clone();
        let bytes = req.transaction.clone();
        let submitted = tokio::task::spawn_blocking(move || node.submit(&bytes))
            .await
            .map_err(|e| Status::internal(format!("submit task failed: {e}")))?
            .map_err(|e| convert::submit_status(&e))?;
        // It decoded in `submit`, so this succeeds; the lock-out id is a convenience.
        let lock_out_id = match SignedTransaction::decode(&req.transaction) {
            Ok(s) if matches!(s.tx.body, TxBody::RequestLockOut { .. }) => {
                crate::chain::lockout_id(&s.sender(), s.tx.nonce).to_vec()
            }
            _ => Vec::new(),
        };
        let hash = submitted.hash;
        let mut response = pb::SubmitTransactionResponse {
            transaction_hash: hash.to_vec(),
            height: 0,
            index: 0,
            lock_out_id,
        };
        if req.wait {
            let included = tokio::time::timeout(self.settings.wait_timeout, submitted.wait())
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!(
                        "transaction {} is still waiting after {:?}; query it later",
                        hex::encode(hash),
                        self.settings.wait_timeout
                    ))
                })?
                .map_err(|e: SubmitError| convert::submit_status(&e))?;
            response.height = included.height;
            response.index = included.index;
        }
        Ok(Response::new(response))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let who = address(&request.get_ref().address, "address")?;
        let account = self.query(move |c| c.account(&who)).await?;
        Ok(Response::new(convert::account(&who, &account)))
    }

    async fn get_deposit_addresses(
        &self,
        request: Request<pb::GetDepositAddressesRequest>,
    ) -> Result<Response<pb::GetDepositAddressesResponse>, Status> {
        let who = address(&request.get_ref().account, "account")?;
        let (list, key) = self
            .query(move |c| Ok((c.deposit_addresses(&who)?, c.latest_fleet_key()?)))
            .await?;
        let key = key.and_then(|(_, record)| crate::engine::keys::fleet_key(&record, 0).ok());
        Ok(Response::new(pb::GetDepositAddressesResponse {
            addresses: list
                .iter()
                .map(|d| {
                    let path: Vec<u32> = d.path.indices().iter().map(|i| i.get()).collect();
                    let external = key
                        .as_ref()
                        .and_then(|k| self.settings.addresses.render(d.asset, k, &path))
                        .unwrap_or_default();
                    convert::deposit_address(d, external)
                })
                .collect(),
        }))
    }

    async fn get_lock_in(
        &self,
        request: Request<pb::GetLockInRequest>,
    ) -> Result<Response<pb::LockIn>, Status> {
        let id = fixed::<32>(&request.get_ref().deposit_id, "deposit_id")?;
        let record = self
            .query(move |c| c.deposit(&id))
            .await?
            .ok_or_else(|| Status::not_found(format!("no credited deposit {}", hex::encode(id))))?;
        Ok(Response::new(convert::lock_in(&id, &record)))
    }

    async fn get_lock_out(
        &self,
        request: Request<pb::GetLockOutRequest>,
    ) -> Result<Response<pb::LockOut>, Status> {
        let id = fixed::<32>(&request.get_ref().lock_out_id, "lock_out_id")?;
        let record = self
            .query(move |c| c.lockout(&id))
            .await?
            .ok_or_else(|| Status::not_found(format!("no lock-out {}", hex::encode(id))))?;
        Ok(Response::new(convert::lock_out(&id, &record)))
    }

    async fn get_block(
        &self,
        request: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::Block>, Status> {
        let height = request.get_ref().height;
        let block = self
            .query(move |c| c.block(height))
            .await?
            .ok_or_else(|| Status::not_found(format!("no block at height {height}")))?;
        Ok(Response::new(convert::block(&block)))
    }

    async fn get_transaction_proof(
        &self,
        request: Request<pb::GetTransactionProofRequest>,
    ) -> Result<Response<pb::TransactionProof>, Status> {
        let pb::GetTransactionProofRequest { height, index } = *request.get_ref();
        let (block, found) = self
            .query(move |c| {
                let block = c.block(height)?;
                let found = c.transaction_proof(height, index)?;
                Ok((block, found))
            })
            .await?;
        let (Some(block), Some((transaction, proof))) = (block, found) else {
            return Err(Status::not_found(format!(
                "no transaction {index} in a block at height {height}"
            )));
        };
        Ok(Response::new(pb::TransactionProof {
            height,
            header: block.header.encode(),
            certificate: block.certificate.encode(),
            transaction,
            proof: proof.encode(),
        }))
    }

    async fn get_order_proof(
        &self,
        request: Request<pb::GetOrderProofRequest>,
    ) -> Result<Response<pb::TransactionProof>, Status> {
        let id = fixed::<32>(&request.get_ref().lock_out_id, "lock_out_id")?;
        let cancellation = request.get_ref().cancellation;
        let proof = self
            .query(move |c| {
                if cancellation {
                    c.cancellation_proof(&id)
                } else {
                    c.order_proof(&id)
                }
            })
            .await?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "lock-out {} has no committed {}",
                    hex::encode(id),
                    if cancellation {
                        "cancellation"
                    } else {
                        "order"
                    }
                ))
            })?;
        Ok(Response::new(pb::TransactionProof {
            height: proof.header.height,
            header: proof.header.encode(),
            certificate: proof.certificate.encode(),
            transaction: proof.leaf,
            proof: proof.proof.encode(),
        }))
    }

    async fn get_blame(
        &self,
        request: Request<pb::GetBlameRequest>,
    ) -> Result<Response<pb::Blame>, Status> {
        let session_id: [u8; 32] = request
            .get_ref()
            .session_id
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("session_id must be 32 bytes"))?;
        let report = self
            .query(move |c| c.blame_report(&session_id))
            .await?
            .ok_or_else(|| Status::not_found("no blame report for this session"))?;
        let evidence = match &self.settings.journal {
            Some(j) => j
                .blame_evidence(&session_id)
                .map_err(|e| Status::internal(format!("journal: {e}")))?
                .filter(|ev| crate::fleet::evidence_digest(ev) == report.evidence_digest)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Response::new(pb::Blame {
            report: Some(pb::SignerBlamed {
                session_id: session_id.to_vec(),
                culprits: report.culprits.iter().map(|&c| u32::from(c)).collect(),
                reason: report.reason,
                evidence_digest: report.evidence_digest.to_vec(),
            }),
            height: report.height,
            evidence,
        }))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let (chain_id, height, state_root, last_hash, totals, fleet_key) = self
            .query(move |c| {
                let height = c.height();
                let last_hash = match c.block(height)? {
                    Some(b) => b.header.hash(),
                    None => c.genesis().hash(),
                };
                let mut totals = Vec::new();
                for asset in Asset::ALL {
                    let t = c.totals(asset)?;
                    totals.push(pb::AssetTotals {
                        asset: convert::asset_to_pb(asset),
                        supply: convert::amount(t.supply),
                        locked: convert::amount(t.locked),
                        credited: convert::amount(t.credited),
                        burned: convert::amount(t.burned),
                    });
                }
                let fleet_key = c.latest_fleet_key()?.map(|(request_id, k)| pb::FleetKey {
                    request_id,
                    key_id: k.key_id.to_vec(),
                    public_key: k.public_key.to_vec(),
                    chain_code: k.chain_code.to_vec(),
                    threshold: u32::from(k.threshold),
                    holders: k.holders.iter().map(|&h| u32::from(h)).collect(),
                    height: k.height,
                });
                Ok((
                    c.genesis().chain_id.clone(),
                    height,
                    c.state_root(),
                    last_hash,
                    totals,
                    fleet_key,
                ))
            })
            .await?;
        let mempool = self
            .node
            .mempool_len()
            .map_err(|e| convert::submit_status(&e))?;
        Ok(Response::new(pb::Status {
            chain_id,
            height,
            last_block_hash: last_hash.to_vec(),
            state_root: state_root.to_vec(),
            totals,
            mempool_size: u32::try_from(mempool).unwrap_or(u32::MAX),
            fleet_key,
        }))
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let from = request.get_ref().from_height.max(1);
        // Subscribe before reading the height, so no block falls between replay and live.
        let mut live = self.node.subscribe();
        let node = self.node.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut next = from;
            let top = match on_blocking_pool(&node, |n| n.height()).await {
                Ok(h) => h,
                Err(e) => {
                    let _ = tx.send(Err(convert::submit_status(&e))).await;
                    return;
                }
            };
            while next <= top {
                match on_blocking_pool(&node, move |n| n.block(next)).await {
                    Ok(Some(b)) => {
                        if tx.send(Ok(convert::block_events(&b))).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(convert::submit_status(&e))).await;
                        return;
                    }
                }
                next = next.saturating_add(1);
            }
            loop {
                let received = tokio::select! {
                    // The caller went away: stop without waiting for the next block.
                    _ = tx.closed() => return,
                    r = live.recv() => r,
                };
                match received {
                    Ok(committed) => {
                        let b = &committed.block;
                        if b.header.height < next {
                            continue;
                        }
                        if tx.send(Ok(convert::block_events(b))).await.is_err() {
                            return;
                        }
                        next = b.header.height.saturating_add(1);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::resource_exhausted(format!(
                                "the subscriber fell {n} blocks behind; resubscribe from height {next}"
                            ))))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
