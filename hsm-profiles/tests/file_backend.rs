//! The file backend through its public API: real keystore files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;

use hsm_profiles::{
    BackendKind, FileBackend, KdfParams, KeystoreError, SealAad, SealError, Sealer, SecretSource,
    SecretSourceError,
};
use support::secret_file;

fn backend(dir: &std::path::Path, passphrase: &[u8]) -> FileBackend {
    let pass = secret_file(dir, "passphrase", passphrase);
    FileBackend::with_insecure_test_kdf(dir.join("sealing.keystore"), SecretSource::File(pass))
}

#[test]
fn seal_open_round_trip_and_reopen_from_a_new_object() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path(), b"a long test passphrase");
    let sealer = b.init().unwrap();
    assert_eq!(sealer.kind(), BackendKind::File);
    let aad = SealAad::new("share", b"key-1").unwrap();
    let blob = sealer.seal(&aad, b"share bytes").unwrap();
    assert_eq!(
        sealer.open(&aad, blob.as_bytes()).unwrap().as_slice(),
        b"share bytes"
    );
    let id = sealer.data_key_id();
    drop(sealer);

    // A new backend object reading the same files opens the old blob.
    let reopened = backend(dir.path(), b"a long test passphrase")
        .open()
        .unwrap();
    assert_eq!(reopened.data_key_id(), id);
    assert_eq!(
        reopened.open(&aad, blob.as_bytes()).unwrap().as_slice(),
        b"share bytes"
    );
    assert!(reopened.describe().contains("file backend"));
    assert!(reopened.describe().contains(&id.to_string()));
}

#[test]
fn another_record_kind_key_id_or_context_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let sealer = backend(dir.path(), b"pass").init().unwrap();
    let aad = SealAad::new("share", b"key-1").unwrap();
    let blob = sealer.seal(&aad, b"secret").unwrap();
    for other in [
        SealAad::new("share", b"key-2").unwrap(),
        SealAad::new("aux", b"key-1").unwrap(),
        SealAad::new("share", b"key-1")
            .unwrap()
            .with_context(b"v2")
            .unwrap(),
        SealAad::new("share", b"").unwrap(),
    ] {
        assert!(matches!(
            sealer.open(&other, blob.as_bytes()),
            Err(SealError::Authentication)
        ));
    }
}

#[test]
fn flipped_bits_in_header_nonce_or_ciphertext_fail() {
    let dir = tempfile::tempdir().unwrap();
    let sealer = backend(dir.path(), b"pass").init().unwrap();
    let aad = SealAad::new("presignature", b"key-1").unwrap();
    let blob = sealer.seal(&aad, b"nonce shares").unwrap().into_vec();
    // version, backend, AEAD id, data key id, nonce, ciphertext, tag
    for i in [0usize, 1, 2, 3, 18, 19, 42, 43, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 0x80;
        assert!(sealer.open(&aad, &bad).is_err(), "flip at {i} accepted");
    }
    let mut bad = blob.clone();
    bad[0] = 2;
    assert!(matches!(
        sealer.open(&aad, &bad),
        Err(SealError::UnsupportedVersion(2))
    ));
    let mut bad = blob.clone();
    bad[1] = 2;
    assert!(matches!(
        sealer.open(&aad, &bad),
        Err(SealError::WrongBackend { .. })
    ));
    let mut bad = blob.clone();
    bad[5] ^= 1;
    assert!(matches!(
        sealer.open(&aad, &bad),
        Err(SealError::WrongDataKey { .. })
    ));
    assert!(matches!(
        sealer.open(&aad, &blob[..50]),
        Err(SealError::Malformed(_))
    ));
    assert!(matches!(
        sealer.open(&aad, &[]),
        Err(SealError::Malformed(_))
    ));
}

#[test]
fn a_blob_from_another_keystore_does_not_open() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = backend(a.path(), b"same passphrase").init().unwrap();
    let sb = backend(b.path(), b"same passphrase").init().unwrap();
    let aad = SealAad::new("share", b"k").unwrap();
    let blob = sa.seal(&aad, b"x").unwrap();
    assert!(matches!(
        sb.open(&aad, blob.as_bytes()),
        Err(SealError::WrongDataKey { .. })
    ));
}

#[test]
fn wrong_passphrase_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    backend(dir.path(), b"right-Xy7").init().unwrap();
    fs::remove_file(dir.path().join("passphrase")).unwrap();
    let err = backend(dir.path(), b"wrong-Qz9").open().unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassphrase(_)), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("Xy7") && !text.contains("Qz9"), "{text}");
}

#[test]
fn truncated_edited_or_garbage_keystores_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path(), b"pass");
    b.init().unwrap();
    let path = b.keystore_path().to_owned();
    let good = fs::read(&path).unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("garbage", vec![0x42; 200]),
        ("edited salt", {
            let mut v = good.clone();
            v[60] ^= 1;
            v
        }),
        ("appended", {
            let mut v = good.clone();
            v.push(0);
            v
        }),
    ];
    for (name, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        let err = b.open().unwrap_err();
        assert!(
            matches!(err, KeystoreError::Corrupt { .. }),
            "{name}: expected Corrupt, got {err}"
        );
    }
    fs::write(&path, &good).unwrap();
    b.open().unwrap();
}

#[test]
fn an_edited_keystore_with_a_fixed_checksum_does_not_unwrap() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path(), b"pass");
    b.init().unwrap();
    let good = fs::read(b.keystore_path()).unwrap();
    // Edit the data key id in the header and recompute the checksum: the wrap's AAD covers
    // the header, so unwrapping fails (reported as a wrong passphrase, as documented).
    let mut bad = good.clone();
    bad[20] ^= 1;
    support::fix_checksum(&mut bad);
    fs::write(b.keystore_path(), &bad).unwrap();
    assert!(matches!(b.open(), Err(KeystoreError::WrongPassphrase(_))));
    // A raised m_cost (offset 37..41) is equally caught.
    let mut bad = good.clone();
    bad[38] ^= 1;
    support::fix_checksum(&mut bad);
    fs::write(b.keystore_path(), &bad).unwrap();
    assert!(matches!(b.open(), Err(KeystoreError::WrongPassphrase(_))));
}

#[test]
fn init_refuses_an_existing_keystore_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path(), b"pass");
    let first = b.init().unwrap();
    let before = fs::read(b.keystore_path()).unwrap();
    let err = b.init().unwrap_err();
    assert!(matches!(err, KeystoreError::AlreadyExists(_)), "{err}");
    assert_eq!(fs::read(b.keystore_path()).unwrap(), before);
    assert_eq!(b.open().unwrap().data_key_id(), first.data_key_id());
}

#[test]
fn open_without_a_keystore_and_empty_or_missing_passphrases_fail() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path(), b"pass");
    assert!(matches!(b.open(), Err(KeystoreError::NotFound(_))));

    let empty = backend(dir.path(), b"");
    assert!(matches!(
        empty.init(),
        Err(KeystoreError::Secret(SecretSourceError::Empty(_)))
    ));
    let env = FileBackend::with_insecure_test_kdf(
        dir.path().join("env.keystore"),
        SecretSource::Env("HSM_PROFILES_TEST_UNSET_PASSPHRASE_VAR".into()),
    );
    assert!(matches!(
        env.init(),
        Err(KeystoreError::Secret(SecretSourceError::EnvMissing(_)))
    ));
    // Nothing was created by the failed attempts.
    assert!(!dir.path().join("env.keystore").exists());
    assert!(!dir.path().join("sealing.keystore").exists());
}

#[test]
fn production_parameters_round_trip_and_refuse_weak_keystores() {
    let dir = tempfile::tempdir().unwrap();
    let pass = secret_file(dir.path(), "passphrase", b"production passphrase");
    let prod = FileBackend::new(
        dir.path().join("prod.keystore"),
        SecretSource::File(pass.clone()),
    );
    assert_eq!(prod.kdf_params(), KdfParams::PRODUCTION);
    let sealer = prod.init().unwrap();
    let aad = SealAad::new("share", b"k").unwrap();
    let blob = sealer.seal(&aad, b"x").unwrap();
    assert_eq!(
        prod.open()
            .unwrap()
            .open(&aad, blob.as_bytes())
            .unwrap()
            .as_slice(),
        b"x"
    );

    // A keystore made with the test parameters is refused by a production backend.
    let weak_path = dir.path().join("weak.keystore");
    FileBackend::with_insecure_test_kdf(&weak_path, SecretSource::File(pass.clone()))
        .init()
        .unwrap();
    let err = FileBackend::new(&weak_path, SecretSource::File(pass))
        .open()
        .unwrap_err();
    assert!(
        matches!(err, KeystoreError::WeakKdfParameters { .. }),
        "{err}"
    );
}
