//! Verbatim copy of `mpc-core/src/monty.rs` at commit 74751ef (tests removed): the baseline
//! that `benches/monty.rs` compares the current code against.

//! Montgomery exponentiation for odd moduli with a dedicated squaring.
//!
//! Products are computed first (schoolbook; squaring computes each cross product once and
//! doubles), then reduced with Montgomery's REDC (separated operand scanning). A squaring costs
//! about 1.5·n² limb products instead of 2·n², and squarings are ~80 % of an exponentiation.
//! Fixed 5-bit window. Variable time in the same ways as num-bigint's (see
//! audits/bigint-timing.md): no secret-dependent branches on limb values except the final
//! conditional subtraction, and table lookups indexed by exponent digits.

use alloc::vec;
use alloc::vec::Vec;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::One;

const WINDOW_BITS: usize = 5;

/// Precomputed constants of one odd modulus n > 1. The modulus may be secret (p², q² of a
/// Paillier key): the limbs are wiped on drop and `Debug` prints only the size.
#[derive(Clone, PartialEq, Eq)]
pub struct Montgomery {
    modulus: BigUint,
    n: Vec<u64>,
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
        self.r2.zeroize();
        self.r1.zeroize();
        crate::arith::wipe_uint(&mut self.modulus);
    }
}

/// Scratch space for one product (2·len + 1 limbs).
pub(crate) struct Scratch {
    t: Vec<u64>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // the scratch held products of possibly secret values
        zeroize::Zeroize::zeroize(&mut self.t);
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

    /// Fresh scratch space for [`Self::mul`] and [`Self::sqr`].
    pub(crate) fn scratch(&self) -> Scratch {
        Scratch {
            t: vec![0u64; 2 * self.n.len() + 1],
        }
    }

    /// 1 in Montgomery form (R mod n).
    pub(crate) fn one(&self) -> Vec<u64> {
        self.r1.clone()
    }

    /// x·R mod n (into Montgomery form); x may be ≥ n.
    pub(crate) fn enter_montgomery(&self, x: &BigUint, s: &mut Scratch) -> Vec<u64> {
        let len = self.n.len();
        let reduced = if x < &self.modulus {
            pad(x, len)
        } else {
            pad(&(x % &self.modulus), len)
        };
        let mut out = vec![0u64; len];
        self.mul(&reduced, &self.r2, &mut out, s);
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

    /// REDC: out = t·R^{-1} mod n for t < n·R held in `t` (2·len + 1 limbs, consumed).
    fn reduce(&self, t: &mut [u64], out: &mut [u64]) {
        let len = self.n.len();
        // Row i adds m_i·n·2^{64i}; its carry out of limb i+len−1 goes into limb i+len together
        // with the carry left by the previous row (one delayed carry instead of a propagation).
        let mut pending: u64 = 0;
        for i in 0..len {
            let m = t[i].wrapping_mul(self.n0_inv);
            let mut carry: u64 = 0;
            for (tj, &nj) in t[i..i + len].iter_mut().zip(self.n.iter()) {
                let v = u128::from(*tj) + u128::from(m) * u128::from(nj) + u128::from(carry);
                *tj = v as u64;
                carry = (v >> 64) as u64;
            }
            let v = u128::from(t[i + len]) + u128::from(carry) + u128::from(pending);
            t[i + len] = v as u64;
            pending = (v >> 64) as u64;
        }
        t[2 * len] += pending;
        let hi = &t[len..2 * len];
        if t[2 * len] != 0 || !less_than(hi, &self.n) {
            let mut borrow = false;
            for (o, (&x, &y)) in out.iter_mut().zip(hi.iter().zip(self.n.iter())) {
                let (d1, b1) = x.overflowing_sub(y);
                let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
                *o = d2;
                borrow = b1 || b2;
            }
        } else {
            out.copy_from_slice(hi);
        }
    }

    fn mul(&self, a: &[u64], b: &[u64], out: &mut [u64], s: &mut Scratch) {
        let len = self.n.len();
        let t = &mut s.t;
        t.fill(0);
        for (i, &ai) in a.iter().enumerate() {
            let mut carry: u64 = 0;
            for (tj, &bj) in t[i..i + len].iter_mut().zip(b.iter()) {
                let v = u128::from(*tj) + u128::from(ai) * u128::from(bj) + u128::from(carry);
                *tj = v as u64;
                carry = (v >> 64) as u64;
            }
            t[i + len] = carry;
        }
        self.reduce(t, out);
    }

    fn sqr(&self, a: &[u64], out: &mut [u64], s: &mut Scratch) {
        let len = self.n.len();
        let t = &mut s.t;
        t.fill(0);
        // cross products a_i·a_j, i < j
        for i in 0..len {
            let ai = a[i];
            let mut carry: u64 = 0;
            for (tj, &aj) in t[2 * i + 1..i + len].iter_mut().zip(a[i + 1..].iter()) {
                let v = u128::from(*tj) + u128::from(ai) * u128::from(aj) + u128::from(carry);
                *tj = v as u64;
                carry = (v >> 64) as u64;
            }
            t[i + len] = carry;
        }
        // double them
        let mut top: u64 = 0;
        for tj in t[..2 * len].iter_mut() {
            let v = *tj;
            *tj = (v << 1) | top;
            top = v >> 63;
        }
        // add the squares a_i² on the diagonal
        let mut carry: u64 = 0;
        for i in 0..len {
            let sq = u128::from(a[i]) * u128::from(a[i]);
            let lo = u128::from(t[2 * i]) + (sq & u128::from(u64::MAX)) + u128::from(carry);
            t[2 * i] = lo as u64;
            let hi = u128::from(t[2 * i + 1]) + (sq >> 64) + (lo >> 64);
            t[2 * i + 1] = hi as u64;
            carry = (hi >> 64) as u64;
        }
        t[2 * len] = carry;
        self.reduce(t, out);
    }

    /// base^exp mod n.
    pub fn pow(&self, base: &BigUint, exp: &BigUint) -> BigUint {
        let len = self.n.len();
        let mut s = Scratch {
            t: vec![0u64; 2 * len + 1],
        };
        let bits = exp.bits() as usize;
        if bits == 0 {
            return BigUint::one() % &self.modulus;
        }
        let reduced = if base < &self.modulus {
            pad(base, len)
        } else {
            pad(&(base % &self.modulus), len)
        };
        let mut b = vec![0u64; len];
        self.mul(&reduced, &self.r2, &mut b, &mut s);
        let mut table = Vec::with_capacity(1 << WINDOW_BITS);
        table.push(self.r1.clone());
        table.push(b.clone());
        for k in 2..(1usize << WINDOW_BITS) {
            let mut next = vec![0u64; len];
            if k % 2 == 0 {
                self.sqr(&table[k / 2], &mut next, &mut s);
            } else {
                self.mul(&table[k - 1], &b, &mut next, &mut s);
            }
            table.push(next);
        }
        let e = exp.to_u64_digits();
        let windows = bits.div_ceil(WINDOW_BITS);
        let mut acc = table[window_digit(&e, (windows - 1) * WINDOW_BITS)].clone();
        let mut tmp = vec![0u64; len];
        for w in (0..windows - 1).rev() {
            for _ in 0..WINDOW_BITS {
                self.sqr(&acc, &mut tmp, &mut s);
                core::mem::swap(&mut acc, &mut tmp);
            }
            let digit = window_digit(&e, w * WINDOW_BITS);
            if digit != 0 {
                self.mul(&acc, &table[digit], &mut tmp, &mut s);
                core::mem::swap(&mut acc, &mut tmp);
            }
        }
        // leave Montgomery form: multiply by 1
        let mut one = vec![0u64; len];
        one[0] = 1;
        self.mul(&acc, &one, &mut tmp, &mut s);
        let out = from_limbs(&tmp);
        // the buffers held multiples of a possibly secret base and modulus
        zeroize::Zeroize::zeroize(&mut acc);
        zeroize::Zeroize::zeroize(&mut tmp);
        for entry in table.iter_mut() {
            zeroize::Zeroize::zeroize(entry);
        }
        out
    }
}

fn window_digit(e: &[u64], pos: usize) -> usize {
    let limb = pos / 64;
    let off = pos % 64;
    let lo = e.get(limb).copied().unwrap_or(0) >> off;
    let hi = if off + WINDOW_BITS > 64 {
        e.get(limb + 1).copied().unwrap_or(0) << (64 - off)
    } else {
        0
    };
    ((lo | hi) & ((1u64 << WINDOW_BITS) - 1)) as usize
}

fn less_than(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
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
    BigUint::from_bytes_le(&bytes)
}
