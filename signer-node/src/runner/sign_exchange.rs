//! The signing round (CGGMP24 Fig. 10) as a one-round [`Protocol`]: each signer broadcasts
//! its partial signature σ_i, and everyone combines with every partial checked (SIG-03).
//!
//! mpc-core's `sign` module gives the two halves (`Presignature::sign_at_epoch`, `combine`);
//! this wraps them in the same state-machine shape as the other protocols so the session
//! driver (envelopes, deadline, blame) is shared. The partial is made *before* this party is
//! built, after the presignature was durably taken from the vault (PRE-06).

use std::collections::BTreeMap;

use mpc_core::presign::PresignaturePublic;
use mpc_core::protocol::{
    Abort, AbortReason, Evidence, Incoming, Outcome, Outgoing, PartyIndex, Protocol, Recipient,
    Rejected, Step,
};
use mpc_core::sign::{combine, PartialSignature, RecoverableSignature, SignError};
use rand_core::CryptoRngCore;

/// The only round.
pub const SIGN_ROUND: u16 = 1;

/// One signer's side of the signing round.
pub struct SignExchange {
    public: PresignaturePublic,
    digest: [u8; 32],
    own: PartialSignature,
    received: BTreeMap<PartyIndex, (PartialSignature, Vec<u8>)>,
    started: bool,
    finished: bool,
}

impl std::fmt::Debug for SignExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignExchange")
            .field("me", &self.own.from)
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

impl SignExchange {
    /// The round for our partial `own` of the presignature `public` over `digest`.
    pub fn new(public: PresignaturePublic, digest: [u8; 32], own: PartialSignature) -> Self {
        Self {
            public,
            digest,
            own,
            received: BTreeMap::new(),
            started: false,
            finished: false,
        }
    }

    fn abort(
        &mut self,
        culprits: Vec<PartyIndex>,
        reason: AbortReason,
        evidence: Evidence,
    ) -> Step<RecoverableSignature> {
        self.finished = true;
        Step {
            outgoing: Vec::new(),
            outcome: Some(Outcome::Abort(Abort {
                round: SIGN_ROUND,
                culprits,
                reason,
                evidence,
            })),
        }
    }

    fn try_finish(&mut self) -> Step<RecoverableSignature> {
        if self.received.len() + 1 < self.public.signers.len() {
            return Step::empty();
        }
        let mut partials: Vec<PartialSignature> =
            self.received.values().map(|(p, _)| p.clone()).collect();
        partials.push(self.own.clone());
        match combine(&self.public, &self.digest, &partials) {
            Ok(signature) => {
                self.finished = true;
                Step {
                    outgoing: Vec::new(),
                    outcome: Some(Outcome::Output(signature)),
                }
            }
            Err(SignError::InvalidPartial(p)) => {
                let evidence = self.payload_of(p);
                self.abort(vec![p], AbortReason::InvalidPartialSignature, evidence)
            }
            Err(SignError::TranscriptMismatch(p)) => {
                let evidence = self.payload_of(p);
                self.abort(vec![p], AbortReason::TranscriptMismatch, evidence)
            }
            Err(_) => {
                let me = self.own.from;
                self.abort(
                    vec![me],
                    AbortReason::Bug("partials checked but the signature does not combine"),
                    Evidence::None,
                )
            }
        }
    }

    fn payload_of(&self, p: PartyIndex) -> Evidence {
        match self.received.get(&p) {
            Some((_, bytes)) => Evidence::Payload {
                from: p,
                round: SIGN_ROUND,
                bytes: bytes.clone(),
            },
            None => Evidence::None,
        }
    }
}

impl Protocol for SignExchange {
    type Output = RecoverableSignature;

    fn me(&self) -> PartyIndex {
        self.own.from
    }

    fn current_round(&self) -> Option<u16> {
        (self.started && !self.finished).then_some(SIGN_ROUND)
    }

    fn start(&mut self, _rng: &mut dyn CryptoRngCore) -> Result<Step<Self::Output>, Rejected> {
        if self.started {
            return Err(Rejected::AlreadyStarted);
        }
        self.started = true;
        let mut step = self.try_finish();
        step.outgoing.insert(
            0,
            Outgoing {
                round: SIGN_ROUND,
                to: Recipient::All,
                payload: self.own.to_bytes(),
            },
        );
        Ok(step)
    }

    fn handle(
        &mut self,
        _rng: &mut dyn CryptoRngCore,
        msg: Incoming,
    ) -> Result<Step<Self::Output>, Rejected> {
        if !self.started {
            return Err(Rejected::NotStarted);
        }
        if self.finished {
            return Err(Rejected::Finished);
        }
        if msg.round != SIGN_ROUND {
            return Err(Rejected::WrongRound {
                expected: SIGN_ROUND,
                got: msg.round,
            });
        }
        if msg.from == self.own.from {
            return Err(Rejected::FromSelf);
        }
        if !self.public.signers.contains(&msg.from) {
            return Err(Rejected::UnknownSender(msg.from));
        }
        if msg.to != Recipient::All {
            return Err(Rejected::UnexpectedKind {
                round: SIGN_ROUND,
                kind: "direct",
            });
        }
        let partial = PartialSignature::from_bytes(&msg.payload)?;
        if let Some((_, first)) = self.received.get(&msg.from) {
            if *first == msg.payload {
                return Err(Rejected::Duplicate);
            }
            let first = first.clone();
            return Ok(self.abort(
                vec![msg.from],
                AbortReason::Equivocation,
                Evidence::Conflict {
                    first,
                    second: msg.payload,
                },
            ));
        }
        if partial.from != msg.from {
            return Ok(self.abort(
                vec![msg.from],
                AbortReason::InvalidPartialSignature,
                Evidence::Payload {
                    from: msg.from,
                    round: SIGN_ROUND,
                    bytes: msg.payload,
                },
            ));
        }
        self.received.insert(msg.from, (partial, msg.payload));
        Ok(self.try_finish())
    }

    fn on_round_deadline(
        &mut self,
        _rng: &mut dyn CryptoRngCore,
        round: u16,
    ) -> Result<Step<Self::Output>, Rejected> {
        if self.current_round() != Some(round) {
            return Err(Rejected::WrongRound {
                expected: self.current_round().unwrap_or(0),
                got: round,
            });
        }
        let missing: Vec<PartyIndex> = self
            .public
            .signers
            .iter()
            .copied()
            .filter(|p| *p != self.own.from && !self.received.contains_key(p))
            .collect();
        Ok(self.abort(missing, AbortReason::MissingMessage, Evidence::None))
    }
}
