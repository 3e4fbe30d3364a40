//! The `file` backend: a passphrase (from a file, environment variable or systemd credential)
//! is stretched with Argon2id into a key-encryption key (KEK), which wraps the data key with
//! XChaCha20-Poly1305. The wrapped data key, the salt and the KDF parameters live in the
//! keystore file.
//!
//! Keystore params (version 1):
//! ```text
//! kdf id     1  1 = Argon2id, version 0x13
//! m_cost     4  KiB, big-endian
//! t_cost     4  iterations
//! p_cost     4  lanes
//! salt      16  random per keystore
//! nonce     24  XChaCha20-Poly1305 nonce of the wrap, random
//! ```

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, OsRng, RngCore};
use zeroize::Zeroizing;

use crate::blob::BackendKind;
use crate::error::KeystoreError;
use crate::keystore::{self, Keystore, Reader};
use crate::sealer::{DataKey, EnvelopeSealer};
use crate::secret_source::SecretSource;

/// KDF id of Argon2id v0x13 in the keystore params.
const KDF_ARGON2ID_V13: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const PARAMS_LEN: usize = 1 + 12 + SALT_LEN + NONCE_LEN;

/// Argon2id cost parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl std::fmt::Display for KdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "m={} KiB, t={}, p={}",
            self.m_cost_kib, self.t_cost, self.p_cost
        )
    }
}

impl KdfParams {
    /// The parameters new keystores are created with, and the minimum `open` accepts:
    /// RFC 9106 §4's second recommended option (64 MiB, 3 passes, 4 lanes).
    ///
    /// Changing these needs a migration: existing keystores record the parameters they were
    /// made with and are opened with those, but raising the minimum makes older keystores
    /// unopenable until they are re-wrapped.
    pub const PRODUCTION: Self = Self {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 4,
    };

    /// Cheap parameters for tests only (64 KiB, 1 pass, 1 lane).
    #[cfg(any(test, feature = "insecure-test-kdf"))]
    const INSECURE_TEST: Self = Self {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// Upper bounds accepted from a keystore file, so a hostile file cannot make `open`
    /// allocate or compute without limit (4 GiB, 64 passes, 64 lanes).
    const MAX: Self = Self {
        m_cost_kib: 4 * 1024 * 1024,
        t_cost: 64,
        p_cost: 64,
    };

    fn at_least(&self, min: &Self) -> bool {
        self.m_cost_kib >= min.m_cost_kib && self.t_cost >= min.t_cost && self.p_cost >= min.p_cost
    }

    fn at_most(&self, max: &Self) -> bool {
        self.m_cost_kib <= max.m_cost_kib && self.t_cost <= max.t_cost && self.p_cost <= max.p_cost
    }
}

/// Derives the 32-byte KEK from `passphrase` and `salt` with Argon2id v0x13.
fn derive_kek(
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let argon_params = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut kek = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, kek.as_mut())
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    Ok(kek)
}

/// The parsed file-backend params of a keystore.
struct FileParams {
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
}

impl FileParams {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PARAMS_LEN);
        out.push(KDF_ARGON2ID_V13);
        out.extend_from_slice(&self.kdf.m_cost_kib.to_be_bytes());
        out.extend_from_slice(&self.kdf.t_cost.to_be_bytes());
        out.extend_from_slice(&self.kdf.p_cost.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.nonce);
        out
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self, KeystoreError> {
        let corrupt = |reason| KeystoreError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let mut r = Reader::new(bytes);
        if r.u8() != Some(KDF_ARGON2ID_V13) {
            return Err(corrupt("unknown key derivation function"));
        }
        let (Some(m), Some(t), Some(p), Some(salt), Some(nonce)) =
            (r.u32(), r.u32(), r.u32(), r.array(), r.array())
        else {
            return Err(corrupt("truncated file-backend parameters"));
        };
        if !r.is_empty() {
            return Err(corrupt("trailing bytes in file-backend parameters"));
        }
        Ok(Self {
            kdf: KdfParams {
                m_cost_kib: m,
                t_cost: t,
                p_cost: p,
            },
            salt,
            nonce,
        })
    }
}

/// The `file` backend. Creates ([`FileBackend::init`]) or opens ([`FileBackend::open`]) a
/// keystore and returns the [`EnvelopeSealer`] holding the unwrapped data key.
#[derive(Clone, Debug)]
pub struct FileBackend {
    keystore: PathBuf,
    passphrase: SecretSource,
    kdf: KdfParams,
}

impl FileBackend {
    /// A backend for the keystore at `keystore`, unlocked by the passphrase from `passphrase`,
    /// with the production Argon2id parameters ([`KdfParams::PRODUCTION`]).
    pub fn new(keystore: impl Into<PathBuf>, passphrase: SecretSource) -> Self {
        Self {
            keystore: keystore.into(),
            passphrase,
            kdf: KdfParams::PRODUCTION,
        }
    }

    /// **Tests only.** Like [`FileBackend::new`] but with cheap Argon2id parameters (64 KiB, one
    /// pass), which are recorded in keystores it creates and accepted as the minimum when
    /// opening. A production backend refuses to open such a keystore
    /// ([`KeystoreError::WeakKdfParameters`]).
    #[cfg(feature = "insecure-test-kdf")]
    pub fn with_insecure_test_kdf(keystore: impl Into<PathBuf>, passphrase: SecretSource) -> Self {
        Self {
            keystore: keystore.into(),
            passphrase,
            kdf: KdfParams::INSECURE_TEST,
        }
    }

    /// The keystore path.
    pub fn keystore_path(&self) -> &Path {
        &self.keystore
    }

    /// The Argon2id parameters new keystores get (and the minimum `open` accepts).
    pub fn kdf_params(&self) -> KdfParams {
        self.kdf
    }

    /// Creates a new keystore with a fresh random data key, wrapped under the passphrase.
    ///
    /// # Errors
    /// [`KeystoreError::AlreadyExists`] if the keystore exists (nothing is changed); secret
    /// source errors (missing, empty, too-open passphrase file); I/O errors.
    pub fn init(&self) -> Result<EnvelopeSealer, KeystoreError> {
        keystore::ensure_absent(&self.keystore)?;
        let passphrase = self.passphrase.read()?;
        let (ks, dek) = self.build_keystore(&passphrase, &mut OsRng)?;
        keystore::write_new_file(&self.keystore, &ks.encode())?;
        tracing::info!(
            keystore = %self.keystore.display(),
            data_key = %dek.id(),
            kdf = %self.kdf,
            "created file-backend keystore"
        );
        Ok(self.sealer(dek))
    }

    /// Opens the existing keystore and unwraps its data key.
    ///
    /// # Errors
    /// [`KeystoreError::NotFound`]; [`KeystoreError::Corrupt`] for truncated, edited or
    /// foreign files; [`KeystoreError::WrongPassphrase`]; [`KeystoreError::WeakKdfParameters`];
    /// secret source and I/O errors.
    pub fn open(&self) -> Result<EnvelopeSealer, KeystoreError> {
        let ks = Keystore::read(&self.keystore, BackendKind::File)?;
        let params = FileParams::decode(&self.keystore, &ks.params)?;
        if !params.kdf.at_most(&KdfParams::MAX) {
            return Err(KeystoreError::Corrupt {
                path: self.keystore.clone(),
                reason: "Argon2id parameters beyond the accepted maximum",
            });
        }
        if !params.kdf.at_least(&self.kdf) {
            return Err(KeystoreError::WeakKdfParameters {
                path: self.keystore.clone(),
                found: params.kdf.to_string(),
            });
        }
        let passphrase = self.passphrase.read()?;
        let dek = unwrap_dek(&self.keystore, &ks, &params, &passphrase)?;
        tracing::info!(
            keystore = %self.keystore.display(),
            data_key = %dek.id(),
            "opened file-backend keystore"
        );
        Ok(self.sealer(dek))
    }

    fn sealer(&self, dek: DataKey) -> EnvelopeSealer {
        EnvelopeSealer::new(
            dek,
            BackendKind::File,
            format!(
                "file backend, keystore {}, passphrase from {}",
                self.keystore.display(),
                self.passphrase.describe()
            ),
        )
    }

    /// Builds a keystore for a fresh data key, all randomness from `rng`.
    fn build_keystore<R: RngCore + CryptoRng>(
        &self,
        passphrase: &[u8],
        rng: &mut R,
    ) -> Result<(Keystore, DataKey), KeystoreError> {
        let dek = DataKey::generate(rng);
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let params = FileParams {
            kdf: self.kdf,
            salt,
            nonce,
        };
        let mut ks = Keystore {
            backend: BackendKind::File,
            data_key: dek.id(),
            params: params.encode(),
            wrapped: Vec::new(),
        };
        let kek = derive_kek(passphrase, &salt, self.kdf)?;
        let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
        let aad = ks.wrap_aad();
        ks.wrapped = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: dek.bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| KeystoreError::Kdf("wrapping the data key failed".into()))?;
        Ok((ks, dek))
    }
}

fn unwrap_dek(
    path: &Path,
    ks: &Keystore,
    params: &FileParams,
    passphrase: &[u8],
) -> Result<DataKey, KeystoreError> {
    let kek = derive_kek(passphrase, &params.salt, params.kdf)?;
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    let aad = ks.wrap_aad();
    // The checksum already matched, so the file is as written: a failed tag means the
    // passphrase (or a deliberate edit that also fixed the checksum) is wrong.
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &XNonce::from(params.nonce),
                Payload {
                    msg: &ks.wrapped,
                    aad: &aad,
                },
            )
            .map_err(|_| KeystoreError::WrongPassphrase(path.to_owned()))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if plain.len() != key.len() {
        return Err(KeystoreError::Corrupt {
            path: path.to_owned(),
            reason: "wrapped data key has the wrong length",
        });
    }
    key.copy_from_slice(&plain);
    Ok(DataKey::from_parts(key, ks.data_key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::aad::SealAad;
    use crate::sealer::Sealer;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const GOLDEN_PASSPHRASE: &[u8] = b"correct horse battery staple";
    const GOLDEN_SEED: [u8; 32] = [0x5e; 32];
    const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

    /// Compares `actual` with the hex golden file `name`; `UPDATE_GOLDEN=1` rewrites it.
    fn check_golden(name: &str, actual: &[u8]) {
        let path = Path::new(GOLDEN_DIR).join(name);
        let actual_hex = hex::encode(actual);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, format!("{actual_hex}\n")).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .map_err(|e| {
                format!(
                    "golden file {} missing ({e}); run with UPDATE_GOLDEN=1 once",
                    path.display()
                )
            })
            .unwrap();
        assert_eq!(
            expected.trim(),
            actual_hex,
            "{name} changed: the KDF, AEAD or format moved; that needs a migration"
        );
    }

    /// Pins KDF + wrap + record AEAD output for fixed inputs, with the production parameters:
    /// an accidental change of Argon2id parameters, algorithm or format fails here.
    #[test]
    fn golden_keystore_and_record_with_production_parameters() {
        let backend = FileBackend::new("golden.keystore", SecretSource::Env("UNUSED".into()));
        assert_eq!(backend.kdf_params(), KdfParams::PRODUCTION);
        let mut rng = ChaCha20Rng::from_seed(GOLDEN_SEED);
        let (ks, dek) = backend.build_keystore(GOLDEN_PASSPHRASE, &mut rng).unwrap();
        let keystore_bytes = ks.encode();
        check_golden("file-keystore-v1.hex", &keystore_bytes);

        let sealer = backend.sealer(dek);
        let aad = SealAad::new("share", b"key-0001")
            .unwrap()
            .with_context(b"epoch=7")
            .unwrap();
        let blob = sealer
            .seal_with_rng(&aad, b"golden secret share", &mut rng)
            .unwrap();
        check_golden("sealed-record-v1.hex", blob.as_bytes());

        // And the committed files open through the ordinary path (format compatibility).
        let read_hex = |name: &str| {
            let text = std::fs::read_to_string(Path::new(GOLDEN_DIR).join(name)).unwrap();
            hex::decode(text.trim()).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("golden.keystore");
        std::fs::write(&path, read_hex("file-keystore-v1.hex")).unwrap();
        let pass = dir.path().join("pass");
        std::fs::write(&pass, GOLDEN_PASSPHRASE).unwrap();
        std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let opened = FileBackend::new(&path, SecretSource::File(pass))
            .open()
            .unwrap();
        let golden_blob = read_hex("sealed-record-v1.hex");
        assert_eq!(
            opened.open(&aad, &golden_blob).unwrap().as_slice(),
            b"golden secret share"
        );
    }

    #[test]
    fn kdf_output_depends_on_every_input() {
        let p = KdfParams::INSECURE_TEST;
        let base = derive_kek(b"pass", &[1; 16], p).unwrap();
        assert_ne!(*base, *derive_kek(b"pasS", &[1; 16], p).unwrap());
        assert_ne!(*base, *derive_kek(b"pass", &[2; 16], p).unwrap());
        let more = KdfParams { t_cost: 2, ..p };
        assert_ne!(*base, *derive_kek(b"pass", &[1; 16], more).unwrap());
    }

    #[test]
    fn out_of_range_parameters_are_refused() {
        assert!(KdfParams::PRODUCTION.at_most(&KdfParams::MAX));
        assert!(!KdfParams {
            t_cost: 65,
            ..KdfParams::PRODUCTION
        }
        .at_most(&KdfParams::MAX));
        assert!(!KdfParams::INSECURE_TEST.at_least(&KdfParams::PRODUCTION));
    }
}
