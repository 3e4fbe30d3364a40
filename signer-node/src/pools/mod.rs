//! Background pools (issue #4): safe-prime sets for aux info ([`prime_pool`], records in
//! [`prime_set`]) and presignatures kept warm per key and signer set
//! (`runner::presign_pool`), with their `[pools]` configuration ([`PoolSettings`]).
//!
//! Both pools are off unless configured (every size defaults to 0).

pub mod prime_pool;
pub mod prime_set;
pub mod proposals;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Most prime sets a node may keep ready.
pub const MAX_SAFE_PRIME_SETS: u32 = 64;
/// Most generator threads of the prime pool.
pub const MAX_PRIME_THREADS: u32 = 16;
/// Most presignatures per key and signer set a node keeps or accepts.
pub const MAX_PRESIGNATURES_PER_KEY: u32 = 1000;
/// Longest interval between two pool status log lines: one day.
pub const MAX_STATUS_LOG_SECS: u64 = 24 * 60 * 60;

/// The `[pools]` table (optional; everything off by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// Prime sets (four 1536-bit safe primes each, one per future aux info) kept ready,
    /// sealed in the store; 0 = no pool (primes are generated when a keygen needs them).
    pub safe_prime_sets: u32,
    /// Blocking threads generating primes at once (1 leaves the other cores to signing).
    pub prime_threads: u32,
    /// Presignatures kept ready per key and signer set in `presign_signer_sets` (this node
    /// proposes when it is the set's lowest index), and the most this node accepts to hold
    /// per key and set when a peer proposes (0 = propose nothing, refuse every proposal).
    pub presignatures_per_key: u32,
    /// Signer sets whose presignature pools are kept warm, e.g. `[[1, 2, 3]]`.
    pub presign_signer_sets: Vec<Vec<u16>>,
    /// Seconds between two pool status log lines.
    pub status_log_secs: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            safe_prime_sets: 0,
            prime_threads: 1,
            presignatures_per_key: 0,
            presign_signer_sets: Vec::new(),
            status_log_secs: 60,
        }
    }
}

impl PoolSettings {
    /// Checks every value against the fleet's signer indices; the error is (key, reason)
    /// with the key's full name (`pools.presign_signer_sets[1]`).
    pub fn check(&self, fleet: &BTreeSet<u16>) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: String| Err((format!("pools.{key}"), reason));
        if self.safe_prime_sets > MAX_SAFE_PRIME_SETS {
            return bad(
                "safe_prime_sets",
                format!(
                    "must be 0 to {MAX_SAFE_PRIME_SETS}, got {}",
                    self.safe_prime_sets
                ),
            );
        }
        if self.prime_threads == 0 || self.prime_threads > MAX_PRIME_THREADS {
            return bad(
                "prime_threads",
                format!(
                    "must be 1 to {MAX_PRIME_THREADS}, got {}",
                    self.prime_threads
                ),
            );
        }
        if self.presignatures_per_key > MAX_PRESIGNATURES_PER_KEY {
            return bad(
                "presignatures_per_key",
                format!(
                    "must be 0 to {MAX_PRESIGNATURES_PER_KEY}, got {}",
                    self.presignatures_per_key
                ),
            );
        }
        if self.status_log_secs == 0 || self.status_log_secs > MAX_STATUS_LOG_SECS {
            return bad(
                "status_log_secs",
                format!(
                    "must be 1 to {MAX_STATUS_LOG_SECS}, got {}",
                    self.status_log_secs
                ),
            );
        }
        if !self.presign_signer_sets.is_empty() && self.presignatures_per_key == 0 {
            return bad(
                "presignatures_per_key",
                "must be at least 1 when presign_signer_sets names sets to keep warm".into(),
            );
        }
        let mut seen_sets = BTreeSet::new();
        for (i, set) in self.presign_signer_sets.iter().enumerate() {
            let key = format!("presign_signer_sets[{i}]");
            if set.is_empty() {
                return bad(&key, "a signer set must name at least one signer".into());
            }
            let members: BTreeSet<u16> = set.iter().copied().collect();
            if members.len() != set.len() {
                return bad(&key, format!("{set:?} names a signer twice"));
            }
            if let Some(i) = members.iter().find(|i| !fleet.contains(i)) {
                return bad(&key, format!("{i} is not a signer of this fleet (peers)"));
            }
            if !seen_sets.insert(members) {
                return bad(&key, format!("{set:?} is listed twice"));
            }
        }
        Ok(())
    }

    /// The configured presign signer sets, each sorted.
    pub fn signer_sets(&self) -> Vec<Vec<u16>> {
        self.presign_signer_sets
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.sort_unstable();
                s
            })
            .collect()
    }
}
