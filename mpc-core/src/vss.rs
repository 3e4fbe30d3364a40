//! Verifiable secret sharing over secp256k1: Shamir polynomials, Pedersen and Feldman
//! commitments, share verification, Lagrange coefficients.
//!
//! Used by the Pedersen-VSS DKG of Gennaro, Jarecki, Krawczyk, Rabin (J. Cryptology 2007,
//! "Secure Distributed Key Generation for Discrete-Log Based Cryptosystems", protocol DKG) in
//! [`crate::dkg`], and later by presigning (Lagrange conversion, CGGMP24 App. F.1) and
//! resharing.
//!
//! A polynomial of degree t−1 is a_0 + a_1·x + … + a_{t−1}·x^{t−1}; t shares determine it.
//! - Pedersen commitments (GJKR step 1a): C_k = a_k·G + b_k·H, hiding a_0 perfectly because
//!   nobody knows log_G H ([`generator_h`], checklist DKG-07).
//! - Feldman commitments (GJKR step 4a): A_k = a_k·G, which reveal a_0·G.

use alloc::vec::Vec;
use core::fmt;

use k256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use k256::elliptic_curve::sec1::FromEncodedPoint;
use k256::elliptic_curve::Field;
use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar, Secp256k1};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Domain separation tag of the hash-to-curve call that defines H (RFC 9380,
/// `secp256k1_XMD:SHA-256_SSWU_RO_` suite with this appliance's tag).
pub const GENERATOR_H_DST: &[u8] =
    b"custody-appliance/mpc-core/pedersen-vss/v1/secp256k1_XMD:SHA-256_SSWU_RO_";

/// Message hashed to the curve to obtain H.
pub const GENERATOR_H_MSG: &[u8] = b"Pedersen second generator H";

/// SEC1 compressed encoding of H = hash_to_curve(GENERATOR_H_MSG, GENERATOR_H_DST), pinned so
/// it is computed once; `tests::dkg_07_h_is_hash_to_curve_output` recomputes it.
pub const GENERATOR_H_SEC1: [u8; 33] = [
    0x02, 0xbd, 0x9c, 0xce, 0x12, 0xf9, 0x34, 0x7c, 0x26, 0xe4, 0x04, 0x0e, 0xab, 0x8f, 0xbb, 0x76,
    0xec, 0xd0, 0xf8, 0xc8, 0x78, 0x30, 0xba, 0x52, 0x89, 0x4a, 0x8b, 0x68, 0x09, 0x24, 0x45, 0xe9,
    0x1f,
];

/// Errors of the VSS helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VssError {
    /// A set of evaluation points contains zero (mod q): the point 0 is the secret (DKG-04).
    #[error("evaluation point {0} is zero mod q")]
    ZeroPoint(usize),
    /// Two evaluation points are equal mod q (DKG-04).
    #[error("evaluation points {0} and {1} are equal mod q")]
    DuplicatePoint(usize, usize),
    /// An index is outside the list it refers to, or a list is empty.
    #[error("index out of range or empty set")]
    OutOfRange,
    /// Values and points have different lengths.
    #[error("{points} evaluation points but {values} values")]
    LengthMismatch {
        /// Number of points.
        points: usize,
        /// Number of values.
        values: usize,
    },
    /// The pinned constant H does not decode (never expected: the constant is tested).
    #[error("the pinned generator H does not decode")]
    BadGeneratorH,
}

/// The second Pedersen generator H, from [`GENERATOR_H_SEC1`] (checklist DKG-07: H is
/// hash-to-curve output, so nobody knows log_G H).
pub fn generator_h() -> Result<ProjectivePoint, VssError> {
    let encoded =
        EncodedPoint::from_bytes(GENERATOR_H_SEC1).map_err(|_| VssError::BadGeneratorH)?;
    Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&encoded))
        .map(ProjectivePoint::from)
        .ok_or(VssError::BadGeneratorH)
}

/// Recomputes H by hash-to-curve (RFC 9380 `hash_to_curve`, random-oracle variant).
pub fn hash_to_curve_h() -> Result<ProjectivePoint, VssError> {
    Secp256k1::hash_from_bytes::<ExpandMsgXmd<Sha256>>(&[GENERATOR_H_MSG], &[GENERATOR_H_DST])
        .map_err(|_| VssError::BadGeneratorH)
}

/// A secret polynomial over F_q; coefficients are zeroized on drop and never printed.
pub struct Polynomial {
    coeffs: Zeroizing<Vec<Scalar>>,
}

impl fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Polynomial")
            .field("coefficients", &self.coeffs.len())
            .finish_non_exhaustive()
    }
}

impl Polynomial {
    /// A uniformly random polynomial with `len` coefficients (degree `len − 1`).
    pub fn random(rng: &mut impl CryptoRngCore, len: usize) -> Self {
        let coeffs = (0..len).map(|_| Scalar::random(&mut *rng)).collect();
        Self {
            coeffs: Zeroizing::new(coeffs),
        }
    }

    /// A random polynomial with `len` coefficients and constant term `a0`.
    pub fn with_constant(rng: &mut impl CryptoRngCore, a0: &Scalar, len: usize) -> Self {
        let mut p = Self::random(rng, len);
        if let Some(c) = p.coeffs.first_mut() {
            *c = *a0;
        }
        p
    }

    /// Number of coefficients (degree + 1).
    pub fn len(&self) -> usize {
        self.coeffs.len()
    }

    /// True for the empty polynomial.
    pub fn is_empty(&self) -> bool {
        self.coeffs.is_empty()
    }

    /// The constant term a_0 (the dealt secret).
    ///
    /// **Security warning:** secret material; keep it in a `Zeroizing` wrapper.
    pub fn constant_term(&self) -> Zeroizing<Scalar> {
        Zeroizing::new(self.coeffs.first().copied().unwrap_or(Scalar::ZERO))
    }

    /// f(x) by Horner's rule.
    pub fn evaluate(&self, x: &Scalar) -> Zeroizing<Scalar> {
        let mut acc = Zeroizing::new(Scalar::ZERO);
        for c in self.coeffs.iter().rev() {
            *acc = *acc * x + c;
        }
        acc
    }

    /// Feldman commitments A_k = a_k·G (GJKR step 4a).
    pub fn feldman_commitments(&self) -> Vec<ProjectivePoint> {
        self.coeffs
            .iter()
            .map(|a| ProjectivePoint::GENERATOR * a)
            .collect()
    }

    /// Pedersen commitments C_k = a_k·G + b_k·H (GJKR step 1a), `self` = a, `blinding` = b.
    /// A missing blinding coefficient counts as zero.
    pub fn pedersen_commitments(
        &self,
        blinding: &Polynomial,
        h: &ProjectivePoint,
    ) -> Vec<ProjectivePoint> {
        self.coeffs
            .iter()
            .enumerate()
            .map(|(k, a)| {
                let b = blinding.coeffs.get(k).copied().unwrap_or(Scalar::ZERO);
                ProjectivePoint::GENERATOR * a + *h * b
            })
            .collect()
    }
}

/// Σ_k V_k·x^k for a commitment vector V (Horner).
pub fn evaluate_commitments(commitments: &[ProjectivePoint], x: &Scalar) -> ProjectivePoint {
    let mut acc = ProjectivePoint::IDENTITY;
    for c in commitments.iter().rev() {
        acc = acc * x + c;
    }
    acc
}

/// GJKR step 1b: s·G + s'·H = Σ_k C_k·x^k.
pub fn verify_pedersen_share(
    commitments: &[ProjectivePoint],
    h: &ProjectivePoint,
    x: &Scalar,
    s: &Scalar,
    s_prime: &Scalar,
) -> bool {
    ProjectivePoint::GENERATOR * s + *h * s_prime == evaluate_commitments(commitments, x)
}

/// GJKR step 4b: s·G = Σ_k A_k·x^k.
pub fn verify_feldman_share(commitments: &[ProjectivePoint], x: &Scalar, s: &Scalar) -> bool {
    ProjectivePoint::GENERATOR * s == evaluate_commitments(commitments, x)
}

/// Public evidence against a dealer (GJKR step 4b): the share (s, s') at x opens the dealer's
/// Pedersen commitments but s does not match its Feldman values. Anyone holding the dealer's
/// two commitment vectors (broadcast, so signed by it) can check a complaint with this.
pub fn feldman_inconsistency(
    pedersen: &[ProjectivePoint],
    feldman: &[ProjectivePoint],
    h: &ProjectivePoint,
    x: &Scalar,
    s: &Scalar,
    s_prime: &Scalar,
) -> bool {
    verify_pedersen_share(pedersen, h, x, s, s_prime) && !verify_feldman_share(feldman, x, s)
}

/// Checks that evaluation points are non-zero and pairwise distinct mod q (DKG-04).
pub fn check_points(points: &[Scalar]) -> Result<(), VssError> {
    for (i, p) in points.iter().enumerate() {
        if bool::from(p.is_zero()) {
            return Err(VssError::ZeroPoint(i));
        }
        for (j, other) in points.iter().enumerate().take(i) {
            if p == other {
                return Err(VssError::DuplicatePoint(j, i));
            }
        }
    }
    Ok(())
}

/// The Lagrange coefficient λ_j(at) = Π_{k≠j} (at − x_k)/(x_j − x_k) over `points`.
pub fn lagrange_coefficient(points: &[Scalar], j: usize, at: &Scalar) -> Result<Scalar, VssError> {
    check_points(points)?;
    let x_j = points.get(j).ok_or(VssError::OutOfRange)?;
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    for (k, x_k) in points.iter().enumerate() {
        if k != j {
            num *= *at - x_k;
            den *= *x_j - x_k;
        }
    }
    // den ≠ 0 because the points are distinct.
    Option::<Scalar>::from(den.invert())
        .map(|inv| num * inv)
        .ok_or(VssError::OutOfRange)
}

/// All Lagrange coefficients at 0 for `points` (App. F.1: λ_j with Σ λ_j·f(x_j) = f(0)).
pub fn lagrange_coefficients_at_zero(points: &[Scalar]) -> Result<Vec<Scalar>, VssError> {
    if points.is_empty() {
        return Err(VssError::OutOfRange);
    }
    (0..points.len())
        .map(|j| lagrange_coefficient(points, j, &Scalar::ZERO))
        .collect()
}

/// f(0) from the shares f(x_j) (secret result, zeroized).
pub fn interpolate_at_zero(
    points: &[Scalar],
    values: &[Scalar],
) -> Result<Zeroizing<Scalar>, VssError> {
    if points.len() != values.len() {
        return Err(VssError::LengthMismatch {
            points: points.len(),
            values: values.len(),
        });
    }
    let lambdas = lagrange_coefficients_at_zero(points)?;
    let mut acc = Zeroizing::new(Scalar::ZERO);
    for (l, v) in lambdas.iter().zip(values) {
        *acc += *l * v;
    }
    Ok(acc)
}

/// Σ λ_j(at)·P_j: evaluates "in the exponent" the polynomial through (x_j, P_j).
pub fn interpolate_points(
    points: &[Scalar],
    values: &[ProjectivePoint],
    at: &Scalar,
) -> Result<ProjectivePoint, VssError> {
    if points.len() != values.len() {
        return Err(VssError::LengthMismatch {
            points: points.len(),
            values: values.len(),
        });
    }
    if points.is_empty() {
        return Err(VssError::OutOfRange);
    }
    let mut acc = ProjectivePoint::IDENTITY;
    for (j, v) in values.iter().enumerate() {
        acc += *v * lagrange_coefficient(points, j, at)?;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::group::Group;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// DKG-07: the pinned H is the hash-to-curve output of the documented message and tag,
    /// recomputed here independently of the constant, and is neither G nor the identity.
    #[test]
    fn dkg_07_h_is_hash_to_curve_output() {
        let recomputed = Secp256k1::hash_from_bytes::<ExpandMsgXmd<Sha256>>(
            &[b"Pedersen second generator H"],
            &[b"custody-appliance/mpc-core/pedersen-vss/v1/secp256k1_XMD:SHA-256_SSWU_RO_"],
        )
        .unwrap();
        assert_eq!(
            crate::encoding::point_bytes(&recomputed),
            GENERATOR_H_SEC1,
            "pinned H differs from hash-to-curve"
        );
        let h = generator_h().unwrap();
        assert_eq!(h, recomputed);
        assert_eq!(hash_to_curve_h().unwrap(), h);
        assert!(!bool::from(h.is_identity()));
        assert_ne!(h, ProjectivePoint::GENERATOR);
    }

    #[test]
    fn shares_verify_and_interpolate() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let h = generator_h().unwrap();
        let t = 3;
        let a = Polynomial::random(&mut rng, t);
        let b = Polynomial::random(&mut rng, t);
        let c = a.pedersen_commitments(&b, &h);
        let f = a.feldman_commitments();
        let points: Vec<Scalar> = (1..=5u64).map(Scalar::from).collect();
        let shares: Vec<Scalar> = points.iter().map(|x| *a.evaluate(x)).collect();
        for (x, s) in points.iter().zip(&shares) {
            let s2 = b.evaluate(x);
            assert!(verify_pedersen_share(&c, &h, x, s, &s2));
            assert!(verify_feldman_share(&f, x, s));
            assert!(!verify_pedersen_share(&c, &h, x, &(*s + Scalar::ONE), &s2));
            assert!(!verify_feldman_share(&f, x, &(*s + Scalar::ONE)));
        }
        // any t shares give a_0
        for start in 0..=2 {
            let secret =
                interpolate_at_zero(&points[start..start + t], &shares[start..start + t]).unwrap();
            assert_eq!(*secret, *a.constant_term());
        }
        // t − 1 shares do not (with overwhelming probability)
        let wrong = interpolate_at_zero(&points[..t - 1], &shares[..t - 1]).unwrap();
        assert_ne!(*wrong, *a.constant_term());
        // in the exponent
        let big: Vec<ProjectivePoint> = shares
            .iter()
            .map(|s| ProjectivePoint::GENERATOR * s)
            .collect();
        assert_eq!(
            interpolate_points(&points[1..1 + t], &big[1..1 + t], &Scalar::ZERO).unwrap(),
            f[0]
        );
        assert_eq!(
            interpolate_points(&points[..t], &big[..t], &points[4]).unwrap(),
            big[4]
        );
    }

    /// GJKR 4b evidence: only a share that opens the Pedersen commitments and misses the
    /// Feldman values convicts the dealer.
    #[test]
    fn feldman_inconsistency_needs_a_valid_pedersen_share() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let h = generator_h().unwrap();
        let a = Polynomial::random(&mut rng, 2);
        let b = Polynomial::random(&mut rng, 2);
        let c = a.pedersen_commitments(&b, &h);
        let honest = a.feldman_commitments();
        let mut forged = honest.clone();
        forged[1] += ProjectivePoint::GENERATOR;
        let x = Scalar::from(3u64);
        let (s, s2) = (a.evaluate(&x), b.evaluate(&x));
        assert!(!feldman_inconsistency(&c, &honest, &h, &x, &s, &s2));
        assert!(feldman_inconsistency(&c, &forged, &h, &x, &s, &s2));
        // a made-up share proves nothing
        let fake = *s + Scalar::ONE;
        assert!(!feldman_inconsistency(&c, &forged, &h, &x, &fake, &s2));
    }

    /// DKG-04 at the VSS level: zero and repeated points are refused.
    #[test]
    fn dkg_04_zero_or_repeated_points_are_refused() {
        let one = Scalar::ONE;
        assert_eq!(
            check_points(&[one, Scalar::ZERO]),
            Err(VssError::ZeroPoint(1))
        );
        assert_eq!(
            check_points(&[one, Scalar::from(2u64), one]),
            Err(VssError::DuplicatePoint(0, 2))
        );
        assert!(lagrange_coefficients_at_zero(&[one, one]).is_err());
        assert!(lagrange_coefficients_at_zero(&[]).is_err());
        assert!(interpolate_at_zero(&[one], &[]).is_err());
    }

    #[test]
    fn polynomial_debug_is_redacted() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let a = Polynomial::with_constant(&mut rng, &Scalar::from(42u64), 2);
        let s = alloc::format!("{a:?}");
        assert_eq!(s, "Polynomial { coefficients: 2, .. }");
        assert_eq!(*a.constant_term(), Scalar::from(42u64));
        assert_eq!(
            evaluate_commitments(&a.feldman_commitments(), &Scalar::ZERO),
            ProjectivePoint::GENERATOR * Scalar::from(42u64)
        );
        assert!(!bool::from(ProjectivePoint::GENERATOR.is_identity()));
    }
}
