//! A Merkle tree over SHA-256 as in RFC 6962 §2.1 (leaf hash `SHA-256(0x00 ‖ leaf)`, node
//! hash `SHA-256(0x01 ‖ left ‖ right)`, the left subtree holding the largest power of two
//! below the leaf count), and inclusion proofs checked as in RFC 9162 §2.1.3.2.

use sha2::{Digest, Sha256};

use super::codec::{Reader, Writer};
use super::DecodeError;

/// Tag that opens an inclusion proof's encoding.
pub const INCLUSION_PROOF_TAG: &str = "custody.chain.v1/inclusion-proof";

/// Most hashes on a path: a tree of up to 2^64 leaves has depth at most 64.
pub const MAX_PROOF_HASHES: usize = 64;

/// Root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub fn empty_root() -> [u8; 32] {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn subtree_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    match hashes {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split_point(hashes.len());
            node_hash(&subtree_root(&hashes[..k]), &subtree_root(&hashes[k..]))
        }
    }
}

/// The Merkle tree hash of `leaves`, in order; [`empty_root`] for no leaves.
pub fn merkle_root<L: AsRef<[u8]>>(leaves: &[L]) -> [u8; 32] {
    let hashes: Vec<[u8; 32]> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    subtree_root(&hashes)
}

/// Why an inclusion proof does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The index is not below the leaf count.
    #[error("leaf index {index} is not below the leaf count {leaf_count}")]
    IndexOutOfRange {
        /// The claimed index.
        index: u64,
        /// The claimed leaf count.
        leaf_count: u64,
    },
    /// The path is longer or shorter than the tree shape requires.
    #[error("the path length does not fit the tree shape")]
    WrongPathLength,
    /// The path leads to another root.
    #[error("the proof leads to another root")]
    RootMismatch,
}

/// Proof that a leaf sits at `index` of a tree of `leaf_count` leaves: the sibling hashes
/// from the leaf up to the root (RFC 6962 `PATH`). The root does not commit to the leaf
/// count, so `leaf_count` only fixes the tree shape the path is read with; what the proof
/// establishes is "these bytes are a leaf of the tree with this root".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// Position of the leaf, from 0.
    pub index: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes, leaf level first.
    pub path: Vec<[u8; 32]>,
}

impl InclusionProof {
    /// Builds the proof for `leaves[index]`; `None` if `index` is out of range.
    pub fn build<L: AsRef<[u8]>>(leaves: &[L], index: usize) -> Option<Self> {
        if index >= leaves.len() {
            return None;
        }
        let hashes: Vec<[u8; 32]> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
        let mut path = Vec::new();
        collect_path(&hashes, index, &mut path);
        Some(Self {
            index: u64::try_from(index).ok()?,
            leaf_count: u64::try_from(leaves.len()).ok()?,
            path,
        })
    }

    /// Checks that `leaf` is at `index` of the tree with root `root` and `leaf_count` leaves.
    pub fn verify(&self, root: &[u8; 32], leaf: &[u8]) -> Result<(), MerkleError> {
        if self.index >= self.leaf_count {
            return Err(MerkleError::IndexOutOfRange {
                index: self.index,
                leaf_count: self.leaf_count,
            });
        }
        let mut f = self.index;
        let mut s = self.leaf_count - 1;
        let mut r = leaf_hash(leaf);
        for p in &self.path {
            if s == 0 {
                return Err(MerkleError::WrongPathLength);
            }
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            f >>= 1;
            s >>= 1;
        }
        if s != 0 {
            return Err(MerkleError::WrongPathLength);
        }
        if r == *root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        }
    }

    /// The canonical encoding: the tag, `index` (u64), `leaf_count` (u64), the number of
    /// hashes (u32), the hashes (32 each).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(INCLUSION_PROOF_TAG);
        w.u64(self.index);
        w.u64(self.leaf_count);
        w.u32(u32::try_from(self.path.len()).unwrap_or(u32::MAX));
        for h in &self.path {
            w.fixed(h);
        }
        w.finish()
    }

    /// Decodes exactly one proof of at most [`MAX_PROOF_HASHES`] hashes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, INCLUSION_PROOF_TAG)?;
        let index = r.u64()?;
        let leaf_count = r.u64()?;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if count > MAX_PROOF_HASHES {
            return Err(DecodeError::TooLong {
                field: "path",
                len: count,
                max: MAX_PROOF_HASHES,
            });
        }
        let mut path = Vec::with_capacity(count);
        for _ in 0..count {
            path.push(r.array()?);
        }
        r.finish()?;
        Ok(Self {
            index,
            leaf_count,
            path,
        })
    }
}

/// RFC 6962 `PATH(m, D[n])`, written leaf level first.
fn collect_path(hashes: &[[u8; 32]], m: usize, path: &mut Vec<[u8; 32]>) {
    if hashes.len() <= 1 {
        return;
    }
    let k = split_point(hashes.len());
    if m < k {
        collect_path(&hashes[..k], m, path);
        path.push(subtree_root(&hashes[k..]));
    } else {
        collect_path(&hashes[k..], m - k, path);
        path.push(subtree_root(&hashes[..k]));
    }
}
