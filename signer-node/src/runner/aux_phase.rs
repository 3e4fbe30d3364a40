//! The aux-info phase (CGGMP24 Fig. 7) that keygen and refresh end with and reshare starts
//! with: this signer's primes, asked for on a blocking thread when the session starts (a pool
//! hands them out at once; generating them takes seconds to minutes), an aux-info session id
//! of its own, SHA-256(tag ‖ session id), so its transcripts never share an id with the
//! session's other phase, the state machine set up on a blocking thread, and its rounds
//! (envelopes say `AUX_INFO`).

use std::sync::Arc;

use custody_proto::signer::v1::ProtocolKind;
use mpc_core::aux_info::{AuxConfig, AuxInfo, AuxInfoParty, AuxPrimes};
use mpc_core::protocol::{Committee, PartyIndex};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::driver::{PhaseFailure, Route, SessionIo};
use super::primes::PrimeError;
use super::Runner;

/// This signer's aux-info primes, fetched on a blocking thread.
pub type PrimesTask = JoinHandle<Result<AuxPrimes, PrimeError>>;

/// Starts fetching this signer's primes (call it when the session starts, so they are ready
/// when the aux-info phase begins).
pub fn fetch_primes(runner: &Runner) -> PrimesTask {
    let source = Arc::clone(&runner.primes);
    let index = runner.me;
    tokio::task::spawn_blocking(move || source.aux_primes(index))
}

/// Waits for `primes`, then runs aux info for `committee` as `route.me` under the session id
/// derived with `tag`.
pub async fn run(
    io: &mut SessionIo,
    route: &Route,
    committee: Committee,
    primes: PrimesTask,
    tag: &'static [u8],
) -> Result<AuxInfo, PhaseFailure> {
    let primes = primes
        .await
        .map_err(|e| PhaseFailure::Local(format!("prime task failed: {e}")))?
        .map_err(|e| PhaseFailure::Local(e.to_string()))?;
    let session_id = Sha256::new()
        .chain_update(tag)
        .chain_update(io.id.0)
        .finalize()
        .to_vec();
    let me: PartyIndex = route.me;
    let party = tokio::task::spawn_blocking(move || {
        AuxInfoParty::new(
            AuxConfig {
                session_id,
                committee,
                me,
            },
            primes,
            &mut OsRng,
        )
    })
    .await
    .map_err(|e| PhaseFailure::Local(format!("aux setup task failed: {e}")))?
    .map_err(|e| PhaseFailure::Local(format!("aux info setup: {e}")))?;
    io.run(ProtocolKind::AuxInfo, route, party).await
}
