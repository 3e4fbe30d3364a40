//! The rules of `signer_node::vault::Vault` (module docs), checked against every
//! implementation with one generic function, with real key shares, aux info and
//! presignatures from mpc-core (2-of-2 DKG, fixture aux info, one presigning run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use mpc_core::aux_info::{dealt_for_tests, AuxInfo};
use mpc_core::dkg::{DkgConfig, DkgParty, KeyShare};
use mpc_core::presign::{PresignConfig, PresignParty, Presignature};
use mpc_core::protocol::{Committee, Outcome, PartyIndex};
use mpc_core::sim::Sim;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use signer_node::vault::{AuditEvent, AuditKind, MemoryVault, Vault, VaultError};

struct Material {
    share: KeyShare,
    aux: AuxInfo,
    presignatures: Vec<Presignature>,
}

/// Party 0's share, aux info and two presignatures of a 2-of-2 key.
fn material() -> Material {
    let mut rng = ChaCha20Rng::seed_from_u64(0x7a01);
    let committee = Committee::standard(2).unwrap();
    let parties = (0..2)
        .map(|i| {
            let cfg = DkgConfig {
                session_id: b"vault-dkg".to_vec(),
                committee: committee.clone(),
                threshold: 2,
                me: PartyIndex::new(i),
            };
            DkgParty::new(cfg, &mut rng).unwrap()
        })
        .collect();
    let keys: Vec<KeyShare> = Sim::new(parties)
        .run(&mut rng)
        .outcomes
        .into_iter()
        .map(|o| match o {
            Some(Outcome::Output(k)) => k,
            other => panic!("honest DKG: {other:?}"),
        })
        .collect();
    let aux: Vec<Arc<AuxInfo>> = dealt_for_tests(2, b"vault-aux", &mut rng)
        .into_iter()
        .map(Arc::new)
        .collect();
    let mut presignatures = Vec::new();
    for sid in [b"vault-presign-1".as_slice(), b"vault-presign-2"] {
        let parties = (0..2u16)
            .map(|i| {
                let cfg = PresignConfig {
                    session_id: sid.to_vec(),
                    key_id: b"vault-key".to_vec(),
                    epoch: 0,
                    signers: vec![PartyIndex::new(0), PartyIndex::new(1)],
                    path: "m/0".parse().unwrap(),
                };
                let i = usize::from(i);
                PresignParty::new(cfg, &keys[i], Arc::clone(&aux[i]), &mut rng).unwrap()
            })
            .collect();
        let out = Sim::new(parties).run(&mut rng).outcomes.swap_remove(0);
        match out {
            Some(Outcome::Output(p)) => presignatures.push(p),
            other => panic!("honest presigning: {other:?}"),
        }
    }
    let aux0 = Arc::try_unwrap(aux.into_iter().next().unwrap()).unwrap();
    Material {
        share: keys.into_iter().next().unwrap(),
        aux: aux0,
        presignatures,
    }
}

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
}

#[test]
fn memory_vault_keeps_the_rules() {
    let m = material();
    let vault = MemoryVault::new();
    check_vault(&vault, &m);
    assert_eq!(vault.audit_log().len(), 1);
}
