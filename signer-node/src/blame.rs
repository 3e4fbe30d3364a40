//! Checking a [`Blame`] as a third party would: the evidence is the blamed signers' own
//! envelopes, each signed with their node key (NET-01), so
//!
//! 1. [`verify_evidence`] checks every evidence envelope's node signature against the fleet's
//!    **pinned** node keys (from a signer config's `[[peers]]`), that it belongs to this fleet
//!    and session, and that it was sent by a blamed signer: the culprit cannot deny having
//!    sent it;
//! 2. [`recheck_presign`] re-runs the failing protocol check on those payloads and shows the
//!    proof is invalid. The session digest every proof is bound to is recomputed from the
//!    key's public values and aux info ([`mpc_core::presign::session_digest`]), which any
//!    holder of the key has.
//!
//! What [`recheck_presign`] re-runs today: the round-2 Πelog proof of Γ_i (PRE-03), the check
//! whose failure a single broadcast proves. Other aborts (a Πenc-elg or Πaff-g addressed to one
//! receiver, the round-4 identification) are reported as not re-checkable by this function
//! yet, never as verified.

use std::collections::BTreeMap;

use custody_proto::signer::v1::{Blame, Envelope, ProtocolKind};
use ed25519_dalek::VerifyingKey;
use k256::ProjectivePoint;
use mpc_core::aux_info::AuxInfo;
use mpc_core::dkg::KeyShare;
use mpc_core::hd::DerivationPath;
use mpc_core::presign::msg::{Round1Broadcast, Round2Broadcast};
use mpc_core::presign::{session_digest, PresignConfig};
use mpc_core::protocol::PartyIndex;
use mpc_core::zk::elog::ElogStatement;
use mpc_core::zk::ProofContext;
use prost::Message;

use crate::config::{FleetId, ValidatedConfig};
use crate::envelope::{self, EnvelopeHeader, Recipient, SessionId};

/// One evidence envelope whose node signature verified.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// What the sender signed: fleet, session, protocol, round, from, to.
    pub header: EnvelopeHeader,
    /// The payload (an `mpc-core` protocol message).
    pub payload: Vec<u8>,
}

/// Why a blame does not verify.
#[derive(Debug, thiserror::Error)]
pub enum BlameError {
    /// The blame names nobody or carries no evidence.
    #[error("the blame {0}")]
    Empty(&'static str),
    /// An evidence envelope does not decode or its signature does not verify.
    #[error("evidence {index}: {reason}")]
    Envelope {
        /// Position in `Blame.evidence`.
        index: usize,
        /// What failed.
        reason: String,
    },
    /// An evidence envelope names a sender whose key is not pinned.
    #[error("evidence {index}: sender signer {from} has no pinned node key")]
    UnknownSender {
        /// Position in `Blame.evidence`.
        index: usize,
        /// The claimed sender.
        from: u16,
    },
    /// An evidence envelope belongs elsewhere.
    #[error("evidence {index}: {what}")]
    Mismatch {
        /// Position in `Blame.evidence`.
        index: usize,
        /// What differs.
        what: String,
    },
    /// The re-run check could not be made or did not fail.
    #[error("re-check: {0}")]
    Recheck(String),
}

/// The pinned node keys of `config`'s fleet (its `[[peers]]`).
pub fn pinned_keys(config: &ValidatedConfig) -> BTreeMap<u16, VerifyingKey> {
    config.peers.iter().map(|p| (p.index, p.node_key)).collect()
}

/// Checks every evidence envelope of `blame`: it decodes, is of `fleet` and `session`, was
/// sent by a signer the blame names, and carries a valid node signature under that signer's
/// pinned key. Returns the verified envelopes.
pub fn verify_evidence(
    blame: &Blame,
    fleet: &FleetId,
    session: &SessionId,
    pinned: &BTreeMap<u16, VerifyingKey>,
) -> Result<Vec<Evidence>, BlameError> {
    if blame.culprits.is_empty() {
        return Err(BlameError::Empty("names no culprit"));
    }
    if blame.evidence.is_empty() {
        return Err(BlameError::Empty("carries no evidence"));
    }
    let mut out = Vec::with_capacity(blame.evidence.len());
    for (index, encoded) in blame.evidence.iter().enumerate() {
        let envelope = Envelope::decode(encoded.as_slice()).map_err(|e| BlameError::Envelope {
            index,
            reason: format!("not an encoded envelope: {e}"),
        })?;
        let from = u16::try_from(envelope.from).map_err(|_| BlameError::Envelope {
            index,
            reason: format!("sender {} is over 65535", envelope.from),
        })?;
        let key = pinned
            .get(&from)
            .ok_or(BlameError::UnknownSender { index, from })?;
        let header = envelope::verify_evidence(encoded, key).map_err(|e| BlameError::Envelope {
            index,
            reason: e.to_string(),
        })?;
        if &header.fleet_id != fleet {
            return Err(BlameError::Mismatch {
                index,
                what: format!("fleet {} is not {fleet}", header.fleet_id),
            });
        }
        if &header.session_id != session {
            return Err(BlameError::Mismatch {
                index,
                what: format!("session {} is not {session}", header.session_id),
            });
        }
        if !blame.culprits.contains(&u32::from(header.from)) {
            return Err(BlameError::Mismatch {
                index,
                what: format!(
                    "sent by signer {}, whom the blame does not name",
                    header.from
                ),
            });
        }
        out.push(Evidence {
            header,
            payload: envelope.payload,
        });
    }
    Ok(out)
}

/// What a presigning session was: the inputs its parties were started with.
#[derive(Debug, Clone)]
pub struct PresignSession<'a> {
    /// The session id (also the presignature id).
    pub session: SessionId,
    /// The key's id.
    pub key_id: [u8; 32],
    /// The derivation path of the presignature.
    pub path: DerivationPath,
    /// The signers (fleet indices) of the session.
    pub signers: &'a [u16],
    /// The key's holders (fleet indices, increasing): holder k has committee position k.
    pub holders: &'a [u16],
}

/// A re-run check that failed, i.e. what the evidence proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The signer whose message fails.
    pub culprit: u16,
    /// Protocol round of the failing message.
    pub round: u16,
    /// The proof that does not verify.
    pub proof: &'static str,
    /// The check of that proof that fails.
    pub check: &'static str,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "signer {}'s round-{} message: {} fails ({})",
            self.culprit, self.round, self.proof, self.check
        )
    }
}

fn position(holders: &[u16], index: u16) -> Result<PartyIndex, BlameError> {
    holders
        .iter()
        .position(|h| *h == index)
        .and_then(|p| u16::try_from(p).ok())
        .map(PartyIndex::new)
        .ok_or_else(|| BlameError::Recheck(format!("signer {index} holds no share of the key")))
}

/// Re-runs, on verified `evidence` of a presigning session, the round-2 Πelog check of
/// `culprit` (Γ_i = γ_i·G against the El-Gamal commitment B_i of its round-1 broadcast),
/// exactly as the honest signers ran it. `key` and `aux` are a holder's share and aux info of
/// the key (only their public values are read). Returns the failing check, or an error when
/// the evidence lacks the messages or the proof verifies.
pub fn recheck_presign(
    evidence: &[Evidence],
    culprit: u16,
    session: &PresignSession<'_>,
    key: &KeyShare,
    aux: &AuxInfo,
) -> Result<Finding, BlameError> {
    let find = |round: u16| {
        evidence
            .iter()
            .find(|e| {
                e.header.protocol == ProtocolKind::Presign
                    && e.header.round == round
                    && e.header.from == culprit
                    && e.header.to == Recipient::Broadcast
            })
            .ok_or_else(|| {
                BlameError::Recheck(format!(
                    "no round-{round} presigning broadcast of signer {culprit} in the evidence"
                ))
            })
    };
    let r1 = Round1Broadcast::from_bytes(&find(1)?.payload)
        .map_err(|e| BlameError::Recheck(format!("round-1 broadcast: {e}")))?;
    let parties = usize::from(key.committee().len());
    let r2 = Round2Broadcast::from_bytes(&find(2)?.payload, parties)
        .map_err(|e| BlameError::Recheck(format!("round-2 broadcast: {e}")))?;
    let signers = session
        .signers
        .iter()
        .map(|i| position(session.holders, *i))
        .collect::<Result<Vec<_>, _>>()?;
    let prover = position(session.holders, culprit)?;
    let config = PresignConfig {
        session_id: session.session.0.to_vec(),
        key_id: session.key_id.to_vec(),
        epoch: key.epoch(),
        signers,
        path: session.path.clone(),
    };
    let ssid = session_digest(&config, key, aux)
        .map_err(|e| BlameError::Recheck(format!("session digest: {e}")))?;
    let ctx = ProofContext {
        session_id: &ssid,
        prover: prover.get(),
        rho: aux.rho(),
    };
    let g = ProjectivePoint::GENERATOR;
    let statement = ElogStatement {
        cap_l: &r1.cap_b[0],
        cap_m: &r1.cap_b[1],
        cap_x: &r1.cap_y,
        cap_y: &r2.cap_gamma,
        h: &g,
    };
    match r2.psi.verify(&ctx, &statement) {
        Err(e) => Ok(Finding {
            culprit,
            round: 2,
            proof: e.proof,
            check: e.check,
        }),
        Ok(()) => Err(BlameError::Recheck(format!(
            "signer {culprit}'s round-2 Πelog verifies: this evidence does not show it invalid \
             (only that proof is re-checked by this verifier)"
        ))),
    }
}
