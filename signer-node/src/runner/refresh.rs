//! `StartRefresh`: proactive refresh of a key among all its current holders (CGGMP24 Fig. 7,
//! App. F.1.1), as two phases of one session like keygen: a zero-sharing DKG (envelopes say
//! `REFRESH`; every dealer's constant term must be zero, REF-01) whose output is added to the
//! share with [`KeyShare::refresh`] (same public key and chain code, epoch + 1), then fresh aux
//! info for the same committee (envelopes say `AUX_INFO`; its state machine's session id is
//! SHA-256("custody.signer.v1/refresh-aux-info" ‖ session id), a tag of its own so it never
//! shares an id with a keygen's aux info).
//!
//! The request names the epoch the holders are at; a signer whose share is at another epoch
//! refuses (`FAILED_PRECONDITION`) before registering anything. On success the refreshed
//! share and the new aux info replace the old ones in one vault transaction that also erases
//! the key's presignatures (REF-02, REF-03); the vault refuses a presignature of the old
//! epoch that a presigning session still running adds later. A refresh that does not
//! complete changes nothing: the old share stays in force.

use std::sync::Arc;

use custody_proto::signer::v1::{
    session_status_response::Outcome, ProtocolKind, SessionAccepted, SessionState,
    StartRefreshRequest,
};
use mpc_core::dkg::{DkgConfig, DkgParty, KeyShare};
use mpc_core::protocol::PartyIndex;
use rand::rngs::OsRng;
use tonic::Status;

use super::aux_phase;
use super::driver::{PhaseFailure, Route, SessionIo};
use super::keys::LoadedKey;
use super::request::{blocking, id32, vault_status};
use super::Runner;
use crate::envelope::SessionId;
use crate::vault::{AuditKind, KeyId};

/// Domain tag of the refresh's aux-info session id.
pub const REFRESH_AUX_SESSION_TAG: &[u8] = b"custody.signer.v1/refresh-aux-info";

/// Checks the request against the stored key and starts the session.
pub async fn start(
    runner: &Arc<Runner>,
    req: StartRefreshRequest,
) -> Result<SessionAccepted, Status> {
    let id = SessionId(id32("session_id", &req.session_id)?);
    let key_id: KeyId = id32("key_id", &req.key_id)?;
    let key = runner
        .keys
        .get(key_id)
        .await
        .map_err(vault_status)?
        .ok_or_else(|| Status::not_found(format!("no key {}", hex::encode(key_id))))?;
    if req.epoch != key.share.epoch() {
        return Err(Status::failed_precondition(format!(
            "key {} is at epoch {} on signer {}, the request says {}; nothing was started",
            hex::encode(key_id),
            key.share.epoch(),
            runner.me,
            req.epoch
        )));
    }
    let me = key.share.me();
    let dkg = DkgParty::new_zero_sharing(
        DkgConfig {
            session_id: id.0.to_vec(),
            committee: key.share.committee().clone(),
            threshold: key.share.threshold(),
            me,
        },
        &mut OsRng,
    )
    .map_err(|e| Status::invalid_argument(format!("refresh parameters: {e}")))?;
    let rounds = mpc_core::dkg::ROUNDS.max(mpc_core::aux_info::ROUNDS);
    let io = runner.open(
        id,
        runner.spec(
            ProtocolKind::Refresh,
            vec![ProtocolKind::Refresh, ProtocolKind::AuxInfo],
            key.holders.members(),
            rounds,
        ),
    )?;
    tracing::info!(session = %id, key = %hex::encode(key_id), holders = ?key.holders.members(), epoch = req.epoch, "refresh started");
    let runner2 = Arc::clone(runner);
    tokio::spawn(async move { run(runner2, io, key, me, dkg).await });
    Ok(SessionAccepted {
        session_id: id.0.to_vec(),
        state: SessionState::Pending as i32,
    })
}

async fn run(
    runner: Arc<Runner>,
    mut io: SessionIo,
    key: Arc<LoadedKey>,
    me: PartyIndex,
    dkg: DkgParty,
) {
    let id = io.id;
    let key_id = key.key_id;
    let old_epoch = key.share.epoch();
    let primes = aux_phase::fetch_primes(&runner);
    let route = Route::whole(key.holders.clone(), me);
    let result: Result<LoadedKey, PhaseFailure> = async {
        let zero = io.run(ProtocolKind::Refresh, &route, dkg).await?;
        let share: KeyShare = key
            .share
            .refresh(&zero)
            .map_err(|e| PhaseFailure::Local(format!("applying the zero sharing: {e}")))?;
        runner.registry.set_pending(&id);
        let committee = share.committee().clone();
        let aux =
            aux_phase::run(&mut io, &route, committee, primes, REFRESH_AUX_SESSION_TAG).await?;
        let vault = Arc::clone(&runner.vault);
        let fleet = runner.fleet_indices.clone();
        // REF-02: share, aux info and the erasure of the old epoch's presignatures in one
        // transaction; a concurrent refresh that stored first makes this one fail (StaleEpoch)
        blocking(move || {
            vault.store_key(&key_id, &share, &aux)?;
            LoadedKey::new(key_id, share, Arc::new(aux), &fleet)
        })
        .await
        .map_err(|e| PhaseFailure::Local(format!("storing the refreshed key: {e}")))
    }
    .await;
    match result {
        Ok(new_key) => {
            let new_key = Arc::new(new_key);
            runner.keys.insert(Arc::clone(&new_key));
            let info = new_key.info();
            runner.audit(
                AuditKind::KeyRefreshed,
                &id,
                Some(key_id),
                format!(
                    "zero-sharing DKG + aux info: epoch {old_epoch} -> {}, public key {} unchanged, holders {:?}",
                    info.epoch,
                    hex::encode(&info.public_key),
                    info.holders
                ),
            );
            tracing::info!(session = %id, key = %hex::encode(key_id), epoch = info.epoch, "refresh completed");
            runner
                .registry
                .finish(&id, SessionState::Completed, Some(Outcome::Key(info)), None);
        }
        Err(failure) => runner.record_failure(&id, key_id, "refresh", failure),
    }
}
