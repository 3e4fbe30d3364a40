//! Signing (CGGMP24 Fig. 10): one round from a presignature.
//!
//! Each signer i computes σ_i = k_i·m + r·χ_i for the digest m (reduced mod q) and
//! r = x(R) mod q, and broadcasts it with the presignature's transcript digest. The combiner
//! (any signer, or the coordinator: it needs only public values) checks every σ_j against the
//! presignature's public values before combining (SIG-03): σ_j·Γ = m·Δ_j + r·S_j, which holds
//! because Δ_j = k_j·Γ and S_j = χ_j·Γ. A wrong σ_j names party j. Then σ = Σ σ_j, s is
//! normalised to the lower half (low-s, as Bitcoin and Ethereum require), the recovery id is
//! computed for Ethereum, and the signature is verified against the child public key with
//! k256 before it is returned.
//!
//! A presignature signs once: [`Presignature::sign`] consumes it (in memory; across restarts
//! the signer node erases it durably before the partial signature leaves, PRE-06). The digest
//! is whatever the caller passes: *which* digest may be signed with a pooled presignature is
//! the signer node's policy (SIG-01: only digests it computed itself from a committed order).

use alloc::vec::Vec;

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::{FieldBytes, Scalar, U256};

use crate::encoding::{DecodeError, Reader, Writer};
use crate::presign::{Presignature, PresignaturePublic, DIGEST_BYTES};
use crate::protocol::PartyIndex;

/// Type tag of a partial signature on the wire.
pub const PARTIAL_SIGNATURE_TAG: u8 = 0x58;

/// One signer's σ_i, bound to the presignature's transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialSignature {
    /// The signer.
    pub from: PartyIndex,
    /// The presignature transcript digest it was made from.
    pub transcript: [u8; DIGEST_BYTES],
    /// σ_i.
    pub sigma: Scalar,
}

impl PartialSignature {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(PARTIAL_SIGNATURE_TAG)
            .u16(self.from.get())
            .array(&self.transcript)
            .scalar(&self.sigma)
            .finish()
    }

    /// Decodes the canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, PARTIAL_SIGNATURE_TAG)?;
        let from = PartyIndex::new(r.u16("from")?);
        let transcript = r.array("transcript")?;
        let sigma = r.scalar("σ_i")?;
        r.finish()?;
        Ok(Self {
            from,
            transcript,
            sigma,
        })
    }
}

/// A finished ECDSA signature with its recovery id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoverableSignature {
    /// (r, s) with s in the lower half.
    pub signature: Signature,
    /// The recovery id (Ethereum's v − 27, or v − 35 − 2·chain id for EIP-155).
    pub recovery_id: RecoveryId,
}

/// Why combining failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Not exactly one partial signature from every signer of the presignature.
    #[error("partial signatures do not match the signer set")]
    SignerSet,
    /// A partial signature of another presignature transcript (names its sender).
    #[error("partial signature of {0} is for another presignature transcript")]
    TranscriptMismatch(PartyIndex),
    /// σ_j·Γ ≠ m·Δ_j + r·S_j (SIG-03; names the sender).
    #[error("partial signature of {0} does not verify")]
    InvalidPartial(PartyIndex),
    /// The presignature is of an earlier (or later) epoch than the key (REF-03).
    #[error("presignature of epoch {presignature}, key at epoch {current}")]
    StaleEpoch {
        /// The presignature's epoch.
        presignature: u64,
        /// The key's current epoch.
        current: u64,
    },
    /// r or s is zero, or the result does not verify (never for checked partials: a bug).
    #[error("combined signature does not verify")]
    InvalidSignature,
}

fn digest_scalar(digest: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*digest))
}

fn r_scalar(public: &PresignaturePublic) -> Scalar {
    let x = public.cap_r.to_affine().x();
    <Scalar as Reduce<U256>>::reduce_bytes(&x)
}

impl Presignature {
    /// Like [`Self::sign`], but refuses a presignature of another epoch than the key's current
    /// one (REF-03: a refresh makes every earlier presignature unusable; the signer node also
    /// erases them). The presignature is consumed either way.
    pub fn sign_at_epoch(
        self,
        current_epoch: u64,
        digest: &[u8; 32],
    ) -> Result<PartialSignature, SignError> {
        if self.public.epoch != current_epoch {
            return Err(SignError::StaleEpoch {
                presignature: self.public.epoch,
                current: current_epoch,
            });
        }
        Ok(self.sign(digest))
    }

    /// σ_i = k_i·m + r·χ_i for the 32-byte digest m (Fig. 10). Consumes the presignature.
    pub fn sign(self, digest: &[u8; 32]) -> PartialSignature {
        let m = digest_scalar(digest);
        let r = r_scalar(&self.public);
        PartialSignature {
            from: self.me,
            transcript: self.public.transcript,
            sigma: *self.k * m + r * *self.chi,
        }
    }
}

/// Checks every partial signature (SIG-03) and combines them into a low-s signature with its
/// recovery id, verified against the presignature's child public key.
pub fn combine(
    public: &PresignaturePublic,
    digest: &[u8; 32],
    partials: &[PartialSignature],
) -> Result<RecoverableSignature, SignError> {
    if partials.len() != public.signers.len() {
        return Err(SignError::SignerSet);
    }
    let m = digest_scalar(digest);
    let r = r_scalar(public);
    let mut s = Scalar::ZERO;
    for (pos, signer) in public.signers.iter().enumerate() {
        let mut found = partials.iter().filter(|p| p.from == *signer);
        let (Some(p), None) = (found.next(), found.next()) else {
            return Err(SignError::SignerSet);
        };
        if p.transcript != public.transcript {
            return Err(SignError::TranscriptMismatch(p.from));
        }
        let (Some(cap_delta), Some(cap_s)) = (public.cap_deltas.get(pos), public.cap_ss.get(pos))
        else {
            return Err(SignError::SignerSet);
        };
        if public.cap_gamma * p.sigma != *cap_delta * m + *cap_s * r {
            return Err(SignError::InvalidPartial(p.from));
        }
        s += p.sigma;
    }
    let signature = Signature::from_scalars(r, s).map_err(|_| SignError::InvalidSignature)?;
    let signature = signature.normalize_s().unwrap_or(signature);
    let key = VerifyingKey::from_affine(public.public_key.to_affine())
        .map_err(|_| SignError::InvalidSignature)?;
    key.verify_prehash(digest, &signature)
        .map_err(|_| SignError::InvalidSignature)?;
    let recovery_id = RecoveryId::trial_recovery_from_prehash(&key, digest, &signature)
        .map_err(|_| SignError::InvalidSignature)?;
    Ok(RecoverableSignature {
        signature,
        recovery_id,
    })
}
