//! The [`Sealer`] trait and its one implementation, [`EnvelopeSealer`]: records are encrypted
//! in software under a data key (DEK); the backends only protect (wrap) that data key.
//!
//! Nonces: every record gets a fresh random 24-byte XChaCha20-Poly1305 nonce from the OS
//! generator. With 192-bit random nonces the chance that two of 2^64 records share a nonce is
//! about 2^-65, so nonce reuse under one data key is not a practical concern and no counter
//! state has to survive crashes.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, OsRng, RngCore};
use zeroize::Zeroizing;

use crate::aad::SealAad;
use crate::blob::{
    BackendKind, BlobHeader, DataKeyId, SealedBlob, AEAD_XCHACHA20POLY1305, BLOB_VERSION,
    HEADER_LEN, NONCE_LEN,
};
use crate::error::SealError;

/// Domain tag that starts the associated data of every sealed record.
const RECORD_DOMAIN: &[u8] = b"custody-appliance/hsm-profiles/sealed-record/v1";

/// Seals and opens secret records at rest (OPS-04).
///
/// Object safe; share one as `Arc<dyn Sealer>` between threads.
pub trait Sealer: Send + Sync {
    /// Encrypts `plaintext` bound to `aad`.
    ///
    /// # Errors
    /// [`SealError::Encryption`] only for inputs the AEAD cannot take (hundreds of GiB).
    fn seal(&self, aad: &SealAad, plaintext: &[u8]) -> Result<SealedBlob, SealError>;

    /// Decrypts `blob` if it was sealed by this sealer's data key with exactly this `aad`.
    ///
    /// # Errors
    /// [`SealError::Authentication`] if the blob was altered or `aad` differs; the header
    /// errors of [`BlobHeader::parse`]; [`SealError::WrongBackend`] / [`SealError::WrongDataKey`]
    /// if the blob names another backend or data key.
    fn open(&self, aad: &SealAad, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError>;

    /// Which backend protects the data key.
    fn kind(&self) -> BackendKind;

    /// One line for status output and logs: backend, keystore, token and key labels, data key
    /// id. Never contains secrets.
    fn describe(&self) -> String;
}

/// A 256-bit data key and its public id.
pub(crate) struct DataKey {
    key: Zeroizing<[u8; 32]>,
    id: DataKeyId,
}

impl DataKey {
    /// A fresh random data key and id.
    pub(crate) fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        let mut id = [0u8; DataKeyId::LEN];
        rng.fill_bytes(&mut id);
        Self {
            key,
            id: DataKeyId(id),
        }
    }

    /// A data key recovered from a keystore.
    pub(crate) fn from_parts(key: Zeroizing<[u8; 32]>, id: DataKeyId) -> Self {
        Self { key, id }
    }

    /// The key bytes, for wrapping.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The public id.
    pub(crate) fn id(&self) -> DataKeyId {
        self.id
    }
}

/// Envelope encryption: records are sealed with XChaCha20-Poly1305 under an in-memory data
/// key that a backend unwrapped at start. Built by
/// [`FileBackend`](crate::FileBackend), [`Pkcs11Backend`](crate::Pkcs11Backend) or
/// [`Profile`](crate::Profile); the data key is zeroized when this value is dropped.
pub struct EnvelopeSealer {
    dek: DataKey,
    backend: BackendKind,
    description: String,
}

impl EnvelopeSealer {
    pub(crate) fn new(dek: DataKey, backend: BackendKind, description: String) -> Self {
        Self {
            dek,
            backend,
            description,
        }
    }

    /// The public id of the data key (also in every blob header).
    pub fn data_key_id(&self) -> DataKeyId {
        self.dek.id()
    }

    fn header(&self) -> BlobHeader {
        BlobHeader {
            version: BLOB_VERSION,
            backend: self.backend,
            aead: AEAD_XCHACHA20POLY1305,
            data_key: self.dek.id(),
        }
    }

    fn associated_data(header: &[u8; HEADER_LEN], aad: &SealAad) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_DOMAIN.len() + HEADER_LEN + 64);
        out.extend_from_slice(RECORD_DOMAIN);
        out.extend_from_slice(header);
        aad.encode_into(&mut out);
        out
    }

    /// [`Sealer::seal`] with the nonce drawn from `rng` (tests pin it for golden vectors).
    pub(crate) fn seal_with_rng<R: RngCore + CryptoRng>(
        &self,
        aad: &SealAad,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<SealedBlob, SealError> {
        let header = self.header().to_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(self.dek.bytes().into());
        let ad = Self::associated_data(&header, aad);
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .map_err(|_| SealError::Encryption)?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(SealedBlob(out))
    }
}

impl Sealer for EnvelopeSealer {
    fn seal(&self, aad: &SealAad, plaintext: &[u8]) -> Result<SealedBlob, SealError> {
        self.seal_with_rng(aad, plaintext, &mut OsRng)
    }

    fn open(&self, aad: &SealAad, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let header = BlobHeader::parse(blob)?;
        if header.backend != self.backend {
            return Err(SealError::WrongBackend {
                expected: self.backend,
                found: header.backend,
            });
        }
        if header.data_key != self.dek.id() {
            return Err(SealError::WrongDataKey {
                expected: self.dek.id().to_string(),
                found: header.data_key.to_string(),
            });
        }
        // Authenticate the header bytes exactly as stored.
        let mut header_bytes = [0u8; HEADER_LEN];
        header_bytes.copy_from_slice(&blob[..HEADER_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&blob[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        let cipher = XChaCha20Poly1305::new(self.dek.bytes().into());
        let ad = Self::associated_data(&header_bytes, aad);
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &blob[HEADER_LEN + NONCE_LEN..],
                    aad: &ad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Authentication)
    }

    fn kind(&self) -> BackendKind {
        self.backend
    }

    fn describe(&self) -> String {
        format!("{}, data key {}", self.description, self.dek.id())
    }
}

impl fmt::Debug for EnvelopeSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeSealer")
            .field("backend", &self.backend)
            .field("data_key_id", &self.dek.id())
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sealer() -> EnvelopeSealer {
        EnvelopeSealer::new(
            DataKey::generate(&mut OsRng),
            BackendKind::File,
            "test".into(),
        )
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let s = sealer();
        let aad = SealAad::new("share", b"key-1").unwrap();
        let a = s.seal(&aad, b"secret share").unwrap();
        let b = s.seal(&aad, b"secret share").unwrap();
        assert_ne!(
            a, b,
            "two seals of the same record must differ (random nonce)"
        );
        assert_eq!(
            s.open(&aad, a.as_bytes()).unwrap().as_slice(),
            b"secret share"
        );
        assert_eq!(
            s.open(&aad, b.as_bytes()).unwrap().as_slice(),
            b"secret share"
        );
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let s = sealer();
        let aad = SealAad::new("aux", b"k").unwrap();
        let blob = s.seal(&aad, b"0123456789").unwrap().into_vec();
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut bad = blob.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    s.open(&aad, &bad).is_err(),
                    "flip at byte {i} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn debug_does_not_show_the_data_key() {
        let s = sealer();
        let text = format!("{s:?}");
        assert!(text.contains("EnvelopeSealer"));
        let key_hex: String = s.dek.bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&key_hex));
        assert!(!text.contains(&format!("{:?}", s.dek.bytes())));
    }
}
