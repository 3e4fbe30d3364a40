//! Fixed-base exponentiation with precomputed powers (Yao 1976; Brickell, Gordon, McCurley,
//! Wilson, EUROCRYPT 1992) and products of several fixed-base powers in one pass.
//!
//! For a base b that is used many times (a peer's ring-Pedersen s and t for a whole epoch, the
//! owner's t modulo each prime), the table holds b^{2^{W·i}} for every window i. An exponent
//! e = Σ d_i·2^{W·i} with W-bit digits d_i is then evaluated with buckets: bucket[d] collects the
//! product of the table entries whose digit is d, and b^e = Π_d bucket[d]^d is computed with two
//! running products. That costs one multiplication per window plus 2·(2^W − 1), and no
//! squaring at all: for a 3840-bit exponent about 770 multiplications instead of about 3840
//! squarings and 770 multiplications of a windowed exponentiation.
//!
//! Every window costs one multiplication whatever its digit (digit 0 goes to a bucket that is
//! thrown away), so the number of operations depends only on the exponent's bit length; a
//! table made with [`FixedBaseTable::new_fixed_length`] always runs over all its windows, so
//! not even that length shows (for secret exponents derived from attacker input, such as the
//! owner's λ·z1 + z3 mod p̂−1). The table lookups are still indexed by exponent digits (a cache
//! side channel for co-located attackers; see audits/bigint-timing.md).

use alloc::vec;
use alloc::vec::Vec;

use num_bigint::BigUint;
use zeroize::Zeroize;

use crate::monty::Montgomery;

/// Window width in bits: 2^6 buckets, a table entry per 6 exponent bits.
const WINDOW: usize = 6;

/// Precomputed powers b^{2^{6·i}} mod n of one base b for exponents up to `max_bits` bits.
/// The powers are wiped on drop (the base or the modulus may be secret); `Debug` prints sizes.
#[derive(Clone)]
pub struct FixedBaseTable {
    mont: Montgomery,
    base: BigUint,
    powers: Vec<Vec<u64>>,
    max_bits: usize,
    fixed_length: bool,
}

impl core::fmt::Debug for FixedBaseTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FixedBaseTable({} bits modulus, exponents ≤ {} bits)",
            self.mont.modulus().bits(),
            self.max_bits
        )
    }
}

impl Drop for FixedBaseTable {
    fn drop(&mut self) {
        for p in self.powers.iter_mut() {
            p.zeroize();
        }
        crate::arith::wipe_uint(&mut self.base);
    }
}

impl FixedBaseTable {
    /// Precomputes the powers of `base` modulo `mont`'s modulus for exponents of up to
    /// `max_bits` bits (about `max_bits` squarings, once). Longer exponents still work, through
    /// a plain exponentiation.
    pub fn new(mont: &Montgomery, base: &BigUint, max_bits: usize) -> Self {
        Self::build(mont, base, max_bits, false)
    }

    /// Like [`Self::new`], but every exponentiation of up to `max_bits` bits runs over all
    /// windows, so its operation count does not depend on the exponent at all.
    pub fn new_fixed_length(mont: &Montgomery, base: &BigUint, max_bits: usize) -> Self {
        Self::build(mont, base, max_bits, true)
    }

    fn build(mont: &Montgomery, base: &BigUint, max_bits: usize, fixed_length: bool) -> Self {
        let windows = max_bits.div_ceil(WINDOW).max(1);
        let mut s = mont.scratch();
        let mut tmp = vec![0u64; mont.limbs()];
        let mut cur = mont.enter_montgomery(base, &mut s);
        let mut powers = Vec::with_capacity(windows);
        for i in 0..windows {
            powers.push(cur.clone());
            if i + 1 < windows {
                for _ in 0..WINDOW {
                    mont.sqr_assign(&mut cur, &mut tmp, &mut s);
                }
            }
        }
        cur.zeroize();
        tmp.zeroize();
        Self {
            mont: mont.clone(),
            base: base % mont.modulus(),
            powers,
            max_bits: windows * WINDOW,
            fixed_length,
        }
    }

    /// The modulus n.
    pub fn modulus(&self) -> &BigUint {
        self.mont.modulus()
    }

    /// The longest exponent (in bits) the table covers without a fallback.
    pub fn max_bits(&self) -> usize {
        self.max_bits
    }

    /// base^exp mod n.
    pub fn pow(&self, exp: &BigUint) -> BigUint {
        // one term with this table's own modulus: cannot fail
        multi_pow(&[(self, exp)]).unwrap_or_default()
    }

    /// base^exp mod n in **variable time**, for a public exponent only (a verifier's
    /// equation such as Πprm's t^{z_i}), given `inv`, a table of base⁻¹ mod n covering at
    /// least as many windows. The exponent is recoded into signed digits d_i ∈ [−32, 32]
    /// (e = Σ d_i·2^{6i}), a negative digit takes its entry from `inv`, zero digits are
    /// skipped, and only 32 buckets are combined (64 products instead of 126 for unsigned
    /// digits): about 10 % fewer products for a 3072-bit exponent. Falls back to [`Self::pow`]
    /// if the moduli differ or the recoded exponent needs more windows than either table
    /// has. The result is base^exp only if `inv` really holds base⁻¹ (the caller's duty).
    pub fn pow_public_signed(&self, inv: &FixedBaseTable, exp: &BigUint) -> BigUint {
        let bits = exp.bits() as usize;
        let windows = bits.div_ceil(WINDOW);
        // one window more than the exponent's for the last carry
        if windows >= self.powers.len()
            || windows >= inv.powers.len()
            || inv.mont.modulus() != self.mont.modulus()
        {
            return self.pow(exp);
        }
        let mont = &self.mont;
        let half = 1usize << (WINDOW - 1);
        let mut s = mont.scratch();
        let mut tmp = vec![0u64; mont.limbs()];
        let mut buckets: Vec<Option<Vec<u64>>> = vec![None; half + 1];
        let e = exp.to_u64_digits();
        let mut carry = 0usize;
        for i in 0..=windows {
            let d = digit(&e, i * WINDOW) + carry;
            // d ∈ [0, 2^W]: above half it becomes d − 2^W ∈ [−(half − 1), 0] and carries one
            let (magnitude, negative) = if d > half {
                carry = 1;
                ((1usize << WINDOW) - d, true)
            } else {
                carry = 0;
                (d, false)
            };
            if magnitude == 0 {
                continue;
            }
            let power = if negative {
                &inv.powers[i]
            } else {
                &self.powers[i]
            };
            match buckets[magnitude].as_mut() {
                Some(b) => mont.mul_assign(b, power, &mut tmp, &mut s),
                None => buckets[magnitude] = Some(power.clone()),
            }
        }
        // Π_d bucket[d]^d = Π_d (Π_{d' ≥ d} bucket[d']), skipping empty buckets
        let mut running: Option<Vec<u64>> = None;
        let mut acc: Option<Vec<u64>> = None;
        for bucket in buckets.iter().skip(1).rev() {
            if let Some(b) = bucket {
                match running.as_mut() {
                    Some(r) => mont.mul_assign(r, b, &mut tmp, &mut s),
                    None => running = Some(b.clone()),
                }
            }
            if let Some(r) = running.as_ref() {
                match acc.as_mut() {
                    Some(a) => mont.mul_assign(a, r, &mut tmp, &mut s),
                    None => acc = Some(r.clone()),
                }
            }
        }
        mont.leave_montgomery(&acc.unwrap_or_else(|| mont.one()), &mut s)
    }
}

/// W-bit digit of `e` starting at bit `pos`.
fn digit(e: &[u64], pos: usize) -> usize {
    let limb = pos / 64;
    let off = pos % 64;
    let lo = e.get(limb).copied().unwrap_or(0) >> off;
    let hi = if off + WINDOW > 64 {
        e.get(limb + 1).copied().unwrap_or(0) << (64 - off)
    } else {
        0
    };
    ((lo | hi) & ((1u64 << WINDOW) - 1)) as usize
}

/// Π base_k^{exp_k} mod n over fixed-base tables that share one modulus n, in one bucket pass
/// (simultaneous multi-exponentiation). `None` if the terms are empty or the moduli differ.
pub fn multi_pow(terms: &[(&FixedBaseTable, &BigUint)]) -> Option<BigUint> {
    let first = terms.first()?.0;
    let mont = &first.mont;
    if terms
        .iter()
        .any(|(t, _)| t.mont.modulus() != mont.modulus())
    {
        return None;
    }
    let len = mont.limbs();
    let mut s = mont.scratch();
    let mut tmp = vec![0u64; len];
    let mut buckets: Vec<Vec<u64>> = (0..(1usize << WINDOW)).map(|_| mont.one()).collect();
    // factors whose exponent is longer than their table: plain exponentiation
    let mut extra: Option<Vec<u64>> = None;
    for (table, exp) in terms {
        let bits = exp.bits() as usize;
        if bits > table.max_bits {
            let v = mont.pow(&table.base, exp);
            let mut vm = mont.enter_montgomery(&v, &mut s);
            match extra.as_mut() {
                Some(acc) => mont.mul_assign(acc, &vm, &mut tmp, &mut s),
                None => extra = Some(vm.clone()),
            }
            vm.zeroize();
            continue;
        }
        let mut e = exp.to_u64_digits();
        let windows = if table.fixed_length {
            table.powers.len()
        } else {
            bits.div_ceil(WINDOW)
        };
        for (i, power) in table.powers.iter().enumerate().take(windows) {
            let d = digit(&e, i * WINDOW);
            mont.mul_assign(&mut buckets[d], power, &mut tmp, &mut s);
        }
        e.zeroize();
    }
    // Π_d bucket[d]^d = Π_{d} (Π_{d' ≥ d} bucket[d'])
    let mut running = mont.one();
    let mut acc = extra.unwrap_or_else(|| mont.one());
    for bucket in buckets.iter().skip(1).rev() {
        mont.mul_assign(&mut running, bucket, &mut tmp, &mut s);
        mont.mul_assign(&mut acc, &running, &mut tmp, &mut s);
    }
    let out = mont.leave_montgomery(&acc, &mut s);
    for b in buckets.iter_mut() {
        b.zeroize();
    }
    running.zeroize();
    acc.zeroize();
    tmp.zeroize();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::random_bits;
    use num_traits::One;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn fixed_base_matches_modpow_for_all_lengths() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for mbits in [61u64, 64, 130, 1536, 3072] {
            let m = random_bits(&mut rng, mbits) | BigUint::one() | (BigUint::one() << (mbits - 1));
            let mont = Montgomery::new(&m).unwrap();
            let b = random_bits(&mut rng, mbits + 3);
            let table = FixedBaseTable::new(&mont, &b, 400);
            assert!(table.max_bits() >= 400);
            for ebits in [0u64, 1, 5, 6, 7, 63, 64, 65, 399, 402, 403, 800] {
                let e = random_bits(&mut rng, ebits);
                assert_eq!(
                    table.pow(&e),
                    b.modpow(&e, &m),
                    "mbits {mbits} ebits {ebits}"
                );
            }
            // all-ones exponents exercise the top bucket in every window
            let e = (BigUint::one() << 402u32) - 1u32;
            assert_eq!(table.pow(&e), b.modpow(&e, &m));
            let fixed = FixedBaseTable::new_fixed_length(&mont, &b, 400);
            for ebits in [0u64, 1, 7, 399, 402, 500] {
                let e = random_bits(&mut rng, ebits);
                assert_eq!(
                    fixed.pow(&e),
                    b.modpow(&e, &m),
                    "fixed length, ebits {ebits}"
                );
            }
        }
    }

    #[test]
    fn multi_pow_is_the_product_of_the_powers() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let m = random_bits(&mut rng, 1024) | BigUint::one() | (BigUint::one() << 1023u32);
        let mont = Montgomery::new(&m).unwrap();
        let (s, t) = (random_bits(&mut rng, 1000), random_bits(&mut rng, 1000));
        let (ts, tt) = (
            FixedBaseTable::new(&mont, &s, 1500),
            FixedBaseTable::new(&mont, &t, 600),
        );
        for (xb, yb) in [(0u64, 0u64), (1500, 600), (10, 1400), (1501, 900)] {
            let (x, y) = (random_bits(&mut rng, xb), random_bits(&mut rng, yb));
            let want = s.modpow(&x, &m) * t.modpow(&y, &m) % &m;
            assert_eq!(
                multi_pow(&[(&ts, &x), (&tt, &y)]).unwrap(),
                want,
                "{xb} {yb}"
            );
        }
        let other = Montgomery::new(&(&m + 2u32)).unwrap();
        let tother = FixedBaseTable::new(&other, &s, 10);
        assert!(multi_pow(&[(&ts, &BigUint::one()), (&tother, &BigUint::one())]).is_none());
        assert!(multi_pow(&[]).is_none());
    }

    #[test]
    fn signed_digits_match_modpow() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for mbits in [61u64, 64, 130, 1536, 3072] {
            let m = random_bits(&mut rng, mbits) | BigUint::one() | (BigUint::one() << (mbits - 1));
            let mont = Montgomery::new(&m).unwrap();
            let b = loop {
                let b = random_bits(&mut rng, mbits + 3);
                if let Some(inv) = crate::arith::mod_inverse(&b, &m) {
                    break (b, inv);
                }
            };
            let (b, b_inv) = b;
            let table = FixedBaseTable::new(&mont, &b, 400);
            let inv = FixedBaseTable::new(&mont, &b_inv, 400);
            let max = table.max_bits() as u64;
            let mut exps: Vec<BigUint> = [0u64, 1, 5, 6, 7, 63, 64, 65, 397, 399, max - 1, max]
                .iter()
                .map(|&bits| random_bits(&mut rng, bits))
                .collect();
            // all-ones (a carry through every window), digits exactly 32 and 33, powers of
            // two, the modulus and beyond (fallback past the table), exponent 0 and 1
            exps.push((BigUint::one() << 402u32) - 1u32);
            exps.push((BigUint::one() << (max - 1)) - 1u32);
            exps.push((BigUint::one() << max) - 1u32);
            exps.push(BigUint::from(32u32) + (BigUint::from(33u32) << 6u32));
            exps.push(BigUint::from(32u32) << 396u32);
            exps.push(BigUint::from(33u32) << 396u32);
            exps.push(BigUint::one() << 100u32);
            exps.push(m.clone());
            exps.push(&m + 5u32);
            exps.push(BigUint::one() << 800u32);
            for e in &exps {
                assert_eq!(
                    table.pow_public_signed(&inv, e),
                    b.modpow(e, &m),
                    "mbits {mbits} e {e:x}"
                );
            }
            // base 1 (its own inverse)
            let one = FixedBaseTable::new(&mont, &BigUint::one(), 400);
            for e in &exps {
                assert_eq!(one.pow_public_signed(&one, e), BigUint::one());
            }
        }
        // tables of another modulus: the fallback
        let m = BigUint::from(1_000_003u32);
        let (mont, other) = (
            Montgomery::new(&m).unwrap(),
            Montgomery::new(&(&m + 2u32)).unwrap(),
        );
        let b = BigUint::from(7u32);
        let table = FixedBaseTable::new(&mont, &b, 60);
        let wrong = FixedBaseTable::new(&other, &b, 60);
        let e = BigUint::from(0xfff_ffffu32);
        assert_eq!(table.pow_public_signed(&wrong, &e), b.modpow(&e, &m));
    }

    #[test]
    fn debug_prints_sizes_only() {
        let m = BigUint::from(1_000_003u32);
        let t = FixedBaseTable::new(&Montgomery::new(&m).unwrap(), &BigUint::from(7u32), 12);
        assert_eq!(
            alloc::format!("{t:?}"),
            "FixedBaseTable(20 bits modulus, exponents ≤ 12 bits)"
        );
    }
}
