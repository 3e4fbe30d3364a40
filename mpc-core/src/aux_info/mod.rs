//! Auxiliary information (CGGMP24 = ePrint 2021/060 rev. 2024-10-21, Fig. 7, the aux-info part;
//! in the structure of the DFNS specification's "provisioning protocol"): every party gets a
//! Paillier-Blum modulus N_i and ring-Pedersen parameters (N̂_i, s_i, t_i), proven with Πprm
//! (Fig. 13), Πmod (Fig. 12) and, to every peer against that peer's own ring-Pedersen
//! parameters, Πfac (Fig. 26). Safe primes come from the caller (a pool: generating four
//! 1536-bit safe primes takes seconds and must not happen on a request path, OPS-03).
//!
//! | round | kind | content | checks by the receivers |
//! |---|---|---|---|
//! | 1 | broadcast | V_i = H(sid, committee, i, N_i, N̂_i, s_i, t_i, ψ̂_i, rid_i, u_i) | — |
//! | 2 | broadcast | (N_i, N̂_i, s_i, t_i, ψ̂_i = Πprm, rid_i, u_i); echo of 1 | V_i opens (AUX-05); N_i, N̂_i ≥ 3072 bits, odd, s_i, t_i non-trivial units, N̂_i ≠ N_i (PARAM-01, PARAM-02, AUX-04) before Πprm (AUX-03) |
//! | 3 | broadcast | ψ_i = Πmod under ρ; echo of 2 | Πmod (AUX-01, AUX-06) |
//! | 3 | direct | ψ'_{i,j} = Πfac under ρ against (N̂_j, s_j, t_j) | Πfac with the receiver's own parameters (AUX-02, AUX-06) |
//! | 4 | broadcast | H(sid, ρ, every N_j, N̂_j, s_j, t_j); echo of 3 | same digest |
//!
//! ρ = H(sid, committee, rid_1, …, rid_m) comes from values every party committed to in round 1
//! before seeing anyone else's, so no party can choose the challenges of the Πmod and Πfac
//! proofs made under it. Πprm is made before ρ exists and is bound to (sid, i) (ρ = 0).
//!
//! Every fault aborts naming the culprit(s): a missing message at the deadline, a reveal that
//! does not open its commitment, refused parameters, a proof that does not verify, a different
//! result digest, equivocation or an echo mismatch ([`crate::protocol`]). Aux info cannot go on
//! without a party, unlike the DKG's disqualification: every signer needs every peer's keys.
//! Round 4 is not in Fig. 7; it makes the end agreed (an equivocated Πmod would otherwise let
//! some honest parties finish while others abort).
//!
//! Speed: the output carries, for each peer, fixed-base tables of its ring-Pedersen
//! parameters (used when proving to it) and, for this party, owner (CRT) views of its own keys
//! (used when verifying proofs made for it); see [`crate::ring_pedersen`] and
//! [`crate::paillier`].

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use num_bigint::BigUint;
use rand_core::CryptoRngCore;

use crate::arith::SecretUint;
use crate::paillier::{PaillierError, PaillierPublicKey, PaillierSecretKey};
use crate::protocol::{
    accept, accept_echoed, no_direct, Abort, AbortReason, Closed, Committee, Echo, Evidence,
    Incoming, Lifecycle, Outgoing, PartyIndex, Recipient, Rejected, RoundBased, RoundInbox,
};
use crate::ring_pedersen::{RingPedersenError, RingPedersenParams, RingPedersenSecret};
use crate::transcript::Transcript;
use crate::zk::fac::{FacProof, FacStatement, FacWitness};
use crate::zk::pi_mod::{ModProof, ModStatement, ModWitness};
use crate::zk::prm::{PrmProof, PrmStatement, PrmWitness};
use crate::zk::{ProofContext, ProofError, MAX_SESSION_ID_BYTES, RHO_BYTES};

pub mod msg;

use msg::{max_len, Round1, Round2, Round3Fac, Round3Mod, Round4, DIGEST_BYTES};

/// Protocol label in every aux-info hash.
const PROTOCOL: &[u8] = b"custody/aux-info/cggmp24-fig7/v1";

/// Number of rounds.
pub const ROUNDS: u16 = 4;

/// ρ before it exists (Πprm is made in round 1, bound to the session and the prover only).
const NO_RHO: [u8; RHO_BYTES] = [0u8; RHO_BYTES];

/// The four safe primes of one party: p, q for the Paillier-Blum modulus N = p·q and p̂, q̂
/// for the ring-Pedersen modulus N̂ = p̂·q̂. Wiped on drop.
pub struct AuxPrimes {
    paillier: [SecretUint; 2],
    ring_pedersen: [SecretUint; 2],
}

impl fmt::Debug for AuxPrimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuxPrimes(<redacted>)")
    }
}

impl AuxPrimes {
    /// Four safe primes (from the caller's pool; primality is the caller's guarantee, the
    /// shape is checked when the keys are built).
    pub fn new(p: BigUint, q: BigUint, p_hat: BigUint, q_hat: BigUint) -> Self {
        Self {
            paillier: [SecretUint::new(p), SecretUint::new(q)],
            ring_pedersen: [SecretUint::new(p_hat), SecretUint::new(q_hat)],
        }
    }
}

/// Inputs of one party.
#[derive(Clone, Debug)]
pub struct AuxConfig {
    /// Session id, unique per execution (at most [`MAX_SESSION_ID_BYTES`]).
    pub session_id: Vec<u8>,
    /// The committee (only its size and order matter here).
    pub committee: Committee,
    /// This party.
    pub me: PartyIndex,
}

/// Why a party could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuxSetupError {
    /// Session id empty or longer than [`MAX_SESSION_ID_BYTES`].
    #[error("session id of {0} bytes (1..={MAX_SESSION_ID_BYTES} required)")]
    SessionId(usize),
    /// Fewer than two parties.
    #[error("aux info needs at least two parties, got {0}")]
    TooFewParties(u16),
    /// `me` is not in the committee.
    #[error("party {0} is not in the committee")]
    NotInCommittee(PartyIndex),
    /// The Paillier primes do not make a Paillier-Blum key.
    #[error("Paillier primes refused: {0}")]
    Paillier(#[from] PaillierError),
    /// The ring-Pedersen primes do not make parameters, or equal the Paillier ones.
    #[error("ring-Pedersen primes refused: {0}")]
    RingPedersen(#[from] RingPedersenError),
    /// Proving Πprm failed (a bug or inconsistent primes).
    #[error("Πprm could not be proven: {0}")]
    Proof(#[from] ProofError),
}

/// One party's public aux data as everyone else holds it.
#[derive(Clone, Debug)]
pub struct PartyAux {
    /// N_j (public key; a peer's carries fixed-base tables for fresh encryption randomness).
    pub paillier: PaillierPublicKey,
    /// (N̂_j, s_j, t_j); for a peer with fixed-base tables, for oneself the owner's CRT view.
    pub ring_pedersen: RingPedersenParams,
}

/// The output: own secrets, everyone's public parameters, ρ.
pub struct AuxInfo {
    session_id: Vec<u8>,
    me: PartyIndex,
    rho: [u8; RHO_BYTES],
    paillier: PaillierSecretKey,
    ring_pedersen: RingPedersenSecret,
    own_paillier_view: PaillierPublicKey,
    parties: Vec<PartyAux>,
}

impl fmt::Debug for AuxInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuxInfo")
            .field("me", &self.me)
            .field("parties", &self.parties.len())
            .finish_non_exhaustive()
    }
}

impl AuxInfo {
    /// The session that made it.
    pub fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    /// This party.
    pub fn me(&self) -> PartyIndex {
        self.me
    }

    /// Number of parties.
    pub fn parties(&self) -> usize {
        self.parties.len()
    }

    /// The joint randomness ρ of the session.
    pub fn rho(&self) -> &[u8; RHO_BYTES] {
        &self.rho
    }

    /// This party's Paillier secret key.
    pub fn paillier_secret(&self) -> &PaillierSecretKey {
        &self.paillier
    }

    /// This party's ring-Pedersen secret.
    pub fn ring_pedersen_secret(&self) -> &RingPedersenSecret {
        &self.ring_pedersen
    }

    /// This party's Paillier key as an owner (CRT) view, for verifying proofs made for it.
    pub fn own_paillier_view(&self) -> &PaillierPublicKey {
        &self.own_paillier_view
    }

    /// Party j's public aux data (`None` for an index outside the committee).
    pub fn party(&self, j: PartyIndex) -> Option<&PartyAux> {
        self.parties.get(j.as_usize())
    }
}

impl AuxInfo {
    /// Aux info from its stored parts ([`crate::store`]). `parties` must be as the protocol
    /// outputs them: peers' ring-Pedersen parameters with fixed-base tables, this party's with
    /// the owner's CRT ([`RingPedersenSecret::owner_params`]); the owner view of the Paillier key
    /// is rebuilt here.
    pub(crate) fn from_parts(
        session_id: Vec<u8>,
        me: PartyIndex,
        rho: [u8; RHO_BYTES],
        paillier: PaillierSecretKey,
        ring_pedersen: RingPedersenSecret,
        parties: Vec<PartyAux>,
    ) -> Self {
        Self {
            session_id,
            me,
            rho,
            own_paillier_view: paillier.owner_public_key(),
            paillier,
            ring_pedersen,
            parties,
        }
    }
}

/// One aux-info party (a sans-IO state machine; see the module docs for the rounds).
pub struct AuxInfoParty {
    cfg: AuxConfig,
    m: usize,
    life: Lifecycle,
    paillier: Option<PaillierSecretKey>,
    ring_pedersen: Option<(RingPedersenParams, RingPedersenSecret)>,
    /// Our round-2 reveal (its echo is filled in when round 1 closes).
    reveal: Round2,
    r1: RoundInbox<Round1, ()>,
    r2: RoundInbox<Round2, ()>,
    r3: RoundInbox<Round3Mod, Round3Fac>,
    r4: RoundInbox<Round4, ()>,
    /// Peers' public data, accepted when round 2 closes.
    accepted: Vec<Option<PartyAux>>,
    rho: [u8; RHO_BYTES],
    result: [u8; DIGEST_BYTES],
    #[cfg(any(test, feature = "test-fixtures"))]
    faults: Misbehaviour,
}

impl fmt::Debug for AuxInfoParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuxInfoParty")
            .field("me", &self.cfg.me)
            .field("round", &self.life.round)
            .field("phase", &self.life.phase)
            .finish_non_exhaustive()
    }
}

/// Ways a test party misbehaves (tests and fuzzing only).
#[cfg(any(test, feature = "test-fixtures"))]
#[derive(Clone, Debug, Default)]
pub struct Misbehaviour {
    /// Reveal a rid_i other than the committed one (AUX-05).
    pub wrong_reveal: bool,
    /// Use the Paillier modulus as the ring-Pedersen modulus as well (PARAM-02); needs
    /// ring-Pedersen primes equal to the Paillier ones, which setup refuses, so the party
    /// substitutes N for N̂ in its reveal (and its Πprm is then for other parameters).
    pub n_hat_equals_n: bool,
    /// Prove Πmod under ρ = 0 instead of the session's ρ (AUX-06).
    pub stale_rho_in_mod: bool,
    /// Send Πfac proven against the party's own ring-Pedersen parameters instead of the
    /// recipient's (AUX-02).
    pub fac_for_wrong_params: bool,
    /// Send a different result digest in round 4.
    pub wrong_result: bool,
}

#[cfg(any(test, feature = "test-fixtures"))]
type Faults = Misbehaviour;
#[cfg(not(any(test, feature = "test-fixtures")))]
type Faults = ();

fn session_transcript(cfg: &AuxConfig, what: &'static [u8]) -> Transcript {
    let mut t = Transcript::new(PROTOCOL);
    t.append_bytes(b"what", what);
    t.append_bytes(b"session-id", &cfg.session_id);
    cfg.committee.append_to(&mut t);
    t
}

fn digest(t: &Transcript) -> [u8; DIGEST_BYTES] {
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(&t.challenge_bytes(b"digest", 0, DIGEST_BYTES));
    out
}

/// V_i = H(sid, committee, i, N_i, N̂_i, s_i, t_i, ψ̂_i, rid_i, u_i).
fn commitment_digest(cfg: &AuxConfig, i: PartyIndex, r: &Round2) -> [u8; DIGEST_BYTES] {
    let mut t = session_transcript(cfg, b"round-1 commitment V_i");
    t.append_u64(b"party", u64::from(i.get()));
    t.append_uint(b"N_i", &r.n);
    t.append_uint(b"N-hat_i", &r.n_hat);
    t.append_uint(b"s_i", &r.s);
    t.append_uint(b"t_i", &r.t);
    t.append_bytes(b"psi-hat_i", &r.prm);
    t.append_bytes(b"rid_i", &r.rid);
    t.append_bytes(b"u_i", &r.nonce);
    digest(&t)
}

fn proof_abort(round: u16, j: PartyIndex, e: &ProofError, bytes: Vec<u8>) -> Abort {
    Abort {
        round,
        culprits: vec![j],
        reason: AbortReason::InvalidProof {
            proof: e.proof,
            check: e.check,
        },
        evidence: Evidence::Payload {
            from: j,
            round,
            bytes,
        },
    }
}

impl AuxInfoParty {
    /// Creates a party: builds its Paillier-Blum key and ring-Pedersen parameters from the
    /// primes, proves Πprm, samples rid_i and u_i.
    pub fn new(
        cfg: AuxConfig,
        primes: AuxPrimes,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, AuxSetupError> {
        Self::build(cfg, primes, rng, None)
    }

    /// A party that misbehaves as `faults` says (tests only).
    #[cfg(any(test, feature = "test-fixtures"))]
    pub fn with_misbehaviour(
        cfg: AuxConfig,
        primes: AuxPrimes,
        rng: &mut impl CryptoRngCore,
        faults: Misbehaviour,
    ) -> Result<Self, AuxSetupError> {
        Self::build(cfg, primes, rng, Some(faults))
    }

    #[allow(unused_variables)]
    fn build(
        cfg: AuxConfig,
        primes: AuxPrimes,
        rng: &mut impl CryptoRngCore,
        faults: Option<Faults>,
    ) -> Result<Self, AuxSetupError> {
        if cfg.session_id.is_empty() || cfg.session_id.len() > MAX_SESSION_ID_BYTES {
            return Err(AuxSetupError::SessionId(cfg.session_id.len()));
        }
        let m16 = cfg.committee.len();
        if m16 < 2 {
            return Err(AuxSetupError::TooFewParties(m16));
        }
        if !cfg.committee.contains(cfg.me) {
            return Err(AuxSetupError::NotInCommittee(cfg.me));
        }
        let [p, q] = &primes.paillier;
        let paillier = PaillierSecretKey::from_primes(p.expose().clone(), q.expose().clone())?;
        let [p_hat, q_hat] = &primes.ring_pedersen;
        if [p_hat.expose(), q_hat.expose()]
            .iter()
            .any(|x| *x == p.expose() || *x == q.expose())
        {
            return Err(AuxSetupError::RingPedersen(
                RingPedersenError::SameAsPaillier,
            ));
        }
        let (rp, rp_secret) = RingPedersenSecret::generate(rng, p_hat.expose(), q_hat.expose())?;
        rp.check_distinct_from(paillier.public().n())?;
        let ctx = ProofContext {
            session_id: &cfg.session_id,
            prover: cfg.me.get(),
            rho: &NO_RHO,
        };
        let owner = rp_secret.owner_params(&rp)?;
        let prm = PrmProof::prove(
            rng,
            &ctx,
            &PrmStatement { params: &owner },
            &PrmWitness { secret: &rp_secret },
        )?;
        let mut rid = [0u8; DIGEST_BYTES];
        let mut nonce = [0u8; DIGEST_BYTES];
        rng.fill_bytes(&mut rid);
        rng.fill_bytes(&mut nonce);
        #[cfg(any(test, feature = "test-fixtures"))]
        let faults = faults.unwrap_or_default();
        #[allow(unused_mut)]
        let mut n_hat = rp.n().clone();
        #[cfg(any(test, feature = "test-fixtures"))]
        if faults.n_hat_equals_n {
            n_hat = paillier.public().n().clone();
        }
        let m = usize::from(m16);
        let me = cfg.me;
        Ok(Self {
            reveal: Round2 {
                echo: Echo(Vec::new()),
                n: paillier.public().n().clone(),
                n_hat,
                s: rp.s().clone(),
                t: rp.t().clone(),
                prm: prm.to_bytes(),
                rid,
                nonce,
            },
            m,
            life: Lifecycle::new(),
            paillier: Some(paillier),
            ring_pedersen: Some((owner, rp_secret)),
            r1: RoundInbox::new(1, me, vec![true; m], true, false),
            r2: RoundInbox::new(2, me, vec![true; m], true, false),
            r3: RoundInbox::new(3, me, vec![true; m], true, true),
            r4: RoundInbox::new(4, me, vec![true; m], true, false),
            accepted: (0..m).map(|_| None).collect(),
            rho: NO_RHO,
            result: [0u8; DIGEST_BYTES],
            #[cfg(any(test, feature = "test-fixtures"))]
            faults,
            cfg,
        })
    }

    fn broadcast(&self, payload: Vec<u8>) -> Outgoing {
        Outgoing {
            round: self.life.round,
            to: Recipient::All,
            payload,
        }
    }

    fn peers(&self) -> Vec<PartyIndex> {
        self.cfg
            .committee
            .parties()
            .filter(|&j| j != self.cfg.me)
            .collect()
    }

    fn ctx<'a>(&'a self, prover: PartyIndex, rho: &'a [u8; RHO_BYTES]) -> ProofContext<'a> {
        ProofContext {
            session_id: &self.cfg.session_id,
            prover: prover.get(),
            rho,
        }
    }

    /// Round 1 closes: reveal.
    fn close_r1(&mut self) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r1.missing())?;
        self.life.note_conflicts(&self.r1, false);
        let echo = self.r1.echo(PROTOCOL, &self.cfg.session_id);
        self.life.enter(2, echo.clone());
        self.reveal.echo = echo;
        #[allow(unused_mut)]
        let mut reveal = self.reveal.clone();
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.wrong_reveal {
            reveal.rid[0] ^= 1;
        }
        let payload = reveal.to_bytes();
        self.r2.insert_own_broadcast(payload.clone(), reveal);
        Ok(vec![self.broadcast(payload)])
    }

    /// Checks one peer's reveal (AUX-05, PARAM-01, PARAM-02, AUX-04, AUX-03) and returns its
    /// public data with fixed-base tables of its ring-Pedersen parameters.
    fn check_reveal(&self, j: PartyIndex) -> Result<PartyAux, Abort> {
        let (Some(reveal), Some(commit)) = (self.r2.broadcast(j), self.r1.broadcast(j)) else {
            return Err(Abort {
                round: 2,
                culprits: vec![j],
                reason: AbortReason::MissingMessage,
                evidence: Evidence::None,
            });
        };
        let evidence = || Evidence::Payload {
            from: j,
            round: 2,
            bytes: reveal.payload.to_vec(),
        };
        let refuse = |reason| Abort {
            round: 2,
            culprits: vec![j],
            reason,
            evidence: evidence(),
        };
        let r = &reveal.value;
        if commitment_digest(&self.cfg, j, r) != commit.value.commitment {
            return Err(refuse(AbortReason::InvalidDecommitment));
        }
        let paillier = PaillierPublicKey::from_modulus(r.n.clone()).map_err(|_| {
            refuse(AbortReason::InvalidAuxParameters(
                "Paillier modulus: odd, 3072 to 4096 bits (PARAM-01)",
            ))
        })?;
        let rp = RingPedersenParams::new(r.n_hat.clone(), r.s.clone(), r.t.clone()).map_err(
            |_| {
                refuse(AbortReason::InvalidAuxParameters(
                    "ring-Pedersen parameters: N̂ odd, 3072 to 4096 bits, s and t non-trivial units (AUX-04)",
                ))
            },
        )?;
        rp.check_distinct_from(paillier.n()).map_err(|_| {
            refuse(AbortReason::InvalidAuxParameters(
                "ring-Pedersen modulus equals the Paillier modulus (PARAM-02)",
            ))
        })?;
        let tables = rp.with_tables();
        let proof = r
            .prm_proof()
            .map_err(|_| refuse(AbortReason::Bug("Πprm decoded on receipt")))?;
        proof
            .verify(&self.ctx(j, &NO_RHO), &PrmStatement { params: &tables })
            .map_err(|e| proof_abort(2, j, &e, reveal.payload.to_vec()))?;
        Ok(PartyAux {
            // fixed-base tables for the randomness we encrypt under N_j (paillier_nonce)
            paillier: paillier.with_nonce_tables(),
            ring_pedersen: tables,
        })
    }

    /// Round 2 closes: check every reveal, fix ρ, prove Πmod to all and Πfac to each.
    fn close_r2(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r2.missing())?;
        self.life.note_conflicts(&self.r2, false);
        let mut failures = Vec::new();
        for j in self.peers() {
            match self.check_reveal(j) {
                Ok(aux) => self.accepted[j.as_usize()] = Some(aux),
                Err(abort) => failures.push(abort),
            }
        }
        if let Some(mut first) = failures.first().cloned() {
            first.culprits = failures.iter().flat_map(|a| a.culprits.clone()).collect();
            return Err(first);
        }
        // ρ = H(sid, committee, rid_1..rid_m)
        let mut t = session_transcript(&self.cfg, b"rho");
        for j in self.cfg.committee.parties() {
            let rid = if j == self.cfg.me {
                self.reveal.rid
            } else {
                self.r2
                    .broadcast(j)
                    .map(|r| r.value.rid)
                    .unwrap_or([0u8; 32])
            };
            t.append_bytes(b"rid_j", &rid);
        }
        self.rho = digest(&t);
        let echo = self.r2.echo(PROTOCOL, &self.cfg.session_id);
        self.life.enter(3, echo.clone());
        let bug = |what| Abort {
            round: 3,
            culprits: vec![self.cfg.me],
            reason: AbortReason::Bug(what),
            evidence: Evidence::None,
        };
        let (Some(sk), Some((own_rp, _))) = (self.paillier.as_ref(), self.ring_pedersen.as_ref())
        else {
            return Err(bug("own keys gone before round 3"));
        };
        #[allow(unused_mut)]
        let mut mod_rho = self.rho;
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.stale_rho_in_mod {
            mod_rho = NO_RHO;
        }
        let ctx = self.ctx(self.cfg.me, &mod_rho);
        let mod_proof = ModProof::prove(
            &mut &mut *rng,
            &ctx,
            &ModStatement { n: sk.public() },
            &ModWitness { sk },
        )
        .map_err(|_| bug("Πmod of our own key"))?;
        let msg = Round3Mod {
            echo,
            proof: mod_proof,
        };
        let payload = msg.to_bytes();
        self.r3.insert_own_broadcast(payload.clone(), msg);
        let mut out = vec![self.broadcast(payload)];
        let rho = self.rho;
        let ctx = self.ctx(self.cfg.me, &rho);
        for j in self.peers() {
            let Some(peer) = self.accepted[j.as_usize()].as_ref() else {
                return Err(bug("peer data missing after round 2"));
            };
            #[allow(unused_mut)]
            let mut aux = &peer.ring_pedersen;
            #[cfg(any(test, feature = "test-fixtures"))]
            if self.faults.fac_for_wrong_params {
                aux = own_rp;
            }
            let _ = own_rp;
            let proof = FacProof::prove(
                &mut &mut *rng,
                &ctx,
                &FacStatement {
                    n0: sk.public(),
                    aux,
                },
                &FacWitness::from_secret_key(sk),
            )
            .map_err(|_| bug("Πfac of our own key"))?;
            out.push(Outgoing {
                round: 3,
                to: Recipient::One(j),
                payload: Round3Fac { proof }.to_bytes(),
            });
        }
        Ok(out)
    }

    /// Round 3 closes: verify Πmod and our Πfac from each peer; confirm the result.
    fn close_r3(&mut self) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r3.missing())?;
        self.life.note_conflicts(&self.r3, false);
        let Some((own_rp, _)) = self.ring_pedersen.as_ref() else {
            return Err(Abort {
                round: 3,
                culprits: vec![self.cfg.me],
                reason: AbortReason::Bug("own parameters gone in round 3"),
                evidence: Evidence::None,
            });
        };
        let mut failures = Vec::new();
        for j in self.peers() {
            let (Some(peer), Some(m), Some(f)) = (
                self.accepted[j.as_usize()].as_ref(),
                self.r3.broadcast(j),
                self.r3.direct(j),
            ) else {
                failures.push(Abort {
                    round: 3,
                    culprits: vec![j],
                    reason: AbortReason::MissingMessage,
                    evidence: Evidence::None,
                });
                continue;
            };
            let ctx = self.ctx(j, &self.rho);
            if let Err(e) = m
                .value
                .proof
                .verify(&ctx, &ModStatement { n: &peer.paillier })
            {
                failures.push(proof_abort(3, j, &e, m.payload.to_vec()));
                continue;
            }
            if let Err(e) = f.value.proof.verify(
                &ctx,
                &FacStatement {
                    n0: &peer.paillier,
                    aux: own_rp,
                },
            ) {
                failures.push(proof_abort(3, j, &e, f.payload.to_vec()));
            }
        }
        if let Some(mut first) = failures.first().cloned() {
            first.culprits = failures.iter().flat_map(|a| a.culprits.clone()).collect();
            return Err(first);
        }
        self.result = self.result_digest();
        let echo = self.r3.echo(PROTOCOL, &self.cfg.session_id);
        self.life.enter(4, echo.clone());
        #[allow(unused_mut)]
        let mut result = self.result;
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.wrong_result {
            result[0] ^= 1;
        }
        let msg = Round4 { echo, result };
        let payload = msg.to_bytes();
        self.r4.insert_own_broadcast(payload.clone(), msg);
        Ok(vec![self.broadcast(payload)])
    }

    /// H(sid, committee, ρ, (N_j, N̂_j, s_j, t_j) for every j).
    fn result_digest(&self) -> [u8; DIGEST_BYTES] {
        let mut t = session_transcript(&self.cfg, b"result");
        t.append_bytes(b"rho", &self.rho);
        for j in self.cfg.committee.parties() {
            let r = if j == self.cfg.me {
                Some(&self.reveal)
            } else {
                self.r2.broadcast(j).map(|r| &r.value)
            };
            if let Some(r) = r {
                t.append_uint(b"N_j", &r.n);
                t.append_uint(b"N-hat_j", &r.n_hat);
                t.append_uint(b"s_j", &r.s);
                t.append_uint(b"t_j", &r.t);
            }
        }
        digest(&t)
    }

    /// Round 4 closes: every peer confirmed the same result.
    fn close_r4(&mut self) -> Result<AuxInfo, Abort> {
        self.life.missing(self.r4.missing())?;
        self.life.note_conflicts(&self.r4, false);
        for j in self.peers() {
            if let Some(r) = self.r4.broadcast(j) {
                if r.value.result != self.result {
                    return Err(Abort {
                        round: 4,
                        culprits: vec![j],
                        reason: AbortReason::AuxResultMismatch,
                        evidence: Evidence::Payload {
                            from: j,
                            round: 4,
                            bytes: r.payload.to_vec(),
                        },
                    });
                }
            }
        }
        let bug = |what| Abort {
            round: 4,
            culprits: vec![self.cfg.me],
            reason: AbortReason::Bug(what),
            evidence: Evidence::None,
        };
        let (Some(paillier), Some((own_rp, rp_secret))) =
            (self.paillier.take(), self.ring_pedersen.take())
        else {
            return Err(bug("own keys taken twice"));
        };
        let mut parties = Vec::with_capacity(self.m);
        for j in self.cfg.committee.parties() {
            if j == self.cfg.me {
                parties.push(PartyAux {
                    paillier: paillier.public().clone(),
                    ring_pedersen: own_rp.clone(),
                });
            } else {
                match self.accepted[j.as_usize()].take() {
                    Some(p) => parties.push(p),
                    None => return Err(bug("peer data missing at the end")),
                }
            }
        }
        Ok(AuxInfo {
            session_id: self.cfg.session_id.clone(),
            me: self.cfg.me,
            rho: self.rho,
            own_paillier_view: paillier.owner_public_key(),
            paillier,
            ring_pedersen: rp_secret,
            parties,
        })
    }

    fn receive(&mut self, msg: &Incoming) -> Result<(), Rejected> {
        let m = self.m;
        let max_b = max_len(m, self.life.round, false);
        let max_d = max_len(m, self.life.round, true);
        match self.life.round {
            1 => accept(
                &mut self.r1,
                msg,
                max_b,
                max_d,
                Round1::from_bytes,
                no_direct,
            )
            .map(|_| ()),
            2 => accept_echoed(
                &mut self.life,
                &mut self.r2,
                msg,
                max_b,
                max_d,
                |b| Round2::from_bytes(b, m),
                no_direct,
                |v| &v.echo,
            ),
            3 => accept_echoed(
                &mut self.life,
                &mut self.r3,
                msg,
                max_b,
                max_d,
                |b| Round3Mod::from_bytes(b, m),
                Round3Fac::from_bytes,
                |v| &v.echo,
            ),
            _ => accept_echoed(
                &mut self.life,
                &mut self.r4,
                msg,
                max_b,
                max_d,
                |b| Round4::from_bytes(b, m),
                no_direct,
                |v| &v.echo,
            ),
        }
    }
}

impl RoundBased for AuxInfoParty {
    type Output = AuxInfo;

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
        let msg = Round1 {
            commitment: commitment_digest(&self.cfg, self.cfg.me, &self.reveal),
        };
        let payload = msg.to_bytes();
        self.r1.insert_own_broadcast(payload.clone(), msg);
        Ok(vec![self.broadcast(payload)])
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

    fn close_round(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Closed<AuxInfo>, Abort> {
        match self.life.round {
            1 => self.close_r1().map(Closed::Next),
            2 => self.close_r2(rng).map(Closed::Next),
            3 => self.close_r3().map(Closed::Next),
            _ => self.close_r4().map(Closed::Done),
        }
    }
}

#[cfg(test)]
mod tests;

/// Aux info handed out by a trusted dealer from the committed fixture primes (party i: pairs 2i
/// and 2i+1), without running the protocol or its proofs: for tests of the protocols that
/// consume aux info (presigning), so they do not pay for Πmod and Πprm. Test support only
/// (`test-fixtures`): the primes are public.
#[cfg(any(test, feature = "test-fixtures"))]
#[allow(clippy::expect_used)]
pub fn dealt_for_tests(m: u16, session_id: &[u8], rng: &mut impl CryptoRngCore) -> Vec<AuxInfo> {
    let mut rho = [0u8; RHO_BYTES];
    rng.fill_bytes(&mut rho);
    let keys = |j: u16| {
        let [p, q] = crate::fixtures::safe_prime_pair(2 * usize::from(j));
        PaillierSecretKey::from_primes(p, q).expect("fixture Paillier primes")
    };
    let mut secrets: Vec<Option<(RingPedersenParams, RingPedersenSecret)>> = (0..m)
        .map(|j| {
            let [p, q] = crate::fixtures::safe_prime_pair(2 * usize::from(j) + 1);
            Some(RingPedersenSecret::generate(rng, &p, &q).expect("fixture ring-Pedersen primes"))
        })
        .collect();
    let public: Vec<(PaillierPublicKey, RingPedersenParams)> = (0..m)
        .map(|j| {
            let params = secrets[usize::from(j)]
                .as_ref()
                .map(|(p, _)| p.with_tables());
            (
                keys(j).public().with_nonce_tables(),
                params.expect("generated above"),
            )
        })
        .collect();
    (0..m)
        .map(|i| {
            let paillier = keys(i);
            let (params, secret) = secrets[usize::from(i)].take().expect("each secret once");
            let own = secret.owner_params(&params).expect("own parameters");
            let parties = (0..m)
                .map(|j| {
                    let (pk, tables) = &public[usize::from(j)];
                    // as the protocol's output: peers' keys with nonce tables, our own plain
                    PartyAux {
                        paillier: if j == i {
                            paillier.public().clone()
                        } else {
                            pk.clone()
                        },
                        ring_pedersen: if j == i { own.clone() } else { tables.clone() },
                    }
                })
                .collect();
            AuxInfo {
                session_id: session_id.to_vec(),
                me: PartyIndex::new(i),
                rho,
                own_paillier_view: paillier.owner_public_key(),
                paillier,
                ring_pedersen: secret,
                parties,
            }
        })
        .collect()
}
