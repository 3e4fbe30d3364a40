//! Security parameters of CGGMP24 (ePrint 2021/060, rev. 2024-10-21), App. C.1.
//!
//! Every range bound used by a proof or protocol is written here once, as a named constant
//! (checklist PARAM-04). The values follow App. C.1: ℓ = |q|, ε = 2ℓ, ℓ' = 5ℓ, statistical
//! security m = 128, Paillier moduli of 8κ = 3072 bits (κ = 384 bits per prime half, the NIST
//! size for 128-bit computational security). The inequalities the paper needs between them are
//! checked at compile time below, so an edit that breaks them fails the build, not a test run.

/// κ: computational security level in bits that the moduli sizes target.
pub const KAPPA_BITS: u32 = 128;

/// m: repetitions of the statistical proofs Πmod (Fig. 12), Πprm (Fig. 13), Πaff-g* (Fig. 27)
/// and Πdec (Fig. 28); soundness error 2^-m. A constant, never read from the wire (PARAM-03).
pub const STAT_REPETITIONS: usize = 128;

/// ℓ: bit bound of plaintexts in ±2^ℓ (secret shares, nonces, curve scalars); ℓ = |q| = 256.
pub const ELL: u32 = 256;

/// ℓ': bit bound of the additive masks β in ±2^ℓ' used by the affine operations; ℓ' = 5ℓ.
pub const ELL_PRIME: u32 = 5 * ELL;

/// ε: slack bits between what honest provers sample and what the proofs guarantee; ε = 2ℓ.
pub const EPSILON: u32 = 2 * ELL;

/// Bit length of each safe prime of a Paillier or ring-Pedersen modulus (4κ' with κ' = 384).
pub const PRIME_BITS: u32 = 1536;

/// Minimum bit length of a Paillier modulus N and of a ring-Pedersen modulus N̂ (PARAM-01).
/// A product of two 1536-bit primes has 3071 or 3072 bits; we generate primes with the top two
/// bits set so honest moduli always have exactly 3072 bits, and refuse anything shorter.
pub const MIN_MODULUS_BITS: u32 = 2 * PRIME_BITS;

/// Largest modulus we accept from a peer (bounds the cost an attacker can impose on a verifier
/// and the size of every encoding that carries residues).
pub const MAX_MODULUS_BITS: u32 = 4096;

/// Largest number of bytes of an element of Z_{N²} for the largest accepted N.
pub const MAX_MODULUS_SQ_BYTES: usize = (2 * MAX_MODULUS_BITS as usize).div_ceil(8);

/// Largest number of bytes of an element of Z_N for the largest accepted N.
pub const MAX_MODULUS_BYTES: usize = (MAX_MODULUS_BITS as usize).div_ceil(8);

/// Bit length of the curve order q of secp256k1.
pub const CURVE_ORDER_BITS: u32 = 256;

/// Extra bits drawn before reducing a hash output modulo a bound, so the reduced value is
/// within statistical distance 2^-128 of uniform.
pub const HASH_REDUCTION_SLACK_BITS: u32 = 128;

/// Miller–Rabin rounds with random bases for a probable prime; together with the base-2
/// Fermat test and the sieve this gives an error below 2^-128 for adversarial inputs
/// (4^-64) and far below it for random candidates.
pub const MILLER_RABIN_ROUNDS: usize = 64;

// App. C.1 consistency, checked when the crate is compiled.
// ε ≥ ℓ + κ: the masks α ← ±2^{ℓ+ε} statistically hide e·x with e ∈ ±q (|q| = ℓ).
const _: () = assert!(EPSILON >= ELL + KAPPA_BITS);
// ℓ' ≥ 2ℓ + ε + κ: β ← ±2^ℓ' hides a product k·γ plus the proof slack.
const _: () = assert!(ELL_PRIME >= 2 * ELL + EPSILON + KAPPA_BITS);
// The largest response of Πaff-g, ±2^{ℓ'+ε} times a curve scalar, must not wrap modulo N/2.
const _: () = assert!(ELL_PRIME + EPSILON + ELL + 2 < MIN_MODULUS_BITS);
// At least 128 repetitions of the statistical proofs (PARAM-03).
const _: () = assert!(STAT_REPETITIONS >= 128);
// Moduli are at least 3072 bits (PARAM-01).
const _: () = assert!(MIN_MODULUS_BITS >= 3072);

/// Bit bound of the plaintext y proven by Πdec (Fig. 28) in the identification of Fig. 9: the
/// aggregate δ_i/χ_i ciphertexts decrypt to sums of up to 2^16 terms, each within ±2^{ℓ'+ε+1}
/// (products k·γ ∈ ±2^{2ℓ} plus masks ∈ ±2^{ℓ'+ε}), so ±2^{ℓ'+ε+20} bounds them with room.
pub const DEC_PLAINTEXT_BITS: u32 = ELL_PRIME + EPSILON + 20;
const _: () = assert!(DEC_PLAINTEXT_BITS + EPSILON + 2 < MIN_MODULUS_BITS);

#[cfg(test)]
mod tests {
    use super::*;

    /// PARAM-04: the values are App. C.1's, written once. A change here must be deliberate.
    #[test]
    fn param_04_values_are_app_c1() {
        assert_eq!(ELL, CURVE_ORDER_BITS, "ℓ = |q|");
        assert_eq!(EPSILON, 2 * ELL, "ε = 2ℓ");
        assert_eq!(ELL_PRIME, 5 * ELL, "ℓ' = 5ℓ");
        assert_eq!((ELL, EPSILON, ELL_PRIME), (256, 512, 1280));
        assert_eq!(STAT_REPETITIONS, 128, "m = 128 (PARAM-03)");
        assert_eq!(MIN_MODULUS_BITS, 3072, "N ≥ 3072 bits (PARAM-01)");
        assert_eq!(PRIME_BITS, 1536);
    }
}
