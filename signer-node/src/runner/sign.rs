//! `Sign`: a signing session with a presignature from the pool (presign-on-demand is not
//! built yet: a request without `presignature_id` is refused `FAILED_PRECONDITION`).
//!
//! Before anything leaves this signer, in this order: the signing gate approves the order
//! for this key, path and input and returns the digest (SIG-01; a refusal consumes nothing);
//! the presignature is taken out of the vault, durably (PRE-06; absent = consumed or never
//! made; the vault audits the take in the same transaction); its key id, epoch, signers and
//! path must be the request's (SIG-02; a mismatching presignature is already gone, which errs
//! on the safe side); the partial signature is made (REF-03: same epoch as the key). Then the
//! partials are exchanged and combined with every partial checked (SIG-03), while the
//! `PartialSignatureIssued` entry (which order, digest and input) is written beside them.

use std::sync::Arc;

use custody_proto::signer::v1::{
    session_status_response::Outcome, EcdsaSignature, ProtocolKind, SessionAccepted, SessionState,
    SignRequest,
};
use tonic::Status;

use super::driver::Route;
use super::presign::signer_positions;
use super::request::{blocking, id32, path, signer_set, vault_status};
use super::sign_exchange::SignExchange;
use super::Runner;
use crate::envelope::SessionId;
use crate::vault::{AuditKind, KeyId};

/// The refusal of a request that names no presignature.
pub const NO_PRESIGN_ON_DEMAND: &str = "presign-on-demand not built yet: name a presignature from the pool in presignature_id (FillPresignPool first)";

/// Checks the request, asks the gate, takes the presignature, makes the partial signature
/// and starts the exchange.
pub async fn start(runner: &Arc<Runner>, req: SignRequest) -> Result<SessionAccepted, Status> {
    let id = SessionId(id32("session_id", &req.session_id)?);
    let key_id: KeyId = id32("key_id", &req.key_id)?;
    let path = path("path", req.path.as_ref())?;
    let signers = signer_set("signers", &req.signers, &runner.fleet_indices, runner.me)?;
    let authorization = req
        .authorization
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("authorization is required"))?;
    if req.presignature_id.is_empty() {
        return Err(Status::failed_precondition(NO_PRESIGN_ON_DEMAND));
    }
    let presignature_id = id32("presignature_id", &req.presignature_id)?;
    let key = runner
        .keys
        .get(key_id)
        .await
        .map_err(vault_status)?
        .ok_or_else(|| Status::not_found(format!("no key {}", hex::encode(key_id))))?;
    let positions = signer_positions(&key, signers.members())?;
    let io = runner.open(
        id,
        runner.spec(
            ProtocolKind::Sign,
            vec![ProtocolKind::Sign],
            signers.members(),
            1,
        ),
    )?;
    let refuse = |status: Status| {
        runner.registry.remove(&id);
        status
    };

    let approval = match runner
        .gate
        .approve(&key_id, &path, authorization, req.input_index)
    {
        Ok(a) => a,
        Err(refusal) => {
            runner.registry.metrics().gate_refused(&refusal);
            runner.audit(
                AuditKind::RequestRefused,
                &id,
                Some(key_id),
                refusal.to_string(),
            );
            return Err(refuse(refusal.into()));
        }
    };

    let vault = Arc::clone(&runner.vault);
    let taken = blocking(move || vault.take_presignature(&key_id, &presignature_id))
        .await
        .map_err(|e| refuse(vault_status(e)))?;
    let Some(presignature) = taken else {
        return Err(refuse(Status::failed_precondition(format!(
            "presignature {} of key {} is not in the pool (already consumed, or never made)",
            hex::encode(presignature_id),
            hex::encode(key_id)
        ))));
    };
    let public = presignature.public().clone();
    let epoch = key.share.epoch();
    let mismatch = if public.key_id != key_id.as_slice() {
        Some("key id")
    } else if public.epoch != epoch {
        Some("epoch")
    } else if public.signers != positions {
        Some("signers")
    } else if public.path != path {
        Some("path")
    } else {
        None
    };
    if let Some(what) = mismatch {
        return Err(refuse(Status::failed_precondition(format!(
            "presignature {} was made for another {what} than this request (SIG-02); it has been discarded",
            hex::encode(presignature_id)
        ))));
    }
    let partial = presignature
        .sign_at_epoch(epoch, &approval.digest)
        .map_err(|e| refuse(Status::failed_precondition(e.to_string())))?;
    // The take above is durable and audited by the vault (PresignatureConsumed, in the same
    // transaction) before this partial exists. This entry adds the order it was for; it is
    // written beside the exchange instead of before it, so the partial does not wait for a
    // second fsync (a crash in between loses only this detail, never the consumption).
    runner.audit_in_background(
        AuditKind::PartialSignatureIssued,
        &id,
        Some(key_id),
        format!(
            "partial signature with presignature {} over digest {} (order {}, input {})",
            hex::encode(presignature_id),
            hex::encode(approval.digest),
            hex::encode(approval.order_hash),
            req.input_index
        ),
    );

    let route = Route {
        committee: key.holders.clone(),
        parties: positions,
        me: key.share.me(),
    };
    let exchange = SignExchange::new(public, approval.digest, partial);
    tracing::info!(session = %id, key = %hex::encode(key_id), signers = ?signers.members(), "signing started");
    let runner2 = Arc::clone(runner);
    let mut io = io;
    tokio::spawn(async move {
        match io.run(ProtocolKind::Sign, &route, exchange).await {
            Ok(sig) => {
                let outcome = Outcome::Signature(EcdsaSignature {
                    r_s: sig.signature.to_bytes().to_vec(),
                    recovery_id: u32::from(sig.recovery_id.to_byte()),
                });
                runner2
                    .registry
                    .finish(&id, SessionState::Completed, Some(outcome), None);
            }
            Err(failure) => {
                runner2.record_failure(&id, key_id, "sign", failure);
            }
        }
    });
    Ok(SessionAccepted {
        session_id: id.0.to_vec(),
        state: SessionState::Running as i32,
    })
}
