//! The safe-prime pool: a background worker keeps `[pools] safe_prime_sets` prime sets ready,
//! generated on at most `prime_threads` blocking threads and stored **sealed** in the vault
//! (kind `prime-set`), so a restart keeps them. Keygen takes one set per aux info through
//! [`PooledPrimes`] (take-once: the set is removed durably before it is used, so no two aux
//! infos ever share primes); when the pool is empty it generates on demand, with a log line.
//! Fixture primes (devnet) bypass the pool ([`prime_source`]).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mpc_core::params::PRIME_BITS;
use mpc_core::primes::SafePrimeGenerator;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use super::prime_set::{PrimeSet, PrimeSetId};
use super::PoolSettings;
use crate::config::ValidatedConfig;
use crate::runner::primes::{from_config, PrimeError, PrimeSource};
use crate::vault::{Vault, VaultError};

/// How often the worker re-reads the pool level without being woken.
pub const RECHECK: Duration = Duration::from_secs(30);
/// First wait after a failed generation or store; doubles per failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The prime pool's level, for status and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrimePoolLevel {
    /// Sets stored and ready.
    pub ready: u32,
    /// Sets the pool keeps ready.
    pub target: u32,
    /// Sets being generated now.
    pub generating: u32,
    /// Sets generated since the node started.
    pub generated: u64,
    /// Aux infos that found the pool empty and generated on demand since the start.
    pub on_demand: u64,
    /// Time of the last generated set, in milliseconds (0 before the first).
    pub last_set_ms: u64,
}

#[derive(Default)]
struct Stats {
    generating: u32,
    generated: u64,
    on_demand: u64,
    last_set_ms: u64,
}

/// The pool: its settings, its vault and the worker's counters.
pub struct PrimePool {
    vault: Arc<dyn Vault>,
    target: u32,
    threads: u32,
    bits: u32,
    wake: Notify,
    stats: Mutex<Stats>,
    /// Built on the first generator thread and shared (its sieve table is ~1 MB).
    generator: OnceLock<SafePrimeGenerator>,
}

impl std::fmt::Debug for PrimePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimePool")
            .field("target", &self.target)
            .field("threads", &self.threads)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl PrimePool {
    /// The pool of `settings` (1536-bit primes, CGGMP24's size).
    pub fn new(vault: Arc<dyn Vault>, settings: &PoolSettings) -> Arc<Self> {
        Self::with_bits(
            vault,
            settings.safe_prime_sets,
            settings.prime_threads,
            PRIME_BITS,
        )
    }

    /// A pool of primes of `bits` bits. Anything but `PRIME_BITS` makes sets that aux info
    /// refuses (PARAM-01): [`PooledPrimes`] drops them and generates instead. For tests of
    /// the pool mechanics with the real generator at a small size.
    pub fn with_bits(vault: Arc<dyn Vault>, target: u32, threads: u32, bits: u32) -> Arc<Self> {
        Arc::new(Self {
            vault,
            target,
            threads: threads.max(1),
            bits,
            wake: Notify::new(),
            stats: Mutex::new(Stats::default()),
            generator: OnceLock::new(),
        })
    }

    /// The size of the primes this pool makes.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        // The counters are plain numbers: a poisoned lock still holds usable values.
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current level (reads the vault's count: call it off the async threads when the
    /// vault is the sealed store, or accept a short blocking read).
    pub fn level(&self) -> Result<PrimePoolLevel, VaultError> {
        let ready = u32::try_from(self.vault.prime_set_count()?).unwrap_or(u32::MAX);
        let s = self.stats();
        Ok(PrimePoolLevel {
            ready,
            target: self.target,
            generating: s.generating,
            generated: s.generated,
            on_demand: s.on_demand,
            last_set_ms: s.last_set_ms,
        })
    }

    /// Takes one set out of the pool (durably removed before it is returned) and wakes the
    /// worker to replace it.
    pub fn take(&self) -> Result<Option<PrimeSet>, VaultError> {
        let set = self.vault.take_prime_set()?;
        if set.is_some() {
            self.wake.notify_one();
        }
        Ok(set)
    }

    /// Starts the worker on the current tokio runtime.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run().await })
    }

    async fn ready(self: &Arc<Self>) -> Result<u32, VaultError> {
        let vault = Arc::clone(&self.vault);
        let n = crate::runner::request::blocking(move || vault.prime_set_count()).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn run(self: Arc<Self>) {
        tracing::info!(
            target = self.target,
            threads = self.threads,
            bits = self.bits,
            "prime pool worker started"
        );
        let mut tasks: JoinSet<Result<Duration, String>> = JoinSet::new();
        let mut failures: u32 = 0;
        loop {
            match self.ready().await {
                Ok(ready) => {
                    let mut started = 0;
                    while ready.saturating_add(tasks.len() as u32) < self.target
                        && (tasks.len() as u32) < self.threads
                    {
                        let this = Arc::clone(&self);
                        self.stats().generating += 1;
                        tasks.spawn_blocking(move || this.generate_one());
                        started += 1;
                    }
                    if started > 0 {
                        tracing::info!(
                            ready,
                            target = self.target,
                            generating = tasks.len(),
                            "prime pool below target: generating"
                        );
                    }
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::error!(error = %e, ?wait, "prime pool: cannot read the pool level; backing off");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            tokio::select! {
                Some(done) = tasks.join_next() => {
                    {
                        let mut s = self.stats();
                        s.generating = s.generating.saturating_sub(1);
                    }
                    match done.map_err(|e| format!("generator thread failed: {e}")).and_then(|r| r) {
                        Ok(took) => {
                            failures = 0;
                            let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
                            {
                                let mut s = self.stats();
                                s.generated += 1;
                                s.last_set_ms = ms;
                            }
                            let ready = self.ready().await.unwrap_or(0);
                            tracing::info!(ready, target = self.target, set_ms = ms, "prime pool: generated {ready} of {}", self.target);
                        }
                        Err(e) => {
                            failures += 1;
                            let wait = backoff(failures);
                            tracing::warn!(error = %e, failures, ?wait, "prime pool: a set failed; backing off");
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Generates one set and stores it (on a blocking thread); returns the time it took.
    fn generate_one(&self) -> Result<Duration, String> {
        let start = Instant::now();
        let generator = self.generator.get_or_init(SafePrimeGenerator::new);
        let set = PrimeSet::generate(generator, &mut rand::rngs::OsRng, self.bits, |k, took| {
            tracing::info!(
                prime = k,
                ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                "prime pool: safe prime {k} of 4 generated"
            );
        })
        .map_err(|e| e.to_string())?;
        let mut id: PrimeSetId = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        self.vault
            .put_prime_set(&id, &set)
            .map_err(|e| format!("storing a prime set: {e}"))?;
        Ok(start.elapsed())
    }
}

/// `FIRST_BACKOFF · 2^(failures−1)`, at most [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    FIRST_BACKOFF.saturating_mul(1u32 << exp).min(MAX_BACKOFF)
}

/// A [`PrimeSource`] that takes sets from the pool and falls back to `fallback` (generation
/// on demand) when the pool is empty or its set is unusable.
pub struct PooledPrimes {
    pool: Arc<PrimePool>,
    fallback: Arc<dyn PrimeSource>,
}

impl std::fmt::Debug for PooledPrimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledPrimes")
            .field("pool", &self.pool)
            .field("fallback", &self.fallback.name())
            .finish()
    }
}

impl PooledPrimes {
    /// Takes from `pool`, else asks `fallback`.
    pub fn new(pool: Arc<PrimePool>, fallback: Arc<dyn PrimeSource>) -> Self {
        Self { pool, fallback }
    }
}

impl PrimeSource for PooledPrimes {
    fn aux_primes(&self, index: u16) -> Result<mpc_core::aux_info::AuxPrimes, PrimeError> {
        match self.pool.take() {
            Ok(Some(set)) if set.bits() == PRIME_BITS => {
                tracing::info!("aux info uses a prime set from the pool");
                return Ok(set.into_aux_primes());
            }
            Ok(Some(set)) => tracing::warn!(
                bits = set.bits(),
                "the pool's prime set has the wrong size for aux info (dropped); generating on demand"
            ),
            Ok(None) => tracing::warn!(
                target = self.pool.target,
                "prime pool empty: generating this aux info's primes on demand (slow)"
            ),
            Err(e) => tracing::error!(error = %e, "prime pool unreadable: generating on demand"),
        }
        self.pool.stats().on_demand += 1;
        self.fallback.aux_primes(index)
    }

    fn name(&self) -> &'static str {
        "pool (generated, sealed in the store)"
    }

    fn pool_level(&self) -> Option<Result<PrimePoolLevel, VaultError>> {
        Some(self.pool.level())
    }
}

/// Where a node's aux-info primes come from, and the pool behind them if there is one.
pub struct PrimeSupply {
    /// What keygen asks for primes.
    pub source: Arc<dyn PrimeSource>,
    /// The pool whose worker must be started ([`PrimePool::spawn`]), if any.
    pub pool: Option<Arc<PrimePool>>,
}

impl std::fmt::Debug for PrimeSupply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimeSupply")
            .field("source", &self.source.name())
            .field("pool", &self.pool)
            .finish()
    }
}

/// The prime source `config` calls for, with the pool when `[pools] safe_prime_sets` > 0:
/// fixture primes bypass the pool; the pool's worker is not started here
/// ([`PrimePool::spawn`]).
pub fn prime_source(
    config: &ValidatedConfig,
    vault: Arc<dyn Vault>,
) -> Result<PrimeSupply, PrimeError> {
    let base = from_config(config)?;
    let settings = &config.raw.pools;
    if settings.safe_prime_sets == 0 {
        return Ok(PrimeSupply {
            source: base,
            pool: None,
        });
    }
    if config.raw.devnet.fixture_primes {
        tracing::warn!("[devnet] fixture_primes = true: the prime pool is not used");
        return Ok(PrimeSupply {
            source: base,
            pool: None,
        });
    }
    let pool = PrimePool::new(vault, settings);
    Ok(PrimeSupply {
        source: Arc::new(PooledPrimes::new(Arc::clone(&pool), base)),
        pool: Some(pool),
    })
}
