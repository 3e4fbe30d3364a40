//! The safe-prime pool: take-once prime sets in both vaults (and across a restart of the
//! sealed sled store, real files), the background worker filling to its target with the real
//! generator at a small prime size, and `PooledPrimes` taking from the pool or falling back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod store_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpc_core::aux_info::AuxPrimes;
use mpc_core::params::PRIME_BITS;
use mpc_core::primes::SafePrimeGenerator;
use signer_node::pools::prime_pool::{PooledPrimes, PrimePool};
use signer_node::pools::prime_set::PrimeSet;
use signer_node::runner::primes::{PrimeError, PrimeSource};
use signer_node::store::SledVault;
use signer_node::vault::{MemoryVault, Vault};
use store_support::file_sealer;

/// A small real prime set (the real generator at 64 bits), the sieve table built once.
fn small_set() -> PrimeSet {
    static GENERATOR: std::sync::OnceLock<SafePrimeGenerator> = std::sync::OnceLock::new();
    let g = GENERATOR.get_or_init(SafePrimeGenerator::new);
    PrimeSet::generate(g, &mut rand::rngs::OsRng, 64, |_, _| {}).unwrap()
}

fn check_take_once<V: Vault>(vault: &V) {
    assert_eq!(vault.prime_set_count().unwrap(), 0);
    assert!(vault.take_prime_set().unwrap().is_none());
    let (a, b) = (small_set(), small_set());
    vault.put_prime_set(&[1; 32], &a).unwrap();
    vault.put_prime_set(&[2; 32], &b).unwrap();
    assert!(
        vault.put_prime_set(&[2; 32], &a).is_err(),
        "an id in use is refused"
    );
    assert_eq!(vault.prime_set_count().unwrap(), 2);
    let mut taken = vec![
        vault.take_prime_set().unwrap().unwrap().encode().to_vec(),
        vault.take_prime_set().unwrap().unwrap().encode().to_vec(),
    ];
    taken.sort();
    let mut put = vec![a.encode().to_vec(), b.encode().to_vec()];
    put.sort();
    assert_eq!(taken, put, "each set comes back once, intact");
    assert!(vault.take_prime_set().unwrap().is_none());
    assert_eq!(vault.prime_set_count().unwrap(), 0);
}

#[test]
fn prime_sets_are_taken_once_from_both_vaults() {
    check_take_once(&MemoryVault::new());
    let dir = tempfile::tempdir().unwrap();
    check_take_once(&SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap());
}

#[test]
fn a_taken_prime_set_is_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (small_set(), small_set());
    let first;
    {
        let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
        vault.put_prime_set(&[1; 32], &a).unwrap();
        vault.put_prime_set(&[2; 32], &b).unwrap();
        first = vault.take_prime_set().unwrap().unwrap().encode().to_vec();
    }
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert_eq!(
        vault.prime_set_count().unwrap(),
        1,
        "the taken set stays taken"
    );
    let second = vault.take_prime_set().unwrap().unwrap().encode().to_vec();
    assert_ne!(first, second);
    let mut both = vec![first, second];
    both.sort();
    let mut put = vec![a.encode().to_vec(), b.encode().to_vec()];
    put.sort();
    assert_eq!(both, put);
    drop(vault);
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert_eq!(vault.prime_set_count().unwrap(), 0);
    assert!(vault.take_prime_set().unwrap().is_none());
    // the store's own checks still pass with the new tree
    vault.check().unwrap();
}

async fn wait_ready(pool: &PrimePool, want: u32, limit: Duration) {
    let start = Instant::now();
    loop {
        let level = pool.level().unwrap();
        if level.ready == want && level.generating == 0 {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "prime pool at {level:?}, wanted {want} ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Real generation in the background with mpc-core's generator at 128 bits, two threads,
/// refilled after a take, never above the target, kept in the sealed store. (A few seconds
/// in a debug build on a loaded 2-core machine, most of it building the sieve table once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_fills_the_pool_to_its_target_and_refills_it() {
    let dir = tempfile::tempdir().unwrap();
    let vault: Arc<dyn Vault> =
        Arc::new(SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap());
    let pool = PrimePool::with_bits(Arc::clone(&vault), 3, 2, 128);
    let started = Instant::now();
    let worker = pool.spawn();
    wait_ready(&pool, 3, Duration::from_secs(60)).await;
    eprintln!("3 sets of 128-bit safe primes in {:?}", started.elapsed());
    let level = pool.level().unwrap();
    assert_eq!((level.target, level.generated), (3, 3));
    // nothing beyond the target
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pool.level().unwrap().ready, 3);
    assert_eq!(pool.level().unwrap().generated, 3);

    let taken = pool.take().unwrap().unwrap();
    assert_eq!(taken.bits(), 128);
    wait_ready(&pool, 3, Duration::from_secs(60)).await;
    assert_eq!(
        pool.level().unwrap().generated,
        4,
        "one set replaced the taken one"
    );
    worker.abort();
}

/// A source of the committed fixture primes that counts its calls: the on-demand fallback.
struct CountingFixtures(AtomicU32);

impl PrimeSource for CountingFixtures {
    fn aux_primes(&self, _index: u16) -> Result<AuxPrimes, PrimeError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let f = mpc_core::fixtures::safe_primes();
        Ok(AuxPrimes::new(
            f[0].clone(),
            f[1].clone(),
            f[2].clone(),
            f[3].clone(),
        ))
    }
    fn name(&self) -> &'static str {
        "counting fixtures"
    }
}

#[test]
fn pooled_primes_take_from_the_pool_and_fall_back_when_empty_or_unusable() {
    let vault: Arc<dyn Vault> = Arc::new(MemoryVault::new());
    let pool = PrimePool::with_bits(Arc::clone(&vault), 2, 1, PRIME_BITS);
    let fallback = Arc::new(CountingFixtures(AtomicU32::new(0)));
    let source = PooledPrimes::new(Arc::clone(&pool), fallback.clone());

    // a full-size set (made of fixture primes 4..8) is used and removed
    let f = mpc_core::fixtures::safe_primes();
    let set = PrimeSet::from_primes(
        PRIME_BITS,
        [f[4].clone(), f[5].clone(), f[6].clone(), f[7].clone()],
    )
    .unwrap();
    vault.put_prime_set(&[9; 32], &set).unwrap();
    source.aux_primes(1).unwrap();
    assert_eq!(fallback.0.load(Ordering::SeqCst), 0, "taken from the pool");
    assert_eq!(vault.prime_set_count().unwrap(), 0);

    // empty: generated on demand
    source.aux_primes(1).unwrap();
    assert_eq!(fallback.0.load(Ordering::SeqCst), 1);

    // a set of the wrong size is removed (never used) and the fallback runs
    vault.put_prime_set(&[8; 32], &small_set()).unwrap();
    source.aux_primes(1).unwrap();
    assert_eq!(fallback.0.load(Ordering::SeqCst), 2);
    assert_eq!(vault.prime_set_count().unwrap(), 0);

    let level = source.pool_level().unwrap().unwrap();
    assert_eq!((level.ready, level.target, level.on_demand), (0, 2, 2));
}

/// Runs `f` on the raw sled database of the store in `dir` (the vault must be closed).
fn raw(dir: &std::path::Path, f: impl FnOnce(&sled::Db)) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let db = loop {
        match sled::open(dir.join("store")) {
            Ok(db) => break db,
            Err(e) if Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    f(&db);
    db.flush().unwrap();
}

/// OPS-04: a sealed prime set is bound to its id and kind; a copy under another id does not
/// open (and is removed, never retried), the original still does.
#[test]
fn a_prime_set_moved_to_another_id_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let set = small_set();
    {
        let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
        vault.put_prime_set(&[1; 32], &set).unwrap();
    }
    raw(dir.path(), |db| {
        let t = db.open_tree("prime_sets").unwrap();
        let sealed = t.get([1u8; 32]).unwrap().unwrap();
        // id 0 sorts first, so it is taken first
        t.insert([0u8; 32], sealed).unwrap();
    });
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert_eq!(vault.prime_set_count().unwrap(), 2);
    let moved = vault.take_prime_set().unwrap_err();
    assert!(
        moved.to_string().contains("failed authentication"),
        "{moved}"
    );
    assert_eq!(vault.prime_set_count().unwrap(), 1, "the bad copy is gone");
    let good = vault.take_prime_set().unwrap().unwrap();
    assert_eq!(*good.encode(), *set.encode());
}
