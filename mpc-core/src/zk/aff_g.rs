//! Πaff-g — Paillier affine operation with group commitment in range (CGGMP24 Fig. 25).
//!
//! Setup: N0 is the *verifier's* Paillier modulus, N1 the *prover's* Paillier modulus, and
//! (N̂, s, t) the *verifier's* ring-Pedersen parameters.
//!
//! Statement: C, D ∈ Z*_{N0²}, Y ∈ Z*_{N1²}, X ∈ G. Witness: x ∈ ±2^ℓ, y ∈ ±2^ℓ', ρ ∈ Z*_{N0},
//! ρ_y ∈ Z*_{N1} with
//! D = C^x·enc_{N0}(y; ρ) mod N0², Y = enc_{N1}(y; ρ_y) mod N1², X = x·G,
//! where enc_N(m; ρ) = (1 + N)^m·ρ^N mod N².
//!
//! 1. Prover samples α ← ±2^{ℓ+ε}, β ← ±2^{ℓ'+ε}, r ← Z*_{N0}, r_y ← Z*_{N1},
//!    γ, δ ← ±2^{ℓ+ε}·N̂, m, μ ← ±2^ℓ·N̂ and sends
//!    A = C^α·enc_{N0}(β; r) mod N0², B_x = α·G, B_y = enc_{N1}(β; r_y) mod N1²,
//!    E = s^α t^γ, S = s^x t^m, F = s^β t^δ, T = s^y t^μ mod N̂.
//! 2. Challenge e ← ±q = H(context, N0, N1, N̂, s, t, C, D, Y, X, A, B_x, B_y, E, S, F, T)
//!    (Fiat–Shamir, every field tagged).
//! 3. Prover sends z1 = α + e·x, z2 = β + e·y, z3 = γ + e·m, z4 = δ + e·μ,
//!    w = r·ρ^e mod N0, w_y = r_y·ρ_y^e mod N1.
//!
//! Verifier, cheap checks first (AUX-04):
//! - statement: C, D units mod N0², Y unit mod N1² (kind `Statement`);
//! - ranges: z1 ∈ ±2^{ℓ+ε}, z2 ∈ ±2^{ℓ'+ε}, |z3| ≤ 2^{ℓ+ε+1}·N̂, |z4| ≤ 2^{ℓ+ε+1}·N̂;
//! - units: A unit mod N0², B_y unit mod N1², E, S, F, T units mod N̂, w unit mod N0,
//!   w_y unit mod N1;
//!
//! then the challenge and the equations:
//! - z1·G = B_x + e·X (e and z1 reduced mod q);
//! - s^{z1} t^{z3} = E·S^e mod N̂ and s^{z2} t^{z4} = F·T^e mod N̂;
//! - C^{z1}·enc_{N0}(z2; w) = A·D^e mod N0²;
//! - enc_{N1}(z2; w_y) = B_y·Y^e mod N1².
//!
//! ## The caps on z3 and z4
//! Fig. 25 does not bound z3 and z4. We refuse |z3|, |z4| > 2^{ℓ+ε+1}·N̂ so that a verifier never
//! exponentiates with an attacker-sized exponent (and so the encoding has a cap). Honest values
//! always fit: |z3| ≤ |γ| + |e|·|m| ≤ 2^{ℓ+ε}·N̂ + q·2^ℓ·N̂ < 2^{ℓ+ε}·N̂ + 2^{2ℓ}·N̂ ≤ 2^{ℓ+ε+1}·N̂
//! because q < 2^ℓ and ℓ ≤ ε; z4 = δ + e·μ has the same bound, since T = s^y t^μ draws its mask μ
//! from ±2^ℓ·N̂ (the width of m), not from ±2^ℓ'·N̂ — y's own size only enters z2.
//!
//! ## Use in presigning
//! In Fig. 8, P_i sends D_{j,i} = (γ_i ⊙ K_j) ⊕ enc_j(−β_{i,j}) and F_{j,i} = enc_i(β_{i,j}) and
//! keeps β_{i,j} as its additive share, so the plaintexts of D and F differ in sign, while the
//! relation of Fig. 25 has the same +y in both. We keep the figure's relation. The protocol
//! samples β' ← ±2^ℓ', sends D_{j,i} = (γ_i ⊙ K_j) ⊕ enc_j(β') and F_{j,i} = enc_i(β'), and keeps
//! −β' as its additive share (β_{i,j} = −β'); the proof then has y := β' and needs no deviation
//! from the figure.

use alloc::vec::Vec;
use core::fmt;

use k256::ProjectivePoint;
use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_traits::Zero;
use rand_core::CryptoRngCore;

use super::{ensure, tags, FailureKind, ProofContext, ProofError};
use crate::arith::{
    in_signed_bits, in_signed_range, is_unit_mod, mod_pow_signed, random_signed_bits,
    random_signed_range, scalar_from_int, SecretInt,
};
use crate::encoding::{DecodeError, Reader, Writer};
use crate::paillier::{PaillierPublicKey, PaillierSecretKey};
use crate::params::{
    ELL, ELL_PRIME, EPSILON, MAX_MODULUS_BITS, MAX_MODULUS_BYTES, MAX_MODULUS_SQ_BYTES,
};
use crate::ring_pedersen::RingPedersenParams;

const PROOF: &str = "Πaff-g (Fig. 25)";
const LABEL: &[u8] = b"cggmp24/pi-aff-g/fig25";

// The checks, as reported in `ProofError::check`.
const CHECK_C: &str = "C unit mod N0²";
const CHECK_D: &str = "D unit mod N0²";
const CHECK_Y: &str = "Y unit mod N1²";
const CHECK_Z1_RANGE: &str = "z1 ∈ ±2^{ℓ+ε}";
const CHECK_Z2_RANGE: &str = "z2 ∈ ±2^{ℓ'+ε}";
const CHECK_Z3_RANGE: &str = "|z3| ≤ 2^{ℓ+ε+1}·N̂";
const CHECK_Z4_RANGE: &str = "|z4| ≤ 2^{ℓ+ε+1}·N̂";
const CHECK_A_UNIT: &str = "A unit mod N0²";
const CHECK_BY_UNIT: &str = "B_y unit mod N1²";
const CHECK_E_UNIT: &str = "E unit mod N̂";
const CHECK_S_UNIT: &str = "S unit mod N̂";
const CHECK_F_UNIT: &str = "F unit mod N̂";
const CHECK_T_UNIT: &str = "T unit mod N̂";
const CHECK_W_UNIT: &str = "w unit mod N0";
const CHECK_WY_UNIT: &str = "w_y unit mod N1";
const CHECK_EQ_GROUP: &str = "z1·G = B_x + e·X";
const CHECK_EQ_RP_X: &str = "s^{z1} t^{z3} = E·S^e mod N̂";
const CHECK_EQ_RP_Y: &str = "s^{z2} t^{z4} = F·T^e mod N̂";
const CHECK_EQ_N0: &str = "C^{z1}·enc_{N0}(z2; w) = A·D^e mod N0²";
const CHECK_EQ_N1: &str = "enc_{N1}(z2; w_y) = B_y·Y^e mod N1²";

/// Bytes of the magnitude of a value in ±2^bits.
const fn signed_cap_bytes(bits: u32) -> usize {
    (bits as usize + 1).div_ceil(8)
}
/// Encoding cap of z1 ∈ ±2^{ℓ+ε}.
const Z1_CAP_BYTES: usize = signed_cap_bytes(ELL + EPSILON);
/// Encoding cap of z2 ∈ ±2^{ℓ'+ε}.
const Z2_CAP_BYTES: usize = signed_cap_bytes(ELL_PRIME + EPSILON);
/// Encoding cap of z3, z4 with |z| ≤ 2^{ℓ+ε+1}·N̂ < 2^{ℓ+ε+1+MAX_MODULUS_BITS}.
const Z34_CAP_BYTES: usize =
    (ELL as usize + EPSILON as usize + 1 + MAX_MODULUS_BITS as usize).div_ceil(8);

/// Public input of Πaff-g.
#[derive(Clone, Copy, Debug)]
pub struct AffGStatement<'a> {
    /// N0: the verifier's Paillier key.
    pub n0: &'a PaillierPublicKey,
    /// N1: the prover's Paillier key.
    pub n1: &'a PaillierPublicKey,
    /// (N̂, s, t): the verifier's ring-Pedersen parameters.
    pub rp: &'a RingPedersenParams,
    /// C ∈ Z*_{N0²}.
    pub cap_c: &'a BigUint,
    /// D = C^x·enc_{N0}(y; ρ) mod N0².
    pub cap_d: &'a BigUint,
    /// Y = enc_{N1}(y; ρ_y) mod N1².
    pub cap_y: &'a BigUint,
    /// X = x·G.
    pub cap_x: &'a ProjectivePoint,
}

/// Secret input of Πaff-g.
pub struct AffGWitness<'a> {
    /// x ∈ ±2^ℓ.
    pub x: &'a BigInt,
    /// y ∈ ±2^ℓ'.
    pub y: &'a BigInt,
    /// ρ ∈ Z*_{N0}, the randomness of enc_{N0}(y; ρ) in D.
    pub rho: &'a BigUint,
    /// ρ_y ∈ Z*_{N1}, the randomness of Y.
    pub rho_y: &'a BigUint,
    /// The prover's Paillier secret key for N1 (CRT exponentiation for B_y).
    pub prover_key: &'a PaillierSecretKey,
}

impl fmt::Debug for AffGWitness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AffGWitness(<redacted>)")
    }
}

/// A Πaff-g proof: first message (A, B_x, B_y, E, S, F, T) and response (z1..z4, w, w_y).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffGProof {
    /// A = C^α·enc_{N0}(β; r) mod N0².
    pub cap_a: BigUint,
    /// B_x = α·G.
    pub cap_b_x: ProjectivePoint,
    /// B_y = enc_{N1}(β; r_y) mod N1².
    pub cap_b_y: BigUint,
    /// E = s^α t^γ mod N̂.
    pub cap_e: BigUint,
    /// S = s^x t^m mod N̂.
    pub cap_s: BigUint,
    /// F = s^β t^δ mod N̂.
    pub cap_f: BigUint,
    /// T = s^y t^μ mod N̂.
    pub cap_t: BigUint,
    /// z1 = α + e·x ∈ ±2^{ℓ+ε}.
    pub z1: BigInt,
    /// z2 = β + e·y ∈ ±2^{ℓ'+ε}.
    pub z2: BigInt,
    /// z3 = γ + e·m, |z3| ≤ 2^{ℓ+ε+1}·N̂.
    pub z3: BigInt,
    /// z4 = δ + e·μ, |z4| ≤ 2^{ℓ+ε+1}·N̂.
    pub z4: BigInt,
    /// w = r·ρ^e mod N0.
    pub w: BigUint,
    /// w_y = r_y·ρ_y^e mod N1.
    pub w_y: BigUint,
}

/// The challenge e ∈ ±q over the context, every public input and the first message of `proof`
/// (its response fields are not read).
fn challenge(ctx: &ProofContext<'_>, st: &AffGStatement<'_>, proof: &AffGProof) -> BigInt {
    let mut t = ctx.transcript(LABEL);
    t.append_uint(b"N0", st.n0.n());
    t.append_uint(b"N1", st.n1.n());
    t.append_uint(b"Nhat", st.rp.n());
    t.append_uint(b"s", st.rp.s());
    t.append_uint(b"t", st.rp.t());
    t.append_uint(b"C", st.cap_c);
    t.append_uint(b"D", st.cap_d);
    t.append_uint(b"Y", st.cap_y);
    t.append_point(b"X", st.cap_x);
    t.append_uint(b"A", &proof.cap_a);
    t.append_point(b"B_x", &proof.cap_b_x);
    t.append_uint(b"B_y", &proof.cap_b_y);
    t.append_uint(b"E", &proof.cap_e);
    t.append_uint(b"S", &proof.cap_s);
    t.append_uint(b"F", &proof.cap_f);
    t.append_uint(b"T", &proof.cap_t);
    t.challenge_signed_q(b"e")
}

/// True when c is a unit of Z*_{N²} for the key `pk` (0 < c < N², gcd(c, N) = 1).
fn is_ciphertext(pk: &PaillierPublicKey, c: &BigUint) -> bool {
    pk.ciphertext(c.clone()).is_ok()
}

/// base^exp mod m for a signed exponent; fails (as `kind`/`check`) only if base is not a unit.
fn pow(
    base: &BigUint,
    exp: &BigInt,
    m: &BigUint,
    kind: FailureKind,
    check: &'static str,
) -> Result<BigUint, ProofError> {
    mod_pow_signed(base, exp, m).ok_or(ProofError::new(PROOF, kind, check))
}

/// base^exp mod N² under `key` (CRT when `key` is the owner's view); fails (as `kind`/`check`)
/// only if exp < 0 and base is not a unit.
fn pow_n2(
    key: &PaillierPublicKey,
    base: &BigUint,
    exp: &BigInt,
    kind: FailureKind,
    check: &'static str,
) -> Result<BigUint, ProofError> {
    key.pow_n2(base, exp)
        .ok_or(ProofError::new(PROOF, kind, check))
}

/// The bound 2^{ℓ+ε+1}·N̂ on |z3| and |z4|.
fn z34_bound(rp: &RingPedersenParams) -> BigUint {
    rp.n() << (ELL + EPSILON + 1)
}

impl AffGProof {
    /// Proves the relation for `st` after checking that `w` satisfies it (kind `Witness`
    /// otherwise; kind `Statement` if C, D or Y is not a unit).
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &AffGStatement<'_>,
        w: &AffGWitness<'_>,
    ) -> Result<Self, ProofError> {
        Self::check_witness_cheaply(st, w)?;
        let n0 = st.n0;
        let y_enc = w
            .prover_key
            .encrypt_with_nonce(w.y, w.rho_y)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "ρ_y unit mod N1"))?;
        ensure(
            y_enc.as_uint() == st.cap_y,
            PROOF,
            FailureKind::Witness,
            "Y = enc_{N1}(y; ρ_y)",
        )?;
        let c_x = pow_n2(n0, st.cap_c, w.x, FailureKind::Statement, CHECK_C)?;
        let enc_y = n0
            .encrypt_with_nonce(w.y, w.rho)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, "ρ unit mod N0"))?;
        ensure(
            &(c_x * enc_y.as_uint() % n0.n_squared()) == st.cap_d,
            PROOF,
            FailureKind::Witness,
            "D = C^x·enc_{N0}(y; ρ)",
        )?;
        Self::prove_unchecked(rng, ctx, st, w)
    }

    /// Proves the relation for a statement the caller has just *computed* from this witness
    /// (D = C^x·enc_{N0}(y; ρ) and Y = enc_{N1}(y; ρ_y) built by the caller with exactly these
    /// values, as presigning does): the cheap witness checks (ranges, units, X = x·G) are made,
    /// the two re-encryptions that [`Self::prove`] uses to re-check D and Y are not (one
    /// exponentiation with the verifier's N0 and one CRT encryption saved per proof).
    pub(crate) fn prove_for_computed_statement(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &AffGStatement<'_>,
        w: &AffGWitness<'_>,
    ) -> Result<Self, ProofError> {
        Self::check_witness_cheaply(st, w)?;
        Self::prove_unchecked(rng, ctx, st, w)
    }

    /// Statement units, prover key, ranges of x and y, units ρ and ρ_y, X = x·G.
    fn check_witness_cheaply(
        st: &AffGStatement<'_>,
        w: &AffGWitness<'_>,
    ) -> Result<(), ProofError> {
        check_statement(st)?;
        ensure(
            w.prover_key.public() == st.n1,
            PROOF,
            FailureKind::Witness,
            "prover key is N1",
        )?;
        ensure(
            in_signed_bits(w.x, u64::from(ELL)),
            PROOF,
            FailureKind::Witness,
            "x ∈ ±2^ℓ",
        )?;
        ensure(
            in_signed_bits(w.y, u64::from(ELL_PRIME)),
            PROOF,
            FailureKind::Witness,
            "y ∈ ±2^ℓ'",
        )?;
        ensure(
            is_unit_mod(w.rho, st.n0.n()),
            PROOF,
            FailureKind::Witness,
            "ρ unit mod N0",
        )?;
        ensure(
            is_unit_mod(w.rho_y, st.n1.n()),
            PROOF,
            FailureKind::Witness,
            "ρ_y unit mod N1",
        )?;
        ensure(
            ProjectivePoint::GENERATOR * scalar_from_int(w.x) == *st.cap_x,
            PROOF,
            FailureKind::Witness,
            "X = x·G",
        )
    }

    /// The prover's computation without the witness checks (a test uses it as a cheating prover).
    fn prove_unchecked(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &AffGStatement<'_>,
        w: &AffGWitness<'_>,
    ) -> Result<Self, ProofError> {
        let (n0, rp) = (st.n0, st.rp);
        let wide = rp.n() << (ELL + EPSILON);
        let narrow = rp.n() << ELL;
        let alpha = SecretInt::new(random_signed_bits(rng, u64::from(ELL + EPSILON)));
        let beta = SecretInt::new(random_signed_bits(rng, u64::from(ELL_PRIME + EPSILON)));
        // fresh randomness from the verifier's key's and our own nonce tables (paillier_nonce)
        let r = n0.fresh_nonce(rng);
        let r_y = w.prover_key.fresh_nonce(rng);
        let gamma = SecretInt::new(random_signed_range(rng, &wide));
        let delta = SecretInt::new(random_signed_range(rng, &wide));
        let m = SecretInt::new(random_signed_range(rng, &narrow));
        let mu = SecretInt::new(random_signed_range(rng, &narrow));

        // A = C^α·enc_{N0}(β; r) mod N0² (the verifier's key: no CRT).
        let c_alpha = pow_n2(
            n0,
            st.cap_c,
            alpha.expose(),
            FailureKind::Statement,
            CHECK_C,
        )?;
        let enc_beta = n0.encrypt_fresh(beta.expose(), &r);
        let cap_a = c_alpha * enc_beta.as_uint() % n0.n_squared();
        // B_y = enc_{N1}(β; r_y) with the prover's CRT.
        let cap_b_y = w.prover_key.encrypt_fresh(beta.expose(), &r_y);
        let mut proof = Self {
            cap_a,
            cap_b_x: ProjectivePoint::GENERATOR * scalar_from_int(alpha.expose()),
            cap_b_y: cap_b_y.as_uint().clone(),
            cap_e: rp.commit(alpha.expose(), gamma.expose()),
            cap_s: rp.commit(w.x, m.expose()),
            cap_f: rp.commit(beta.expose(), delta.expose()),
            cap_t: rp.commit(w.y, mu.expose()),
            z1: BigInt::zero(),
            z2: BigInt::zero(),
            z3: BigInt::zero(),
            z4: BigInt::zero(),
            w: BigUint::zero(),
            w_y: BigUint::zero(),
        };
        let e = challenge(ctx, st, &proof);
        proof.z1 = alpha.expose() + &e * w.x;
        proof.z2 = beta.expose() + &e * w.y;
        proof.z3 = gamma.expose() + &e * m.expose();
        proof.z4 = delta.expose() + &e * mu.expose();
        let rho_e = pow(w.rho, &e, n0.n(), FailureKind::Witness, "ρ unit mod N0")?;
        proof.w = r.expose() * rho_e % n0.n();
        // ρ_y^e mod N1 by the CRT: ρ_y is a unit, so e may be reduced mod φ(N1) to be ≥ 0.
        let sk = w.prover_key;
        let e_mod_phi = e
            .mod_floor(&BigInt::from(sk.phi().clone()))
            .magnitude()
            .clone();
        proof.w_y = r_y.expose() * sk.pow_mod_n(w.rho_y, &e_mod_phi) % st.n1.n();
        Ok(proof)
    }

    /// Verifies the proof: sizes, ranges and units first, then the challenge and the five
    /// equations (see the module documentation).
    pub fn verify(&self, ctx: &ProofContext<'_>, st: &AffGStatement<'_>) -> Result<(), ProofError> {
        check_statement(st)?;
        self.check_ranges_and_units(st)?;
        let e = challenge(ctx, st, self);
        self.check_equations(st, &e)
    }

    /// The cheap checks of the proof values (AUX-04).
    fn check_ranges_and_units(&self, st: &AffGStatement<'_>) -> Result<(), ProofError> {
        let (n0, n1, rp) = (st.n0, st.n1, st.rp);
        let bound = z34_bound(rp);
        ensure(
            in_signed_bits(&self.z1, u64::from(ELL + EPSILON)),
            PROOF,
            FailureKind::Range,
            CHECK_Z1_RANGE,
        )?;
        ensure(
            in_signed_bits(&self.z2, u64::from(ELL_PRIME + EPSILON)),
            PROOF,
            FailureKind::Range,
            CHECK_Z2_RANGE,
        )?;
        ensure(
            in_signed_range(&self.z3, &bound),
            PROOF,
            FailureKind::Range,
            CHECK_Z3_RANGE,
        )?;
        ensure(
            in_signed_range(&self.z4, &bound),
            PROOF,
            FailureKind::Range,
            CHECK_Z4_RANGE,
        )?;
        ensure(
            is_ciphertext(n0, &self.cap_a),
            PROOF,
            FailureKind::Unit,
            CHECK_A_UNIT,
        )?;
        ensure(
            is_ciphertext(n1, &self.cap_b_y),
            PROOF,
            FailureKind::Unit,
            CHECK_BY_UNIT,
        )?;
        ensure(
            is_unit_mod(&self.cap_e, rp.n()),
            PROOF,
            FailureKind::Unit,
            CHECK_E_UNIT,
        )?;
        ensure(
            is_unit_mod(&self.cap_s, rp.n()),
            PROOF,
            FailureKind::Unit,
            CHECK_S_UNIT,
        )?;
        ensure(
            is_unit_mod(&self.cap_f, rp.n()),
            PROOF,
            FailureKind::Unit,
            CHECK_F_UNIT,
        )?;
        ensure(
            is_unit_mod(&self.cap_t, rp.n()),
            PROOF,
            FailureKind::Unit,
            CHECK_T_UNIT,
        )?;
        ensure(
            is_unit_mod(&self.w, n0.n()),
            PROOF,
            FailureKind::Unit,
            CHECK_W_UNIT,
        )?;
        ensure(
            is_unit_mod(&self.w_y, n1.n()),
            PROOF,
            FailureKind::Unit,
            CHECK_WY_UNIT,
        )
    }

    /// The verification equations for challenge e, cheapest first.
    fn check_equations(&self, st: &AffGStatement<'_>, e: &BigInt) -> Result<(), ProofError> {
        let (n0, n1, rp) = (st.n0, st.n1, st.rp);
        let e_q = scalar_from_int(e);
        let lhs = ProjectivePoint::GENERATOR * scalar_from_int(&self.z1);
        ensure(
            lhs == self.cap_b_x + *st.cap_x * e_q,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_GROUP,
        )?;

        let rhs = rp
            .mul_pow(&self.cap_e, &self.cap_s, e)
            .ok_or(ProofError::new(PROOF, FailureKind::Unit, CHECK_S_UNIT))?;
        ensure(
            rp.commit(&self.z1, &self.z3) == rhs,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_RP_X,
        )?;
        let rhs = rp
            .mul_pow(&self.cap_f, &self.cap_t, e)
            .ok_or(ProofError::new(PROOF, FailureKind::Unit, CHECK_T_UNIT))?;
        ensure(
            rp.commit(&self.z2, &self.z4) == rhs,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_RP_Y,
        )?;

        let nn0 = n0.n_squared();
        let enc = n0
            .encrypt_with_nonce(&self.z2, &self.w)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Unit, CHECK_W_UNIT))?;
        let lhs =
            pow_n2(n0, st.cap_c, &self.z1, FailureKind::Statement, CHECK_C)? * enc.as_uint() % nn0;
        let rhs = pow_n2(n0, st.cap_d, e, FailureKind::Statement, CHECK_D)? * &self.cap_a % nn0;
        ensure(lhs == rhs, PROOF, FailureKind::Equation, CHECK_EQ_N0)?;

        let nn1 = n1.n_squared();
        let lhs = n1
            .encrypt_with_nonce(&self.z2, &self.w_y)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Unit, CHECK_WY_UNIT))?;
        let rhs = pow_n2(n1, st.cap_y, e, FailureKind::Statement, CHECK_Y)? * &self.cap_b_y % nn1;
        ensure(
            lhs.as_uint() == &rhs,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_N1,
        )
    }

    /// Canonical encoding: tag, A, B_x, B_y, E, S, F, T, z1, z2, z3, z4, w, w_y.
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::AFF_G)
            .uint(&self.cap_a)
            .point(&self.cap_b_x)
            .uint(&self.cap_b_y)
            .uint(&self.cap_e)
            .uint(&self.cap_s)
            .uint(&self.cap_f)
            .uint(&self.cap_t)
            .int(&self.z1)
            .int(&self.z2)
            .int(&self.z3)
            .int(&self.z4)
            .uint(&self.w)
            .uint(&self.w_y)
            .finish()
    }

    /// Decodes the canonical encoding, rejecting anything else. Every length is capped
    /// (residues by the largest accepted modulus, responses by their range bound) before any
    /// allocation; values are range- and unit-checked by [`Self::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::AFF_G)?;
        let proof = Self {
            cap_a: r.uint("A", MAX_MODULUS_SQ_BYTES)?,
            cap_b_x: r.point("B_x")?,
            cap_b_y: r.uint("B_y", MAX_MODULUS_SQ_BYTES)?,
            cap_e: r.uint("E", MAX_MODULUS_BYTES)?,
            cap_s: r.uint("S", MAX_MODULUS_BYTES)?,
            cap_f: r.uint("F", MAX_MODULUS_BYTES)?,
            cap_t: r.uint("T", MAX_MODULUS_BYTES)?,
            z1: r.int("z1", Z1_CAP_BYTES)?,
            z2: r.int("z2", Z2_CAP_BYTES)?,
            z3: r.int("z3", Z34_CAP_BYTES)?,
            z4: r.int("z4", Z34_CAP_BYTES)?,
            w: r.uint("w", MAX_MODULUS_BYTES)?,
            w_y: r.uint("w_y", MAX_MODULUS_BYTES)?,
        };
        r.finish()?;
        Ok(proof)
    }
}

/// The statement's own checks: C, D units mod N0², Y unit mod N1² (PRE-05).
fn check_statement(st: &AffGStatement<'_>) -> Result<(), ProofError> {
    ensure(
        is_ciphertext(st.n0, st.cap_c),
        PROOF,
        FailureKind::Statement,
        CHECK_C,
    )?;
    ensure(
        is_ciphertext(st.n0, st.cap_d),
        PROOF,
        FailureKind::Statement,
        CHECK_D,
    )?;
    ensure(
        is_ciphertext(st.n1, st.cap_y),
        PROOF,
        FailureKind::Statement,
        CHECK_Y,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::ring_pedersen::RingPedersenSecret;
    use crate::zk::testing::{ctx, other_contexts};
    use num_traits::One;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::OnceLock;

    /// A named change to a proof value.
    type Change<'a> = (&'static str, Box<dyn Fn(&mut AffGProof) + 'a>);

    /// One party's long-term material: Paillier key and ring-Pedersen parameters.
    struct Party {
        sk: PaillierSecretKey,
        rp: RingPedersenParams,
    }

    fn party(rng: &mut ChaCha20Rng, paillier_pair: usize, rp_pair: usize) -> Party {
        let [p, q] = fixtures::safe_prime_pair(paillier_pair);
        let sk = PaillierSecretKey::from_primes(p, q).unwrap();
        let [p, q] = fixtures::safe_prime_pair(rp_pair);
        let (rp, _) = RingPedersenSecret::generate(rng, &p, &q).unwrap();
        Party { sk, rp }
    }

    /// An instance of the relation: the verifier V owns N0 and (N̂, s, t), the prover P owns N1.
    struct Instance {
        cap_c: BigUint,
        cap_d: BigUint,
        cap_y: BigUint,
        cap_x: ProjectivePoint,
        x: BigInt,
        y: BigInt,
        rho: BigUint,
        rho_y: BigUint,
    }

    /// C = enc_{N0}(k), D = C^x·enc_{N0}(y; ρ), Y = enc_{N1}(y; ρ_y), X = x·G.
    fn instance(
        rng: &mut ChaCha20Rng,
        verifier: &Party,
        prover: &Party,
        x: BigInt,
        y: BigInt,
    ) -> Instance {
        let n0 = verifier.sk.public();
        let k = random_signed_bits(rng, u64::from(ELL));
        let (cap_c, _) = verifier.sk.encrypt(rng, &k);
        let (enc_y, rho) = n0.encrypt(rng, &y);
        let cap_d = n0.add(&n0.mul_plain(&cap_c, &x), &enc_y);
        let (cap_y, rho_y) = prover.sk.encrypt(rng, &y);
        Instance {
            cap_c: cap_c.as_uint().clone(),
            cap_d: cap_d.as_uint().clone(),
            cap_y: cap_y.as_uint().clone(),
            cap_x: ProjectivePoint::GENERATOR * scalar_from_int(&x),
            x,
            y,
            rho: rho.expose().clone(),
            rho_y: rho_y.expose().clone(),
        }
    }

    fn statement<'a>(
        verifier: &'a Party,
        prover: &'a Party,
        inst: &'a Instance,
    ) -> AffGStatement<'a> {
        AffGStatement {
            n0: verifier.sk.public(),
            n1: prover.sk.public(),
            rp: &verifier.rp,
            cap_c: &inst.cap_c,
            cap_d: &inst.cap_d,
            cap_y: &inst.cap_y,
            cap_x: &inst.cap_x,
        }
    }

    fn witness<'a>(prover: &'a Party, inst: &'a Instance) -> AffGWitness<'a> {
        AffGWitness {
            x: &inst.x,
            y: &inst.y,
            rho: &inst.rho,
            rho_y: &inst.rho_y,
            prover_key: &prover.sk,
        }
    }

    /// P1 proves to P2 (N0 = N_2, N̂ = N̂_2, N1 = N_1); built once and shared by the tests.
    struct Fixture {
        p1: Party,
        p2: Party,
        inst: Instance,
        proof: AffGProof,
    }

    impl Fixture {
        fn st(&self) -> AffGStatement<'_> {
            statement(&self.p2, &self.p1, &self.inst)
        }
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let mut rng = ChaCha20Rng::seed_from_u64(25);
            let p1 = party(&mut rng, 2, 4);
            let p2 = party(&mut rng, 3, 5);
            let x = random_signed_bits(&mut rng, u64::from(ELL));
            let y = random_signed_bits(&mut rng, u64::from(ELL_PRIME));
            let inst = instance(&mut rng, &p2, &p1, x, y);
            let proof = AffGProof::prove(
                &mut rng,
                &ctx(),
                &statement(&p2, &p1, &inst),
                &witness(&p1, &inst),
            )
            .unwrap();
            Fixture {
                p1,
                p2,
                inst,
                proof,
            }
        })
    }

    #[test]
    fn honest_proof_verifies_and_round_trips() {
        let f = fixture();
        f.proof.verify(&ctx(), &f.st()).unwrap();
        let decoded = AffGProof::from_bytes(&f.proof.to_bytes()).unwrap();
        assert_eq!(decoded, f.proof);
        decoded.verify(&ctx(), &f.st()).unwrap();
    }

    /// Every field of the proof, changed to another valid-looking value, makes it fail.
    #[test]
    fn tampered_fields_fail() {
        let f = fixture();
        let st = f.st();
        let (nn0, nn1, n_hat) = (st.n0.n_squared(), st.n1.n_squared(), st.rp.n());
        let two = BigUint::from(2u32);
        let one = BigInt::one();
        let tampers: [Change<'_>; 13] = [
            ("A", Box::new(|p| p.cap_a = &p.cap_a * &two % nn0)),
            ("B_x", Box::new(|p| p.cap_b_x += ProjectivePoint::GENERATOR)),
            ("B_y", Box::new(|p| p.cap_b_y = &p.cap_b_y * &two % nn1)),
            ("E", Box::new(|p| p.cap_e = &p.cap_e * &two % n_hat)),
            ("S", Box::new(|p| p.cap_s = &p.cap_s * &two % n_hat)),
            ("F", Box::new(|p| p.cap_f = &p.cap_f * &two % n_hat)),
            ("T", Box::new(|p| p.cap_t = &p.cap_t * &two % n_hat)),
            ("z1", Box::new(|p| p.z1 += &one)),
            ("z2", Box::new(|p| p.z2 += &one)),
            ("z3", Box::new(|p| p.z3 += &one)),
            ("z4", Box::new(|p| p.z4 += &one)),
            ("w", Box::new(|p| p.w = &p.w * &two % st.n0.n())),
            ("w_y", Box::new(|p| p.w_y = &p.w_y * &two % st.n1.n())),
        ];
        for (name, tamper) in &tampers {
            let mut bad = f.proof.clone();
            tamper(&mut bad);
            assert_ne!(bad, f.proof, "{name}");
            let err = bad.verify(&ctx(), &st).unwrap_err();
            assert_eq!(err.kind, FailureKind::Equation, "{name}: {err}");
        }
    }

    /// ENC-02: the challenge covers the session, the prover, ρ, every public input (N0, N1, N̂,
    /// s, t, C, D, Y, X) and every first-message value (A, B_x, B_y, E, S, F, T): changing any
    /// one of them changes e. Fails if any of them is dropped from the transcript.
    #[test]
    fn enc_02_challenge_covers_context_statement_and_first_message() {
        let f = fixture();
        let st = f.st();
        let e0 = challenge(&ctx(), &st, &f.proof);
        for other in other_contexts() {
            assert_ne!(challenge(&other, &st, &f.proof), e0, "{other:?}");
        }
        let other_n = f.p1.sk.public(); // any other valid modulus
        let rp_swapped =
            RingPedersenParams::new(st.rp.n().clone(), st.rp.t().clone(), st.rp.s().clone())
                .unwrap();
        let other_nhat = f.p1.rp.n();
        let rp_other_n = RingPedersenParams::new(
            other_nhat.clone(),
            st.rp.s() % other_nhat,
            st.rp.t() % other_nhat,
        )
        .unwrap();
        let rp_other_t =
            RingPedersenParams::new(st.rp.n().clone(), st.rp.s().clone(), st.rp.s().clone())
                .unwrap();
        let bumped = |v: &BigUint| v + 1u32;
        let (c1, d1, y1) = (bumped(st.cap_c), bumped(st.cap_d), bumped(st.cap_y));
        let x1 = *st.cap_x + ProjectivePoint::GENERATOR;
        let variants = [
            ("N0", AffGStatement { n0: other_n, ..st }),
            (
                "N1",
                AffGStatement {
                    n1: f.p2.sk.public(),
                    ..st
                },
            ),
            (
                "N̂",
                AffGStatement {
                    rp: &rp_other_n,
                    ..st
                },
            ),
            (
                "s",
                AffGStatement {
                    rp: &rp_swapped,
                    ..st
                },
            ),
            (
                "t",
                AffGStatement {
                    rp: &rp_other_t,
                    ..st
                },
            ),
            ("C", AffGStatement { cap_c: &c1, ..st }),
            ("D", AffGStatement { cap_d: &d1, ..st }),
            ("Y", AffGStatement { cap_y: &y1, ..st }),
            ("X", AffGStatement { cap_x: &x1, ..st }),
        ];
        for (name, variant) in &variants {
            assert_ne!(challenge(&ctx(), variant, &f.proof), e0, "{name}");
        }
        let firsts: [Change<'_>; 7] = [
            ("A", Box::new(|p| p.cap_a += 1u32)),
            ("B_x", Box::new(|p| p.cap_b_x += ProjectivePoint::GENERATOR)),
            ("B_y", Box::new(|p| p.cap_b_y += 1u32)),
            ("E", Box::new(|p| p.cap_e += 1u32)),
            ("S", Box::new(|p| p.cap_s += 1u32)),
            ("F", Box::new(|p| p.cap_f += 1u32)),
            ("T", Box::new(|p| p.cap_t += 1u32)),
        ];
        for (name, change) in &firsts {
            let mut p = f.proof.clone();
            change(&mut p);
            assert_ne!(challenge(&ctx(), &st, &p), e0, "{name}");
        }
    }

    /// A proof does not verify for another statement, session, prover or ρ.
    #[test]
    fn proof_for_other_statement_or_context_fails() {
        let f = fixture();
        let st = f.st();
        for other in other_contexts() {
            assert_eq!(
                f.proof.verify(&other, &st).unwrap_err().kind,
                FailureKind::Equation
            );
        }
        let (nn0, nn1) = (st.n0.n_squared(), st.n1.n_squared());
        let two = BigUint::from(2u32);
        let (c1, d1, y1) = (
            st.cap_c * &two % nn0,
            st.cap_d * &two % nn0,
            st.cap_y * &two % nn1,
        );
        let x1 = *st.cap_x + ProjectivePoint::GENERATOR;
        let rp_swapped =
            RingPedersenParams::new(st.rp.n().clone(), st.rp.t().clone(), st.rp.s().clone())
                .unwrap();
        let variants = [
            (
                "N0 ↔ N1",
                AffGStatement {
                    n0: st.n1,
                    n1: st.n0,
                    ..st
                },
            ),
            ("N̂ of the prover", AffGStatement { rp: &f.p1.rp, ..st }),
            (
                "s ↔ t",
                AffGStatement {
                    rp: &rp_swapped,
                    ..st
                },
            ),
            ("C", AffGStatement { cap_c: &c1, ..st }),
            ("D", AffGStatement { cap_d: &d1, ..st }),
            ("Y", AffGStatement { cap_y: &y1, ..st }),
            ("X", AffGStatement { cap_x: &x1, ..st }),
        ];
        for (name, variant) in &variants {
            assert!(f.proof.verify(&ctx(), variant).is_err(), "{name}");
        }
    }

    #[test]
    fn wrong_witness_is_refused_by_prover() {
        let f = fixture();
        let st = f.st();
        let mut rng = ChaCha20Rng::seed_from_u64(251);
        let i = &f.inst;
        let x1 = &i.x + 1;
        let y1 = &i.y + 1;
        let big_x = BigInt::one() << (ELL + 1);
        let big_y = BigInt::one() << (ELL_PRIME + 1);
        let rho1 = &i.rho + 1u32;
        let rho_y1 = &i.rho_y + 1u32;
        let cases = [
            (
                "x ≠ log X",
                AffGWitness {
                    x: &x1,
                    ..witness(&f.p1, i)
                },
            ),
            (
                "y",
                AffGWitness {
                    y: &y1,
                    ..witness(&f.p1, i)
                },
            ),
            (
                "x out of range",
                AffGWitness {
                    x: &big_x,
                    ..witness(&f.p1, i)
                },
            ),
            (
                "y out of range",
                AffGWitness {
                    y: &big_y,
                    ..witness(&f.p1, i)
                },
            ),
            (
                "ρ",
                AffGWitness {
                    rho: &rho1,
                    ..witness(&f.p1, i)
                },
            ),
            (
                "ρ_y",
                AffGWitness {
                    rho_y: &rho_y1,
                    ..witness(&f.p1, i)
                },
            ),
            (
                "key of N0 instead of N1",
                AffGWitness {
                    prover_key: &f.p2.sk,
                    ..witness(&f.p1, i)
                },
            ),
        ];
        for (name, w) in &cases {
            let err = AffGProof::prove(&mut rng, &ctx(), &st, w).unwrap_err();
            assert_eq!(err.kind, FailureKind::Witness, "{name}: {err}");
        }
        assert_eq!(
            alloc::format!("{:?}", witness(&f.p1, i)),
            "AffGWitness(<redacted>)"
        );
    }

    /// Responses just outside their bounds fail with `Range` and name the bound.
    #[test]
    fn out_of_range_responses_fail_with_range() {
        let f = fixture();
        let st = f.st();
        let z1_max = BigInt::one() << (ELL + EPSILON);
        let z2_max = BigInt::one() << (ELL_PRIME + EPSILON);
        let z34_max = BigInt::from(z34_bound(st.rp));
        let cases: [Change<'_>; 8] = [
            (CHECK_Z1_RANGE, Box::new(|p| p.z1 = &z1_max + 1)),
            (CHECK_Z1_RANGE, Box::new(|p| p.z1 = -&z1_max - 1)),
            (CHECK_Z2_RANGE, Box::new(|p| p.z2 = &z2_max + 1)),
            (CHECK_Z2_RANGE, Box::new(|p| p.z2 = -&z2_max - 1)),
            (CHECK_Z3_RANGE, Box::new(|p| p.z3 = &z34_max + 1)),
            (CHECK_Z3_RANGE, Box::new(|p| p.z3 = -&z34_max - 1)),
            (CHECK_Z4_RANGE, Box::new(|p| p.z4 = &z34_max + 1)),
            (CHECK_Z4_RANGE, Box::new(|p| p.z4 = -&z34_max - 1)),
        ];
        for (check, change) in &cases {
            let mut bad = f.proof.clone();
            change(&mut bad);
            let err = bad.verify(&ctx(), &st).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Range, *check));
            // still decodable: the encoding caps leave room for the range check to decide
            assert_eq!(AffGProof::from_bytes(&bad.to_bytes()).unwrap(), bad);
        }
        // the bounds themselves are accepted by the range checks
        let mut edge = f.proof.clone();
        edge.z1 = z1_max.clone();
        edge.z2 = -z2_max.clone();
        edge.z3 = z34_max.clone();
        edge.z4 = -z34_max.clone();
        assert_eq!(
            edge.verify(&ctx(), &st).unwrap_err().kind,
            FailureKind::Equation
        );
    }

    /// PRE-05: C = 0, C = N0², C sharing a factor with N0 (and likewise D, Y) are refused as
    /// `Statement`; A, B_y, E, S, F, T, w, w_y equal to 0, to their modulus or sharing a factor
    /// with it are refused as `Unit` — all without panicking, by prover and verifier.
    #[test]
    fn pre_05_non_units_are_rejected_without_panic() {
        let f = fixture();
        let st = f.st();
        let mut rng = ChaCha20Rng::seed_from_u64(252);
        let sk0 = &f.p2.sk; // the verifier's key: its factors make non-units mod N0
        let (n0, nn0, nn1) = (
            st.n0.n().clone(),
            st.n0.n_squared().clone(),
            st.n1.n_squared().clone(),
        );
        let p0 = sk0.p().clone();
        let p1 = f.p1.sk.p().clone();
        let bad_mod_n0_sq = [
            BigUint::zero(),
            nn0.clone(),
            &nn0 + 1u32,
            p0.clone(),
            &p0 * 12345u32,
        ];
        let bad_mod_n1_sq = [BigUint::zero(), nn1.clone(), p1.clone() * 7u32];
        for bad in &bad_mod_n0_sq {
            for (name, variant) in [
                ("C", AffGStatement { cap_c: bad, ..st }),
                ("D", AffGStatement { cap_d: bad, ..st }),
            ] {
                let err = f.proof.verify(&ctx(), &variant).unwrap_err();
                assert_eq!(err.kind, FailureKind::Statement, "{name}");
                let err = AffGProof::prove(&mut rng, &ctx(), &variant, &witness(&f.p1, &f.inst))
                    .unwrap_err();
                assert_eq!(err.kind, FailureKind::Statement, "{name} (prover)");
            }
        }
        for bad in &bad_mod_n1_sq {
            let err = f
                .proof
                .verify(&ctx(), &AffGStatement { cap_y: bad, ..st })
                .unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Statement, CHECK_Y));
        }

        let n_hat = st.rp.n().clone();
        let n1 = st.n1.n().clone();
        type Field = fn(&mut AffGProof) -> &mut BigUint;
        let fields: [(&str, Field, Vec<BigUint>); 8] = [
            (CHECK_A_UNIT, |p| &mut p.cap_a, bad_mod_n0_sq.to_vec()),
            (CHECK_BY_UNIT, |p| &mut p.cap_b_y, bad_mod_n1_sq.to_vec()),
            (
                CHECK_E_UNIT,
                |p| &mut p.cap_e,
                alloc::vec![BigUint::zero(), n_hat.clone()],
            ),
            (
                CHECK_S_UNIT,
                |p| &mut p.cap_s,
                alloc::vec![BigUint::zero(), n_hat.clone()],
            ),
            (
                CHECK_F_UNIT,
                |p| &mut p.cap_f,
                alloc::vec![BigUint::zero(), n_hat.clone()],
            ),
            (
                CHECK_T_UNIT,
                |p| &mut p.cap_t,
                alloc::vec![BigUint::zero(), &n_hat + 1u32],
            ),
            (
                CHECK_W_UNIT,
                |p| &mut p.w,
                alloc::vec![BigUint::zero(), n0.clone(), p0.clone(), &n0 + 1u32],
            ),
            (
                CHECK_WY_UNIT,
                |p| &mut p.w_y,
                alloc::vec![BigUint::zero(), n1.clone(), p1.clone()],
            ),
        ];
        for (check, field, bads) in &fields {
            for bad in bads {
                let mut p = f.proof.clone();
                *field(&mut p) = bad.clone();
                let err = p.verify(&ctx(), &st).unwrap_err();
                assert_eq!((err.kind, err.check), (FailureKind::Unit, *check));
            }
        }
    }

    /// PRE-02 ("decrypted values are range-checked"): a cheating prover that skips the witness
    /// range check proves D, Y for |y| = 2^{ℓ'+ε+10}. Every equation holds — the relation is
    /// true, only y is too large — so the verifier's z2 range check is what rejects it.
    #[test]
    fn pre_02_out_of_range_y_is_rejected_by_the_z2_range_check() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(253);
        let x = random_signed_bits(&mut rng, u64::from(ELL));
        let y = -(BigInt::one() << (ELL_PRIME + EPSILON + 10));
        let inst = instance(&mut rng, &f.p2, &f.p1, x, y);
        let st = statement(&f.p2, &f.p1, &inst);
        let w = witness(&f.p1, &inst);
        assert_eq!(
            AffGProof::prove(&mut rng, &ctx(), &st, &w)
                .unwrap_err()
                .check,
            "y ∈ ±2^ℓ'"
        );
        let forged = AffGProof::prove_unchecked(&mut rng, &ctx(), &st, &w).unwrap();
        let err = forged.verify(&ctx(), &st).unwrap_err();
        assert_eq!((err.kind, err.check), (FailureKind::Range, CHECK_Z2_RANGE));
        // without the range check the forgery would pass: every equation holds
        forged
            .check_equations(&st, &challenge(&ctx(), &st, &forged))
            .unwrap();
    }

    /// PRE-02: D built with x' ≠ log X (a cheating prover using x' throughout) is rejected.
    #[test]
    fn pre_02_d_built_with_another_x_is_rejected() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(254);
        let x_prime = &f.inst.x + 1;
        let mut inst = instance(&mut rng, &f.p2, &f.p1, x_prime, f.inst.y.clone());
        inst.cap_x = f.inst.cap_x; // X = x·G, but D = C^{x'}·enc(y; ρ)
        let st = statement(&f.p2, &f.p1, &inst);
        let w = witness(&f.p1, &inst);
        assert_eq!(
            AffGProof::prove(&mut rng, &ctx(), &st, &w)
                .unwrap_err()
                .check,
            "X = x·G"
        );
        let forged = AffGProof::prove_unchecked(&mut rng, &ctx(), &st, &w).unwrap();
        let err = forged.verify(&ctx(), &st).unwrap_err();
        assert_eq!(
            (err.kind, err.check),
            (FailureKind::Equation, CHECK_EQ_GROUP)
        );
    }

    /// PRE-02 ("both directions"): P1 → P2 and P2 → P1 proofs each verify under the
    /// verifier's own N0 and ring-Pedersen parameters, and neither passes for the other.
    #[test]
    fn pre_02_both_directions_verify_and_are_not_interchangeable() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(255);
        let x = random_signed_bits(&mut rng, u64::from(ELL));
        let y = random_signed_bits(&mut rng, u64::from(ELL_PRIME));
        let inst = instance(&mut rng, &f.p1, &f.p2, x, y);
        let st_21 = statement(&f.p1, &f.p2, &inst); // P2 proves to P1
        let proof_21 = AffGProof::prove(&mut rng, &ctx(), &st_21, &witness(&f.p2, &inst)).unwrap();
        proof_21.verify(&ctx(), &st_21).unwrap();
        f.proof.verify(&ctx(), &f.st()).unwrap();
        assert!(proof_21.verify(&ctx(), &f.st()).is_err());
        assert!(f.proof.verify(&ctx(), &st_21).is_err());
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let f = fixture();
        let bytes = f.proof.to_bytes();
        for len in 0..bytes.len() {
            assert!(
                AffGProof::from_bytes(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            AffGProof::from_bytes(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut wrong_tag = bytes.clone();
        wrong_tag[0] = tags::AFF_G_STAR;
        assert!(matches!(
            AffGProof::from_bytes(&wrong_tag),
            Err(DecodeError::WrongTag { .. })
        ));
        // the length prefix of A (bytes 1..5): oversize, and one above the cap
        for len in [u32::MAX, MAX_MODULUS_SQ_BYTES as u32 + 1] {
            let mut oversize = bytes.clone();
            oversize[1..5].copy_from_slice(&len.to_be_bytes());
            assert!(matches!(
                AffGProof::from_bytes(&oversize),
                Err(DecodeError::TooLong { .. })
            ));
        }
        // A with a leading zero byte
        let a_len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let mut padded = alloc::vec![tags::AFF_G];
        padded.extend_from_slice(&(a_len + 1).to_be_bytes());
        padded.push(0);
        padded.extend_from_slice(&bytes[5..]);
        assert!(matches!(
            AffGProof::from_bytes(&padded),
            Err(DecodeError::NonCanonical { .. })
        ));
        // z1 = −0
        let mut zero = f.proof.clone();
        zero.z1 = BigInt::zero();
        let mut neg_zero = zero.to_bytes();
        let z1_at = Writer::new(tags::AFF_G)
            .uint(&zero.cap_a)
            .point(&zero.cap_b_x)
            .uint(&zero.cap_b_y)
            .uint(&zero.cap_e)
            .uint(&zero.cap_s)
            .uint(&zero.cap_f)
            .uint(&zero.cap_t)
            .finish()
            .len();
        assert_eq!(neg_zero[z1_at], 0);
        neg_zero[z1_at] = 1;
        assert!(matches!(
            AffGProof::from_bytes(&neg_zero),
            Err(DecodeError::NonCanonical { .. })
        ));
        // z1 longer than its cap
        let mut huge = f.proof.clone();
        huge.z1 = BigInt::one() << (8 * Z1_CAP_BYTES);
        assert!(matches!(
            AffGProof::from_bytes(&huge.to_bytes()),
            Err(DecodeError::TooLong { .. })
        ));
        // B_x not on the curve
        let mut bad_point = bytes.clone();
        let bx_at = 5 + a_len as usize;
        bad_point[bx_at] = 0x02;
        bad_point[bx_at + 1..bx_at + 33].fill(0xFF);
        assert!(matches!(
            AffGProof::from_bytes(&bad_point),
            Err(DecodeError::BadPoint { .. })
        ));
    }
}
