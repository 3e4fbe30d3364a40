//! Crash consistency of the sealed store: a child process (this test binary re-invoking its
//! ignored `crash_child` test) stores, refreshes, reserves, puts, takes and audits in a loop
//! and reports each call that returned; the parent kills it with SIGKILL at a random moment,
//! reopens the store with a freshly opened sealer and checks the invariants, several times
//! over the same store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod store_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mpc_core::aux_info::AuxInfo;
use mpc_core::dkg::KeyShare;
use mpc_core::presign::Presignature;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use signer_node::store::SledVault;
use signer_node::vault::{AuditEvent, AuditKind, Vault, VaultError};
use store_support::{file_sealer, material};

const DIR_VAR: &str = "SIGNER_NODE_STORE_CRASH_DIR";
const SEED_VAR: &str = "SIGNER_NODE_STORE_CRASH_SEED";
const OPS_VAR: &str = "SIGNER_NODE_STORE_CRASH_OPS";
const ROUNDS: u64 = 6;

type Id = [u8; 32];

fn id(s: &str) -> Option<Id> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Appends one line to the ops file with one unbuffered `write` (it survives SIGKILL: the
/// kernel has it once `write` returned).
struct OpsLog(std::fs::File);

impl OpsLog {
    fn line(&mut self, line: String) {
        self.0.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
}

/// The child: runs until killed. Each line of the ops file is written after the call it
/// names returned.
#[test]
#[ignore = "child process of kill_9_at_random_moments_leaves_a_consistent_store"]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        eprintln!("crash_child only runs as the child of the crash test");
        return;
    };
    let dir = PathBuf::from(dir);
    let seed: u64 = std::env::var(SEED_VAR).unwrap().parse().unwrap();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let share = KeyShare::from_bytes(&read("share.bin")).unwrap();
    let refreshed = KeyShare::from_bytes(&read("refreshed.bin")).unwrap();
    let aux = AuxInfo::from_bytes(&read("aux.bin")).unwrap();
    let presignature = Presignature::from_bytes(&read("presignature.bin")).unwrap();
    let refreshed_presignature =
        Presignature::from_bytes(&read("refreshed-presignature.bin")).unwrap();
    let vault = SledVault::open(&dir, file_sealer(&dir, false)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut log = OpsLog(
        std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(std::env::var(OPS_VAR).unwrap())
            .unwrap(),
    );
    log.line("ready".into());
    loop {
        let keys = vault.list_keys().unwrap();
        let r: u32 = rng.gen_range(0..100);
        // few keys and small pools keep the parent's full check (it unseals everything) fast
        if keys.is_empty() || (r < 5 && keys.len() < 4) {
            let (key, session): (Id, Id) = (rng.gen(), rng.gen());
            vault.reserve_key(&key, &session).unwrap();
            if r.is_multiple_of(2) {
                vault.release_reservation(&key).unwrap();
            } else {
                vault.store_key(&key, &share, &aux).unwrap();
                log.line(format!("stored {}", hex::encode(key)));
            }
            continue;
        }
        let key = keys[rng.gen_range(0..keys.len())];
        if r < 9 {
            match vault.store_key(&key, &refreshed, &aux) {
                Ok(()) => log.line(format!("refreshed {}", hex::encode(key))),
                Err(VaultError::StaleEpoch { .. }) => {}
                Err(e) => panic!("refresh: {e}"),
            }
        } else if r < 55 && vault.presignatures(&key).unwrap().len() < 16 {
            let session: Id = rng.gen();
            // the presignature of the key's epoch (REF-03 refuses the other one)
            match vault.put_presignature(&key, &session, &presignature) {
                Err(VaultError::EpochMismatch { .. }) => vault
                    .put_presignature(&key, &session, &refreshed_presignature)
                    .unwrap(),
                other => other.unwrap(),
            }
            log.line(format!("put {} {}", hex::encode(key), hex::encode(session)));
        } else if r < 92 {
            let pool = vault.presignatures(&key).unwrap();
            if let Some(session) = pool.first() {
                assert!(vault.take_presignature(&key, session).unwrap().is_some());
                log.line(format!(
                    "took {} {}",
                    hex::encode(key),
                    hex::encode(session)
                ));
            }
        } else {
            vault
                .audit(AuditEvent {
                    kind: AuditKind::PartialSignatureIssued,
                    session_id: Some(rng.gen()),
                    key_id: Some(key),
                    detail: "crash test".into(),
                })
                .unwrap();
            log.line("audited".into());
        }
    }
}

/// Runs one child until a random moment after it is ready, kills it, returns its ops.
fn run_and_kill(dir: &Path, seed: u64, after: Duration) -> Vec<String> {
    let ops_file = dir.join(format!("ops-{seed}.log"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(DIR_VAR, dir)
        .env(SEED_VAR, seed.to_string())
        .env(OPS_VAR, &ops_file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let ready = |f: &Path| std::fs::read_to_string(f).is_ok_and(|t| t.starts_with("ready\n"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&ops_file) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("child did not get ready (or exited)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::fs::read_to_string(&ops_file)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// What the audit log says happened to each presignature and key, in sequence order.
#[derive(Default)]
struct History {
    added: BTreeMap<(Id, Id), u64>,
    consumed: BTreeMap<(Id, Id), u64>,
    last_refresh: BTreeMap<Id, u64>,
    created: BTreeSet<Id>,
    signatures: usize,
}

fn history(vault: &SledVault) -> History {
    let mut h = History::default();
    for r in vault.audit_log().unwrap() {
        let e = &r.event;
        match (e.kind, e.key_id, e.session_id) {
            (AuditKind::PresignatureAdded, Some(k), Some(s)) => {
                assert!(h.added.insert((k, s), r.seq).is_none(), "added twice");
            }
            (AuditKind::PresignatureConsumed, Some(k), Some(s)) => {
                assert!(h.consumed.insert((k, s), r.seq).is_none(), "consumed twice");
            }
            (AuditKind::KeyRefreshed, Some(k), _) => {
                h.last_refresh.insert(k, r.seq);
            }
            (AuditKind::KeyCreated, Some(k), _) => {
                assert!(h.created.insert(k), "created twice");
            }
            (AuditKind::PartialSignatureIssued, _, _) => h.signatures += 1,
            _ => {}
        }
    }
    h
}

fn check_invariants(dir: &Path, ops: &[String]) {
    // raw state as the crash left it: no key both stored and reserved, aux info beside
    // every share and nothing else
    {
        let db = sled::open(dir.join("store")).unwrap();
        let keys = db.open_tree("keys").unwrap();
        let aux = db.open_tree("aux").unwrap();
        let reservations = db.open_tree("reservations").unwrap();
        for k in reservations.iter().keys() {
            assert!(
                !keys.contains_key(k.unwrap()).unwrap(),
                "stored and reserved"
            );
        }
        let key_ids: Vec<_> = keys.iter().keys().map(|k| k.unwrap()).collect();
        let aux_ids: Vec<_> = aux.iter().keys().map(|k| k.unwrap()).collect();
        assert_eq!(key_ids, aux_ids);
    }
    // opens with a fresh sealer; every record opens and decodes at its key's epoch, every
    // presignature has its key, the audit chain is intact
    let vault = SledVault::open(dir, file_sealer(dir, false)).unwrap();
    let report = vault.check().unwrap();
    assert_eq!(report.reservations, 0, "stale reservations dropped at open");
    let h = history(&vault);
    let keys: BTreeSet<Id> = vault.list_keys().unwrap().into_iter().collect();
    assert_eq!(
        keys, h.created,
        "every created key is stored and vice versa"
    );
    let mut present = BTreeSet::new();
    for k in &keys {
        for s in vault.presignatures(k).unwrap() {
            let seq = h
                .added
                .get(&(*k, s))
                .expect("stored presignature was audited as added");
            assert!(
                !h.consumed.contains_key(&(*k, s)),
                "consumed and still present"
            );
            assert!(
                h.last_refresh.get(k).is_none_or(|r| r < seq),
                "presignature survived a refresh of its key"
            );
            present.insert((*k, s));
        }
    }
    // what the child saw returned is durable
    let mut audited = 0;
    for op in ops {
        let parts: Vec<&str> = op.split(' ').collect();
        match parts.as_slice() {
            ["stored", k] => {
                if let Some(k) = id(k) {
                    assert!(keys.contains(&k), "stored key lost");
                }
            }
            ["refreshed", k] => {
                if let Some(k) = id(k) {
                    assert!(h.last_refresh.contains_key(&k), "refresh lost");
                }
            }
            ["took", k, s] => {
                if let (Some(k), Some(s)) = (id(k), id(s)) {
                    assert!(!present.contains(&(k, s)), "taken presignature is back");
                    assert!(h.consumed.contains_key(&(k, s)), "take not audited");
                }
            }
            ["put", k, s] => {
                if let (Some(k), Some(s)) = (id(k), id(s)) {
                    let added = *h.added.get(&(k, s)).expect("put lost");
                    let gone = h.consumed.contains_key(&(k, s))
                        || h.last_refresh.get(&k).is_some_and(|r| *r > added);
                    assert!(
                        present.contains(&(k, s)) != gone,
                        "put neither present nor gone"
                    );
                }
            }
            ["audited"] => audited += 1,
            _ => {} // a line cut by the kill: its call returned, but we cannot tell which
        }
    }
    assert!(h.signatures >= audited, "audit entries lost");
}

#[test]
fn kill_9_at_random_moments_leaves_a_consistent_store() {
    let m = material();
    let dir = tempfile::tempdir().unwrap();
    drop(SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap());
    // plaintext records for the child, in the test's own temporary directory
    std::fs::write(dir.path().join("share.bin"), m.share.to_bytes()).unwrap();
    std::fs::write(dir.path().join("refreshed.bin"), m.refreshed.to_bytes()).unwrap();
    std::fs::write(dir.path().join("aux.bin"), m.aux.to_bytes()).unwrap();
    std::fs::write(
        dir.path().join("presignature.bin"),
        m.presignatures[0].to_bytes(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("refreshed-presignature.bin"),
        m.refreshed_presignature.to_bytes(),
    )
    .unwrap();
    let seed: u64 = rand::thread_rng().gen();
    eprintln!("crash test seed {seed}");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut ops = Vec::new();
    let started = Instant::now();
    for round in 0..ROUNDS {
        let after = Duration::from_millis(rng.gen_range(50..700));
        ops.extend(run_and_kill(dir.path(), seed.wrapping_add(round), after));
        eprintln!("round {round}: killed at {:?}", started.elapsed());
        check_invariants(dir.path(), &ops);
        eprintln!("round {round}: checked at {:?}", started.elapsed());
    }
    let count = |p: &str| ops.iter().filter(|o| o.starts_with(p)).count();
    eprintln!(
        "crash test: {} ops ({} put, {} took, {} stored, {} refreshed)",
        ops.len(),
        count("put"),
        count("took"),
        count("stored"),
        count("refreshed")
    );
    assert!(
        count("put") > 0 && count("took") > 0,
        "the children did too little"
    );
}
