//! The session runner (issue #4): drives mpc-core protocols between signer nodes over signed
//! envelopes and mTLS, and answers the `SignerControl` RPCs.
//!
//! - [`registry`]: the session table and the inbox side (duplicates, early messages);
//! - [`driver`]: one protocol phase of a session (rounds, held messages, deadlines, blame);
//! - [`outbox`]: signed envelopes to peers over role-pinned channels, with retries;
//! - [`positions`]: committee positions ↔ fleet signer indices;
//! - [`keygen`], [`refresh`], [`reshare`], [`presign`], [`sign`]: the starters of each
//!   session kind; [`sign_exchange`]: the signing round as a protocol;
//!   [`reshare_exchange`]: a node's dealer and/or new-holder side of a reshare as one protocol;
//! - [`keys`]: decoded keys cached per key id; [`primes`]: where aux-info primes come from;
//! - [`control`]: the `SignerControl` service; [`request`]: request checks.
//!
//! Session lifecycle: a start RPC checks its request, registers the session (PENDING),
//! does what must happen before anything is sent (reserve the key id; for signing: the gate,
//! then taking the presignature out of the vault), answers `SessionAccepted`, and a task runs
//! the phases (RUNNING, with the round). The end is COMPLETED with an outcome, ABORTED with a
//! blame, or EXPIRED (a round deadline passed with a message missing; the blame names who).
//! [`presign_pool`]: the presignature pool worker and presign proposals from peers;
//! [`sign_digest`]: clients' raw-digest signing with a presignature made on demand.
//! Refresh and reshare store the key at the next epoch (a reshare retires the share of a
//! dealer that leaves). Not built: presign-on-demand for the coordinator's `Sign`.

pub mod aux_phase;
pub mod control;
pub mod driver;
pub mod keygen;
pub mod keys;
pub mod outbox;
pub mod positions;
pub mod presign;
pub mod presign_pool;
pub mod primes;
pub mod refresh;
pub mod registry;
pub mod request;
pub mod reshare;
pub mod reshare_exchange;
pub mod sign;
pub mod sign_digest;
pub mod sign_exchange;

use std::sync::Arc;
use std::time::Duration;

use custody_proto::signer::v1::ProtocolKind;
use tonic::Status;

use crate::client_policy::ClientPolicies;
use crate::config::{FleetId, ValidatedConfig};
use crate::envelope::{SessionId, VerifiedEnvelope};
use crate::gate::SigningGate;
use crate::inbox::{InboxRefusal, SessionInbox};
use crate::node_key::NodeKey;
use crate::tls::TlsMaterial;
use crate::vault::{AuditEvent, AuditKind, Vault, VaultError};

use driver::SessionIo;
use keys::KeyCache;
use outbox::Outbox;
use primes::PrimeSource;
use registry::{Registry, RegistryError, Retention, SessionSpec};

/// What the runner needs besides the node's configuration and identity.
pub struct RunnerParts {
    /// Where shares, aux info and presignatures live.
    pub vault: Arc<dyn Vault>,
    /// The decision before a partial signature leaves.
    pub gate: Arc<dyn SigningGate>,
    /// Aux-info primes.
    pub primes: Arc<dyn PrimeSource>,
}

/// The session runner of one node.
pub struct Runner {
    fleet: FleetId,
    me: u16,
    fleet_indices: Vec<u16>,
    deadline: Duration,
    registry: Arc<Registry>,
    outbox: Arc<Outbox>,
    vault: Arc<dyn Vault>,
    gate: Arc<dyn SigningGate>,
    primes: Arc<dyn PrimeSource>,
    keys: Arc<KeyCache>,
    presign_pool: presign_pool::PresignPool,
    clients: ClientPolicies,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("fleet", &self.fleet)
            .field("me", &self.me)
            .field("primes", &self.primes.name())
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner for the node of `config`, sending with its TLS material and node key.
    ///
    /// First marks every session the vault recorded and that never ended (the process that
    /// ran it is gone) as ABORTED "interrupted by a restart of signer N", each audited once;
    /// fails if the vault cannot (a node that cannot tell what it was doing does not start).
    pub fn new(
        config: &ValidatedConfig,
        tls: TlsMaterial,
        node_key: NodeKey,
        parts: RunnerParts,
    ) -> Result<Arc<Self>, VaultError> {
        let fleet_indices: Vec<u16> = config.peers.iter().map(|p| p.index).collect();
        let reason = format!("interrupted by a restart of signer {}", config.index());
        let interrupted = parts.vault.abort_interrupted_sessions(&reason)?;
        if !interrupted.aborted.is_empty() {
            tracing::warn!(
                count = interrupted.aborted.len(),
                "sessions interrupted by the restart are now ABORTED"
            );
        }
        for e in &interrupted.unreadable {
            tracing::error!(error = %e, "a stored session record is unreadable; its id stays taken");
        }
        let retention = Retention {
            after: Duration::from_secs(config.raw.limits.session_retention_secs),
            max_finished: config.raw.limits.max_finished_sessions,
        };
        tracing::info!(primes = parts.primes.name(), "session runner ready");
        Ok(Arc::new(Self {
            fleet: config.fleet_id().clone(),
            me: config.index(),
            deadline: config.round_deadline,
            registry: Arc::new(Registry::new(Arc::clone(&parts.vault), retention)),
            outbox: Arc::new(Outbox::new(config, tls, node_key)),
            keys: Arc::new(KeyCache::new(
                Arc::clone(&parts.vault),
                fleet_indices.clone(),
            )),
            presign_pool: presign_pool::PresignPool::new(&config.raw.pools, config.index()),
            fleet_indices,
            vault: parts.vault,
            gate: parts.gate,
            primes: parts.primes,
            clients: ClientPolicies::from_config(config),
        }))
    }

    /// The session table.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The node's counters (for the metrics endpoint).
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        self.registry.metrics()
    }

    /// The vault (the metrics endpoint reads pool levels from it).
    pub fn vault(&self) -> &Arc<dyn Vault> {
        &self.vault
    }

    /// Registers session `id` and returns its network side.
    fn open(&self, id: SessionId, spec: SessionSpec) -> Result<SessionIo, Status> {
        let phases = spec.phases.clone();
        let rx = self.registry.create(id, spec).map_err(registry_status)?;
        Ok(SessionIo::new(
            id,
            self.fleet.clone(),
            self.me,
            phases,
            rx,
            self.deadline,
            Arc::clone(&self.outbox),
            Arc::clone(&self.registry),
        ))
    }

    /// A session spec for `kind` with the other signers of `members`.
    fn spec(
        &self,
        kind: ProtocolKind,
        phases: Vec<ProtocolKind>,
        members: &[u16],
        max_rounds: u16,
    ) -> SessionSpec {
        SessionSpec {
            kind,
            phases,
            senders: members.iter().copied().filter(|i| *i != self.me).collect(),
            max_rounds: usize::from(max_rounds),
        }
    }

    /// Appends to the audit log; a failure is logged (the event itself already happened).
    /// Ends a session that failed: audits the abort (what ran, reason, culprits) and records
    /// the state and blame for `SessionStatus`.
    fn record_failure(
        &self,
        id: &SessionId,
        key_id: [u8; 32],
        what: &str,
        failure: driver::PhaseFailure,
    ) {
        let (state, blame) = failure.into_parts();
        self.audit(
            AuditKind::SessionAborted,
            id,
            Some(key_id),
            format!("{what}: {} (culprits {:?})", blame.reason, blame.culprits),
        );
        self.registry.finish(id, state, None, Some(blame));
    }

    fn audit(
        &self,
        kind: AuditKind,
        session: &SessionId,
        key_id: Option<[u8; 32]>,
        detail: String,
    ) {
        if let Err(e) = self.vault.audit(AuditEvent {
            kind,
            session_id: Some(session.0),
            key_id,
            detail,
        }) {
            tracing::error!(session = %session, error = %e, "audit log write failed");
        }
    }
}

impl Runner {
    /// [`Self::audit`] on a blocking thread, not awaited: for entries that record what an
    /// earlier durable step already committed, so that a flush does not sit on the path of a
    /// message. A failure is logged, like [`Self::audit`]'s.
    fn audit_in_background(
        &self,
        kind: AuditKind,
        session: &SessionId,
        key_id: Option<[u8; 32]>,
        detail: String,
    ) {
        let vault = Arc::clone(&self.vault);
        let session = *session;
        tokio::task::spawn_blocking(move || {
            if let Err(e) = vault.audit(AuditEvent {
                kind,
                session_id: Some(session.0),
                key_id,
                detail,
            }) {
                tracing::error!(session = %session, error = %e, "audit log write failed");
            }
        });
    }
}

/// The status code of a session-table error.
pub(crate) fn registry_status(e: RegistryError) -> Status {
    match e {
        RegistryError::Exists(_) => Status::already_exists(e.to_string()),
        RegistryError::CorruptRecord(_) => Status::data_loss(e.to_string()),
        RegistryError::Poisoned | RegistryError::Store(_) => Status::unavailable(e.to_string()),
    }
}

impl SessionInbox for Runner {
    fn deliver(&self, envelope: VerifiedEnvelope) -> Result<(), InboxRefusal> {
        self.registry.deliver(envelope)
    }
}
