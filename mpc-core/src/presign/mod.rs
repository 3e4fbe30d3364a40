//! Presigning (CGGMP24 = ePrint 2021/060 rev. 2024-10-21, Fig. 8) for a chosen set of t signers
//! of a t-of-m key (App. F.1: Lagrange conversion of the Shamir shares), bound to
//! (key id, derivation path, epoch, signer set, session id) (PRE-06's binding; durable single
//! use is the signer node's job).
//!
//! Notation: signer i holds w_i = λ_i·x_i (+ the BIP32 shift of the path for the first signer
//! of the set), so Σ w_i is the child secret key and W_i = w_i·G is public. Every party's
//! Paillier key N_i and ring-Pedersen (N̂_i, s_i, t_i) come from aux info ([`crate::aux_info`]).
//!
//! | round | kind | content | checks by the receivers |
//! |---|---|---|---|
//! | 1 | broadcast | K_i = enc_i(k_i), G_i = enc_i(γ_i), Y_i = y_i·G, A_i = (a_i·G, k_i·G + a_i·Y_i), B_i = (b_i·G, γ_i·G + b_i·Y_i) | K_j, G_j units mod N_j² (PRE-05) |
//! | 1 | direct | Πenc-elg for (K_i, A_i) and for (G_i, B_i) against the recipient's (N̂, s, t) | both proofs, before any homomorphic use of K_j (PRE-01) |
//! | 2 | broadcast | Γ_i = γ_i·G, Πelog for (B_{i,1}, B_{i,2}, Y_i, Γ_i, G); echo of 1 | Πelog (PRE-03) |
//! | 2 | direct | D_{j,i} = K_j^{γ_i}·enc_j(y), F_{j,i} = enc_i(y); D̂, F̂ likewise with w_i; Πaff-g for each | units (PRE-05); both Πaff-g with X = Γ_i and X = W_i (PRE-02); decryptions range-checked (PRE-02) |
//! | 3 | broadcast | δ_i, Δ_i = k_i·Γ, S_i = χ_i·Γ, Πelog for (A_{i,1}, A_{i,2}, Y_i, Δ_i, Γ); echo of 2 | Πelog (PRE-03); δ·G = Σ Δ_j and Σ S_j = δ·X (PRE-04) |
//! | 4 | broadcast, only if a PRE-04 check failed | identification (Fig. 9, §4.3.1): for the failed side(s), every D, F this party sent with a setup-less Πaff-g*, and Πdec that K_i^x·Π_j D_{j→i}·F_{i→j}⁻¹ decrypts to its δ_i (S = δ_i·G) or χ_i (S = S_i, base Γ); echo of 3 | every Πaff-g* and Πdec, with the revealed values; names every party whose material fails (PRE-04) |
//!
//! with Γ = Σ Γ_j, α_{i,j} = dec_i(D_{i,j}), β_{i,j} = −y_{i,j} (the sender's additive share:
//! α_{j,i} + β_{i,j} = k_j·γ_i), δ_i = k_i·γ_i + Σ_j (α_{i,j} + β_{i,j}),
//! χ_i = k_i·w_i + Σ_j (α̂_{i,j} + β̂_{i,j}), δ = Σ δ_j, R = δ⁻¹·Γ. The output
//! [`Presignature`] holds (R, k_i, χ_i) and the public (Δ_j, S_j) with which each partial
//! signature is checked before combining ([`crate::sign`], SIG-03).
//!
//! S_i = χ_i·Γ and the check Σ S_j = δ·X bind the χ shares to the key, which lets a combiner
//! check each partial signature σ_j (σ_j·Γ = m·Δ_j + r·S_j) and name the party whose σ_j is
//! wrong.
//!
//! Faults: every check above names its culprit, with the offending payload as evidence. A
//! failed PRE-04 check leads to round 4 (identification) instead of an abort without a
//! culprit: it names the party whose δ_i or S_i is not what its ciphertexts decrypt to, or
//! whose revealed affine operations do not verify. Its evidence (Πaff-g*, Πdec) is checkable by
//! anyone from the public transcript and the revealed values. Limits, written down: a party
//! that reveals another D than it sent is named by the receiver (who knows what it got) but, for
//! other parties, the receiver's Πdec then fails instead; settling who lied takes the signed
//! envelopes of NET-01. The round is costly (128-repetition proofs, ≈ 10–25 s per peer) and
//! runs only after a failure.

//! Costs per party and peer: two Πenc-elg proofs and verifications, two Πaff-g proofs and
//! verifications, two public encryptions under the peer's key, two CRT decryptions; the peer's
//! ring-Pedersen tables and this party's owner (CRT) views come with the aux info.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::group::Group;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::arith::{
    in_signed_bits, int_from_scalar, random_signed_bits, scalar_from_int, SecretInt, SecretUint,
};
use num_bigint::BigUint;

use crate::aux_info::AuxInfo;
use crate::dkg::KeyShare;
use crate::hd::{derive_shift, ChainCode, DerivationPath, HdError};
use crate::params::{ELL_PRIME, EPSILON};
use crate::protocol::{
    accept, accept_echoed, no_direct, Abort, AbortReason, Closed, Evidence, Incoming, Lifecycle,
    Outgoing, PartyIndex, Recipient, Rejected, RoundBased, RoundInbox,
};
use crate::transcript::Transcript;
use crate::zk::aff_g::{AffGProof, AffGStatement, AffGWitness};
use crate::zk::aff_g_star::{AffGStarProof, AffGStarStatement, AffGStarWitness};
use crate::zk::dec::{DecProof, DecStatement, DecWitness};
use crate::zk::elog::{ElogProof, ElogStatement, ElogWitness};
use crate::zk::enc_elg::{EncElgProof, EncElgStatement, EncElgWitness};
use crate::zk::{ProofContext, ProofError, MAX_SESSION_ID_BYTES};

pub mod msg;

use msg::{
    max_len, IdentifySide, RevealedAffine, Round1Broadcast, Round1Direct, Round2Broadcast,
    Round2Direct, Round3Broadcast, Round4Identify,
};

/// Protocol label in every presigning hash.
const PROTOCOL: &[u8] = b"custody/presign/cggmp24-fig8/v1";

/// Number of rounds.
pub const ROUNDS: u16 = 3;

/// Longest key id.
pub const MAX_KEY_ID_BYTES: usize = 64;

/// Length of the session digest and the transcript digest.
pub const DIGEST_BYTES: usize = 32;

/// Inputs of one presigning party besides its key share and aux info.
#[derive(Clone, Debug)]
pub struct PresignConfig {
    /// Session id, unique per execution (SIG-04: a reused id is refused by the signer node).
    pub session_id: Vec<u8>,
    /// The key's id (what the store files the share under).
    pub key_id: Vec<u8>,
    /// The key's refresh epoch (REF-03: presignatures of another epoch are refused).
    pub epoch: u64,
    /// The t signers, strictly increasing committee indices, this party among them.
    pub signers: Vec<PartyIndex>,
    /// The BIP32 path fixed for this presignature (SIG-02).
    pub path: DerivationPath,
}

/// Why a presigning party could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresignSetupError {
    /// Session id empty or too long.
    #[error("session id of {0} bytes (1..={MAX_SESSION_ID_BYTES} required)")]
    SessionId(usize),
    /// Key id empty or too long.
    #[error("key id of {0} bytes (1..={MAX_KEY_ID_BYTES} required)")]
    KeyId(usize),
    /// Not exactly t signers: fewer cannot sign, more are not needed.
    #[error("{got} signers given, the key needs exactly t = {t}")]
    SignerCount {
        /// Signers given.
        got: usize,
        /// The threshold.
        t: u16,
    },
    /// Signers not strictly increasing, outside the committee, or without this party.
    #[error("signer set must be strictly increasing committee indices including this party")]
    SignerSet,
    /// Key share and aux info do not belong together.
    #[error("key share and aux info are for different parties or committees")]
    AuxMismatch,
    /// The derivation path gives no valid child key.
    #[error("derivation path: {0}")]
    Path(#[from] HdError),
    /// The configured epoch is not the key share's (REF-03: presignatures are made for the
    /// key's current epoch only).
    #[error("presignature epoch {got} but the key share is at epoch {current}")]
    Epoch {
        /// Configured.
        got: u64,
        /// The key share's.
        current: u64,
    },
    /// Lagrange conversion failed (duplicate evaluation points: a corrupt key share).
    #[error("Lagrange coefficients of the signer set")]
    Lagrange,
}

/// Test-only misbehaviour (compiled only for tests and the `test-fixtures` feature).
#[cfg(any(test, feature = "test-fixtures"))]
#[derive(Clone, Debug, Default)]
pub struct Misbehaviour {
    /// Round 1: K_i encrypts k_i + 1 while A_i commits to k_i (Πenc-elg fails, PRE-01).
    pub k_not_committed: bool,
    /// Round 1: K_i = 0, not a unit (PRE-05).
    pub zero_ciphertext: bool,
    /// Round 2: Γ_i = (γ_i + 1)·G, not what B_i commits to (Πelog fails, PRE-03).
    pub gamma_not_committed: bool,
    /// Round 2: D for the γ multiplication computed with γ_i + 1 (Πaff-g fails, PRE-02).
    pub d_with_other_gamma: bool,
    /// Round 3: δ_i + 1 (PRE-04's δ check fails; identification names the party).
    pub delta_off_by_one: bool,
    /// Round 3: S_i for χ_i + 1 (PRE-04's S check fails; identification names the party).
    pub chi_off_by_one: bool,
}

#[cfg(any(test, feature = "test-fixtures"))]
type Faults = Misbehaviour;
#[cfg(not(any(test, feature = "test-fixtures")))]
type Faults = ();

/// The public part of a presignature: what a combiner needs to check partial signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignaturePublic {
    /// Session digest binding (session id, key id, epoch, path, signers, keys).
    pub ssid: [u8; DIGEST_BYTES],
    /// Digest of the whole public transcript (every round-3 broadcast); partial signatures
    /// carry it, so a party that equivocated in round 3 is caught when combining.
    pub transcript: [u8; DIGEST_BYTES],
    /// The signers.
    pub signers: Vec<PartyIndex>,
    /// The derivation path.
    pub path: DerivationPath,
    /// Epoch of the key.
    pub epoch: u64,
    /// Key id.
    pub key_id: Vec<u8>,
    /// The child public key the signature will verify under.
    pub public_key: ProjectivePoint,
    /// R = δ⁻¹·Γ.
    pub cap_r: ProjectivePoint,
    /// Γ = Σ Γ_j.
    pub cap_gamma: ProjectivePoint,
    /// Δ_j = k_j·Γ per signer (in signer order).
    pub cap_deltas: Vec<ProjectivePoint>,
    /// S_j = χ_j·Γ per signer (in signer order).
    pub cap_ss: Vec<ProjectivePoint>,
}

/// One party's presignature: (R, k_i, χ_i) and the public values. Use once: signing consumes
/// it ([`crate::sign`]).
pub struct Presignature {
    /// The presigning session (PRE-06: with the public values, what it is bound to).
    pub(crate) session_id: Vec<u8>,
    pub(crate) me: PartyIndex,
    pub(crate) k: Zeroizing<Scalar>,
    pub(crate) chi: Zeroizing<Scalar>,
    pub(crate) public: PresignaturePublic,
}

impl fmt::Debug for Presignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presignature")
            .field("me", &self.me)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Presignature {
    /// This party.
    pub fn me(&self) -> PartyIndex {
        self.me
    }

    /// The presigning session that made it.
    pub fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    /// The public values.
    pub fn public(&self) -> &PresignaturePublic {
        &self.public
    }
}

/// One affine operation sent to a peer: D = K_j^x·enc_j(y; s), F = enc_i(y; r).
struct SentAffine {
    cap_d: BigUint,
    cap_f: BigUint,
    y: SecretInt,
    s: SecretUint,
    r: SecretUint,
}

/// Round-1 secrets of this party.
struct Nonces {
    k: Zeroizing<Scalar>,
    gamma: Zeroizing<Scalar>,
    a: Zeroizing<Scalar>,
    b: Zeroizing<Scalar>,
    rho: SecretUint,
    nu: SecretUint,
}

/// One presigning party (a sans-IO state machine; see the module docs).
pub struct PresignParty {
    cfg: PresignConfig,
    aux: Arc<AuxInfo>,
    me: PartyIndex,
    m: usize,
    ssid: [u8; DIGEST_BYTES],
    w: Zeroizing<Scalar>,
    /// W_j per committee index (identity for non-signers).
    cap_w: Vec<ProjectivePoint>,
    public_key: ProjectivePoint,
    nonces: Nonces,
    own_r1: Round1Broadcast,
    life: Lifecycle,
    r1: RoundInbox<Round1Broadcast, Round1Direct>,
    r2: RoundInbox<Round2Broadcast, Round2Direct>,
    r3: RoundInbox<Round3Broadcast, ()>,
    r4: RoundInbox<Round4Identify, ()>,
    /// Which sides failed the round-3 check (identification round 4).
    failed: (bool, bool),
    /// The affine operations sent to each peer (for γ_i and for w_i), with their nonces: y
    /// (β = −y is this party's additive share), s, r. Kept for identification.
    sent: Vec<Option<[SentAffine; 2]>>,
    cap_gamma_own: ProjectivePoint,
    cap_gamma: ProjectivePoint,
    /// χ_i, once round 2 closed.
    chi: Option<Zeroizing<Scalar>>,
    #[allow(dead_code)]
    faults: Faults,
}

impl fmt::Debug for PresignParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignParty")
            .field("me", &self.me)
            .field("round", &self.life.round)
            .field("phase", &self.life.phase)
            .finish_non_exhaustive()
    }
}

fn digest(t: &Transcript) -> [u8; DIGEST_BYTES] {
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(&t.challenge_bytes(b"digest", 0, DIGEST_BYTES));
    out
}

/// The session digest (ssid) of a presigning run: everything the presignature and every proof
/// of the run are bound to (session id, key id, epoch, path, committee, threshold, signers,
/// public keys, the aux-info ρ and every party's Paillier and ring-Pedersen parameters).
fn ssid(
    cfg: &PresignConfig,
    key: &KeyShare,
    aux: &AuxInfo,
    public_key: &ProjectivePoint,
) -> [u8; DIGEST_BYTES] {
    let t = key.threshold();
    let committee = key.committee();
    let mut tr = Transcript::new(PROTOCOL);
    tr.append_bytes(b"session-id", &cfg.session_id);
    tr.append_bytes(b"key-id", &cfg.key_id);
    tr.append_u64(b"epoch", cfg.epoch);
    tr.append_bytes(b"path", &cfg.path.to_bytes());
    committee.append_to(&mut tr);
    tr.append_u64(b"threshold", u64::from(t));
    for s in &cfg.signers {
        tr.append_u64(b"signer", u64::from(s.get()));
    }
    tr.append_point(b"public key", key.public_key());
    tr.append_point(b"child public key", public_key);
    tr.append_point_list(b"X_j", key.public_shares());
    tr.append_bytes(b"aux rho", aux.rho());
    for j in committee.parties() {
        if let Some(p) = aux.party(j) {
            tr.append_uint(b"N_j", p.paillier.n());
            tr.append_uint(b"N-hat_j", p.ring_pedersen.n());
            tr.append_uint(b"s_j", p.ring_pedersen.s());
            tr.append_uint(b"t_j", p.ring_pedersen.t());
        }
    }
    digest(&tr)
}

/// The session digest a presigning party with these inputs binds its proofs to
/// ([`ProofContext::session_id`] of every proof of the run), for whoever re-checks a proof
/// from blame evidence afterwards: a holder of the same key (its public parts and the aux
/// info are what is read; the secret share is not used). Refuses what [`PresignParty::new`]
/// refuses about the path.
pub fn session_digest(
    cfg: &PresignConfig,
    key: &KeyShare,
    aux: &AuxInfo,
) -> Result<[u8; DIGEST_BYTES], PresignSetupError> {
    let (public_key, _) = derive_shift(key.public_key(), &ChainCode(*key.chain_code()), &cfg.path)?;
    Ok(ssid(cfg, key, aux, &public_key))
}

fn abort_with(round: u16, j: PartyIndex, reason: AbortReason, bytes: &[u8]) -> Abort {
    Abort {
        round,
        culprits: vec![j],
        reason,
        evidence: Evidence::Payload {
            from: j,
            round,
            bytes: bytes.to_vec(),
        },
    }
}

fn proof_reason(e: &ProofError) -> AbortReason {
    AbortReason::InvalidProof {
        proof: e.proof,
        check: e.check,
    }
}

impl PresignParty {
    /// Creates a party from its key share, the aux info of the same committee (shared: it is
    /// fixed for an epoch and used by many concurrent presignatures) and the session inputs;
    /// samples the round-1 secrets.
    pub fn new(
        cfg: PresignConfig,
        key: &KeyShare,
        aux: Arc<AuxInfo>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, PresignSetupError> {
        Self::build(cfg, key, aux, rng, None)
    }

    /// A party that misbehaves as `faults` says (tests only).
    #[cfg(any(test, feature = "test-fixtures"))]
    pub fn with_misbehaviour(
        cfg: PresignConfig,
        key: &KeyShare,
        aux: Arc<AuxInfo>,
        rng: &mut impl CryptoRngCore,
        faults: Misbehaviour,
    ) -> Result<Self, PresignSetupError> {
        Self::build(cfg, key, aux, rng, Some(faults))
    }

    #[allow(unused_variables)]
    fn build(
        cfg: PresignConfig,
        key: &KeyShare,
        aux: Arc<AuxInfo>,
        rng: &mut impl CryptoRngCore,
        faults: Option<Faults>,
    ) -> Result<Self, PresignSetupError> {
        if cfg.session_id.is_empty() || cfg.session_id.len() > MAX_SESSION_ID_BYTES {
            return Err(PresignSetupError::SessionId(cfg.session_id.len()));
        }
        if cfg.key_id.is_empty() || cfg.key_id.len() > MAX_KEY_ID_BYTES {
            return Err(PresignSetupError::KeyId(cfg.key_id.len()));
        }
        if cfg.epoch != key.epoch() {
            return Err(PresignSetupError::Epoch {
                got: cfg.epoch,
                current: key.epoch(),
            });
        }
        let t = key.threshold();
        if cfg.signers.len() != usize::from(t) {
            return Err(PresignSetupError::SignerCount {
                got: cfg.signers.len(),
                t,
            });
        }
        let me = key.me();
        let committee = key.committee();
        let m = usize::from(committee.len());
        if !cfg.signers.windows(2).all(|w| w[0] < w[1])
            || !cfg.signers.iter().all(|s| committee.contains(*s))
            || !cfg.signers.contains(&me)
        {
            return Err(PresignSetupError::SignerSet);
        }
        if aux.me() != me || aux.parties() != m {
            return Err(PresignSetupError::AuxMismatch);
        }
        let (public_key, shift) =
            derive_shift(key.public_key(), &ChainCode(*key.chain_code()), &cfg.path)?;
        let first = cfg.signers[0];
        let mut cap_w = vec![ProjectivePoint::IDENTITY; m];
        for &j in &cfg.signers {
            let lambda = key
                .lagrange_in(&cfg.signers, j)
                .map_err(|_| PresignSetupError::Lagrange)?;
            let x_j = key.public_shares()[j.as_usize()];
            cap_w[j.as_usize()] = x_j * lambda
                + if j == first {
                    ProjectivePoint::GENERATOR * shift
                } else {
                    ProjectivePoint::IDENTITY
                };
        }
        let lambda_me = key
            .lagrange_in(&cfg.signers, me)
            .map_err(|_| PresignSetupError::Lagrange)?;
        let w = Zeroizing::new(
            *key.secret_share() * lambda_me + if me == first { shift } else { Scalar::ZERO },
        );
        let ssid = ssid(&cfg, key, &aux, &public_key);

        #[cfg(any(test, feature = "test-fixtures"))]
        let faults = faults.unwrap_or_default();
        #[cfg(not(any(test, feature = "test-fixtures")))]
        let faults = ();
        let sk = aux.paillier_secret();
        let k = Zeroizing::new(Scalar::random(&mut *rng));
        let gamma = Zeroizing::new(Scalar::random(&mut *rng));
        let y = Zeroizing::new(Scalar::random(&mut *rng));
        let a = Zeroizing::new(Scalar::random(&mut *rng));
        let b = Zeroizing::new(Scalar::random(&mut *rng));
        #[allow(unused_mut)]
        let mut k_plain = SecretInt::new(int_from_scalar(&k));
        #[cfg(any(test, feature = "test-fixtures"))]
        if faults.k_not_committed {
            k_plain = SecretInt::new(k_plain.expose() + 1);
        }
        let (cap_k, rho) = sk.encrypt(rng, k_plain.expose());
        let gamma_plain = SecretInt::new(int_from_scalar(&gamma));
        let (cap_g, nu) = sk.encrypt(rng, gamma_plain.expose());
        let g = ProjectivePoint::GENERATOR;
        let cap_y = g * *y;
        let cap_gamma_own = g * *gamma;
        #[allow(unused_mut)]
        let mut own_r1 = Round1Broadcast {
            cap_k: cap_k.as_uint().clone(),
            cap_g: cap_g.as_uint().clone(),
            cap_y,
            cap_a: [g * *a, g * *k + cap_y * *a],
            cap_b: [g * *b, g * *gamma + cap_y * *b],
        };
        #[cfg(any(test, feature = "test-fixtures"))]
        if faults.zero_ciphertext {
            own_r1.cap_k = num_bigint::BigUint::default();
        }
        let signer_mask: Vec<bool> = (0..m)
            .map(|j| cfg.signers.contains(&PartyIndex::new(j as u16)))
            .collect();
        Ok(Self {
            me,
            m,
            ssid,
            w,
            cap_w,
            public_key,
            nonces: Nonces {
                k,
                gamma,
                a,
                b,
                rho: SecretUint::new(rho.expose().clone()),
                nu: SecretUint::new(nu.expose().clone()),
            },
            own_r1,
            life: Lifecycle::new(),
            r1: RoundInbox::new(1, me, signer_mask.clone(), true, true),
            r2: RoundInbox::new(2, me, signer_mask.clone(), true, true),
            r3: RoundInbox::new(3, me, signer_mask.clone(), true, false),
            r4: RoundInbox::new(4, me, signer_mask, true, false),
            failed: (false, false),
            sent: (0..m).map(|_| None).collect(),
            cap_gamma_own,
            cap_gamma: ProjectivePoint::IDENTITY,
            chi: None,
            faults,
            aux,
            cfg,
        })
    }

    fn peers(&self) -> Vec<PartyIndex> {
        self.cfg
            .signers
            .iter()
            .copied()
            .filter(|&j| j != self.me)
            .collect()
    }

    fn ctx(&self, prover: PartyIndex) -> ProofContext<'_> {
        ProofContext {
            session_id: &self.ssid,
            prover: prover.get(),
            rho: self.aux.rho(),
        }
    }

    fn broadcast(&self, payload: Vec<u8>) -> Outgoing {
        Outgoing {
            round: self.life.round,
            to: Recipient::All,
            payload,
        }
    }

    fn bug(&self, what: &'static str) -> Abort {
        Abort {
            round: self.life.round,
            culprits: vec![self.me],
            reason: AbortReason::Bug(what),
            evidence: Evidence::None,
        }
    }

    /// Round 1: the broadcast and, to each peer, Πenc-elg for K_i and G_i.
    fn round1_messages(&self, rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        let sk = self.aux.paillier_secret();
        let n = &self.nonces;
        let payload = self.own_r1.to_bytes();
        let mut out = vec![Outgoing {
            round: 1,
            to: Recipient::All,
            payload,
        }];
        let k_plain = SecretInt::new(int_from_scalar(&n.k));
        let gamma_plain = SecretInt::new(int_from_scalar(&n.gamma));
        for j in self.peers() {
            let Some(peer) = self.aux.party(j) else {
                return Err(self.bug("aux of a signer missing"));
            };
            let ctx = self.ctx(self.me);
            let st_k = EncElgStatement {
                n0: sk.public(),
                aux: &peer.ring_pedersen,
                cap_c: &self.own_r1.cap_k,
                cap_a: &self.own_r1.cap_y,
                cap_b: &self.own_r1.cap_a[0],
                cap_x: &self.own_r1.cap_a[1],
            };
            let w_k = EncElgWitness {
                sk,
                x: k_plain.expose(),
                rho: n.rho.expose(),
                b: &n.a,
            };
            let st_g = EncElgStatement {
                cap_c: &self.own_r1.cap_g,
                cap_b: &self.own_r1.cap_b[0],
                cap_x: &self.own_r1.cap_b[1],
                ..st_k
            };
            let w_g = EncElgWitness {
                x: gamma_plain.expose(),
                rho: n.nu.expose(),
                b: &n.b,
                ..w_k
            };
            let psi_g = EncElgProof::prove(&mut &mut *rng, &ctx, &st_g, &w_g)
                .map_err(|_| self.bug("Πenc-elg of G_i"))?;
            let psi_k = if self.cheats_k() {
                // a cheater cannot prove a false K_i; it sends another proof instead
                psi_g.clone()
            } else {
                EncElgProof::prove(&mut &mut *rng, &ctx, &st_k, &w_k)
                    .map_err(|_| self.bug("Πenc-elg of K_i"))?
            };
            out.push(Outgoing {
                round: 1,
                to: Recipient::One(j),
                payload: Round1Direct { psi_k, psi_g }.to_bytes(),
            });
        }
        Ok(out)
    }

    #[cfg(any(test, feature = "test-fixtures"))]
    fn cheats_k(&self) -> bool {
        self.faults.k_not_committed || self.faults.zero_ciphertext
    }

    #[cfg(not(any(test, feature = "test-fixtures")))]
    fn cheats_k(&self) -> bool {
        false
    }

    /// Round 1 closes: check K_j, G_j and both Πenc-elg of every peer (PRE-05, PRE-01); send
    /// Γ_i with Πelog, and to each peer the two affine operations with Πaff-g.
    fn close_r1(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r1.missing())?;
        self.life.note_conflicts(&self.r1, false);
        let own_rp = match self.aux.party(self.me) {
            Some(p) => p.ring_pedersen.clone(),
            None => return Err(self.bug("own aux missing")),
        };
        for j in self.peers() {
            let (Some(b), Some(d), Some(peer)) =
                (self.r1.broadcast(j), self.r1.direct(j), self.aux.party(j))
            else {
                return Err(self.bug("round-1 message missing after completion"));
            };
            let v = &b.value;
            for c in [&v.cap_k, &v.cap_g] {
                if peer.paillier.ciphertext(c.clone()).is_err() {
                    return Err(abort_with(1, j, AbortReason::InvalidCiphertext, &b.payload));
                }
            }
            let ctx = self.ctx(j);
            let st_k = EncElgStatement {
                n0: &peer.paillier,
                aux: &own_rp,
                cap_c: &v.cap_k,
                cap_a: &v.cap_y,
                cap_b: &v.cap_a[0],
                cap_x: &v.cap_a[1],
            };
            d.value
                .psi_k
                .verify(&ctx, &st_k)
                .map_err(|e| abort_with(1, j, proof_reason(&e), &d.payload))?;
            let st_g = EncElgStatement {
                cap_c: &v.cap_g,
                cap_b: &v.cap_b[0],
                cap_x: &v.cap_b[1],
                ..st_k
            };
            d.value
                .psi_g
                .verify(&ctx, &st_g)
                .map_err(|e| abort_with(1, j, proof_reason(&e), &d.payload))?;
        }
        let echo = self.r1.echo(PROTOCOL, &self.ssid);
        self.life.enter(2, echo.clone());
        let n = &self.nonces;
        let g = ProjectivePoint::GENERATOR;
        #[allow(unused_mut)]
        let mut cap_gamma = self.cap_gamma_own;
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.gamma_not_committed {
            cap_gamma += g;
        }
        // (a test cheater proves the honest Γ_i and sends another one)
        let st = ElogStatement {
            cap_l: &self.own_r1.cap_b[0],
            cap_m: &self.own_r1.cap_b[1],
            cap_x: &self.own_r1.cap_y,
            cap_y: &self.cap_gamma_own,
            h: &g,
        };
        let wit = ElogWitness {
            y: &n.gamma,
            lambda: &n.b,
        };
        let psi = ElogProof::prove(&mut &mut *rng, &self.ctx(self.me), &st, &wit)
            .map_err(|_| self.bug("Πelog of Γ_i"))?;
        let msg = Round2Broadcast {
            echo,
            cap_gamma,
            psi,
        };
        let payload = msg.to_bytes();
        self.r2.insert_own_broadcast(payload.clone(), msg);
        let mut out = vec![self.broadcast(payload)];
        for j in self.peers() {
            let (direct, sent) = self.affine_operations(rng, j)?;
            self.sent[j.as_usize()] = Some(sent);
            out.push(Outgoing {
                round: 2,
                to: Recipient::One(j),
                payload: direct.to_bytes(),
            });
        }
        Ok(out)
    }

    /// D_{j,i} = K_j^{γ_i}·enc_j(y; s), F_{j,i} = enc_i(y; r) and the same with w_i, with their
    /// Πaff-g proofs; returns the message and (β, β̂) = (−y, −ŷ).
    fn affine_operations(
        &self,
        rng: &mut dyn CryptoRngCore,
        j: PartyIndex,
    ) -> Result<(Round2Direct, [SentAffine; 2]), Abort> {
        let sk = self.aux.paillier_secret();
        let (Some(peer), Some(b)) = (self.aux.party(j), self.r1.broadcast(j)) else {
            return Err(self.bug("peer data missing in round 2"));
        };
        let cap_k_j = &b.value.cap_k;
        let n_j = &peer.paillier;
        let ctx = self.ctx(self.me);
        let mut one = |x: &Scalar, cap_x: &ProjectivePoint, cheat: bool| {
            let y = SecretInt::new(random_signed_bits(&mut &mut *rng, u64::from(ELL_PRIME)));
            // fresh randomness from the peer's and our own nonce tables (paillier_nonce)
            let s = n_j.fresh_nonce(&mut &mut *rng);
            let r = sk.fresh_nonce(&mut &mut *rng);
            let x_int = SecretInt::new(int_from_scalar(x));
            let mult = if cheat {
                SecretInt::new(x_int.expose() + 1)
            } else {
                x_int.clone()
            };
            let c_x = n_j
                .pow_n2(cap_k_j, mult.expose())
                .ok_or_else(|| self.bug("K_j checked as a unit"))?;
            let enc_y = n_j.encrypt_fresh(y.expose(), &s);
            let cap_d = c_x * enc_y.as_uint() % n_j.n_squared();
            let cap_f = sk.encrypt_fresh(y.expose(), &r).as_uint().clone();
            let st = AffGStatement {
                n0: n_j,
                n1: sk.public(),
                rp: &peer.ring_pedersen,
                cap_c: cap_k_j,
                cap_d: &cap_d,
                cap_y: &cap_f,
                cap_x,
            };
            let wit = AffGWitness {
                x: x_int.expose(),
                y: y.expose(),
                rho: s.expose(),
                rho_y: r.expose(),
                prover_key: sk,
            };
            let proof = AffGProof::prove_for_computed_statement(&mut &mut *rng, &ctx, &st, &wit)
                .map_err(|_| self.bug("Πaff-g of our own affine operation"))?;
            Ok::<_, Abort>((
                cap_d.clone(),
                cap_f.clone(),
                proof,
                SentAffine {
                    cap_d,
                    cap_f,
                    y,
                    s: SecretUint::new(s.expose().clone()),
                    r: SecretUint::new(r.expose().clone()),
                },
            ))
        };
        #[cfg(any(test, feature = "test-fixtures"))]
        let cheat = self.faults.d_with_other_gamma;
        #[cfg(not(any(test, feature = "test-fixtures")))]
        let cheat = false;
        let cap_gamma_own = self.cap_gamma_own;
        let (cap_d, cap_f, psi, sent) = one(&self.nonces.gamma, &cap_gamma_own, cheat)?;
        let cap_w = self.cap_w[self.me.as_usize()];
        let (cap_d_hat, cap_f_hat, psi_hat, sent_hat) = one(&self.w, &cap_w, false)?;
        Ok((
            Round2Direct {
                cap_d,
                cap_f,
                cap_d_hat,
                cap_f_hat,
                psi,
                psi_hat,
            },
            [sent, sent_hat],
        ))
    }

    /// Round 2 closes: Πelog of each Γ_j (PRE-03), units and Πaff-g of each pair (PRE-05,
    /// PRE-02), decryption with range checks; send δ_i, Δ_i, S_i and Πelog.
    fn close_r2(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        self.life.missing(self.r2.missing())?;
        self.life.note_conflicts(&self.r2, false);
        let g = ProjectivePoint::GENERATOR;
        let sk = self.aux.paillier_secret();
        let (Some(own), own_view) = (self.aux.party(self.me), self.aux.own_paillier_view()) else {
            return Err(self.bug("own aux missing"));
        };
        let bound_bits = u64::from(ELL_PRIME + EPSILON + 1);
        let mut cap_gamma = self.cap_gamma_own;
        let mut delta = Zeroizing::new(*self.nonces.k * *self.nonces.gamma);
        let mut chi = Zeroizing::new(*self.nonces.k * *self.w);
        for j in self.peers() {
            let (Some(r1), Some(b), Some(d), Some(peer)) = (
                self.r1.broadcast(j),
                self.r2.broadcast(j),
                self.r2.direct(j),
                self.aux.party(j),
            ) else {
                return Err(self.bug("round-2 message missing after completion"));
            };
            let ctx = self.ctx(j);
            let st = ElogStatement {
                cap_l: &r1.value.cap_b[0],
                cap_m: &r1.value.cap_b[1],
                cap_x: &r1.value.cap_y,
                cap_y: &b.value.cap_gamma,
                h: &g,
            };
            b.value
                .psi
                .verify(&ctx, &st)
                .map_err(|e| abort_with(2, j, proof_reason(&e), &b.payload))?;
            let v = &d.value;
            let units = own_view.ciphertext(v.cap_d.clone()).is_ok()
                && own_view.ciphertext(v.cap_d_hat.clone()).is_ok()
                && peer.paillier.ciphertext(v.cap_f.clone()).is_ok()
                && peer.paillier.ciphertext(v.cap_f_hat.clone()).is_ok();
            if !units {
                return Err(abort_with(2, j, AbortReason::InvalidCiphertext, &d.payload));
            }
            let cap_w_j = self.cap_w[j.as_usize()];
            for (cap_d, cap_f, proof, cap_x) in [
                (&v.cap_d, &v.cap_f, &v.psi, &b.value.cap_gamma),
                (&v.cap_d_hat, &v.cap_f_hat, &v.psi_hat, &cap_w_j),
            ] {
                let st = AffGStatement {
                    n0: own_view,
                    n1: &peer.paillier,
                    rp: &own.ring_pedersen,
                    cap_c: &self.own_r1.cap_k,
                    cap_d,
                    cap_y: cap_f,
                    cap_x,
                };
                proof
                    .verify(&ctx, &st)
                    .map_err(|e| abort_with(2, j, proof_reason(&e), &d.payload))?;
            }
            let Some([sent, sent_hat]) = self.sent[j.as_usize()].as_ref() else {
                return Err(self.bug("sent affine operations missing"));
            };
            for (c, sent, acc) in [
                (&v.cap_d, sent, &mut delta),
                (&v.cap_d_hat, sent_hat, &mut chi),
            ] {
                let ct = own_view
                    .ciphertext(c.clone())
                    .map_err(|_| self.bug("unit checked above"))?;
                // blinded: D comes from the peer (audits/bigint-timing.md, decryption row)
                let alpha = SecretInt::new(sk.decrypt_blinded(&mut &mut *rng, &ct));
                if !in_signed_bits(alpha.expose(), bound_bits) {
                    return Err(abort_with(
                        2,
                        j,
                        AbortReason::DecryptionOutOfRange,
                        &d.payload,
                    ));
                }
                // β_{i,j} = −y_{i,j}: the sender's additive share of k_j·γ_i
                **acc += scalar_from_int(alpha.expose()) - scalar_from_int(sent.y.expose());
            }
            cap_gamma += b.value.cap_gamma;
        }
        self.cap_gamma = cap_gamma;
        let cap_delta = cap_gamma * *self.nonces.k;
        #[allow(unused_mut)]
        let mut cap_s = cap_gamma * *chi;
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.chi_off_by_one {
            cap_s += cap_gamma;
        }
        let st = ElogStatement {
            cap_l: &self.own_r1.cap_a[0],
            cap_m: &self.own_r1.cap_a[1],
            cap_x: &self.own_r1.cap_y,
            cap_y: &cap_delta,
            h: &cap_gamma,
        };
        let wit = ElogWitness {
            y: &self.nonces.k,
            lambda: &self.nonces.a,
        };
        let psi = ElogProof::prove(&mut &mut *rng, &self.ctx(self.me), &st, &wit)
            .map_err(|_| self.bug("Πelog of Δ_i"))?;
        #[allow(unused_mut)]
        let mut delta_sent = *delta;
        #[cfg(any(test, feature = "test-fixtures"))]
        if self.faults.delta_off_by_one {
            delta_sent += Scalar::ONE;
        }
        let echo = self.r2.echo(PROTOCOL, &self.ssid);
        self.life.enter(3, echo.clone());
        let msg = Round3Broadcast {
            echo,
            delta: delta_sent,
            cap_delta,
            cap_s,
            psi,
        };
        let payload = msg.to_bytes();
        self.r3.insert_own_broadcast(payload.clone(), msg);
        self.chi = Some(chi);
        Ok(vec![self.broadcast(payload)])
    }
}

impl PresignParty {
    /// Round 3 closes: Πelog of each Δ_j (PRE-03), then δ·G = Σ Δ_j and Σ S_j = δ·X (PRE-04);
    /// R = δ⁻¹·Γ.
    fn close_r3(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Closed<Presignature>, Abort> {
        self.life.missing(self.r3.missing())?;
        self.life.note_conflicts(&self.r3, false);
        let mut delta = Scalar::ZERO;
        let mut sum_delta = ProjectivePoint::IDENTITY;
        let mut sum_s = ProjectivePoint::IDENTITY;
        let mut cap_deltas = Vec::with_capacity(self.cfg.signers.len());
        let mut cap_ss = Vec::with_capacity(self.cfg.signers.len());
        let mut tr = Transcript::new(PROTOCOL);
        tr.append_bytes(b"ssid", &self.ssid);
        for &j in &self.cfg.signers {
            let (Some(r1), Some(r3)) = (self.r1_for(j), self.r3.broadcast(j)) else {
                return Err(self.bug("round-3 message missing after completion"));
            };
            let v = &r3.value;
            if j != self.me {
                let st = ElogStatement {
                    cap_l: &r1.cap_a[0],
                    cap_m: &r1.cap_a[1],
                    cap_x: &r1.cap_y,
                    cap_y: &v.cap_delta,
                    h: &self.cap_gamma,
                };
                v.psi
                    .verify(&self.ctx(j), &st)
                    .map_err(|e| abort_with(3, j, proof_reason(&e), &r3.payload))?;
            }
            tr.append_bytes(b"round-3 broadcast", &r3.payload);
            delta += v.delta;
            sum_delta += v.cap_delta;
            sum_s += v.cap_s;
            cap_deltas.push(v.cap_delta);
            cap_ss.push(v.cap_s);
        }
        let g = ProjectivePoint::GENERATOR;
        let delta_bad = g * delta != sum_delta;
        let chi_bad = sum_s != self.public_key * delta;
        if delta_bad || chi_bad {
            // Fig. 9: identification instead of an abort without a culprit
            return self
                .identification(rng, delta_bad, chi_bad)
                .map(Closed::Next);
        }
        let delta_inv = Option::<Scalar>::from(delta.invert())
            .ok_or_else(|| self.bug("δ = 0 with consistent Δ_j (probability 2^-256)"))?;
        let cap_r = self.cap_gamma * delta_inv;
        if bool::from(cap_r.is_identity()) {
            return Err(self.bug("R is the identity (probability 2^-256)"));
        }
        let chi = self.chi.take().ok_or_else(|| self.bug("χ_i missing"))?;
        Ok(Closed::Done(Presignature {
            session_id: self.cfg.session_id.clone(),
            me: self.me,
            k: self.nonces.k.clone(),
            chi,
            public: PresignaturePublic {
                ssid: self.ssid,
                transcript: digest(&tr),
                signers: self.cfg.signers.clone(),
                path: self.cfg.path.clone(),
                epoch: self.cfg.epoch,
                key_id: self.cfg.key_id.clone(),
                public_key: self.public_key,
                cap_r,
                cap_gamma: self.cap_gamma,
                cap_deltas,
                cap_ss,
            },
        }))
    }

    /// The round-1 broadcast of j (our own for j = me).
    fn r1_for(&self, j: PartyIndex) -> Option<&Round1Broadcast> {
        if j == self.me {
            Some(&self.own_r1)
        } else {
            self.r1.broadcast(j).map(|r| &r.value)
        }
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
                Round1Broadcast::from_bytes,
                Round1Direct::from_bytes,
            )
            .map(|_| ()),
            2 => accept_echoed(
                &mut self.life,
                &mut self.r2,
                msg,
                max_b,
                max_d,
                |b| Round2Broadcast::from_bytes(b, m),
                Round2Direct::from_bytes,
                |v| &v.echo,
            ),
            3 => accept_echoed(
                &mut self.life,
                &mut self.r3,
                msg,
                max_b,
                max_d,
                |b| Round3Broadcast::from_bytes(b, m),
                no_direct,
                |v| &v.echo,
            ),
            _ => accept_echoed(
                &mut self.life,
                &mut self.r4,
                msg,
                max_b,
                max_d,
                |b| Round4Identify::from_bytes(b, m),
                no_direct,
                |v| &v.echo,
            ),
        }
    }
}

impl PresignParty {
    /// The X of side 0 (δ: Γ_j) or 1 (χ: W_j) for signer j.
    fn side_x(&self, side: usize, j: PartyIndex) -> Option<ProjectivePoint> {
        if side == 1 {
            return self.cap_w.get(j.as_usize()).copied();
        }
        if j == self.me {
            Some(self.cap_gamma_own)
        } else {
            self.r2.broadcast(j).map(|r| r.value.cap_gamma)
        }
    }

    /// Fig. 9 (§4.3.1): reveal the affine operations this party sent, each with a setup-less
    /// Πaff-g*, and prove with Πdec that its own δ_i (or χ_i) is the decryption of
    /// K_i^x·Π_j D_{j→i}·F_{i→j}⁻¹.
    fn identification(
        &mut self,
        rng: &mut dyn CryptoRngCore,
        delta_bad: bool,
        chi_bad: bool,
    ) -> Result<Vec<Outgoing>, Abort> {
        self.failed = (delta_bad, chi_bad);
        let sk = self.aux.paillier_secret();
        let own_pk = sk.public();
        let nn = own_pk.n_squared();
        let ctx = self.ctx(self.me);
        let mut sides: [Option<IdentifySide>; 2] = [None, None];
        for (side, wanted) in [delta_bad, chi_bad].into_iter().enumerate() {
            if !wanted {
                continue;
            }
            let x_scalar = if side == 0 {
                &self.nonces.gamma
            } else {
                &self.w
            };
            let x_int = SecretInt::new(int_from_scalar(x_scalar));
            let cap_x = self
                .side_x(side, self.me)
                .ok_or_else(|| self.bug("own X missing"))?;
            let mut sent = Vec::new();
            let mut agg = BigUint::from(1u32);
            for j in self.peers() {
                let (Some(peer), Some(r1), Some(d), Some(ops)) = (
                    self.aux.party(j),
                    self.r1.broadcast(j),
                    self.r2.direct(j),
                    self.sent[j.as_usize()].as_ref(),
                ) else {
                    return Err(self.bug("identification data missing"));
                };
                let op = &ops[side];
                let st = AffGStarStatement {
                    n0: &peer.paillier,
                    n1: own_pk,
                    cap_c: &r1.value.cap_k,
                    cap_d: &op.cap_d,
                    cap_y: &op.cap_f,
                    cap_x: &cap_x,
                };
                let wit = AffGStarWitness {
                    x: x_int.expose(),
                    y: op.y.expose(),
                    rho: op.s.expose(),
                    mu: op.r.expose(),
                    prover_key: sk,
                };
                let proof = AffGStarProof::prove(&mut &mut *rng, &ctx, &st, &wit)
                    .map_err(|_| self.bug("Πaff-g* of our own affine operation"))?;
                sent.push(RevealedAffine {
                    to: j.get(),
                    cap_d: op.cap_d.clone(),
                    cap_f: op.cap_f.clone(),
                    proof,
                });
                // D_{j→i}·F_{i→j}⁻¹
                let received = if side == 0 {
                    &d.value.cap_d
                } else {
                    &d.value.cap_d_hat
                };
                let f_inv = crate::arith::mod_inverse(&op.cap_f, nn)
                    .ok_or_else(|| self.bug("F is a unit"))?;
                agg = agg * received % nn * f_inv % nn;
            }
            // K_i^x·agg decrypts to y; ρ recovered by the owner
            let k_x = sk.pow_mod_n2(&self.own_r1.cap_k, x_int.expose());
            let total = own_pk
                .ciphertext(k_x * &agg % nn)
                .map_err(|_| self.bug("aggregate is a unit"))?;
            // blinded: the aggregate is built from peers' ciphertexts (audits/bigint-timing.md)
            let (y, rho) = sk.decrypt_and_recover_blinded(&mut &mut *rng, &total);
            let y = SecretInt::new(y);
            let base = if side == 0 {
                ProjectivePoint::GENERATOR
            } else {
                self.cap_gamma
            };
            let cap_s = base * scalar_from_int(y.expose());
            let st = DecStatement {
                n: own_pk,
                cap_k: &self.own_r1.cap_k,
                cap_d: &agg,
                cap_x: &cap_x,
                cap_s: &cap_s,
                gamma: &base,
            };
            let wit = DecWitness {
                x: x_int.expose(),
                y: y.expose(),
                rho: rho.expose(),
                prover_key: sk,
            };
            let dec = DecProof::prove(&mut &mut *rng, &ctx, &st, &wit)
                .map_err(|_| self.bug("Πdec of our own aggregate"))?;
            sides[side] = Some(IdentifySide { sent, dec });
        }
        let echo = self.r3.echo(PROTOCOL, &self.ssid);
        self.life.enter(4, echo.clone());
        let [delta, chi] = sides;
        let msg = Round4Identify { echo, delta, chi };
        let payload = msg.to_bytes();
        self.r4.insert_own_broadcast(payload.clone(), msg);
        Ok(vec![self.broadcast(payload)])
    }

    /// Round 4 closes: check every peer's identification material; the parties whose
    /// Πaff-g* or Πdec fails (or that revealed another D than we received) are the culprits.
    fn close_r4(&mut self) -> Result<Presignature, Abort> {
        self.life.missing(self.r4.missing())?;
        self.life.note_conflicts(&self.r4, false);
        let mut culprits: Vec<PartyIndex> = Vec::new();
        let mut first: Option<Abort> = None;
        let failed = [self.failed.0, self.failed.1];
        for i in self.peers() {
            let (Some(msg), Some(pi), Some(r1), Some(r3)) = (
                self.r4.broadcast(i),
                self.aux.party(i),
                self.r1.broadcast(i),
                self.r3.broadcast(i),
            ) else {
                return Err(self.bug("round-4 data missing after completion"));
            };
            let ctx = self.ctx(i);
            let mut fault: Option<AbortReason> = None;
            for (side, wanted) in failed.into_iter().enumerate() {
                if !wanted || fault.is_some() {
                    continue;
                }
                let material = if side == 0 {
                    &msg.value.delta
                } else {
                    &msg.value.chi
                };
                let Some(material) = material else {
                    fault = Some(AbortReason::MissingMessage);
                    continue;
                };
                let cap_x = self.side_x(side, i).unwrap_or(ProjectivePoint::IDENTITY);
                let others: Vec<PartyIndex> = self
                    .cfg
                    .signers
                    .iter()
                    .copied()
                    .filter(|&j| j != i)
                    .collect();
                if material.sent.len() != others.len()
                    || material
                        .sent
                        .iter()
                        .zip(&others)
                        .any(|(a, j)| a.to != j.get())
                {
                    fault = Some(AbortReason::InvalidCiphertext);
                    continue;
                }
                let nn_i = pi.paillier.n_squared();
                let mut agg = BigUint::from(1u32);
                for (a, &j) in material.sent.iter().zip(&others) {
                    let (Some(pj), Some(c_j)) = (self.aux.party(j), self.r1_for(j)) else {
                        return Err(self.bug("signer data missing"));
                    };
                    // what we received from i must be what i reveals
                    if j == self.me {
                        let got = self.r2.direct(i).map(|d| {
                            if side == 0 {
                                (&d.value.cap_d, &d.value.cap_f)
                            } else {
                                (&d.value.cap_d_hat, &d.value.cap_f_hat)
                            }
                        });
                        if got != Some((&a.cap_d, &a.cap_f)) {
                            fault = Some(AbortReason::InvalidCiphertext);
                            break;
                        }
                    }
                    let st = AffGStarStatement {
                        n0: &pj.paillier,
                        n1: &pi.paillier,
                        cap_c: &c_j.cap_k,
                        cap_d: &a.cap_d,
                        cap_y: &a.cap_f,
                        cap_x: &cap_x,
                    };
                    if let Err(e) = a.proof.verify(&ctx, &st) {
                        fault = Some(proof_reason(&e));
                        break;
                    }
                    // D_{j→i}: revealed by j (ours, for j = me)
                    let d_ji = match self.revealed_d(side, j, i) {
                        Some(d) => d,
                        None => {
                            fault = Some(AbortReason::Bug("peer's revealed D missing"));
                            break;
                        }
                    };
                    let Some(f_inv) = crate::arith::mod_inverse(&a.cap_f, nn_i) else {
                        fault = Some(AbortReason::InvalidCiphertext);
                        break;
                    };
                    agg = agg * d_ji % nn_i * f_inv % nn_i;
                }
                if fault.is_some() {
                    continue;
                }
                let (base, cap_s) = if side == 0 {
                    (
                        ProjectivePoint::GENERATOR,
                        ProjectivePoint::GENERATOR * r3.value.delta,
                    )
                } else {
                    (self.cap_gamma, r3.value.cap_s)
                };
                let st = DecStatement {
                    n: &pi.paillier,
                    cap_k: &r1.value.cap_k,
                    cap_d: &agg,
                    cap_x: &cap_x,
                    cap_s: &cap_s,
                    gamma: &base,
                };
                if let Err(e) = material.dec.verify(&ctx, &st) {
                    fault = Some(proof_reason(&e));
                }
            }
            if let Some(reason) = fault {
                culprits.push(i);
                if first.is_none() {
                    first = Some(abort_with(4, i, reason, &msg.payload));
                }
            }
        }
        match first {
            Some(mut abort) => {
                abort.culprits = culprits;
                Err(abort)
            }
            None => Err(Abort {
                round: 4,
                culprits: Vec::new(),
                reason: AbortReason::PresignInconsistent,
                evidence: Evidence::None,
            }),
        }
    }

    /// D_{j→i} of `side` as revealed by j in round 4 (our own for j = me).
    fn revealed_d(&self, side: usize, j: PartyIndex, i: PartyIndex) -> Option<BigUint> {
        if j == self.me {
            return self.sent[i.as_usize()]
                .as_ref()
                .map(|ops| ops[side].cap_d.clone());
        }
        let msg = self.r4.broadcast(j)?;
        let material = if side == 0 {
            &msg.value.delta
        } else {
            &msg.value.chi
        };
        material
            .as_ref()?
            .sent
            .iter()
            .find(|a| a.to == i.get())
            .map(|a| a.cap_d.clone())
    }
}

impl RoundBased for PresignParty {
    type Output = Presignature;

    fn index(&self) -> PartyIndex {
        self.me
    }

    fn life(&self) -> &Lifecycle {
        &self.life
    }

    fn lifecycle(&mut self) -> &mut Lifecycle {
        &mut self.life
    }

    /// Round 1: K_i, G_i and the El-Gamal commitments to all, Πenc-elg to each peer.
    fn first_round(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Vec<Outgoing>, Abort> {
        let out = self.round1_messages(rng)?;
        let payload = self.own_r1.to_bytes();
        self.r1.insert_own_broadcast(payload, self.own_r1.clone());
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

    fn close_round(&mut self, rng: &mut dyn CryptoRngCore) -> Result<Closed<Presignature>, Abort> {
        match self.life.round {
            1 => self.close_r1(rng).map(Closed::Next),
            2 => self.close_r2(rng).map(Closed::Next),
            3 => self.close_r3(rng),
            _ => self.close_r4().map(Closed::Done),
        }
    }
}

#[cfg(test)]
mod tests;
