//! The sealed sled store beyond the Vault rules: AAD binding against values moved between
//! slots in the raw database (OPS-04), the refresh transaction (REF-02), the checks at open,
//! stale reservations, and the audit hash chain (also through `signer-node audit verify`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod store_support;

use std::path::Path;
use std::process::Command;

use signer_node::store::{ChainReport, SledVault, StoreError};
use signer_node::vault::{AuditEvent, AuditKind, Vault, VaultError};
use store_support::{file_sealer, material};

const A: [u8; 32] = [0xa1; 32];
const B: [u8; 32] = [0xb2; 32];
const S1: [u8; 32] = [1; 32];
const S2: [u8; 32] = [2; 32];

/// Runs `f` on the raw sled database of the store in `dir` (the vault must be closed).
fn raw(dir: &Path, f: impl FnOnce(&sled::Db)) {
    // the vault closed a moment ago: sled's flusher may still hold the file lock briefly
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let db = loop {
        match sled::open(dir.join("store")) {
            Ok(db) => break db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    f(&db);
    db.flush().unwrap();
}

fn tree(db: &sled::Db, name: &str) -> sled::Tree {
    db.open_tree(name).unwrap()
}

fn presig_slot(key: &[u8; 32], session: &[u8; 32]) -> Vec<u8> {
    [key.as_slice(), session.as_slice()].concat()
}

fn is_auth_failure(e: &VaultError) -> bool {
    matches!(e, VaultError::Storage(m) if m.contains("failed authentication"))
}

/// Two keys A and B with the same material, presignatures S1 and S2 under A.
fn two_keys(dir: &Path) {
    let m = material();
    let vault = SledVault::create(dir, file_sealer(dir, true)).unwrap();
    for key in [A, B] {
        vault.reserve_key(&key, &S1).unwrap();
        vault.store_key(&key, &m.share, &m.aux).unwrap();
    }
    vault
        .put_presignature(&A, &S1, &m.presignatures[0])
        .unwrap();
    vault
        .put_presignature(&A, &S2, &m.presignatures[1])
        .unwrap();
}

#[test]
fn sealed_values_moved_to_another_key_kind_or_slot_do_not_open() {
    let dir = tempfile::tempdir().unwrap();
    two_keys(dir.path());
    // share of A under key B; aux of A under key B
    raw(dir.path(), |db| {
        let keys = tree(db, "keys");
        keys.insert(B, keys.get(A).unwrap().unwrap()).unwrap();
    });
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert!(is_auth_failure(&vault.load_key(&B).unwrap_err()));
    assert!(vault.load_key(&A).unwrap().is_some());
    drop(vault);

    let dir = tempfile::tempdir().unwrap();
    two_keys(dir.path());
    raw(dir.path(), |db| {
        let aux = tree(db, "aux");
        aux.insert(B, aux.get(A).unwrap().unwrap()).unwrap();
    });
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert!(is_auth_failure(&vault.load_key(&B).unwrap_err()));
    drop(vault);

    // presignature S1 copied into slot S2, into key B's pool, and into the aux tree (another kind)
    let dir = tempfile::tempdir().unwrap();
    two_keys(dir.path());
    raw(dir.path(), |db| {
        let p = tree(db, "presignatures");
        let s1 = p.get(presig_slot(&A, &S1)).unwrap().unwrap();
        p.insert(presig_slot(&A, &S2), s1.clone()).unwrap();
        p.insert(presig_slot(&B, &S1), s1.clone()).unwrap();
        tree(db, "aux").insert(B, s1).unwrap();
    });
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert!(is_auth_failure(
        &vault.take_presignature(&A, &S2).unwrap_err()
    ));
    assert!(is_auth_failure(
        &vault.take_presignature(&B, &S1).unwrap_err()
    ));
    assert!(is_auth_failure(&vault.load_key(&B).unwrap_err()));
    // a record that does not open is left in place; the good one still works
    assert_eq!(vault.presignatures(&A).unwrap(), vec![S1, S2]);
    assert_eq!(vault.presignatures(&B).unwrap(), vec![S1]);
    assert!(vault.take_presignature(&A, &S1).unwrap().is_some());
    assert!(matches!(vault.check(), Err(StoreError::Seal { .. })));
}

#[test]
fn the_clear_epoch_beside_a_share_cannot_be_edited() {
    let dir = tempfile::tempdir().unwrap();
    two_keys(dir.path());
    raw(dir.path(), |db| {
        let keys = tree(db, "keys");
        let mut v = keys.get(A).unwrap().unwrap().to_vec();
        v[7] = 5; // epoch 0 -> 5: a later refresh of epoch 3 would otherwise be refused
        keys.insert(A, v).unwrap();
    });
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert!(is_auth_failure(&vault.load_key(&A).unwrap_err()));
    // a presignature sealed at epoch 0 does not open at epoch 5 either
    assert!(is_auth_failure(
        &vault.take_presignature(&A, &S1).unwrap_err()
    ));
}

#[test]
fn refresh_replaces_share_and_aux_and_erases_presignatures_at_once() {
    let m = material();
    let dir = tempfile::tempdir().unwrap();
    two_keys(dir.path());
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    vault
        .put_presignature(&B, &S1, &m.presignatures[0])
        .unwrap();
    // keep a copy of A's epoch-0 presignature to try to put it back after the refresh
    let sealed_old: Vec<u8> = {
        drop(vault);
        let mut out = Vec::new();
        raw(dir.path(), |db| {
            out = tree(db, "presignatures")
                .get(presig_slot(&A, &S1))
                .unwrap()
                .unwrap()
                .to_vec()
        });
        out
    };
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    vault.store_key(&A, &m.refreshed, &m.aux).unwrap();
    assert_eq!(vault.presignatures(&A).unwrap(), Vec::<[u8; 32]>::new());
    assert_eq!(
        vault.presignatures(&B).unwrap(),
        vec![S1],
        "other keys keep theirs"
    );
    let (share, _) = vault.load_key(&A).unwrap().unwrap();
    assert_eq!(share.epoch(), 1);
    assert_eq!(share.public_key(), m.share.public_key());
    assert!(matches!(
        vault.store_key(&A, &m.share, &m.aux),
        Err(VaultError::StaleEpoch {
            have: 1,
            got: 0,
            ..
        })
    ));
    assert!(matches!(
        vault.store_key(&A, &m.refreshed, &m.aux),
        Err(VaultError::StaleEpoch {
            have: 1,
            got: 1,
            ..
        })
    ));
    let kinds: Vec<AuditKind> = vault
        .audit_log()
        .unwrap()
        .iter()
        .map(|r| r.event.kind)
        .collect();
    assert_eq!(kinds.last(), Some(&AuditKind::KeyRefreshed));
    drop(vault);

    // an epoch-0 presignature put back by hand does not open at epoch 1
    raw(dir.path(), |db| {
        tree(db, "presignatures")
            .insert(presig_slot(&A, &S1), sealed_old)
            .unwrap();
    });
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert!(is_auth_failure(
        &vault.take_presignature(&A, &S1).unwrap_err()
    ));
}

#[test]
fn open_refuses_another_keystore_an_unknown_format_and_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap());
    assert!(matches!(
        SledVault::create(dir.path(), file_sealer(dir.path(), false)),
        Err(StoreError::AlreadyExists(_))
    ));
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        SledVault::open(other.path(), file_sealer(other.path(), true)),
        Err(StoreError::NotFound(_))
    ));
    let e = SledVault::open(dir.path(), file_sealer(other.path(), false)).unwrap_err();
    assert!(matches!(e, StoreError::WrongDataKey { .. }), "{e}");
    assert!(e.to_string().contains("wrong keystore"));

    raw(dir.path(), |db| {
        tree(db, "meta")
            .insert("format_version", 2u32.to_be_bytes().as_slice())
            .unwrap();
    });
    assert!(matches!(
        SledVault::open(dir.path(), file_sealer(dir.path(), false)),
        Err(StoreError::UnsupportedFormat {
            found: 2,
            supported: 1
        })
    ));
}

#[test]
fn reservations_left_by_a_crash_are_dropped_at_open_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    {
        let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
        vault.reserve_key(&A, &S1).unwrap();
    }
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    vault.reserve_key(&A, &S2).unwrap();
    let log = vault.audit_log().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event.kind, AuditKind::SessionAborted);
    assert_eq!(log[0].event.session_id, Some(S1));
    assert_eq!(log[0].event.key_id, Some(A));
    assert_eq!(vault.check().unwrap().reservations, 1);
}

/// A store with five audit entries written through `Vault::audit`.
fn audited_store() -> (tempfile::TempDir, [u8; 32]) {
    let dir = tempfile::tempdir().unwrap();
    let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
    for i in 0..5u8 {
        vault
            .audit(AuditEvent {
                kind: AuditKind::PartialSignatureIssued,
                session_id: Some([i; 32]),
                key_id: i.is_multiple_of(2).then_some(A),
                detail: format!("signature {i}"),
            })
            .unwrap();
    }
    let head = match vault.verify_audit().unwrap() {
        ChainReport::Intact { entries: 5, head } => head,
        other => panic!("fresh log: {other:?}"),
    };
    assert_eq!(vault.audit_log().unwrap()[4].hash(), head);
    (dir, head)
}

fn audit_cli(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_signer-node"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn broken_at(dir: &Path) -> (u64, String) {
    match signer_node::store::verify_audit_at(dir).unwrap() {
        ChainReport::Broken { at, reason } => {
            let (ok, stdout) = audit_cli(dir);
            assert!(!ok, "audit verify must exit non-zero: {stdout}");
            assert!(
                stdout.contains(&format!("BROKEN at entry {at}")),
                "{stdout}"
            );
            (at, reason)
        }
        other => panic!("tampering not detected: {other:?}"),
    }
}

fn audit_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

#[test]
fn audit_verify_reports_count_and_head_of_an_intact_log() {
    let (dir, head) = audited_store();
    let (ok, stdout) = audit_cli(dir.path());
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains(&format!("5 entries, head {}", hex::encode(head))),
        "{stdout}"
    );
    let missing = tempfile::tempdir().unwrap();
    assert!(!audit_cli(missing.path()).0);
}

#[test]
fn an_edited_audit_entry_is_detected() {
    let (dir, _) = audited_store();
    raw(dir.path(), |db| {
        let t = tree(db, "audit");
        let mut v = t.get(audit_key(3)).unwrap().unwrap().to_vec();
        let at = v.len() - 32 - 32 - 1; // last byte of the detail
        v[at] ^= 1;
        t.insert(audit_key(3), v).unwrap();
    });
    let (at, reason) = broken_at(dir.path());
    assert_eq!(at, 3);
    assert!(reason.contains("edited"), "{reason}");
}

#[test]
fn an_edited_audit_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let (dir, _) = audited_store();
    raw(dir.path(), |db| {
        let t = tree(db, "audit");
        let v = t.get(audit_key(2)).unwrap().unwrap();
        let mut record = signer_node::store::AuditRecord::decode(&v[..v.len() - 32]).unwrap();
        record.event.detail = "nothing happened".into();
        let mut value = record.encode();
        value.extend_from_slice(&record.hash());
        t.insert(audit_key(2), value).unwrap();
    });
    assert_eq!(broken_at(dir.path()).0, 3);
}

#[test]
fn a_deleted_audit_entry_is_detected_in_the_middle_and_at_the_end() {
    let (dir, _) = audited_store();
    raw(dir.path(), |db| {
        tree(db, "audit").remove(audit_key(2)).unwrap();
    });
    let (at, reason) = broken_at(dir.path());
    assert_eq!(at, 2);
    assert!(reason.contains("missing"), "{reason}");

    let (dir, _) = audited_store();
    raw(dir.path(), |db| {
        tree(db, "audit").remove(audit_key(5)).unwrap();
    });
    let (_, reason) = broken_at(dir.path());
    assert!(reason.contains("head record"), "{reason}");
}

#[test]
fn reordered_audit_entries_are_detected() {
    let (dir, _) = audited_store();
    raw(dir.path(), |db| {
        let t = tree(db, "audit");
        let two = t.get(audit_key(2)).unwrap().unwrap();
        let three = t.get(audit_key(3)).unwrap().unwrap();
        t.insert(audit_key(2), three).unwrap();
        t.insert(audit_key(3), two).unwrap();
    });
    let (at, reason) = broken_at(dir.path());
    assert_eq!(at, 2);
    assert!(reason.contains("moved"), "{reason}");
}

#[test]
fn an_overlong_audit_detail_is_refused_and_changes_nothing() {
    let (dir, head) = audited_store();
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    let e = vault
        .audit(AuditEvent {
            kind: AuditKind::RequestRefused,
            session_id: None,
            key_id: None,
            detail: "x".repeat(signer_node::store::audit::MAX_DETAIL_LEN + 1),
        })
        .unwrap_err();
    assert!(e.to_string().contains("audit detail"));
    assert_eq!(
        vault.verify_audit().unwrap(),
        ChainReport::Intact { entries: 5, head }
    );
}

mod sessions {
    use super::*;
    use custody_proto::signer::v1::{
        session_status_response::Outcome, EcdsaSignature, ProtocolKind, SessionState,
    };
    use signer_node::envelope::SessionId;
    use signer_node::runner::registry::{Registry, RegistryError, Retention, SessionSpec};
    use std::sync::Arc;

    const PENDING: [u8; 32] = [0x51; 32];
    const DONE: [u8; 32] = [0x52; 32];
    const REASON: &str = "interrupted by a restart of signer 1";

    fn spec(kind: ProtocolKind) -> SessionSpec {
        SessionSpec {
            kind,
            phases: vec![kind],
            senders: [2u16].into_iter().collect(),
            max_rounds: 4,
        }
    }

    fn signature() -> Outcome {
        Outcome::Signature(EcdsaSignature {
            r_s: vec![0x33; 64],
            recovery_id: 0,
        })
    }

    /// A node registers two sessions, one ends with a signature, then the process is gone.
    fn run_and_stop(dir: &Path) {
        let vault = Arc::new(SledVault::create(dir, file_sealer(dir, true)).unwrap());
        let registry = Registry::new(vault, Retention::default());
        let _rx1 = registry
            .create(SessionId(PENDING), spec(ProtocolKind::Presign))
            .unwrap();
        let _rx2 = registry
            .create(SessionId(DONE), spec(ProtocolKind::Sign))
            .unwrap();
        registry.set_round(&SessionId(PENDING), 2);
        registry.finish(
            &SessionId(DONE),
            SessionState::Completed,
            Some(signature()),
            None,
        );
    }

    #[test]
    fn sessions_survive_a_restart_and_unfinished_ones_come_back_aborted() {
        let dir = tempfile::tempdir().unwrap();
        run_and_stop(dir.path());

        let vault = Arc::new(SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap());
        let report = vault.abort_interrupted_sessions(REASON).unwrap();
        assert_eq!(report.aborted, vec![PENDING]);
        let registry = Registry::new(vault.clone(), Retention::default());
        let s = registry.status(&SessionId(PENDING)).unwrap().unwrap();
        assert_eq!(s.state, SessionState::Aborted as i32);
        assert_eq!(s.protocol, ProtocolKind::Presign as i32);
        let blame = s.blame.unwrap();
        assert_eq!(blame.reason, REASON);
        assert!(blame.culprits.is_empty());
        let s = registry.status(&SessionId(DONE)).unwrap().unwrap();
        assert_eq!(s.state, SessionState::Completed as i32);
        assert_eq!(s.outcome, Some(signature()));
        // neither id can be used again after the restart
        for id in [PENDING, DONE] {
            assert_eq!(
                registry
                    .create(SessionId(id), spec(ProtocolKind::Sign))
                    .unwrap_err(),
                RegistryError::Exists(SessionId(id))
            );
        }
        let audited = |vault: &SledVault| -> Vec<_> {
            vault
                .audit_log()
                .unwrap()
                .into_iter()
                .filter(|r| r.event.kind == AuditKind::SessionAborted)
                .map(|r| (r.event.session_id, r.event.detail))
                .collect()
        };
        assert_eq!(
            audited(&vault),
            vec![(Some(PENDING), format!("store: {REASON}"))]
        );
        assert_eq!(vault.check().unwrap().sessions, 2);
        drop(registry);
        drop(vault);

        // a second restart finds nothing to abort: audited once
        let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
        assert!(vault
            .abort_interrupted_sessions("interrupted by a restart of signer 1")
            .unwrap()
            .aborted
            .is_empty());
        assert_eq!(audited(&vault).len(), 1);
        assert!(matches!(
            vault.verify_audit().unwrap(),
            ChainReport::Intact { .. }
        ));
    }

    #[test]
    fn a_corrupt_session_record_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        run_and_stop(dir.path());
        let moved = [0x53; 32];
        raw(dir.path(), |db| {
            let sessions = tree(db, "sessions");
            let mut v = sessions.get(DONE).unwrap().unwrap().to_vec();
            // the record copied to another id, and the original edited in its status
            sessions.insert(moved, v.clone()).unwrap();
            let i = v.len() / 2;
            v[i] ^= 0x01;
            sessions.insert(DONE, v).unwrap();
        });
        let vault = Arc::new(SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap());
        for id in [DONE, moved] {
            assert!(matches!(
                vault.session(&id),
                Err(VaultError::SessionRecord(_))
            ));
            // the id stays taken
            assert!(matches!(
                vault.put_session(&id, ProtocolKind::Sign),
                Err(VaultError::SessionExists(_))
            ));
        }
        // start: the interrupted one is aborted, the bad ones reported and left as they are
        let report = vault.abort_interrupted_sessions(REASON).unwrap();
        assert_eq!(report.aborted, vec![PENDING]);
        assert_eq!(report.unreadable.len(), 2);
        assert!(matches!(
            vault.check(),
            Err(StoreError::Corrupt(m)) if m.contains("session record")
        ));
        let registry = Registry::new(vault.clone(), Retention::default());
        assert!(matches!(
            registry.status(&SessionId(DONE)),
            Err(RegistryError::CorruptRecord(_))
        ));
        assert_eq!(
            registry
                .create(SessionId(DONE), spec(ProtocolKind::Sign))
                .unwrap_err(),
            RegistryError::Exists(SessionId(DONE))
        );
    }
}
