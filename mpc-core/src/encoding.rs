//! Canonical byte encoding of proofs and protocol values, with length caps.
//!
//! "Parse, don't validate": a [`Reader`] rejects anything that is not the unique canonical
//! encoding (non-minimal integers, negative zero, scalars ≥ q, points off the curve, trailing
//! bytes, over-long fields) with a [`DecodeError`] and never panics. Sizes are checked before
//! any allocation, so an attacker cannot make a decoder allocate more than its input length.

use alloc::vec::Vec;

use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::Zero;

/// Why a byte string is not a canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the named field was complete.
    #[error("truncated input while reading {field}")]
    Truncated {
        /// Field being read.
        field: &'static str,
    },
    /// A length prefix exceeds the cap for the field.
    #[error("{field} is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// Field being read.
        field: &'static str,
        /// Length found.
        len: usize,
        /// Cap for the field.
        max: usize,
    },
    /// A list has a number of items other than the one the format fixes.
    #[error("{field} has {got} items, expected {expected}")]
    WrongCount {
        /// Field being read.
        field: &'static str,
        /// Items found.
        got: usize,
        /// Items required.
        expected: usize,
    },
    /// An integer has a leading zero byte, or a signed integer is −0 or has a bad sign byte.
    #[error("{field} is not minimally encoded")]
    NonCanonical {
        /// Field being read.
        field: &'static str,
    },
    /// A scalar is not below the curve order.
    #[error("{field} is not a canonical scalar")]
    BadScalar {
        /// Field being read.
        field: &'static str,
    },
    /// A point is not a valid compressed secp256k1 point.
    #[error("{field} is not a valid curve point")]
    BadPoint {
        /// Field being read.
        field: &'static str,
    },
    /// A fixed-width field holds a value outside the range its format allows (e.g. a hardened
    /// BIP32 index where only non-hardened ones are defined).
    #[error("{field} is out of range")]
    OutOfRange {
        /// Field being read.
        field: &'static str,
    },
    /// The header names another message type or version.
    #[error("wrong type tag {got:#04x}, expected {expected:#04x}")]
    WrongTag {
        /// Tag found.
        got: u8,
        /// Tag required.
        expected: u8,
    },
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes after the encoding")]
    TrailingBytes(usize),
}

/// 33-byte SEC1 compressed encoding of a point; the identity is 33 zero bytes.
pub fn point_bytes(p: &ProjectivePoint) -> [u8; 33] {
    let mut out = [0u8; 33];
    let enc = p.to_affine().to_bytes();
    if enc.len() == 33 {
        out.copy_from_slice(&enc);
    }
    out
}

/// Builds a canonical encoding.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts an encoding with a one-byte type tag.
    pub fn new(tag: u8) -> Self {
        let mut w = Self { buf: Vec::new() };
        w.buf.push(tag);
        w
    }

    /// Starts an encoding with a one-byte type tag in a buffer of `capacity` bytes. An
    /// encoding that stays within the capacity is never reallocated, so no stale copy of it is
    /// left in freed memory (the store codec writes secrets this way and wipes the result).
    pub fn with_capacity(tag: u8, capacity: usize) -> Self {
        let mut w = Self {
            buf: Vec::with_capacity(capacity),
        };
        w.buf.push(tag);
        w
    }

    /// Appends a single byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends length-prefixed bytes (u32 big-endian length).
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(&(v.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a non-negative integer: u32 length, then minimal big-endian magnitude.
    pub fn uint(&mut self, v: &BigUint) -> &mut Self {
        if v.is_zero() {
            self.bytes(&[])
        } else {
            self.bytes(&v.to_bytes_be())
        }
    }

    /// Appends a signed integer: sign byte (0 = non-negative, 1 = negative), then [`Self::uint`].
    pub fn int(&mut self, v: &BigInt) -> &mut Self {
        self.u8(u8::from(v.sign() == Sign::Minus));
        self.uint(v.magnitude())
    }

    /// Appends a 32-byte scalar.
    pub fn scalar(&mut self, v: &Scalar) -> &mut Self {
        self.buf.extend_from_slice(&v.to_bytes());
        self
    }

    /// Appends fixed-width raw bytes (the width is fixed by the format, so no length prefix).
    pub fn array<const N: usize>(&mut self, v: &[u8; N]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a 33-byte compressed point.
    pub fn point(&mut self, v: &ProjectivePoint) -> &mut Self {
        self.buf.extend_from_slice(&point_bytes(v));
        self
    }

    /// Finishes and returns the bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.buf)
    }
}

/// Reads a canonical encoding, refusing anything else.
pub struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading; the first byte must equal `tag`.
    pub fn new(input: &'a [u8], tag: u8) -> Result<Self, DecodeError> {
        let mut r = Self { input };
        let got = r.u8("type tag")?;
        if got != tag {
            return Err(DecodeError::WrongTag { got, expected: tag });
        }
        Ok(r)
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a big-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads length-prefixed bytes of at most `max` bytes.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let b = self.take(4, field)?;
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(len, field)
    }

    /// Reads a non-negative integer of at most `max_bytes` bytes, minimally encoded.
    pub fn uint(&mut self, field: &'static str, max_bytes: usize) -> Result<BigUint, DecodeError> {
        let b = self.bytes(field, max_bytes)?;
        if b.first() == Some(&0) {
            return Err(DecodeError::NonCanonical { field });
        }
        Ok(BigUint::from_bytes_be(b))
    }

    /// Reads a signed integer whose magnitude has at most `max_bytes` bytes.
    pub fn int(&mut self, field: &'static str, max_bytes: usize) -> Result<BigInt, DecodeError> {
        let sign = self.u8(field)?;
        let mag = self.uint(field, max_bytes)?;
        match (sign, mag.is_zero()) {
            (0, _) => Ok(BigInt::from(mag)),
            (1, false) => Ok(-BigInt::from(mag)),
            _ => Err(DecodeError::NonCanonical { field }),
        }
    }

    /// Reads `N` raw bytes of a fixed-width field.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// Reads a u16 item count of at most `max` (variable-length lists with a cap).
    pub fn count_at_most(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let got = self.u16(field)? as usize;
        if got > max {
            return Err(DecodeError::TooLong {
                field,
                len: got,
                max,
            });
        }
        Ok(got)
    }

    /// Reads a canonical 32-byte scalar (< q).
    pub fn scalar(&mut self, field: &'static str) -> Result<Scalar, DecodeError> {
        let b = self.take(32, field)?;
        let mut repr = k256::FieldBytes::default();
        repr.copy_from_slice(b);
        Option::<Scalar>::from(Scalar::from_repr(repr)).ok_or(DecodeError::BadScalar { field })
    }

    /// Reads a 33-byte compressed point; 33 zero bytes decode to the identity.
    pub fn point(&mut self, field: &'static str) -> Result<ProjectivePoint, DecodeError> {
        let b = self.take(33, field)?;
        if b.iter().all(|x| *x == 0) {
            return Ok(ProjectivePoint::IDENTITY);
        }
        // Only the SEC1 compressed forms 0x02/0x03: k256 also parses other tags, which would
        // give one point two encodings (and break byte-level echo checks and payload hashes).
        if b[0] != 0x02 && b[0] != 0x03 {
            return Err(DecodeError::BadPoint { field });
        }
        let mut repr = k256::CompressedPoint::default();
        repr.copy_from_slice(b);
        let affine = Option::<AffinePoint>::from(AffinePoint::from_bytes(&repr))
            .ok_or(DecodeError::BadPoint { field })?;
        Ok(ProjectivePoint::from(affine))
    }

    /// Reads a u16 item count that must equal `expected` (fixed-size lists such as the m
    /// repetitions of a statistical proof: the count is a constant, never taken from the wire).
    pub fn count(&mut self, field: &'static str, expected: usize) -> Result<(), DecodeError> {
        let got = self.u16(field)? as usize;
        if got != expected {
            return Err(DecodeError::WrongCount {
                field,
                got,
                expected,
            });
        }
        Ok(())
    }

    /// Ends decoding; any remaining byte is an error.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.input.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_and_reject_non_canonical() {
        let values = [
            BigInt::from(0),
            BigInt::from(1),
            BigInt::from(-1),
            BigInt::from(256),
            BigInt::from(-65_537),
        ];
        for v in &values {
            let bytes = Writer::new(7).int(v).finish();
            let mut r = Reader::new(&bytes, 7).unwrap();
            assert_eq!(&r.int("v", 8).unwrap(), v);
            r.finish().unwrap();
        }
        // negative zero
        let neg_zero = [7u8, 1, 0, 0, 0, 0];
        assert_eq!(
            Reader::new(&neg_zero, 7).unwrap().int("v", 8),
            Err(DecodeError::NonCanonical { field: "v" })
        );
        // leading zero byte
        let padded = [7u8, 0, 0, 0, 0, 2, 0, 5];
        assert_eq!(
            Reader::new(&padded, 7).unwrap().int("v", 8),
            Err(DecodeError::NonCanonical { field: "v" })
        );
        // bad sign byte
        let bad_sign = [7u8, 2, 0, 0, 0, 1, 5];
        assert!(Reader::new(&bad_sign, 7).unwrap().int("v", 8).is_err());
        // over cap, refused before reading the body
        let long = [7u8, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            Reader::new(&long, 7).unwrap().int("v", 8),
            Err(DecodeError::TooLong { .. })
        ));
        // trailing bytes
        let mut bytes = Writer::new(7).uint(&BigUint::from(3u32)).finish();
        bytes.push(0);
        let mut r = Reader::new(&bytes, 7).unwrap();
        r.uint("v", 8).unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn fixed_width_integers_round_trip_big_endian() {
        let bytes = Writer::new(3)
            .u16(0x0102)
            .u32(0x0304_0506)
            .u64(0x0708_090A_0B0C_0D0E)
            .finish();
        assert_eq!(bytes, [3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        let mut r = Reader::new(&bytes, 3).unwrap();
        assert_eq!(r.u16("a").unwrap(), 0x0102);
        assert_eq!(r.u32("b").unwrap(), 0x0304_0506);
        assert_eq!(r.u64("c").unwrap(), 0x0708_090A_0B0C_0D0E);
        r.finish().unwrap();
        assert_eq!(
            Reader::new(&[3, 0, 0, 0, 0, 0, 0, 0], 3).unwrap().u64("c"),
            Err(DecodeError::Truncated { field: "c" })
        );
        assert_eq!(
            Reader::new(&[3, 0, 0, 0], 3).unwrap().u32("b"),
            Err(DecodeError::Truncated { field: "b" })
        );
    }

    #[test]
    fn points_and_scalars_round_trip_and_reject_garbage() {
        let p = ProjectivePoint::GENERATOR * Scalar::from(7u64);
        let bytes = Writer::new(1)
            .point(&p)
            .point(&ProjectivePoint::IDENTITY)
            .scalar(&Scalar::from(9u64))
            .finish();
        let mut r = Reader::new(&bytes, 1).unwrap();
        assert_eq!(r.point("p").unwrap(), p);
        assert_eq!(r.point("id").unwrap(), ProjectivePoint::IDENTITY);
        assert_eq!(r.scalar("s").unwrap(), Scalar::from(9u64));
        r.finish().unwrap();

        let mut bad_point = [0u8; 34];
        bad_point[0] = 1;
        bad_point[1] = 0x02;
        bad_point[2..].fill(0xFF); // x ≥ field prime
        assert!(Reader::new(&bad_point, 1).unwrap().point("p").is_err());
        // the same point under any tag but 0x02/0x03 is refused (one point, one encoding)
        let good = point_bytes(&p);
        for tag in [0x00u8, 0x01, 0x04, 0x05, 0x06, 0x07, 0xFF] {
            let mut other = good;
            other[0] = tag;
            let mut input = alloc::vec![1u8];
            input.extend_from_slice(&other);
            assert!(
                Reader::new(&input, 1).unwrap().point("p").is_err(),
                "tag {tag:#04x}"
            );
        }
        let mut bad_scalar = [0xFFu8; 33];
        bad_scalar[0] = 1;
        assert!(Reader::new(&bad_scalar, 1).unwrap().scalar("s").is_err());
        assert!(matches!(
            Reader::new(&[2u8], 1),
            Err(DecodeError::WrongTag { .. })
        ));
        assert!(matches!(
            Reader::new(&[], 1),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
