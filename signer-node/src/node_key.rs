//! The node's Ed25519 identity key, which signs every outgoing envelope (NET-01).
//!
//! For now the key lives in a file of 64 hex characters with mode 0600, and loading refuses a
//! file that group or others may read. Sealing it in the HSM-protected store comes with the
//! store work (issue #4, "Store"); until then, protect the file like an SSH host key.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

/// Mode of secret files this crate writes.
pub const SECRET_FILE_MODE: u32 = 0o600;

/// An Ed25519 signing key held by this node (zeroized on drop; `Debug` shows only the public
/// key).
pub struct NodeKey(SigningKey);

impl NodeKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        Self(SigningKey::from_bytes(&seed))
    }

    /// Reads a key file: 64 hex characters (a trailing newline is allowed), mode 0600 or
    /// stricter.
    pub fn load(path: &Path) -> Result<Self, NodeKeyError> {
        let io = |source| NodeKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(NodeKeyError::TooOpen {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim_end_matches('\n'), seed.as_mut()).map_err(|_| {
            NodeKeyError::Malformed {
                path: path.to_owned(),
            }
        })?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Writes the key to a new file with mode 0600; refuses to overwrite an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), NodeKeyError> {
        let text = Zeroizing::new(format!("{}\n", hex::encode(self.0.to_bytes())));
        write_secret_file(path, text.as_bytes()).map_err(|source| NodeKeyError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The public key as 64 hex characters (the form config files pin).
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.0.sign(message)
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey(public {})", self.public_hex())
    }
}

/// Creates `path` (which must not exist) with mode 0600 and writes `contents`, flushed to disk.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_FILE_MODE)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Why a node key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// The file could not be read or written.
    #[error("node key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Group or others may read the file.
    #[error("node key file {path} has mode {mode:o}; it must not be accessible by group or others (chmod 600)")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The contents are not 64 hex characters.
    #[error("node key file {path} must hold exactly 64 hex characters")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn write_then_load_gives_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = NodeKey::generate();
        key.write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = NodeKey::load(&path).unwrap();
        assert_eq!(loaded.verifying_key(), key.verifying_key());
        assert!(!format!("{loaded:?}").contains(&hex::encode(key.0.to_bytes())));
        // never overwritten
        assert!(key.write_new(&path).is_err());
    }

    #[test]
    fn readable_by_others_or_malformed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        NodeKey::generate().write_new(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            NodeKey::load(&path),
            Err(NodeKeyError::TooOpen { .. })
        ));
        let bad = dir.path().join("bad.key");
        write_secret_file(&bad, b"zz").unwrap();
        assert!(matches!(
            NodeKey::load(&bad),
            Err(NodeKeyError::Malformed { .. })
        ));
    }
}
