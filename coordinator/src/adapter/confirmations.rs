//! How many confirmations make a deposit or a lock-out final (DESIGN §6, whitepaper §3.4.2).
//!
//! An attacker with share `q` of the hash power (honest share `p = 1 − q`) tries to replace a
//! block buried under `z` others. The probability that it ever catches up is, in the exact form
//! of Grunspan and Pérez-Marco ("Double spend races", 2018, Theorem 1), which corrects the
//! Poisson approximation of the Bitcoin paper:
//!
//! P(z) = 1 − Σ_{k=0}^{z−1} C(k+z−1, k) (p^z q^k − q^z p^k)
//!
//! The required depth for a risk `ε` is the smallest `z ≥ 1` with `P(z) ≤ ε`. For q = 0.1 and
//! ε = 10⁻³ that is z = 6 (P(5) ≈ 1.7·10⁻³, P(6) ≈ 5.9·10⁻⁴).

/// Largest depth searched; a (q, ε) that needs more is refused as a configuration error.
pub const MAX_DEPTH: u32 = 10_000;

/// Why no depth was computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DepthError {
    /// `q` must be in (0, 0.5): at one half or more the attacker always catches up.
    #[error("attacker share q = {0} must be greater than 0 and less than 0.5")]
    AttackerShare(f64),
    /// `ε` must be in [10⁻¹², 1): smaller risks are below the precision of this computation.
    #[error("risk epsilon = {0} must be at least 1e-12 and less than 1")]
    Risk(f64),
    /// No depth up to [`MAX_DEPTH`] brings the risk down to `ε`.
    #[error(
        "no depth up to {MAX_DEPTH} gets the catch-up probability for q = {q} below {epsilon}"
    )]
    TooDeep {
        /// The attacker share asked for.
        q: f64,
        /// The risk asked for.
        epsilon: f64,
    },
}

/// P(z): the probability that an attacker with hash-power share `q` catches up from `z`
/// blocks behind. `q` must be in (0, 0.5) (not checked here; see [`required_depth`]).
pub fn catch_up_probability(q: f64, z: u32) -> f64 {
    let p = 1.0 - q;
    let (ln_p, ln_q) = (p.ln(), q.ln());
    let z_f = f64::from(z);
    // ln C(k+z−1, k), updated term by term: C(k+z, k+1) = C(k+z−1, k)·(k+z)/(k+1).
    let mut ln_binom = 0.0_f64;
    let mut sum = 0.0_f64;
    for k in 0..z {
        let k_f = f64::from(k);
        let honest_ahead = (ln_binom + z_f * ln_p + k_f * ln_q).exp();
        let attacker_ahead = (ln_binom + z_f * ln_q + k_f * ln_p).exp();
        sum += honest_ahead - attacker_ahead;
        ln_binom += ((k_f + z_f) / (k_f + 1.0)).ln();
    }
    (1.0 - sum).clamp(0.0, 1.0)
}

/// The smallest number of confirmations `z ≥ 1` with P(z) ≤ `epsilon` for an attacker share
/// `q`.
pub fn required_depth(q: f64, epsilon: f64) -> Result<u32, DepthError> {
    if !(q > 0.0 && q < 0.5) {
        return Err(DepthError::AttackerShare(q));
    }
    if !((1e-12..1.0).contains(&epsilon)) {
        return Err(DepthError::Risk(epsilon));
    }
    (1..=MAX_DEPTH)
        .find(|&z| catch_up_probability(q, z) <= epsilon)
        .ok_or(DepthError::TooDeep { q, epsilon })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ε = 10⁻³: q = 0.1 gives 6 (the example); the other rows were computed
    /// independently with exact integer binomials (Python's `math.comb`).
    #[test]
    fn depth_table_for_one_in_a_thousand() {
        for (q, z) in [
            (0.05, 4),
            (0.10, 6),
            (0.15, 9),
            (0.20, 13),
            (0.25, 20),
            (0.30, 32),
            (0.35, 58),
            (0.40, 133),
        ] {
            assert_eq!(required_depth(q, 1e-3), Ok(z), "q = {q}");
        }
    }

    #[test]
    fn probabilities_at_q_one_tenth() {
        let p5 = catch_up_probability(0.1, 5);
        let p6 = catch_up_probability(0.1, 6);
        assert!(p5 > 1e-3 && p5 < 2e-3, "P(5) = {p5}");
        assert!(p6 > 5e-4 && p6 < 1e-3, "P(6) = {p6}");
        // z = 1: P = 1 − (p − q) = 2q.
        assert!((catch_up_probability(0.1, 1) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn smaller_risk_needs_more_depth() {
        let mut last = 0;
        for e in [1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-9, 1e-12] {
            let z = required_depth(0.1, e).unwrap_or(0);
            assert!(z > last, "epsilon {e}: {z} not more than {last}");
            last = z;
        }
    }

    #[test]
    fn out_of_range_parameters_are_refused() {
        assert_eq!(
            required_depth(0.5, 1e-3),
            Err(DepthError::AttackerShare(0.5))
        );
        assert_eq!(
            required_depth(0.0, 1e-3),
            Err(DepthError::AttackerShare(0.0))
        );
        assert!(matches!(
            required_depth(f64::NAN, 1e-3),
            Err(DepthError::AttackerShare(_))
        ));
        assert_eq!(required_depth(0.1, 1.0), Err(DepthError::Risk(1.0)));
        assert_eq!(required_depth(0.1, 1e-13), Err(DepthError::Risk(1e-13)));
        assert!(matches!(
            required_depth(0.1, f64::NAN),
            Err(DepthError::Risk(_))
        ));
    }
}
