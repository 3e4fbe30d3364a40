//! `StartKeygen`: GJKR DKG, then CGGMP24 aux info (Fig. 7) for the same committee, as two
//! phases of one session (envelopes say DKG or AUX_INFO; aux-info messages that arrive while
//! the DKG still runs are held). The aux-info state machine gets its own session id,
//! SHA-256("custody.signer.v1/aux-info" ‖ session id), so its transcripts never share an id
//! with the DKG's. The key id is reserved in the vault before anything is sent and released
//! if the session aborts; on success share and aux info are stored together.
//!
//! This signer's primes are obtained on a blocking thread while the DKG runs.

use std::sync::Arc;

use custody_proto::signer::v1::{
    session_status_response::Outcome, ProtocolKind, SessionAccepted, SessionState,
    StartKeygenRequest,
};
use mpc_core::dkg::{DkgConfig, DkgParty};
use mpc_core::protocol::PartyIndex;
use rand::rngs::OsRng;
use tonic::Status;

use super::aux_phase;
use super::driver::{PhaseFailure, Route, SessionIo};
use super::keys::LoadedKey;
use super::positions::Positions;
use super::request::{blocking, id32, signer_set, vault_status};
use super::Runner;
use crate::envelope::SessionId;
use crate::vault::{AuditKind, KeyId};

/// Domain tag of the aux-info phase's session id.
pub const AUX_SESSION_TAG: &[u8] = b"custody.signer.v1/aux-info";

/// Checks the request, reserves the key id and starts the session.
pub async fn start(
    runner: &Arc<Runner>,
    req: StartKeygenRequest,
) -> Result<SessionAccepted, Status> {
    let id = SessionId(id32("session_id", &req.session_id)?);
    let key_id: KeyId = id32("key_id", &req.key_id)?;
    let holders = signer_set(
        "participants",
        &req.participants,
        &runner.fleet_indices,
        runner.me,
    )?;
    let m = holders.members().len();
    let threshold = u16::try_from(req.threshold)
        .ok()
        .filter(|t| (1..=m).contains(&usize::from(*t)))
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "threshold must be 1 to {m} (the number of participants), got {}",
                req.threshold
            ))
        })?;
    let committee = holders
        .committee()
        .map_err(|e| Status::invalid_argument(format!("participants: {e}")))?;
    let me = holders
        .position_of(runner.me)
        .ok_or_else(|| Status::invalid_argument("participants do not include this signer"))?;
    let dkg = DkgParty::new(
        DkgConfig {
            session_id: id.0.to_vec(),
            committee,
            threshold,
            me,
        },
        &mut OsRng,
    )
    .map_err(|e| Status::invalid_argument(format!("DKG parameters: {e}")))?;

    let rounds = mpc_core::dkg::ROUNDS.max(mpc_core::aux_info::ROUNDS);
    let io = runner.open(
        id,
        runner.spec(
            ProtocolKind::Dkg,
            vec![ProtocolKind::Dkg, ProtocolKind::AuxInfo],
            holders.members(),
            rounds,
        ),
    )?;
    let vault = Arc::clone(&runner.vault);
    if let Err(e) = blocking(move || vault.reserve_key(&key_id, &id.0)).await {
        runner.registry.remove(&id);
        return Err(vault_status(e));
    }
    tracing::info!(session = %id, key = %hex::encode(key_id), participants = ?holders.members(), threshold, "keygen started");
    let runner2 = Arc::clone(runner);
    tokio::spawn(async move { run(runner2, io, key_id, holders, me, dkg).await });
    Ok(SessionAccepted {
        session_id: id.0.to_vec(),
        state: SessionState::Pending as i32,
    })
}

async fn run(
    runner: Arc<Runner>,
    mut io: SessionIo,
    key_id: KeyId,
    holders: Positions,
    me: PartyIndex,
    dkg: DkgParty,
) {
    let id = io.id;
    let primes = aux_phase::fetch_primes(&runner);
    let route = Route::whole(holders.clone(), me);
    let result: Result<LoadedKey, PhaseFailure> = async {
        let share = io.run(ProtocolKind::Dkg, &route, dkg).await?;
        runner.registry.set_pending(&id);
        let committee = share.committee().clone();
        let aux = aux_phase::run(&mut io, &route, committee, primes, AUX_SESSION_TAG).await?;
        let vault = Arc::clone(&runner.vault);
        let fleet = runner.fleet_indices.clone();
        blocking(move || {
            vault.store_key(&key_id, &share, &aux)?;
            LoadedKey::new(key_id, share, Arc::new(aux), &fleet)
        })
        .await
        .map_err(|e| PhaseFailure::Local(format!("storing the key: {e}")))
    }
    .await;
    match result {
        Ok(key) => {
            let key = Arc::new(key);
            runner.keys.insert(Arc::clone(&key));
            let info = key.info();
            runner.audit(
                AuditKind::KeyCreated,
                &id,
                Some(key_id),
                format!(
                    "DKG + aux info: public key {}, threshold {}, holders {:?}",
                    hex::encode(&info.public_key),
                    info.threshold,
                    info.holders
                ),
            );
            tracing::info!(session = %id, key = %hex::encode(key_id), "keygen completed");
            runner
                .registry
                .finish(&id, SessionState::Completed, Some(Outcome::Key(info)), None);
        }
        Err(failure) => {
            let vault = Arc::clone(&runner.vault);
            if let Err(e) = blocking(move || vault.release_reservation(&key_id)).await {
                tracing::error!(session = %id, error = %e, "releasing the key reservation failed");
            }
            runner.record_failure(&id, key_id, "keygen", failure);
        }
    }
}
