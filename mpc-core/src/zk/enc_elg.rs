//! Πenc-elg — Paillier encryption in range with El-Gamal commitment (CGGMP24 Fig. 24).
//!
//! Statement: the prover's Paillier key N0, the *verifier's* ring-Pedersen parameters
//! (N̂, s, t), a ciphertext C ∈ Z*_{N0²} and points A, B, X. Witness: x ∈ ±2^ℓ, ρ ∈ Z*_{N0} and
//! b ∈ F_q with
//!
//! C = enc_{N0}(x; ρ) = (1 + N0)^x·ρ^{N0} mod N0², B = b·G, X = x·G + b·A.
//!
//! A = a·G is an El-Gamal public key; a is not part of the witness. The prover owns N0 and
//! encrypts with the CRT ([`PaillierSecretKey`]).
//!
//! Prover:
//! 1. Samples α ← ±2^{ℓ+ε}, μ ← ±2^ℓ·N̂, r ← Z*_{N0}, β ← F_q, γ ← ±2^{ℓ+ε}·N̂.
//! 2. Sends S = s^x t^μ mod N̂, D = enc_{N0}(α; r), Y = β·A + α·G, Z = β·G,
//!    T = s^α t^γ mod N̂.
//! 3. Challenge e ← ±q = H(context, N0, N̂, s, t, C, A, B, X, S, D, Y, Z, T) (Fiat–Shamir).
//! 4. Sends z1 = α + e·x (integer), w = β + e·b mod q, z2 = r·ρ^e mod N0, z3 = γ + e·μ.
//!
//! Verifier, cheap checks first (AUX-04, PRE-05):
//! - N̂ ≠ N0 (PARAM-02) and C ∈ Z*_{N0²} (statement);
//! - S, T ∈ Z*_N̂; D ∈ Z*_{N0²}; z2 ∈ Z*_{N0} (units, below their modulus);
//! - z1 ∈ ±2^{ℓ+ε} (the range the proof is about, PRE-01);
//! - |z3| ≤ 2^{ℓ+ε+1}·N̂ (cap: honest γ ∈ ±2^{ℓ+ε}·N̂ plus e·μ ∈ ±2^{2ℓ}·N̂);
//!
//! then the challenge and the equations (e reduced mod q on the curve):
//! - enc_{N0}(z1; z2) = D·C^e mod N0²;
//! - z1·G + w·A = Y + e·X;
//! - w·G = Z + e·B;
//! - s^{z1} t^{z3} = T·S^e mod N̂.

use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{ensure, tags, FailureKind, ProofContext, ProofError};
use crate::arith::{
    in_signed_bits, in_signed_range, is_unit_mod, random_signed_bits, random_signed_range,
    scalar_from_int, SecretInt, SecretUint,
};
use crate::encoding::{DecodeError, Reader, Writer};
use crate::paillier::{PaillierPublicKey, PaillierSecretKey};
use crate::params::{ELL, EPSILON, MAX_MODULUS_BITS, MAX_MODULUS_BYTES, MAX_MODULUS_SQ_BYTES};
use crate::ring_pedersen::RingPedersenParams;

const PROOF: &str = "Πenc-elg (Fig. 24)";
const LABEL: &[u8] = b"cggmp24/pi-enc-elg/fig24";

// The cap on z3 holds for honest provers: |e·μ| ≤ q·2^ℓ·N̂ < 2^{2ℓ}·N̂ ≤ 2^{ℓ+ε}·N̂.
const _: () = assert!(EPSILON >= ELL);

const CHECK_DISTINCT: &str = "N̂ ≠ N0";
const CHECK_C_UNIT: &str = "C ∈ Z*_{N0²}";
const CHECK_S_UNIT: &str = "S ∈ Z*_N̂";
const CHECK_T_UNIT: &str = "T ∈ Z*_N̂";
const CHECK_D_UNIT: &str = "D ∈ Z*_{N0²}";
const CHECK_Z2_UNIT: &str = "z2 ∈ Z*_N0";
const CHECK_Z1: &str = "z1 ∈ ±2^{ℓ+ε}";
const CHECK_Z3: &str = "z3 ∈ ±2^{ℓ+ε+1}·N̂";
const CHECK_EQ_ENC: &str = "enc_N0(z1; z2) = D·C^e mod N0²";
const CHECK_EQ_X: &str = "z1·G + w·A = Y + e·X";
const CHECK_EQ_B: &str = "w·G = Z + e·B";
const CHECK_EQ_RP: &str = "s^z1·t^z3 = T·S^e mod N̂";
const CHECK_W_KEY: &str = "N0 is the prover's Paillier key";
const CHECK_W_RANGE: &str = "x ∈ ±2^ℓ";
const CHECK_W_RHO: &str = "ρ ∈ Z*_N0";
const CHECK_W_C: &str = "C = enc_N0(x; ρ)";
const CHECK_W_B: &str = "B = b·G";
const CHECK_W_X: &str = "X = x·G + b·A";

/// Bytes of a magnitude of at most `bits` bits.
const fn bytes_for_bits(bits: u32) -> usize {
    (bits as usize).div_ceil(8)
}

/// Decoding cap of z1: |z1| ≤ 2^{ℓ+ε}, i.e. ℓ+ε+1 bits.
const Z1_MAX_BYTES: usize = bytes_for_bits(ELL + EPSILON + 1);
/// Decoding cap of z3: |z3| ≤ 2^{ℓ+ε+1}·N̂ < 2^{ℓ+ε+1+MAX_MODULUS_BITS}.
const Z3_MAX_BYTES: usize = bytes_for_bits(ELL + EPSILON + 1 + MAX_MODULUS_BITS);

/// Public input: N0 (prover's), (N̂, s, t) (verifier's), C, A, B, X.
#[derive(Clone, Copy, Debug)]
pub struct EncElgStatement<'a> {
    /// The prover's Paillier public key N0.
    pub n0: &'a PaillierPublicKey,
    /// The verifier's ring-Pedersen parameters (N̂, s, t).
    pub aux: &'a RingPedersenParams,
    /// C = enc_{N0}(x; ρ), as received: validated as a unit of Z*_{N0²} by the verifier.
    pub cap_c: &'a BigUint,
    /// The El-Gamal public key A = a·G.
    pub cap_a: &'a ProjectivePoint,
    /// B = b·G.
    pub cap_b: &'a ProjectivePoint,
    /// X = x·G + b·A.
    pub cap_x: &'a ProjectivePoint,
}

/// Secret input: the prover's Paillier secret key, x ∈ ±2^ℓ, ρ ∈ Z*_{N0} and b ∈ F_q.
pub struct EncElgWitness<'a> {
    /// The prover's Paillier secret key (of N0), for CRT encryption.
    pub sk: &'a PaillierSecretKey,
    /// x ∈ ±2^ℓ, the plaintext of C.
    pub x: &'a BigInt,
    /// ρ ∈ Z*_{N0}, the randomness of C.
    pub rho: &'a BigUint,
    /// b with B = b·G.
    pub b: &'a Scalar,
}

impl fmt::Debug for EncElgWitness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncElgWitness(<redacted>)")
    }
}

/// A Πenc-elg proof: first message (S, D, Y, Z, T) and response (z1, w, z2, z3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncElgProof {
    /// S = s^x t^μ mod N̂.
    pub cap_s: BigUint,
    /// D = enc_{N0}(α; r).
    pub cap_d: BigUint,
    /// Y = β·A + α·G.
    pub cap_y: ProjectivePoint,
    /// Z = β·G.
    pub cap_z: ProjectivePoint,
    /// T = s^α t^γ mod N̂.
    pub cap_t: BigUint,
    /// z1 = α + e·x.
    pub z1: BigInt,
    /// w = β + e·b mod q.
    pub w: Scalar,
    /// z2 = r·ρ^e mod N0.
    pub z2: BigUint,
    /// z3 = γ + e·μ.
    pub z3: BigInt,
}

/// e ← ±q from the context, the statement and the first message.
fn challenge(
    ctx: &ProofContext<'_>,
    st: &EncElgStatement<'_>,
    cap_s: &BigUint,
    cap_d: &BigUint,
    cap_y: &ProjectivePoint,
    cap_z: &ProjectivePoint,
    cap_t: &BigUint,
) -> BigInt {
    let mut tr = ctx.transcript(LABEL);
    tr.append_uint(b"N0", st.n0.n());
    tr.append_uint(b"N-hat", st.aux.n());
    tr.append_uint(b"s", st.aux.s());
    tr.append_uint(b"t", st.aux.t());
    tr.append_uint(b"C", st.cap_c);
    tr.append_point(b"A", st.cap_a);
    tr.append_point(b"B", st.cap_b);
    tr.append_point(b"X", st.cap_x);
    tr.append_uint(b"S", cap_s);
    tr.append_uint(b"D", cap_d);
    tr.append_point(b"Y", cap_y);
    tr.append_point(b"Z", cap_z);
    tr.append_uint(b"T", cap_t);
    tr.challenge_signed_q(b"e")
}

impl EncElgProof {
    /// Proves that C encrypts the x ∈ ±2^ℓ committed in (B, X) under the El-Gamal key A.
    pub fn prove(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &EncElgStatement<'_>,
        w: &EncElgWitness<'_>,
    ) -> Result<Self, ProofError> {
        ensure(
            in_signed_bits(w.x, u64::from(ELL)),
            PROOF,
            FailureKind::Witness,
            CHECK_W_RANGE,
        )?;
        Self::prove_any_range(rng, ctx, st, w)
    }

    /// The prover without the check x ∈ ±2^ℓ (every other witness check is made). Kept
    /// private: only [`Self::prove`] and the tests' cheating prover (PRE-01) call it.
    fn prove_any_range(
        rng: &mut impl CryptoRngCore,
        ctx: &ProofContext<'_>,
        st: &EncElgStatement<'_>,
        w: &EncElgWitness<'_>,
    ) -> Result<Self, ProofError> {
        let sk = w.sk;
        let n0 = st.n0.n();
        ensure(
            sk.public() == st.n0,
            PROOF,
            FailureKind::Witness,
            CHECK_W_KEY,
        )?;
        ensure(
            st.n0.check_nonce(w.rho).is_ok(),
            PROOF,
            FailureKind::Witness,
            CHECK_W_RHO,
        )?;
        let c = sk
            .encrypt_with_nonce(w.x, w.rho)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Witness, CHECK_W_RHO))?;
        ensure(
            c.as_uint() == st.cap_c,
            PROOF,
            FailureKind::Witness,
            CHECK_W_C,
        )?;
        let x_scalar = Zeroizing::new(scalar_from_int(w.x));
        let g = ProjectivePoint::GENERATOR;
        ensure(g * w.b == *st.cap_b, PROOF, FailureKind::Witness, CHECK_W_B)?;
        ensure(
            g * *x_scalar + *st.cap_a * w.b == *st.cap_x,
            PROOF,
            FailureKind::Witness,
            CHECK_W_X,
        )?;

        let aux = st.aux;
        let nhat = aux.n();
        let alpha = SecretInt::new(random_signed_bits(rng, u64::from(ELL + EPSILON)));
        let mu = SecretInt::new(random_signed_range(rng, &(nhat << ELL)));
        let r = sk.fresh_nonce(rng);
        let beta = Zeroizing::new(Scalar::random(&mut *rng));
        let gamma = SecretInt::new(random_signed_range(rng, &(nhat << (ELL + EPSILON))));
        let alpha_scalar = Zeroizing::new(scalar_from_int(alpha.expose()));

        let cap_s = aux.commit(w.x, mu.expose());
        let cap_d = sk.encrypt_fresh(alpha.expose(), &r).as_uint().clone();
        let cap_y = *st.cap_a * *beta + g * *alpha_scalar;
        let cap_z = g * *beta;
        let cap_t = aux.commit(alpha.expose(), gamma.expose());

        let e = challenge(ctx, st, &cap_s, &cap_d, &cap_y, &cap_z, &cap_t);
        let z1 = alpha.expose() + &e * w.x;
        let wr = *beta + scalar_from_int(&e) * w.b;
        // ρ^e mod N0 with the CRT; e is taken mod φ(N0) since ρ is a unit.
        let e_mod_phi = SecretUint::new(
            e.mod_floor(&BigInt::from(sk.phi().clone()))
                .magnitude()
                .clone(),
        );
        let z2 = r.expose() * sk.pow_mod_n(w.rho, e_mod_phi.expose()) % n0;
        let z3 = gamma.expose() + &e * mu.expose();
        Ok(Self {
            cap_s,
            cap_d,
            cap_y,
            cap_z,
            cap_t,
            z1,
            w: wr,
            z2,
            z3,
        })
    }

    /// Verifies the proof; the ring-Pedersen parameters must be the verifier's own. A
    /// ciphertext C that is not a unit of Z*_{N0²} is refused as a bad statement (PRE-05).
    pub fn verify(
        &self,
        ctx: &ProofContext<'_>,
        st: &EncElgStatement<'_>,
    ) -> Result<(), ProofError> {
        let n0 = st.n0.n();
        let aux = st.aux;
        let nhat = aux.n();
        ensure(nhat != n0, PROOF, FailureKind::Statement, CHECK_DISTINCT)?;
        let c = st
            .n0
            .ciphertext(st.cap_c.clone())
            .map_err(|_| ProofError::new(PROOF, FailureKind::Statement, CHECK_C_UNIT))?;

        // Cheap checks (AUX-04): unit-ness and ranges, before any exponentiation.
        ensure(
            is_unit_mod(&self.cap_s, nhat),
            PROOF,
            FailureKind::Unit,
            CHECK_S_UNIT,
        )?;
        ensure(
            is_unit_mod(&self.cap_t, nhat),
            PROOF,
            FailureKind::Unit,
            CHECK_T_UNIT,
        )?;
        let d = st
            .n0
            .ciphertext(self.cap_d.clone())
            .map_err(|_| ProofError::new(PROOF, FailureKind::Unit, CHECK_D_UNIT))?;
        ensure(
            is_unit_mod(&self.z2, n0),
            PROOF,
            FailureKind::Unit,
            CHECK_Z2_UNIT,
        )?;
        ensure(
            in_signed_bits(&self.z1, u64::from(ELL + EPSILON)),
            PROOF,
            FailureKind::Range,
            CHECK_Z1,
        )?;
        ensure(
            in_signed_range(&self.z3, &(nhat << (ELL + EPSILON + 1))),
            PROOF,
            FailureKind::Range,
            CHECK_Z3,
        )?;

        let e = challenge(
            ctx,
            st,
            &self.cap_s,
            &self.cap_d,
            &self.cap_y,
            &self.cap_z,
            &self.cap_t,
        );
        let e_scalar = scalar_from_int(&e);
        let g = ProjectivePoint::GENERATOR;

        // enc_{N0}(z1; z2) = D·C^e mod N0²
        let lhs = st
            .n0
            .encrypt_with_nonce(&self.z1, &self.z2)
            .map_err(|_| ProofError::new(PROOF, FailureKind::Unit, CHECK_Z2_UNIT))?;
        let rhs = st.n0.add(&d, &st.n0.mul_plain(&c, &e));
        ensure(lhs == rhs, PROOF, FailureKind::Equation, CHECK_EQ_ENC)?;
        // z1·G + w·A = Y + e·X
        ensure(
            g * scalar_from_int(&self.z1) + *st.cap_a * self.w == self.cap_y + *st.cap_x * e_scalar,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_X,
        )?;
        // w·G = Z + e·B
        ensure(
            g * self.w == self.cap_z + *st.cap_b * e_scalar,
            PROOF,
            FailureKind::Equation,
            CHECK_EQ_B,
        )?;
        // s^{z1} t^{z3} = T·S^e mod N̂
        let lhs = aux.commit(&self.z1, &self.z3);
        let rhs = aux
            .mul_pow(&self.cap_t, &self.cap_s, &e)
            .ok_or(ProofError::new(PROOF, FailureKind::Unit, CHECK_S_UNIT))?;
        ensure(lhs == rhs, PROOF, FailureKind::Equation, CHECK_EQ_RP)
    }

    /// Canonical encoding: tag, S (≤ [`MAX_MODULUS_BYTES`]), D (≤ [`MAX_MODULUS_SQ_BYTES`]),
    /// Y, Z (33 bytes each), T (≤ [`MAX_MODULUS_BYTES`]), z1 (signed, ≤ ℓ+ε+1 bits), w
    /// (32 bytes), z2 (≤ [`MAX_MODULUS_BYTES`]), z3 (signed, capped by its range bound).
    pub fn to_bytes(&self) -> Vec<u8> {
        Writer::new(tags::ENC_ELG)
            .uint(&self.cap_s)
            .uint(&self.cap_d)
            .point(&self.cap_y)
            .point(&self.cap_z)
            .uint(&self.cap_t)
            .int(&self.z1)
            .scalar(&self.w)
            .uint(&self.z2)
            .int(&self.z3)
            .finish()
    }

    /// Decodes the canonical encoding, rejecting anything else (never panics, caps every
    /// length before allocating).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, tags::ENC_ELG)?;
        let cap_s = r.uint("S", MAX_MODULUS_BYTES)?;
        let cap_d = r.uint("D", MAX_MODULUS_SQ_BYTES)?;
        let cap_y = r.point("Y")?;
        let cap_z = r.point("Z")?;
        let cap_t = r.uint("T", MAX_MODULUS_BYTES)?;
        let z1 = r.int("z1", Z1_MAX_BYTES)?;
        let w = r.scalar("w")?;
        let z2 = r.uint("z2", MAX_MODULUS_BYTES)?;
        let z3 = r.int("z3", Z3_MAX_BYTES)?;
        r.finish()?;
        Ok(Self {
            cap_s,
            cap_d,
            cap_y,
            cap_z,
            cap_t,
            z1,
            w,
            z2,
            z3,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::arith::mod_pow_signed;
    use crate::fixtures;
    use crate::ring_pedersen::RingPedersenSecret;
    use crate::zk::testing::{ctx, other_contexts};
    use num_traits::{One, Zero};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::sync::OnceLock;

    type Tamper = fn(&mut EncElgProof);

    /// A prover's key, the verifier's parameters, and one honest instance with its proof.
    struct Fixture {
        sk: PaillierSecretKey,
        aux: RingPedersenParams,
        aux_p: BigUint,
        other_aux: RingPedersenParams,
        other_sk: PaillierSecretKey,
        inst: Instance,
        proof: EncElgProof,
    }

    /// Statement values and witness of one instance.
    struct Instance {
        c: BigUint,
        a: ProjectivePoint,
        b_point: ProjectivePoint,
        x_point: ProjectivePoint,
        x: BigInt,
        rho: BigUint,
        b: Scalar,
    }

    impl Instance {
        /// C = enc(x; ρ), A = a·G, B = b·G, X = x·G + b·A for fresh a, b, ρ.
        fn new(rng: &mut ChaCha20Rng, sk: &PaillierSecretKey, x: BigInt) -> Self {
            let (c, rho) = sk.encrypt(rng, &x);
            let a = ProjectivePoint::GENERATOR * Scalar::random(&mut *rng);
            let b = Scalar::random(&mut *rng);
            let b_point = ProjectivePoint::GENERATOR * b;
            let x_point = ProjectivePoint::GENERATOR * scalar_from_int(&x) + a * b;
            Self {
                c: c.as_uint().clone(),
                a,
                b_point,
                x_point,
                x,
                rho: rho.expose().clone(),
                b,
            }
        }

        fn statement<'a>(
            &'a self,
            sk: &'a PaillierSecretKey,
            aux: &'a RingPedersenParams,
        ) -> EncElgStatement<'a> {
            EncElgStatement {
                n0: sk.public(),
                aux,
                cap_c: &self.c,
                cap_a: &self.a,
                cap_b: &self.b_point,
                cap_x: &self.x_point,
            }
        }

        fn witness<'a>(&'a self, sk: &'a PaillierSecretKey) -> EncElgWitness<'a> {
            EncElgWitness {
                sk,
                x: &self.x,
                rho: &self.rho,
                b: &self.b,
            }
        }
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let mut rng = ChaCha20Rng::seed_from_u64(24);
            let [p, q] = fixtures::safe_prime_pair(7);
            let sk = PaillierSecretKey::from_primes(p, q).unwrap();
            let [ap, aq] = fixtures::safe_prime_pair(3);
            let (aux, _) = RingPedersenSecret::generate(&mut rng, &ap, &aq).unwrap();
            let [bp, bq] = fixtures::safe_prime_pair(4);
            let (other_aux, _) = RingPedersenSecret::generate(&mut rng, &bp, &bq).unwrap();
            let [cp, cq] = fixtures::safe_prime_pair(5);
            let other_sk = PaillierSecretKey::from_primes(cp, cq).unwrap();
            let x = crate::arith::random_signed_bits(&mut rng, u64::from(ELL));
            let inst = Instance::new(&mut rng, &sk, x);
            let proof = EncElgProof::prove(
                &mut rng,
                &ctx(),
                &inst.statement(&sk, &aux),
                &inst.witness(&sk),
            )
            .unwrap();
            Fixture {
                sk,
                aux,
                aux_p: ap,
                other_aux,
                other_sk,
                inst,
                proof,
            }
        })
    }

    fn statement(f: &Fixture) -> EncElgStatement<'_> {
        f.inst.statement(&f.sk, &f.aux)
    }

    /// The four equations, recomputed independently of `verify`.
    fn equations_hold(
        proof: &EncElgProof,
        ctx: &ProofContext<'_>,
        st: &EncElgStatement<'_>,
    ) -> bool {
        let e = challenge(
            ctx,
            st,
            &proof.cap_s,
            &proof.cap_d,
            &proof.cap_y,
            &proof.cap_z,
            &proof.cap_t,
        );
        let (n0, nn, nhat) = (st.n0.n(), st.n0.n_squared(), st.aux.n());
        let g1 = (BigUint::one()
            + (proof.z1.mod_floor(&BigInt::from(n0.clone()))).magnitude() * n0)
            % nn;
        let enc = g1 * crate::arith::pow_mod(&proof.z2, n0, nn) % nn;
        let eq_enc = enc == &proof.cap_d * mod_pow_signed(st.cap_c, &e, nn).unwrap() % nn;
        let es = scalar_from_int(&e);
        let g = ProjectivePoint::GENERATOR;
        let eq_x =
            g * scalar_from_int(&proof.z1) + *st.cap_a * proof.w == proof.cap_y + *st.cap_x * es;
        let eq_b = g * proof.w == proof.cap_z + *st.cap_b * es;
        let pow = |b: &BigUint, x: &BigInt| mod_pow_signed(b, x, nhat).unwrap();
        let eq_rp = pow(st.aux.s(), &proof.z1) * pow(st.aux.t(), &proof.z3) % nhat
            == &proof.cap_t * pow(&proof.cap_s, &e) % nhat;
        eq_enc && eq_x && eq_b && eq_rp
    }

    #[test]
    fn honest_proof_verifies_and_round_trips() {
        let f = fixture();
        let st = statement(f);
        f.proof.verify(&ctx(), &st).unwrap();
        assert!(equations_hold(&f.proof, &ctx(), &st));
        let decoded = EncElgProof::from_bytes(&f.proof.to_bytes()).unwrap();
        assert_eq!(decoded, f.proof);
        decoded.verify(&ctx(), &st).unwrap();
        assert_eq!(
            format!("{:?}", f.inst.witness(&f.sk)),
            "EncElgWitness(<redacted>)"
        );
    }

    /// x = ±2^ℓ exactly is inside the relation: proven and verified.
    #[test]
    fn plaintext_at_the_range_bound_is_accepted() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(2401);
        for x in [BigInt::one() << ELL, -(BigInt::one() << ELL)] {
            let inst = Instance::new(&mut rng, &f.sk, x);
            let st = inst.statement(&f.sk, &f.aux);
            EncElgProof::prove(&mut rng, &ctx(), &st, &inst.witness(&f.sk))
                .unwrap()
                .verify(&ctx(), &st)
                .unwrap();
        }
    }

    #[test]
    fn tampered_fields_fail() {
        let f = fixture();
        let st = statement(f);
        let tampers: [(&str, Tamper); 9] = [
            ("S", |p| p.cap_s += 1u32),
            ("D", |p| p.cap_d += 1u32),
            ("Y", |p| p.cap_y += ProjectivePoint::GENERATOR),
            ("Z", |p| p.cap_z += ProjectivePoint::GENERATOR),
            ("T", |p| p.cap_t += 1u32),
            ("z1", |p| p.z1 += 1),
            ("w", |p| p.w += Scalar::ONE),
            ("z2", |p| p.z2 += 1u32),
            ("z3", |p| p.z3 += 1),
        ];
        for (name, tamper) in tampers {
            let mut bad = f.proof.clone();
            tamper(&mut bad);
            let err = bad.verify(&ctx(), &st).unwrap_err();
            assert_eq!(err.kind, FailureKind::Equation, "{name}: {err}");
        }
    }

    /// ENC-02: the challenge covers N0, N̂, s, t, C, A, B, X and the session, prover and ρ.
    #[test]
    fn enc_02_proof_for_other_statement_or_context_fails() {
        let f = fixture();
        let st = statement(f);
        for other in other_contexts() {
            assert_eq!(
                f.proof.verify(&other, &st).unwrap_err().kind,
                FailureKind::Equation
            );
        }
        let i = &f.inst;
        let g = ProjectivePoint::GENERATOR;
        let other_n0 = EncElgStatement {
            n0: f.other_sk.public(),
            ..st
        };
        assert!(f.proof.verify(&ctx(), &other_n0).is_err());
        let other_aux = EncElgStatement {
            aux: &f.other_aux,
            ..st
        };
        assert!(f.proof.verify(&ctx(), &other_aux).is_err());
        let nhat = f.aux.n().clone();
        let aux_s = RingPedersenParams::new(
            nhat.clone(),
            f.aux.s() * f.aux.t() % &nhat,
            f.aux.t().clone(),
        )
        .unwrap();
        let aux_t = RingPedersenParams::new(
            nhat.clone(),
            f.aux.s().clone(),
            f.aux.t() * f.aux.t() % &nhat,
        )
        .unwrap();
        for aux in [&aux_s, &aux_t] {
            assert_eq!(
                f.proof
                    .verify(&ctx(), &EncElgStatement { aux, ..st })
                    .unwrap_err()
                    .kind,
                FailureKind::Equation
            );
        }
        // Another encryption of the same x (a true statement, but not the one proven).
        let mut rng = ChaCha20Rng::seed_from_u64(2402);
        let (c2, _) = f.sk.encrypt(&mut rng, &i.x);
        let c2 = c2.as_uint().clone();
        let (a2, b2, x2) = (i.a + g, i.b_point + g, i.x_point + g);
        for changed in [
            EncElgStatement { cap_c: &c2, ..st },
            EncElgStatement { cap_a: &a2, ..st },
            EncElgStatement { cap_b: &b2, ..st },
            EncElgStatement { cap_x: &x2, ..st },
        ] {
            assert_eq!(
                f.proof.verify(&ctx(), &changed).unwrap_err().kind,
                FailureKind::Equation
            );
        }
    }

    /// PRE-01: a ciphertext of x with |x| = 2^{ℓ+ε+10} gets no accepting proof. The honest
    /// prover refuses; a cheating prover that skips only the range check produces a proof that
    /// satisfies all four equations and is stopped by the verifier's check z1 ∈ ±2^{ℓ+ε}.
    #[test]
    fn pre_01_out_of_range_plaintext_gets_no_accepting_proof() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(2403);
        for x in [
            BigInt::one() << (ELL + EPSILON + 10),
            -(BigInt::one() << (ELL + EPSILON + 10)),
        ] {
            let inst = Instance::new(&mut rng, &f.sk, x);
            let st = inst.statement(&f.sk, &f.aux);
            let err = EncElgProof::prove(&mut rng, &ctx(), &st, &inst.witness(&f.sk)).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Witness, CHECK_W_RANGE));

            let forged =
                EncElgProof::prove_any_range(&mut rng, &ctx(), &st, &inst.witness(&f.sk)).unwrap();
            assert!(
                equations_hold(&forged, &ctx(), &st),
                "the forgery satisfies every equation"
            );
            let err = forged.verify(&ctx(), &st).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Range, CHECK_Z1));
        }
        // Just out of range (|x| = 2^ℓ + 1) is refused by the honest prover as well.
        let inst = Instance::new(&mut rng, &f.sk, (BigInt::one() << ELL) + 1);
        let err = EncElgProof::prove(
            &mut rng,
            &ctx(),
            &inst.statement(&f.sk, &f.aux),
            &inst.witness(&f.sk),
        )
        .unwrap_err();
        assert_eq!(err.check, CHECK_W_RANGE);
    }

    /// The prover refuses a witness that does not match the statement, never panicking.
    #[test]
    fn wrong_witness_is_refused_by_prover() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(2404);
        let st = statement(f);
        let i = &f.inst;
        let prove = |rng: &mut ChaCha20Rng, st: &EncElgStatement<'_>, w: &EncElgWitness<'_>| {
            EncElgProof::prove(rng, &ctx(), st, w).unwrap_err()
        };
        let x1 = &i.x + 1;
        let rho1 = &i.rho + 1u32;
        let b1 = i.b + Scalar::ONE;
        let zero = BigUint::zero();
        let n0 = f.sk.public().n().clone();
        let cases: [(EncElgWitness<'_>, &str); 6] = [
            (
                EncElgWitness {
                    x: &x1,
                    ..i.witness(&f.sk)
                },
                CHECK_W_C,
            ),
            (
                EncElgWitness {
                    rho: &rho1,
                    ..i.witness(&f.sk)
                },
                CHECK_W_C,
            ),
            (
                EncElgWitness {
                    rho: &zero,
                    ..i.witness(&f.sk)
                },
                CHECK_W_RHO,
            ),
            (
                EncElgWitness {
                    rho: &n0,
                    ..i.witness(&f.sk)
                },
                CHECK_W_RHO,
            ),
            (
                EncElgWitness {
                    b: &b1,
                    ..i.witness(&f.sk)
                },
                CHECK_W_B,
            ),
            (
                EncElgWitness {
                    sk: &f.other_sk,
                    ..i.witness(&f.sk)
                },
                CHECK_W_KEY,
            ),
        ];
        for (w, check) in cases {
            let err = prove(&mut rng, &st, &w);
            assert_eq!((err.kind, err.check), (FailureKind::Witness, check));
        }
        let x2 = i.x_point + ProjectivePoint::GENERATOR;
        let err = prove(
            &mut rng,
            &EncElgStatement { cap_x: &x2, ..st },
            &i.witness(&f.sk),
        );
        assert_eq!((err.kind, err.check), (FailureKind::Witness, CHECK_W_X));
        // A non-unit C: the prover's relation check fails, without a panic.
        for c in [BigUint::zero(), f.sk.public().n_squared().clone()] {
            let err = prove(
                &mut rng,
                &EncElgStatement { cap_c: &c, ..st },
                &i.witness(&f.sk),
            );
            assert_eq!(err.kind, FailureKind::Witness);
        }
    }

    /// PRE-05: C = 0, C = N0², C ≥ N0², C with gcd(C, N0) ≠ 1 are refused as a bad statement,
    /// without panic, before the proof is looked at.
    #[test]
    fn pre_05_non_unit_ciphertext_is_refused() {
        let f = fixture();
        let st = statement(f);
        let (p, nn) = (f.sk.p().clone(), f.sk.public().n_squared().clone());
        for c in [
            BigUint::zero(),
            nn.clone(),
            &nn + 1u32,
            p.clone(),
            &p * &f.inst.c % &nn,
            f.sk.public().n().clone(),
        ] {
            let err = f
                .proof
                .verify(&ctx(), &EncElgStatement { cap_c: &c, ..st })
                .unwrap_err();
            assert_eq!(
                (err.kind, err.check),
                (FailureKind::Statement, CHECK_C_UNIT)
            );
        }
    }

    /// PRE-05, AUX-04: D, z2, S and T must be units of their groups (0, the modulus, a
    /// multiple of a prime factor are refused) before any exponentiation.
    #[test]
    fn pre_05_non_unit_proof_values_are_rejected() {
        let f = fixture();
        let st = statement(f);
        let (p, n0, nn) = (
            f.sk.p().clone(),
            f.sk.public().n().clone(),
            f.sk.public().n_squared().clone(),
        );
        for d in [
            BigUint::zero(),
            nn.clone(),
            &nn + &f.proof.cap_d,
            p.clone(),
            &p * 7u32,
        ] {
            let err = EncElgProof {
                cap_d: d,
                ..f.proof.clone()
            }
            .verify(&ctx(), &st)
            .unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Unit, CHECK_D_UNIT));
        }
        for z2 in [
            BigUint::zero(),
            n0.clone(),
            &n0 + &f.proof.z2,
            p.clone(),
            &p * 7u32,
        ] {
            let err = EncElgProof {
                z2,
                ..f.proof.clone()
            }
            .verify(&ctx(), &st)
            .unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Unit, CHECK_Z2_UNIT));
        }
        let nhat = f.aux.n();
        for v in [
            BigUint::zero(),
            nhat.clone(),
            nhat + &f.proof.cap_s,
            f.aux_p.clone(),
            &f.aux_p * 7u32,
        ] {
            let err = EncElgProof {
                cap_s: v.clone(),
                ..f.proof.clone()
            }
            .verify(&ctx(), &st)
            .unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Unit, CHECK_S_UNIT));
            let err = EncElgProof {
                cap_t: v,
                ..f.proof.clone()
            }
            .verify(&ctx(), &st)
            .unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Unit, CHECK_T_UNIT));
        }
    }

    /// Out-of-range z1, z3 fail with Range; at the bound they pass the range check (and fail an
    /// equation), so the range check precedes the equations (AUX-04).
    #[test]
    fn out_of_range_responses_fail_with_range() {
        let f = fixture();
        let st = statement(f);
        let z1_bound = BigInt::one() << (ELL + EPSILON);
        let z3_bound = BigInt::from(f.aux.n() << (ELL + EPSILON + 1));
        for sign in [1i32, -1] {
            let at = EncElgProof {
                z1: &z1_bound * sign,
                ..f.proof.clone()
            };
            assert_eq!(
                at.verify(&ctx(), &st).unwrap_err().kind,
                FailureKind::Equation
            );
            let over = EncElgProof {
                z1: &z1_bound * sign + sign,
                ..f.proof.clone()
            };
            let err = over.verify(&ctx(), &st).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Range, CHECK_Z1));
            let at = EncElgProof {
                z3: &z3_bound * sign,
                ..f.proof.clone()
            };
            assert_eq!(
                at.verify(&ctx(), &st).unwrap_err().kind,
                FailureKind::Equation
            );
            let over = EncElgProof {
                z3: &z3_bound * sign + sign,
                ..f.proof.clone()
            };
            let err = over.verify(&ctx(), &st).unwrap_err();
            assert_eq!((err.kind, err.check), (FailureKind::Range, CHECK_Z3));
        }
    }

    /// PARAM-02 at verification: the verifier's N̂ must not be the prover's N0.
    #[test]
    fn ring_pedersen_modulus_equal_to_n0_is_refused() {
        let f = fixture();
        let mut rng = ChaCha20Rng::seed_from_u64(2405);
        let (same, _) = RingPedersenSecret::generate(&mut rng, f.sk.p(), f.sk.q()).unwrap();
        let err = f
            .proof
            .verify(
                &ctx(),
                &EncElgStatement {
                    aux: &same,
                    ..statement(f)
                },
            )
            .unwrap_err();
        assert_eq!(
            (err.kind, err.check),
            (FailureKind::Statement, CHECK_DISTINCT)
        );
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let f = fixture();
        let bytes = f.proof.to_bytes();
        for len in 0..bytes.len() {
            assert!(
                EncElgProof::from_bytes(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            EncElgProof::from_bytes(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut tag = bytes.clone();
        tag[0] = tags::FAC;
        assert!(matches!(
            EncElgProof::from_bytes(&tag),
            Err(DecodeError::WrongTag { .. })
        ));
        let mut oversize = bytes.clone();
        oversize[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            EncElgProof::from_bytes(&oversize),
            Err(DecodeError::TooLong { field: "S", .. })
        ));
        // Field-level variants, re-encoded by hand.
        let p = &f.proof;
        let enc = |s: &[u8], d: &BigUint, z1_sign: u8, z1: &BigUint, w: &[u8; 32], z3: &BigInt| {
            let mut wr = Writer::new(tags::ENC_ELG);
            wr.bytes(s)
                .uint(d)
                .point(&p.cap_y)
                .point(&p.cap_z)
                .uint(&p.cap_t);
            wr.u8(z1_sign).uint(z1);
            let mut out = wr.finish();
            out.extend_from_slice(w);
            let mut tail = Writer::new(0);
            tail.uint(&p.z2).int(z3);
            out.extend_from_slice(&tail.finish()[1..]);
            out
        };
        let s = p.cap_s.to_bytes_be();
        let w: [u8; 32] = p.w.to_bytes().into();
        let sign = u8::from(p.z1.sign() == num_bigint::Sign::Minus);
        assert_eq!(
            EncElgProof::from_bytes(&enc(&s, &p.cap_d, sign, p.z1.magnitude(), &w, &p.z3)).unwrap(),
            *p
        );
        let mut s_padded = vec![0u8];
        s_padded.extend_from_slice(&s);
        assert_eq!(
            EncElgProof::from_bytes(&enc(&s_padded, &p.cap_d, sign, p.z1.magnitude(), &w, &p.z3)),
            Err(DecodeError::NonCanonical { field: "S" })
        );
        let d_too_long = BigUint::one() << (8 * MAX_MODULUS_SQ_BYTES as u32);
        assert!(matches!(
            EncElgProof::from_bytes(&enc(&s, &d_too_long, sign, p.z1.magnitude(), &w, &p.z3)),
            Err(DecodeError::TooLong { field: "D", .. })
        ));
        assert_eq!(
            EncElgProof::from_bytes(&enc(&s, &p.cap_d, 1, &BigUint::zero(), &w, &p.z3)),
            Err(DecodeError::NonCanonical { field: "z1" })
        );
        assert_eq!(
            EncElgProof::from_bytes(&enc(&s, &p.cap_d, 2, p.z1.magnitude(), &w, &p.z3)),
            Err(DecodeError::NonCanonical { field: "z1" })
        );
        let z1_too_long = BigUint::one() << (8 * Z1_MAX_BYTES as u32);
        assert!(matches!(
            EncElgProof::from_bytes(&enc(&s, &p.cap_d, 0, &z1_too_long, &w, &p.z3)),
            Err(DecodeError::TooLong { field: "z1", .. })
        ));
        assert!(matches!(
            EncElgProof::from_bytes(&enc(
                &s,
                &p.cap_d,
                sign,
                p.z1.magnitude(),
                &[0xFF; 32],
                &p.z3
            )),
            Err(DecodeError::BadScalar { field: "w" })
        ));
        let z3_too_long = BigInt::one() << (8 * Z3_MAX_BYTES as u32);
        assert!(matches!(
            EncElgProof::from_bytes(&enc(&s, &p.cap_d, sign, p.z1.magnitude(), &w, &z3_too_long)),
            Err(DecodeError::TooLong { field: "z3", .. })
        ));
        // An invalid point in Y.
        let y_at = 1 + 4 + s.len() + 4 + p.cap_d.to_bytes_be().len();
        let mut bad_point = bytes.clone();
        bad_point[y_at] = 0x02;
        bad_point[y_at + 1..y_at + 33].fill(0xFF);
        assert!(matches!(
            EncElgProof::from_bytes(&bad_point),
            Err(DecodeError::BadPoint { field: "Y" })
        ));
        // SEC1 tag 0x05 ("compact") decodes to the same point in k256: a second encoding,
        // refused by the reader.
        for (at, field) in [(y_at, "Y"), (y_at + 33, "Z")] {
            let mut compact = bytes.clone();
            compact[at] = 0x05;
            assert_eq!(
                EncElgProof::from_bytes(&compact),
                Err(DecodeError::BadPoint { field })
            );
        }
        // With S = 0 and D = 0 (empty magnitudes) the points are still located correctly.
        let zeros = EncElgProof {
            cap_s: BigUint::zero(),
            cap_d: BigUint::zero(),
            ..p.clone()
        };
        let mut zb = zeros.to_bytes();
        assert_eq!(EncElgProof::from_bytes(&zb).unwrap(), zeros);
        zb[1 + 4 + 4] = 0x05;
        assert_eq!(
            EncElgProof::from_bytes(&zb),
            Err(DecodeError::BadPoint { field: "Y" })
        );
    }
}
