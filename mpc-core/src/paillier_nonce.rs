//! Paillier encryption randomness from fixed-base tables.
//!
//! Every fresh Paillier encryption costs ρ^N mod N², a full-length exponentiation: under a
//! peer's key (Fig. 8's D_{j,i} and the A of each Πaff-g) about 45 ms at N = 3072 bits, and the
//! largest single cost of presigning. The encryptor is free to choose ρ, so it samples it in a
//! form whose N-th power comes from precomputed tables instead:
//!
//! ρ = u·h^α mod N, hence ρ^N = u^N·(h^N)^α mod N²,
//!
//! where h is a fixed square of Z*_N, h^N mod N² is computed once per key, α is a fresh secret
//! exponent and u is one of four fixed coset representatives {1, −1, w, −w} of the squares
//! (w with Jacobi symbol −1), chosen uniformly. Both h^α mod N and (h^N)^α mod N² are
//! fixed-base exponentiations ([`crate::fixed_base`]): one multiplication per 6 exponent bits
//! and no squarings, about 3.5× cheaper than the exponentiation they replace.
//!
//! **Distribution.** For a Paillier-Blum N = p·q (what Πmod proves), the squares QR_N form a
//! cyclic group of order p'q' (p = 2p' + 1, q = 2q' + 1) that a random square h generates
//! except with probability about 2/p', and {1, −1, w, −w} meet each of the four cosets of
//! QR_N in Z*_N once (−1 is a non-residue modulo both primes since p ≡ q ≡ 3 mod 4; w is a
//! residue modulo exactly one). So:
//! - under a peer's key, α is uniform over 2^{|N| + κ} values (κ = 128, [`NONCE_EXTRA_BITS`])
//!   and ρ is within statistical distance 2^{-κ} of uniform over Z*_N;
//! - under the owner's key, α is drawn separately modulo each prime (where the orders p' and
//!   q' are known), again with κ extra bits, with the tables taken modulo p, q, p², q².
//!
//! ρ is therefore (statistically) the uniform unit the paper asks for: no new assumption, the
//! ciphertexts and the proofs' responses are distributed as before. For a key that is not
//! Paillier-Blum the distribution may differ, which only concerns that key's (dishonest) owner,
//! who can decrypt anyway.
//!
//! w is derived from N by hashing and h = w² (no trusted setup, reproducible; one exponentiation
//! with exponent N gives both w^N and h^N = (w^N)² mod N²); a modulus for which
//! no w with Jacobi symbol −1 turns up (a perfect square) gets no tables and encrypts the
//! plain way.
//!
//! The exponents are secret: the tables run every window (`new_fixed_length`), the coset
//! representative is selected with a constant-time scan, and the remaining side channel (table
//! lookups indexed by exponent digits) is the one `audits/bigint-timing.md` describes for all
//! fixed-base tables.

use alloc::vec::Vec;

use num_bigint::BigUint;
use num_traits::One;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::arith::{crt_combine, jacobi, random_bits, SecretUint};
use crate::fixed_base::FixedBaseTable;
use crate::monty::Montgomery;
use crate::params::KAPPA_BITS;

/// Extra exponent bits beyond the group order's length: the statistical distance of h^α from
/// uniform over ⟨h⟩ is below 2^-[`NONCE_EXTRA_BITS`].
pub(crate) const NONCE_EXTRA_BITS: usize = KAPPA_BITS as usize;

/// Attempts at hashing to a w with Jacobi symbol −1 before giving up (each succeeds with
/// probability 1/2 for a Blum modulus; never for a perfect square).
const MAX_W_ATTEMPTS: u32 = 64;

const LABEL_W: &[u8] = b"cggmp24/paillier-nonce/w";

/// Hashes (label, N, counter) to an integer modulo N (|N| + 128 bits of SHA-512 output,
/// reduced: statistically close to uniform).
fn hash_to_zn(label: &[u8], n: &BigUint, counter: u32) -> BigUint {
    let n_bytes = n.to_bytes_be();
    let want = n_bytes.len() + 16;
    let mut out = Vec::with_capacity(want + 64);
    let mut block = 0u32;
    while out.len() < want {
        let mut h = Sha512::new();
        h.update((label.len() as u64).to_be_bytes());
        h.update(label);
        h.update((n_bytes.len() as u64).to_be_bytes());
        h.update(&n_bytes);
        h.update(counter.to_be_bytes());
        h.update(block.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        block += 1;
    }
    BigUint::from_bytes_be(&out[..want]) % n
}

/// The public bases of N: a unit w with Jacobi symbol (w/N) = −1, hashed from N, and the
/// square h = w² mod N (≠ 1). Taking h = w² rather than a second hashed square makes
/// h^N ≡ (w^N)² mod N² (a ≡ b mod N implies a^N ≡ b^N mod N²), so building the tables costs
/// one exponentiation with exponent N instead of two. h generates the squares QR_N unless
/// w ≡ ±1 modulo p or q (probability about 2/p + 2/q), as for any other hashed square.
/// `None` if no such w turns up (N is a perfect square) or N is degenerate.
pub(crate) fn derive_bases(n: &BigUint) -> Option<(BigUint, BigUint)> {
    (0..MAX_W_ATTEMPTS)
        .map(|counter| hash_to_zn(LABEL_W, n, counter))
        .filter(|w| jacobi(w, n) == -1)
        .map(|w| (&w * &w % n, w))
        .find(|(h, _)| !h.is_one())
}

/// h^N mod N² from w^N mod N² for h = w² mod N (see [`derive_bases`]).
fn h_pow_n_from(w_pow_n: &BigUint, nn: &BigUint) -> BigUint {
    w_pow_n * w_pow_n % nn
}

/// The four coset representatives u ∈ {1, −1, w, −w} modulo N and their N-th powers modulo
/// N² (u^N for −u is −(u^N): (N − u)^N ≡ −u^N mod N² by the binomial theorem).
#[derive(Clone)]
struct CosetReps {
    mod_n: [BigUint; 4],
    pow_n: [BigUint; 4],
    limbs_n: usize,
    limbs_nn: usize,
}

impl CosetReps {
    fn new(n: &BigUint, nn: &BigUint, w: &BigUint, w_pow_n: &BigUint) -> Self {
        let minus = |x: &BigUint, m: &BigUint| m - x;
        Self {
            mod_n: [BigUint::one(), n - 1u32, w.clone(), minus(w, n)],
            pow_n: [
                BigUint::one(),
                nn - 1u32,
                w_pow_n.clone(),
                minus(w_pow_n, nn),
            ],
            limbs_n: n.to_u64_digits().len(),
            limbs_nn: nn.to_u64_digits().len(),
        }
    }

    /// (ρ0·u mod N, P0·u^N mod N²) for a uniformly random representative u, selected by a
    /// scan over all four so that the memory access pattern does not depend on the choice.
    fn apply_random(
        &self,
        rng: &mut impl CryptoRngCore,
        rho0: &SecretUint,
        pow0: &SecretUint,
        n: &BigUint,
        nn: &BigUint,
    ) -> (SecretUint, SecretUint) {
        let c = random_coset(rng);
        let u = SecretUint::new(ct_select(&self.mod_n, c, self.limbs_n));
        let u_pow_n = SecretUint::new(ct_select(&self.pow_n, c, self.limbs_nn));
        (
            SecretUint::new(rho0.expose() * u.expose() % n),
            SecretUint::new(pow0.expose() * u_pow_n.expose() % nn),
        )
    }
}

/// values[c] by a constant-time scan over fixed-width limb vectors.
fn ct_select(values: &[BigUint; 4], c: u8, limbs: usize) -> BigUint {
    let mut out = alloc::vec![0u64; limbs];
    for (k, v) in values.iter().enumerate() {
        let mut digits = v.to_u64_digits();
        digits.resize(limbs, 0);
        let choose = (k as u8).ct_eq(&c);
        for (o, d) in out.iter_mut().zip(digits.iter()) {
            o.conditional_assign(d, choose);
        }
    }
    let mut bytes = Vec::with_capacity(limbs * 8);
    for d in &out {
        bytes.extend_from_slice(&d.to_le_bytes());
    }
    let value = BigUint::from_bytes_le(&bytes);
    zeroize::Zeroize::zeroize(&mut out);
    zeroize::Zeroize::zeroize(&mut bytes);
    value
}

/// A uniformly random coset index c ∈ [0, 4).
fn random_coset(rng: &mut impl CryptoRngCore) -> u8 {
    (rng.next_u32() & 3) as u8
}

/// Tables for sampling randomness under someone else's key N (no factorisation).
#[derive(Clone)]
pub(crate) struct PublicNonceTables {
    /// h^{2^{6i}} mod N.
    h: FixedBaseTable,
    /// (h^N)^{2^{6i}} mod N².
    h_pow_n: FixedBaseTable,
    reps: CosetReps,
    exp_bits: usize,
}

impl PublicNonceTables {
    /// Builds the tables of N (one exponentiation w^N mod N² and about 2·(|N| + κ) squarings).
    /// `None` if N has no usable bases (see [`derive_bases`]).
    pub(crate) fn new(n: &BigUint, nn: &BigUint, mont_nn: &Montgomery) -> Option<Self> {
        let (h, w) = derive_bases(n)?;
        let mont_n = Montgomery::new(n)?;
        let exp_bits = n.bits() as usize + NONCE_EXTRA_BITS;
        let w_pow_n = mont_nn.pow(&w, n);
        let h_pow_n = h_pow_n_from(&w_pow_n, nn);
        Some(Self {
            h: FixedBaseTable::new_fixed_length(&mont_n, &h, exp_bits),
            h_pow_n: FixedBaseTable::new_fixed_length(mont_nn, &h_pow_n, exp_bits),
            reps: CosetReps::new(n, nn, &w, &w_pow_n),
            exp_bits,
        })
    }

    /// A fresh ρ ∈ Z*_N and ρ^N mod N².
    pub(crate) fn sample(
        &self,
        rng: &mut impl CryptoRngCore,
        n: &BigUint,
        nn: &BigUint,
    ) -> (SecretUint, SecretUint) {
        let alpha = SecretUint::new(random_bits(rng, self.exp_bits as u64));
        let rho0 = SecretUint::new(self.h.pow(alpha.expose()));
        let pow0 = SecretUint::new(self.h_pow_n.pow(alpha.expose()));
        self.reps.apply_random(rng, &rho0, &pow0, n, nn)
    }
}

/// The CRT constants [`OwnerNonceTables::sample`] recombines with.
pub(crate) struct CrtModuli<'a> {
    pub(crate) p: &'a BigUint,
    pub(crate) q: &'a BigUint,
    pub(crate) p_inv_mod_q: &'a BigUint,
    pub(crate) pp: &'a BigUint,
    pub(crate) qq: &'a BigUint,
    pub(crate) pp_inv_mod_qq: &'a BigUint,
}

/// Tables for sampling randomness under one's own key, modulo each prime and its square.
pub(crate) struct OwnerNonceTables {
    /// h mod p, h mod q.
    h_p: FixedBaseTable,
    h_q: FixedBaseTable,
    /// h^N mod p², h^N mod q².
    h_pow_n_p: FixedBaseTable,
    h_pow_n_q: FixedBaseTable,
    reps: CosetReps,
    bits_p: usize,
    bits_q: usize,
}

impl OwnerNonceTables {
    /// Builds the owner's tables. `pow_n` computes x^N mod N² (the owner's CRT routine).
    /// `None` if the bases are unusable (impossible for a Paillier-Blum key, whose h has order
    /// p' or q' modulo each prime unless h ≡ 1 there, which is checked).
    pub(crate) fn new(
        n: &BigUint,
        nn: &BigUint,
        m: &CrtModuli<'_>,
        monts: [&Montgomery; 4],
        pow_n: impl Fn(&BigUint) -> BigUint,
    ) -> Option<Self> {
        let (h, w) = derive_bases(n)?;
        if (&h % m.p).is_one() || (&h % m.q).is_one() {
            return None;
        }
        let [mont_p, mont_q, mont_pp, mont_qq] = monts;
        let (bits_p, bits_q) = (
            m.p.bits() as usize + NONCE_EXTRA_BITS,
            m.q.bits() as usize + NONCE_EXTRA_BITS,
        );
        let w_pow_n = pow_n(&w);
        let h_pow_n = h_pow_n_from(&w_pow_n, nn);
        Some(Self {
            h_p: FixedBaseTable::new_fixed_length(mont_p, &(&h % m.p), bits_p),
            h_q: FixedBaseTable::new_fixed_length(mont_q, &(&h % m.q), bits_q),
            h_pow_n_p: FixedBaseTable::new_fixed_length(mont_pp, &(&h_pow_n % m.pp), bits_p),
            h_pow_n_q: FixedBaseTable::new_fixed_length(mont_qq, &(&h_pow_n % m.qq), bits_q),
            reps: CosetReps::new(n, nn, &w, &w_pow_n),
            bits_p,
            bits_q,
        })
    }

    /// A fresh ρ ∈ Z*_N and ρ^N mod N²: α_p and α_q drawn independently (h has order p'
    /// modulo p and h^N order dividing p' modulo p², and likewise for q, so this is h^α for an
    /// α uniform modulo p'q' by the CRT).
    pub(crate) fn sample(
        &self,
        rng: &mut impl CryptoRngCore,
        m: &CrtModuli<'_>,
        n: &BigUint,
        nn: &BigUint,
    ) -> (SecretUint, SecretUint) {
        let alpha_p = SecretUint::new(random_bits(rng, self.bits_p as u64));
        let alpha_q = SecretUint::new(random_bits(rng, self.bits_q as u64));
        let rho_p = SecretUint::new(self.h_p.pow(alpha_p.expose()));
        let rho_q = SecretUint::new(self.h_q.pow(alpha_q.expose()));
        let pow_p = SecretUint::new(self.h_pow_n_p.pow(alpha_p.expose()));
        let pow_q = SecretUint::new(self.h_pow_n_q.pow(alpha_q.expose()));
        let rho0 = SecretUint::new(crt_combine(
            rho_p.expose(),
            rho_q.expose(),
            m.p,
            m.q,
            m.p_inv_mod_q,
        ));
        let pow0 = SecretUint::new(crt_combine(
            pow_p.expose(),
            pow_q.expose(),
            m.pp,
            m.qq,
            m.pp_inv_mod_qq,
        ));
        self.reps.apply_random(rng, &rho0, &pow0, n, nn)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::arith::pow_mod;
    use crate::fixtures;
    use num_bigint::BigInt;
    use num_traits::Zero;

    #[test]
    fn bases_have_the_promised_symbols() {
        let [p, q] = fixtures::safe_prime_pair(0);
        let n = &p * &q;
        let (h, w) = derive_bases(&n).unwrap();
        assert_eq!(jacobi(&w, &n), -1);
        // h is a square modulo both primes
        assert_eq!(jacobi(&(&h % &p), &p), 1);
        assert_eq!(jacobi(&(&h % &q), &q), 1);
        // deterministic
        assert_eq!(derive_bases(&n).unwrap(), (h, w));
    }

    #[test]
    fn a_perfect_square_modulus_gets_no_bases() {
        let [p, _] = fixtures::safe_prime_pair(0);
        assert!(derive_bases(&(&p * &p)).is_none());
    }

    #[test]
    fn constant_time_select_picks_each_value() {
        let values = [
            BigUint::from(1u32),
            BigUint::from(u64::MAX) << 70,
            BigUint::from(7u32),
            BigUint::zero(),
        ];
        for (c, v) in values.iter().enumerate() {
            assert_eq!(&ct_select(&values, c as u8, 3), v);
        }
    }

    #[test]
    fn sampled_nonces_cover_all_four_cosets() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let [p, q] = fixtures::safe_prime_pair(0);
        let n = &p * &q;
        let nn = &n * &n;
        let tables = PublicNonceTables::new(&n, &nn, &Montgomery::new(&nn).unwrap()).unwrap();
        let owner = crate::paillier::PaillierSecretKey::from_primes(p.clone(), q.clone()).unwrap();
        for side in ["public", "owner"] {
            let mut seen = [false; 4];
            for _ in 0..24 {
                let (rho, rho_n) = if side == "public" {
                    let (rho, rho_n) = tables.sample(&mut rng, &n, &nn);
                    (rho.expose().clone(), rho_n.expose().clone())
                } else {
                    let fresh = owner.fresh_nonce(&mut rng);
                    let c = owner.encrypt_fresh(&BigInt::zero(), &fresh);
                    (fresh.expose().clone(), c.as_uint().clone())
                };
                assert_eq!(pow_mod(&rho, &n, &nn), rho_n, "{side}");
                let lp = jacobi(&(&rho % &p), &p);
                let lq = jacobi(&(&rho % &q), &q);
                seen[usize::from(lp < 0) * 2 + usize::from(lq < 0)] = true;
            }
            assert_eq!(
                seen, [true; 4],
                "{side}: ρ must reach every coset of the squares"
            );
        }
    }
}
