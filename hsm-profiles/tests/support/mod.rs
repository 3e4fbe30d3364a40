//! Helpers shared by the integration test binaries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod softhsm;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes `content` to `dir/name` with mode 0600 and returns the path.
pub fn secret_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Recomputes the trailing SHA-256 checksum of a keystore file's bytes after an edit.
pub fn fix_checksum(keystore: &mut [u8]) {
    use sha2::{Digest, Sha256};
    let body = keystore.len() - 32;
    let sum = Sha256::digest(&keystore[..body]);
    keystore[body..].copy_from_slice(&sum);
}
