//! Deployment profiles: one TOML file per deployment type selects the sealing backend and its
//! settings plus the process hardening.
//!
//! ```toml
//! description = "what this profile is for"   # optional
//!
//! [sealing]
//! backend = "file"                           # or "pkcs11"
//! keystore = "sealing.keystore"
//! passphrase = { env = "CUSTODY_SEAL_PASSPHRASE" }
//!
//! [hardening]                                # optional; every key defaults to the hardened value
//! disable_core_dumps = true
//! not_dumpable = true
//! lock_memory = "auto"                       # "off" | "auto" | "current" | "current-and-future"
//! ```
//!
//! For `backend = "pkcs11"` the `[sealing]` keys are `keystore`, `module`, `token_label`,
//! `key_label` and `pin`. Unknown keys are refused and the message names them.
//!
//! **Relative paths** (`keystore`, `passphrase`/`pin` files) are relative to the node's data
//! directory, which the caller passes to [`Profile::open_sealer`] / [`Profile::init_sealer`]:
//! the keystore belongs beside the data it protects, and the same profile file serves every
//! node. `module` must be absolute.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::blob::BackendKind;
use crate::error::{KeystoreError, ProfileError};
use crate::file_backend::FileBackend;
use crate::hardening::HardeningSettings;
use crate::pkcs11_backend::{
    Pkcs11Backend, Pkcs11Settings, MAX_KEY_LABEL_LEN, MAX_TOKEN_LABEL_LEN,
};
use crate::sealer::EnvelopeSealer;
use crate::secret_source::SecretSource;

/// Largest profile file read, in bytes.
pub const MAX_PROFILE_LEN: u64 = 1024 * 1024;

/// The `[sealing]` section.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
pub enum SealingSettings {
    /// `backend = "file"`: passphrase, Argon2id, XChaCha20-Poly1305.
    File {
        /// Keystore file (relative to the data directory unless absolute).
        keystore: PathBuf,
        /// Where the passphrase comes from.
        passphrase: SecretSource,
    },
    /// `backend = "pkcs11"`: a non-extractable AES-256 key in a PKCS#11 token.
    Pkcs11 {
        /// Keystore file (relative to the data directory unless absolute).
        keystore: PathBuf,
        /// Absolute path of the PKCS#11 module.
        module: PathBuf,
        /// Label of the token.
        token_label: String,
        /// Label of the AES key in the token.
        key_label: String,
        /// Where the token's user PIN comes from.
        pin: SecretSource,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    description: Option<String>,
    sealing: SealingSettings,
    #[serde(default)]
    hardening: HardeningSettings,
}

/// A loaded and validated profile.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Profile {
    origin: PathBuf,
    description: Option<String>,
    sealing: SealingSettings,
    hardening: HardeningSettings,
}

impl Profile {
    /// Reads and validates the profile file at `path`.
    ///
    /// # Errors
    /// [`ProfileError::Io`] if it cannot be read (or exceeds 1 MiB), [`ProfileError::Parse`]
    /// for TOML errors and unknown keys, [`ProfileError::Invalid`] for refused values.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let io = |source| ProfileError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_PROFILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_PROFILE_LEN {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "profile is larger than 1 MiB",
            )));
        }
        Self::from_toml(&text, path)
    }

    /// Parses and validates profile text; `origin` names it in error messages.
    ///
    /// # Errors
    /// As [`Profile::load`], without the I/O.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ProfileError> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        let profile = Self {
            origin: origin.to_owned(),
            description: file.description,
            sealing: file.sealing,
            hardening: file.hardening,
        };
        profile.validate()?;
        Ok(profile)
    }

    fn invalid(&self, key: &'static str, reason: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            path: self.origin.clone(),
            key,
            reason: reason.into(),
        }
    }

    fn validate(&self) -> Result<(), ProfileError> {
        let (keystore, secret, secret_key) = match &self.sealing {
            SealingSettings::File {
                keystore,
                passphrase,
            } => (keystore, passphrase, "sealing.passphrase"),
            SealingSettings::Pkcs11 {
                keystore,
                module,
                token_label,
                key_label,
                pin,
            } => {
                if !module.is_absolute() {
                    return Err(self.invalid("sealing.module", "must be an absolute path"));
                }
                if token_label.is_empty() || token_label.len() > MAX_TOKEN_LABEL_LEN {
                    return Err(self.invalid("sealing.token_label", "must be 1 to 32 bytes"));
                }
                if token_label.trim_end() != token_label {
                    return Err(self.invalid(
                        "sealing.token_label",
                        "must not end with spaces (PKCS#11 pads labels with spaces)",
                    ));
                }
                if key_label.is_empty() || key_label.len() > MAX_KEY_LABEL_LEN {
                    return Err(self.invalid("sealing.key_label", "must be 1 to 128 bytes"));
                }
                (keystore, pin, "sealing.pin")
            }
        };
        if keystore.as_os_str().is_empty() || keystore.file_name().is_none() {
            return Err(self.invalid("sealing.keystore", "must name a file"));
        }
        match secret {
            SecretSource::File(p) if p.as_os_str().is_empty() => {
                Err(self.invalid(secret_key, "file path is empty"))
            }
            SecretSource::Env(v) if v.is_empty() || v.contains(['=', '\0']) => Err(self.invalid(
                secret_key,
                "environment variable name is empty or has '=' or NUL",
            )),
            SecretSource::SystemdCredential(n)
                if n.is_empty() || n.contains(['/', '\0']) || n == "." || n == ".." =>
            {
                Err(self.invalid(
                    secret_key,
                    "credential name is empty or not a plain file name",
                ))
            }
            _ => Ok(()),
        }
    }

    /// The optional free-text description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The `[sealing]` settings as written.
    pub fn sealing(&self) -> &SealingSettings {
        &self.sealing
    }

    /// The `[hardening]` settings (defaults where omitted); pass them to
    /// [`harden`](crate::harden).
    pub fn hardening(&self) -> &HardeningSettings {
        &self.hardening
    }

    /// Which backend the profile selects.
    pub fn backend_kind(&self) -> BackendKind {
        match self.sealing {
            SealingSettings::File { .. } => BackendKind::File,
            SealingSettings::Pkcs11 { .. } => BackendKind::Pkcs11,
        }
    }

    /// The keystore path with a relative path resolved against `data_dir`.
    pub fn keystore_path(&self, data_dir: &Path) -> PathBuf {
        match &self.sealing {
            SealingSettings::File { keystore, .. } | SealingSettings::Pkcs11 { keystore, .. } => {
                data_dir.join(keystore)
            }
        }
    }

    /// Creates the keystore (and, for pkcs11, the token key) under `data_dir` and returns the
    /// sealer. Run once per node, by the operator.
    ///
    /// # Errors
    /// See [`FileBackend::init`] and [`Pkcs11Backend::init`].
    pub fn init_sealer(&self, data_dir: &Path) -> Result<EnvelopeSealer, KeystoreError> {
        match self.backend(data_dir) {
            Backend::File(b) => b.init(),
            Backend::Pkcs11(b) => b.init(),
        }
    }

    /// Opens the keystore under `data_dir` and returns the sealer. Run at every start.
    ///
    /// # Errors
    /// See [`FileBackend::open`] and [`Pkcs11Backend::open`].
    pub fn open_sealer(&self, data_dir: &Path) -> Result<EnvelopeSealer, KeystoreError> {
        match self.backend(data_dir) {
            Backend::File(b) => b.open(),
            Backend::Pkcs11(b) => b.open(),
        }
    }

    fn backend(&self, data_dir: &Path) -> Backend {
        let keystore = self.keystore_path(data_dir);
        match &self.sealing {
            SealingSettings::File { passphrase, .. } => {
                Backend::File(FileBackend::new(keystore, passphrase.resolved(data_dir)))
            }
            SealingSettings::Pkcs11 {
                module,
                token_label,
                key_label,
                pin,
                ..
            } => Backend::Pkcs11(Pkcs11Backend::new(
                keystore,
                Pkcs11Settings {
                    module: module.clone(),
                    token_label: token_label.clone(),
                    key_label: key_label.clone(),
                    pin: pin.resolved(data_dir),
                },
            )),
        }
    }
}

enum Backend {
    File(FileBackend),
    Pkcs11(Pkcs11Backend),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::hardening::MemoryLock;

    fn parse(text: &str) -> Result<Profile, ProfileError> {
        Profile::from_toml(text, Path::new("test.toml"))
    }

    const FILE_PROFILE: &str = r#"
        [sealing]
        backend = "file"
        keystore = "sealing.keystore"
        passphrase = { env = "CUSTODY_SEAL_PASSPHRASE" }
    "#;

    #[test]
    fn minimal_file_profile_gets_hardened_defaults() {
        let p = parse(FILE_PROFILE).unwrap();
        assert_eq!(p.backend_kind(), BackendKind::File);
        assert_eq!(*p.hardening(), HardeningSettings::default());
        assert_eq!(
            p.keystore_path(Path::new("/var/lib/custody")),
            PathBuf::from("/var/lib/custody/sealing.keystore")
        );
    }

    #[test]
    fn unknown_keys_are_named_in_the_error() {
        let cases = [
            ("extra = 1\n", "extra"),
            ("[hardening]\nlock_memroy = \"off\"\n", "lock_memroy"),
        ];
        for (extra, key) in cases {
            let err = parse(&format!("{extra}{FILE_PROFILE}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
        let err = parse(&FILE_PROFILE.replace("keystore =", "key_store =")).unwrap_err();
        assert!(err.to_string().contains("key_store"), "{err}");
        let err = parse(&format!("{FILE_PROFILE}module = \"/x.so\"\n")).unwrap_err();
        assert!(err.to_string().contains("module"), "{err}");
        let err = parse(&FILE_PROFILE.replace("{ env =", "{ environment =")).unwrap_err();
        assert!(err.to_string().contains("environment"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let err = parse(&FILE_PROFILE.replace("\"file\"", "\"tpm\"")).unwrap_err();
        assert!(err.to_string().contains("tpm"), "{err}");
        let err = parse(&FILE_PROFILE.replace("CUSTODY_SEAL_PASSPHRASE", "")).unwrap_err();
        assert!(
            matches!(
                err,
                ProfileError::Invalid {
                    key: "sealing.passphrase",
                    ..
                }
            ),
            "{err}"
        );
        let pkcs11 = r#"
            [sealing]
            backend = "pkcs11"
            keystore = "k"
            module = "libsofthsm2.so"
            token_label = "t"
            key_label = "k"
            pin = { file = "/etc/custody/pin" }
        "#;
        let err = parse(pkcs11).unwrap_err();
        assert!(
            matches!(
                err,
                ProfileError::Invalid {
                    key: "sealing.module",
                    ..
                }
            ),
            "{err}"
        );
        let long = pkcs11.replace("libsofthsm2.so", "/usr/lib/x.so").replace(
            "token_label = \"t\"",
            &format!("token_label = \"{}\"", "t".repeat(33)),
        );
        let err = parse(&long).unwrap_err();
        assert!(
            matches!(
                err,
                ProfileError::Invalid {
                    key: "sealing.token_label",
                    ..
                }
            ),
            "{err}"
        );
        let err = parse(&format!(
            "{FILE_PROFILE}[hardening]\nlock_memory = \"always\"\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("always"), "{err}");
    }

    #[test]
    fn hardening_section_is_read() {
        let p = parse(&format!(
            "{FILE_PROFILE}[hardening]\nnot_dumpable = false\nlock_memory = \"current-and-future\"\n"
        ))
        .unwrap();
        assert!(!p.hardening().not_dumpable);
        assert!(p.hardening().disable_core_dumps);
        assert_eq!(p.hardening().lock_memory, MemoryLock::CurrentAndFuture);
    }
}
