//! `StartReshare`: moves a key to a new committee (m', t') with the same public key (Wong,
//! Wang and Wing's redistribution, `mpc_core::reshare`), as two phases of one session:
//!
//! 1. **aux info** for the new committee (envelopes say `AUX_INFO`; state machine session id
//!    SHA-256("custody.signer.v1/reshare-aux-info" ‖ session id)). Dealers that leave take no
//!    part and wait in phase 2's first round, which gives them (aux-info rounds + 1) round
//!    deadlines instead of one (primes, then each aux-info round of the others);
//! 2. **reshare** (envelopes say `RESHARE`): the description round and mpc-core's four rounds
//!    ([`super::reshare_exchange`]): exactly t dealers (old holders, t the old threshold) deal
//!    their Lagrange-weighted shares to the new committee; every new holder checks its
//!    sub-shares against the old public shares (RES-01) and all confirm the unchanged key.
//!
//! Aux info runs first so that a new holder has everything it must store the moment the key
//! is confirmed: a dealer that leaves erases its share only after that confirmation (RES-02),
//! and no later phase can fail in between and leave the key with too few holders.
//!
//! At the end, on each signer (epoch e = the request's, checked against the stored share):
//! - a new holder stores its share at epoch e + 1 with the new aux info (an old holder's
//!   share of epoch e and its presignatures are replaced in the same transaction, REF-02; a
//!   signer new to the key had reserved the key id at the start, like a keygen);
//! - an old holder outside the new committee (it must be a dealer: the request is refused
//!   otherwise, so no share of epoch e is left behind) **retires** the key: share, aux info
//!   and presignatures erased in one transaction with a `KeyRetired` audit entry; it can no
//!   longer presign or sign with it, and `ListKeys` no longer lists it;
//! - every signer audits `KeyReshared` and reports the key (public key, chain code, t', new
//!   committee, epoch e + 1) as the session's outcome. For a new holder that held nothing, that
//!   public key is the one every dealer described and every new holder confirmed: the caller
//!   compares it with the key it asked to move.
//!
//! A reshare that does not complete changes nothing (a new signer's reservation is released).

use std::collections::BTreeSet;
use std::sync::Arc;

use custody_proto::signer::v1::{
    session_status_response::Outcome, KeyInfo, ProtocolKind, SessionAccepted, SessionState,
    StartReshareRequest,
};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use mpc_core::protocol::PartyIndex;
use tonic::Status;

use super::aux_phase;
use super::driver::{PhaseFailure, Route, SessionIo};
use super::keys::LoadedKey;
use super::positions::Positions;
use super::request::{blocking, fleet_subset, id32, vault_status};
use super::reshare_exchange::{ReshareExchange, ReshareRequest, ReshareResult, DESCRIPTION_ROUND};
use super::Runner;
use crate::envelope::SessionId;
use crate::vault::{AuditKind, KeyId};

/// Domain tag of the reshare's aux-info session id.
pub const RESHARE_AUX_SESSION_TAG: &[u8] = b"custody.signer.v1/reshare-aux-info";

/// Checks the request and starts the session.
pub async fn start(
    runner: &Arc<Runner>,
    req: StartReshareRequest,
) -> Result<SessionAccepted, Status> {
    let id = SessionId(id32("session_id", &req.session_id)?);
    let key_id: KeyId = id32("key_id", &req.key_id)?;
    let dealers = fleet_subset("dealers", &req.dealers, &runner.fleet_indices)?;
    let new_committee = fleet_subset("new_committee", &req.new_committee, &runner.fleet_indices)?;
    let m_new = new_committee.members().len();
    let new_threshold = u16::try_from(req.new_threshold)
        .ok()
        .filter(|t| (1..=m_new).contains(&usize::from(*t)))
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "new_threshold must be 1 to {m_new} (the size of the new committee), got {}",
                req.new_threshold
            ))
        })?;
    let all: BTreeSet<u16> = dealers
        .members()
        .iter()
        .chain(new_committee.members())
        .copied()
        .collect();
    let members = Positions::new(all.into_iter().collect())
        .map_err(|e| Status::invalid_argument(format!("dealers and new_committee: {e}")))?;
    let me_dealer = dealers.position_of(runner.me).is_some();
    let me_new = new_committee.position_of(runner.me);
    if members.position_of(runner.me).is_none() {
        return Err(Status::invalid_argument(format!(
            "this signer ({}) is neither a dealer nor in the new committee",
            runner.me
        )));
    }
    let own = runner.keys.get(key_id).await.map_err(vault_status)?;
    match &own {
        Some(key) => {
            if req.epoch != key.share.epoch() {
                return Err(Status::failed_precondition(format!(
                    "key {} is at epoch {} on signer {}, the request says {}; nothing was started",
                    hex::encode(key_id),
                    key.share.epoch(),
                    runner.me,
                    req.epoch
                )));
            }
            let t = key.share.threshold();
            if dealers.members().len() != usize::from(t) {
                return Err(Status::invalid_argument(format!(
                    "dealers: exactly the old threshold of {t} holders deal, got {}",
                    dealers.members().len()
                )));
            }
            if let Some(d) = dealers
                .members()
                .iter()
                .find(|d| key.holders.position_of(**d).is_none())
            {
                return Err(Status::invalid_argument(format!(
                    "dealers: {d} holds no share of this key"
                )));
            }
            // RES-02: a holder that leaves erases its share only after the new holders
            // confirmed; a holder that takes no part would keep a live share of epoch e
            if let Some(h) = key.holders.members().iter().find(|h| {
                dealers.position_of(**h).is_none() && new_committee.position_of(**h).is_none()
            }) {
                return Err(Status::invalid_argument(format!(
                    "holder {h} leaves the committee but is not a dealer: every old holder outside the new committee must deal (and then retires its share)"
                )));
            }
        }
        None if me_dealer => {
            return Err(Status::failed_precondition(format!(
                "this signer ({}) is named a dealer but holds no share of key {}",
                runner.me,
                hex::encode(key_id)
            )))
        }
        None => {}
    }
    let exchange = ReshareExchange::new(
        ReshareRequest {
            session_id: id.0.to_vec(),
            key_id,
            epoch: req.epoch,
            dealers: dealers.members().to_vec(),
            new_committee: new_committee.clone(),
            new_threshold,
            fleet: runner.fleet_indices.clone(),
        },
        members.clone(),
        runner.me,
        own.clone(),
    )
    .map_err(Status::invalid_argument)?;
    let io = runner.open(
        id,
        runner.spec(
            ProtocolKind::Reshare,
            vec![ProtocolKind::AuxInfo, ProtocolKind::Reshare],
            members.members(),
            mpc_core::aux_info::ROUNDS.max(super::reshare_exchange::ROUNDS),
        ),
    )?;
    let newcomer = own.is_none();
    if newcomer {
        let vault = Arc::clone(&runner.vault);
        if let Err(e) = blocking(move || vault.reserve_key(&key_id, &id.0)).await {
            runner.registry.remove(&id);
            return Err(vault_status(e));
        }
    }
    tracing::info!(session = %id, key = %hex::encode(key_id), dealers = ?dealers.members(), new_committee = ?new_committee.members(), new_threshold, epoch = req.epoch, newcomer, "reshare started");
    let plan = Plan {
        key_id,
        epoch: req.epoch,
        members,
        new_committee,
        me_new,
        newcomer,
    };
    let runner2 = Arc::clone(runner);
    tokio::spawn(async move { run(runner2, io, plan, exchange).await });
    Ok(SessionAccepted {
        session_id: id.0.to_vec(),
        state: SessionState::Pending as i32,
    })
}

struct Plan {
    key_id: KeyId,
    epoch: u64,
    members: Positions,
    new_committee: Positions,
    me_new: Option<PartyIndex>,
    newcomer: bool,
}

/// What this signer did with the key at the end.
enum Kept {
    /// Stored its new share.
    Holder(Arc<LoadedKey>),
    /// Retired its old share (a dealer that left).
    Retired(KeyInfo),
}

async fn run(runner: Arc<Runner>, mut io: SessionIo, plan: Plan, exchange: ReshareExchange) {
    let id = io.id;
    let key_id = plan.key_id;
    let result: Result<(Kept, String), PhaseFailure> = async {
        // phase 1: aux info of the new committee (new holders only)
        let aux = match plan.me_new {
            None => None,
            Some(me) => {
                let primes = aux_phase::fetch_primes(&runner);
                let committee = plan
                    .new_committee
                    .committee()
                    .map_err(|e| PhaseFailure::Local(format!("new committee: {e}")))?;
                let route = Route::whole(plan.new_committee.clone(), me);
                Some(
                    aux_phase::run(&mut io, &route, committee, primes, RESHARE_AUX_SESSION_TAG)
                        .await?,
                )
            }
        };
        // phase 2: the reshare itself. A dealer that leaves waits in the description round
        // while the new committee gets its primes and runs the aux-info rounds.
        if plan.me_new.is_none() {
            io.allow_rounds(
                ProtocolKind::Reshare,
                DESCRIPTION_ROUND,
                u32::from(mpc_core::aux_info::ROUNDS) + 1,
            );
        }
        let me = plan
            .members
            .position_of(runner.me)
            .ok_or_else(|| PhaseFailure::Local("this signer takes no part".into()))?;
        let route = Route::whole(plan.members.clone(), me);
        let ReshareResult {
            session,
            old_holders,
            share,
            confirmation,
        } = io.run(ProtocolKind::Reshare, &route, exchange).await?;
        let public_key = session.public_key.to_affine().to_encoded_point(true);
        let detail = format!(
            "reshare epoch {} -> {}: holders {:?} (t {}) -> {:?} (t {}), public key {} unchanged{}",
            plan.epoch,
            plan.epoch.saturating_add(1),
            old_holders.members(),
            session.old_threshold,
            plan.new_committee.members(),
            session.new_threshold,
            hex::encode(public_key.as_bytes()),
            if confirmation.is_some() {
                ", every new holder confirmed it (dealer)"
            } else {
                ""
            }
        );
        let vault = Arc::clone(&runner.vault);
        let fleet = runner.fleet_indices.clone();
        match (share, aux) {
            (Some(share), Some(aux)) => {
                let key = blocking(move || {
                    vault.store_key(&key_id, &share, &aux)?;
                    LoadedKey::new(key_id, share, Arc::new(aux), &fleet)
                })
                .await
                .map_err(|e| PhaseFailure::Local(format!("storing the new share: {e}")))?;
                Ok((Kept::Holder(Arc::new(key)), detail))
            }
            (None, None) if confirmation.is_some() => {
                let epoch = plan.epoch;
                blocking(move || vault.retire_key(&key_id, epoch, &id.0))
                    .await
                    .map_err(|e| PhaseFailure::Local(format!("retiring the old share: {e}")))?;
                let info = KeyInfo {
                    key_id: key_id.to_vec(),
                    public_key: public_key.as_bytes().to_vec(),
                    chain_code: session.chain_code.to_vec(),
                    threshold: u32::from(session.new_threshold),
                    holders: plan
                        .new_committee
                        .members()
                        .iter()
                        .map(|i| u32::from(*i))
                        .collect(),
                    epoch: plan.epoch.saturating_add(1),
                };
                Ok((Kept::Retired(info), detail))
            }
            _ => Err(PhaseFailure::Local(
                "reshare ended without the output this signer's role needs".into(),
            )),
        }
    }
    .await;
    match result {
        Ok((kept, detail)) => {
            let info = match kept {
                Kept::Holder(key) => {
                    runner.keys.insert(Arc::clone(&key));
                    runner.audit(
                        AuditKind::KeyReshared,
                        &id,
                        Some(key_id),
                        format!("new holder: {detail}"),
                    );
                    key.info()
                }
                Kept::Retired(info) => {
                    runner.keys.remove(&key_id);
                    runner.audit(
                        AuditKind::KeyReshared,
                        &id,
                        Some(key_id),
                        format!("dealer leaving, share retired: {detail}"),
                    );
                    info
                }
            };
            tracing::info!(session = %id, key = %hex::encode(key_id), epoch = info.epoch, "reshare completed");
            runner
                .registry
                .finish(&id, SessionState::Completed, Some(Outcome::Key(info)), None);
        }
        Err(failure) => {
            if plan.newcomer {
                let vault = Arc::clone(&runner.vault);
                if let Err(e) = blocking(move || vault.release_reservation(&key_id)).await {
                    tracing::error!(session = %id, error = %e, "releasing the key reservation failed");
                }
            }
            runner.record_failure(&id, key_id, "reshare", failure);
        }
    }
}
