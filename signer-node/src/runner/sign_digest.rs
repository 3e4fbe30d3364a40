//! `SignerClient.SignDigest`: raw-digest signing for allow-listed clients, with a
//! presignature made **after** the digest is fixed (SIG-01: a bare digest never consumes a
//! pooled presignature; that would allow forgeries).
//!
//! The client calls every signer it chose with the same request. Each signer, alone:
//!
//! 1. checks the request (32-byte session id, key id and digest; path; signers = exactly the
//!    key's threshold of its holders, including itself): `INVALID_ARGUMENT`, nothing changes;
//! 2. checks the caller's certificate name against its own allow-list and the key against the
//!    client's keys (`PERMISSION_DENIED`, audited as a refusal), and that it holds the key;
//! 3. registers the session (kind SIGN, phases PRESIGN then SIGN; `ALREADY_EXISTS` for a used
//!    id), builds its presigning party, and only then charges the client's quota
//!    (`RESOURCE_EXHAUSTED`, audited; the session is withdrawn and nothing is charged);
//! 4. audits the accepted request (`ClientSignature`), runs presigning with the other chosen
//!    signers (its mpc-core session id is SHA-256 of a tag, the session id and the digest, so
//!    the presignature is bound to the digest), makes its partial signature from the
//!    in-memory presignature (used once, never stored, never in the pool), audits it, runs the
//!    signing round (every partial checked, SIG-03) and audits the signature.
//!
//! The RPC waits for the session's end. The session runs in its own task, so a client that
//! hangs up does not cut a session the other signers are in. A failure answers
//! `DEADLINE_EXCEEDED` (a round deadline passed; the blame names who was missing) or `ABORTED`
//! (the blame's reason and culprits); `SessionStatus` has the evidence.

use std::sync::Arc;
use std::time::Instant;

use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_client_server::SignerClient, Blame, EcdsaSignature,
    ProtocolKind, SessionState, SignDigestRequest, SignDigestResponse,
};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use mpc_core::hd::DerivationPath;
use mpc_core::presign::{PresignConfig, PresignParty};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::driver::{PhaseFailure, Route, SessionIo};
use super::presign::signer_positions;
use super::request::{id32, path, signer_set, vault_status};
use super::sign_exchange::SignExchange;
use super::Runner;
use crate::client_policy::ClientDenied;
use crate::envelope::SessionId;
use crate::identity::{caller, CallerIdentity};
use crate::metrics::ClientRefusal;
use crate::vault::{AuditKind, KeyId};

/// Domain tag of the presigning session id of a digest signature.
pub const PRESIGN_SESSION_TAG: &[u8] = b"custody.signer.v1/sign-digest/presign";

/// The mpc-core session id of the presigning phase: binds the presignature to the digest.
pub fn presign_session_id(session: &SessionId, digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(PRESIGN_SESSION_TAG);
    h.update(session.0);
    h.update(digest);
    h.finalize().into()
}

/// The `SignerClient` service of a node with a runner.
#[derive(Debug, Clone)]
pub struct ClientService {
    runner: Arc<Runner>,
}

impl ClientService {
    /// The service for `runner`.
    pub fn new(runner: Arc<Runner>) -> Self {
        Self { runner }
    }
}

#[tonic::async_trait]
impl SignerClient for ClientService {
    async fn sign_digest(
        &self,
        request: Request<SignDigestRequest>,
    ) -> Result<Response<SignDigestResponse>, Status> {
        let name = match caller(&request)? {
            CallerIdentity::Client(name) => name.clone(),
            other => {
                self.runner
                    .registry
                    .metrics()
                    .client_refused(ClientRefusal::NotAllowed);
                return Err(Status::permission_denied(format!(
                    "SignDigest requires a client certificate, the caller is {other}"
                )));
            }
        };
        sign_digest(&self.runner, &name, request.into_inner())
            .await
            .map(Response::new)
    }
}

/// A request that passed the checks of step 1.
struct Checked {
    id: SessionId,
    key_id: KeyId,
    digest: [u8; 32],
    path: DerivationPath,
    /// The path as written (for the audit log).
    path_indices: Vec<u32>,
    signers: Vec<u16>,
}

fn check(runner: &Runner, req: &SignDigestRequest) -> Result<Checked, Status> {
    let id = SessionId(id32("session_id", &req.session_id)?);
    let key_id: KeyId = id32("key_id", &req.key_id)?;
    let digest = id32("digest", &req.digest)?;
    let path = path("path", req.path.as_ref())?;
    let signers = signer_set("signers", &req.signers, &runner.fleet_indices, runner.me)?;
    Ok(Checked {
        id,
        key_id,
        digest,
        path,
        path_indices: req
            .path
            .as_ref()
            .map(|p| p.indices.clone())
            .unwrap_or_default(),
        signers: signers.members().to_vec(),
    })
}

/// Serves one `SignDigest` of client `name` (module docs).
pub async fn sign_digest(
    runner: &Arc<Runner>,
    name: &str,
    req: SignDigestRequest,
) -> Result<SignDigestResponse, Status> {
    let metrics = Arc::clone(runner.registry.metrics());
    let refuse = |reason: ClientRefusal, status: Status| {
        metrics.client_refused(reason);
        tracing::info!(client = name, code = ?status.code(), message = status.message(), "SignDigest refused");
        status
    };
    let req = check(runner, &req).map_err(|s| refuse(ClientRefusal::InvalidArgument, s))?;
    let Checked {
        id,
        key_id,
        digest,
        path,
        path_indices,
        signers,
    } = req;

    if let Err(denied) = runner.clients.check(name, &key_id) {
        let reason = match denied {
            ClientDenied::NotAllowed(_) => ClientRefusal::NotAllowed,
            ClientDenied::KeyNotAllowed { .. } => ClientRefusal::KeyNotAllowed,
            ClientDenied::Quota { .. } | ClientDenied::Unavailable => ClientRefusal::Other,
        };
        runner.audit(
            AuditKind::RequestRefused,
            &id,
            Some(key_id),
            format!("SignDigest: {denied}"),
        );
        return Err(refuse(reason, denied.into()));
    }
    let key = runner
        .keys
        .get(key_id)
        .await
        .map_err(|e| refuse(ClientRefusal::Other, vault_status(e)))?
        .ok_or_else(|| {
            refuse(
                ClientRefusal::NoSuchKey,
                Status::not_found(format!("no key {}", hex::encode(key_id))),
            )
        })?;
    let positions =
        signer_positions(&key, &signers).map_err(|s| refuse(ClientRefusal::InvalidArgument, s))?;
    let epoch = key.share.epoch();

    let io = runner
        .open(
            id,
            runner.spec(
                ProtocolKind::Sign,
                vec![ProtocolKind::Presign, ProtocolKind::Sign],
                &signers,
                mpc_core::presign::ROUNDS + 1,
            ),
        )
        .map_err(|s| {
            let reason = if s.code() == tonic::Code::AlreadyExists {
                ClientRefusal::SessionExists
            } else {
                ClientRefusal::Other
            };
            refuse(reason, s)
        })?;
    let withdraw = |reason: ClientRefusal, status: Status| {
        runner.registry.remove(&id);
        refuse(reason, status)
    };

    let config = PresignConfig {
        session_id: presign_session_id(&id, &digest).to_vec(),
        key_id: key_id.to_vec(),
        epoch,
        signers: positions.clone(),
        path,
    };
    let k = Arc::clone(&key);
    let party = tokio::task::spawn_blocking(move || {
        PresignParty::new(config, &k.share, Arc::clone(&k.aux), &mut OsRng)
    })
    .await;
    let party = match party {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return Err(withdraw(
                ClientRefusal::InvalidArgument,
                Status::invalid_argument(format!("presign parameters: {e}")),
            ))
        }
        Err(e) => {
            return Err(withdraw(
                ClientRefusal::Other,
                Status::unavailable(format!("presign setup task failed: {e}")),
            ))
        }
    };

    // accepted: charge the quota last, so a refusal above charged nothing
    if let Err(denied) = runner.clients.charge(name, Instant::now()) {
        runner.audit(
            AuditKind::RequestRefused,
            &id,
            Some(key_id),
            format!("SignDigest: {denied}"),
        );
        let reason = match denied {
            ClientDenied::Quota { .. } => ClientRefusal::Quota,
            ClientDenied::NotAllowed(_) => ClientRefusal::NotAllowed,
            ClientDenied::KeyNotAllowed { .. } | ClientDenied::Unavailable => ClientRefusal::Other,
        };
        return Err(withdraw(reason, denied.into()));
    }
    runner.audit(
        AuditKind::ClientSignature,
        &id,
        Some(key_id),
        format!(
            "accepted: client {name:?} asks to sign digest {} with path {:?}, signers {:?}",
            hex::encode(digest),
            path_indices,
            signers
        ),
    );
    tracing::info!(session = %id, client = name, key = %hex::encode(key_id), ?signers, "SignDigest accepted: presigning on demand");

    let route = Route {
        committee: key.holders.clone(),
        parties: positions,
        me: key.share.me(),
    };
    let runner2 = Arc::clone(runner);
    let client = name.to_owned();
    let task = tokio::spawn(async move {
        let result = run(&runner2, io, key_id, epoch, digest, &route, party).await;
        match result {
            Ok((signature, public_key)) => {
                runner2.audit(
                    AuditKind::ClientSignature,
                    &id,
                    Some(key_id),
                    format!(
                        "signature issued to client {client:?}: r||s {} recovery id {}",
                        hex::encode(&signature.r_s),
                        signature.recovery_id
                    ),
                );
                runner2.registry.metrics().client_signed(&client);
                runner2.registry.finish(
                    &id,
                    SessionState::Completed,
                    Some(Outcome::Signature(signature.clone())),
                    None,
                );
                Ok(SignDigestResponse {
                    signature: Some(signature),
                    public_key,
                })
            }
            Err(failure) => {
                let (state, blame) = failure.into_parts();
                let status = failure_status(&id, state, &blame);
                runner2.registry.metrics().client_failed(&client);
                runner2.record_failure(
                    &id,
                    key_id,
                    "sign digest",
                    PhaseFailure::Aborted(state, blame),
                );
                Err(status)
            }
        }
    });
    task.await
        .map_err(|e| Status::unavailable(format!("session task of {id} failed: {e}")))?
}

/// Presigns, makes the partial signature, exchanges partials.
async fn run(
    runner: &Runner,
    mut io: SessionIo,
    key_id: KeyId,
    epoch: u64,
    digest: [u8; 32],
    route: &Route,
    party: PresignParty,
) -> Result<(EcdsaSignature, Vec<u8>), PhaseFailure> {
    let id = io.id;
    let presignature = io.run(ProtocolKind::Presign, route, party).await?;
    let public = presignature.public().clone();
    // the presignature is consumed here (used once, never stored)
    let partial = presignature
        .sign_at_epoch(epoch, &digest)
        .map_err(|e| PhaseFailure::Local(format!("partial signature: {e}")))?;
    runner.audit(
        AuditKind::PartialSignatureIssued,
        &id,
        Some(key_id),
        format!(
            "partial signature over client digest {} with a presignature made for it",
            hex::encode(digest)
        ),
    );
    let public_key = public
        .public_key
        .to_affine()
        .to_encoded_point(true)
        .as_bytes()
        .to_vec();
    let exchange = SignExchange::new(public, digest, partial);
    let sig = io.run(ProtocolKind::Sign, route, exchange).await?;
    Ok((
        EcdsaSignature {
            r_s: sig.signature.to_bytes().to_vec(),
            recovery_id: u32::from(sig.recovery_id.to_byte()),
        },
        public_key,
    ))
}

/// The answer to the client when the session failed.
fn failure_status(id: &SessionId, state: SessionState, blame: &Blame) -> Status {
    let text = format!(
        "session {id} {}: {} (culprit signers {:?}; SessionStatus on this signer has the evidence)",
        if state == SessionState::Expired {
            "expired"
        } else {
            "aborted"
        },
        blame.reason,
        blame.culprits
    );
    if state == SessionState::Expired {
        Status::deadline_exceeded(text)
    } else {
        Status::aborted(text)
    }
}
