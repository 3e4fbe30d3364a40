//! Votes and the commit certificate: signatures of more than 2/3 of the voting power over
//! (chain id, height, round, block hash).

use ed25519_dalek::Signature;

use super::codec::{Reader, Writer};
use super::{BlockHeader, DecodeError, ValidatorSet, MAX_CHAIN_ID_BYTES, MAX_VALIDATORS};

/// Tag that opens the bytes a validator signs when it votes to commit a block.
pub const VOTE_TAG: &str = "custody.chain.v1/commit-vote";

/// Tag that opens a commit certificate's encoding.
pub const CERTIFICATE_TAG: &str = "custody.chain.v1/commit-certificate";

/// The bytes a validator signs with its Ed25519 key to commit `block_hash` at `height` in
/// `round`: the tag, `chain_id` (u32 length + UTF-8), `height` (u64), `round` (u32) and
/// `block_hash` (32), integers big-endian.
pub fn vote_signing_bytes(
    chain_id: &str,
    height: u64,
    round: u32,
    block_hash: &[u8; 32],
) -> Vec<u8> {
    let mut w = Writer::tagged(VOTE_TAG);
    w.var(chain_id.as_bytes());
    w.u64(height);
    w.u32(round);
    w.fixed(block_hash);
    w.finish()
}

/// Why a commit certificate does not prove that a header was committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The certificate names another block.
    #[error("the certificate is for another block hash than the header's")]
    WrongBlockHash,
    /// The certificate names another height.
    #[error("the certificate is for height {certificate}, the header has height {header}")]
    WrongHeight {
        /// Height in the certificate.
        certificate: u64,
        /// Height in the header.
        header: u64,
    },
    /// The header belongs to another chain than the verifier expects.
    #[error("the header is for chain {got:?}, expected {expected:?}")]
    WrongChain {
        /// The chain the verifier pinned.
        expected: String,
        /// The header's chain id.
        got: String,
    },
    /// Signer indices must be strictly increasing (so each signs once).
    #[error("signer index {index} is not greater than the one before it (duplicate or unordered)")]
    UnorderedSigners {
        /// The offending index.
        index: u16,
    },
    /// A signer index outside the validator set.
    #[error("signer index {0} is not in the validator set")]
    UnknownValidator(u16),
    /// A signature that does not verify under its validator's key.
    #[error("the signature of validator {0} does not verify")]
    BadSignature(u16),
    /// Not more than 2/3 of the voting power signed.
    #[error("signed voting power {signed} of {total} is not more than 2/3")]
    NoQuorum {
        /// Voting power of the valid signatures.
        signed: u128,
        /// Total voting power of the set.
        total: u128,
    },
}

/// Proof that a block was committed: signatures by validators of the set over
/// [`vote_signing_bytes`] of the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitCertificate {
    /// Height of the committed block.
    pub height: u64,
    /// Consensus round in which it was committed.
    pub round: u32,
    /// Hash of the committed block's header.
    pub block_hash: [u8; 32],
    /// (validator index, Ed25519 signature), indices strictly increasing.
    pub signatures: Vec<(u16, [u8; 64])>,
}

impl CommitCertificate {
    /// The canonical encoding: the tag, `height` (u64), `round` (u32), `block_hash` (32),
    /// the signature count (u32), then per signature the index (u16) and the signature (64).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(CERTIFICATE_TAG);
        w.u64(self.height);
        w.u32(self.round);
        w.fixed(&self.block_hash);
        w.u32(u32::try_from(self.signatures.len()).unwrap_or(u32::MAX));
        for (index, sig) in &self.signatures {
            w.u16(*index);
            w.fixed(sig);
        }
        w.finish()
    }

    /// Decodes exactly one certificate (at most [`MAX_VALIDATORS`] signatures). Ordering and
    /// signatures are checked by [`verify`](Self::verify), not here.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, CERTIFICATE_TAG)?;
        let height = r.u64()?;
        let round = r.u32()?;
        let block_hash = r.array()?;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if count > MAX_VALIDATORS {
            return Err(DecodeError::TooLong {
                field: "signatures",
                len: count,
                max: MAX_VALIDATORS,
            });
        }
        let mut signatures = Vec::new();
        for _ in 0..count {
            let index = r.u16()?;
            signatures.push((index, r.array()?));
        }
        r.finish()?;
        Ok(Self {
            height,
            round,
            block_hash,
            signatures,
        })
    }

    /// Checks that this certificate commits `header` on chain `chain_id` under `set`: the
    /// header's chain id, height and hash match; signer indices are strictly increasing and
    /// inside the set; every signature verifies (`verify_strict`); and the signed power
    /// times 3 exceeds the total power times 2.
    pub fn verify(
        &self,
        set: &ValidatorSet,
        chain_id: &str,
        header: &BlockHeader,
    ) -> Result<(), CertificateError> {
        if header.chain_id != chain_id || chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(CertificateError::WrongChain {
                expected: chain_id.to_owned(),
                got: header.chain_id.clone(),
            });
        }
        if self.height != header.height {
            return Err(CertificateError::WrongHeight {
                certificate: self.height,
                header: header.height,
            });
        }
        if self.block_hash != header.hash() {
            return Err(CertificateError::WrongBlockHash);
        }
        let message = vote_signing_bytes(chain_id, self.height, self.round, &self.block_hash);
        let mut previous: Option<u16> = None;
        let mut signed: u128 = 0;
        for (index, sig) in &self.signatures {
            if previous.is_some_and(|p| *index <= p) {
                return Err(CertificateError::UnorderedSigners { index: *index });
            }
            previous = Some(*index);
            let validator = set
                .get(*index)
                .ok_or(CertificateError::UnknownValidator(*index))?;
            validator
                .key
                .verify_strict(&message, &Signature::from_bytes(sig))
                .map_err(|_| CertificateError::BadSignature(*index))?;
            signed += u128::from(validator.power);
        }
        // Both sides stay below 2^82: no overflow.
        if signed * 3 > set.total_power() * 2 {
            Ok(())
        } else {
            Err(CertificateError::NoQuorum {
                signed,
                total: set.total_power(),
            })
        }
    }
}
