//! What a sealed record is bound to (OPS-04): its record kind, its key id and an optional
//! context. The binding is the AEAD's associated data, so a record copied to another key id,
//! another kind or another context fails to open.

use crate::error::SealError;

/// Longest accepted record kind, in bytes.
pub const MAX_RECORD_KIND_LEN: usize = 64;
/// Longest accepted key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 1024;
/// Longest accepted context, in bytes.
pub const MAX_CONTEXT_LEN: usize = 1024;

/// Associated data of one sealed record.
///
/// - `record_kind`: what the record is, e.g. `"share"`, `"aux"`, `"presignature"`. Lower-case
///   ASCII letters, digits, `.`, `_` and `-`, 1 to 64 bytes.
/// - `key_id`: which key the record belongs to (may be empty for records that belong to no key,
///   such as the node identity).
/// - `context`: anything else the record must stay bound to, e.g. a schema version, epoch or
///   presignature session id (empty by default).
///
/// The encoding into the AEAD's associated data is injective: a domain tag, then each field
/// with a 4-byte big-endian length prefix.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SealAad {
    record_kind: String,
    key_id: Vec<u8>,
    context: Vec<u8>,
}

impl SealAad {
    /// Associated data for a record of `record_kind` belonging to `key_id`.
    ///
    /// # Errors
    /// [`SealError::InvalidAad`] if the record kind is empty, too long or has characters outside
    /// `[a-z0-9._-]`, or if the key id is longer than [`MAX_KEY_ID_LEN`].
    pub fn new(record_kind: &str, key_id: &[u8]) -> Result<Self, SealError> {
        if record_kind.is_empty() {
            return Err(SealError::InvalidAad("record kind is empty"));
        }
        if record_kind.len() > MAX_RECORD_KIND_LEN {
            return Err(SealError::InvalidAad("record kind is longer than 64 bytes"));
        }
        if !record_kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(SealError::InvalidAad(
                "record kind may only hold a-z, 0-9, '.', '_' and '-'",
            ));
        }
        if key_id.len() > MAX_KEY_ID_LEN {
            return Err(SealError::InvalidAad("key id is longer than 1024 bytes"));
        }
        Ok(Self {
            record_kind: record_kind.to_owned(),
            key_id: key_id.to_vec(),
            context: Vec::new(),
        })
    }

    /// The same binding plus `context` (schema version, epoch, session id, ...).
    ///
    /// # Errors
    /// [`SealError::InvalidAad`] if `context` is longer than [`MAX_CONTEXT_LEN`].
    pub fn with_context(mut self, context: &[u8]) -> Result<Self, SealError> {
        if context.len() > MAX_CONTEXT_LEN {
            return Err(SealError::InvalidAad("context is longer than 1024 bytes"));
        }
        self.context = context.to_vec();
        Ok(self)
    }

    /// The record kind.
    pub fn record_kind(&self) -> &str {
        &self.record_kind
    }

    /// The key id.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The context (empty unless set with [`SealAad::with_context`]).
    pub fn context(&self) -> &[u8] {
        &self.context
    }

    /// Appends the injective encoding of the three fields to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        for field in [self.record_kind.as_bytes(), &self.key_id, &self.context] {
            // Lengths are capped at 1024 by the constructors, so they fit in u32.
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn encoded(aad: &SealAad) -> Vec<u8> {
        let mut out = Vec::new();
        aad.encode_into(&mut out);
        out
    }

    #[test]
    fn record_kind_is_validated() {
        assert!(matches!(
            SealAad::new("", b"k"),
            Err(SealError::InvalidAad(_))
        ));
        assert!(matches!(
            SealAad::new("Share", b"k"),
            Err(SealError::InvalidAad(_))
        ));
        assert!(matches!(
            SealAad::new("a b", b"k"),
            Err(SealError::InvalidAad(_))
        ));
        assert!(SealAad::new(&"a".repeat(65), b"k").is_err());
        assert!(SealAad::new(&"a".repeat(64), b"k").is_ok());
        assert!(SealAad::new("presign.v1_x-y", b"").is_ok());
    }

    #[test]
    fn key_id_and_context_lengths_are_capped() {
        assert!(SealAad::new("share", &[0; 1025]).is_err());
        let aad = SealAad::new("share", &[0; 1024]).unwrap();
        assert!(aad.clone().with_context(&[0; 1025]).is_err());
        assert!(aad.with_context(&[0; 1024]).is_ok());
    }

    #[test]
    fn encoding_is_injective_across_field_boundaries() {
        // Moving bytes between fields must change the encoding.
        let a = SealAad::new("ab", b"c").unwrap();
        let b = SealAad::new("a", b"bc").unwrap();
        assert_ne!(encoded(&a), encoded(&b));
        let c = SealAad::new("share", b"k")
            .unwrap()
            .with_context(b"")
            .unwrap();
        let d = SealAad::new("share", b"")
            .unwrap()
            .with_context(b"k")
            .unwrap();
        assert_ne!(encoded(&c), encoded(&d));
    }
}
