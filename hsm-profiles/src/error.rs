//! Typed errors of this crate. None of them ever carries secret material: messages name
//! files, labels, variables and reasons, never passphrases, PINs or key bytes (OPS-01).

use std::path::PathBuf;

use crate::blob::BackendKind;

/// Sealing or opening one record failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The associated data cannot be used (for example an empty record kind).
    #[error("invalid seal AAD: {0}")]
    InvalidAad(&'static str),
    /// The blob is too short or its header does not parse.
    #[error("malformed sealed blob: {0}")]
    Malformed(&'static str),
    /// The blob was written by a format version this build does not know.
    #[error("sealed blob format version {0} is not supported by this build")]
    UnsupportedVersion(u8),
    /// The blob names an AEAD algorithm this build does not know.
    #[error("sealed blob uses AEAD algorithm id {0}, which this build does not support")]
    UnsupportedAlgorithm(u8),
    /// The blob was sealed by another backend kind than this sealer's.
    #[error("sealed blob was made by the {found} backend, this sealer is {expected}")]
    WrongBackend {
        /// This sealer's backend.
        expected: BackendKind,
        /// The backend named in the blob header.
        found: BackendKind,
    },
    /// The blob was sealed under another data key (another keystore, or before a rotation).
    #[error("sealed blob was made under data key {found}, this sealer holds {expected}")]
    WrongDataKey {
        /// Id of this sealer's data key.
        expected: String,
        /// Id named in the blob header.
        found: String,
    },
    /// Authentication failed: the blob was altered, or the record kind, key id or context
    /// given to `open` differs from the one given to `seal` (e.g. a record moved to another key).
    #[error("sealed blob failed authentication: altered, or opened with another record kind, key id or context")]
    Authentication,
    /// The AEAD refused to encrypt (only possible for absurdly large inputs).
    #[error("AEAD encryption failed")]
    Encryption,
}

/// Reading a passphrase or PIN from its configured source failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretSourceError {
    /// The environment variable is not set.
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The environment variable is not valid Unicode.
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    /// The secret file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The secret file can be read or written by group or others.
    #[error("secret file {path} has mode {mode:o}; it must not be accessible by group or others (chmod 600 or 400)")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secret file is larger than any passphrase or PIN should be.
    #[error("secret file {path} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// `systemd_credential` was configured but `$CREDENTIALS_DIRECTORY` is not set.
    #[error("systemd credential {0} requested but CREDENTIALS_DIRECTORY is not set (is the service started with LoadCredential=?)")]
    NoCredentialsDirectory(String),
    /// The secret is empty. An empty passphrase or PIN is never accepted.
    #[error("the secret from {0} is empty; an empty passphrase or PIN is refused")]
    Empty(String),
}

/// Creating or opening a keystore (the wrapped data key) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// `init` was asked to create a keystore that already exists. Nothing was changed.
    #[error("keystore {0} already exists; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    /// `open` found no keystore file.
    #[error("keystore {0} does not exist (run init first)")]
    NotFound(PathBuf),
    /// Reading or writing the keystore file failed.
    #[error("keystore {path}: {source}")]
    Io {
        /// The keystore file (or its directory).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The keystore file is damaged, truncated, edited or not a keystore at all.
    #[error("keystore {path} is corrupt: {reason}")]
    Corrupt {
        /// The keystore file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The keystore was written by a format version this build does not know.
    #[error("keystore {path} has format version {version}, which this build does not support")]
    UnsupportedVersion {
        /// The keystore file.
        path: PathBuf,
        /// The version byte found.
        version: u8,
    },
    /// The keystore belongs to another backend than the one configured.
    #[error("keystore {path} was made by the {found} backend, but the profile selects {expected}")]
    WrongBackend {
        /// The keystore file.
        path: PathBuf,
        /// The configured backend.
        expected: BackendKind,
        /// The backend recorded in the keystore.
        found: BackendKind,
    },
    /// The keystore records other settings than the profile (token or key label).
    #[error("keystore {path} was made for {field} {found:?}, but the profile says {expected:?}")]
    ProfileMismatch {
        /// The keystore file.
        path: PathBuf,
        /// Which setting differs.
        field: &'static str,
        /// The profile's value.
        expected: String,
        /// The keystore's value.
        found: String,
    },
    /// The passphrase does not unlock this keystore (the file itself is intact).
    #[error("wrong passphrase for keystore {0}")]
    WrongPassphrase(PathBuf),
    /// The keystore's KDF parameters are weaker than this build accepts.
    #[error("keystore {path} uses Argon2id parameters weaker than the pinned minimum ({found}); refusing to open it")]
    WeakKdfParameters {
        /// The keystore file.
        path: PathBuf,
        /// The recorded parameters, as text.
        found: String,
    },
    /// The passphrase or PIN could not be read.
    #[error(transparent)]
    Secret(#[from] SecretSourceError),
    /// Key derivation failed (invalid parameters).
    #[error("Argon2id key derivation failed: {0}")]
    Kdf(String),
    /// No token with the configured label is present in the PKCS#11 module.
    #[error(
        "no PKCS#11 token labelled {0:?} (check token_label and that the token is initialised)"
    )]
    TokenNotFound(String),
    /// More than one token carries the configured label.
    #[error("more than one PKCS#11 token is labelled {0:?}; labels must be unique")]
    AmbiguousToken(String),
    /// The token refused the user PIN.
    #[error("the PKCS#11 token {0:?} refused the user PIN")]
    WrongPin(String),
    /// The token's user PIN is locked after too many failed attempts.
    #[error("the user PIN of PKCS#11 token {0:?} is locked; the security officer must reset it")]
    PinLocked(String),
    /// `init` found a key with the configured label already in the token. Nothing was changed.
    #[error("PKCS#11 token already holds a key labelled {0:?}; refusing to create another")]
    KeyLabelExists(String),
    /// `open` found no key with the configured label in the token.
    #[error("PKCS#11 token holds no key labelled {0:?}")]
    KeyNotFound(String),
    /// More than one key carries the configured label.
    #[error("PKCS#11 token holds more than one key labelled {0:?}")]
    AmbiguousKey(String),
    /// The token's key does not unwrap the data key: another key, or the keystore was altered.
    #[error("the PKCS#11 key did not unwrap the data key in {path} ({token_said}): another key with the same label, or the keystore was altered")]
    UnwrapRejected {
        /// The keystore file.
        path: PathBuf,
        /// The token's return value.
        token_said: String,
    },
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 {operation} failed: {source}")]
    Pkcs11 {
        /// What was being done.
        operation: &'static str,
        /// The cryptoki error.
        #[source]
        source: cryptoki::error::Error,
    },
}

/// Loading a profile file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The profile file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Io {
        /// The profile file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The profile is not valid TOML or has unknown or mistyped keys (the message names them).
    #[error("profile {path}: {message}")]
    Parse {
        /// The profile file (or `<string>`).
        path: PathBuf,
        /// The parser's message, which names the offending key and line.
        message: String,
    },
    /// A key has a value the profile does not accept.
    #[error("profile {path}: invalid value for `{key}`: {reason}")]
    Invalid {
        /// The profile file (or `<string>`).
        path: PathBuf,
        /// The dotted key, e.g. `sealing.token_label`.
        key: &'static str,
        /// Why the value is refused.
        reason: String,
    },
}

/// Process hardening failed in a way that must stop the process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardeningError {
    /// `setrlimit(RLIMIT_CORE, 0)` failed.
    #[error("cannot disable core dumps (setrlimit RLIMIT_CORE): {0}")]
    CoreLimit(std::io::Error),
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error("cannot mark the process not dumpable (prctl PR_SET_DUMPABLE): {0}")]
    Dumpable(std::io::Error),
    /// Hardening is only implemented for Linux.
    #[error("process hardening is only implemented for Linux")]
    Unsupported,
}
