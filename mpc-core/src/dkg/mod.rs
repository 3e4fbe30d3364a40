//! Distributed key generation: the Pedersen-VSS DKG of Gennaro, Jarecki, Krawczyk, Rabin
//! ("Secure Distributed Key Generation for Discrete-Log Based Cryptosystems", Eurocrypt 1999 /
//! J. Cryptology 2007, protocol DKG; step numbers 1a–4c below are the paper's), as FUSION
//! whitepaper §3.5.2 describes, with the binding
//! CGGMP24 (ePrint 2021/060 rev. 2024-10-21, Fig. 6) relies on: commit-then-reveal of the
//! first-round values, a joint random ρ, session id in every proof, and a final echo.
//!
//! Threshold t = number of parties needed; polynomials have degree t − 1.
//!
//! | round | kind | content | checks by the receivers |
//! |---|---|---|---|
//! | 1 | broadcast | V_i = H(sid, committee, t, i, C_i, rid_i, c_i, u_i) | — |
//! | 2 | broadcast | C_ik = a_ik·G + b_ik·H (t of them), rid_i, c_i, u_i; echo of 1 | V_i opens (else disqualified); exactly t entries (DKG-01, decoder) |
//! | 2 | direct | s_ij = f_i(x_j), s'_ij = f'_i(x_j) | s_ij·G + s'_ij·H = Σ C_ik x_j^k (DKG-02, GJKR 1b) |
//! | 3 | broadcast | dealers accused by the sender; echo of 2 | — |
//! | 4 | broadcast | the accused dealer's answers (s_ij, s'_ij) in public; echo of 3 | answers verify (GJKR 1c, 1d); QUAL fixed (GJKR 2) |
//! | 5 | broadcast | A_ik = a_ik·G, Πsch of a_i0 under (sid, i, ρ); echo of 4 | A_i0 ≠ O (DKG-05), Πsch (DKG-03), s_ij·G = Σ A_ik x_j^k (GJKR 4b) |
//! | 6 | broadcast | H(Y, chain code, X_1..X_m, QUAL); Feldman complaints; echo of 5 | same digest (DKG-06) |
//!
//! ρ = H(sid, QUAL, rid_j : j ∈ QUAL) and the HD chain code = H(sid, QUAL, c_j : j ∈ QUAL) come
//! from values every party committed to in round 1, before it saw anyone else's (DKG-06).
//! The second generator H is [`crate::vss::generator_h`], hash-to-curve output (DKG-07).
//! Party indices are positions in a [`Committee`] whose evaluation points are distinct and
//! non-zero mod q (DKG-04).
//!
//! ## Faults
//! - Before QUAL is fixed (rounds 1–4), a party that sends nothing valid before the deadline,
//!   or whose round-2 reveal does not open its commitment, or that leaves a complaint
//!   unanswered or answers it wrongly, or that draws t or more complaints (GJKR 1d), is
//!   **disqualified**: it deals nothing, is no longer expected in later rounds (its messages
//!   are refused), and the others finish without it. Its public share X_j is still part of
//!   the output. Disqualification ends the run normally, with [`KeyShare::qual`] naming who
//!   dealt; a party disqualified in its own view aborts with [`AbortReason::Excluded`].
//! - From round 5 on, every fault aborts naming the culprit: a missing message, A_i0 = O, a
//!   bad Πsch, Feldman values that do not match a share (the share is public evidence), a
//!   false Feldman complaint, a different result digest, an echo mismatch.
//! - DEVIATION from GJKR step 4c: a QUAL dealer whose Feldman values do not match is blamed
//!   and the run aborts, instead of reconstructing its secret in public. The custody fleet
//!   re-runs the DKG without it; this keeps the protocol to six rounds and the code small.
//! - A joint public key equal to the identity aborts without a culprit (DKG-05).
//!
//! Direct messages carry secret shares in the clear: the transport (mTLS between signers)
//! keeps them confidential.
//!
//! ## Known limits
//! - A disqualified party is still a shareholder in the GJKR sense: X_j is in the output and,
//!   if it was disqualified after round 1, it may hold a valid x_j (it received the shares of
//!   round 2). The fleet keeps blamed and
//!   disqualified parties out of signer sets (checklist OPS-02); [`KeyShare::qual`] and the
//!   abort records say who they are.
//! - Commit-then-reveal fixes every contribution before anyone sees the others, but a party
//!   can still get itself disqualified after seeing the reveals (refuse to answer a
//!   complaint), choosing between two values of ρ and of the chain code: about one bit of
//!   bias per corrupt party, as in every commit-reveal coin toss with aborts. The public key
//!   is not affected (the corrupt dealer's choice is only whether its own term counts, and
//!   honest terms are uniform and hidden by Pedersen commitments until QUAL is fixed).
//! - The last round (6) has no echo of its own. A party that equivocates there can make some
//!   parties finish and others abort; the signer nodes then disagree on whether the key
//!   exists, and the chain records a key only when all m nodes report the same one (DESIGN
//!   §3), so such a run is discarded.
//! - Echo mismatches name the sender of the broadcast in question; only signed envelopes
//!   make that evidence non-repudiable (see [`crate::protocol`]).
//! - Messages of a later round are refused; the network layer holds them until
//!   [`Protocol::current_round`] reaches their round.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::group::Group;
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::protocol::{
    accept, accept_echoed, no_direct, Abort, AbortReason, Closed, Committee, Echo, Evidence,
    Incoming, Lifecycle, Outgoing, PartyIndex, Recipient, Rejected, RoundBased, RoundInbox,
};
use crate::transcript::Transcript;
use crate::vss::{
    evaluate_commitments, feldman_inconsistency, generator_h, interpolate_points,
    lagrange_coefficient, verify_feldman_share, verify_pedersen_share, Polynomial, VssError,
};
use crate::zk::sch::{SchCommitment, SchProof, SchStatement, SchWitness};
use crate::zk::{ProofContext, MAX_SESSION_ID_BYTES, RHO_BYTES};

pub mod msg;

use msg::{
    Answer, FeldmanComplaint, Round1, Round2Reveal, Round2Share, Round3Complaints, Round4Answers,
    Round5Feldman, Round6Confirm, Shape, DIGEST_BYTES,
};

/// Protocol label in every DKG hash.
const PROTOCOL: &[u8] = b"custody/dkg/gjkr99+cggmp24-fig6/v1";

/// Number of rounds.
pub const ROUNDS: u16 = 6;

/// Inputs of one party.
#[derive(Clone, Debug)]
pub struct DkgConfig {
    /// Session id, unique per run (1..=[`MAX_SESSION_ID_BYTES`] bytes).
    pub session_id: Vec<u8>,
    /// The fixed public committee map (DKG-04).
    pub committee: Committee,
    /// Threshold t: any t parties can sign; 1 ≤ t ≤ m.
    pub threshold: u16,
    /// This party.
    pub me: PartyIndex,
}

/// Why a DKG party cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DkgSetupError {
    /// Empty or over-long session id.
    #[error("session id of {0} bytes (allowed 1..={MAX_SESSION_ID_BYTES})")]
    SessionId(usize),
    /// t outside 1..=m.
    #[error("threshold {t} outside 1..={m}")]
    Threshold {
        /// t.
        t: u16,
        /// m.
        m: u16,
    },
    /// `me` is not in the committee.
    #[error("{0} is not in the committee")]
    NotInCommittee(PartyIndex),
    /// The generator H is unavailable (never expected).
    #[error(transparent)]
    Vss(#[from] VssError),
}

/// Why a dealer was disqualified before QUAL was fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disqualification {
    /// Nothing valid in this round before the deadline.
    Missing {
        /// The round.
        round: u16,
    },
    /// The round-2 reveal does not open the round-1 commitment.
    BadDecommitment,
    /// A complaint was not answered (GJKR 1c, 1d).
    UnansweredComplaint {
        /// The complainer.
        complainer: PartyIndex,
    },
    /// An answer does not verify against the Pedersen commitments (GJKR 1d).
    BadAnswer {
        /// The complainer.
        complainer: PartyIndex,
    },
    /// t or more complaints (GJKR 1d, "more than t" for degree t; here the degree is t − 1,
    /// and t answered shares would make the polynomial public).
    TooManyComplaints,
}

/// Output of the DKG: this party's Shamir share and the public data of the key.
pub struct KeyShare {
    session_id: Vec<u8>,
    me: PartyIndex,
    threshold: u16,
    committee: Committee,
    secret_share: Zeroizing<Scalar>,
    public_shares: Vec<ProjectivePoint>,
    public_key: ProjectivePoint,
    chain_code: [u8; DIGEST_BYTES],
    qual: Vec<PartyIndex>,
    /// Refresh epoch: 0 from the DKG, + 1 per [`KeyShare::refresh`].
    epoch: u64,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("me", &self.me)
            .field("threshold", &self.threshold)
            .field("public_key", &self.public_key)
            .field("qual", &self.qual)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Why a refresh could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The zero sharing is for another party, threshold or committee.
    #[error("zero sharing of another party, threshold or committee")]
    Mismatch,
    /// The "zero" sharing's key is not the identity (REF-01).
    #[error("refresh sharing does not share zero")]
    NonZeroSharing,
    /// The refreshed share is not consistent (REF-01: the key must not change).
    #[error("refreshed share is inconsistent: {0}")]
    Invalid(KeyShareError),
    /// The epoch counter would overflow.
    #[error("epoch overflow")]
    Epoch,
}

/// A key share that is not self-consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyShareError {
    /// x_i·G ≠ X_i.
    #[error("secret share does not match the public share")]
    SecretShare,
    /// Some X_j is off the degree t−1 polynomial through the others, or Y ≠ its value at 0.
    #[error("public shares do not lie on one polynomial of degree t-1 through Y")]
    PublicShares,
    /// Y is the identity (DKG-05).
    #[error("public key is the identity")]
    IdentityKey,
    /// Lengths or indices are inconsistent.
    #[error("inconsistent sizes: {0}")]
    Shape(&'static str),
    /// Lagrange interpolation failed.
    #[error(transparent)]
    Vss(#[from] VssError),
}

impl KeyShare {
    /// The session that made this share.
    pub fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    /// The owner's index.
    pub fn me(&self) -> PartyIndex {
        self.me
    }

    /// Threshold t.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The committee map.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    /// x_i, the Shamir share of the secret key.
    ///
    /// **Security warning:** this is the party's key shard; never log or copy it.
    pub fn secret_share(&self) -> &Scalar {
        &self.secret_share
    }

    /// X_j = x_j·G for every party j of the committee (including disqualified ones).
    pub fn public_shares(&self) -> &[ProjectivePoint] {
        &self.public_shares
    }

    /// The joint public key Y.
    pub fn public_key(&self) -> &ProjectivePoint {
        &self.public_key
    }

    /// The BIP32 chain code (32 bytes), from the QUAL parties' committed contributions.
    pub fn chain_code(&self) -> &[u8; DIGEST_BYTES] {
        &self.chain_code
    }

    /// The refresh epoch (0 after the DKG, + 1 per refresh).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Proactive refresh (CGGMP24 Fig. 7, App. F.1.1): adds the output of a zero-sharing run
    /// ([`DkgParty::new_zero_sharing`]) of the same committee and threshold. New share
    /// x_i + z_i, new public shares X_j + Z_j, the same public key and chain code (REF-01: the
    /// zero sharing's key must be the identity, and the result must still interpolate to the
    /// old key), epoch + 1. The old share must be erased by the caller once the new one is
    /// stored (REF-02 is the store's job).
    pub fn refresh(&self, zero: &KeyShare) -> Result<KeyShare, RefreshError> {
        if zero.me != self.me
            || zero.threshold != self.threshold
            || zero.committee != self.committee
        {
            return Err(RefreshError::Mismatch);
        }
        if !bool::from(zero.public_key.is_identity()) {
            return Err(RefreshError::NonZeroSharing);
        }
        let refreshed = KeyShare {
            session_id: zero.session_id.clone(),
            me: self.me,
            threshold: self.threshold,
            committee: self.committee.clone(),
            secret_share: Zeroizing::new(*self.secret_share + *zero.secret_share),
            public_shares: self
                .public_shares
                .iter()
                .zip(&zero.public_shares)
                .map(|(x, z)| x + z)
                .collect(),
            public_key: self.public_key,
            chain_code: self.chain_code,
            qual: self.qual.clone(),
            epoch: self.epoch.checked_add(1).ok_or(RefreshError::Epoch)?,
        };
        refreshed.validate().map_err(RefreshError::Invalid)?;
        Ok(refreshed)
    }

    /// A key share made by resharing ([`crate::reshare`]); validated before it is returned.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        session_id: &[u8],
        me: PartyIndex,
        threshold: u16,
        committee: Committee,
        secret_share: Zeroizing<Scalar>,
        public_shares: Vec<ProjectivePoint>,
        public_key: ProjectivePoint,
        chain_code: [u8; DIGEST_BYTES],
        epoch: u64,
    ) -> Result<Self, KeyShareError> {
        let share = Self {
            session_id: session_id.to_vec(),
            me,
            threshold,
            qual: committee.parties().collect(),
            committee,
            secret_share,
            public_shares,
            public_key,
            chain_code,
            epoch,
        };
        share.validate()?;
        Ok(share)
    }

    /// The same share with `qual` as its QUAL (for a stored share, whose QUAL is the DKG's and
    /// not the whole committee that [`Self::from_parts`] assumes). QUAL must be as the DKG makes
    /// it: strictly increasing committee indices, at least t of them, this party among them.
    pub(crate) fn with_qual(mut self, qual: Vec<PartyIndex>) -> Result<Self, KeyShareError> {
        let well_formed = qual.len() >= usize::from(self.threshold)
            && qual.windows(2).all(|w| w[0] < w[1])
            && qual.iter().all(|j| self.committee.contains(*j))
            && qual.contains(&self.me);
        if !well_formed {
            return Err(KeyShareError::Shape("QUAL"));
        }
        self.qual = qual;
        Ok(self)
    }

    /// QUAL: the dealers whose polynomials make up the key.
    pub fn qual(&self) -> &[PartyIndex] {
        &self.qual
    }

    /// Checks x_i·G = X_i, Y ≠ O, and that all X_j lie on one polynomial of degree t − 1
    /// whose value at 0 is Y, so Σ λ_j X_j = Y for every t-subset (checked in O(m·t) by
    /// interpolating from the first t points).
    pub fn validate(&self) -> Result<(), KeyShareError> {
        let m = usize::from(self.committee.len());
        let t = usize::from(self.threshold);
        if self.public_shares.len() != m || t == 0 || t > m {
            return Err(KeyShareError::Shape(
                "public shares, threshold or committee",
            ));
        }
        let own = self
            .public_shares
            .get(self.me.as_usize())
            .ok_or(KeyShareError::Shape("own index"))?;
        if ProjectivePoint::GENERATOR * *self.secret_share != *own {
            return Err(KeyShareError::SecretShare);
        }
        if bool::from(self.public_key.is_identity()) {
            return Err(KeyShareError::IdentityKey);
        }
        let points = self.committee.points();
        let base = &points[..t];
        let base_values = &self.public_shares[..t];
        if interpolate_points(base, base_values, &Scalar::ZERO)? != self.public_key {
            return Err(KeyShareError::PublicShares);
        }
        for (x_j, cap_x_j) in points.iter().zip(&self.public_shares).skip(t) {
            if interpolate_points(base, base_values, x_j)? != *cap_x_j {
                return Err(KeyShareError::PublicShares);
            }
        }
        Ok(())
    }

    /// The Lagrange coefficient of `j` within the signer set `signers` (App. F.1), for
    /// converting x_j into an additive share of the key.
    pub fn lagrange_in(&self, signers: &[PartyIndex], j: PartyIndex) -> Result<Scalar, VssError> {
        let mut pts = Vec::with_capacity(signers.len());
        let mut pos = None;
        for (k, s) in signers.iter().enumerate() {
            pts.push(*self.committee.point(*s).ok_or(VssError::OutOfRange)?);
            if *s == j {
                pos = Some(k);
            }
        }
        lagrange_coefficient(&pts, pos.ok_or(VssError::OutOfRange)?, &Scalar::ZERO)
    }
}

/// Test-only misbehaviour of a dealer, for the checklist tests (compiled only for tests and
/// the `test-fixtures` feature; an honest build cannot misbehave).
#[cfg(any(test, feature = "test-fixtures"))]
#[derive(Clone, Debug, Default)]
pub struct Misbehaviour {
    /// DKG-01: commit to t + 1 Pedersen values (a polynomial of degree t).
    pub extra_coefficient: bool,
    /// DKG-02: send these parties a share that fails the Pedersen check.
    pub bad_share_to: Vec<PartyIndex>,
    /// DKG-02: answer complaints with a wrong share.
    pub wrong_answers: bool,
    /// DKG-05: deal this constant term (zero, or chosen so that the joint key is O).
    pub constant_term: Option<Scalar>,
    /// GJKR 4b: publish Feldman values that do not match the shares (A_i1 + G).
    pub feldman_mismatch: bool,
    /// Complain about this dealer's Feldman values in round 6 although they are fine.
    pub false_feldman_complaint: Option<PartyIndex>,
    /// DKG-06: echo a different result digest (e.g. another chain code).
    pub wrong_result: bool,
}

#[cfg(any(test, feature = "test-fixtures"))]
type Faults = Misbehaviour;
#[cfg(not(any(test, feature = "test-fixtures")))]
type Faults = ();

/// Values computed once QUAL is fixed.
struct Qualified {
    qual: Vec<PartyIndex>,
    rho: [u8; RHO_BYTES],
    chain_code: [u8; DIGEST_BYTES],
}

/// Values computed after round 5.
struct Computed {
    public_key: ProjectivePoint,
    public_shares: Vec<ProjectivePoint>,
    secret_share: Zeroizing<Scalar>,
    result: [u8; DIGEST_BYTES],
}

/// One DKG party (a sans-IO state machine; see the module docs for the rounds).
pub struct DkgParty {
    cfg: DkgConfig,
    /// A zero-sharing run (refresh): constant terms must be 0.
    zero_sharing: bool,
    shape: Shape,
    h: ProjectivePoint,
    // dealer secrets: f_i (a), f'_i (b), the Πsch commitment α
    a: Polynomial,
    b: Polynomial,
    sch: Option<SchCommitment>,
    pedersen: Vec<ProjectivePoint>,
    rid: [u8; DIGEST_BYTES],
    chain_code: [u8; DIGEST_BYTES],
    nonce: [u8; DIGEST_BYTES],
    life: Lifecycle,
    disqualified: Vec<Option<Disqualification>>,
    r1: RoundInbox<Round1, ()>,
    r2: RoundInbox<Round2Reveal, Round2Share>,
    r3: RoundInbox<Round3Complaints, ()>,
    r4: RoundInbox<Round4Answers, ()>,
    r5: RoundInbox<Round5Feldman, ()>,
    r6: RoundInbox<Round6Confirm, ()>,
    /// (s_ji, s'_ji) accepted from each dealer j.
    shares: Vec<Option<(Zeroizing<Scalar>, Zeroizing<Scalar>)>>,
    qualified: Option<Qualified>,
    computed: Option<Computed>,
    #[cfg(any(test, feature = "test-fixtures"))]
    faults: Misbehaviour,
}

impl fmt::Debug for DkgParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgParty")
            .field("me", &self.cfg.me)
            .field("round", &self.life.round)
            .field("phase", &self.life.phase)
            .field("disqualified", &self.disqualified)
            .finish_non_exhaustive()
    }
}

fn inbox<B, D>(round: u16, me: PartyIndex, m: usize, direct: bool) -> RoundInbox<B, D> {
    RoundInbox::new(round, me, vec![false; m], true, direct)
}

/// V_i = H(sid, committee, t, i, C_i, rid_i, c_i, u_i) (round-1 commitment).
fn commitment_digest(
    cfg: &DkgConfig,
    dealer: PartyIndex,
    pedersen: &[ProjectivePoint],
    rid: &[u8; DIGEST_BYTES],
    chain_code: &[u8; DIGEST_BYTES],
    nonce: &[u8; DIGEST_BYTES],
) -> [u8; DIGEST_BYTES] {
    let mut t = session_transcript(cfg, b"round-1 commitment V_i");
    t.append_u64(b"dealer", u64::from(dealer.get()));
    t.append_point_list(b"C_ik", pedersen);
    t.append_bytes(b"rid_i", rid);
    t.append_bytes(b"c_i", chain_code);
    t.append_bytes(b"u_i", nonce);
    digest(&t)
}

fn session_transcript(cfg: &DkgConfig, what: &'static [u8]) -> Transcript {
    let mut t = Transcript::new(PROTOCOL);
    t.append_bytes(b"what", what);
    t.append_bytes(b"session-id", &cfg.session_id);
    cfg.committee.append_to(&mut t);
    t.append_u64(b"threshold", u64::from(cfg.threshold));
    t
}

fn digest(t: &Transcript) -> [u8; DIGEST_BYTES] {
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(&t.challenge_bytes(b"digest", 0, DIGEST_BYTES));
    out
}

impl DkgParty {
    /// Creates a party and samples all its randomness: f_i, f'_i of t coefficients each,
    /// rid_i, c_i, u_i, and the Πsch commitment.
    pub fn new(cfg: DkgConfig, rng: &mut impl CryptoRngCore) -> Result<Self, DkgSetupError> {
        Self::build(cfg, rng, None)
    }

    /// A party of a **zero-sharing** run, the share part of proactive refresh (CGGMP24 Fig. 7
    /// with the threshold extension of App. F.1.1): every dealer's polynomial has constant term
    /// 0, so the output is a t-of-m sharing of 0 with its public shares Z_j. The run is the
    /// same six rounds with one check turned around: each QUAL dealer's A_i0 must be the
    /// identity (REF-01; its Πsch is not checked, there is no secret to know), and the joint
    /// key must be the identity. [`KeyShare::refresh`] adds the result to a key share.
    pub fn new_zero_sharing(
        cfg: DkgConfig,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, DkgSetupError> {
        let mut party = Self::build(cfg, rng, None)?;
        party.make_zero_sharing(rng);
        Ok(party)
    }

    /// A zero-sharing party that misbehaves as `faults` says (tests only).
    #[cfg(any(test, feature = "test-fixtures"))]
    pub fn zero_sharing_with_misbehaviour(
        cfg: DkgConfig,
        rng: &mut impl CryptoRngCore,
        faults: Misbehaviour,
    ) -> Result<Self, DkgSetupError> {
        let constant = faults.constant_term;
        let mut party = Self::build(cfg, rng, Some(faults))?;
        party.make_zero_sharing(rng);
        if let Some(c) = constant {
            // the cheater deals a non-zero constant after all
            party.a = Polynomial::with_constant(rng, &c, party.shape.t);
            party.pedersen = party.a.pedersen_commitments(&party.b, &party.h);
        }
        Ok(party)
    }

    fn make_zero_sharing(&mut self, rng: &mut impl CryptoRngCore) {
        self.zero_sharing = true;
        let len = self.a.len();
        self.a = Polynomial::with_constant(rng, &Scalar::ZERO, len);
        self.pedersen = self.a.pedersen_commitments(&self.b, &self.h);
    }

    /// A party that misbehaves as `faults` says (tests only).
    #[cfg(any(test, feature = "test-fixtures"))]
    pub fn with_misbehaviour(
        cfg: DkgConfig,
        rng: &mut impl CryptoRngCore,
        faults: Misbehaviour,
    ) -> Result<Self, DkgSetupError> {
        Self::build(cfg, rng, Some(faults))
    }

    #[allow(unused_variables)]
    fn build(
        cfg: DkgConfig,
        rng: &mut impl CryptoRngCore,
        faults: Option<Faults>,
    ) -> Result<Self, DkgSetupError> {
        let m = cfg.committee.len();
        if cfg.session_id.is_empty() || cfg.session_id.len() > MAX_SESSION_ID_BYTES {
            return Err(DkgSetupError::SessionId(cfg.session_id.len()));
        }
        if cfg.threshold == 0 || cfg.threshold > m {
            return Err(DkgSetupError::Threshold {
                t: cfg.threshold,
                m,
            });
        }
        if !cfg.committee.contains(cfg.me) {
            return Err(DkgSetupError::NotInCommittee(cfg.me));
        }
        #[cfg(any(test, feature = "test-fixtures"))]
        let faults = faults.unwrap_or_default();
        let h = generator_h()?;
        let t = usize::from(cfg.threshold);
        #[cfg(any(test, feature = "test-fixtures"))]
        let coeffs = t + usize::from(faults.extra_coefficient);
        #[cfg(not(any(test, feature = "test-fixtures")))]
        let coeffs = t;
        let a = Polynomial::random(rng, coeffs);
        #[cfg(any(test, feature = "test-fixtures"))]
        let a = match faults.constant_term {
            Some(c) => Polynomial::with_constant(rng, &c, coeffs),
            None => a,
        };
        let b = Polynomial::random(rng, coeffs);
        let pedersen = a.pedersen_commitments(&b, &h);
        let mut rid = [0u8; DIGEST_BYTES];
        let mut chain_code = [0u8; DIGEST_BYTES];
        let mut nonce = [0u8; DIGEST_BYTES];
        rng.fill_bytes(&mut rid);
        rng.fill_bytes(&mut chain_code);
        rng.fill_bytes(&mut nonce);
        let sch = Some(SchCommitment::new(rng));
        let me = cfg.me;
        let m = usize::from(m);
        Ok(Self {
            zero_sharing: false,
            shape: Shape { m, t },
            h,
            a,
            b,
            sch,
            pedersen,
            rid,
            chain_code,
            nonce,
            life: Lifecycle::new(),
            disqualified: vec![None; m],
            r1: inbox(1, me, m, false),
            r2: inbox(2, me, m, true),
            r3: inbox(3, me, m, false),
            r4: inbox(4, me, m, false),
            r5: inbox(5, me, m, false),
            r6: inbox(6, me, m, false),
            shares: (0..m).map(|_| None).collect(),
            qualified: None,
            computed: None,
            #[cfg(any(test, feature = "test-fixtures"))]
            faults,
            cfg,
        })
    }

    /// Parties not disqualified so far.
    fn active(&self) -> Vec<bool> {
        self.disqualified.iter().map(Option::is_none).collect()
    }

    /// Dealers disqualified so far, with the reason (all `None` for honest runs).
    pub fn disqualified(&self) -> &[Option<Disqualification>] {
        &self.disqualified
    }

    fn disqualify(&mut self, j: PartyIndex, why: Disqualification) {
        if let Some(slot) = self.disqualified.get_mut(j.as_usize()) {
            if slot.is_none() {
                *slot = Some(why);
            }
        }
    }

    fn point(&self, j: PartyIndex) -> Scalar {
        // j < m for every index this code produces
        self.cfg.committee.point(j).copied().unwrap_or(Scalar::ZERO)
    }

    fn abort(&self, culprits: Vec<PartyIndex>, reason: AbortReason, evidence: Evidence) -> Abort {
        Abort {
            round: self.life.round,
            culprits,
            reason,
            evidence,
        }
    }

    fn broadcast_msg(&self, payload: Vec<u8>) -> Outgoing {
        Outgoing {
            round: self.life.round,
            to: Recipient::All,
            payload,
        }
    }

    /// Moves to `round`, expecting a broadcast from every active party.
    fn enter(&mut self, round: u16, echo: Echo) {
        self.life.enter(round, echo);
        let active = self.active();
        let me = self.cfg.me;
        match round {
            2 => self.r2 = RoundInbox::new(2, me, active, true, true),
            3 => self.r3 = RoundInbox::new(3, me, active, true, false),
            4 => self.r4 = RoundInbox::new(4, me, active, true, false),
            5 => self.r5 = RoundInbox::new(5, me, active, true, false),
            _ => self.r6 = RoundInbox::new(6, me, active, true, false),
        }
    }

    /// Round 1 closes: absent parties are disqualified; send the reveal and the shares.
    fn close_r1(&mut self) -> Result<Closed<KeyShare>, Abort> {
        for j in self.r1.missing() {
            self.disqualify(j, Disqualification::Missing { round: 1 });
        }
        self.life.note_conflicts(&self.r1, true);
        let echo = self.r1.echo(PROTOCOL, &self.cfg.session_id);
        self.enter(2, echo.clone());
        let reveal = Round2Reveal {
            echo,
            pedersen: self.pedersen.clone(),
            rid: self.rid,
            chain_code: self.chain_code,
            nonce: self.nonce,
        };
        let payload = reveal.to_bytes();
        let mut out = vec![self.broadcast_msg(payload.clone())];
        self.r2.insert_own_broadcast(payload, reveal);
        let me = self.cfg.me;
        for j in self.cfg.committee.parties().collect::<Vec<_>>() {
            if j == me || self.disqualified[j.as_usize()].is_some() {
                continue;
            }
            let x = self.point(j);
            #[allow(unused_mut)]
            let mut share = Round2Share {
                s: self.a.evaluate(&x),
                s_prime: self.b.evaluate(&x),
            };
            #[cfg(any(test, feature = "test-fixtures"))]
            if self.faults.bad_share_to.contains(&j) {
                *share.s += Scalar::ONE;
            }
            out.push(Outgoing {
                round: 2,
                to: Recipient::One(j),
                payload: share.to_bytes(),
            });
        }
        let x_me = self.point(me);
        self.shares[me.as_usize()] = Some((self.a.evaluate(&x_me), self.b.evaluate(&x_me)));
        Ok(Closed::Next(out))
    }

    /// Round 2 closes: check decommitments (else disqualify) and shares (else complain).
    fn close_r2(&mut self) -> Result<Closed<KeyShare>, Abort> {
        for j in self.r2.missing_broadcast() {
            self.disqualify(j, Disqualification::Missing { round: 2 });
        }
        self.life.note_conflicts(&self.r2, true);
        let me = self.cfg.me;
        let x_me = self.point(me);
        let mut accused = Vec::new();
        for j in self.cfg.committee.parties().collect::<Vec<_>>() {
            if j == me || self.disqualified[j.as_usize()].is_some() {
                continue;
            }
            let verdict = match (self.r2.broadcast(j), self.r1.broadcast(j)) {
                (Some(reveal), Some(commit)) => {
                    let r = &reveal.value;
                    let v = commitment_digest(
                        &self.cfg,
                        j,
                        &r.pedersen,
                        &r.rid,
                        &r.chain_code,
                        &r.nonce,
                    );
                    if v != commit.value.commitment {
                        Err(Disqualification::BadDecommitment)
                    } else {
                        match self.r2.direct(j) {
                            Some(d)
                                if d.conflict.is_none()
                                    && verify_pedersen_share(
                                        &r.pedersen,
                                        &self.h,
                                        &x_me,
                                        &d.value.s,
                                        &d.value.s_prime,
                                    ) =>
                            {
                                Ok(Some((d.value.s.clone(), d.value.s_prime.clone())))
                            }
                            _ => Ok(None),
                        }
                    }
                }
                _ => Err(Disqualification::Missing { round: 2 }),
            };
            match verdict {
                Err(why) => self.disqualify(j, why),
                Ok(Some(share)) => self.shares[j.as_usize()] = Some(share),
                Ok(None) => accused.push(j),
            }
        }
        let echo = self.r2.echo(PROTOCOL, &self.cfg.session_id);
        self.enter(3, echo.clone());
        let msg = Round3Complaints { echo, accused };
        let payload = msg.to_bytes();
        let out = vec![self.broadcast_msg(payload.clone())];
        self.r3.insert_own_broadcast(payload, msg);
        Ok(Closed::Next(out))
    }

    /// Parties whose round-3 message accuses `dealer`.
    fn complainers(&self, dealer: PartyIndex) -> Vec<PartyIndex> {
        self.cfg
            .committee
            .parties()
            .filter(|k| {
                *k != dealer
                    && self
                        .r3
                        .broadcast(*k)
                        .is_some_and(|c| c.value.accused.contains(&dealer))
            })
            .collect()
    }

    /// Round 3 closes: answer the complaints against us in public.
    fn close_r3(&mut self) -> Result<Closed<KeyShare>, Abort> {
        for j in self.r3.missing() {
            self.disqualify(j, Disqualification::Missing { round: 3 });
        }
        self.life.note_conflicts(&self.r3, true);
        let mut answers = Vec::new();
        for k in self.complainers(self.cfg.me) {
            let x = self.point(k);
            #[allow(unused_mut)]
            let mut s = *self.a.evaluate(&x);
            #[cfg(any(test, feature = "test-fixtures"))]
            if self.faults.wrong_answers {
                s += Scalar::ONE;
            }
            answers.push(Answer {
                complainer: k,
                s,
                s_prime: *self.b.evaluate(&x),
            });
        }
        let echo = self.r3.echo(PROTOCOL, &self.cfg.session_id);
        self.enter(4, echo.clone());
        let msg = Round4Answers { echo, answers };
        let payload = msg.to_bytes();
        let out = vec![self.broadcast_msg(payload.clone())];
        self.r4.insert_own_broadcast(payload, msg);
        Ok(Closed::Next(out))
    }

    /// Round 4 closes. If we abort here (too few qualified, or excluded ourselves) we still
    /// send a round-5 message carrying the echo of round 4 (and no valid proof), so a party
    /// whose view of round 4 differs names the equivocator instead of waiting for us.
    fn close_r4(&mut self) -> Result<Closed<KeyShare>, Abort> {
        match self.finish_r4() {
            Ok(closed) => Ok(closed),
            Err(abort) => {
                let echo = self.r4.echo(PROTOCOL, &self.cfg.session_id);
                let mut feldman = self.a.feldman_commitments();
                feldman.resize(self.shape.t, ProjectivePoint::IDENTITY);
                self.enter(5, echo.clone());
                let msg = Round5Feldman {
                    echo,
                    feldman,
                    proof: SchProof {
                        a: ProjectivePoint::IDENTITY,
                        z: Scalar::ZERO,
                    },
                };
                self.life.pending.push(abort);
                Ok(Closed::Next(vec![self.broadcast_msg(msg.to_bytes())]))
            }
        }
    }

    /// Judges the answers, fixes QUAL, derives ρ and the chain code, sends the Feldman values
    /// with Πsch.
    fn finish_r4(&mut self) -> Result<Closed<KeyShare>, Abort> {
        for j in self.r4.missing() {
            self.disqualify(j, Disqualification::Missing { round: 4 });
        }
        self.life.note_conflicts(&self.r4, true);
        let me = self.cfg.me;
        let t = usize::from(self.cfg.threshold);
        for d in self.cfg.committee.parties().collect::<Vec<_>>() {
            if self.disqualified[d.as_usize()].is_some() {
                continue;
            }
            let complainers = self.complainers(d);
            if complainers.is_empty() {
                continue;
            }
            if complainers.len() >= t {
                self.disqualify(d, Disqualification::TooManyComplaints);
                continue;
            }
            let (Some(answers), Some(reveal)) = (self.r4.broadcast(d), self.r2.broadcast(d)) else {
                self.disqualify(d, Disqualification::Missing { round: 4 });
                continue;
            };
            let mut verdict = None;
            let mut adopted = None;
            for k in complainers {
                let Some(ans) = answers.value.answers.iter().find(|a| a.complainer == k) else {
                    verdict = Some(Disqualification::UnansweredComplaint { complainer: k });
                    break;
                };
                let x_k = self.point(k);
                if !verify_pedersen_share(
                    &reveal.value.pedersen,
                    &self.h,
                    &x_k,
                    &ans.s,
                    &ans.s_prime,
                ) {
                    verdict = Some(Disqualification::BadAnswer { complainer: k });
                    break;
                }
                if k == me {
                    adopted = Some((Zeroizing::new(ans.s), Zeroizing::new(ans.s_prime)));
                }
            }
            match verdict {
                Some(why) => self.disqualify(d, why),
                None => {
                    if let Some(share) = adopted {
                        self.shares[d.as_usize()] = Some(share);
                    }
                }
            }
        }
        if self.disqualified[me.as_usize()].is_some() {
            return Err(self.abort(vec![me], AbortReason::Excluded, Evidence::None));
        }
        let qual: Vec<PartyIndex> = self
            .cfg
            .committee
            .parties()
            .filter(|j| self.disqualified[j.as_usize()].is_none())
            .collect();
        if qual.len() < t {
            let culprits = self
                .cfg
                .committee
                .parties()
                .filter(|j| self.disqualified[j.as_usize()].is_some())
                .collect();
            return Err(self.abort(culprits, AbortReason::TooFewQualified, Evidence::None));
        }
        let mut rho_t = session_transcript(&self.cfg, b"joint randomness rho");
        let mut cc_t = session_transcript(&self.cfg, b"HD chain code");
        for j in &qual {
            let Some(reveal) = self.r2.broadcast(*j) else {
                return Err(self.abort(
                    vec![*j],
                    AbortReason::Bug("QUAL member without reveal"),
                    Evidence::None,
                ));
            };
            rho_t.append_u64(b"j", u64::from(j.get()));
            rho_t.append_bytes(b"rid_j", &reveal.value.rid);
            cc_t.append_u64(b"j", u64::from(j.get()));
            cc_t.append_bytes(b"c_j", &reveal.value.chain_code);
        }
        let rho = digest(&rho_t);
        let chain_code = digest(&cc_t);

        #[allow(unused_mut)]
        let mut feldman = self.a.feldman_commitments();
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.feldman_mismatch {
            if let Some(a1) = feldman.get_mut(1) {
                *a1 += ProjectivePoint::GENERATOR;
            }
        }
        let a0 = self.a.constant_term();
        let cap_a0 = feldman
            .first()
            .copied()
            .unwrap_or(ProjectivePoint::IDENTITY);
        let ctx = ProofContext {
            session_id: &self.cfg.session_id,
            prover: me.get(),
            rho: &rho,
        };
        let Some(commitment) = self.sch.take() else {
            return Err(self.abort(
                vec![me],
                AbortReason::Bug("Πsch commitment used twice"),
                Evidence::None,
            ));
        };
        let proof = SchProof::prove_with(
            commitment,
            &ctx,
            &SchStatement { x: &cap_a0 },
            &SchWitness { x: &a0 },
        )
        .map_err(|_| self.abort(vec![me], AbortReason::Bug("Πsch witness"), Evidence::None))?;
        self.qualified = Some(Qualified {
            qual,
            rho,
            chain_code,
        });
        let echo = self.r4.echo(PROTOCOL, &self.cfg.session_id);
        self.enter(5, echo.clone());
        let msg = Round5Feldman {
            echo,
            feldman,
            proof,
        };
        let payload = msg.to_bytes();
        let out = vec![self.broadcast_msg(payload.clone())];
        self.r5.insert_own_broadcast(payload, msg);
        Ok(Closed::Next(out))
    }

    fn payload_evidence<B>(
        inbox_msg: Option<&crate::protocol::Received<B>>,
        from: PartyIndex,
        round: u16,
    ) -> Evidence {
        match inbox_msg {
            Some(r) => Evidence::Payload {
                from,
                round,
                bytes: r.payload.to_vec(),
            },
            None => Evidence::None,
        }
    }

    /// Round 5 closes. If a check fails we still send a round-6 message (no result, but the
    /// echo of round 5) before aborting, so that a party that saw a different round 5 learns
    /// from the echo who equivocated instead of waiting for us and blaming us.
    fn close_r5(&mut self) -> Result<Closed<KeyShare>, Abort> {
        match self.finish_r5() {
            Ok(closed) => Ok(closed),
            Err(abort) => {
                let echo = self.r5.echo(PROTOCOL, &self.cfg.session_id);
                self.enter(6, echo.clone());
                let msg = Round6Confirm {
                    echo,
                    result: [0u8; DIGEST_BYTES],
                    complaints: Vec::new(),
                };
                self.life.pending.push(abort);
                Ok(Closed::Next(vec![self.broadcast_msg(msg.to_bytes())]))
            }
        }
    }

    /// Public checks of every QUAL dealer (A_i0 ≠ O, Πsch, answered shares against Feldman),
    /// our own shares against Feldman, then Y, X_j and the result digest.
    fn finish_r5(&mut self) -> Result<Closed<KeyShare>, Abort> {
        let missing = self.r5.missing();
        if !missing.is_empty() {
            return Err(self.abort(missing, AbortReason::MissingMessage, Evidence::None));
        }
        self.life.note_conflicts(&self.r5, true);
        let Some(q) = self.qualified.as_ref() else {
            return Err(self.abort(
                vec![],
                AbortReason::Bug("round 5 without QUAL"),
                Evidence::None,
            ));
        };
        let me = self.cfg.me;
        let x_me = self.point(me);
        let mut public_key = ProjectivePoint::IDENTITY;
        let mut public_shares = vec![ProjectivePoint::IDENTITY; self.shape.m];
        let mut secret_share = Zeroizing::new(Scalar::ZERO);
        let mut complaints = Vec::new();
        for &d in &q.qual {
            let Some(r5) = self.r5.broadcast(d) else {
                return Err(self.abort(vec![d], AbortReason::MissingMessage, Evidence::None));
            };
            let evidence = || Self::payload_evidence(Some(r5), d, 5);
            let feldman = &r5.value.feldman;
            let cap_a0 = feldman
                .first()
                .copied()
                .unwrap_or(ProjectivePoint::IDENTITY);
            if self.zero_sharing {
                // REF-01: a refresh dealer's constant term is 0, and there is nothing to prove
                if !bool::from(cap_a0.is_identity()) {
                    return Err(self.abort(vec![d], AbortReason::NonZeroRefresh, evidence()));
                }
            } else if bool::from(cap_a0.is_identity()) {
                // DKG-05: an individual zero secret is refused before anything else.
                return Err(self.abort(vec![d], AbortReason::ZeroSecret, evidence()));
            }
            // DKG-03: Πsch bound to (session id, dealer, ρ of this session).
            let ctx = ProofContext {
                session_id: &self.cfg.session_id,
                prover: d.get(),
                rho: &q.rho,
            };
            if !self.zero_sharing
                && r5
                    .value
                    .proof
                    .verify(&ctx, &SchStatement { x: &cap_a0 })
                    .is_err()
            {
                return Err(self.abort(vec![d], AbortReason::InvalidSchnorrProof, evidence()));
            }
            // Shares answered in public in round 4 must match the Feldman values too.
            if let Some(r4) = self.r4.broadcast(d) {
                for ans in &r4.value.answers {
                    let x_k = self.point(ans.complainer);
                    if !verify_feldman_share(feldman, &x_k, &ans.s) {
                        return Err(self.abort(
                            vec![d],
                            AbortReason::FeldmanMismatch,
                            Self::payload_evidence(Some(r4), d, 4),
                        ));
                    }
                }
            }
            let Some((s, s_prime)) = self.shares[d.as_usize()].as_ref() else {
                return Err(self.abort(
                    vec![d],
                    AbortReason::Bug("QUAL dealer without a share"),
                    Evidence::None,
                ));
            };
            if !verify_feldman_share(feldman, &x_me, s) {
                complaints.push(FeldmanComplaint {
                    dealer: d,
                    s: **s,
                    s_prime: **s_prime,
                });
            }
            *secret_share += **s;
            public_key += cap_a0;
            for (j, x_j) in self.cfg.committee.points().iter().enumerate() {
                public_shares[j] += evaluate_commitments(feldman, x_j);
            }
        }
        #[cfg(any(test, feature = "test-fixtures"))]
        if let Some(d) = self.faults.false_feldman_complaint {
            if let Some((s, s_prime)) = self.shares.get(d.as_usize()).and_then(Option::as_ref) {
                complaints.push(FeldmanComplaint {
                    dealer: d,
                    s: **s,
                    s_prime: **s_prime,
                });
            }
        }
        // DKG-05: the joint key (REF-01: in a zero-sharing run it is the identity by the
        // per-dealer check above).
        if !self.zero_sharing && bool::from(public_key.is_identity()) {
            return Err(self.abort(vec![], AbortReason::JointKeyIdentity, Evidence::None));
        }
        if complaints.is_empty()
            && ProjectivePoint::GENERATOR * *secret_share != public_shares[me.as_usize()]
        {
            return Err(self.abort(
                vec![me],
                AbortReason::Bug("x_i·G ≠ X_i after Feldman checks"),
                Evidence::None,
            ));
        }
        let mut t = session_transcript(&self.cfg, b"result echo");
        t.append_u64(b"qual-size", q.qual.len() as u64);
        for j in &q.qual {
            t.append_u64(b"qual", u64::from(j.get()));
        }
        t.append_point(b"Y", &public_key);
        t.append_bytes(b"chain-code", &q.chain_code);
        t.append_point_list(b"X_j", &public_shares);
        #[allow(unused_mut)]
        let mut result = digest(&t);
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.wrong_result {
            result[0] ^= 1;
        }
        self.computed = Some(Computed {
            public_key,
            public_shares,
            secret_share,
            result,
        });
        let echo = self.r5.echo(PROTOCOL, &self.cfg.session_id);
        self.enter(6, echo.clone());
        complaints.sort_by_key(|c| c.dealer);
        let blamed: Vec<PartyIndex> = complaints.iter().map(|c| c.dealer).collect();
        let msg = Round6Confirm {
            echo,
            result,
            complaints,
        };
        let payload = msg.to_bytes();
        let out = vec![self.broadcast_msg(payload.clone())];
        if !blamed.is_empty() {
            self.life.pending.push(self.abort(
                blamed,
                AbortReason::FeldmanMismatch,
                Evidence::Payload {
                    from: me,
                    round: 6,
                    bytes: payload.clone(),
                },
            ));
        }
        self.r6.insert_own_broadcast(payload, msg);
        Ok(Closed::Next(out))
    }

    /// Round 6 closes: judge Feldman complaints, compare result digests, output.
    fn close_r6(&mut self) -> Result<Closed<KeyShare>, Abort> {
        let missing = self.r6.missing();
        if !missing.is_empty() {
            return Err(self.abort(missing, AbortReason::MissingMessage, Evidence::None));
        }
        // last round: nobody echoes it, so equivocation aborts now
        self.life.note_conflicts(&self.r6, true);
        if let Some(a) = self.life.take_pending() {
            return Err(a);
        }
        let (Some(q), Some(c)) = (self.qualified.as_ref(), self.computed.as_ref()) else {
            return Err(self.abort(
                vec![],
                AbortReason::Bug("round 6 without result"),
                Evidence::None,
            ));
        };
        let me = self.cfg.me;
        for &k in &q.qual {
            if k == me {
                continue;
            }
            let Some(r6) = self.r6.broadcast(k) else {
                return Err(self.abort(vec![k], AbortReason::MissingMessage, Evidence::None));
            };
            let evidence = || Self::payload_evidence(Some(r6), k, 6);
            if !r6.value.complaints.is_empty() {
                // GJKR 4b: a complaint holds if the share opens the Pedersen commitments but
                // not the Feldman values. One false complaint blames the complainer;
                // otherwise every dealer complained about is blamed.
                let x_k = self.point(k);
                let holds = |comp: &FeldmanComplaint| {
                    let d = comp.dealer;
                    d != k
                        && q.qual.contains(&d)
                        && match (self.r2.broadcast(d), self.r5.broadcast(d)) {
                            (Some(r2), Some(r5)) => feldman_inconsistency(
                                &r2.value.pedersen,
                                &r5.value.feldman,
                                &self.h,
                                &x_k,
                                &comp.s,
                                &comp.s_prime,
                            ),
                            _ => false,
                        }
                };
                return Err(if r6.value.complaints.iter().all(holds) {
                    let dealers = r6.value.complaints.iter().map(|c| c.dealer).collect();
                    self.abort(dealers, AbortReason::FeldmanMismatch, evidence())
                } else {
                    self.abort(vec![k], AbortReason::FalseComplaint, evidence())
                });
            }
            // DKG-06: everyone must have the same (Y, chain code, X_j, QUAL).
            if r6.value.result != c.result {
                return Err(self.abort(vec![k], AbortReason::ResultMismatch, evidence()));
            }
        }
        let Some(c) = self.computed.take() else {
            return Err(self.abort(
                vec![],
                AbortReason::Bug("round 6 without result"),
                Evidence::None,
            ));
        };
        let Some(q) = self.qualified.as_ref() else {
            return Err(self.abort(
                vec![],
                AbortReason::Bug("round 6 without QUAL"),
                Evidence::None,
            ));
        };
        Ok(Closed::Done(KeyShare {
            session_id: self.cfg.session_id.clone(),
            me,
            threshold: self.cfg.threshold,
            committee: self.cfg.committee.clone(),
            secret_share: c.secret_share,
            public_shares: c.public_shares,
            public_key: c.public_key,
            chain_code: q.chain_code,
            qual: q.qual.clone(),
            epoch: 0,
        }))
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
                |b| Round1::from_bytes(b, &shape),
                no_direct,
            )
            .map(|_| ()),
            2 => accept_echoed(
                &mut self.life,
                &mut self.r2,
                msg,
                max_b,
                max_d,
                |b| Round2Reveal::from_bytes(b, &shape),
                |b| Round2Share::from_bytes(b, &shape),
                |v| &v.echo,
            ),
            3 => accept_echoed(
                &mut self.life,
                &mut self.r3,
                msg,
                max_b,
                max_d,
                |b| Round3Complaints::from_bytes(b, &shape),
                no_direct,
                |v| &v.echo,
            ),
            4 => accept_echoed(
                &mut self.life,
                &mut self.r4,
                msg,
                max_b,
                max_d,
                |b| Round4Answers::from_bytes(b, &shape),
                no_direct,
                |v| &v.echo,
            ),
            5 => accept_echoed(
                &mut self.life,
                &mut self.r5,
                msg,
                max_b,
                max_d,
                |b| Round5Feldman::from_bytes(b, &shape),
                no_direct,
                |v| &v.echo,
            ),
            _ => accept_echoed(
                &mut self.life,
                &mut self.r6,
                msg,
                max_b,
                max_d,
                |b| Round6Confirm::from_bytes(b, &shape),
                no_direct,
                |v| &v.echo,
            ),
        }
    }
}

impl RoundBased for DkgParty {
    type Output = KeyShare;

    fn index(&self) -> PartyIndex {
        self.cfg.me
    }

    fn life(&self) -> &Lifecycle {
        &self.life
    }

    fn lifecycle(&mut self) -> &mut Lifecycle {
        &mut self.life
    }

    /// Round 1: the commitment V_i.
    fn first_round(&mut self, _rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        self.r1 = RoundInbox::new(1, self.cfg.me, vec![true; self.shape.m], true, false);
        let commitment = commitment_digest(
            &self.cfg,
            self.cfg.me,
            &self.pedersen,
            &self.rid,
            &self.chain_code,
            &self.nonce,
        );
        let msg = Round1 { commitment };
        let payload = msg.to_bytes();
        self.r1.insert_own_broadcast(payload.clone(), msg);
        Ok(vec![self.broadcast_msg_round(1, payload)])
    }

    fn receive_message(&mut self, msg: &Incoming) -> Result<(), Rejected> {
        self.receive(msg)
    }

    fn round_complete(&self) -> bool {
        match self.life.round {
            1 => self.r1.is_complete(),
            2 => self.r2.is_complete(),
            3 => self.r3.is_complete(),
            4 => self.r4.is_complete(),
            5 => self.r5.is_complete(),
            _ => self.r6.is_complete(),
        }
    }

    fn close_round(&mut self, _rng: &mut dyn CryptoRngCore) -> Result<Closed<KeyShare>, Abort> {
        match self.life.round {
            1 => self.close_r1(),
            2 => self.close_r2(),
            3 => self.close_r3(),
            4 => self.close_r4(),
            5 => self.close_r5(),
            _ => self.close_r6(),
        }
    }
}

impl DkgParty {
    fn broadcast_msg_round(&self, round: u16, payload: Vec<u8>) -> Outgoing {
        Outgoing {
            round,
            to: Recipient::All,
            payload,
        }
    }
}

#[cfg(test)]
mod tests;
