//! The key share record (layout in the [module documentation](super)).

use alloc::vec::Vec;

use k256::{ProjectivePoint, Scalar};
use zeroize::Zeroizing;

use super::{
    begin, bytes_len, finish, inconsistent, malformed, open, read_session_id, RecordKind,
    StoreDecodeError, HEADER_LEN,
};
use crate::dkg::msg::DIGEST_BYTES;
use crate::dkg::KeyShare;
use crate::encoding::{DecodeError, Reader};
use crate::protocol::{Committee, PartyIndex, MAX_PARTIES};

const KIND: RecordKind = RecordKind::KeyShare;

/// The fields of a key share record, parsed but not yet checked against each other.
struct Fields {
    session_id: Vec<u8>,
    me: PartyIndex,
    threshold: u16,
    points: Vec<Scalar>,
    secret_share: Zeroizing<Scalar>,
    public_shares: Vec<ProjectivePoint>,
    public_key: ProjectivePoint,
    chain_code: [u8; DIGEST_BYTES],
    qual: Vec<PartyIndex>,
    epoch: u64,
}

/// Reads `count` items with `item` (the count is capped by the caller; the list grows only
/// with items actually read, so allocation follows the input's length).
fn list<T>(
    r: &mut Reader<'_>,
    count: usize,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(item(r)?);
    }
    Ok(out)
}

fn parse(r: &mut Reader<'_>) -> Result<Fields, StoreDecodeError> {
    let session_id = read_session_id(r, KIND)?;
    let bad = malformed(KIND);
    let me = PartyIndex::new(r.u16("own index").map_err(&bad)?);
    let threshold = r.u16("threshold").map_err(&bad)?;
    let max = usize::from(MAX_PARTIES);
    let m = r.count_at_most("committee size", max).map_err(&bad)?;
    let points = list(r, m, |r| r.scalar("evaluation point")).map_err(&bad)?;
    let secret_share = Zeroizing::new(r.scalar("secret share").map_err(&bad)?);
    let n_public = r.count_at_most("public share count", max).map_err(&bad)?;
    if n_public != m {
        return Err(inconsistent(KIND, "public share count ≠ committee size"));
    }
    let public_shares = list(r, m, |r| r.point("public share")).map_err(&bad)?;
    let public_key = r.point("public key").map_err(&bad)?;
    let chain_code = r.array("chain code").map_err(&bad)?;
    let n_qual = r.count_at_most("QUAL count", max).map_err(&bad)?;
    let qual = list(r, n_qual, |r| r.u16("QUAL").map(PartyIndex::new)).map_err(&bad)?;
    let epoch = r.u64("epoch").map_err(&bad)?;
    Ok(Fields {
        session_id,
        me,
        threshold,
        points,
        secret_share,
        public_shares,
        public_key,
        chain_code,
        qual,
        epoch,
    })
}

impl KeyShare {
    /// Length of [`Self::to_bytes`].
    pub(super) fn encoded_len(&self) -> usize {
        let m = self.public_shares().len();
        HEADER_LEN
            + bytes_len(self.session_id())
            + 2 // own index
            + 2 // threshold
            + 2 + 32 * usize::from(self.committee().len())
            + 32 // secret share
            + 2 + 33 * m
            + 33 // public key
            + DIGEST_BYTES
            + 2 + 2 * self.qual().len()
            + 8 // epoch
    }

    /// The store encoding (see [`crate::store`] for the layout). It holds the secret share in
    /// the clear: seal it before it leaves memory; the buffer is wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = begin(KIND, self.encoded_len());
        w.bytes(self.session_id())
            .u16(self.me().get())
            .u16(self.threshold())
            // a committee has at most MAX_PARTIES (u16) parties
            .u16(self.committee().len());
        for x in self.committee().points() {
            w.scalar(x);
        }
        w.scalar(self.secret_share())
            .u16(self.public_shares().len() as u16);
        for p in self.public_shares() {
            w.point(p);
        }
        w.point(self.public_key())
            .array(self.chain_code())
            // QUAL is a subset of the committee
            .u16(self.qual().len() as u16);
        for j in self.qual() {
            w.u16(j.get());
        }
        w.u64(self.epoch());
        finish(w)
    }

    /// Decodes [`Self::to_bytes`] strictly and checks the share: own index in the committee,
    /// 1 ≤ t ≤ m, one public share per party, x_i·G = X_i, the public shares on one polynomial
    /// of degree t − 1 through the public key ([`Self::validate`]), QUAL well formed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreDecodeError> {
        let mut r = open(bytes, KIND)?;
        let f = parse(&mut r)?;
        r.finish().map_err(malformed(KIND))?;
        let committee = Committee::new(f.points).map_err(StoreDecodeError::Committee)?;
        if !committee.contains(f.me) {
            return Err(inconsistent(KIND, "own index outside the committee"));
        }
        if f.threshold == 0 || f.threshold > committee.len() {
            return Err(inconsistent(KIND, "threshold outside 1..=committee size"));
        }
        let share = KeyShare::from_parts(
            &f.session_id,
            f.me,
            f.threshold,
            committee,
            f.secret_share,
            f.public_shares,
            f.public_key,
            f.chain_code,
            f.epoch,
        )
        .map_err(StoreDecodeError::KeyShare)?;
        share.with_qual(f.qual).map_err(|_| {
            inconsistent(
                KIND,
                "QUAL is not t or more increasing committee indices including this party",
            )
        })
    }
}
