//! The receiving side of `SignerPeer.ProposePresign`: the server hands each verified proposal
//! envelope to a [`PresignProposals`] handler (the session runner's, see
//! `runner::presign_pool`); a node without a runner refuses them ([`NoProposals`]).

use custody_proto::signer::v1::PresignProposalReceipt;
use tonic::Status;

use crate::envelope::VerifiedEnvelope;

/// Decides on presign proposals that passed envelope verification.
#[tonic::async_trait]
pub trait PresignProposals: Send + Sync + 'static {
    /// Accepts (and starts the presigning session) or refuses one proposal.
    async fn propose(&self, envelope: VerifiedEnvelope) -> Result<PresignProposalReceipt, Status>;
}

/// The handler of a node without a session runner: refuses every proposal.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProposals;

#[tonic::async_trait]
impl PresignProposals for NoProposals {
    async fn propose(&self, _envelope: VerifiedEnvelope) -> Result<PresignProposalReceipt, Status> {
        Err(Status::failed_precondition(
            "this node runs no sessions (no session runner); presign proposals are refused",
        ))
    }
}
