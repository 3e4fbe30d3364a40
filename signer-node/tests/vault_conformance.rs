//! The rules of `signer_node::vault::Vault` (module docs), checked against every
//! implementation with one generic function, with real key shares, aux info and
//! presignatures from mpc-core (2-of-2 DKG, fixture aux info, one presigning run): the
//! in-memory vault and the sealed sled store (real files, real file-backend sealing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod store_support;

use custody_proto::signer::v1::{
    session_status_response::Outcome, Blame, EcdsaSignature, ProtocolKind, SessionState,
    SessionStatusResponse,
};
use signer_node::store::SledVault;
use signer_node::vault::{AuditEvent, AuditKind, MemoryVault, Vault, VaultError};
use store_support::{file_sealer, material, Material};

fn check_vault<V: Vault>(vault: &V, m: &Material) {
    let key = [7u8; 32];
    let other = [8u8; 32];
    let (s1, s2) = ([1u8; 32], [2u8; 32]);

    // no key without a reservation; a reservation is exclusive
    assert!(matches!(
        vault.store_key(&key, &m.share, &m.aux),
        Err(VaultError::NoSuchKey(_))
    ));
    vault.reserve_key(&key, &s1).unwrap();
    assert!(matches!(
        vault.reserve_key(&key, &s2),
        Err(VaultError::KeyReserved(_))
    ));
    vault.store_key(&key, &m.share, &m.aux).unwrap();
    // never overwritten by a second DKG, nor by a share of the same epoch
    assert!(matches!(
        vault.reserve_key(&key, &s2),
        Err(VaultError::KeyExists(_))
    ));
    assert!(matches!(
        vault.store_key(&key, &m.share, &m.aux),
        Err(VaultError::StaleEpoch {
            have: 0,
            got: 0,
            ..
        })
    ));
    // a released reservation frees the id
    vault.reserve_key(&other, &s2).unwrap();
    vault.release_reservation(&other).unwrap();
    vault.reserve_key(&other, &s2).unwrap();
    vault.release_reservation(&other).unwrap();
    assert_eq!(vault.list_keys().unwrap(), vec![key]);

    let (share, aux) = vault.load_key(&key).unwrap().unwrap();
    assert_eq!(share.public_key(), m.share.public_key());
    assert_eq!(aux.to_bytes().as_slice(), m.aux.to_bytes().as_slice());
    assert!(vault.load_key(&other).unwrap().is_none());

    // presignatures: only for existing keys, consumed once
    assert!(matches!(
        vault.put_presignature(&other, &s1, &m.presignatures[0]),
        Err(VaultError::NoSuchKey(_))
    ));
    vault
        .put_presignature(&key, &s1, &m.presignatures[0])
        .unwrap();
    vault
        .put_presignature(&key, &s2, &m.presignatures[1])
        .unwrap();
    assert_eq!(vault.presignatures(&key).unwrap(), vec![s1, s2]);
    // an id names one presignature for good: never replaced
    assert!(matches!(
        vault.put_presignature(&key, &s1, &m.presignatures[1]),
        Err(VaultError::PresignatureExists { .. })
    ));
    let taken = vault.take_presignature(&key, &s1).unwrap().unwrap();
    assert_eq!(
        taken.to_bytes().as_slice(),
        m.presignatures[0].to_bytes().as_slice()
    );
    assert!(
        vault.take_presignature(&key, &s1).unwrap().is_none(),
        "used once"
    );
    assert_eq!(vault.presignatures(&key).unwrap(), vec![s2]);

    vault
        .audit(AuditEvent {
            kind: AuditKind::PresignatureConsumed,
            session_id: Some(s1),
            key_id: Some(key),
            detail: "test".into(),
        })
        .unwrap();

    // REF-02 / REF-03: a refresh erases the pool, and a presignature of the old epoch that
    // arrives afterwards (a presigning session that ended late) is refused
    vault.store_key(&key, &m.refreshed, &m.aux).unwrap();
    assert!(vault.presignatures(&key).unwrap().is_empty());
    let late = [3u8; 32];
    assert!(matches!(
        vault.put_presignature(&key, &late, &m.presignatures[1]),
        Err(VaultError::EpochMismatch {
            have: 1,
            got: 0,
            ..
        })
    ));
    assert!(vault.presignatures(&key).unwrap().is_empty());

    // RES-02: retiring names the epoch held; another epoch or an absent key changes nothing
    assert!(matches!(
        vault.retire_key(&key, 0, &s2),
        Err(VaultError::EpochMismatch {
            have: 1,
            got: 0,
            ..
        })
    ));
    assert!(matches!(
        vault.retire_key(&other, 1, &s2),
        Err(VaultError::NoSuchKey(_))
    ));
    assert_eq!(vault.list_keys().unwrap(), vec![key]);
    vault.retire_key(&key, 1, &s2).unwrap();
    assert!(vault.list_keys().unwrap().is_empty());
    assert!(vault.load_key(&key).unwrap().is_none());
    assert!(matches!(
        vault.retire_key(&key, 1, &s2),
        Err(VaultError::NoSuchKey(_))
    ));
    // nothing of the key is left to presign with
    assert!(matches!(
        vault.put_presignature(&key, &late, &m.presignatures[1]),
        Err(VaultError::NoSuchKey(_))
    ));
}

#[test]
fn memory_vault_keeps_the_rules() {
    let m = material();
    let vault = MemoryVault::new();
    check_vault(&vault, m);
    // the vault's own entries (key created, two presignatures added, one consumed) and the
    // caller's one
    let kinds: Vec<AuditKind> = vault.audit_log().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            AuditKind::KeyCreated,
            AuditKind::PresignatureAdded,
            AuditKind::PresignatureAdded,
            AuditKind::PresignatureConsumed,
            AuditKind::PresignatureConsumed,
            AuditKind::KeyRefreshed,
            AuditKind::KeyRetired,
        ]
    );
}

#[test]
fn sled_vault_keeps_the_rules() {
    let m = material();
    let dir = tempfile::tempdir().unwrap();
    let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
    check_vault(&vault, m);
    // the store audits its own changes (created, 2 added, 1 consumed) beside the caller's entry
    let log = vault.audit_log().unwrap();
    let kinds: Vec<AuditKind> = log.iter().map(|r| r.event.kind).collect();
    assert_eq!(
        kinds,
        [
            AuditKind::KeyCreated,
            AuditKind::PresignatureAdded,
            AuditKind::PresignatureAdded,
            AuditKind::PresignatureConsumed,
            AuditKind::PresignatureConsumed,
            AuditKind::KeyRefreshed,
            AuditKind::KeyRetired,
        ]
    );
    assert_eq!(log[4].event.detail, "test");
    assert_eq!(log[6].event.session_id, Some([2u8; 32]));
    assert_eq!(vault.check().unwrap().presignatures, 0);
}

#[test]
fn sled_vault_keeps_everything_across_a_restart() {
    let m = material();
    let dir = tempfile::tempdir().unwrap();
    let key = [7u8; 32];
    let (s1, s2) = ([1u8; 32], [2u8; 32]);
    {
        let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
        vault.reserve_key(&key, &s1).unwrap();
        vault.store_key(&key, &m.share, &m.aux).unwrap();
        vault
            .put_presignature(&key, &s1, &m.presignatures[0])
            .unwrap();
        vault
            .put_presignature(&key, &s2, &m.presignatures[1])
            .unwrap();
        assert!(vault.take_presignature(&key, &s1).unwrap().is_some());
    }
    // a fresh sealer: the keystore opened again from its file and passphrase
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert_eq!(vault.list_keys().unwrap(), vec![key]);
    let (share, aux) = vault.load_key(&key).unwrap().unwrap();
    assert_eq!(share.to_bytes().as_slice(), m.share.to_bytes().as_slice());
    assert_eq!(aux.to_bytes().as_slice(), m.aux.to_bytes().as_slice());
    assert_eq!(
        vault.presignatures(&key).unwrap(),
        vec![s2],
        "consumed stays consumed"
    );
    assert!(vault.take_presignature(&key, &s1).unwrap().is_none());
    let p = vault.take_presignature(&key, &s2).unwrap().unwrap();
    assert_eq!(
        p.to_bytes().as_slice(),
        m.presignatures[1].to_bytes().as_slice()
    );
    assert!(matches!(
        vault.reserve_key(&key, &s2),
        Err(VaultError::KeyExists(_))
    ));
    assert_eq!(vault.check().unwrap().audit_entries, 5);
}

#[test]
fn sled_vault_a_retired_key_stays_retired_across_a_restart() {
    let m = material();
    let dir = tempfile::tempdir().unwrap();
    let key = [7u8; 32];
    let (s1, s2) = ([1u8; 32], [2u8; 32]);
    {
        let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
        vault.reserve_key(&key, &s1).unwrap();
        vault.store_key(&key, &m.share, &m.aux).unwrap();
        vault
            .put_presignature(&key, &s1, &m.presignatures[0])
            .unwrap();
        vault.retire_key(&key, 0, &s2).unwrap();
    }
    let vault = SledVault::open(dir.path(), file_sealer(dir.path(), false)).unwrap();
    assert!(vault.list_keys().unwrap().is_empty());
    assert!(vault.load_key(&key).unwrap().is_none());
    assert!(vault.take_presignature(&key, &s1).unwrap().is_none());
    let report = vault.check().unwrap();
    // created, presignature added, retired
    assert_eq!((report.presignatures, report.audit_entries), (0, 3));
    let log = vault.audit_log().unwrap();
    let last = &log[2].event;
    assert_eq!(
        (last.kind, last.key_id, last.session_id),
        (AuditKind::KeyRetired, Some(key), Some(s2))
    );
    assert!(last.detail.contains("1 presignatures erased"), "{last:?}");
}

fn ended(id: &[u8; 32], kind: ProtocolKind, state: SessionState) -> SessionStatusResponse {
    SessionStatusResponse {
        session_id: id.to_vec(),
        protocol: kind as i32,
        state: state as i32,
        round: 1,
        outcome: (state == SessionState::Completed).then(|| {
            Outcome::Signature(EcdsaSignature {
                r_s: vec![0x5a; 64],
                recovery_id: 1,
            })
        }),
        blame: (state != SessionState::Completed).then(|| Blame {
            culprits: vec![3],
            reason: "test".into(),
            evidence: vec![vec![1, 2, 3]],
        }),
    }
}

/// The session-record rules: recorded once, ended once, read back; interrupted ones aborted.
fn check_sessions<V: Vault>(vault: &V) {
    let (a, b, c, d) = ([0xa0u8; 32], [0xb0u8; 32], [0xc0u8; 32], [0xd0u8; 32]);
    assert!(vault.session(&a).unwrap().is_none());
    vault.put_session(&a, ProtocolKind::Sign).unwrap();
    let pending = vault.session(&a).unwrap().unwrap();
    assert_eq!(pending.state(), SessionState::Pending);
    assert_eq!(pending.status.protocol, ProtocolKind::Sign as i32);
    assert_eq!(pending.status.session_id, a.to_vec());
    assert!(pending.ended_ms.is_none());
    // a known id is refused, whatever its kind
    assert!(matches!(
        vault.put_session(&a, ProtocolKind::Presign),
        Err(VaultError::SessionExists(id)) if id == a
    ));

    // ends that are refused change nothing
    for bad in [
        ended(&a, ProtocolKind::Sign, SessionState::Running),
        ended(&a, ProtocolKind::Presign, SessionState::Completed),
        ended(&b, ProtocolKind::Sign, SessionState::Completed),
    ] {
        assert!(
            matches!(
                vault.end_session(&a, &bad),
                Err(VaultError::SessionEnd { .. })
            ),
            "{bad:?}"
        );
        assert_eq!(vault.session(&a).unwrap().unwrap(), pending);
    }
    assert!(matches!(
        vault.end_session(&b, &ended(&b, ProtocolKind::Sign, SessionState::Completed)),
        Err(VaultError::NoSuchSession(_))
    ));
    assert!(vault.session(&b).unwrap().is_none());

    let done = ended(&a, ProtocolKind::Sign, SessionState::Completed);
    vault.end_session(&a, &done).unwrap();
    let record = vault.session(&a).unwrap().unwrap();
    assert_eq!(record.status, done);
    assert_eq!(record.created_ms, pending.created_ms);
    assert!(record.ended_ms.is_some());
    // ended once; still refused as an id; not withdrawn
    assert!(matches!(
        vault.end_session(&a, &ended(&a, ProtocolKind::Sign, SessionState::Aborted)),
        Err(VaultError::SessionEnd { .. })
    ));
    assert!(matches!(
        vault.put_session(&a, ProtocolKind::Sign),
        Err(VaultError::SessionExists(_))
    ));
    assert!(matches!(
        vault.withdraw_session(&a),
        Err(VaultError::SessionEnd { .. })
    ));
    assert_eq!(vault.session(&a).unwrap().unwrap().status, done);

    // a withdrawn session (refused before it ran) frees its id
    vault.put_session(&b, ProtocolKind::Presign).unwrap();
    vault.withdraw_session(&b).unwrap();
    assert!(vault.session(&b).unwrap().is_none());
    vault.withdraw_session(&b).unwrap();
    vault.put_session(&b, ProtocolKind::Presign).unwrap();

    // b (PENDING) and c (PENDING) were interrupted; a and d ended: only b and c are aborted
    vault.put_session(&c, ProtocolKind::Dkg).unwrap();
    vault.put_session(&d, ProtocolKind::Refresh).unwrap();
    let expired = ended(&d, ProtocolKind::Refresh, SessionState::Expired);
    vault.end_session(&d, &expired).unwrap();
    let report = vault
        .abort_interrupted_sessions("interrupted by a restart of signer 4")
        .unwrap();
    assert_eq!(report.aborted, vec![b, c]);
    assert!(report.unreadable.is_empty());
    for (id, kind) in [(b, ProtocolKind::Presign), (c, ProtocolKind::Dkg)] {
        let r = vault.session(&id).unwrap().unwrap();
        assert_eq!(r.state(), SessionState::Aborted);
        assert_eq!(r.status.protocol, kind as i32);
        let blame = r.status.blame.unwrap();
        assert_eq!(blame.reason, "interrupted by a restart of signer 4");
        assert!(blame.culprits.is_empty() && blame.evidence.is_empty());
        assert!(r.ended_ms.is_some());
    }
    assert_eq!(vault.session(&a).unwrap().unwrap().status, done);
    assert_eq!(vault.session(&d).unwrap().unwrap().status, expired);
    // once: nothing is left to abort
    let again = vault.abort_interrupted_sessions("again").unwrap();
    assert!(again.aborted.is_empty());
}

#[test]
fn memory_vault_keeps_the_session_rules() {
    let vault = MemoryVault::new();
    check_sessions(&vault);
    let aborted: Vec<_> = vault
        .audit_log()
        .into_iter()
        .filter(|e| e.kind == AuditKind::SessionAborted)
        .map(|e| e.session_id)
        .collect();
    assert_eq!(aborted, vec![Some([0xb0; 32]), Some([0xc0; 32])]);
}

#[test]
fn sled_vault_keeps_the_session_rules() {
    let dir = tempfile::tempdir().unwrap();
    let vault = SledVault::create(dir.path(), file_sealer(dir.path(), true)).unwrap();
    check_sessions(&vault);
    let log = vault.audit_log().unwrap();
    let aborted: Vec<_> = log
        .iter()
        .filter(|r| r.event.kind == AuditKind::SessionAborted)
        .map(|r| r.event.session_id)
        .collect();
    assert_eq!(aborted, vec![Some([0xb0; 32]), Some([0xc0; 32])]);
    let report = vault.check().unwrap();
    assert_eq!(report.sessions, 4);
}
