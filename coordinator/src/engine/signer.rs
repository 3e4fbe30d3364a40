//! How the lock-out saga gets signatures: a trait, so the saga can be tested without a signer
//! fleet; [`FleetSigner`] is the production implementation over [`FleetClient::sign`].

use std::future::Future;
use std::time::Duration;

use crate::adapter::FleetSignature;
use crate::fleet::{FleetClient, FleetError, FleetKey, SignJob};

/// Why no signature was obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Fewer than t signers are usable: no session can start.
    #[error("quorum unavailable: {0}")]
    QuorumUnavailable(String),
    /// A session was tried and failed (a signer refused, aborted, timed out).
    #[error("signing failed: {0}")]
    Failed(String),
}

/// Signs one input of a committed order.
pub trait OrderSigner: Send + Sync {
    /// Whether t signers of `key` are usable now. Called before the first session of an
    /// order; [`SignError::QuorumUnavailable`] here lets the saga refund safely.
    fn ready(&self, key: &FleetKey) -> impl Future<Output = Result<(), SignError>> + Send;

    /// Runs signing sessions for `job` until one gives a signature that verifies, or fails.
    fn sign(&self, job: &SignJob)
        -> impl Future<Output = Result<FleetSignature, SignError>> + Send;
}

/// [`OrderSigner`] over the fleet's control channels.
#[derive(Debug)]
pub struct FleetSigner {
    /// The fleet.
    pub client: FleetClient,
    /// Attempts with other signer subsets per [`OrderSigner::sign`].
    pub attempts: usize,
    /// Per-session limit.
    pub limit: Duration,
}

impl OrderSigner for FleetSigner {
    /// At least t holders answer a probe (no session is started) and t of those are
    /// choosable by reliability.
    async fn ready(&self, key: &FleetKey) -> Result<(), SignError> {
        let reachable = self.client.reachable_holders(key, self.limit).await;
        let unreachable: Vec<u16> = key
            .holders
            .iter()
            .copied()
            .filter(|h| !reachable.contains(h))
            .collect();
        self.client
            .choose_signers(&key.holders, usize::from(key.threshold), &unreachable)
            .map(|_| ())
            .map_err(|e| match e {
                FleetError::NotEnoughSigners { .. } | FleetError::Unreachable { .. } => {
                    SignError::QuorumUnavailable(e.to_string())
                }
                other => SignError::Failed(other.to_string()),
            })
    }

    async fn sign(&self, job: &SignJob) -> Result<FleetSignature, SignError> {
        self.client
            .sign(job, self.attempts, self.limit)
            .await
            .map_err(|e| SignError::Failed(e.to_string()))
    }
}
