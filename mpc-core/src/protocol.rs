//! The sans-IO framework every multi-party protocol of this crate uses (DKG now; aux info,
//! refresh, reshare, presign and sign later).
//!
//! A party is created with its inputs, [`Protocol::start`]s, takes [`Incoming`] messages with
//! [`Protocol::handle`], is told by the network layer when a round's deadline has passed
//! ([`Protocol::on_round_deadline`]), and answers each call with a [`Step`]: messages to send
//! (to everyone or to one party) and possibly its final [`Outcome`], an output or an
//! [`Abort`] naming the culprits with evidence. No threads, no I/O, no clocks.
//!
//! ## Rules every protocol follows (enforced by [`RoundInbox`])
//! - Parties are [`PartyIndex`] positions 0..m in a fixed public [`Committee`]; the Shamir
//!   evaluation point of a party is a separate non-zero scalar, distinct for every party
//!   (checklist DKG-04).
//! - Input that is not acceptable (unknown sender, message from oneself, another round, a
//!   party not expected in this round, wrong recipient, oversize, undecodable, duplicate) is
//!   refused with a typed [`Rejected`] and leaves the state unchanged (DESIGN §7, NET-04:
//!   the size cap is checked before decoding).
//! - Messages of another round are refused, not buffered: [`Protocol::current_round`] tells
//!   the network layer which round a party is in, and it holds early messages until then.
//!   (Buffering here would put an unbounded queue, or a second cap, inside every protocol.)
//! - Two different well-formed payloads from one sender in one round (broadcast or direct)
//!   are equivocation. Identical repeats are ignored ([`Rejected::Duplicate`]); a malformed
//!   second payload is refused like any malformed input.
//! - Broadcast consistency (checklist NET-03, mpc-core side): in the message after every
//!   broadcast round each party includes an [`Echo`], one digest per committee member of the
//!   broadcast it received from that member in the previous round ("none" if nothing,
//!   a distinct "conflict" digest if it saw two versions). A digest that differs from one's
//!   own view for sender j aborts naming j.
//! - Faults seen during a round (echo mismatches, equivocation) are acted upon when the round
//!   ends and *after* the party's own next message has gone out, so that every other honest
//!   party sees the same evidence in that message's echo and names the same culprit instead of
//!   waiting for an aborted party and blaming it at the deadline. Likewise a party that decides
//!   to abort while closing a round still sends a next-round message carrying its echo (the
//!   DKG does so after rounds 4 and 5), and when views diverged the echo or equivocation fault
//!   is reported before any content fault, which it explains.
//!
//! ## What is and is not evidence
//! Without signatures on the messages a mismatching echo proves only that *someone* lied: j
//! sent two versions, or the reporter misreported. mpc-core names j, the sender whose
//! broadcast is in question, and returns the digests. Non-repudiable evidence needs the
//! network layer's signed envelopes (DESIGN §5, checklist NET-01): with them, the two signed
//! payloads of j settle it, and a reporter that cannot produce them is the liar.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::ops::Reduce;
use k256::{Scalar, U256};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::encoding::{DecodeError, Reader, Writer};
use crate::transcript::Transcript;
use crate::vss::{check_points, VssError};

/// Most parties in a committee.
pub const MAX_PARTIES: u16 = 1024;

/// Length of one echo digest.
pub const ECHO_DIGEST_BYTES: usize = 32;

/// A party's position 0..m in the committee map (not its Shamir evaluation point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartyIndex(u16);

impl PartyIndex {
    /// The party at position `i`.
    pub const fn new(i: u16) -> Self {
        Self(i)
    }

    /// The position as a u16.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The position as a usize (for indexing per-party vectors).
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PartyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

/// Why a committee map is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitteeError {
    /// No parties, or more than [`MAX_PARTIES`].
    #[error("committee of {0} parties (allowed 1..={MAX_PARTIES})")]
    Size(usize),
    /// An evaluation point is zero mod q or repeats another (DKG-04).
    #[error(transparent)]
    Points(#[from] VssError),
}

/// The fixed public committee map: party i ↦ Shamir evaluation point x_i (DKG-04: every x_i
/// non-zero mod q and distinct from the others, checked at construction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    points: Vec<Scalar>,
}

impl Committee {
    /// A committee with the given evaluation points (party i gets `points[i]`).
    pub fn new(points: Vec<Scalar>) -> Result<Self, CommitteeError> {
        if points.is_empty() || points.len() > usize::from(MAX_PARTIES) {
            return Err(CommitteeError::Size(points.len()));
        }
        check_points(&points)?;
        Ok(Self { points })
    }

    /// The usual map x_i = i + 1 for m parties.
    pub fn standard(m: u16) -> Result<Self, CommitteeError> {
        Self::new((1..=u64::from(m)).map(Scalar::from).collect())
    }

    /// A committee from 32-byte big-endian integers, reduced mod q first, so an integer
    /// ≡ 0 mod q (such as q itself) is refused as zero and q + 1 collides with 1 (DKG-04).
    pub fn from_be_bytes(points: &[[u8; 32]]) -> Result<Self, CommitteeError> {
        Self::new(
            points
                .iter()
                .map(|b| <Scalar as Reduce<U256>>::reduce_bytes(&(*b).into()))
                .collect(),
        )
    }

    /// Number of parties m.
    pub fn len(&self) -> u16 {
        // ≤ MAX_PARTIES by construction
        self.points.len() as u16
    }

    /// Always false: a committee has at least one party.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// x_i of party i.
    pub fn point(&self, i: PartyIndex) -> Option<&Scalar> {
        self.points.get(i.as_usize())
    }

    /// All evaluation points in party order.
    pub fn points(&self) -> &[Scalar] {
        &self.points
    }

    /// Whether i is a position in this committee.
    pub fn contains(&self, i: PartyIndex) -> bool {
        i.as_usize() < self.points.len()
    }

    /// All parties in order.
    pub fn parties(&self) -> impl Iterator<Item = PartyIndex> + '_ {
        (0..self.len()).map(PartyIndex::new)
    }

    /// Absorbs the whole map into a transcript (binds every hash of a session to it).
    pub fn append_to(&self, t: &mut Transcript) {
        t.append_u64(b"committee-size", self.points.len() as u64);
        for p in &self.points {
            t.append_scalar(b"x_i", p);
        }
    }
}

/// Who a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// Broadcast to every other party (echo-checked).
    All,
    /// Direct (point-to-point) message to one party; the transport keeps it confidential.
    One(PartyIndex),
}

/// A message a party asks the network layer to send.
///
/// Direct payloads may carry secret shares: the network layer sends them only over a
/// confidential channel and wipes its copies afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Round it belongs to.
    pub round: u16,
    /// Recipient(s).
    pub to: Recipient,
    /// Canonical encoding of the round's message.
    pub payload: Vec<u8>,
}

impl Outgoing {
    /// The message as the receiving side sees it, with the authenticated sender `from`.
    pub fn to_incoming(&self, from: PartyIndex) -> Incoming {
        Incoming {
            round: self.round,
            from,
            to: self.to,
            payload: self.payload.clone(),
        }
    }
}

/// A message handed to a party by the network layer (sender authenticated by it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// Round the sender stamped.
    pub round: u16,
    /// Authenticated sender.
    pub from: PartyIndex,
    /// How it was addressed.
    pub to: Recipient,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// How a protocol ended.
#[derive(Debug)]
pub enum Outcome<O> {
    /// Finished with an output.
    Output(O),
    /// Aborted, naming culprits.
    Abort(Abort),
}

/// What a party asks the network layer to do after one call.
#[must_use = "the messages must be sent and the outcome acted upon"]
#[derive(Debug)]
pub struct Step<O> {
    /// Messages to send, in order.
    pub outgoing: Vec<Outgoing>,
    /// Set once the party is done (it refuses further input with [`Rejected::Finished`]).
    pub outcome: Option<Outcome<O>>,
}

impl<O> Step<O> {
    /// Nothing to send, not finished.
    pub fn empty() -> Self {
        Self {
            outgoing: Vec::new(),
            outcome: None,
        }
    }
}

impl<O> Default for Step<O> {
    fn default() -> Self {
        Self::empty()
    }
}

/// An abort: who is to blame, why, and the evidence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("aborted in round {round}: {reason} (culprits: {culprits:?})")]
pub struct Abort {
    /// Round in which the fault was established.
    pub round: u16,
    /// The parties blamed (empty only where the protocol cannot name anyone, see the reason).
    pub culprits: Vec<PartyIndex>,
    /// Why.
    pub reason: AbortReason,
    /// What a third party can check (together with the signed envelopes of NET-01).
    pub evidence: Evidence,
}

/// Why a protocol aborted. Shared by all protocols of the crate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// A party sent nothing valid before the deadline of a round where that cannot be
    /// tolerated (in the DKG: after QUAL is fixed).
    MissingMessage,
    /// A party sent two different payloads in one round.
    Equivocation,
    /// `reporter` echoed a digest of the culprit's broadcast of `echoed_round` that differs
    /// from ours (NET-03).
    EchoMismatch {
        /// Party whose echo differed.
        reporter: PartyIndex,
        /// Round of the broadcast in question.
        echoed_round: u16,
    },
    /// The other parties excluded this party (it is the culprit itself).
    Excluded,
    /// DKG: a QUAL dealer's Feldman value A_i0 is the identity, i.e. its secret is zero
    /// (DKG-05).
    ZeroSecret,
    /// DKG: a Πsch proof of a constant term does not verify in this session (DKG-03).
    InvalidSchnorrProof,
    /// DKG: a share that verifies against the dealer's Pedersen commitments does not verify
    /// against its Feldman commitments (GJKR step 4b; DKG-02).
    FeldmanMismatch,
    /// DKG: a party complained about a dealer's Feldman values with a share that does not
    /// support the complaint.
    FalseComplaint,
    /// Refresh: a dealer's constant term is not zero (REF-01).
    NonZeroRefresh,
    /// Reshare: a dealer's constant-term commitment is not λ_d·X_d, i.e. it would change the
    /// key (RES-01).
    ReshareConstantMismatch,
    /// DKG: the joint public key is the identity (DKG-05); nobody can be named.
    JointKeyIdentity,
    /// DKG: a party echoed a different (public key, chain code, public shares, QUAL)
    /// (DKG-06).
    ResultMismatch,
    /// DKG: fewer than t parties are left after disqualification; the culprits are the
    /// disqualified ones.
    TooFewQualified,
    /// A round-2 reveal does not open the sender's round-1 commitment (aux info: AUX-05).
    InvalidDecommitment,
    /// Aux info: a party's Paillier or ring-Pedersen parameters are refused before any proof
    /// is checked (PARAM-01, PARAM-02, AUX-04); the text says which check.
    InvalidAuxParameters(&'static str),
    /// A zero-knowledge proof did not verify: which proof and which of its checks.
    InvalidProof {
        /// The proof and its figure.
        proof: &'static str,
        /// The check that failed.
        check: &'static str,
    },
    /// A party echoed a different digest of the session's result (aux info's final round).
    AuxResultMismatch,
    /// A ciphertext is not a unit of its group, or a value is out of its range (PRE-05).
    InvalidCiphertext,
    /// A decrypted value is outside the range the proofs guarantee (PRE-02).
    DecryptionOutOfRange,
    /// Presigning: δ·G ≠ Σ Δ_j or Σ S_j ≠ δ·X (PRE-04) and the identification round found
    /// no party whose material fails (cannot happen with one honest party's view intact).
    PresignInconsistent,
    /// Signing: a partial signature σ_j does not satisfy σ_j·Γ = m·Δ_j + r·S_j (SIG-03).
    InvalidPartialSignature,
    /// Signing: a partial signature is for another presignature transcript (equivocation in
    /// presigning round 3, or a mix-up of presignatures).
    TranscriptMismatch,
    /// An internal invariant failed: a bug in this crate, never an attack (the culprit named
    /// is this party).
    Bug(&'static str),
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingMessage => f.write_str("no valid message before the deadline"),
            Self::Equivocation => f.write_str("two different messages in one round"),
            Self::EchoMismatch {
                reporter,
                echoed_round,
            } => write!(
                f,
                "{reporter} saw a different broadcast of round {echoed_round}"
            ),
            Self::Excluded => f.write_str("excluded by the other parties"),
            Self::ZeroSecret => f.write_str("dealer's secret is zero (A_i0 = identity)"),
            Self::InvalidSchnorrProof => f.write_str("Πsch proof of a_i0 does not verify"),
            Self::FeldmanMismatch => f.write_str("share does not match the Feldman values"),
            Self::FalseComplaint => f.write_str("complaint not supported by its share"),
            Self::JointKeyIdentity => f.write_str("joint public key is the identity"),
            Self::NonZeroRefresh => f.write_str("refresh dealer's constant term is not zero"),
            Self::ReshareConstantMismatch => f.write_str("reshare constant term is not λ_d·X_d"),
            Self::ResultMismatch => f.write_str("different (Y, chain code, X_j, QUAL)"),
            Self::TooFewQualified => f.write_str("fewer than t parties qualified"),
            Self::InvalidDecommitment => f.write_str("reveal does not open the commitment"),
            Self::InvalidAuxParameters(what) => write!(f, "aux parameters refused: {what}"),
            Self::InvalidProof { proof, check } => write!(f, "{proof} fails: {check}"),
            Self::AuxResultMismatch => f.write_str("different aux-info result digest"),
            Self::InvalidCiphertext => f.write_str("ciphertext not a unit of its group"),
            Self::DecryptionOutOfRange => f.write_str("decrypted value out of range"),
            Self::PresignInconsistent => {
                f.write_str("δ·G ≠ ΣΔ_j or ΣS_j ≠ δ·X and identification named nobody")
            }
            Self::InvalidPartialSignature => f.write_str("partial signature does not verify"),
            Self::TranscriptMismatch => f.write_str("partial signature of another transcript"),
            Self::Bug(what) => write!(f, "internal error: {what}"),
        }
    }
}

/// Evidence attached to an [`Abort`].
#[derive(Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Nothing beyond the reason (e.g. a missing message: the deadline is the evidence).
    None,
    /// The offending payload; checkable against the public transcript of the session.
    Payload {
        /// Sender of the payload.
        from: PartyIndex,
        /// Its round.
        round: u16,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Two different payloads of one sender in one round.
    Conflict {
        /// The first one received.
        first: Vec<u8>,
        /// The other one.
        second: Vec<u8>,
    },
    /// Our echo digest and the reporter's for the culprit's broadcast.
    EchoDigests {
        /// Ours.
        ours: Box<[u8; ECHO_DIGEST_BYTES]>,
        /// The reporter's.
        theirs: Box<[u8; ECHO_DIGEST_BYTES]>,
    },
}

impl fmt::Debug for Evidence {
    // Payloads may contain shares revealed as evidence; print only their sizes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Payload { from, round, bytes } => f
                .debug_struct("Payload")
                .field("from", from)
                .field("round", round)
                .field("len", &bytes.len())
                .finish(),
            Self::Conflict { first, second } => f
                .debug_struct("Conflict")
                .field("first_len", &first.len())
                .field("second_len", &second.len())
                .finish(),
            Self::EchoDigests { .. } => f.write_str("EchoDigests"),
        }
    }
}

/// Input refused; the party's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The party already finished (output or abort).
    #[error("the protocol has finished")]
    Finished,
    /// [`Protocol::start`] was not called yet.
    #[error("the protocol has not started")]
    NotStarted,
    /// [`Protocol::start`] was called twice.
    #[error("the protocol has already started")]
    AlreadyStarted,
    /// The sender is not in the committee.
    #[error("sender {0} is not in the committee")]
    UnknownSender(PartyIndex),
    /// A message from oneself.
    #[error("message from ourselves")]
    FromSelf,
    /// Directed to another party.
    #[error("message addressed to another party")]
    WrongRecipient,
    /// Stale or future round.
    #[error("message of round {got} while in round {expected}")]
    WrongRound {
        /// Our round.
        expected: u16,
        /// The message's round.
        got: u16,
    },
    /// The sender is not expected in this round (disqualified or excluded).
    #[error("{0} is not expected in this round")]
    NotExpected(PartyIndex),
    /// This round has no message of that kind (broadcast or direct).
    #[error("round {round} has no {kind} message")]
    UnexpectedKind {
        /// The round.
        round: u16,
        /// "broadcast" or "direct".
        kind: &'static str,
    },
    /// Larger than the round's cap (checked before decoding; NET-04).
    #[error("payload of {len} bytes exceeds the cap of {max}")]
    Oversized {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// An identical copy of a message already received (ignored).
    #[error("duplicate message ignored")]
    Duplicate,
    /// Not a canonical encoding of the round's message.
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
}

/// A sans-IO protocol party.
pub trait Protocol {
    /// What an honest run ends with.
    type Output;

    /// This party's index.
    fn me(&self) -> PartyIndex;

    /// The round whose messages the party accepts now; `None` before start and once finished.
    fn current_round(&self) -> Option<u16>;

    /// Produces the first round's messages.
    fn start(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Step<Self::Output>, Rejected>;

    /// Takes one incoming message.
    fn handle(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        msg: Incoming,
    ) -> Result<Step<Self::Output>, Rejected>;

    /// The network layer's deadline for `round` has passed: parties that have not delivered
    /// are faulty (the protocol says what that means in each round). A deadline for any
    /// round but the current one is refused with [`Rejected::WrongRound`], so a timer that
    /// fires just after the party moved on cannot cut the next round short.
    fn on_round_deadline(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        round: u16,
    ) -> Result<Step<Self::Output>, Rejected>;
}

/// The kind of a message slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Broadcast ([`Recipient::All`]).
    Broadcast,
    /// Direct ([`Recipient::One`]).
    Direct,
}

/// One received message: raw bytes, decoded value, and a second, different payload if the
/// sender equivocated. The raw bytes are wiped on drop (direct messages carry secret shares).
pub struct Received<T> {
    /// The first payload accepted.
    pub payload: Zeroizing<Vec<u8>>,
    /// Its decoded value.
    pub value: T,
    /// A different payload received later in the same round.
    pub conflict: Option<Zeroizing<Vec<u8>>>,
}

impl<T> fmt::Debug for Received<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("len", &self.payload.len())
            .field("conflict", &self.conflict.is_some())
            .finish_non_exhaustive()
    }
}

/// Where a new payload would go.
#[derive(Debug, PartialEq, Eq)]
pub enum Slot {
    /// Nothing of this kind from this sender yet: decode it and insert it.
    Empty,
    /// A different payload was already accepted: if this one decodes, it is equivocation
    /// ([`RoundInbox::record_conflict`]); if not, it is refused as malformed.
    Occupied,
}

/// One digest per committee member of the broadcast received from it in a round (NET-03).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echo(pub Vec<[u8; ECHO_DIGEST_BYTES]>);

impl Echo {
    /// Appends the echo: u16 count, then the digests.
    pub fn write(&self, w: &mut Writer) {
        w.u16(self.0.len() as u16);
        for d in &self.0 {
            w.array(d);
        }
    }

    /// Reads an echo of exactly `m` digests.
    pub fn read(r: &mut Reader<'_>, m: usize) -> Result<Self, DecodeError> {
        r.count("echo", m)?;
        let mut out = Vec::with_capacity(m);
        for _ in 0..m {
            out.push(r.array::<ECHO_DIGEST_BYTES>("echo digest")?);
        }
        Ok(Self(out))
    }

    /// Encoded size for m parties.
    pub const fn encoded_len(m: usize) -> usize {
        2 + m * ECHO_DIGEST_BYTES
    }
}

/// The messages of one round, per sender: the bookkeeping shared by all protocols.
#[derive(Debug)]
pub struct RoundInbox<B, D> {
    round: u16,
    me: PartyIndex,
    expected: Vec<bool>,
    wants_broadcast: bool,
    wants_direct: bool,
    broadcast: Vec<Option<Received<B>>>,
    direct: Vec<Option<Received<D>>>,
}

impl<B, D> RoundInbox<B, D> {
    /// An inbox for `round` expecting a message from each party with `expected[j]` (never
    /// from `me`), of the kinds named.
    pub fn new(
        round: u16,
        me: PartyIndex,
        mut expected: Vec<bool>,
        wants_broadcast: bool,
        wants_direct: bool,
    ) -> Self {
        if let Some(e) = expected.get_mut(me.as_usize()) {
            *e = false;
        }
        let m = expected.len();
        Self {
            round,
            me,
            expected,
            wants_broadcast,
            wants_direct,
            broadcast: (0..m).map(|_| None).collect(),
            direct: (0..m).map(|_| None).collect(),
        }
    }

    /// The round.
    pub fn round(&self) -> u16 {
        self.round
    }

    /// Whether party j is expected in this round.
    pub fn is_expected(&self, j: PartyIndex) -> bool {
        self.expected.get(j.as_usize()).copied().unwrap_or(false)
    }

    /// Checks everything but the payload's content: sender, round, recipient, kind, size, and
    /// identical duplicates. Never changes the state: the caller decodes the payload next
    /// (refusing it if malformed) and then inserts it or records the conflict.
    pub fn admit(&mut self, msg: &Incoming, max_len: usize) -> Result<(Kind, Slot), Rejected> {
        let j = msg.from.as_usize();
        if j >= self.expected.len() {
            return Err(Rejected::UnknownSender(msg.from));
        }
        if msg.from == self.me {
            return Err(Rejected::FromSelf);
        }
        if msg.round != self.round {
            return Err(Rejected::WrongRound {
                expected: self.round,
                got: msg.round,
            });
        }
        let kind = match msg.to {
            Recipient::All => Kind::Broadcast,
            Recipient::One(to) if to == self.me => Kind::Direct,
            Recipient::One(_) => return Err(Rejected::WrongRecipient),
        };
        if !self.expected[j] {
            return Err(Rejected::NotExpected(msg.from));
        }
        let wanted = match kind {
            Kind::Broadcast => self.wants_broadcast,
            Kind::Direct => self.wants_direct,
        };
        if !wanted {
            return Err(Rejected::UnexpectedKind {
                round: self.round,
                kind: match kind {
                    Kind::Broadcast => "broadcast",
                    Kind::Direct => "direct",
                },
            });
        }
        if msg.payload.len() > max_len {
            return Err(Rejected::Oversized {
                len: msg.payload.len(),
                max: max_len,
            });
        }
        let first = match kind {
            Kind::Broadcast => self.broadcast[j]
                .as_ref()
                .map(|r| (&r.payload, &r.conflict)),
            Kind::Direct => self.direct[j].as_ref().map(|r| (&r.payload, &r.conflict)),
        };
        match first {
            None => Ok((kind, Slot::Empty)),
            Some((payload, conflict))
                if **payload == msg.payload
                    || conflict.as_ref().is_some_and(|c| **c == msg.payload) =>
            {
                Err(Rejected::Duplicate)
            }
            Some(_) => Ok((kind, Slot::Occupied)),
        }
    }

    /// Records a second, different and well-formed payload of `from` in this round
    /// (equivocation; after [`Self::admit`] returned [`Slot::Occupied`] and the payload
    /// decoded). Only the first conflicting payload is kept as evidence.
    pub fn record_conflict(&mut self, kind: Kind, from: PartyIndex, payload: &[u8]) {
        let conflict = match kind {
            Kind::Broadcast => self
                .broadcast
                .get_mut(from.as_usize())
                .and_then(Option::as_mut)
                .map(|r| &mut r.conflict),
            Kind::Direct => self
                .direct
                .get_mut(from.as_usize())
                .and_then(Option::as_mut)
                .map(|r| &mut r.conflict),
        };
        if let Some(c) = conflict {
            if c.is_none() {
                *c = Some(Zeroizing::new(payload.to_vec()));
            }
        }
    }

    /// Stores a decoded broadcast (after [`Self::admit`] returned [`Slot::Empty`]).
    pub fn insert_broadcast(&mut self, from: PartyIndex, payload: Vec<u8>, value: B) {
        if let Some(slot) = self.broadcast.get_mut(from.as_usize()) {
            *slot = Some(Received {
                payload: Zeroizing::new(payload),
                value,
                conflict: None,
            });
        }
    }

    /// Stores a decoded direct message (after [`Self::admit`] returned [`Slot::Empty`]).
    pub fn insert_direct(&mut self, from: PartyIndex, payload: Vec<u8>, value: D) {
        if let Some(slot) = self.direct.get_mut(from.as_usize()) {
            *slot = Some(Received {
                payload: Zeroizing::new(payload),
                value,
                conflict: None,
            });
        }
    }

    /// Our own broadcast of this round (so that our echo covers it too).
    pub fn insert_own_broadcast(&mut self, payload: Vec<u8>, value: B) {
        if let Some(slot) = self.broadcast.get_mut(self.me.as_usize()) {
            *slot = Some(Received {
                payload: Zeroizing::new(payload),
                value,
                conflict: None,
            });
        }
    }

    /// The broadcast received from j.
    pub fn broadcast(&self, j: PartyIndex) -> Option<&Received<B>> {
        self.broadcast.get(j.as_usize()).and_then(Option::as_ref)
    }

    /// The direct message received from j.
    pub fn direct(&self, j: PartyIndex) -> Option<&Received<D>> {
        self.direct.get(j.as_usize()).and_then(Option::as_ref)
    }

    fn has_all(&self, j: usize) -> bool {
        (!self.wants_broadcast || self.broadcast[j].is_some())
            && (!self.wants_direct || self.direct[j].is_some())
    }

    /// Every expected sender delivered every expected kind.
    pub fn is_complete(&self) -> bool {
        (0..self.expected.len()).all(|j| !self.expected[j] || self.has_all(j))
    }

    /// Expected senders whose broadcast is missing.
    pub fn missing_broadcast(&self) -> Vec<PartyIndex> {
        if !self.wants_broadcast {
            return Vec::new();
        }
        (0..self.expected.len())
            .filter(|&j| self.expected[j] && self.broadcast[j].is_none())
            .map(|j| PartyIndex::new(j as u16))
            .collect()
    }

    /// Expected senders that have not delivered everything expected.
    pub fn missing(&self) -> Vec<PartyIndex> {
        (0..self.expected.len())
            .filter(|&j| self.expected[j] && !self.has_all(j))
            .map(|j| PartyIndex::new(j as u16))
            .collect()
    }

    /// Senders that equivocated (broadcast or direct), with both payloads.
    pub fn conflicts(&self) -> Vec<(PartyIndex, Kind, Evidence)> {
        let mut out = Vec::new();
        for (kind, slots) in [(Kind::Broadcast, None), (Kind::Direct, Some(()))] {
            for j in 0..self.expected.len() {
                let r = match slots {
                    None => self.broadcast[j]
                        .as_ref()
                        .map(|r| (&r.payload, &r.conflict)),
                    Some(()) => self.direct[j].as_ref().map(|r| (&r.payload, &r.conflict)),
                };
                if let Some((first, Some(second))) = r {
                    out.push((
                        PartyIndex::new(j as u16),
                        kind,
                        Evidence::Conflict {
                            first: first.to_vec(),
                            second: second.to_vec(),
                        },
                    ));
                }
            }
        }
        out
    }

    /// Our echo of this round's broadcasts, bound to (protocol, session id, round, sender).
    pub fn echo(&self, protocol: &'static [u8], session_id: &[u8]) -> Echo {
        Echo(
            (0..self.expected.len())
                .map(|j| {
                    let mut t = Transcript::new(b"custody/protocol/echo/v1");
                    t.append_bytes(b"protocol", protocol);
                    t.append_bytes(b"session-id", session_id);
                    t.append_u64(b"round", u64::from(self.round));
                    t.append_u64(b"sender", j as u64);
                    match &self.broadcast[j] {
                        None => t.append_bytes(b"none", &[]),
                        Some(r) => {
                            t.append_bytes(b"payload", &r.payload);
                            if let Some(c) = &r.conflict {
                                t.append_bytes(b"conflict", c);
                            }
                        }
                    }
                    let d = t.challenge_bytes(b"digest", 0, ECHO_DIGEST_BYTES);
                    let mut out = [0u8; ECHO_DIGEST_BYTES];
                    out.copy_from_slice(&d);
                    out
                })
                .collect(),
        )
    }
}

/// Compares `reporter`'s echo of round `echoed_round` with ours; the first sender whose
/// digest differs is blamed (see the module docs on what this does and does not prove).
pub fn check_echo(
    ours: &Echo,
    theirs: &Echo,
    reporter: PartyIndex,
    echoed_round: u16,
    round: u16,
) -> Result<(), Abort> {
    for (j, (a, b)) in ours.0.iter().zip(&theirs.0).enumerate() {
        if a != b {
            return Err(Abort {
                round,
                culprits: vec![PartyIndex::new(j as u16)],
                reason: AbortReason::EchoMismatch {
                    reporter,
                    echoed_round,
                },
                evidence: Evidence::EchoDigests {
                    ours: Box::new(*a),
                    theirs: Box::new(*b),
                },
            });
        }
    }
    if ours.0.len() != theirs.0.len() {
        return Err(Abort {
            round,
            culprits: vec![reporter],
            reason: AbortReason::EchoMismatch {
                reporter,
                echoed_round,
            },
            evidence: Evidence::None,
        });
    }
    Ok(())
}

/// Where a party is in its life: before [`Protocol::start`], running, or finished (output or
/// abort); every later call is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Created, not started.
    NotStarted,
    /// Started; [`Lifecycle::round`] is the round it accepts messages of.
    Running,
    /// Ended with an output or an abort.
    Finished,
}

/// The bookkeeping every round-based party shares: phase, current round, the echo of the
/// previous broadcast round (to compare incoming echoes with), and faults seen during the
/// round, acted upon when it closes (module docs).
#[derive(Debug)]
pub struct Lifecycle {
    /// Phase.
    pub phase: Phase,
    /// Current round (0 before start).
    pub round: u16,
    /// Our echo of the previous broadcast round.
    pub prev_echo: Echo,
    /// Aborts found while the round was open (echo mismatches, equivocation).
    pub pending: Vec<Abort>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// Not started.
    pub fn new() -> Self {
        Self {
            phase: Phase::NotStarted,
            round: 0,
            prev_echo: Echo(Vec::new()),
            pending: Vec::new(),
        }
    }

    /// [`Protocol::current_round`].
    pub fn current_round(&self) -> Option<u16> {
        (self.phase == Phase::Running).then_some(self.round)
    }

    /// Moves from not started to round 1 ([`Protocol::start`]).
    pub fn start(&mut self) -> Result<(), Rejected> {
        match self.phase {
            Phase::NotStarted => {
                self.phase = Phase::Running;
                self.round = 1;
                Ok(())
            }
            Phase::Running => Err(Rejected::AlreadyStarted),
            Phase::Finished => Err(Rejected::Finished),
        }
    }

    /// Refuses input unless running.
    pub fn running(&self) -> Result<(), Rejected> {
        match self.phase {
            Phase::NotStarted => Err(Rejected::NotStarted),
            Phase::Finished => Err(Rejected::Finished),
            Phase::Running => Ok(()),
        }
    }

    /// Refuses a deadline unless running and for the current round (a late timer of an
    /// earlier round must not cut this one short).
    pub fn check_deadline(&self, round: u16) -> Result<(), Rejected> {
        self.running()?;
        if round == self.round {
            Ok(())
        } else {
            Err(Rejected::WrongRound {
                expected: self.round,
                got: round,
            })
        }
    }

    /// Moves to `round`, remembering our echo of the round just closed.
    pub fn enter(&mut self, round: u16, echo: Echo) {
        self.round = round;
        self.prev_echo = echo;
    }

    /// Compares `from`'s echo of the previous round with ours; a mismatch is pending.
    pub fn check_incoming_echo(&mut self, from: PartyIndex, echo: &Echo) {
        let round = self.round;
        if let Err(a) = check_echo(&self.prev_echo, echo, from, round.saturating_sub(1), round) {
            self.pending.push(a);
        }
    }

    /// Records equivocation found in a closed round's inbox as pending aborts (all kinds, or
    /// broadcasts only where the protocol treats conflicting direct messages otherwise).
    pub fn note_conflicts<B, D>(&mut self, inbox: &RoundInbox<B, D>, broadcast_only: bool) {
        for (j, kind, evidence) in inbox.conflicts() {
            if broadcast_only && kind != Kind::Broadcast {
                continue;
            }
            self.pending.push(Abort {
                round: inbox.round(),
                culprits: vec![j],
                reason: AbortReason::Equivocation,
                evidence,
            });
        }
    }

    /// The first pending abort, if any.
    pub fn take_pending(&mut self) -> Option<Abort> {
        if self.pending.is_empty() {
            None
        } else {
            Some(self.pending.remove(0))
        }
    }

    /// An abort naming the parties that sent nothing valid before the deadline, if any.
    pub fn missing(&self, missing: Vec<PartyIndex>) -> Result<(), Abort> {
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Abort {
                round: self.round,
                culprits: missing,
                reason: AbortReason::MissingMessage,
                evidence: Evidence::None,
            })
        }
    }
}

/// How closing a round ended: the next round's messages, or the protocol's output.
pub enum Closed<O> {
    /// Messages of the next round.
    Next(Vec<Outgoing>),
    /// The output.
    Done(O),
}

/// A party whose rounds close when their inbox is complete or at the deadline. Implementing it
/// gives the shared [`advance`] loop and, by the blanket impl below, [`Protocol`] itself: every
/// protocol of the crate starts, refuses input outside its running phase, takes messages and
/// meets deadlines the same way.
pub trait RoundBased {
    /// The output of an honest run.
    type Output;
    /// This party's position.
    fn index(&self) -> PartyIndex;
    /// The shared bookkeeping.
    fn life(&self) -> &Lifecycle;
    /// The shared bookkeeping, mutable.
    fn lifecycle(&mut self) -> &mut Lifecycle;
    /// Round 1's messages (with the party's own broadcast stored in its round-1 inbox), or an
    /// abort if the party cannot even start (a bug).
    fn first_round(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort>;
    /// Admits, decodes and stores one message of the current round (echo checked).
    fn receive_message(&mut self, msg: &Incoming) -> Result<(), Rejected>;
    /// Whether the current round's inbox is complete.
    fn round_complete(&self) -> bool;
    /// Closes the current round.
    fn close_round(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Closed<Self::Output>, Abort>;
}

impl<P: RoundBased> Protocol for P {
    type Output = P::Output;

    fn me(&self) -> PartyIndex {
        self.index()
    }

    fn current_round(&self) -> Option<u16> {
        self.life().current_round()
    }

    fn start(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Step<P::Output>, Rejected> {
        self.lifecycle().start()?;
        match self.first_round(rng) {
            Ok(first) => {
                let mut step = advance(self, rng, false);
                let mut outgoing = first;
                outgoing.append(&mut step.outgoing);
                step.outgoing = outgoing;
                Ok(step)
            }
            Err(abort) => {
                self.lifecycle().phase = Phase::Finished;
                Ok(Step {
                    outgoing: Vec::new(),
                    outcome: Some(Outcome::Abort(abort)),
                })
            }
        }
    }

    fn handle(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        msg: Incoming,
    ) -> Result<Step<P::Output>, Rejected> {
        self.life().running()?;
        self.receive_message(&msg)?;
        Ok(advance(self, rng, false))
    }

    fn on_round_deadline(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        round: u16,
    ) -> Result<Step<P::Output>, Rejected> {
        self.life().check_deadline(round)?;
        Ok(advance(self, rng, true))
    }
}

/// Closes rounds while they are complete (or once, forced, at a deadline). After a round's
/// own messages are out, pending faults of that round end the run (module docs).
pub fn advance<P: RoundBased>(
    party: &mut P,
    rng: &mut dyn CryptoRngCore,
    mut force: bool,
) -> Step<P::Output> {
    let mut step = Step::empty();
    while party.life().phase == Phase::Running {
        if !party.round_complete() && !force {
            break;
        }
        force = false;
        let closed = party.close_round(rng);
        let life = party.lifecycle();
        match closed {
            Ok(Closed::Next(out)) => {
                step.outgoing.extend(out);
                if let Some(abort) = life.take_pending() {
                    life.phase = Phase::Finished;
                    step.outcome = Some(Outcome::Abort(abort));
                }
            }
            Ok(Closed::Done(output)) => {
                life.phase = Phase::Finished;
                step.outcome = Some(match life.take_pending() {
                    Some(abort) => Outcome::Abort(abort),
                    None => Outcome::Output(output),
                });
            }
            Err(abort) => {
                // inconsistent views (echo mismatch, equivocation) explain later failures, so
                // they are reported first
                life.phase = Phase::Finished;
                let first = life.take_pending().unwrap_or(abort);
                step.outcome = Some(Outcome::Abort(first));
            }
        }
    }
    step
}

/// Admits, decodes and stores one incoming message into `inbox` (the routine every protocol's
/// `handle` runs): refusals leave the inbox unchanged; a second, different but well-formed
/// payload is recorded as a conflict (equivocation) and `Ok(None)` is returned; otherwise the
/// kind of the stored message.
pub fn accept<B, D>(
    inbox: &mut RoundInbox<B, D>,
    msg: &Incoming,
    max_broadcast: usize,
    max_direct: usize,
    decode_b: impl FnOnce(&[u8]) -> Result<B, DecodeError>,
    decode_d: impl FnOnce(&[u8]) -> Result<D, DecodeError>,
) -> Result<Option<Kind>, Rejected> {
    let max = match msg.to {
        Recipient::All => max_broadcast,
        Recipient::One(_) => max_direct,
    };
    let (kind, slot) = inbox.admit(msg, max)?;
    match (kind, slot) {
        (Kind::Broadcast, Slot::Empty) => {
            let v = decode_b(&msg.payload)?;
            inbox.insert_broadcast(msg.from, msg.payload.clone(), v);
        }
        (Kind::Direct, Slot::Empty) => {
            let v = decode_d(&msg.payload)?;
            inbox.insert_direct(msg.from, msg.payload.clone(), v);
        }
        (Kind::Broadcast, Slot::Occupied) => {
            decode_b(&msg.payload)?;
            inbox.record_conflict(kind, msg.from, &msg.payload);
            return Ok(None);
        }
        (Kind::Direct, Slot::Occupied) => {
            decode_d(&msg.payload)?;
            inbox.record_conflict(kind, msg.from, &msg.payload);
            return Ok(None);
        }
    }
    Ok(Some(kind))
}

/// [`accept`] for a round whose broadcasts carry an echo of the previous round: a newly stored
/// broadcast's echo (`echo_of`) is compared with ours right away (NET-03); direct messages and
/// refused or conflicting input leave the echo unchecked.
#[allow(clippy::too_many_arguments)]
pub fn accept_echoed<B, D>(
    life: &mut Lifecycle,
    inbox: &mut RoundInbox<B, D>,
    msg: &Incoming,
    max_broadcast: usize,
    max_direct: usize,
    decode_b: impl FnOnce(&[u8]) -> Result<B, DecodeError>,
    decode_d: impl FnOnce(&[u8]) -> Result<D, DecodeError>,
    echo_of: impl FnOnce(&B) -> &Echo,
) -> Result<(), Rejected> {
    if accept(inbox, msg, max_broadcast, max_direct, decode_b, decode_d)? == Some(Kind::Broadcast) {
        if let Some(r) = inbox.broadcast(msg.from) {
            life.check_incoming_echo(msg.from, echo_of(&r.value));
        }
    }
    Ok(())
}

/// Decoder for rounds without direct messages (never called: the inbox refuses them first).
pub fn no_direct(_: &[u8]) -> Result<(), DecodeError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(round: u16, from: u16, to: Recipient, payload: &[u8]) -> Incoming {
        Incoming {
            round,
            from: PartyIndex::new(from),
            to,
            payload: payload.to_vec(),
        }
    }

    /// DKG-04: the committee map refuses zero (also as q ≡ 0) and repeated points.
    #[test]
    fn dkg_04_committee_refuses_zero_and_repeated_points() {
        assert!(Committee::standard(5).is_ok());
        assert!(matches!(
            Committee::standard(0),
            Err(CommitteeError::Size(0))
        ));
        assert_eq!(
            Committee::new(vec![Scalar::ONE, Scalar::ZERO]),
            Err(CommitteeError::Points(VssError::ZeroPoint(1)))
        );
        assert_eq!(
            Committee::new(vec![Scalar::from(3u64), Scalar::ONE, Scalar::from(3u64)]),
            Err(CommitteeError::Points(VssError::DuplicatePoint(0, 2)))
        );
        // q itself is zero mod q; q + 1 is 1 mod q
        let q: [u8; 32] = crate::arith::curve_order()
            .to_bytes_be()
            .try_into()
            .unwrap();
        let mut q_plus_1 = q;
        q_plus_1[31] += 1;
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(
            Committee::from_be_bytes(&[one, q]),
            Err(CommitteeError::Points(VssError::ZeroPoint(1)))
        );
        assert_eq!(
            Committee::from_be_bytes(&[one, q_plus_1]),
            Err(CommitteeError::Points(VssError::DuplicatePoint(0, 1)))
        );
        assert_eq!(Committee::from_be_bytes(&[one]).unwrap().len(), 1);
    }

    #[test]
    fn inbox_refuses_bad_input_and_detects_conflicts() {
        let me = PartyIndex::new(0);
        let mut inbox: RoundInbox<u8, u8> = RoundInbox::new(2, me, vec![true; 3], true, false);
        let ok = msg(2, 1, Recipient::All, b"abc");
        assert_eq!(inbox.admit(&ok, 8), Ok((Kind::Broadcast, Slot::Empty)));
        assert_eq!(
            inbox.admit(&msg(2, 3, Recipient::All, b"a"), 8),
            Err(Rejected::UnknownSender(PartyIndex::new(3)))
        );
        assert_eq!(
            inbox.admit(&msg(2, 0, Recipient::All, b"a"), 8),
            Err(Rejected::FromSelf)
        );
        assert_eq!(
            inbox.admit(&msg(1, 1, Recipient::All, b"a"), 8),
            Err(Rejected::WrongRound {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            inbox.admit(&msg(2, 1, Recipient::One(PartyIndex::new(2)), b"a"), 8),
            Err(Rejected::WrongRecipient)
        );
        assert!(matches!(
            inbox.admit(&msg(2, 1, Recipient::One(me), b"a"), 8),
            Err(Rejected::UnexpectedKind { .. })
        ));
        assert!(matches!(
            inbox.admit(&msg(2, 1, Recipient::All, &[0u8; 9]), 8),
            Err(Rejected::Oversized { len: 9, max: 8 })
        ));
        inbox.insert_broadcast(PartyIndex::new(1), b"abc".to_vec(), 1);
        assert!(!inbox.is_complete());
        assert_eq!(inbox.missing(), vec![PartyIndex::new(2)]);
        assert_eq!(inbox.admit(&ok, 8), Err(Rejected::Duplicate));
        let other = msg(2, 1, Recipient::All, b"abd");
        assert_eq!(
            inbox.admit(&other, 8),
            Ok((Kind::Broadcast, Slot::Occupied))
        );
        assert!(inbox.conflicts().is_empty());
        inbox.record_conflict(Kind::Broadcast, PartyIndex::new(1), &other.payload);
        assert_eq!(inbox.admit(&other, 8), Err(Rejected::Duplicate));
        let conflicts = inbox.conflicts();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].0, PartyIndex::new(1));
        // echo digests: ours differs from a view without the conflict
        let mut clean: RoundInbox<u8, u8> = RoundInbox::new(2, me, vec![true; 3], true, false);
        clean.insert_broadcast(PartyIndex::new(1), b"abc".to_vec(), 1);
        let a = inbox.echo(b"t", b"sid");
        let b = clean.echo(b"t", b"sid");
        assert_eq!(a.0[0], b.0[0]);
        assert_ne!(a.0[1], b.0[1]);
        let abort = check_echo(&a, &b, PartyIndex::new(2), 2, 3).unwrap_err();
        assert_eq!(abort.culprits, vec![PartyIndex::new(1)]);
        assert!(check_echo(&b, &b, PartyIndex::new(2), 2, 3).is_ok());
        // a different session or round gives different digests
        assert_ne!(clean.echo(b"t", b"sid2").0[1], b.0[1]);
    }
}
