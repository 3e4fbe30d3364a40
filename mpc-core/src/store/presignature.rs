//! The presignature record (layout in the [module documentation](super)).

use alloc::vec::Vec;

use k256::elliptic_curve::group::Group;
use k256::ProjectivePoint;
use zeroize::Zeroizing;

use super::{
    begin, bytes_len, finish, inconsistent, malformed, open, read_session_id, RecordKind,
    StoreDecodeError, HEADER_LEN,
};
use crate::encoding::{DecodeError, Reader};
use crate::hd::{DerivationPath, MAX_DEPTH};
use crate::presign::{Presignature, PresignaturePublic, DIGEST_BYTES, MAX_KEY_ID_BYTES};
use crate::protocol::{PartyIndex, MAX_PARTIES};

const KIND: RecordKind = RecordKind::Presignature;

/// Longest path encoding: tag, depth, 4 bytes per index.
const MAX_PATH_BYTES: usize = 2 + 4 * MAX_DEPTH;

/// Reads a u16 count that must equal `n` (the signer count).
fn count_of(r: &mut Reader<'_>, field: &'static str, n: usize) -> Result<(), StoreDecodeError> {
    let got = r
        .count_at_most(field, usize::from(MAX_PARTIES))
        .map_err(malformed(KIND))?;
    if got != n {
        return Err(inconsistent(KIND, "Δ or S count ≠ signer count"));
    }
    Ok(())
}

/// Reads `n` points (n ≤ [`MAX_PARTIES`], checked by the caller; the list grows only with
/// points actually read).
fn points(
    r: &mut Reader<'_>,
    field: &'static str,
    n: usize,
) -> Result<Vec<ProjectivePoint>, DecodeError> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(r.point(field)?);
    }
    Ok(out)
}

/// Reads a point that must not be the identity.
fn non_identity(
    r: &mut Reader<'_>,
    field: &'static str,
    what: &'static str,
) -> Result<ProjectivePoint, StoreDecodeError> {
    let p = r.point(field).map_err(malformed(KIND))?;
    if bool::from(p.is_identity()) {
        return Err(inconsistent(KIND, what));
    }
    Ok(p)
}

fn parse(r: &mut Reader<'_>) -> Result<Presignature, StoreDecodeError> {
    let session_id = read_session_id(r, KIND)?;
    let bad = malformed(KIND);
    let key_id = r.bytes("key id", MAX_KEY_ID_BYTES).map_err(&bad)?.to_vec();
    if key_id.is_empty() {
        return Err(inconsistent(KIND, "empty key id"));
    }
    let epoch = r.u64("epoch").map_err(&bad)?;
    let me = PartyIndex::new(r.u16("own index").map_err(&bad)?);
    let n = r
        .count_at_most("signer count", usize::from(MAX_PARTIES))
        .map_err(&bad)?;
    let mut signers = Vec::new();
    for _ in 0..n {
        signers.push(PartyIndex::new(r.u16("signer").map_err(&bad)?));
    }
    let path =
        DerivationPath::from_bytes(r.bytes("derivation path", MAX_PATH_BYTES).map_err(&bad)?)
            .map_err(&bad)?;
    let ssid = r.array("ssid").map_err(&bad)?;
    let transcript = r.array("transcript digest").map_err(&bad)?;
    let public_key = non_identity(r, "child public key", "child public key is the identity")?;
    let cap_r = non_identity(r, "R", "R is the identity")?;
    let cap_gamma = non_identity(r, "Γ", "Γ is the identity")?;
    count_of(r, "Δ count", n)?;
    let cap_deltas = points(r, "Δ_j", n).map_err(&bad)?;
    count_of(r, "S count", n)?;
    let cap_ss = points(r, "S_j", n).map_err(&bad)?;
    let k = Zeroizing::new(r.scalar("k_i").map_err(&bad)?);
    let chi = Zeroizing::new(r.scalar("χ_i").map_err(&bad)?);
    Ok(Presignature {
        session_id,
        me,
        k,
        chi,
        public: PresignaturePublic {
            ssid,
            transcript,
            signers,
            path,
            epoch,
            key_id,
            public_key,
            cap_r,
            cap_gamma,
            cap_deltas,
            cap_ss,
        },
    })
}

/// Checks the relations between the parsed fields.
fn check(p: &Presignature) -> Result<(), StoreDecodeError> {
    let public = &p.public;
    if public.signers.is_empty() || !public.signers.windows(2).all(|w| w[0] < w[1]) {
        return Err(inconsistent(KIND, "signers not strictly increasing"));
    }
    let Some(pos) = public.signers.iter().position(|s| *s == p.me) else {
        return Err(inconsistent(KIND, "own index not among the signers"));
    };
    if bool::from(p.k.is_zero()) {
        return Err(inconsistent(KIND, "k_i is zero"));
    }
    let (Some(cap_delta), Some(cap_s)) = (public.cap_deltas.get(pos), public.cap_ss.get(pos))
    else {
        return Err(inconsistent(KIND, "Δ or S count ≠ signer count"));
    };
    if public.cap_gamma * *p.k != *cap_delta {
        return Err(inconsistent(
            KIND,
            "Δ_i ≠ k_i·Γ: the nonce is not this presignature's",
        ));
    }
    if public.cap_gamma * *p.chi != *cap_s {
        return Err(inconsistent(
            KIND,
            "S_i ≠ χ_i·Γ: χ_i is not this presignature's",
        ));
    }
    Ok(())
}

impl Presignature {
    /// Length of [`Self::to_bytes`].
    pub(super) fn encoded_len(&self) -> usize {
        let public = &self.public;
        let n = public.signers.len();
        HEADER_LEN
            + bytes_len(&self.session_id)
            + bytes_len(&public.key_id)
            + 8 // epoch
            + 2 // own index
            + 2 + 2 * n
            + 4 + 2 + 4 * public.path.len()
            + 2 * DIGEST_BYTES
            + 3 * 33 // child public key, R, Γ
            + 2 + 33 * public.cap_deltas.len()
            + 2 + 33 * public.cap_ss.len()
            + 2 * 32 // k_i, χ_i
    }

    /// The store encoding (see [`crate::store`] for the layout): the nonce shares k_i and χ_i
    /// in the clear with everything the presignature is bound to (PRE-06). Seal it before it
    /// leaves memory; the buffer is wiped on drop. The store must erase the record durably
    /// before the partial signature made from it leaves the node.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let public = &self.public;
        let mut w = begin(KIND, self.encoded_len());
        // lists have at most MAX_PARTIES (u16) entries: the signers of one committee
        w.bytes(&self.session_id)
            .bytes(&public.key_id)
            .u64(public.epoch)
            .u16(self.me.get())
            .u16(public.signers.len() as u16);
        for s in &public.signers {
            w.u16(s.get());
        }
        w.bytes(&public.path.to_bytes())
            .array(&public.ssid)
            .array(&public.transcript)
            .point(&public.public_key)
            .point(&public.cap_r)
            .point(&public.cap_gamma)
            .u16(public.cap_deltas.len() as u16);
        for d in &public.cap_deltas {
            w.point(d);
        }
        w.u16(public.cap_ss.len() as u16);
        for s in &public.cap_ss {
            w.point(s);
        }
        w.scalar(&self.k).scalar(&self.chi);
        finish(w)
    }

    /// Decodes [`Self::to_bytes`] strictly and checks it: signers strictly increasing with
    /// this party among them, one Δ_j and S_j per signer, the child key, R and Γ not the
    /// identity, k_i ≠ 0, and Δ_i = k_i·Γ, S_i = χ_i·Γ (the nonces belong to these public
    /// values). Single use is the store's job ([`crate::store`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreDecodeError> {
        let mut r = open(bytes, KIND)?;
        let p = parse(&mut r)?;
        r.finish().map_err(malformed(KIND))?;
        check(&p)?;
        Ok(p)
    }
}
