//! Montgomery exponentiation for odd moduli with a dedicated squaring.
//!
//! Products and reduction are fused and computed column by column (finely integrated product
//! scanning): each column of the double-length result is summed in a three-limb accumulator
//! (u128 + u64), so consecutive limb products are chained by one add-with-carry only, and the
//! a·b and m·n sums use separate accumulators that run in parallel. The squaring computes each
//! cross product once per column and doubles the column sum: about 1.5·n² limb products instead
//! of 2·n², and squarings are ~85 % of an exponentiation. Fixed window whose width (≤ 6) depends
//! on the exponent's bit length only. Variable time in the same ways as num-bigint's (see
//! audits/bigint-timing.md), but with fewer data-dependent branches: no branches on limb values
//! at all (the final conditional subtraction is a mask), the same sequence of products for every
//! exponent of a given bit length (a zero window digit multiplies by table[0] = R), and table
//! lookups indexed by exponent digits.

use alloc::vec;
use alloc::vec::Vec;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::One;

/// Largest window width of [`Montgomery::pow`].
const MAX_WINDOW_BITS: usize = 6;

/// Precomputed constants of one odd modulus n > 1. The modulus may be secret (p², q² of a
/// Paillier key): the limbs are wiped on drop and `Debug` prints only the size.
#[derive(Clone, PartialEq, Eq)]
pub struct Montgomery {
    modulus: BigUint,
    n: Vec<u64>,
    /// The limbs of n in reverse order (`n_rev[j] = n[len − 1 − j]`), so that every column
    /// sum of a product scan reads both operands forwards.
    n_rev: Vec<u64>,
    /// −n^{-1} mod 2^64.
    n0_inv: u64,
    /// R² mod n, R = 2^{64·len}.
    r2: Vec<u64>,
    /// R mod n.
    r1: Vec<u64>,
}

impl core::fmt::Debug for Montgomery {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Montgomery({} bits)", self.modulus.bits())
    }
}

impl Drop for Montgomery {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.n.zeroize();
        self.n_rev.zeroize();
        self.r2.zeroize();
        self.r1.zeroize();
        crate::arith::wipe_uint(&mut self.modulus);
    }
}

/// Scratch space for one product: the len reduction digits m_i and a reversed copy of the
/// second operand.
pub(crate) struct Scratch {
    t: Vec<u64>,
    rev: Vec<u64>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // the scratch held products of possibly secret values
        zeroize::Zeroize::zeroize(&mut self.t);
        zeroize::Zeroize::zeroize(&mut self.rev);
    }
}

impl Montgomery {
    /// Constants for an odd modulus > 1, `None` otherwise.
    pub fn new(modulus: &BigUint) -> Option<Self> {
        if modulus.is_even() || modulus <= &BigUint::one() {
            return None;
        }
        let n = modulus.to_u64_digits();
        let len = n.len();
        let n0 = n[0];
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let r = BigUint::one() << (64 * len);
        Some(Self {
            modulus: modulus.clone(),
            r1: pad(&(&r % modulus), len),
            r2: pad(&((&r * &r) % modulus), len),
            n_rev: n.iter().rev().copied().collect(),
            n,
            n0_inv: inv.wrapping_neg(),
        })
    }

    /// The modulus.
    pub fn modulus(&self) -> &BigUint {
        &self.modulus
    }

    /// Number of 64-bit limbs of the modulus.
    pub(crate) fn limbs(&self) -> usize {
        self.n.len()
    }

    /// Fresh scratch space for [`Self::mul`] and [`Self::sqr`] (wiped on drop).
    pub(crate) fn scratch(&self) -> Scratch {
        Scratch {
            t: vec![0u64; self.n.len()],
            rev: vec![0u64; self.n.len()],
        }
    }

    /// 1 in Montgomery form (R mod n).
    pub(crate) fn one(&self) -> Vec<u64> {
        self.r1.clone()
    }

    /// x·R mod n (into Montgomery form); x may be ≥ n.
    pub(crate) fn enter_montgomery(&self, x: &BigUint, s: &mut Scratch) -> Vec<u64> {
        let len = self.n.len();
        let mut reduced = if x < &self.modulus {
            pad(x, len)
        } else {
            pad(&(x % &self.modulus), len)
        };
        let mut out = vec![0u64; len];
        self.mul(&reduced, &self.r2, &mut out, s);
        zeroize::Zeroize::zeroize(&mut reduced);
        out
    }

    /// x·R^{-1} mod n (out of Montgomery form).
    pub(crate) fn leave_montgomery(&self, x: &[u64], s: &mut Scratch) -> BigUint {
        let len = self.n.len();
        let mut one = vec![0u64; len];
        one[0] = 1;
        let mut out = vec![0u64; len];
        self.mul(x, &one, &mut out, s);
        let v = from_limbs(&out);
        zeroize::Zeroize::zeroize(&mut out);
        v
    }

    /// acc ← acc·b (Montgomery product), using `tmp` (len limbs) as the output buffer.
    pub(crate) fn mul_assign(
        &self,
        acc: &mut Vec<u64>,
        b: &[u64],
        tmp: &mut Vec<u64>,
        s: &mut Scratch,
    ) {
        self.mul(acc, b, tmp, s);
        core::mem::swap(acc, tmp);
    }

    /// acc ← acc² (Montgomery), using `tmp` (len limbs) as the output buffer.
    pub(crate) fn sqr_assign(&self, acc: &mut Vec<u64>, tmp: &mut Vec<u64>, s: &mut Scratch) {
        self.sqr(acc, tmp, s);
        core::mem::swap(acc, tmp);
    }

    /// out = a·b·R^{-1} mod n for a, b < n (Montgomery product).
    ///
    /// Finely integrated product scanning (FIPS, Koç–Acar–Kaliski 1996): column k of the
    /// 2·len-limb result collects every a_i·b_j and m_i·n_j with i + j = k in a three-limb
    /// accumulator, so the dependency chain from one limb product to the next is a single
    /// add-with-carry (the products themselves are independent), and nothing but the len
    /// reduction digits m_i is stored. The a·b and m·n terms go to two accumulators so the
    /// two chains run in parallel. b and n are read through reversed copies, so a column is
    /// one forward loop over four slices that start at two offsets: few enough live registers
    /// that nothing is spilled to the stack inside the loop.
    fn mul(&self, a: &[u64], b: &[u64], out: &mut [u64], s: &mut Scratch) {
        let n = &self.n[..];
        let len = n.len();
        let (a, b, out) = (&a[..len], &b[..len], &mut out[..len]);
        let (m, br) = (&mut s.t[..len], &mut s.rev[..len]);
        for (r, &x) in br.iter_mut().zip(b.iter().rev()) {
            *r = x;
        }
        let nr = &self.n_rev[..len];
        let mut acc = Acc::default();
        for k in 0..len {
            // a_i·b_{k−i} for i ≤ k, m_i·n_{k−i} for i < k; b_{k−i} = br[len−1−k+i]
            let off = len - 1 - k;
            let mut red = Acc::default();
            dot2(
                &mut acc,
                &mut red,
                &a[..k],
                &br[off..off + k],
                &m[..k],
                &nr[off..off + k],
            );
            acc.mac(a[k], b[0]);
            acc.add(red);
            let mk = acc.low().wrapping_mul(self.n0_inv);
            m[k] = mk;
            acc.mac(mk, n[0]);
            acc.shift();
        }
        for k in len..2 * len - 1 {
            // i from k + 1 − len to len − 1, j = k − i ≥ k + 1 − len: reversed index i − lo
            let lo = k + 1 - len;
            let mut red = Acc::default();
            dot2(
                &mut acc,
                &mut red,
                &a[lo..],
                &br[..len - lo],
                &m[lo..],
                &nr[..len - lo],
            );
            acc.add(red);
            out[k - len] = acc.low();
            acc.shift();
        }
        out[len - 1] = acc.low();
        acc.shift();
        self.final_subtract(out, acc.low());
    }

    /// out = a²·R^{-1} mod n for a < n: as [`Self::mul`], but each cross product a_i·a_j
    /// (i < j) is computed once per column and the column's cross sum doubled, so a squaring
    /// costs about 1.5·len² limb products instead of 2·len². The cross sum (about k/2 terms)
    /// runs beside the first half of the reduction sum (k terms); the second half of the
    /// reduction sum then runs on two accumulators.
    fn sqr(&self, a: &[u64], out: &mut [u64], s: &mut Scratch) {
        let n = &self.n[..];
        let len = n.len();
        let (a, out) = (&a[..len], &mut out[..len]);
        let (m, ar) = (&mut s.t[..len], &mut s.rev[..len]);
        for (r, &x) in ar.iter_mut().zip(a.iter().rev()) {
            *r = x;
        }
        let nr = &self.n_rev[..len];
        let mut acc = Acc::default();
        for k in 0..len {
            // i < j = k − i: i < (k + 1)/2 cross terms; m_i·n_{k−i} for i < k; the partner
            // index k − i is read at reversed position off + i
            let off = len - 1 - k;
            let c = k.div_ceil(2);
            column_sqr(&mut acc, a, &a[..c], &ar[off..], &m[..k], &nr[off..], k);
            let mk = acc.low().wrapping_mul(self.n0_inv);
            m[k] = mk;
            acc.mac(mk, n[0]);
            acc.shift();
        }
        for k in len..2 * len - 1 {
            // i from lo = k + 1 − len: cross terms up to (k + 1)/2, reduction terms up to len
            let lo = k + 1 - len;
            let c = k.div_ceil(2) - lo;
            column_sqr(&mut acc, a, &a[lo..lo + c], ar, &m[lo..], nr, k);
            out[k - len] = acc.low();
            acc.shift();
        }
        out[len - 1] = acc.low();
        acc.shift();
        self.final_subtract(out, acc.low());
    }

    /// out ← top·2^{64·len} + out − n if that is ≥ 0, else unchanged (the value is < 2n).
    /// Branch-free: the borrow of out − n is computed first, then n masked by "subtract or
    /// not" is subtracted.
    fn final_subtract(&self, out: &mut [u64], top: u64) {
        let mut borrow = 0u64;
        for (&x, &y) in out.iter().zip(self.n.iter()) {
            let (d1, b1) = x.overflowing_sub(y);
            let (_, b2) = d1.overflowing_sub(borrow);
            borrow = u64::from(b1 | b2);
        }
        // subtract iff top = 1 or out ≥ n (no borrow)
        let mask = (top | (borrow ^ 1)).wrapping_neg();
        let mut borrow = 0u64;
        for (o, &y) in out.iter_mut().zip(self.n.iter()) {
            let (d1, b1) = o.overflowing_sub(y & mask);
            let (d2, b2) = d1.overflowing_sub(borrow);
            *o = d2;
            borrow = u64::from(b1 | b2);
        }
    }

    /// base^exp mod n.
    pub fn pow(&self, base: &BigUint, exp: &BigUint) -> BigUint {
        let bits = exp.bits() as usize;
        if bits == 0 {
            return BigUint::one() % &self.modulus;
        }
        self.pow_windows(base, exp, bits)
    }

    /// base^exp mod n in **variable time**, for a public base and a public exponent only (a
    /// verifier's equation such as Πmod's z^N = y): left-to-right sliding windows over the odd
    /// powers, which skip the zero bits between windows. About 4 % fewer operations than
    /// [`Self::pow`] for a 3072-bit exponent; never use it where either input is secret.
    pub fn pow_public(&self, base: &BigUint, exp: &BigUint) -> BigUint {
        let bits = exp.bits() as usize;
        if bits == 0 {
            return BigUint::one() % &self.modulus;
        }
        let len = self.n.len();
        // table of 2^{w−1} odd powers plus about bits/(w + 1) multiplications
        let w = (1..=MAX_SLIDING_WINDOW_BITS)
            .min_by_key(|&w| (1usize << (w - 1)) + bits / (w + 1))
            .unwrap_or(1);
        let mut s = self.scratch();
        let reduced = if base < &self.modulus {
            pad(base, len)
        } else {
            pad(&(base % &self.modulus), len)
        };
        let mut base_m = vec![0u64; len];
        self.mul(&reduced, &self.r2, &mut base_m, &mut s);
        let mut base_sq = vec![0u64; len];
        self.sqr(&base_m, &mut base_sq, &mut s);
        // odd[k] = base^{2k+1}·R mod n
        let half = 1usize << (w - 1);
        let mut odd = vec![0u64; len * half];
        odd[..len].copy_from_slice(&base_m);
        for k in 1..half {
            let (done, rest) = odd.split_at_mut(k * len);
            self.mul(&done[(k - 1) * len..], &base_sq, &mut rest[..len], &mut s);
        }
        let e = exp.to_u64_digits();
        let bit = |i: usize| (e[i / 64] >> (i % 64)) & 1 == 1;
        let mut acc: Option<Vec<u64>> = None;
        let mut tmp = vec![0u64; len];
        let mut i = bits;
        while i > 0 {
            let top = i - 1;
            if !bit(top) {
                if let Some(a) = acc.as_mut() {
                    self.sqr_assign(a, &mut tmp, &mut s);
                }
                i -= 1;
                continue;
            }
            // the longest window [low, top] of at most w bits that ends in a set bit
            let mut low = (top + 1).saturating_sub(w);
            while !bit(low) {
                low += 1;
            }
            let value = (low..=top)
                .rev()
                .fold(0usize, |v, j| (v << 1) | usize::from(bit(j)));
            let entry = &odd[(value >> 1) * len..][..len];
            match acc.as_mut() {
                Some(a) => {
                    for _ in low..=top {
                        self.sqr_assign(a, &mut tmp, &mut s);
                    }
                    self.mul_assign(a, entry, &mut tmp, &mut s);
                }
                None => acc = Some(entry.to_vec()),
            }
            i = low;
        }
        let acc = acc.unwrap_or_else(|| self.r1.clone());
        let mut one = vec![0u64; len];
        one[0] = 1;
        self.mul(&acc, &one, &mut tmp, &mut s);
        from_limbs(&tmp)
    }

    /// base^exp mod n, running over the windows of a `bits`-bit exponent whatever `exp`'s own
    /// length (which must be at most `bits`; a longer one is used in full). For exponents
    /// reduced modulo a secret (e mod φ(p²)), so that the operation count does not show how
    /// many leading zero bits the reduced value has (audits/bigint-timing.md).
    pub fn pow_fixed_bits(&self, base: &BigUint, exp: &BigUint, bits: usize) -> BigUint {
        self.pow_windows(base, exp, bits.max(exp.bits() as usize).max(1))
    }

    /// The windowed exponentiation over the windows of a `bits`-bit exponent (bits ≥ 1,
    /// bits ≥ exp.bits()).
    fn pow_windows(&self, base: &BigUint, exp: &BigUint, bits: usize) -> BigUint {
        use zeroize::Zeroize;
        let len = self.n.len();
        let w = window_bits(bits);
        let mut s = self.scratch();
        let mut reduced = if base < &self.modulus {
            pad(base, len)
        } else {
            pad(&(base % &self.modulus), len)
        };
        // table[k] = base^k·R mod n, k < 2^w, one flat buffer
        let mut table = vec![0u64; len << w];
        table[..len].copy_from_slice(&self.r1);
        self.mul(&reduced, &self.r2, &mut table[len..2 * len], &mut s);
        reduced.zeroize();
        for k in 2..(1usize << w) {
            let (done, rest) = table.split_at_mut(k * len);
            let next = &mut rest[..len];
            if k % 2 == 0 {
                self.sqr(&done[k / 2 * len..][..len], next, &mut s);
            } else {
                self.mul(&done[(k - 1) * len..], &done[len..2 * len], next, &mut s);
            }
        }
        let mut e = exp.to_u64_digits();
        let windows = bits.div_ceil(w);
        let top = window_digit(&e, (windows - 1) * w, w);
        let mut acc = table[top * len..][..len].to_vec();
        let mut tmp = vec![0u64; len];
        for i in (0..windows - 1).rev() {
            for _ in 0..w {
                self.sqr(&acc, &mut tmp, &mut s);
                core::mem::swap(&mut acc, &mut tmp);
            }
            // digit 0 multiplies by table[0] = R (one): the same operations for every digit
            let digit = window_digit(&e, i * w, w);
            self.mul(&acc, &table[digit * len..][..len], &mut tmp, &mut s);
            core::mem::swap(&mut acc, &mut tmp);
        }
        // leave Montgomery form: multiply by 1
        let mut one = vec![0u64; len];
        one[0] = 1;
        self.mul(&acc, &one, &mut tmp, &mut s);
        let out = from_limbs(&tmp);
        // the buffers held multiples of a possibly secret base and modulus, and the exponent
        acc.zeroize();
        tmp.zeroize();
        table.zeroize();
        e.zeroize();
        out
    }
}

/// Window width for a `bits`-bit exponent: minimises the cost of the table (2^w − 2 products)
/// plus one multiplication per window, counting a squaring as 3/4 of a multiplication. Depends
/// on the exponent's bit length only. Capped at 6 (64 table entries; 6144-bit moduli give a
/// 48 KiB table).
/// Largest sliding window of [`Montgomery::pow_public`] (64 odd powers).
const MAX_SLIDING_WINDOW_BITS: usize = 7;

fn window_bits(bits: usize) -> usize {
    let cost = |w: usize| 4 * bits.div_ceil(w) + 7 * ((1usize << w) - 2) / 2;
    (1..=MAX_WINDOW_BITS)
        .min_by_key(|&w| cost(w))
        .unwrap_or(MAX_WINDOW_BITS)
}

/// Three-limb accumulator lo + hi·2^128 for product scanning.
#[derive(Clone, Copy, Default)]
struct Acc {
    lo: u128,
    hi: u64,
}

impl Acc {
    /// self += x·y. `hi` counts carries out of 128 bits; with at most 2·len + 2 terms per
    /// column, each < 2^128, it stays far below 2^64.
    #[inline(always)]
    fn mac(&mut self, x: u64, y: u64) {
        let (s, c) = self.lo.overflowing_add(u128::from(x) * u128::from(y));
        self.lo = s;
        self.hi = self.hi.wrapping_add(u64::from(c));
    }

    #[inline(always)]
    fn add(&mut self, o: Acc) {
        let (s, c) = self.lo.overflowing_add(o.lo);
        self.lo = s;
        self.hi = self.hi.wrapping_add(o.hi).wrapping_add(u64::from(c));
    }

    /// self ← 2·self (a column's cross-product sum is < 2^190, so nothing is lost).
    #[inline(always)]
    fn double(&mut self) {
        self.hi = (self.hi << 1) | (self.lo >> 127) as u64;
        self.lo <<= 1;
    }

    #[inline(always)]
    fn low(&self) -> u64 {
        self.lo as u64
    }

    /// self ← self >> 64.
    #[inline(always)]
    fn shift(&mut self) {
        self.lo = (self.lo >> 64) | (u128::from(self.hi) << 64);
        self.hi = 0;
    }
}

/// acc += Σ_i x_i·y_i and red += Σ_i u_i·v_i over slices of one length: two column sums of
/// a product scan, interleaved. The operands that the column pairs in reverse are passed as
/// reversed copies, so all four slices are read forwards with one index.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn dot2(acc: &mut Acc, red: &mut Acc, x: &[u64], y: &[u64], u: &[u64], v: &[u64]) {
    let l = x.len();
    let (y, u, v) = (&y[..l], &u[..l], &v[..l]);
    for i in 0..l {
        acc.mac(x[i], y[i]);
        red.mac(u[i], v[i]);
    }
}

/// One column k of a squaring: acc += 2·Σ x_i·y_i (+ a_{k/2}² for even k) + Σ u_i·v_i, with
/// x the c = x.len() lower cross factors, y their reversed partners, u the reduction digits
/// and v the reversed modulus limbs (u.len() ≥ c terms; y and v are read from their start).
/// The cross sum runs beside the first c reduction terms; the rest runs on two chains.
#[inline(always)]
fn column_sqr(acc: &mut Acc, a: &[u64], x: &[u64], y: &[u64], u: &[u64], v: &[u64], k: usize) {
    let c = x.len();
    let r = u.len();
    let (y, v) = (&y[..c], &v[..r]);
    let mut cross = Acc::default();
    let mut red = Acc::default();
    for (((&xi, &yi), &ui), &vi) in x.iter().zip(y).zip(&u[..c]).zip(&v[..c]) {
        cross.mac(xi, yi);
        red.mac(ui, vi);
    }
    cross.double();
    if k.is_multiple_of(2) {
        cross.mac(a[k / 2], a[k / 2]);
    }
    acc.add(cross);
    dot_pairs(acc, &mut red, &u[c..], &v[c..]);
    acc.add(red);
}

/// acc + red += Σ_i u_i·v_i, alternating the terms between the two accumulators so that two
/// add-with-carry chains run side by side.
#[inline(always)]
fn dot_pairs(acc: &mut Acc, red: &mut Acc, u: &[u64], v: &[u64]) {
    let l = u.len();
    let v = &v[..l];
    let half = l / 2;
    let (u0, u1) = u.split_at(half);
    let (v0, v1) = v.split_at(half);
    for (((&x, &y), &z), &w) in u0.iter().zip(v0).zip(u1).zip(v1) {
        acc.mac(x, y);
        red.mac(z, w);
    }
    if l % 2 == 1 {
        acc.mac(u[l - 1], v[l - 1]);
    }
}

fn window_digit(e: &[u64], pos: usize, w: usize) -> usize {
    let limb = pos / 64;
    let off = pos % 64;
    let lo = e.get(limb).copied().unwrap_or(0) >> off;
    let hi = if off + w > 64 {
        e.get(limb + 1).copied().unwrap_or(0) << (64 - off)
    } else {
        0
    };
    ((lo | hi) & ((1u64 << w) - 1)) as usize
}

fn pad(x: &BigUint, len: usize) -> Vec<u64> {
    let mut v = x.to_u64_digits();
    v.resize(len, 0);
    v
}

fn from_limbs(x: &[u64]) -> BigUint {
    let mut bytes = Vec::with_capacity(x.len() * 8);
    for l in x {
        bytes.extend_from_slice(&l.to_le_bytes());
    }
    let v = BigUint::from_bytes_le(&bytes);
    // the bytes are a copy of a possibly secret result
    zeroize::Zeroize::zeroize(&mut bytes);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::random_bits;
    use num_traits::Zero;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn matches_num_bigint_modpow() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for bits in [2u64, 63, 64, 65, 127, 128, 500, 1536, 3072, 6144] {
            for _ in 0..3 {
                let m =
                    random_bits(&mut rng, bits) | BigUint::one() | (BigUint::one() << (bits - 1));
                let ctx = Montgomery::new(&m).unwrap();
                for ebits in [0u64, 1, 4, 5, 6, 64, 333, bits] {
                    let b = random_bits(&mut rng, bits + 7);
                    let e = random_bits(&mut rng, ebits);
                    assert_eq!(
                        ctx.pow(&b, &e),
                        b.modpow(&e, &m),
                        "bits {bits} ebits {ebits}"
                    );
                }
            }
        }
        assert!(Montgomery::new(&BigUint::from(10u32)).is_none());
        assert!(Montgomery::new(&BigUint::one()).is_none());
    }

    /// Moduli of `limbs` limbs: random with the top bit set, top limb all ones, top limb 1,
    /// and 2^{64·limbs} − 1 (all limbs all ones).
    fn test_moduli(rng: &mut ChaCha20Rng, limbs: usize) -> Vec<BigUint> {
        let bits = 64 * limbs as u64;
        let random = random_bits(rng, bits) | BigUint::one() | (BigUint::one() << (bits - 1));
        let low = random_bits(rng, bits - 64) | BigUint::one();
        let mut out = vec![
            random,
            (BigUint::from(u64::MAX) << (bits - 64)) | &low,
            (BigUint::one() << (bits - 64)) | &low,
            (BigUint::one() << bits) - 1u32,
        ];
        if limbs == 1 {
            // the "top limb 1" modulus above is 1 itself
            out.retain(|m| m > &BigUint::one());
            out.extend([BigUint::from(3u32), BigUint::from(u64::MAX - 2)]);
        }
        out
    }

    /// Operands below m: 0, 1, 2, m − 1, m − 2, random, and the largest value below m whose
    /// lower limbs are all ones.
    fn test_operands(rng: &mut ChaCha20Rng, m: &BigUint) -> Vec<BigUint> {
        let limbs = m.to_u64_digits().len();
        let mut out = vec![
            BigUint::zero(),
            BigUint::one(),
            BigUint::from(2u32) % m,
            m - 1u32,
            m - 2u32,
            random_bits(rng, m.bits()) % m,
            random_bits(rng, m.bits()) % m,
        ];
        let top = BigUint::from(m.to_u64_digits()[limbs - 1]) << (64 * (limbs - 1));
        let ones = (BigUint::one() << (64 * (limbs - 1))) - 1u32;
        if top > BigUint::one() << (64 * (limbs - 1)) {
            out.push((top - (BigUint::one() << (64 * (limbs - 1)))) | ones);
        }
        out
    }

    /// mul, sqr and the conversions against num-bigint: out·R ≡ a·b (mod m), out < m.
    #[test]
    fn products_match_num_bigint() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        for limbs in [1usize, 2, 3, 24, 47, 48, 49, 96] {
            for m in test_moduli(&mut rng, limbs) {
                let ctx = Montgomery::new(&m).unwrap();
                let r = BigUint::one() << (64 * limbs);
                let mut s = ctx.scratch();
                let ops = test_operands(&mut rng, &m);
                let mut out = vec![0u64; limbs];
                for a in &ops {
                    let al = pad(a, limbs);
                    ctx.sqr(&al, &mut out, &mut s);
                    let got = from_limbs(&out);
                    assert!(got < m, "sqr not reduced, {limbs} limbs");
                    assert_eq!(&got * &r % &m, a * a % &m, "sqr, {limbs} limbs");
                    for b in &ops {
                        ctx.mul(&al, &pad(b, limbs), &mut out, &mut s);
                        let got = from_limbs(&out);
                        assert!(got < m, "mul not reduced, {limbs} limbs");
                        assert_eq!(&got * &r % &m, a * b % &m, "mul, {limbs} limbs");
                    }
                    // round trip through Montgomery form, also from above m
                    for x in [a.clone(), a + &m, a + &r] {
                        let xm = ctx.enter_montgomery(&x, &mut s);
                        assert_eq!(ctx.leave_montgomery(&xm, &mut s), &x % &m);
                    }
                }
            }
        }
    }

    /// pow against num-bigint's modpow for edge moduli, edge bases and exponents of many
    /// lengths (every window width), including all-ones exponents.
    #[test]
    fn pow_matches_modpow_edge_moduli_and_exponent_lengths() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        for limbs in [1usize, 2, 3, 24, 47, 48, 49, 96] {
            let mbits = 64 * limbs as u64;
            for m in test_moduli(&mut rng, limbs) {
                let ctx = Montgomery::new(&m).unwrap();
                let mut ebits: Vec<u64> = vec![1, 2, 3, 5, 6, 7, 12, 13, 17, 63, 64, 65, 200];
                if limbs <= 49 {
                    ebits.extend([mbits - 1, mbits, mbits + 1]);
                }
                let bases = test_operands(&mut rng, &m);
                for (i, &eb) in ebits.iter().enumerate() {
                    let e = if i % 3 == 0 {
                        (BigUint::one() << eb) - 1u32
                    } else {
                        random_bits(&mut rng, eb) | (BigUint::one() << (eb - 1))
                    };
                    let b = &bases[i % bases.len()];
                    let expected = b.modpow(&e, &m);
                    assert_eq!(ctx.pow(b, &e), expected, "{limbs} limbs, {eb} bits");
                    assert_eq!(
                        ctx.pow_public(b, &e),
                        expected,
                        "public: {limbs}, {eb} bits"
                    );
                    // sparse exponents: long zero runs between sliding windows
                    let sparse =
                        (BigUint::one() << eb) | (BigUint::one() << (eb / 2)) | BigUint::one();
                    assert_eq!(
                        ctx.pow_public(b, &sparse),
                        b.modpow(&sparse, &m),
                        "public sparse: {limbs} limbs, {eb} bits"
                    );
                }
                // a full-length exponent at 96 limbs once per modulus, and a base ≥ m
                let e = random_bits(&mut rng, mbits.min(3100));
                let b = &m + random_bits(&mut rng, 100);
                let expected = b.modpow(&e, &m);
                assert_eq!(ctx.pow(&b, &e), expected, "{limbs} limbs, long exp");
                assert_eq!(
                    ctx.pow_public(&b, &e),
                    expected,
                    "public: {limbs} limbs, long"
                );
                assert_eq!(
                    ctx.pow_public(&b, &BigUint::zero()),
                    BigUint::one() % &m,
                    "x^0"
                );
            }
        }
    }

    #[test]
    fn window_width_grows_with_the_exponent() {
        assert_eq!(window_bits(1), 1);
        let widths: Vec<usize> = [2usize, 17, 64, 256, 1536, 3072, 6144]
            .iter()
            .map(|&b| window_bits(b))
            .collect();
        assert!(widths.windows(2).all(|w| w[0] <= w[1]), "{widths:?}");
        assert_eq!(window_bits(3072), 6);
        assert!(window_bits(6144) <= MAX_WINDOW_BITS);
    }

    #[test]
    fn fixed_length_pow_matches_for_short_and_zero_exponents() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let m = random_bits(&mut rng, 1536) | BigUint::one() | (BigUint::one() << 1535u32);
        let ctx = Montgomery::new(&m).unwrap();
        let b = random_bits(&mut rng, 1500);
        for ebits in [0u64, 1, 7, 100, 1535, 1536, 1600] {
            let e = random_bits(&mut rng, ebits);
            assert_eq!(
                ctx.pow_fixed_bits(&b, &e, 1536),
                b.modpow(&e, &m),
                "ebits {ebits}"
            );
        }
        assert_eq!(
            ctx.pow_fixed_bits(&b, &BigUint::default(), 0),
            BigUint::one()
        );
    }

    #[test]
    fn debug_does_not_print_the_modulus() {
        let m = BigUint::from(1_000_003u32);
        let shown = alloc::format!("{:?}", Montgomery::new(&m).unwrap());
        assert_eq!(shown, "Montgomery(20 bits)");
    }

    #[test]
    fn edge_values() {
        for m in [
            (BigUint::one() << 1536u32) - 1u32,
            (BigUint::one() << 64u32) - 1u32,
            BigUint::from(3u32),
        ] {
            let ctx = Montgomery::new(&m).unwrap();
            let e = BigUint::from(65537u32);
            for b in [
                BigUint::zero(),
                BigUint::one(),
                &m - 1u32,
                m.clone(),
                &m + 5u32,
            ] {
                assert_eq!(ctx.pow(&b, &e), b.modpow(&e, &m));
                assert_eq!(ctx.pow(&b, &(&m - 1u32)), b.modpow(&(&m - 1u32), &m));
            }
        }
    }
}
