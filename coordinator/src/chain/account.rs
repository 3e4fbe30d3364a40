//! Accounts are secp256k1 keys; an account is named by its address.

use std::fmt;

use k256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

/// Tag hashed before the public key when deriving an address.
pub const ADDRESS_TAG: &[u8] = b"custody.chain.v1/address";

/// An account address: the first 20 bytes of
/// `SHA-256("custody.chain.v1/address" ‖ SEC1 compressed public key (33 bytes))`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of the account whose key is `key`.
    pub fn of_key(key: &VerifyingKey) -> Self {
        Self::of_compressed(&compressed(key))
    }

    /// The address of the account whose SEC1 compressed public key is `sec1`.
    pub fn of_compressed(sec1: &[u8; 33]) -> Self {
        let digest = Sha256::new()
            .chain_update(ADDRESS_TAG)
            .chain_update(sec1)
            .finalize();
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[..20]);
        Self(out)
    }
}

/// The 33-byte SEC1 compressed encoding of `key`.
pub fn compressed(key: &VerifyingKey) -> [u8; 33] {
    // A verifying key is never the identity, so its compressed form is always 33 bytes.
    let point = key.to_encoded_point(true);
    let mut out = [0u8; 33];
    out.copy_from_slice(point.as_bytes());
    out
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}
