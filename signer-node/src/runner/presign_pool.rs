//! The presignature pool worker and the receiving side of presign proposals (issue #4).
//!
//! **Who proposes.** For each signer set in `[pools] presign_signer_sets`, only its lowest
//! index proposes. That signer's worker looks at every key it holds that the set can sign
//! (the set is exactly `threshold` holders of the key) and, while its own pool for (key, set,
//! the key's epoch, root path) is below `presignatures_per_key`, proposes one presigning
//! session at a time: it sends `SignerPeer.ProposePresign` (a signed PRESIGN_PROPOSAL
//! envelope) to every other signer of the set and, when all accepted, starts the same session
//! itself. Each session then runs exactly as a `FillPresignPool` one ([`super::presign`]).
//!
//! **Who accepts.** A peer accepts only if it holds the key at that epoch, is in the set, the
//! proposer is the set's lowest index, and its own pool for (key, set) plus its sessions in
//! flight is below its own `presignatures_per_key` (a resource cap: presigning signs
//! nothing). A refusal starts nothing.
//!
//! **Backoff.** A refused proposal, an unreachable peer or a session that ends without a
//! presignature counts as a failure of that (key, set): the worker waits
//! [`FIRST_BACKOFF`] · 2^(failures−1), at most [`MAX_BACKOFF`], before the next proposal, and
//! logs it. A completed session resets the count.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use custody_proto::signer::v1::{
    FillPresignPoolRequest, PoolStatusResponse, PresignPoolStatus, PresignProposal,
    PresignProposalReceipt, PrimePoolStatus, ProtocolKind, SessionState,
};
use prost::Message;
use rand_core::RngCore;
use tokio::task::{JoinHandle, JoinSet};
use tonic::Status;

use super::keys::LoadedKey;
use super::presign::signer_positions;
use super::request::{blocking, id32, signer_set, vault_status};
use super::Runner;
use crate::envelope::{EnvelopeHeader, Recipient, SessionId, VerifiedEnvelope};
use crate::pools::proposals::PresignProposals;
use crate::pools::PoolSettings;
use crate::vault::{KeyId, VaultError};

/// How often the worker looks at the pools.
pub const POLL: Duration = Duration::from_millis(500);
/// Time limit of one `ProposePresign` call.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait after the first failure of a (key, set); doubles per failure in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two proposals of a failing (key, set).
pub const MAX_BACKOFF: Duration = Duration::from_secs(120);

/// A pool: one key and one signer set (increasing indices).
type Slot = (KeyId, Vec<u16>);

#[derive(Default)]
struct SlotState {
    /// Presigning sessions of this slot started here and not seen ended yet.
    in_flight: BTreeSet<SessionId>,
    /// Failures in a row (proposer only).
    failures: u32,
    /// No proposal before this instant (proposer only).
    not_before: Option<Instant>,
}

/// The presignature pools of one node: settings, sessions in flight, backoff.
pub struct PresignPool {
    target: u32,
    /// Configured sets this node proposes for (it is their lowest index).
    proposing: Vec<Vec<u16>>,
    /// Every configured set (for status).
    configured: Vec<Vec<u16>>,
    status_log: Duration,
    slots: Mutex<BTreeMap<Slot, SlotState>>,
    attempts: AtomicU64,
}

impl std::fmt::Debug for PresignPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresignPool")
            .field("target", &self.target)
            .field("proposing", &self.proposing)
            .finish_non_exhaustive()
    }
}

impl PresignPool {
    /// The pools of signer `me` under `settings`.
    pub fn new(settings: &PoolSettings, me: u16) -> Self {
        let configured = settings.signer_sets();
        Self {
            target: settings.presignatures_per_key,
            proposing: configured
                .iter()
                .filter(|s| s.first() == Some(&me))
                .cloned()
                .collect(),
            configured,
            status_log: Duration::from_secs(settings.status_log_secs),
            slots: Mutex::new(BTreeMap::new()),
            attempts: AtomicU64::new(0),
        }
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<Slot, SlotState>> {
        // Plain bookkeeping: a poisoned lock still holds usable values.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Proposals this node has made since it started (each to every other signer of a set).
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }
}

/// `FIRST_BACKOFF · 2^(failures−1)`, at most [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(MAX_BACKOFF)
}

/// Whether `set` can sign `key`: exactly `threshold` of its holders.
fn usable(key: &LoadedKey, set: &[u16]) -> bool {
    set.len() == usize::from(key.share.threshold())
        && set.iter().all(|i| key.holders.position_of(*i).is_some())
}

impl Runner {
    /// The presignature pool bookkeeping (attempt counter, for tests and metrics).
    pub fn presign_pool(&self) -> &PresignPool {
        &self.presign_pool
    }

    /// Drops ended sessions of `slot` from its in-flight set; returns (completed, failed).
    fn prune(&self, state: &mut SlotState) -> (u32, u32) {
        let (mut ok, mut failed) = (0, 0);
        state.in_flight.retain(|id| match self.registry.status(id) {
            Ok(Some(s)) => match SessionState::try_from(s.state) {
                Ok(SessionState::Pending | SessionState::Running) => true,
                Ok(SessionState::Completed) => {
                    ok += 1;
                    false
                }
                _ => {
                    failed += 1;
                    false
                }
            },
            // unknown (removed after a failed start) or table unreadable: not in flight
            _ => false,
        });
        (ok, failed)
    }

    /// Presignatures stored for `key`, `set` (sorted), the key's epoch and the root path.
    async fn pool_level(&self, key: &Arc<LoadedKey>, set: &[u16]) -> Result<u32, VaultError> {
        let mut want: Vec<_> = set
            .iter()
            .filter_map(|i| key.holders.position_of(*i))
            .collect();
        want.sort_unstable();
        let vault = Arc::clone(&self.vault);
        let key_id = key.key_id;
        let publics = blocking(move || vault.presignature_publics(&key_id)).await?;
        let epoch = key.share.epoch();
        let n = publics
            .iter()
            .filter(|(_, p)| {
                let mut signers = p.signers.clone();
                signers.sort_unstable();
                p.epoch == epoch && p.path.is_empty() && signers == want
            })
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The keys this node holds, loaded.
    async fn held_keys(&self) -> Result<Vec<Arc<LoadedKey>>, VaultError> {
        let vault = Arc::clone(&self.vault);
        let ids = blocking(move || vault.list_keys()).await?;
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(k) = self.keys.get(id).await? {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    /// The pool levels for the `PoolStatus` RPC and the status log.
    pub async fn pool_status(&self) -> Result<PoolStatusResponse, Status> {
        let source = Arc::clone(&self.primes);
        // the sealed store counts on disk: off the async threads
        let level = tokio::task::spawn_blocking(move || source.pool_level())
            .await
            .map_err(|e| Status::unavailable(format!("pool status task failed: {e}")))?;
        let primes = match level {
            None => None,
            Some(level) => {
                let l = level.map_err(vault_status)?;
                Some(PrimePoolStatus {
                    ready: l.ready,
                    target: l.target,
                    generating: l.generating,
                    generated: l.generated,
                    on_demand: l.on_demand,
                    last_set_ms: l.last_set_ms,
                })
            }
        };
        let pool = &self.presign_pool;
        let mut presignatures = Vec::new();
        for key in self.held_keys().await.map_err(vault_status)? {
            for set in &pool.configured {
                if !usable(&key, set) {
                    continue;
                }
                let ready = self.pool_level(&key, set).await.map_err(vault_status)?;
                let slot = (key.key_id, set.clone());
                let (in_flight, failures, wait) = {
                    let mut slots = pool.slots();
                    let state = slots.entry(slot).or_default();
                    let in_flight = self.prune_keep_counts(state);
                    let wait = state
                        .not_before
                        .map(|t| t.saturating_duration_since(Instant::now()))
                        .unwrap_or_default();
                    (in_flight, state.failures, wait)
                };
                presignatures.push(PresignPoolStatus {
                    key_id: key.key_id.to_vec(),
                    epoch: key.share.epoch(),
                    signers: set.iter().map(|i| u32::from(*i)).collect(),
                    ready,
                    target: pool.target,
                    in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
                    proposer: set.first() == Some(&self.me),
                    consecutive_failures: failures,
                    backoff_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                });
            }
        }
        Ok(PoolStatusResponse {
            primes,
            presignatures,
        })
    }

    /// Counts the sessions still running without pruning (status reads must not decide
    /// backoff: the proposer's worker does, when it sees the sessions end).
    fn prune_keep_counts(&self, state: &SlotState) -> usize {
        state
            .in_flight
            .iter()
            .filter(|id| {
                matches!(
                    self.registry
                        .status(id)
                        .ok()
                        .flatten()
                        .map(|s| SessionState::try_from(s.state)),
                    Some(Ok(SessionState::Pending | SessionState::Running))
                )
            })
            .count()
    }

    /// One pass of the proposer: at most one new proposal per (key, set).
    async fn fill_once(self: &Arc<Self>) {
        let pool = &self.presign_pool;
        let keys = match self.held_keys().await {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "presign pool: cannot list keys");
                return;
            }
        };
        for key in keys {
            for set in &pool.proposing {
                if !usable(&key, set) {
                    continue;
                }
                let slot = (key.key_id, set.clone());
                {
                    let mut slots = pool.slots();
                    let state = slots.entry(slot.clone()).or_default();
                    let (ok, failed) = self.prune(state);
                    if ok > 0 {
                        state.failures = 0;
                        state.not_before = None;
                    }
                    if failed > 0 {
                        state.failures = state.failures.saturating_add(failed);
                        let wait = backoff(state.failures);
                        state.not_before = Some(Instant::now() + wait);
                        tracing::warn!(key = %hex::encode(key.key_id), signers = ?set, failures = state.failures, ?wait, "presign pool: a proposed session ended without a presignature; backing off");
                    }
                    if !state.in_flight.is_empty()
                        || state.not_before.is_some_and(|t| Instant::now() < t)
                    {
                        continue;
                    }
                }
                let level = match self.pool_level(&key, set).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(key = %hex::encode(key.key_id), error = %e, "presign pool: cannot read the pool level");
                        continue;
                    }
                };
                if level >= pool.target {
                    continue;
                }
                pool.attempts.fetch_add(1, Ordering::Relaxed);
                let result = self.propose(&key, set).await;
                let mut slots = pool.slots();
                let state = slots.entry(slot).or_default();
                match result {
                    Ok(id) => {
                        tracing::info!(key = %hex::encode(key.key_id), signers = ?set, session = %id, level, target = pool.target, "presign pool: proposed session started");
                        state.in_flight.insert(id);
                    }
                    Err(reason) => {
                        state.failures = state.failures.saturating_add(1);
                        let wait = backoff(state.failures);
                        state.not_before = Some(Instant::now() + wait);
                        tracing::warn!(key = %hex::encode(key.key_id), signers = ?set, failures = state.failures, ?wait, %reason, "presign pool: proposal failed; backing off");
                    }
                }
            }
        }
    }

    /// Proposes one session of `set` for `key` to every other signer of the set and, when
    /// all accepted, starts it here.
    async fn propose(
        self: &Arc<Self>,
        key: &Arc<LoadedKey>,
        set: &[u16],
    ) -> Result<SessionId, String> {
        let mut id = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let id = SessionId(id);
        let proposal = PresignProposal {
            key_id: key.key_id.to_vec(),
            epoch: key.share.epoch(),
            signers: set.iter().map(|i| u32::from(*i)).collect(),
        };
        let payload = proposal.encode_to_vec();
        let mut calls = JoinSet::new();
        for &to in set.iter().filter(|i| **i != self.me) {
            let header = EnvelopeHeader {
                fleet_id: self.fleet.clone(),
                session_id: id,
                protocol: ProtocolKind::PresignProposal,
                round: 0,
                from: self.me,
                to: Recipient::Signer(to),
            };
            let outbox = Arc::clone(&self.outbox);
            let payload = payload.clone();
            calls.spawn(async move {
                (
                    to,
                    outbox
                        .propose_presign(&header, payload, to, PROPOSE_TIMEOUT)
                        .await,
                )
            });
        }
        let mut refusals = Vec::new();
        while let Some(done) = calls.join_next().await {
            match done {
                Ok((_, Ok(_))) => {}
                Ok((to, Err(s))) => {
                    refusals.push(format!("signer {to}: {:?} {}", s.code(), s.message()))
                }
                Err(e) => refusals.push(format!("proposal task failed: {e}")),
            }
        }
        if !refusals.is_empty() {
            return Err(refusals.join("; "));
        }
        super::presign::start(
            self,
            FillPresignPoolRequest {
                session_id: id.0.to_vec(),
                key_id: key.key_id.to_vec(),
                epoch: key.share.epoch(),
                path: None,
                signers: set.iter().map(|i| u32::from(*i)).collect(),
            },
        )
        .await
        .map(|_| id)
        .map_err(|s| format!("starting the session here: {:?} {}", s.code(), s.message()))
    }

    /// Decides on a verified proposal envelope (module docs) and starts the session.
    async fn accept_proposal(
        self: &Arc<Self>,
        envelope: VerifiedEnvelope,
    ) -> Result<PresignProposalReceipt, Status> {
        let header = envelope.header();
        if header.protocol != ProtocolKind::PresignProposal
            || header.round != 0
            || header.to != Recipient::Signer(self.me)
        {
            return Err(Status::invalid_argument(
                "a presign proposal is a PRESIGN_PROPOSAL envelope of round 0 addressed to this signer",
            ));
        }
        let id = header.session_id;
        let from = header.from;
        let proposal = PresignProposal::decode(envelope.payload())
            .map_err(|e| Status::invalid_argument(format!("proposal payload: {e}")))?;
        let key_id: KeyId = id32("key_id", &proposal.key_id)?;
        let signers = signer_set("signers", &proposal.signers, &self.fleet_indices, self.me)?;
        let set = signers.members().to_vec();
        if set.first() != Some(&from) {
            return Err(Status::permission_denied(format!(
                "signer {from} may not propose for {set:?}: only the set's lowest index proposes"
            )));
        }
        let key = self
            .keys
            .get(key_id)
            .await
            .map_err(vault_status)?
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "this signer holds no key {}",
                    hex::encode(key_id)
                ))
            })?;
        if proposal.epoch != key.share.epoch() {
            return Err(Status::failed_precondition(format!(
                "key {} is at epoch {} here, the proposal says {}",
                hex::encode(key_id),
                key.share.epoch(),
                proposal.epoch
            )));
        }
        signer_positions(&key, &set)
            .map_err(|s| Status::failed_precondition(s.message().to_owned()))?;
        let pool = &self.presign_pool;
        let slot = (key_id, set.clone());
        // prune first, then count: a session that ends in between is counted twice (never
        // zero times), so the cap holds
        {
            let mut slots = pool.slots();
            let state = slots.entry(slot.clone()).or_default();
            self.prune(state);
        }
        let level = self.pool_level(&key, &set).await.map_err(vault_status)?;
        {
            let mut slots = pool.slots();
            let state = slots.entry(slot.clone()).or_default();
            let held = u64::from(level) + state.in_flight.len() as u64;
            if held >= u64::from(pool.target) {
                return Err(Status::resource_exhausted(format!(
                    "pool of key {} for signers {set:?} holds {level} presignatures and {} sessions in flight; this signer's cap ([pools] presignatures_per_key) is {}",
                    hex::encode(key_id),
                    state.in_flight.len(),
                    pool.target
                )));
            }
            // reserve the place before starting, so concurrent proposals cannot pass the cap
            state.in_flight.insert(id);
        }
        let started = super::presign::start(
            self,
            FillPresignPoolRequest {
                session_id: id.0.to_vec(),
                key_id: key_id.to_vec(),
                epoch: proposal.epoch,
                path: None,
                signers: proposal.signers.clone(),
            },
        )
        .await;
        if let Err(e) = started {
            let mut slots = pool.slots();
            if let Some(state) = slots.get_mut(&slot) {
                state.in_flight.remove(&id);
            }
            return Err(e);
        }
        tracing::info!(session = %id, key = %hex::encode(key_id), signers = ?set, proposer = from, level, "presign proposal accepted");
        Ok(PresignProposalReceipt {
            session_id: id.0.to_vec(),
        })
    }

    async fn log_levels(&self) {
        match self.pool_status().await {
            Ok(status) => {
                if let Some(p) = status.primes {
                    tracing::info!(
                        ready = p.ready,
                        target = p.target,
                        generating = p.generating,
                        generated = p.generated,
                        on_demand = p.on_demand,
                        last_set_ms = p.last_set_ms,
                        "prime pool level"
                    );
                }
                for l in status.presignatures {
                    tracing::info!(key = %hex::encode(&l.key_id), epoch = l.epoch, signers = ?l.signers, ready = l.ready, target = l.target, in_flight = l.in_flight, proposer = l.proposer, failures = l.consecutive_failures, backoff_ms = l.backoff_ms, "presignature pool level");
                }
            }
            Err(e) => tracing::warn!(error = %e, "pool status unavailable"),
        }
    }
}

/// Starts this node's pool tasks on the current runtime: the presign proposer (when this
/// node is the lowest index of a configured set) and the periodic pool-level log (when any
/// pool is configured). The prime pool's generator is started by its owner
/// (`pools::prime_pool::PrimePool::spawn`).
pub fn spawn_workers(runner: &Arc<Runner>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let pool = &runner.presign_pool;
    if pool.target > 0 && !pool.proposing.is_empty() {
        let r = Arc::clone(runner);
        tracing::info!(sets = ?pool.proposing, target = pool.target, "presign pool worker started");
        handles.push(tokio::spawn(async move {
            loop {
                r.fill_once().await;
                tokio::time::sleep(POLL).await;
            }
        }));
    }
    if pool.target > 0 || runner.primes.pool_level().is_some() {
        let r = Arc::clone(runner);
        let every = pool.status_log;
        handles.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                r.log_levels().await;
            }
        }));
    }
    handles
}

/// `SignerPeer.ProposePresign` of a node with a runner.
#[derive(Debug, Clone)]
pub struct ProposalService {
    runner: Arc<Runner>,
}

impl ProposalService {
    /// Proposals go to `runner`.
    pub fn new(runner: Arc<Runner>) -> Self {
        Self { runner }
    }
}

#[tonic::async_trait]
impl PresignProposals for ProposalService {
    async fn propose(&self, envelope: VerifiedEnvelope) -> Result<PresignProposalReceipt, Status> {
        self.runner.accept_proposal(envelope).await
    }
}
