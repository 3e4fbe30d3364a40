//! The reshare phase of a node as one [`Protocol`]: a description round, then mpc-core's
//! WWW02 redistribution (`mpc_core::reshare`) with this node's dealer and/or receiver party.
//!
//! **Node positions.** The session's parties are the signers of dealers ∪ new committee, in
//! increasing index order (the driver's `Route`). mpc-core numbers its parties differently
//! (dealers 0..t, then receivers t..t + m') and a node that is both a dealer and a new holder
//! runs two parties; this wrapper maps between the two: rounds 1 and 3 of mpc-core are sent
//! by dealers and rounds 2 and 4 by receivers, so (signer, round) names one core party.
//! Messages between this node's own two parties never leave the node.
//!
//! **Wire rounds.** Round 1 is the description round; mpc-core's round r is wire round r + 1.
//!
//! **Description round.** A new holder that holds nothing of the key knows only the key id
//! and epoch from the request. Every dealer broadcasts the key's public description (key id,
//! old holders, old threshold, epoch, public key, old public shares, chain code; no secret).
//! A node that holds the key compares every dealer's description with its own and blames the
//! dealers that differ; a node that does not requires all dealers to send the same bytes
//! (else it blames the minority, or all dealers when there is no majority), then checks the
//! description against the request (key id, epoch, dealers among the old holders). mpc-core
//! then checks that the old public shares interpolate to the public key, every dealer's
//! constant term against them (RES-01), and in its last round that every new holder computed
//! the same (unchanged) public key and public shares. The public key a new holder ends with
//! is the one the dealers described and every receiver confirmed; the runner reports it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint};
use mpc_core::dkg::KeyShare;
use mpc_core::protocol::{
    Abort, AbortReason, Evidence, Incoming, Outcome, Outgoing, PartyIndex, Protocol, Recipient,
    Rejected, Step,
};
use mpc_core::reshare::{ReshareConfirmation, ReshareOutput, ReshareParty, ReshareSession};
use rand_core::CryptoRngCore;

use super::keys::LoadedKey;
use super::positions::Positions;
use crate::vault::KeyId;

/// The wire round of the description.
pub const DESCRIPTION_ROUND: u16 = 1;
/// Rounds on the wire: the description and mpc-core's four.
pub const ROUNDS: u16 = 5;

const POINT_BYTES: usize = 33;

/// What this node ends the reshare phase with.
#[derive(Debug)]
pub struct ReshareResult {
    /// The public description every dealer sent (the old key).
    pub session: ReshareSession,
    /// The old holders, by index.
    pub old_holders: Positions,
    /// A new holder's share (epoch + 1).
    pub share: Option<KeyShare>,
    /// A dealer's confirmation that every new holder computed the unchanged key (RES-02).
    pub confirmation: Option<ReshareConfirmation>,
}

/// The public facts of the old key as the dealers describe them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Description {
    key_id: KeyId,
    holders: Vec<u16>,
    threshold: u16,
    epoch: u64,
    public_key: ProjectivePoint,
    public_shares: Vec<ProjectivePoint>,
    chain_code: [u8; 32],
}

fn point_bytes(p: &ProjectivePoint) -> Vec<u8> {
    p.to_affine().to_encoded_point(true).as_bytes().to_vec()
}

fn encoded_len(m: usize) -> usize {
    32 + 2 + 2 * m + 2 + 8 + POINT_BYTES + POINT_BYTES * m + 32
}

impl Description {
    fn of(key_id: KeyId, holders: &Positions, share: &KeyShare) -> Self {
        Self {
            key_id,
            holders: holders.members().to_vec(),
            threshold: share.threshold(),
            epoch: share.epoch(),
            public_key: *share.public_key(),
            public_shares: share.public_shares().to_vec(),
            chain_code: *share.chain_code(),
        }
    }

    /// key id ‖ u16 m ‖ m × u16 holder ‖ u16 t ‖ u64 epoch ‖ Y (SEC1, 33) ‖ m × X_j ‖ chain code
    fn encode(&self) -> Vec<u8> {
        let m = self.holders.len();
        let mut out = Vec::with_capacity(encoded_len(m));
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&u16::try_from(m).unwrap_or(u16::MAX).to_be_bytes());
        for h in &self.holders {
            out.extend_from_slice(&h.to_be_bytes());
        }
        out.extend_from_slice(&self.threshold.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&point_bytes(&self.public_key));
        for x in &self.public_shares {
            out.extend_from_slice(&point_bytes(x));
        }
        out.extend_from_slice(&self.chain_code);
        out
    }

    /// The strict inverse of [`Description::encode`]; `None` for anything else.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let key_id: KeyId = r.take(32)?.try_into().ok()?;
        let m = usize::from(r.u16()?);
        if bytes.len() != encoded_len(m) {
            return None;
        }
        let holders = (0..m).map(|_| r.u16()).collect::<Option<Vec<u16>>>()?;
        let threshold = r.u16()?;
        let epoch = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let public_key = r.point()?;
        let public_shares = (0..m)
            .map(|_| r.point())
            .collect::<Option<Vec<ProjectivePoint>>>()?;
        let chain_code: [u8; 32] = r.take(32)?.try_into().ok()?;
        r.0.is_empty().then_some(Self {
            key_id,
            holders,
            threshold,
            epoch,
            public_key,
            public_shares,
            chain_code,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    /// A SEC1 compressed point (tag 2 or 3 only: one encoding per point).
    fn point(&mut self) -> Option<ProjectivePoint> {
        let bytes = self.take(POINT_BYTES)?;
        if !matches!(bytes.first(), Some(2 | 3)) {
            return None;
        }
        let encoded = EncodedPoint::from_bytes(bytes).ok()?;
        Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&encoded))
            .map(ProjectivePoint::from)
    }
}

/// Which of this node's parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dealer,
    Receiver,
}

struct Sub {
    party: ReshareParty,
    done: Option<ReshareOutput>,
}

/// The public parameters of one reshare, from the request.
#[derive(Debug, Clone)]
pub struct ReshareRequest {
    /// The session id (also mpc-core's session id).
    pub session_id: Vec<u8>,
    /// The key.
    pub key_id: KeyId,
    /// The epoch the old holders are at.
    pub epoch: u64,
    /// The dealers, by index (exactly the old threshold, increasing).
    pub dealers: Vec<u16>,
    /// The new committee.
    pub new_committee: Positions,
    /// t'.
    pub new_threshold: u16,
    /// The fleet's signer indices.
    pub fleet: Vec<u16>,
}

/// This node's side of the reshare phase (module docs).
pub struct ReshareExchange {
    req: ReshareRequest,
    /// dealers ∪ new committee: the driver's positions.
    members: Positions,
    me: PartyIndex,
    me_index: u16,
    /// This node's key, if it holds one.
    own: Option<Arc<LoadedKey>>,
    descriptions: BTreeMap<u16, Vec<u8>>,
    described: Option<(ReshareSession, Positions)>,
    dealer: Option<Sub>,
    receiver: Option<Sub>,
    /// Messages for one of this node's parties that is still in an earlier round.
    pending: Vec<(Role, Incoming)>,
    started: bool,
    finished: bool,
}

impl std::fmt::Debug for ReshareExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReshareExchange")
            .field("me", &self.me_index)
            .field("dealer", &self.dealer.is_some())
            .field("receiver", &self.receiver.is_some())
            .finish_non_exhaustive()
    }
}

impl ReshareExchange {
    /// The node `me_index` of `members` (dealers ∪ new committee); `own` is its key if it
    /// holds one (a dealer must).
    pub fn new(
        req: ReshareRequest,
        members: Positions,
        me_index: u16,
        own: Option<Arc<LoadedKey>>,
    ) -> Result<Self, String> {
        let me = members
            .position_of(me_index)
            .ok_or("this signer takes no part in the reshare")?;
        if req.dealers.contains(&me_index) && own.is_none() {
            return Err("a dealer must hold a share of the key".into());
        }
        Ok(Self {
            req,
            members,
            me,
            me_index,
            own,
            descriptions: BTreeMap::new(),
            described: None,
            dealer: None,
            receiver: None,
            pending: Vec::new(),
            started: false,
            finished: false,
        })
    }

    fn t(&self) -> usize {
        self.req.dealers.len()
    }

    fn is_dealer(&self, index: u16) -> bool {
        self.req.dealers.contains(&index)
    }

    fn node_position(&self, index: u16) -> Option<PartyIndex> {
        self.members.position_of(index)
    }

    /// The signer index behind an mpc-core position.
    fn signer_of_core(&self, p: PartyIndex) -> Option<u16> {
        let p = p.as_usize();
        if p < self.t() {
            self.req.dealers.get(p).copied()
        } else {
            self.req
                .new_committee
                .index_of(PartyIndex::new(u16::try_from(p - self.t()).ok()?))
        }
    }

    /// The mpc-core position of signer `index` sending in core round `round`.
    fn core_sender(&self, index: u16, round: u16) -> Option<PartyIndex> {
        if round % 2 == 1 {
            let k = self.req.dealers.iter().position(|d| *d == index)?;
            Some(PartyIndex::new(u16::try_from(k).ok()?))
        } else {
            let j = self.req.new_committee.position_of(index)?;
            Some(PartyIndex::new(
                u16::try_from(self.t() + j.as_usize()).ok()?,
            ))
        }
    }

    fn sub(&mut self, role: Role) -> Option<&mut Sub> {
        match role {
            Role::Dealer => self.dealer.as_mut(),
            Role::Receiver => self.receiver.as_mut(),
        }
    }

    fn abort_naming(&mut self, round: u16, culprits: Vec<u16>, reason: AbortReason) -> Abort {
        self.finished = true;
        Abort {
            round,
            culprits: culprits
                .into_iter()
                .filter_map(|i| self.node_position(i))
                .collect(),
            reason,
            evidence: Evidence::None,
        }
    }

    fn wire_round(&self) -> Option<u16> {
        if !self.started || self.finished {
            return None;
        }
        if self.described.is_none() {
            return Some(DESCRIPTION_ROUND);
        }
        [&self.dealer, &self.receiver]
            .into_iter()
            .flatten()
            .filter(|s| s.done.is_none())
            .filter_map(|s| s.party.current_round())
            .min()
            .map(|r| r.saturating_add(1))
    }

    /// Round 1 is complete: check the descriptions, build and start this node's parties.
    fn close_description(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        let all_dealers = self.req.dealers.clone();
        let reference = match &self.own {
            Some(key) => Some(Description::of(self.req.key_id, &key.holders, &key.share).encode()),
            None => {
                // the description most dealers sent, if exactly one is the most common
                let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
                for d in self.descriptions.values() {
                    *counts.entry(d.as_slice()).or_default() += 1;
                }
                let best = counts.values().copied().max().unwrap_or(0);
                let mut winners = counts.iter().filter(|(_, c)| **c == best);
                match (winners.next(), winners.next()) {
                    (Some((bytes, _)), None) => Some(bytes.to_vec()),
                    _ => None,
                }
            }
        };
        let Some(reference) = reference else {
            return Err(self.abort_naming(
                DESCRIPTION_ROUND,
                all_dealers,
                AbortReason::ResultMismatch,
            ));
        };
        let differing: Vec<u16> = self
            .descriptions
            .iter()
            .filter(|(_, d)| **d != reference)
            .map(|(i, _)| *i)
            .collect();
        if !differing.is_empty() {
            tracing::warn!(dealers = ?differing, "reshare: dealers described another key");
            return Err(self.abort_naming(
                DESCRIPTION_ROUND,
                differing,
                AbortReason::ResultMismatch,
            ));
        }
        // Every dealer sent `reference`: a description that does not fit the request blames
        // them all (an honest dealer checked the request against its key before sending).
        let fits = Description::decode(&reference)
            .filter(|d| d.key_id == self.req.key_id && d.epoch == self.req.epoch)
            .filter(|d| self.req.dealers.iter().all(|i| d.holders.contains(i)))
            .and_then(|d| {
                let holders = Positions::new(d.holders.clone()).ok()?;
                (holders.members() == d.holders.as_slice()).then_some((d, holders))
            })
            .and_then(|(d, holders)| {
                Positions::from_committee(&holders.committee().ok()?, &self.req.fleet)?;
                Some((d, holders))
            });
        let Some((d, holders)) = fits else {
            return Err(self.abort_naming(
                DESCRIPTION_ROUND,
                all_dealers,
                AbortReason::ResultMismatch,
            ));
        };
        let (Ok(old_committee), Ok(new_committee)) =
            (holders.committee(), self.req.new_committee.committee())
        else {
            return Err(self.abort_naming(
                DESCRIPTION_ROUND,
                all_dealers,
                AbortReason::ResultMismatch,
            ));
        };
        let dealer_positions: Vec<PartyIndex> = self
            .req
            .dealers
            .iter()
            .filter_map(|i| holders.position_of(*i))
            .collect();
        let session = ReshareSession {
            session_id: self.req.session_id.clone(),
            old_committee,
            old_threshold: d.threshold,
            public_key: d.public_key,
            old_public_shares: d.public_shares,
            chain_code: d.chain_code,
            epoch: d.epoch,
            dealers: dealer_positions,
            new_committee,
            new_threshold: self.req.new_threshold,
        };
        // a node without the key cannot tell a bad description from a bug: it blames the
        // dealers that agreed on it; a node with the key compared it with its own above
        let setup_culprits = if self.own.is_none() {
            all_dealers.clone()
        } else {
            Vec::new()
        };
        if self.is_dealer(self.me_index) {
            let party = match &self.own {
                Some(key) => {
                    let mut rng = &mut *rng;
                    ReshareParty::dealer(session.clone(), &key.share, &mut rng)
                }
                None => Err(mpc_core::reshare::ReshareSetupError::Role),
            };
            match party {
                Ok(party) => self.dealer = Some(Sub { party, done: None }),
                Err(e) => {
                    tracing::warn!(error = %e, "reshare dealer setup refused");
                    return Err(self.abort_naming(
                        DESCRIPTION_ROUND,
                        setup_culprits,
                        AbortReason::Bug("reshare dealer setup refused the described key"),
                    ));
                }
            }
        }
        if let Some(j) = self.req.new_committee.position_of(self.me_index) {
            match ReshareParty::receiver(session.clone(), j) {
                Ok(party) => self.receiver = Some(Sub { party, done: None }),
                Err(e) => {
                    tracing::warn!(error = %e, "reshare receiver setup refused");
                    return Err(self.abort_naming(
                        DESCRIPTION_ROUND,
                        setup_culprits,
                        AbortReason::ResultMismatch,
                    ));
                }
            }
        }
        self.described = Some((session, holders));
        let mut out = Vec::new();
        for role in [Role::Dealer, Role::Receiver] {
            let step = match self.sub(role) {
                Some(sub) => sub.party.start(&mut *rng),
                None => continue,
            };
            match step {
                Ok(step) => self.absorb(role, step, &mut out)?,
                Err(e) => {
                    return Err(self.abort_naming(
                        DESCRIPTION_ROUND,
                        Vec::new(),
                        AbortReason::Bug(if matches!(e, Rejected::AlreadyStarted) {
                            "reshare party started twice"
                        } else {
                            "reshare party refused to start"
                        }),
                    ))
                }
            }
        }
        self.pump(rng, &mut out)?;
        Ok(out)
    }

    /// Takes a step of one of this node's parties: messages out (or to the other party of
    /// this node), its outcome.
    fn absorb(
        &mut self,
        role: Role,
        step: Step<ReshareOutput>,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), Abort> {
        let Some(from_core) = self.sub(role).map(|s| s.party.position()) else {
            return Ok(());
        };
        for o in step.outgoing {
            let wire = o.round.saturating_add(1);
            match o.to {
                Recipient::All => {
                    let other = match role {
                        Role::Dealer => Role::Receiver,
                        Role::Receiver => Role::Dealer,
                    };
                    if self.sub(other).is_some() {
                        self.pending.push((other, o.to_incoming(from_core)));
                    }
                    out.push(Outgoing {
                        round: wire,
                        to: Recipient::All,
                        payload: o.payload,
                    });
                }
                Recipient::One(p) => {
                    let Some(signer) = self.signer_of_core(p) else {
                        continue;
                    };
                    if signer == self.me_index {
                        if role == Role::Dealer && self.receiver.is_some() {
                            self.pending
                                .push((Role::Receiver, o.to_incoming(from_core)));
                        }
                    } else if let Some(node) = self.node_position(signer) {
                        out.push(Outgoing {
                            round: wire,
                            to: Recipient::One(node),
                            payload: o.payload,
                        });
                    }
                }
            }
        }
        match step.outcome {
            None => Ok(()),
            Some(Outcome::Output(output)) => {
                if let Some(sub) = self.sub(role) {
                    sub.done = Some(output);
                }
                Ok(())
            }
            Some(Outcome::Abort(abort)) => {
                let culprits = abort
                    .culprits
                    .iter()
                    .filter_map(|p| self.signer_of_core(*p))
                    .collect();
                Err(self.abort_naming(abort.round.saturating_add(1), culprits, abort.reason))
            }
        }
    }

    /// Delivers held messages to this node's parties that have reached their round.
    fn pump(&mut self, rng: &mut dyn CryptoRngCore, out: &mut Vec<Outgoing>) -> Result<(), Abort> {
        loop {
            let mut next = None;
            let mut stale = Vec::new();
            for (i, (role, msg)) in self.pending.iter().enumerate() {
                let round = match role {
                    Role::Dealer => self.dealer.as_ref(),
                    Role::Receiver => self.receiver.as_ref(),
                }
                .filter(|s| s.done.is_none())
                .and_then(|s| s.party.current_round());
                match round {
                    Some(r) if r == msg.round => {
                        next = Some(i);
                        break;
                    }
                    Some(r) if r < msg.round => {}
                    _ => stale.push(i),
                }
            }
            let Some(i) = next else {
                for i in stale.into_iter().rev() {
                    self.pending.swap_remove(i);
                }
                return Ok(());
            };
            let (role, msg) = self.pending.swap_remove(i);
            let result = match self.sub(role) {
                Some(sub) => sub.party.handle(&mut *rng, msg),
                None => continue,
            };
            match result {
                Ok(step) => self.absorb(role, step, out)?,
                Err(Rejected::Duplicate) => {}
                Err(e) => {
                    tracing::warn!(?role, error = %e, "reshare: a message was refused by this node's party")
                }
            }
        }
    }

    fn finish(&mut self, out: Vec<Outgoing>) -> Step<ReshareResult> {
        let done = |s: &Option<Sub>| s.as_ref().is_none_or(|s| s.done.is_some());
        if self.described.is_none() || !done(&self.dealer) || !done(&self.receiver) {
            return Step {
                outgoing: out,
                outcome: None,
            };
        }
        self.finished = true;
        let mut share = None;
        let mut confirmation = None;
        for sub in [self.dealer.take(), self.receiver.take()]
            .into_iter()
            .flatten()
        {
            match sub.done {
                Some(ReshareOutput::Receiver(s)) => share = Some(s),
                Some(ReshareOutput::Dealer(c)) => confirmation = Some(c),
                None => {}
            }
        }
        let outcome = match self.described.take() {
            Some((session, old_holders)) => Outcome::Output(ReshareResult {
                session,
                old_holders,
                share,
                confirmation,
            }),
            None => Outcome::Abort(Abort {
                round: ROUNDS,
                culprits: vec![self.me],
                reason: AbortReason::Bug("reshare finished without a description"),
                evidence: Evidence::None,
            }),
        };
        Step {
            outgoing: out,
            outcome: Some(outcome),
        }
    }

    fn aborted(out: Vec<Outgoing>, abort: Abort) -> Step<ReshareResult> {
        Step {
            outgoing: out,
            outcome: Some(Outcome::Abort(abort)),
        }
    }
}

/// The longest description a fleet of `fleet` signers can send.
fn max_description(fleet: usize) -> usize {
    encoded_len(fleet)
}

impl Protocol for ReshareExchange {
    type Output = ReshareResult;

    fn me(&self) -> PartyIndex {
        self.me
    }

    fn current_round(&self) -> Option<u16> {
        self.wire_round()
    }

    fn start(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Step<ReshareResult>, Rejected> {
        if self.started {
            return Err(Rejected::AlreadyStarted);
        }
        self.started = true;
        let mut out = Vec::new();
        if self.is_dealer(self.me_index) {
            if let Some(key) = &self.own {
                let payload = Description::of(self.req.key_id, &key.holders, &key.share).encode();
                self.descriptions.insert(self.me_index, payload.clone());
                out.push(Outgoing {
                    round: DESCRIPTION_ROUND,
                    to: Recipient::All,
                    payload,
                });
            }
        }
        if self.descriptions.len() == self.t() {
            if let Err(abort) = self.close_description(rng).map(|more| out.extend(more)) {
                return Ok(Self::aborted(out, abort));
            }
        }
        Ok(self.finish(out))
    }

    fn handle(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        msg: Incoming,
    ) -> Result<Step<ReshareResult>, Rejected> {
        if !self.started {
            return Err(Rejected::NotStarted);
        }
        if self.finished {
            return Err(Rejected::Finished);
        }
        let sender = self
            .members
            .index_of(msg.from)
            .ok_or(Rejected::UnknownSender(msg.from))?;
        if sender == self.me_index {
            return Err(Rejected::FromSelf);
        }
        let expected = self.wire_round().unwrap_or(DESCRIPTION_ROUND);
        if msg.round == DESCRIPTION_ROUND {
            if self.described.is_some() {
                return Err(Rejected::WrongRound {
                    expected,
                    got: msg.round,
                });
            }
            if !self.is_dealer(sender) {
                return Err(Rejected::NotExpected(msg.from));
            }
            if msg.to != Recipient::All {
                return Err(Rejected::UnexpectedKind {
                    round: DESCRIPTION_ROUND,
                    kind: "direct",
                });
            }
            let max = max_description(self.req.fleet.len());
            if msg.payload.len() > max {
                return Err(Rejected::Oversized {
                    len: msg.payload.len(),
                    max,
                });
            }
            if let Some(first) = self.descriptions.get(&sender) {
                if *first == msg.payload {
                    return Err(Rejected::Duplicate);
                }
                let abort =
                    self.abort_naming(DESCRIPTION_ROUND, vec![sender], AbortReason::Equivocation);
                return Ok(Self::aborted(Vec::new(), abort));
            }
            self.descriptions.insert(sender, msg.payload);
            let mut out = Vec::new();
            if self.descriptions.len() == self.t() {
                if let Err(abort) = self.close_description(rng).map(|more| out.extend(more)) {
                    return Ok(Self::aborted(out, abort));
                }
            }
            return Ok(self.finish(out));
        }
        if self.described.is_none() || msg.round > ROUNDS || msg.round == 0 {
            return Err(Rejected::WrongRound {
                expected,
                got: msg.round,
            });
        }
        let core_round = msg.round - 1;
        let from = self
            .core_sender(sender, core_round)
            .ok_or(Rejected::NotExpected(msg.from))?;
        let (targets, to) = match msg.to {
            Recipient::All => (vec![Role::Dealer, Role::Receiver], Recipient::All),
            Recipient::One(_) => {
                let me = self
                    .receiver
                    .as_ref()
                    .map(|s| s.party.position())
                    .ok_or(Rejected::WrongRecipient)?;
                (vec![Role::Receiver], Recipient::One(me))
            }
        };
        for role in targets {
            if self.sub(role).is_some() {
                self.pending.push((
                    role,
                    Incoming {
                        round: core_round,
                        from,
                        to,
                        payload: msg.payload.clone(),
                    },
                ));
            }
        }
        let mut out = Vec::new();
        if let Err(abort) = self.pump(rng, &mut out) {
            return Ok(Self::aborted(out, abort));
        }
        Ok(self.finish(out))
    }

    fn on_round_deadline(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        round: u16,
    ) -> Result<Step<ReshareResult>, Rejected> {
        let expected = self.wire_round().ok_or(Rejected::Finished)?;
        if round != expected {
            return Err(Rejected::WrongRound {
                expected,
                got: round,
            });
        }
        if round == DESCRIPTION_ROUND {
            let missing: Vec<u16> = self
                .req
                .dealers
                .iter()
                .copied()
                .filter(|d| !self.descriptions.contains_key(d))
                .collect();
            let abort = self.abort_naming(round, missing, AbortReason::MissingMessage);
            return Ok(Self::aborted(Vec::new(), abort));
        }
        let core_round = round - 1;
        let mut out = Vec::new();
        for role in [Role::Dealer, Role::Receiver] {
            let step = match self.sub(role) {
                Some(sub)
                    if sub.done.is_none() && sub.party.current_round() == Some(core_round) =>
                {
                    sub.party.on_round_deadline(&mut *rng, core_round)
                }
                _ => continue,
            };
            if let Ok(step) = step {
                if let Err(abort) = self.absorb(role, step, &mut out) {
                    return Ok(Self::aborted(out, abort));
                }
            }
        }
        if let Err(abort) = self.pump(rng, &mut out) {
            return Ok(Self::aborted(out, abort));
        }
        Ok(self.finish(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use k256::Scalar;

    fn description() -> Description {
        let g = ProjectivePoint::GENERATOR;
        Description {
            key_id: [4; 32],
            holders: vec![1, 3, 5],
            threshold: 2,
            epoch: 7,
            public_key: g * Scalar::from(9u64),
            public_shares: vec![g, g * Scalar::from(2u64), g * Scalar::from(3u64)],
            chain_code: [6; 32],
        }
    }

    #[test]
    fn descriptions_decode_strictly() {
        let d = description();
        let bytes = d.encode();
        assert_eq!(bytes.len(), encoded_len(3));
        assert_eq!(Description::decode(&bytes), Some(d));
        // one byte more or less, a wrong holder count, a point in another encoding or off the
        // curve: refused
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Description::decode(&long), None);
        assert_eq!(Description::decode(&bytes[..bytes.len() - 1]), None);
        let mut count = bytes.clone();
        count[33] = 4;
        assert_eq!(Description::decode(&count), None);
        let mut point = bytes.clone();
        let y = 32 + 2 + 6 + 2 + 8;
        point[y] = 0x05; // SEC1 "compact": a second encoding of a point, refused
        assert_eq!(Description::decode(&point), None);
        let mut off_curve = bytes.clone();
        off_curve[y + 1..y + 33].fill(0xff); // x ≥ p
        assert_eq!(Description::decode(&off_curve), None);
        assert_eq!(Description::decode(&[]), None);
    }
}
