//! The canonical byte encoding every `custody_proto::chain` format is written in: a
//! length-prefixed ASCII tag first, then fixed-width big-endian integers, fixed-length byte
//! arrays, and variable-length fields as a 4-byte big-endian length followed by the bytes.
//! The reader is strict: it refuses short input, over-long fields and trailing bytes.
//!
//! Public so that the coordinator writes its own transaction formats by the same rules.

use super::DecodeError;

/// Builds one canonical encoding.
pub struct Writer(Vec<u8>);

impl Writer {
    /// Starts an encoding with its tag.
    pub fn tagged(tag: &str) -> Self {
        let mut w = Self(Vec::with_capacity(128));
        w.var(tag.as_bytes());
        w
    }

    /// A u16, big-endian.
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// A u32, big-endian.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// A u64, big-endian.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// A u128, big-endian.
    pub fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// A single byte.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    /// A fixed-length field: no length prefix, the format fixes the length.
    pub fn fixed(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A variable-length field. Callers cap lengths far below `u32::MAX` before encoding;
    /// a longer field would be a bug, and is saturated rather than wrapped.
    pub fn var(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.0.extend_from_slice(bytes);
    }

    /// The encoding.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads one canonical encoding, strictly.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`, which must begin with `tag`.
    pub fn tagged(bytes: &'a [u8], tag: &str) -> Result<Self, DecodeError> {
        let mut r = Self { buf: bytes };
        let len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if len != tag.len() || r.take(len)? != tag.as_bytes() {
            return Err(DecodeError::WrongTag {
                expected: tag.to_owned(),
            });
        }
        Ok(r)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A fixed-length array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A u16, big-endian.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A u32, big-endian.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A u64, big-endian.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A u128, big-endian.
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_be_bytes(self.array()?))
    }

    /// A single byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// A variable-length field of at most `max` bytes; the cap is checked before anything
    /// is copied.
    pub fn var(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(len)
    }

    /// A UTF-8 string field of 1..=`max` bytes.
    pub fn string(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let bytes = self.var(field, max)?;
        if bytes.is_empty() {
            return Err(DecodeError::Invalid {
                field,
                reason: "empty",
            });
        }
        let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8 { field })?;
        Ok(s.to_owned())
    }

    /// Ends decoding: every byte must have been consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.buf.len(),
            })
        }
    }
}
