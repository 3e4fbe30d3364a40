//! Every shipped profile parses; the dev-file profile seals and reopens with the production
//! Argon2id parameters through `Profile::init_sealer` / `open_sealer`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use hsm_profiles::{
    BackendKind, MemoryLock, Profile, SealAad, Sealer, SealingSettings, SecretSource,
};

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

#[test]
fn every_shipped_profile_parses() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(profiles_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".toml") || name.ends_with(".toml.example")) {
            continue;
        }
        let profile = Profile::load(&path).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(profile.description().is_some(), "{name} has a description");
        // Shipped profiles keep the hardened defaults.
        let h = profile.hardening();
        assert!(h.disable_core_dumps && h.not_dumpable, "{name}");
        assert_eq!(h.lock_memory, MemoryLock::Auto, "{name}");
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "dev-file.toml",
            "production-hsm.toml.example",
            "softhsm.toml"
        ],
        "a new profile file needs a line in README.md and in this test"
    );
}

#[test]
fn production_template_reads_the_pin_from_a_file() {
    let p = Profile::load(&profiles_dir().join("production-hsm.toml.example")).unwrap();
    assert_eq!(p.backend_kind(), BackendKind::Pkcs11);
    let SealingSettings::Pkcs11 { pin, module, .. } = p.sealing() else {
        unreachable!("the production template selects pkcs11")
    };
    assert!(module.is_absolute());
    assert!(matches!(pin, SecretSource::File(p) if p.is_absolute()));
}

#[test]
fn dev_file_profile_seals_and_reopens_with_production_parameters() {
    let p = Profile::load(&profiles_dir().join("dev-file.toml")).unwrap();
    let SealingSettings::File {
        passphrase: SecretSource::Env(var),
        ..
    } = p.sealing()
    else {
        unreachable!("dev-file.toml reads the passphrase from the environment")
    };
    // This binary's only test that touches the variable.
    std::env::set_var(var, "dev passphrase for the profile test");
    let data_dir = tempfile::tempdir().unwrap();
    let sealer = p.init_sealer(data_dir.path()).unwrap();
    let aad = SealAad::new("share", b"key-1").unwrap();
    let blob = sealer.seal(&aad, b"secret").unwrap();
    let reopened = p.open_sealer(data_dir.path()).unwrap();
    assert_eq!(
        reopened.open(&aad, blob.as_bytes()).unwrap().as_slice(),
        b"secret"
    );
    assert!(p.keystore_path(data_dir.path()).exists());
    assert!(
        p.init_sealer(data_dir.path()).is_err(),
        "second init refused"
    );
}
