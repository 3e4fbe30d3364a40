//! Consensus behind a replaceable trait. The embedded default is [`SoloConsensus`]: one
//! validator that proposes every block and certifies it alone. A Tendermint (Malachite)
//! implementation replaces it later without touching the ledger.

use std::fmt;

use custody_proto::chain::{
    vote_signing_bytes, BlockHeader, CertificateError, CommitCertificate, ValidatorSet,
    ValidatorSetError,
};
use ed25519_dalek::{Signer, SigningKey};

/// Why consensus did not decide a block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// The validator set could not be built.
    #[error("invalid validator set: {0}")]
    ValidatorSet(#[from] ValidatorSetError),
    /// The certificate produced does not verify (a bug or a wrong key).
    #[error("the commit certificate does not verify: {0}")]
    Certificate(#[from] CertificateError),
    /// This node may not propose at this height.
    #[error("this node is not the proposer at height {0}")]
    NotProposer(u64),
}

/// A consensus engine: who proposes a height, and deciding (certifying) a proposed header.
pub trait Consensus {
    /// The validator set whose signatures certify blocks.
    fn validator_set(&self) -> &ValidatorSet;

    /// The Ed25519 key of the proposer at `height`, if this node proposes it.
    fn propose(&self, height: u64) -> Result<[u8; 32], ConsensusError>;

    /// Runs consensus on `header` and returns its commit certificate.
    fn decide(&mut self, header: &BlockHeader) -> Result<CommitCertificate, ConsensusError>;
}

/// One validator with voting power 1: it proposes every height and its single signature
/// (round 0) is the whole certificate (1 × 3 > 1 × 2).
pub struct SoloConsensus {
    key: SigningKey,
    set: ValidatorSet,
}

impl SoloConsensus {
    /// Solo consensus with `key` as the only validator.
    pub fn new(key: SigningKey) -> Result<Self, ConsensusError> {
        let set = ValidatorSet::new(&[(key.verifying_key().to_bytes(), 1)])?;
        Ok(Self { key, set })
    }
}

impl fmt::Debug for SoloConsensus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoloConsensus")
            .field("validator", &self.key.verifying_key())
            .finish_non_exhaustive()
    }
}

impl Consensus for SoloConsensus {
    fn validator_set(&self) -> &ValidatorSet {
        &self.set
    }

    fn propose(&self, _height: u64) -> Result<[u8; 32], ConsensusError> {
        Ok(self.key.verifying_key().to_bytes())
    }

    fn decide(&mut self, header: &BlockHeader) -> Result<CommitCertificate, ConsensusError> {
        if header.proposer != self.key.verifying_key().to_bytes() {
            return Err(ConsensusError::NotProposer(header.height));
        }
        let block_hash = header.hash();
        let round = 0;
        let vote = vote_signing_bytes(&header.chain_id, header.height, round, &block_hash);
        let certificate = CommitCertificate {
            height: header.height,
            round,
            block_hash,
            signatures: vec![(0, self.key.sign(&vote).to_bytes())],
        };
        certificate.verify(&self.set, &header.chain_id, header)?;
        Ok(certificate)
    }
}

/// A replica without a validator key: it proposes nothing and only imports blocks that
/// the validator set certified (`Chain::import_block`).
#[derive(Debug, Clone)]
pub struct FollowerConsensus {
    set: ValidatorSet,
}

impl FollowerConsensus {
    /// A follower of `set`.
    pub fn new(set: ValidatorSet) -> Self {
        Self { set }
    }
}

impl Consensus for FollowerConsensus {
    fn validator_set(&self) -> &ValidatorSet {
        &self.set
    }

    fn propose(&self, height: u64) -> Result<[u8; 32], ConsensusError> {
        Err(ConsensusError::NotProposer(height))
    }

    fn decide(&mut self, header: &BlockHeader) -> Result<CommitCertificate, ConsensusError> {
        Err(ConsensusError::NotProposer(header.height))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use custody_proto::chain::HEADER_VERSION;

    use super::*;

    fn header(proposer: [u8; 32]) -> BlockHeader {
        BlockHeader {
            version: HEADER_VERSION,
            chain_id: "solo".into(),
            height: 1,
            previous_hash: [1; 32],
            time_unix_ms: 5,
            tx_root: [2; 32],
            state_root: [3; 32],
            proposer,
        }
    }

    #[test]
    fn solo_certifies_its_own_proposal_only() {
        let mut solo = SoloConsensus::new(SigningKey::from_bytes(&[4; 32])).unwrap();
        let me = solo.propose(1).unwrap();
        let h = header(me);
        let cert = solo.decide(&h).unwrap();
        assert_eq!(cert.signatures.len(), 1);
        cert.verify(solo.validator_set(), "solo", &h).unwrap();
        assert!(matches!(
            solo.decide(&header([9; 32])),
            Err(ConsensusError::NotProposer(1))
        ));
        // The key never shows in Debug output.
        let shown = format!("{solo:?}");
        assert!(!shown.contains("04040404"), "{shown}");
    }
}
