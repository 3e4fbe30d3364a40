//! The `pkcs11` backend: the data key is wrapped by a non-extractable AES-256 key that lives
//! inside a PKCS#11 token (an HSM, or SoftHSM2 for development and tests).
//!
//! The wrap is `C_Encrypt` with `CKM_AES_GCM` (96-bit random IV from the OS generator, 128-bit
//! tag, associated data = the keystore header) performed by the token; `open` asks the token
//! to `C_Decrypt` it. The token key never leaves the token; the data key exists in this
//! process's memory (that is the point of envelope encryption: no HSM round trip per record).
//!
//! Keystore params (version 1):
//! ```text
//! mechanism      1  1 = CKM_AES_GCM with a 128-bit tag
//! iv            12  random
//! token label    1 + n  length-prefixed UTF-8
//! key label      1 + n  length-prefixed UTF-8
//! ```
//!
//! A PKCS#11 module is process-global state (`C_Initialize`/`C_Finalize`), so every use of a
//! token in this crate holds one process-wide lock and finalizes the module afterwards unless
//! someone else had initialised it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{RawAuthPin, Ulong};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::blob::BackendKind;
use crate::error::KeystoreError;
use crate::keystore::{self, Keystore, Reader};
use crate::sealer::{DataKey, EnvelopeSealer};
use crate::secret_source::SecretSource;

/// Mechanism id of AES-GCM with a 128-bit tag in the keystore params.
const MECH_AES_GCM_128: u8 = 1;
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
/// Longest token label PKCS#11 allows (`CK_TOKEN_INFO.label`).
pub const MAX_TOKEN_LABEL_LEN: usize = 32;
/// Longest key label this crate accepts.
pub const MAX_KEY_LABEL_LEN: usize = 128;

/// Serialises all PKCS#11 module use in this process.
static TOKEN_LOCK: Mutex<()> = Mutex::new(());

/// Where the token key lives and how to log in.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Pkcs11Settings {
    /// Path of the PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Label of the token that holds the key (unique among the module's tokens).
    pub token_label: String,
    /// Label of the AES key inside the token.
    pub key_label: String,
    /// Where to read the token's user PIN.
    pub pin: SecretSource,
}

/// The `pkcs11` backend. Creates ([`Pkcs11Backend::init`]) or opens ([`Pkcs11Backend::open`])
/// a keystore and returns the [`EnvelopeSealer`] holding the unwrapped data key.
#[derive(Clone, Debug)]
pub struct Pkcs11Backend {
    keystore: PathBuf,
    settings: Pkcs11Settings,
}

struct TokenParams {
    iv: [u8; IV_LEN],
    token_label: String,
    key_label: String,
}

impl TokenParams {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![MECH_AES_GCM_128];
        out.extend_from_slice(&self.iv);
        for label in [&self.token_label, &self.key_label] {
            // Labels are length-checked by `check_labels` before any keystore is built (≤ 128 bytes).
            out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(label.as_bytes());
        }
        out
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self, KeystoreError> {
        let corrupt = |reason| KeystoreError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let mut r = Reader::new(bytes);
        if r.u8() != Some(MECH_AES_GCM_128) {
            return Err(corrupt("unknown PKCS#11 wrapping mechanism"));
        }
        let iv = r.array().ok_or(corrupt("truncated PKCS#11 parameters"))?;
        let mut label = || -> Result<String, KeystoreError> {
            let len = r.u8().ok_or(corrupt("truncated PKCS#11 parameters"))?;
            let bytes = r
                .take(len.into())
                .ok_or(corrupt("truncated PKCS#11 parameters"))?;
            String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("label is not UTF-8"))
        };
        let token_label = label()?;
        let key_label = label()?;
        if !r.is_empty() {
            return Err(corrupt("trailing bytes in PKCS#11 parameters"));
        }
        Ok(Self {
            iv,
            token_label,
            key_label,
        })
    }
}

impl Pkcs11Backend {
    /// A backend for the keystore at `keystore` whose data key is wrapped by the token key
    /// described by `settings`.
    pub fn new(keystore: impl Into<PathBuf>, settings: Pkcs11Settings) -> Self {
        Self {
            keystore: keystore.into(),
            settings,
        }
    }

    /// The keystore path.
    pub fn keystore_path(&self) -> &Path {
        &self.keystore
    }

    /// The token settings.
    pub fn settings(&self) -> &Pkcs11Settings {
        &self.settings
    }

    /// Creates the token key (AES-256, `CKA_TOKEN`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`,
    /// encrypt/decrypt only), a fresh data key wrapped by it, and the keystore file.
    ///
    /// # Errors
    /// [`KeystoreError::AlreadyExists`] if the keystore exists and
    /// [`KeystoreError::KeyLabelExists`] if the token already has a key with this label (in both
    /// cases nothing is changed); token, PIN and I/O errors. If writing the keystore fails, the
    /// new token key is destroyed again so `init` can be retried.
    pub fn init(&self) -> Result<EnvelopeSealer, KeystoreError> {
        self.check_labels()?;
        keystore::ensure_absent(&self.keystore)?;
        let pin = self.settings.pin.read()?;
        let dek = with_token(&self.settings, &pin, |session| {
            if !find_keys(session, &self.settings.key_label)?.is_empty() {
                return Err(KeystoreError::KeyLabelExists(
                    self.settings.key_label.clone(),
                ));
            }
            let key = session
                .generate_key(&Mechanism::AesKeyGen, &self.key_template())
                .map_err(ck("C_GenerateKey"))?;
            let result = self.wrap_and_store(session, key);
            if result.is_err() {
                if let Err(e) = session.destroy_object(key) {
                    tracing::warn!(error = %e, "could not destroy the token key after a failed init");
                }
            }
            result
        })?;
        tracing::info!(
            keystore = %self.keystore.display(),
            token = %self.settings.token_label,
            key = %self.settings.key_label,
            data_key = %dek.id(),
            "created pkcs11-backend keystore and token key"
        );
        Ok(self.sealer(dek))
    }

    /// Opens the existing keystore and has the token unwrap its data key.
    ///
    /// # Errors
    /// [`KeystoreError::NotFound`], [`KeystoreError::Corrupt`],
    /// [`KeystoreError::ProfileMismatch`] (keystore made for another token or key label),
    /// [`KeystoreError::KeyNotFound`], [`KeystoreError::WrongPin`],
    /// [`KeystoreError::UnwrapRejected`], other token and I/O errors.
    pub fn open(&self) -> Result<EnvelopeSealer, KeystoreError> {
        self.check_labels()?;
        let ks = Keystore::read(&self.keystore, BackendKind::Pkcs11)?;
        let mut params = TokenParams::decode(&self.keystore, &ks.params)?;
        for (field, expected, found) in [
            (
                "token_label",
                &self.settings.token_label,
                &params.token_label,
            ),
            ("key_label", &self.settings.key_label, &params.key_label),
        ] {
            if expected != found {
                return Err(KeystoreError::ProfileMismatch {
                    path: self.keystore.clone(),
                    field,
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
        }
        let pin = self.settings.pin.read()?;
        let aad = ks.wrap_aad();
        let plain = with_token(&self.settings, &pin, |session| {
            let key = match find_keys(session, &self.settings.key_label)?.as_slice() {
                [] => return Err(KeystoreError::KeyNotFound(self.settings.key_label.clone())),
                [one] => *one,
                _ => return Err(KeystoreError::AmbiguousKey(self.settings.key_label.clone())),
            };
            let gcm = GcmParams::new(&mut params.iv, &aad, Ulong::from(TAG_BITS))
                .map_err(ck("GCM parameters"))?;
            match session.decrypt(&Mechanism::AesGcm(gcm), key, &ks.wrapped) {
                Ok(plain) => Ok(Zeroizing::new(plain)),
                // A GCM tag mismatch: CKR_ENCRYPTED_DATA_INVALID per the standard, but
                // SoftHSM2 (2.6) reports CKR_GENERAL_ERROR and others CKR_FUNCTION_FAILED.
                Err(CkError::Pkcs11(
                    rv @ (RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::FunctionFailed
                    | RvError::GeneralError),
                    _,
                )) => Err(KeystoreError::UnwrapRejected {
                    path: self.keystore.clone(),
                    token_said: format!("{rv:?}"),
                }),
                Err(e) => Err(ck("C_Decrypt")(e)),
            }
        })?;
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != key.len() {
            return Err(KeystoreError::Corrupt {
                path: self.keystore.clone(),
                reason: "wrapped data key has the wrong length",
            });
        }
        key.copy_from_slice(&plain);
        let dek = DataKey::from_parts(key, ks.data_key);
        tracing::info!(
            keystore = %self.keystore.display(),
            token = %self.settings.token_label,
            key = %self.settings.key_label,
            data_key = %dek.id(),
            "opened pkcs11-backend keystore"
        );
        Ok(self.sealer(dek))
    }

    fn check_labels(&self) -> Result<(), KeystoreError> {
        let s = &self.settings;
        if s.token_label.is_empty() || s.token_label.len() > MAX_TOKEN_LABEL_LEN {
            return Err(KeystoreError::TokenNotFound(s.token_label.clone()));
        }
        if s.key_label.is_empty() || s.key_label.len() > MAX_KEY_LABEL_LEN {
            return Err(KeystoreError::KeyNotFound(s.key_label.clone()));
        }
        Ok(())
    }

    fn key_template(&self) -> Vec<Attribute> {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(Ulong::from(32)),
            Attribute::Label(self.settings.key_label.as_bytes().to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
        ]
    }

    fn wrap_and_store(
        &self,
        session: &Session,
        key: ObjectHandle,
    ) -> Result<DataKey, KeystoreError> {
        let dek = DataKey::generate(&mut OsRng);
        let mut params = TokenParams {
            iv: [0u8; IV_LEN],
            token_label: self.settings.token_label.clone(),
            key_label: self.settings.key_label.clone(),
        };
        OsRng.fill_bytes(&mut params.iv);
        let mut ks = Keystore {
            backend: BackendKind::Pkcs11,
            data_key: dek.id(),
            params: params.encode(),
            wrapped: Vec::new(),
        };
        let aad = ks.wrap_aad();
        let gcm = GcmParams::new(&mut params.iv, &aad, Ulong::from(TAG_BITS))
            .map_err(ck("GCM parameters"))?;
        ks.wrapped = session
            .encrypt(&Mechanism::AesGcm(gcm), key, dek.bytes())
            .map_err(ck("C_Encrypt"))?;
        keystore::write_new_file(&self.keystore, &ks.encode())?;
        Ok(dek)
    }

    fn sealer(&self, dek: DataKey) -> EnvelopeSealer {
        EnvelopeSealer::new(
            dek,
            BackendKind::Pkcs11,
            format!(
                "pkcs11 backend, module {}, token {:?}, key {:?}, keystore {}",
                self.settings.module.display(),
                self.settings.token_label,
                self.settings.key_label,
                self.keystore.display()
            ),
        )
    }
}

fn ck(operation: &'static str) -> impl Fn(CkError) -> KeystoreError {
    move |source| KeystoreError::Pkcs11 { operation, source }
}

/// Handles of all secret keys labelled `label` (the session must be logged in).
fn find_keys(session: &Session, label: &str) -> Result<Vec<ObjectHandle>, KeystoreError> {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ck("C_FindObjects"))
}

/// Loads the module, finds the token, opens a read-write session logged in as the user, runs
/// `f`, and cleans up (logout, close, finalize) whatever `f` returned.
fn with_token<T>(
    settings: &Pkcs11Settings,
    pin: &[u8],
    f: impl FnOnce(&Session) -> Result<T, KeystoreError>,
) -> Result<T, KeystoreError> {
    let _guard = TOKEN_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let pkcs11 = Pkcs11::new(&settings.module).map_err(ck("loading the module"))?;
    let we_initialised =
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => true,
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
            Err(e) => return Err(ck("C_Initialize")(e)),
        };
    let result = logged_in(&pkcs11, settings, pin, f);
    if we_initialised {
        if let Err(e) = pkcs11.finalize() {
            tracing::warn!(error = %e, "C_Finalize failed");
        }
    }
    result
}

fn logged_in<T>(
    pkcs11: &Pkcs11,
    settings: &Pkcs11Settings,
    pin: &[u8],
    f: impl FnOnce(&Session) -> Result<T, KeystoreError>,
) -> Result<T, KeystoreError> {
    let label = &settings.token_label;
    let mut matching = Vec::new();
    for slot in pkcs11.get_slots_with_token().map_err(ck("C_GetSlotList"))? {
        let info = pkcs11.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
        if info.label().trim_end() == label {
            matching.push(slot);
        }
    }
    let slot = match matching.as_slice() {
        [] => return Err(KeystoreError::TokenNotFound(label.clone())),
        [one] => *one,
        _ => return Err(KeystoreError::AmbiguousToken(label.clone())),
    };
    let session = pkcs11.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
    let raw_pin = RawAuthPin::new(Box::new(pin.to_vec()));
    match session.login_with_raw(UserType::User, &raw_pin) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            return Err(KeystoreError::WrongPin(label.clone()))
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
            return Err(KeystoreError::PinLocked(label.clone()))
        }
        Err(e) => return Err(ck("C_Login")(e)),
    }
    let result = f(&session);
    if let Err(e) = session.logout() {
        tracing::debug!(error = %e, "C_Logout failed");
    }
    result
}
