//! Sealing of signer secrets at rest, deployment profiles and process hardening for the
//! custody appliance's signer node (DESIGN §5, checklist OPS-01 and OPS-04).
//!
//! # Key hierarchy
//!
//! ```text
//! KEK  (key-encryption key)   file:   Argon2id(passphrase, random salt)      -- never stored
//!                             pkcs11: AES-256 key inside the token,
//!                                     CKA_SENSITIVE, not CKA_EXTRACTABLE       -- never leaves the token
//!  └─ wraps
//! DEK  (data key, 256-bit random, one per keystore)
//!      stored only wrapped, in the keystore file; in memory while the node runs
//!  └─ encrypts, XChaCha20-Poly1305 with a random 24-byte nonce per record
//! records (key shares, aux info, presignatures, ...), each bound by its AAD to
//!      (record kind, key id, context) and to the blob header (version, backend, data key id)
//! ```
//!
//! The backends only wrap and unwrap the data key, once at start, so no record operation
//! waits for an HSM. The store calls [`Sealer::seal`] / [`Sealer::open`] with a [`SealAad`].
//!
//! # Use
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hsm_profiles::{harden, Profile, SealAad, Sealer};
//! let profile = Profile::load("/etc/custody/profile.toml".as_ref())?;
//! let report = harden(profile.hardening())?;           // first thing in main
//! let sealer = profile.open_sealer("/var/lib/custody".as_ref())?;
//! let aad = SealAad::new("share", b"key-0001")?;
//! let blob = sealer.seal(&aad, b"secret")?;
//! assert_eq!(sealer.open(&aad, blob.as_bytes())?.as_slice(), b"secret");
//! # let _ = report; Ok(()) }
//! ```
//!
//! Not implemented yet: rotation of the data key (re-sealing every record under a new data
//! key) and re-wrapping a keystore under a new passphrase or token key; the blob and keystore
//! headers carry the data key id and format versions that such a migration needs.

mod aad;
mod blob;
mod error;
mod file_backend;
mod hardening;
mod keystore;
mod pkcs11_backend;
mod profile;
mod sealer;
mod secret_source;

pub use aad::{SealAad, MAX_CONTEXT_LEN, MAX_KEY_ID_LEN, MAX_RECORD_KIND_LEN};
pub use blob::{BackendKind, BlobHeader, DataKeyId, SealedBlob, BLOB_VERSION};
pub use error::{HardeningError, KeystoreError, ProfileError, SealError, SecretSourceError};
pub use file_backend::{FileBackend, KdfParams};
pub use hardening::{harden, HardeningReport, HardeningSettings, MemoryLock, MemoryLockOutcome};
pub use keystore::KEYSTORE_VERSION;
pub use pkcs11_backend::{Pkcs11Backend, Pkcs11Settings};
pub use profile::{Profile, SealingSettings};
pub use sealer::{EnvelopeSealer, Sealer};
pub use secret_source::SecretSource;
