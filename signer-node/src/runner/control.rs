//! `SignerControl` served by the runner: keygen, refresh, reshare, presign, sign, status and
//! the key list.

use std::sync::Arc;

use custody_proto::signer::v1::{
    signer_control_server::SignerControl, FillPresignPoolRequest, ListKeysRequest,
    ListKeysResponse, PoolStatusRequest, PoolStatusResponse, SessionAccepted, SessionStatusRequest,
    SessionStatusResponse, SignRequest, StartKeygenRequest, StartRefreshRequest,
    StartReshareRequest,
};
use tonic::{Request, Response, Status};

use super::request::{blocking, id32, vault_status};
use super::Runner;
use crate::envelope::SessionId;

/// The control service of a node with a runner.
#[derive(Debug, Clone)]
pub struct ControlService {
    runner: Arc<Runner>,
}

impl ControlService {
    /// The service for `runner`.
    pub fn new(runner: Arc<Runner>) -> Self {
        Self { runner }
    }
}

#[tonic::async_trait]
impl SignerControl for ControlService {
    async fn start_keygen(
        &self,
        request: Request<StartKeygenRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        super::keygen::start(&self.runner, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn start_refresh(
        &self,
        request: Request<StartRefreshRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        super::refresh::start(&self.runner, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn start_reshare(
        &self,
        request: Request<StartReshareRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        super::reshare::start(&self.runner, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn fill_presign_pool(
        &self,
        request: Request<FillPresignPoolRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        super::presign::start(&self.runner, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn sign(
        &self,
        request: Request<SignRequest>,
    ) -> Result<Response<SessionAccepted>, Status> {
        super::sign::start(&self.runner, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn session_status(
        &self,
        request: Request<SessionStatusRequest>,
    ) -> Result<Response<SessionStatusResponse>, Status> {
        let id = SessionId(id32("session_id", &request.get_ref().session_id)?);
        self.runner
            .registry
            .status(&id)
            .map_err(super::registry_status)?
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no such session {id}")))
    }

    async fn list_keys(
        &self,
        _request: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        let vault = Arc::clone(&self.runner.vault);
        let ids = blocking(move || vault.list_keys())
            .await
            .map_err(vault_status)?;
        let mut keys = Vec::with_capacity(ids.len());
        for key_id in ids {
            if let Some(key) = self.runner.keys.get(key_id).await.map_err(vault_status)? {
                keys.push(key.info());
            }
        }
        Ok(Response::new(ListKeysResponse { keys }))
    }

    async fn pool_status(
        &self,
        _request: Request<PoolStatusRequest>,
    ) -> Result<Response<PoolStatusResponse>, Status> {
        self.runner.pool_status().await.map(Response::new)
    }
}
