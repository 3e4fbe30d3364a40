//! The Fiat–Shamir transcript (checklist ENC-01, ENC-02, ENC-03).
//!
//! One type for every proof. Each absorbed field is framed as
//! `len(tag) ‖ tag ‖ len(value) ‖ value` with fixed-width big-endian lengths, and integers are
//! encoded with an explicit sign byte and minimal magnitude, so the byte stream is an injective
//! function of the sequence of (tag, value) pairs: two different statements never hash alike
//! (the TSSHOCK "α-shuffle" collision of concatenated integer lists cannot occur).
//! Challenges are squeezed from a snapshot of the state together with a tag and a counter, so
//! the m challenges of a repeated proof come from distinct counters (ENC-03).

use alloc::vec::Vec;

use k256::{ProjectivePoint, Scalar};
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::Zero;
use sha2::{Digest, Sha512};

use crate::arith::{curve_order, scalar_from_uint};
use crate::params::HASH_REDUCTION_SLACK_BITS;

/// Domain separator of every transcript made by this crate (bump on any format change).
const TRANSCRIPT_DOMAIN: &[u8] = b"custody-appliance/mpc-core/fiat-shamir/v1";

/// A domain-separated, injective Fiat–Shamir transcript over SHA-512.
#[derive(Clone)]
pub struct Transcript {
    hasher: Sha512,
}

impl Transcript {
    /// Starts a transcript for the protocol or proof named `label` (e.g. `b"pi-mod/fig12"`).
    pub fn new(label: &'static [u8]) -> Self {
        let mut t = Self {
            hasher: Sha512::new(),
        };
        t.append_bytes(b"domain", TRANSCRIPT_DOMAIN);
        t.append_bytes(b"label", label);
        t
    }

    fn frame(&mut self, kind: u8, tag: &[u8], value: &[u8]) {
        self.hasher.update([kind]);
        self.hasher.update((tag.len() as u32).to_be_bytes());
        self.hasher.update(tag);
        self.hasher.update((value.len() as u64).to_be_bytes());
        self.hasher.update(value);
    }

    /// Absorbs a byte string under `tag`.
    pub fn append_bytes(&mut self, tag: &'static [u8], value: &[u8]) {
        self.frame(0x01, tag, value);
    }

    /// Absorbs an unsigned 64-bit integer.
    pub fn append_u64(&mut self, tag: &'static [u8], value: u64) {
        self.frame(0x02, tag, &value.to_be_bytes());
    }

    /// Absorbs a non-negative big integer (minimal big-endian magnitude; zero is empty).
    pub fn append_uint(&mut self, tag: &'static [u8], value: &BigUint) {
        let bytes = if value.is_zero() {
            Vec::new()
        } else {
            value.to_bytes_be()
        };
        self.frame(0x03, tag, &bytes);
    }

    /// Absorbs a signed big integer (sign byte, then minimal magnitude).
    pub fn append_int(&mut self, tag: &'static [u8], value: &BigInt) {
        let mut bytes = Vec::with_capacity(1 + (value.bits() as usize).div_ceil(8));
        bytes.push(match value.sign() {
            Sign::Minus => 1,
            _ => 0,
        });
        if !value.is_zero() {
            bytes.extend_from_slice(&value.magnitude().to_bytes_be());
        }
        self.frame(0x04, tag, &bytes);
    }

    /// Absorbs a curve point (33-byte SEC1 compressed; the identity as 33 zero bytes).
    pub fn append_point(&mut self, tag: &'static [u8], point: &ProjectivePoint) {
        self.frame(0x05, tag, &crate::encoding::point_bytes(point));
    }

    /// Absorbs a curve scalar (32 bytes big-endian).
    pub fn append_scalar(&mut self, tag: &'static [u8], scalar: &Scalar) {
        self.frame(0x06, tag, &scalar.to_bytes());
    }

    /// Absorbs a list of non-negative big integers, with its length.
    pub fn append_uint_list(&mut self, tag: &'static [u8], values: &[BigUint]) {
        self.frame(0x07, tag, &(values.len() as u64).to_be_bytes());
        for v in values {
            self.append_uint(b"item", v);
        }
    }

    /// Absorbs a list of curve points, with its length.
    pub fn append_point_list(&mut self, tag: &'static [u8], values: &[ProjectivePoint]) {
        self.frame(0x08, tag, &(values.len() as u64).to_be_bytes());
        for v in values {
            self.append_point(b"item", v);
        }
    }

    /// Squeezes `len` bytes bound to (state, tag, counter); the state itself is not advanced.
    pub fn challenge_bytes(&self, tag: &'static [u8], counter: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len.next_multiple_of(64));
        let mut block: u64 = 0;
        while out.len() < len {
            let mut h = self.hasher.clone();
            h.update([0xFFu8]);
            h.update((tag.len() as u32).to_be_bytes());
            h.update(tag);
            h.update(counter.to_be_bytes());
            h.update(block.to_be_bytes());
            h.update((len as u64).to_be_bytes());
            out.extend_from_slice(&h.finalize());
            block += 1;
        }
        out.truncate(len);
        out
    }

    /// A challenge uniform in [0, bound) up to 2^-128 statistical distance (bound > 0).
    pub fn challenge_below(&self, tag: &'static [u8], counter: u64, bound: &BigUint) -> BigUint {
        let bits = bound.bits() + u64::from(HASH_REDUCTION_SLACK_BITS);
        let bytes = self.challenge_bytes(tag, counter, bits.div_ceil(8) as usize);
        BigUint::from_bytes_be(&bytes) % bound
    }

    /// A challenge e ∈ ±q (the paper's "e ← ±q"), as a signed integer.
    pub fn challenge_signed_q(&self, tag: &'static [u8]) -> BigInt {
        let q = curve_order();
        let width = &q * 2u32 + 1u32;
        BigInt::from(self.challenge_below(tag, 0, &width)) - BigInt::from(q)
    }

    /// A challenge scalar e ∈ F_q.
    pub fn challenge_scalar(&self, tag: &'static [u8]) -> Scalar {
        scalar_from_uint(&self.challenge_below(tag, 0, &curve_order()))
    }

    /// `m` challenge bits (for the binary-challenge proofs Πprm, Πaff-g*, Πdec).
    pub fn challenge_bits(&self, tag: &'static [u8], m: usize) -> Vec<bool> {
        let bytes = self.challenge_bytes(tag, 0, m.div_ceil(8));
        (0..m).map(|i| (bytes[i / 8] >> (i % 8)) & 1 == 1).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge_of(values: &[u32]) -> Vec<u8> {
        let mut t = Transcript::new(b"test");
        let list: Vec<BigUint> = values.iter().map(|v| BigUint::from(*v)).collect();
        t.append_uint_list(b"list", &list);
        t.challenge_bytes(b"e", 0, 32)
    }

    /// ENC-01: the α-shuffle collision. [0x01, 0x0203] and [0x0102, 0x03] concatenate to the
    /// same bytes 01 02 03; framed fields must keep them apart.
    #[test]
    fn alpha_shuffle_lists_hash_differently() {
        assert_ne!(challenge_of(&[0x01, 0x0203]), challenge_of(&[0x0102, 0x03]));
        // and a plain concatenation would indeed have collided:
        let concat = |v: &[u32]| -> Vec<u8> {
            v.iter()
                .flat_map(|x| BigUint::from(*x).to_bytes_be())
                .collect()
        };
        assert_eq!(concat(&[0x01, 0x0203]), concat(&[0x0102, 0x03]));
    }

    #[test]
    fn tags_sign_and_kind_separate_fields() {
        let run = |f: &dyn Fn(&mut Transcript)| {
            let mut t = Transcript::new(b"test");
            f(&mut t);
            t.challenge_bytes(b"e", 0, 32)
        };
        let a = run(&|t| t.append_int(b"x", &BigInt::from(5)));
        let b = run(&|t| t.append_int(b"x", &BigInt::from(-5)));
        let c = run(&|t| t.append_int(b"y", &BigInt::from(5)));
        let d = run(&|t| t.append_uint(b"x", &BigUint::from(5u32)));
        let e = run(&|t| t.append_bytes(b"x", &[5]));
        let all = [a, b, c, d, e];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j], "{i} vs {j}");
            }
        }
    }

    /// ENC-03: distinct counters give distinct challenges.
    #[test]
    fn counters_give_distinct_challenges() {
        let t = Transcript::new(b"test");
        let n = BigUint::from(u128::MAX);
        let ys: Vec<BigUint> = (0..128).map(|i| t.challenge_below(b"y", i, &n)).collect();
        for i in 0..ys.len() {
            for j in i + 1..ys.len() {
                assert_ne!(ys[i], ys[j]);
            }
        }
    }

    #[test]
    fn signed_challenge_is_in_range() {
        let q = BigInt::from(curve_order());
        for i in 0..50u64 {
            let mut t = Transcript::new(b"test");
            t.append_u64(b"i", i);
            let e = t.challenge_signed_q(b"e");
            assert!(e >= -q.clone() && e <= q);
        }
    }
}
