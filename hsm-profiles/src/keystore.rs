//! The keystore file: one wrapped data key and what is needed to unwrap it (format version 1).
//!
//! ```text
//! magic           16  "custody-keystore"
//! version          1  1
//! backend          1  1 = file, 2 = pkcs11
//! data key id     16
//! params length    2  big-endian
//! params           n  backend-specific (KDF parameters and salt, or token/key labels and IV)
//! wrapped length   2  big-endian
//! wrapped          m  the data key encrypted under the key-encryption key, with its tag
//! checksum        32  SHA-256 of everything above
//! ```
//!
//! Everything from the magic to the end of `params` (the "header") is the associated data of
//! the wrap, so editing any of it makes unwrapping fail. The checksum is not a security
//! mechanism (anyone can recompute it); it only lets `open` tell an edited or damaged file
//! ([`KeystoreError::Corrupt`]) from a wrong passphrase or key.
//!
//! Files are written atomically and never replaced: a temporary file in the same directory
//! (mode 0600) is written and fsynced, hard-linked to the final name (which fails if that name
//! exists), removed, and the directory is fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::blob::{BackendKind, DataKeyId};
use crate::error::KeystoreError;

/// First bytes of every keystore file.
pub const KEYSTORE_MAGIC: &[u8; 16] = b"custody-keystore";
/// Current keystore format version.
pub const KEYSTORE_VERSION: u8 = 1;
/// Largest keystore file read, in bytes.
pub const MAX_KEYSTORE_LEN: u64 = 64 * 1024;
/// Domain tag that starts the associated data of the data-key wrap.
const WRAP_DOMAIN: &[u8] = b"custody-appliance/hsm-profiles/keystore-wrap/v1";

/// The decoded content of a keystore file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Keystore {
    pub(crate) backend: BackendKind,
    pub(crate) data_key: DataKeyId,
    pub(crate) params: Vec<u8>,
    pub(crate) wrapped: Vec<u8>,
}

impl Keystore {
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36 + self.params.len());
        out.extend_from_slice(KEYSTORE_MAGIC);
        out.push(KEYSTORE_VERSION);
        out.push(self.backend.id());
        out.extend_from_slice(self.data_key.as_bytes());
        // Params are built by this crate and are far below 64 KiB.
        let len = u16::try_from(self.params.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.params);
        out
    }

    /// Associated data for wrapping and unwrapping the data key.
    pub(crate) fn wrap_aad(&self) -> Vec<u8> {
        let mut out = WRAP_DOMAIN.to_vec();
        out.extend_from_slice(&self.header());
        out
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        let len = u16::try_from(self.wrapped.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.wrapped);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Self, KeystoreError> {
        let corrupt = |reason| KeystoreError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        if bytes.len() < KEYSTORE_MAGIC.len() || &bytes[..KEYSTORE_MAGIC.len()] != KEYSTORE_MAGIC {
            return Err(corrupt("not a custody keystore file (bad magic)"));
        }
        let mut r = Reader {
            bytes,
            pos: KEYSTORE_MAGIC.len(),
        };
        let version = r.u8().ok_or(corrupt("truncated"))?;
        if version != KEYSTORE_VERSION {
            return Err(KeystoreError::UnsupportedVersion {
                path: path.to_owned(),
                version,
            });
        }
        if bytes.len() < 32 {
            return Err(corrupt("truncated"));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body)[..] != *checksum {
            return Err(corrupt(
                "checksum mismatch (the file was truncated, edited or damaged)",
            ));
        }
        r.bytes = body;
        let backend = BackendKind::from_id(r.u8().ok_or(corrupt("truncated"))?)
            .ok_or(corrupt("unknown backend id"))?;
        let mut id = [0u8; DataKeyId::LEN];
        id.copy_from_slice(r.take(DataKeyId::LEN).ok_or(corrupt("truncated"))?);
        let params_len = r.u16().ok_or(corrupt("truncated"))?;
        let params = r
            .take(params_len.into())
            .ok_or(corrupt("truncated"))?
            .to_vec();
        let wrapped_len = r.u16().ok_or(corrupt("truncated"))?;
        let wrapped = r
            .take(wrapped_len.into())
            .ok_or(corrupt("truncated"))?
            .to_vec();
        if r.pos != body.len() {
            return Err(corrupt("trailing bytes after the wrapped key"));
        }
        Ok(Self {
            backend,
            data_key: DataKeyId(id),
            params,
            wrapped,
        })
    }

    /// Reads and decodes `path`, checking that it belongs to `expected`.
    pub(crate) fn read(path: &Path, expected: BackendKind) -> Result<Self, KeystoreError> {
        let bytes = read_capped(path)?;
        let ks = Self::decode(path, &bytes)?;
        if ks.backend != expected {
            return Err(KeystoreError::WrongBackend {
                path: path.to_owned(),
                expected,
                found: ks.backend,
            });
        }
        Ok(ks)
    }
}

/// Sequential reader over a byte slice; every accessor returns `None` past the end.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Some(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> KeystoreError + '_ {
    move |source| KeystoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, KeystoreError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeystoreError::NotFound(path.to_owned()))
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut bytes = Vec::new();
    Read::by_ref(&mut file)
        .take(MAX_KEYSTORE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_KEYSTORE_LEN {
        return Err(KeystoreError::Corrupt {
            path: path.to_owned(),
            reason: "larger than any keystore (64 KiB)",
        });
    }
    Ok(bytes)
}

/// Fails with [`KeystoreError::AlreadyExists`] if `path` exists (checked before expensive
/// work; [`write_new_file`] checks again atomically).
pub(crate) fn ensure_absent(path: &Path) -> Result<(), KeystoreError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(KeystoreError::AlreadyExists(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes `bytes` to the new file `path` (mode 0600) atomically; refuses to replace anything.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| KeystoreError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "keystore path has no file name",
            ),
        })?
        .to_string_lossy()
        .into_owned();
    let mut tag = [0u8; 8];
    OsRng.fill_bytes(&mut tag);
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{name}.tmp-{}-{tag}", std::process::id()));

    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        // link(2) is atomic and fails if the target exists: never replaces a keystore.
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(KeystoreError::AlreadyExists(path.to_owned()))
            }
            Err(e) => Err(io_err(path)(e)),
        }
    })();
    // The temporary name is ours alone; removing it is best effort either way.
    let _ = fs::remove_file(&tmp);
    result?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> Keystore {
        Keystore {
            backend: BackendKind::File,
            data_key: DataKeyId([7; 16]),
            params: vec![1, 2, 3],
            wrapped: vec![9; 48],
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let ks = sample();
        let bytes = ks.encode();
        assert_eq!(Keystore::decode(Path::new("k"), &bytes).unwrap(), ks);
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_a_typed_error() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            let err = Keystore::decode(Path::new("k"), &bytes[..len]).unwrap_err();
            assert!(
                matches!(err, KeystoreError::Corrupt { .. }),
                "len {len}: {err}"
            );
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let err = Keystore::decode(Path::new("k"), &bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    KeystoreError::Corrupt { .. } | KeystoreError::UnsupportedVersion { .. }
                ),
                "byte {i}: {err}"
            );
        }
    }

    #[test]
    fn write_new_file_is_0600_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks");
        write_new_file(&path, b"first").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = write_new_file(&path, b"second").unwrap_err();
        assert!(matches!(err, KeystoreError::AlreadyExists(_)));
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert!(matches!(
            ensure_absent(&path),
            Err(KeystoreError::AlreadyExists(_))
        ));
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_and_oversized_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            Keystore::read(&missing, BackendKind::File),
            Err(KeystoreError::NotFound(_))
        ));
        let big = dir.path().join("big");
        fs::write(&big, vec![0u8; 70 * 1024]).unwrap();
        assert!(matches!(
            Keystore::read(&big, BackendKind::File),
            Err(KeystoreError::Corrupt { .. })
        ));
        let other = dir.path().join("other");
        fs::write(&other, sample().encode()).unwrap();
        assert!(matches!(
            Keystore::read(&other, BackendKind::Pkcs11),
            Err(KeystoreError::WrongBackend { .. })
        ));
    }
}
