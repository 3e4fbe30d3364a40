//! The pkcs11 backend against a real SoftHSM2 (install it with scripts/install-softhsm.sh;
//! these tests fail, they do not skip, when it is missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hsm_profiles::{
    BackendKind, KeystoreError, Pkcs11Backend, Pkcs11Settings, Profile, SealAad, SealError, Sealer,
    SecretSource,
};
use support::softhsm::{lock, softhsm, USER_PIN};

fn backend(dir: &Path, token: &str, key: &str) -> Pkcs11Backend {
    let hsm = softhsm();
    Pkcs11Backend::new(
        dir.join("sealing.keystore"),
        Pkcs11Settings {
            module: hsm.module.clone(),
            token_label: token.into(),
            key_label: key.into(),
            pin: SecretSource::File(hsm.pin_file(dir)),
        },
    )
}

/// Runs `f` on a logged-in session of `token` (direct cryptoki use, to inspect the token).
fn with_session<T>(token: &str, f: impl FnOnce(&cryptoki::session::Session) -> T) -> T {
    let pkcs11 = Pkcs11::new(&softhsm().module).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).unwrap().label() == token)
        .expect("token exists");
    let out = {
        let session = pkcs11.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&AuthPin::from(USER_PIN.to_owned())))
            .unwrap();
        f(&session)
    };
    pkcs11.finalize().unwrap();
    out
}

#[test]
fn seal_open_round_trip_and_reopen_from_a_new_object() {
    let _g = lock();
    softhsm().new_token("roundtrip");
    let dir = tempfile::tempdir().unwrap();
    let sealer = backend(dir.path(), "roundtrip", "kek").init().unwrap();
    assert_eq!(sealer.kind(), BackendKind::Pkcs11);
    let aad = SealAad::new("share", b"key-7").unwrap();
    let blob = sealer.seal(&aad, b"share bytes").unwrap();
    assert_eq!(
        sealer.open(&aad, blob.as_bytes()).unwrap().as_slice(),
        b"share bytes"
    );
    let id = sealer.data_key_id();
    drop(sealer);

    let reopened = backend(dir.path(), "roundtrip", "kek").open().unwrap();
    assert_eq!(reopened.data_key_id(), id);
    assert_eq!(
        reopened.open(&aad, blob.as_bytes()).unwrap().as_slice(),
        b"share bytes"
    );
    assert!(reopened.describe().contains("\"roundtrip\""));
    for other in [
        SealAad::new("share", b"key-8").unwrap(),
        SealAad::new("aux", b"key-7").unwrap(),
    ] {
        assert!(matches!(
            reopened.open(&other, blob.as_bytes()),
            Err(SealError::Authentication)
        ));
    }
    let mut bad = blob.into_vec();
    bad[2] ^= 1;
    assert!(reopened.open(&aad, &bad).is_err());
}

#[test]
fn token_key_is_sensitive_and_not_extractable() {
    let _g = lock();
    softhsm().new_token("extract");
    let dir = tempfile::tempdir().unwrap();
    backend(dir.path(), "extract", "kek").init().unwrap();
    with_session("extract", |session| {
        let keys = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(b"kek".to_vec()),
            ])
            .unwrap();
        assert_eq!(keys.len(), 1);
        let info = session
            .get_attribute_info(keys[0], &[AttributeType::Value])
            .unwrap();
        assert!(
            matches!(info.as_slice(), [AttributeInfo::Sensitive]),
            "CKA_VALUE must not be readable: {info:?}"
        );
        let attrs = session
            .get_attributes(
                keys[0],
                &[
                    AttributeType::Extractable,
                    AttributeType::Sensitive,
                    AttributeType::Token,
                    AttributeType::NeverExtractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::ValueLen,
                ],
            )
            .unwrap();
        for attr in attrs {
            match attr {
                Attribute::Extractable(v) => assert!(!v, "CKA_EXTRACTABLE"),
                Attribute::Sensitive(v) => assert!(v, "CKA_SENSITIVE"),
                Attribute::Token(v) => assert!(v, "CKA_TOKEN"),
                Attribute::NeverExtractable(v) => assert!(v, "CKA_NEVER_EXTRACTABLE"),
                Attribute::AlwaysSensitive(v) => assert!(v, "CKA_ALWAYS_SENSITIVE"),
                Attribute::ValueLen(v) => assert_eq!(u64::from(v), 32, "AES-256"),
                other => unreachable!("unexpected attribute {other:?}"),
            }
        }
    });
}

#[test]
fn second_init_with_the_same_label_is_refused() {
    let _g = lock();
    softhsm().new_token("twice");
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let sealer = backend(first.path(), "twice", "kek").init().unwrap();
    // Same keystore path: refused before the token is touched.
    let err = backend(first.path(), "twice", "kek").init().unwrap_err();
    assert!(matches!(err, KeystoreError::AlreadyExists(_)), "{err}");
    // New keystore path, same key label: refused by the token check; nothing written.
    let err = backend(second.path(), "twice", "kek").init().unwrap_err();
    assert!(matches!(err, KeystoreError::KeyLabelExists(_)), "{err}");
    assert!(!second.path().join("sealing.keystore").exists());
    // The first keystore still opens with the same data key.
    let reopened = backend(first.path(), "twice", "kek").open().unwrap();
    assert_eq!(reopened.data_key_id(), sealer.data_key_id());
    with_session("twice", |s| {
        let n = s
            .find_objects(&[Attribute::Label(b"kek".to_vec())])
            .unwrap()
            .len();
        assert_eq!(n, 1, "exactly one key with the label");
    });
}

#[test]
fn wrong_pin_missing_token_missing_key_and_mismatched_labels_are_typed_errors() {
    let _g = lock();
    softhsm().new_token("errors");
    let dir = tempfile::tempdir().unwrap();
    backend(dir.path(), "errors", "kek").init().unwrap();

    let right = backend(dir.path(), "errors", "kek");
    let pin = support::secret_file(dir.path(), "wrong.pin", b"not-the-pin");
    let wrong_pin = Pkcs11Backend::new(
        right.keystore_path(),
        Pkcs11Settings {
            pin: SecretSource::File(pin),
            ..right.settings().clone()
        },
    );
    let err = wrong_pin.open().unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPin(_)), "{err}");

    let other_dir = tempfile::tempdir().unwrap();
    let err = backend(other_dir.path(), "no-such-token", "kek")
        .init()
        .unwrap_err();
    assert!(matches!(err, KeystoreError::TokenNotFound(_)), "{err}");

    // The keystore records its labels; a profile naming another key label is refused.
    let err = backend(dir.path(), "errors", "other-kek")
        .open()
        .unwrap_err();
    assert!(
        matches!(
            err,
            KeystoreError::ProfileMismatch {
                field: "key_label",
                ..
            }
        ),
        "{err}"
    );

    // The key was deleted from the token.
    with_session("errors", |s| {
        for k in s
            .find_objects(&[Attribute::Label(b"kek".to_vec())])
            .unwrap()
        {
            s.destroy_object(k).unwrap();
        }
    });
    let err = backend(dir.path(), "errors", "kek").open().unwrap_err();
    assert!(matches!(err, KeystoreError::KeyNotFound(_)), "{err}");
}

#[test]
fn a_replaced_token_key_does_not_unwrap_the_old_keystore() {
    let _g = lock();
    softhsm().new_token("replaced");
    let old = tempfile::tempdir().unwrap();
    backend(old.path(), "replaced", "kek").init().unwrap();
    with_session("replaced", |s| {
        for k in s
            .find_objects(&[Attribute::Label(b"kek".to_vec())])
            .unwrap()
        {
            s.destroy_object(k).unwrap();
        }
    });
    // A new key under the same label (e.g. someone re-ran init elsewhere).
    let new = tempfile::tempdir().unwrap();
    backend(new.path(), "replaced", "kek").init().unwrap();
    let err = backend(old.path(), "replaced", "kek").open().unwrap_err();
    assert!(matches!(err, KeystoreError::UnwrapRejected { .. }), "{err}");
}

#[test]
fn an_edited_keystore_with_a_fixed_checksum_does_not_unwrap() {
    let _g = lock();
    softhsm().new_token("edited");
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path(), "edited", "kek");
    b.init().unwrap();
    let good = std::fs::read(b.keystore_path()).unwrap();
    // Flip a bit of the GCM IV (params start at offset 36: mechanism, then the IV), then
    // recompute the checksum so only the token's authentication can notice.
    let mut bad = good.clone();
    bad[37] ^= 1;
    support::fix_checksum(&mut bad);
    std::fs::write(b.keystore_path(), &bad).unwrap();
    let err = b.open().unwrap_err();
    assert!(matches!(err, KeystoreError::UnwrapRejected { .. }), "{err}");
    std::fs::write(b.keystore_path(), &good).unwrap();
    b.open().unwrap();
}

#[test]
fn file_keystore_is_refused_by_the_pkcs11_backend() {
    let _g = lock();
    softhsm().new_token("mixed");
    let dir = tempfile::tempdir().unwrap();
    let pass = support::secret_file(dir.path(), "pass", b"p");
    hsm_profiles::FileBackend::with_insecure_test_kdf(
        dir.path().join("sealing.keystore"),
        SecretSource::File(pass),
    )
    .init()
    .unwrap();
    let err = backend(dir.path(), "mixed", "kek").open().unwrap_err();
    assert!(matches!(err, KeystoreError::WrongBackend { .. }), "{err}");
}

#[test]
fn shipped_softhsm_profile_seals_and_reopens() {
    let _g = lock();
    let hsm = softhsm();
    let profile_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/softhsm.toml");
    let profile = Profile::load(&profile_path).unwrap();
    let hsm_profiles::SealingSettings::Pkcs11 {
        token_label,
        pin,
        module,
        ..
    } = profile.sealing().clone()
    else {
        unreachable!("softhsm.toml selects the pkcs11 backend")
    };
    assert_eq!(
        module, hsm.module,
        "softhsm.toml names the installed module"
    );
    hsm.new_token(&token_label);
    let data_dir = tempfile::tempdir().unwrap();
    // The shipped profile reads the PIN from an environment variable.
    let SecretSource::Env(var) = pin else {
        unreachable!("softhsm.toml reads the PIN from the environment")
    };
    std::env::set_var(&var, USER_PIN);

    let sealer = profile.init_sealer(data_dir.path()).unwrap();
    let aad = SealAad::new("aux", b"key-1").unwrap();
    let blob = sealer.seal(&aad, b"aux info").unwrap();
    drop(sealer);
    let reopened = profile.open_sealer(data_dir.path()).unwrap();
    assert_eq!(
        reopened.open(&aad, blob.as_bytes()).unwrap().as_slice(),
        b"aux info"
    );
    assert!(profile.keystore_path(data_dir.path()).exists());
}

#[test]
fn a_missing_module_is_a_typed_error() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let pin = support::secret_file(dir.path(), "pin", b"1234");
    let b = Pkcs11Backend::new(
        dir.path().join("sealing.keystore"),
        Pkcs11Settings {
            module: dir.path().join("no-such-module.so"),
            token_label: "t".into(),
            key_label: "k".into(),
            pin: SecretSource::File(pin),
        },
    );
    let err = b.init().unwrap_err();
    assert!(
        matches!(
            err,
            KeystoreError::Pkcs11 {
                operation: "loading the module",
                ..
            }
        ),
        "{err}"
    );
    assert!(!dir.path().join("sealing.keystore").exists());
}
