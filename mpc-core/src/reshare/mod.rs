//! Resharing a key to a new committee (m', t'): the verifiable redistribution of Shamir shares
//! of Wong, Wang and Wing ("Verifiable Secret Redistribution for Archive Systems", IEEE SISW
//! 2002), with complaints and answers as in GJKR, and the CGGMP-style echo of every broadcast.
//!
//! t old holders (the dealers D) each share their Lagrange-weighted share w_d = λ_d·x_d with a
//! fresh polynomial g_d of degree t'−1 to the m' new holders (the receivers). Every
//! commitment vector is checked against the *old public shares*: G_d0 must equal λ_d·X_d
//! (RES-01), so a dealer cannot change the key; a receiver's new share is Σ_d g_d(x'_r), the
//! new public shares are Σ_d G_d(x'_j), and the new public key Σ_d G_d0 must equal the old one.
//!
//! Session positions: dealers 0..t (in the order of their old indices), then receivers
//! t..t + m' (in new-committee order). A node that is both an old and a new holder runs two
//! parties, one per role.
//!
//! | round | sender | content | checks |
//! |---|---|---|---|
//! | 1 | dealers | broadcast G_d0..G_d,t'−1; direct g_d(x'_r) to each receiver | exactly t' (decoder); G_d0 = λ_d·X_d by everyone (RES-01, names d) |
//! | 2 | receivers | the dealers whose sub-share fails g_d(x'_r)·G = Σ_k G_dk x'_r^k; echo of 1 | — |
//! | 3 | dealers | the accused sub-shares in public; echo of 2 | a verifying answer settles the complaint (the receiver uses it), a missing or wrong one names the dealer (RES-01) |
//! | 4 | receivers | H(Y', X'_1..X'_m', t', committee); echo of 3 | Y' = Y and the same digest from every receiver |
//!
//! Outputs: a receiver gets its new [`KeyShare`] (epoch + 1); a dealer gets a
//! [`ReshareConfirmation`]: all m' receivers confirmed the unchanged key, so it may erase its
//! old share (RES-02: the signer node erases only after this, two-phase, so a crash never
//! loses the key). Every fault aborts naming its culprit (a reshare is re-run without it).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::dkg::KeyShare;
use crate::protocol::{
    accept, accept_echoed, no_direct, Abort, AbortReason, Closed, Committee, Evidence, Incoming,
    Lifecycle, Outgoing, PartyIndex, Recipient, Rejected, RoundBased, RoundInbox,
};
use crate::transcript::Transcript;
use crate::vss::{evaluate_commitments, verify_feldman_share, Polynomial};
use crate::zk::MAX_SESSION_ID_BYTES;

pub mod msg;

use msg::{
    Round1Feldman, Round1SubShare, Round2Complaints, Round3Answers, Round4Confirm, Shape,
    DIGEST_BYTES,
};

/// Protocol label in every resharing hash.
const PROTOCOL: &[u8] = b"custody/reshare/www02/v1";

/// The public description of a resharing, the same for every participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReshareSession {
    /// Session id.
    pub session_id: Vec<u8>,
    /// Old committee and threshold t.
    pub old_committee: Committee,
    /// Old threshold.
    pub old_threshold: u16,
    /// The key.
    pub public_key: ProjectivePoint,
    /// Old public shares X_j.
    pub old_public_shares: Vec<ProjectivePoint>,
    /// HD chain code (carried over).
    pub chain_code: [u8; 32],
    /// Epoch of the old shares (the new ones get epoch + 1).
    pub epoch: u64,
    /// The t dealers (old indices, strictly increasing).
    pub dealers: Vec<PartyIndex>,
    /// The new committee.
    pub new_committee: Committee,
    /// The new threshold t'.
    pub new_threshold: u16,
}

impl ReshareSession {
    /// The public description of resharing `key` by `dealers` to (`new_committee`, t').
    pub fn from_key(
        session_id: &[u8],
        key: &KeyShare,
        dealers: Vec<PartyIndex>,
        new_committee: Committee,
        new_threshold: u16,
    ) -> Self {
        Self {
            session_id: session_id.to_vec(),
            old_committee: key.committee().clone(),
            old_threshold: key.threshold(),
            public_key: *key.public_key(),
            old_public_shares: key.public_shares().to_vec(),
            chain_code: *key.chain_code(),
            epoch: key.epoch(),
            dealers,
            new_committee,
            new_threshold,
        }
    }

    fn shape(&self) -> Shape {
        Shape {
            dealers: self.dealers.len(),
            receivers: usize::from(self.new_committee.len()),
            t_new: usize::from(self.new_threshold),
        }
    }
}

/// Why a resharing party could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReshareSetupError {
    /// Session id empty or too long.
    #[error("session id of {0} bytes (1..={MAX_SESSION_ID_BYTES} required)")]
    SessionId(usize),
    /// Not exactly t dealers, not strictly increasing, or outside the old committee.
    #[error("dealers must be exactly t strictly increasing old indices")]
    Dealers,
    /// t' outside 1..=m'.
    #[error("new threshold {t} for {m} new holders")]
    NewThreshold {
        /// t'.
        t: u16,
        /// m'.
        m: u16,
    },
    /// The old public data is inconsistent, or the key share is not from it.
    #[error("old public shares or key share inconsistent with the session")]
    OldKey,
    /// The party's index is not a dealer / not in the new committee.
    #[error("not a participant in this role")]
    Role,
}

/// A dealer's output: every new holder confirmed the unchanged key (RES-02).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReshareConfirmation {
    /// The key, unchanged.
    pub public_key: ProjectivePoint,
    /// New public shares.
    pub new_public_shares: Vec<ProjectivePoint>,
    /// The digest every receiver confirmed.
    pub result: [u8; DIGEST_BYTES],
}

/// What a resharing party ends with.
#[derive(Debug)]
pub enum ReshareOutput {
    /// A dealer's confirmation.
    Dealer(ReshareConfirmation),
    /// A receiver's new key share.
    Receiver(KeyShare),
}

enum Role {
    Dealer {
        polynomial: Polynomial,
        feldman: Vec<ProjectivePoint>,
    },
    Receiver {
        index: PartyIndex,
        /// Sub-shares accepted per dealer position (answers may fill them in).
        subshares: Vec<Option<Zeroizing<Scalar>>>,
    },
}

/// One resharing party (a sans-IO state machine; see the module docs).
pub struct ReshareParty {
    session: ReshareSession,
    shape: Shape,
    me: PartyIndex,
    role: Role,
    /// λ_d·X_d per dealer position (what G_d0 must be).
    expected_constants: Vec<ProjectivePoint>,
    life: Lifecycle,
    r1: RoundInbox<Round1Feldman, Round1SubShare>,
    r2: RoundInbox<Round2Complaints, ()>,
    r3: RoundInbox<Round3Answers, ()>,
    r4: RoundInbox<Round4Confirm, ()>,
    result: Option<([u8; DIGEST_BYTES], Vec<ProjectivePoint>)>,
}

impl fmt::Debug for ReshareParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReshareParty")
            .field("me", &self.me)
            .field("round", &self.life.round)
            .finish_non_exhaustive()
    }
}

fn check_session(s: &ReshareSession) -> Result<Vec<ProjectivePoint>, ReshareSetupError> {
    if s.session_id.is_empty() || s.session_id.len() > MAX_SESSION_ID_BYTES {
        return Err(ReshareSetupError::SessionId(s.session_id.len()));
    }
    let m_new = s.new_committee.len();
    if s.new_threshold == 0 || s.new_threshold > m_new {
        return Err(ReshareSetupError::NewThreshold {
            t: s.new_threshold,
            m: m_new,
        });
    }
    if s.dealers.len() != usize::from(s.old_threshold)
        || !s.dealers.windows(2).all(|w| w[0] < w[1])
        || !s.dealers.iter().all(|d| s.old_committee.contains(*d))
    {
        return Err(ReshareSetupError::Dealers);
    }
    if s.old_public_shares.len() != usize::from(s.old_committee.len()) {
        return Err(ReshareSetupError::OldKey);
    }
    let points: Vec<Scalar> = s
        .dealers
        .iter()
        .filter_map(|d| s.old_committee.point(*d).copied())
        .collect();
    let mut expected = Vec::with_capacity(points.len());
    let mut sum = ProjectivePoint::IDENTITY;
    for (k, d) in s.dealers.iter().enumerate() {
        let lambda = crate::vss::lagrange_coefficient(&points, k, &Scalar::ZERO)
            .map_err(|_| ReshareSetupError::Dealers)?;
        let c = s.old_public_shares[d.as_usize()] * lambda;
        sum += c;
        expected.push(c);
    }
    // the old public shares must interpolate to the key (else RES-01 checks against nonsense)
    if sum != s.public_key {
        return Err(ReshareSetupError::OldKey);
    }
    Ok(expected)
}

/// The four rounds' inboxes.
type Inboxes = (
    RoundInbox<Round1Feldman, Round1SubShare>,
    RoundInbox<Round2Complaints, ()>,
    RoundInbox<Round3Answers, ()>,
    RoundInbox<Round4Confirm, ()>,
);

/// Round 1 and 3 messages come from the dealers, rounds 2 and 4 from the receivers.
fn inboxes(shape: &Shape, me: PartyIndex) -> Inboxes {
    let dealers: Vec<bool> = (0..shape.n()).map(|p| p < shape.dealers).collect();
    let receivers: Vec<bool> = (0..shape.n()).map(|p| p >= shape.dealers).collect();
    let me_receives = me.as_usize() >= shape.dealers;
    (
        RoundInbox::new(1, me, dealers.clone(), true, me_receives),
        RoundInbox::new(2, me, receivers.clone(), true, false),
        RoundInbox::new(3, me, dealers, true, false),
        RoundInbox::new(4, me, receivers, true, false),
    )
}

impl ReshareParty {
    /// A dealer: an old holder among `session.dealers`, with its key share.
    pub fn dealer(
        session: ReshareSession,
        key: &KeyShare,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, ReshareSetupError> {
        let expected = check_session(&session)?;
        let pos = session
            .dealers
            .iter()
            .position(|d| *d == key.me())
            .ok_or(ReshareSetupError::Role)?;
        if key.public_key() != &session.public_key
            || key.public_shares() != session.old_public_shares.as_slice()
            || key.epoch() != session.epoch
        {
            return Err(ReshareSetupError::OldKey);
        }
        let w = Zeroizing::new(
            *key.secret_share() * {
                let points: Vec<Scalar> = session
                    .dealers
                    .iter()
                    .filter_map(|d| session.old_committee.point(*d).copied())
                    .collect();
                crate::vss::lagrange_coefficient(&points, pos, &Scalar::ZERO)
                    .map_err(|_| ReshareSetupError::Dealers)?
            },
        );
        let polynomial = Polynomial::with_constant(rng, &w, usize::from(session.new_threshold));
        let feldman = polynomial.feldman_commitments();
        let shape = session.shape();
        let me = PartyIndex::new(pos as u16);
        let (r1, r2, r3, r4) = inboxes(&shape, me);
        Ok(Self {
            session,
            shape,
            me,
            role: Role::Dealer {
                polynomial,
                feldman,
            },
            expected_constants: expected,
            life: Lifecycle::new(),
            r1,
            r2,
            r3,
            r4,
            result: None,
        })
    }

    /// A receiver: member `index` of the new committee.
    pub fn receiver(session: ReshareSession, index: PartyIndex) -> Result<Self, ReshareSetupError> {
        let expected = check_session(&session)?;
        if !session.new_committee.contains(index) {
            return Err(ReshareSetupError::Role);
        }
        let shape = session.shape();
        let me = PartyIndex::new((shape.dealers + index.as_usize()) as u16);
        let (r1, r2, r3, r4) = inboxes(&shape, me);
        Ok(Self {
            role: Role::Receiver {
                index,
                subshares: vec![None; shape.dealers],
            },
            session,
            shape,
            me,
            expected_constants: expected,
            life: Lifecycle::new(),
            r1,
            r2,
            r3,
            r4,
            result: None,
        })
    }

    /// This party's session position (dealers first, then receivers).
    pub fn position(&self) -> PartyIndex {
        self.me
    }

    fn receiver_point(&self, pos: usize) -> Scalar {
        let j = PartyIndex::new((pos - self.shape.dealers) as u16);
        self.session
            .new_committee
            .point(j)
            .copied()
            .unwrap_or(Scalar::ZERO)
    }

    fn broadcast(&self, payload: Vec<u8>) -> Outgoing {
        Outgoing {
            round: self.life.round,
            to: Recipient::All,
            payload,
        }
    }

    fn blame(&self, round: u16, d: usize, reason: AbortReason, bytes: &[u8]) -> Abort {
        let from = PartyIndex::new(d as u16);
        Abort {
            round,
            culprits: vec![from],
            reason,
            evidence: Evidence::Payload {
                from,
                round,
                bytes: bytes.to_vec(),
            },
        }
    }

    /// The Feldman vector of dealer position d (ours or received).
    fn feldman_of(&self, d: usize) -> Option<&[ProjectivePoint]> {
        match &self.role {
            Role::Dealer { feldman, .. } if d == self.me.as_usize() => Some(feldman),
            _ => self
                .r1
                .broadcast(PartyIndex::new(d as u16))
                .map(|r| r.value.feldman.as_slice()),
        }
    }

    fn round1_messages(&self) -> Vec<Outgoing> {
        let Role::Dealer {
            polynomial,
            feldman,
        } = &self.role
        else {
            return Vec::new();
        };
        let mut out = vec![Outgoing {
            round: 1,
            to: Recipient::All,
            payload: Round1Feldman {
                feldman: feldman.clone(),
            }
            .to_bytes(),
        }];
        for pos in self.shape.dealers..self.shape.n() {
            out.push(Outgoing {
                round: 1,
                to: Recipient::One(PartyIndex::new(pos as u16)),
                payload: Round1SubShare {
                    s: polynomial.evaluate(&self.receiver_point(pos)),
                }
                .to_bytes(),
            });
        }
        out
    }

    /// Round 1 closes: RES-01 on every dealer's constant term; a receiver checks its sub-shares
    /// and complains.
    fn close_r1(&mut self) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r1.missing())?;
        self.life.note_conflicts(&self.r1, false);
        for d in 0..self.shape.dealers {
            let Some(f) = self.feldman_of(d) else {
                return Err(Abort {
                    round: 1,
                    culprits: vec![PartyIndex::new(d as u16)],
                    reason: AbortReason::MissingMessage,
                    evidence: Evidence::None,
                });
            };
            if f.first() != Some(&self.expected_constants[d]) {
                let bytes = self
                    .r1
                    .broadcast(PartyIndex::new(d as u16))
                    .map(|r| r.payload.to_vec())
                    .unwrap_or_default();
                return Err(self.blame(1, d, AbortReason::ReshareConstantMismatch, &bytes));
            }
        }
        let echo = self.r1.echo(PROTOCOL, &self.session.session_id);
        self.life.enter(2, echo.clone());
        let me = self.me.as_usize();
        let x = if me >= self.shape.dealers {
            self.receiver_point(me)
        } else {
            Scalar::ZERO
        };
        let mut accused = Vec::new();
        let mut accepted = Vec::new();
        if let Role::Receiver { .. } = self.role {
            for d in 0..self.shape.dealers {
                let direct = self.r1.direct(PartyIndex::new(d as u16));
                let f = self.feldman_of(d).unwrap_or(&[]);
                match direct {
                    Some(s) if verify_feldman_share(f, &x, &s.value.s) => {
                        accepted.push((d, s.value.s.clone()))
                    }
                    _ => accused.push(d as u16),
                }
            }
        }
        if let Role::Receiver { subshares, .. } = &mut self.role {
            for (d, s) in accepted {
                subshares[d] = Some(s);
            }
            let msg = Round2Complaints { echo, accused };
            let payload = msg.to_bytes();
            self.r2.insert_own_broadcast(payload.clone(), msg);
            return Ok(vec![self.broadcast(payload)]);
        }
        Ok(Vec::new())
    }

    /// Round 2 closes: a dealer answers the complaints against it.
    fn close_r2(&mut self) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r2.missing())?;
        self.life.note_conflicts(&self.r2, false);
        let echo = self.r2.echo(PROTOCOL, &self.session.session_id);
        self.life.enter(3, echo.clone());
        let Role::Dealer { polynomial, .. } = &self.role else {
            return Ok(Vec::new());
        };
        let me = self.me.get();
        let mut answers = Vec::new();
        for pos in self.shape.dealers..self.shape.n() {
            let accused = self
                .r2
                .broadcast(PartyIndex::new(pos as u16))
                .is_some_and(|r| r.value.accused.contains(&me));
            if accused {
                answers.push((pos as u16, *polynomial.evaluate(&self.receiver_point(pos))));
            }
        }
        let msg = Round3Answers { echo, answers };
        let payload = msg.to_bytes();
        self.r3.insert_own_broadcast(payload.clone(), msg);
        Ok(vec![self.broadcast(payload)])
    }

    /// Round 3 closes: judge complaints; compute and confirm the new public data.
    fn close_r3(&mut self) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r3.missing())?;
        self.life.note_conflicts(&self.r3, false);
        for r in self.shape.dealers..self.shape.n() {
            let accused: Vec<u16> = if r == self.me.as_usize() {
                self.r2
                    .broadcast(self.me)
                    .map(|m| m.value.accused.clone())
                    .unwrap_or_default()
            } else {
                self.r2
                    .broadcast(PartyIndex::new(r as u16))
                    .map(|m| m.value.accused.clone())
                    .unwrap_or_default()
            };
            for d in accused {
                let d = usize::from(d);
                let answer = self.answer_of(d, r);
                let f = self.feldman_of(d).unwrap_or(&[]);
                // a verifying answer settles the complaint (the receiver uses it); a missing or
                // wrong one names the dealer
                let settled =
                    answer.is_some_and(|s| verify_feldman_share(f, &self.receiver_point(r), &s));
                if !settled {
                    let bytes = self
                        .r3
                        .broadcast(PartyIndex::new(d as u16))
                        .map(|m| m.payload.to_vec())
                        .unwrap_or_default();
                    return Err(self.blame(3, d, AbortReason::FeldmanMismatch, &bytes));
                }
            }
        }
        // new public data: X'_j = Σ_d G_d(x'_j), Y' = Σ_d G_d0 (= Y by RES-01)
        let mut public_shares = vec![ProjectivePoint::IDENTITY; self.shape.receivers];
        let mut key = ProjectivePoint::IDENTITY;
        for d in 0..self.shape.dealers {
            let f = self.feldman_of(d).unwrap_or(&[]).to_vec();
            key += f.first().copied().unwrap_or(ProjectivePoint::IDENTITY);
            for (j, x) in public_shares.iter_mut().enumerate() {
                *x += evaluate_commitments(&f, &self.receiver_point(self.shape.dealers + j));
            }
        }
        if key != self.session.public_key {
            return Err(Abort {
                round: 3,
                culprits: vec![self.me],
                reason: AbortReason::Bug("RES-01 checked every constant term"),
                evidence: Evidence::None,
            });
        }
        let mut t = Transcript::new(PROTOCOL);
        t.append_bytes(b"session-id", &self.session.session_id);
        t.append_point(b"Y", &key);
        t.append_point_list(b"X'_j", &public_shares);
        t.append_u64(b"t'", u64::from(self.session.new_threshold));
        self.session.new_committee.append_to(&mut t);
        let mut result = [0u8; DIGEST_BYTES];
        result.copy_from_slice(&t.challenge_bytes(b"digest", 0, DIGEST_BYTES));
        self.result = Some((result, public_shares));
        let echo = self.r3.echo(PROTOCOL, &self.session.session_id);
        self.life.enter(4, echo.clone());
        if let Role::Receiver { .. } = self.role {
            let msg = Round4Confirm { echo, result };
            let payload = msg.to_bytes();
            self.r4.insert_own_broadcast(payload.clone(), msg);
            return Ok(vec![self.broadcast(payload)]);
        }
        Ok(Vec::new())
    }

    /// Dealer d's public answer for receiver position r, if it gave one.
    fn answer_of(&self, d: usize, r: usize) -> Option<Scalar> {
        if let Role::Dealer { polynomial, .. } = &self.role {
            if d == self.me.as_usize() {
                return Some(*polynomial.evaluate(&self.receiver_point(r)));
            }
        }
        self.r3
            .broadcast(PartyIndex::new(d as u16))
            .and_then(|m| m.value.answers.iter().find(|(p, _)| usize::from(*p) == r))
            .map(|(_, s)| *s)
    }

    /// Round 4 closes: every receiver confirmed the same result.
    fn close_r4(&mut self) -> Result<ReshareOutput, Abort> {
        self.life.missing(self.r4.missing())?;
        self.life.note_conflicts(&self.r4, false);
        let Some((result, public_shares)) = self.result.clone() else {
            return Err(Abort {
                round: 4,
                culprits: vec![self.me],
                reason: AbortReason::Bug("result missing in round 4"),
                evidence: Evidence::None,
            });
        };
        for r in self.shape.dealers..self.shape.n() {
            if let Some(m) = self.r4.broadcast(PartyIndex::new(r as u16)) {
                if m.value.result != result {
                    return Err(self.blame(4, r, AbortReason::ResultMismatch, &m.payload));
                }
            }
        }
        let bug = |what| Abort {
            round: 4,
            culprits: vec![self.me],
            reason: AbortReason::Bug(what),
            evidence: Evidence::None,
        };
        match &self.role {
            Role::Dealer { .. } => Ok(ReshareOutput::Dealer(ReshareConfirmation {
                public_key: self.session.public_key,
                new_public_shares: public_shares,
                result,
            })),
            Role::Receiver { index, subshares } => {
                let mut share = Zeroizing::new(Scalar::ZERO);
                for (d, s) in subshares.iter().enumerate() {
                    let s = match s {
                        Some(s) => **s,
                        None => self
                            .answer_of(d, self.me.as_usize())
                            .ok_or_else(|| bug("sub-share neither accepted nor answered"))?,
                    };
                    *share += s;
                }
                let epoch = self
                    .session
                    .epoch
                    .checked_add(1)
                    .ok_or_else(|| bug("epoch overflow"))?;
                KeyShare::from_parts(
                    &self.session.session_id,
                    *index,
                    self.session.new_threshold,
                    self.session.new_committee.clone(),
                    share,
                    public_shares,
                    self.session.public_key,
                    self.session.chain_code,
                    epoch,
                )
                .map(ReshareOutput::Receiver)
                .map_err(|_| bug("new share inconsistent with the confirmed public data"))
            }
        }
    }

    fn receive(&mut self, msg: &Incoming) -> Result<(), Rejected> {
        let shape = self.shape;
        let max_b = shape.max_len(self.life.round, false);
        let max_d = shape.max_len(self.life.round, true);
        match self.life.round {
            1 => accept(
                &mut self.r1,
                msg,
                max_b,
                max_d,
                |b| Round1Feldman::from_bytes(b, &shape),
                Round1SubShare::from_bytes,
            )
            .map(|_| ()),
            2 => accept_echoed(
                &mut self.life,
                &mut self.r2,
                msg,
                max_b,
                max_d,
                |b| Round2Complaints::from_bytes(b, &shape),
                no_direct,
                |v| &v.echo,
            ),
            3 => accept_echoed(
                &mut self.life,
                &mut self.r3,
                msg,
                max_b,
                max_d,
                |b| Round3Answers::from_bytes(b, &shape),
                no_direct,
                |v| &v.echo,
            ),
            _ => accept_echoed(
                &mut self.life,
                &mut self.r4,
                msg,
                max_b,
                max_d,
                |b| Round4Confirm::from_bytes(b, &shape),
                no_direct,
                |v| &v.echo,
            ),
        }
    }
}

impl RoundBased for ReshareParty {
    type Output = ReshareOutput;

    fn index(&self) -> PartyIndex {
        self.me
    }

    fn life(&self) -> &Lifecycle {
        &self.life
    }

    fn lifecycle(&mut self) -> &mut Lifecycle {
        &mut self.life
    }

    /// Round 1: a dealer's Feldman commitments and sub-shares; nothing for a receiver.
    fn first_round(&mut self, _rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        let out = self.round1_messages();
        if let Some(first) = out.first() {
            if let Ok(v) = Round1Feldman::from_bytes(&first.payload, &self.shape) {
                self.r1.insert_own_broadcast(first.payload.clone(), v);
            }
        }
        Ok(out)
    }

    fn receive_message(&mut self, msg: &Incoming) -> Result<(), Rejected> {
        self.receive(msg)
    }

    fn round_complete(&self) -> bool {
        match self.life.round {
            1 => self.r1.is_complete(),
            2 => self.r2.is_complete(),
            3 => self.r3.is_complete(),
            _ => self.r4.is_complete(),
        }
    }

    fn close_round(
        &mut self,
        _rng: &mut dyn CryptoRngCore,
    ) -> Result<Closed<ReshareOutput>, Abort> {
        match self.life.round {
            1 => self.close_r1().map(Closed::Next),
            2 => self.close_r2().map(Closed::Next),
            3 => self.close_r3().map(Closed::Next),
            _ => self.close_r4().map(Closed::Done),
        }
    }
}

#[cfg(test)]
mod tests;
