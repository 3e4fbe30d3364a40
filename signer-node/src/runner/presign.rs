//! `FillPresignPool`: one CGGMP24 presigning session (Fig. 8) of the requested signers for
//! a key, epoch and path; the presignature goes into the vault under the session id, which is
//! the id a `Sign` request names.

use std::sync::Arc;

use custody_proto::signer::v1::{
    session_status_response::Outcome, FillPresignPoolRequest, ProtocolKind, SessionAccepted,
    SessionState,
};
use mpc_core::presign::{PresignConfig, PresignParty};
use mpc_core::protocol::PartyIndex;
use rand::rngs::OsRng;
use tonic::Status;

use super::driver::{Route, SessionIo};
use super::keys::LoadedKey;
use super::request::{blocking, id32, path, signer_set, vault_status};
use super::Runner;
use crate::envelope::SessionId;
use crate::vault::{AuditKind, KeyId};

/// The committee positions of `signers` in `key`, checked: exactly the threshold, all
/// holders of the key.
pub fn signer_positions(key: &LoadedKey, signers: &[u16]) -> Result<Vec<PartyIndex>, Status> {
    if signers.len() != usize::from(key.share.threshold()) {
        return Err(Status::invalid_argument(format!(
            "signers: exactly the threshold of {} signers is needed, got {}",
            key.share.threshold(),
            signers.len()
        )));
    }
    signers
        .iter()
        .map(|i| {
            key.holders.position_of(*i).ok_or_else(|| {
                Status::invalid_argument(format!("signers: {i} holds no share of this key"))
            })
        })
        .collect()
}

/// Checks the request and starts the session.
pub async fn start(
    runner: &Arc<Runner>,
    req: FillPresignPoolRequest,
) -> Result<SessionAccepted, Status> {
    let id = SessionId(id32("session_id", &req.session_id)?);
    let key_id: KeyId = id32("key_id", &req.key_id)?;
    let path = path("path", req.path.as_ref())?;
    let signers = signer_set("signers", &req.signers, &runner.fleet_indices, runner.me)?;
    let key = runner
        .keys
        .get(key_id)
        .await
        .map_err(vault_status)?
        .ok_or_else(|| Status::not_found(format!("no key {}", hex::encode(key_id))))?;
    if req.epoch != key.share.epoch() {
        return Err(Status::failed_precondition(format!(
            "key {} is at epoch {}, the request says {}",
            hex::encode(key_id),
            key.share.epoch(),
            req.epoch
        )));
    }
    let positions = signer_positions(&key, signers.members())?;
    let me = key.share.me();
    let io = runner.open(
        id,
        runner.spec(
            ProtocolKind::Presign,
            vec![ProtocolKind::Presign],
            signers.members(),
            mpc_core::presign::ROUNDS + 1,
        ),
    )?;
    let config = PresignConfig {
        session_id: id.0.to_vec(),
        key_id: key_id.to_vec(),
        epoch: key.share.epoch(),
        signers: positions.clone(),
        path,
    };
    let k = Arc::clone(&key);
    let party = tokio::task::spawn_blocking(move || {
        PresignParty::new(config, &k.share, Arc::clone(&k.aux), &mut OsRng)
    })
    .await
    .map_err(|e| Status::unavailable(format!("presign setup task failed: {e}")));
    let party = match party {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            runner.registry.remove(&id);
            return Err(Status::invalid_argument(format!("presign parameters: {e}")));
        }
        Err(e) => {
            runner.registry.remove(&id);
            return Err(e);
        }
    };
    let route = Route {
        committee: key.holders.clone(),
        parties: positions,
        me,
    };
    tracing::info!(session = %id, key = %hex::encode(key_id), signers = ?signers.members(), "presigning started");
    let runner2 = Arc::clone(runner);
    tokio::spawn(async move { run(runner2, io, key_id, route, party).await });
    Ok(SessionAccepted {
        session_id: id.0.to_vec(),
        state: SessionState::Pending as i32,
    })
}

async fn run(
    runner: Arc<Runner>,
    mut io: SessionIo,
    key_id: KeyId,
    route: Route,
    party: PresignParty,
) {
    let id = io.id;
    let result = match io.run(ProtocolKind::Presign, &route, party).await {
        Ok(presignature) => {
            let vault = Arc::clone(&runner.vault);
            blocking(move || vault.put_presignature(&key_id, &id.0, &presignature))
                .await
                .map_err(|e| format!("storing the presignature: {e}"))
        }
        Err(failure) => {
            runner.record_failure(&id, key_id, "presign", failure);
            return;
        }
    };
    match result {
        Ok(()) => {
            runner.audit(
                AuditKind::PresignatureAdded,
                &id,
                Some(key_id),
                "presignature added to the pool".into(),
            );
            runner.registry.finish(
                &id,
                SessionState::Completed,
                Some(Outcome::PresignaturesAdded(1)),
                None,
            );
        }
        Err(reason) => {
            let failure = super::driver::PhaseFailure::Local(reason);
            let (state, blame) = failure.into_parts();
            runner.registry.finish(&id, state, None, Some(blame));
        }
    }
}
