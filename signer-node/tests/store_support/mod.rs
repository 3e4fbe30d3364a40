//! Shared by the vault and store tests: real key material from mpc-core (2-of-2 DKG, a
//! refresh to epoch 1, fixture aux info, two presigning runs) and real file-backend sealers
//! (hsm-profiles with its test-only cheap Argon2id).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use hsm_profiles::{FileBackend, Sealer, SecretSource};
use mpc_core::aux_info::{dealt_for_tests, AuxInfo};
use mpc_core::dkg::{DkgConfig, DkgParty, KeyShare};
use mpc_core::presign::{PresignConfig, PresignParty, Presignature};
use mpc_core::protocol::{Committee, Outcome, PartyIndex};
use mpc_core::sim::Sim;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Party 0's records of one 2-of-2 key.
pub struct Material {
    /// Epoch 0 (after the DKG).
    pub share: KeyShare,
    /// The same key at epoch 1 (after one refresh).
    pub refreshed: KeyShare,
    pub aux: AuxInfo,
    /// Two presignatures of epoch 0.
    pub presignatures: Vec<Presignature>,
    /// A presignature of the refreshed key (epoch 1): the vault refuses an epoch-0 one for a
    /// refreshed key (REF-03).
    pub refreshed_presignature: Presignature,
}

fn run_dkg(rng: &mut ChaCha20Rng, session: &[u8], zero: bool) -> Vec<KeyShare> {
    let committee = Committee::standard(2).unwrap();
    let parties = (0..2)
        .map(|i| {
            let cfg = DkgConfig {
                session_id: session.to_vec(),
                committee: committee.clone(),
                threshold: 2,
                me: PartyIndex::new(i),
            };
            if zero {
                DkgParty::new_zero_sharing(cfg, rng).unwrap()
            } else {
                DkgParty::new(cfg, rng).unwrap()
            }
        })
        .collect();
    Sim::new(parties)
        .run(rng)
        .outcomes
        .into_iter()
        .map(|o| match o {
            Some(Outcome::Output(k)) => k,
            other => panic!("honest DKG: {other:?}"),
        })
        .collect()
}

/// Party 0's share (epoch 0 and 1), aux info and two presignatures of a 2-of-2 key, made
/// once per test binary.
pub fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(make_material)
}

fn make_material() -> Material {
    let mut rng = ChaCha20Rng::seed_from_u64(0x7a01);
    let keys = run_dkg(&mut rng, b"vault-dkg", false);
    let zero = run_dkg(&mut rng, b"vault-refresh", true);
    let refreshed_keys: Vec<KeyShare> = keys
        .iter()
        .zip(&zero)
        .map(|(k, z)| k.refresh(z).unwrap())
        .collect();
    let refreshed = keys[0].refresh(&zero[0]).unwrap();
    let aux: Vec<Arc<AuxInfo>> = dealt_for_tests(2, b"vault-aux", &mut rng)
        .into_iter()
        .map(Arc::new)
        .collect();
    let mut presignatures = Vec::new();
    for (sid, epoch) in [
        (b"vault-presign-1".as_slice(), 0u64),
        (b"vault-presign-2", 0),
        (b"vault-presign-3", 1),
    ] {
        let holders = if epoch == 0 { &keys } else { &refreshed_keys };
        let parties = (0..2u16)
            .map(|i| {
                let cfg = PresignConfig {
                    session_id: sid.to_vec(),
                    key_id: b"vault-key".to_vec(),
                    epoch,
                    signers: vec![PartyIndex::new(0), PartyIndex::new(1)],
                    path: "m/0".parse().unwrap(),
                };
                let i = usize::from(i);
                PresignParty::new(cfg, &holders[i], Arc::clone(&aux[i]), &mut rng).unwrap()
            })
            .collect();
        let out = Sim::new(parties).run(&mut rng).outcomes.swap_remove(0);
        match out {
            Some(Outcome::Output(p)) => presignatures.push(p),
            other => panic!("honest presigning: {other:?}"),
        }
    }
    let aux0 = Arc::try_unwrap(aux.into_iter().next().unwrap()).unwrap();
    let refreshed_presignature = presignatures.pop().unwrap();
    Material {
        share: keys.into_iter().next().unwrap(),
        refreshed,
        aux: aux0,
        presignatures,
        refreshed_presignature,
    }
}

/// A file-backend sealer whose keystore and passphrase file live in `dir` (a node's data
/// directory): `init` creates the keystore, otherwise it is opened.
pub fn file_sealer(dir: &Path, init: bool) -> Arc<dyn Sealer> {
    let pass = dir.join("seal.pass");
    if !pass.exists() {
        std::fs::write(&pass, format!("test passphrase for {}", dir.display())).unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let backend =
        FileBackend::with_insecure_test_kdf(dir.join("sealing.keystore"), SecretSource::File(pass));
    Arc::new(if init {
        backend.init().unwrap()
    } else {
        backend.open().unwrap()
    })
}
