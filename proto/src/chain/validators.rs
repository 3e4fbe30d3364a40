//! The validator set a commit certificate is checked against, which signers pin.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use super::codec::{Reader, Writer};
use super::DecodeError;

/// Tag that opens a validator set's encoding.
pub const VALIDATOR_SET_TAG: &str = "custody.chain.v1/validator-set";

/// Most validators a set may hold: indices in a certificate are u16.
pub const MAX_VALIDATORS: usize = 1 << 16;

/// Why a validator set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidatorSetError {
    /// A set must hold at least one validator.
    #[error("the validator set is empty")]
    Empty,
    /// More validators than u16 indices can address.
    #[error("the validator set has {0} validators, at most {MAX_VALIDATORS} are allowed")]
    TooMany(usize),
    /// The same key appears twice.
    #[error("validator {second} has the same key as validator {first}")]
    DuplicateKey {
        /// Index of the first occurrence.
        first: usize,
        /// Index of the repeated key.
        second: usize,
    },
    /// A key is not a valid Ed25519 point, or is a weak (small-order) key.
    #[error("validator {0} has an invalid or weak Ed25519 key")]
    BadKey(usize),
    /// Every validator must have voting power of at least 1.
    #[error("validator {0} has zero voting power")]
    ZeroPower(usize),
}

/// One validator: an Ed25519 key and its voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Ed25519 public key; votes are verified with it.
    pub key: VerifyingKey,
    /// Voting power, at least 1.
    pub power: u64,
}

/// An ordered set of validators; a validator's position is its index in certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u128,
}

impl ValidatorSet {
    /// Builds a set from (Ed25519 key bytes, power) pairs, in index order. Refuses an empty
    /// set, more than [`MAX_VALIDATORS`], invalid or weak keys, zero power and duplicate keys.
    pub fn new(members: &[([u8; 32], u64)]) -> Result<Self, ValidatorSetError> {
        if members.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if members.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany(members.len()));
        }
        let mut validators: Vec<Validator> = Vec::with_capacity(members.len());
        let mut seen: BTreeMap<[u8; 32], usize> = BTreeMap::new();
        let mut total_power: u128 = 0;
        for (i, (bytes, power)) in members.iter().enumerate() {
            if let Some(first) = seen.insert(*bytes, i) {
                return Err(ValidatorSetError::DuplicateKey { first, second: i });
            }
            let key = VerifyingKey::from_bytes(bytes).map_err(|_| ValidatorSetError::BadKey(i))?;
            if key.is_weak() {
                return Err(ValidatorSetError::BadKey(i));
            }
            if *power == 0 {
                return Err(ValidatorSetError::ZeroPower(i));
            }
            // At most 2^16 summands below 2^64: the sum stays below 2^80.
            total_power += u128::from(*power);
            validators.push(Validator { key, power: *power });
        }
        Ok(Self {
            validators,
            total_power,
        })
    }

    /// The validators in index order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validator at `index`, if any.
    pub fn get(&self, index: u16) -> Option<&Validator> {
        self.validators.get(usize::from(index))
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u128 {
        self.total_power
    }

    /// The canonical encoding: the tag, the count (u32), then per validator its key (32)
    /// and power (u64), big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(VALIDATOR_SET_TAG);
        w.u32(u32::try_from(self.validators.len()).unwrap_or(u32::MAX));
        for v in &self.validators {
            w.fixed(v.key.as_bytes());
            w.u64(v.power);
        }
        w.finish()
    }

    /// Decodes and validates a set, with the checks of [`new`](Self::new).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, VALIDATOR_SET_TAG)?;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if count > MAX_VALIDATORS {
            return Err(DecodeError::TooLong {
                field: "validators",
                len: count,
                max: MAX_VALIDATORS,
            });
        }
        let mut members = Vec::new();
        for _ in 0..count {
            let key: [u8; 32] = r.array()?;
            members.push((key, r.u64()?));
        }
        r.finish()?;
        Self::new(&members).map_err(DecodeError::ValidatorSet)
    }

    /// SHA-256 of the canonical encoding: what a signer pins.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}
