//! The sealed record format (version 1).
//!
//! ```text
//! offset  size  field
//!      0     1  format version (1)
//!      1     1  backend id (1 = file, 2 = pkcs11) of the keystore that wraps the data key
//!      2     1  AEAD id (1 = XChaCha20-Poly1305)
//!      3    16  data key id (random, chosen when the keystore was created)
//!     19    24  nonce (random per record)
//!     43     n  ciphertext, then the 16-byte Poly1305 tag
//! ```
//!
//! The 19-byte header is authenticated: it is part of the AEAD's associated data, together with
//! a domain tag and the [`SealAad`](crate::SealAad) encoding. Changing any header byte, the
//! nonce or the ciphertext makes `open` fail.

use std::fmt;

use crate::error::SealError;

/// Current sealed-record format version.
pub const BLOB_VERSION: u8 = 1;
/// AEAD id of XChaCha20-Poly1305 in the header.
pub const AEAD_XCHACHA20POLY1305: u8 = 1;
/// Header length: version, backend, AEAD id, data key id.
pub const HEADER_LEN: usize = 3 + DataKeyId::LEN;
/// XChaCha20-Poly1305 nonce length.
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// Which backend protects the data key.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum BackendKind {
    /// Passphrase file or environment variable, Argon2id, XChaCha20-Poly1305.
    File,
    /// A non-extractable AES-256 key inside a PKCS#11 token.
    Pkcs11,
}

impl BackendKind {
    /// The id written in blob and keystore headers.
    pub const fn id(self) -> u8 {
        match self {
            Self::File => 1,
            Self::Pkcs11 => 2,
        }
    }

    /// The kind for a header id, if known.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::File),
            2 => Some(Self::Pkcs11),
            _ => None,
        }
    }

    /// The name used in profiles and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Pkcs11 => "pkcs11",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Public identifier of a data key: random, chosen when its keystore is created, recorded in
/// the keystore and in every blob sealed under that key. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataKeyId(pub(crate) [u8; DataKeyId::LEN]);

impl DataKeyId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Display for DataKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DataKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKeyId({self})")
    }
}

/// The parsed header of a sealed blob. Parsing checks structure only; authenticity is checked
/// by `open`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlobHeader {
    /// Format version.
    pub version: u8,
    /// Backend that wraps the data key.
    pub backend: BackendKind,
    /// AEAD algorithm id.
    pub aead: u8,
    /// Data key the record was sealed under.
    pub data_key: DataKeyId,
}

impl BlobHeader {
    /// Parses the header of `blob` (e.g. to find which data key sealed a record).
    ///
    /// # Errors
    /// [`SealError::Malformed`] if the blob is shorter than header, nonce and tag or names an
    /// unknown backend; [`SealError::UnsupportedVersion`] / [`SealError::UnsupportedAlgorithm`]
    /// for versions and algorithms this build does not know.
    pub fn parse(blob: &[u8]) -> Result<Self, SealError> {
        let Some(&version) = blob.first() else {
            return Err(SealError::Malformed("empty blob"));
        };
        if version != BLOB_VERSION {
            return Err(SealError::UnsupportedVersion(version));
        }
        if blob.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed(
                "shorter than header, nonce and tag (truncated?)",
            ));
        }
        let backend = BackendKind::from_id(blob[1])
            .ok_or(SealError::Malformed("unknown backend id in header"))?;
        let aead = blob[2];
        if aead != AEAD_XCHACHA20POLY1305 {
            return Err(SealError::UnsupportedAlgorithm(aead));
        }
        let mut id = [0u8; DataKeyId::LEN];
        id.copy_from_slice(&blob[3..HEADER_LEN]);
        Ok(Self {
            version,
            backend,
            aead,
            data_key: DataKeyId(id),
        })
    }

    /// The 19 header bytes as written.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.version;
        out[1] = self.backend.id();
        out[2] = self.aead;
        out[3..].copy_from_slice(&self.data_key.0);
        out
    }
}

/// A sealed record: header, nonce, ciphertext and tag. Safe to store and log the length of;
/// its content is ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBlob(pub(crate) Vec<u8>);

impl SealedBlob {
    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes to store, by value.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// The parsed header.
    ///
    /// # Errors
    /// Never for a blob made by this crate; see [`BlobHeader::parse`].
    pub fn header(&self) -> Result<BlobHeader, SealError> {
        BlobHeader::parse(&self.0)
    }
}

impl AsRef<[u8]> for SealedBlob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedBlob({} bytes)", self.0.len())
    }
}
