//! The aux info record (layout in the [module documentation](super)).

use alloc::vec::Vec;

use num_bigint::BigUint;
use num_traits::Zero;
use zeroize::Zeroizing;

use super::{
    begin, bytes_len, finish, inconsistent, malformed, open, read_session_id, secret_uint,
    uint_len, RecordKind, StoreDecodeError, HEADER_LEN,
};
use crate::arith::SecretUint;
use crate::aux_info::{AuxInfo, PartyAux};
use crate::encoding::{DecodeError, Reader};
use crate::paillier::{PaillierPublicKey, PaillierSecretKey};
use crate::params::MAX_MODULUS_BYTES;
use crate::protocol::{PartyIndex, MAX_PARTIES};
use crate::ring_pedersen::{RingPedersenParams, RingPedersenSecret};
use crate::zk::RHO_BYTES;

const KIND: RecordKind = RecordKind::AuxInfo;

/// One party's public values as stored: N, N̂, s, t.
struct PublicFields {
    n: BigUint,
    n_hat: BigUint,
    s: BigUint,
    t: BigUint,
}

/// The fields of an aux info record, parsed but not yet checked.
struct Fields {
    session_id: Vec<u8>,
    me: PartyIndex,
    rho: [u8; RHO_BYTES],
    p: SecretUint,
    q: SecretUint,
    p_hat: SecretUint,
    q_hat: SecretUint,
    lambda: SecretUint,
    parties: Vec<PublicFields>,
}

fn secret(r: &mut Reader<'_>, field: &'static str) -> Result<SecretUint, DecodeError> {
    r.uint(field, MAX_MODULUS_BYTES).map(SecretUint::new)
}

fn public(r: &mut Reader<'_>, field: &'static str) -> Result<BigUint, DecodeError> {
    r.uint(field, MAX_MODULUS_BYTES)
}

fn parse(r: &mut Reader<'_>) -> Result<Fields, StoreDecodeError> {
    let session_id = read_session_id(r, KIND)?;
    let bad = malformed(KIND);
    let me = PartyIndex::new(r.u16("own index").map_err(&bad)?);
    let rho = r.array("ρ").map_err(&bad)?;
    let p = secret(r, "Paillier prime p").map_err(&bad)?;
    let q = secret(r, "Paillier prime q").map_err(&bad)?;
    let p_hat = secret(r, "ring-Pedersen prime p̂").map_err(&bad)?;
    let q_hat = secret(r, "ring-Pedersen prime q̂").map_err(&bad)?;
    let lambda = secret(r, "ring-Pedersen λ").map_err(&bad)?;
    let m = r
        .count_at_most("party count", usize::from(MAX_PARTIES))
        .map_err(&bad)?;
    // grown as parsed: every entry is at least 16 bytes of input
    let mut parties = Vec::new();
    for _ in 0..m {
        parties.push(PublicFields {
            n: public(r, "Paillier modulus N").map_err(&bad)?,
            n_hat: public(r, "ring-Pedersen modulus N̂").map_err(&bad)?,
            s: public(r, "ring-Pedersen s").map_err(&bad)?,
            t: public(r, "ring-Pedersen t").map_err(&bad)?,
        });
    }
    Ok(Fields {
        session_id,
        me,
        rho,
        p,
        q,
        p_hat,
        q_hat,
        lambda,
        parties,
    })
}

/// Checks one party's public values as the protocol does before any proof.
fn check_public(
    j: PartyIndex,
    f: PublicFields,
) -> Result<(PaillierPublicKey, RingPedersenParams), StoreDecodeError> {
    let paillier = PaillierPublicKey::from_modulus(f.n)
        .map_err(|source| StoreDecodeError::Paillier { party: j, source })?;
    let rp = RingPedersenParams::new(f.n_hat, f.s, f.t)
        .map_err(|source| StoreDecodeError::RingPedersen { party: j, source })?;
    rp.check_distinct_from(paillier.n())
        .map_err(|source| StoreDecodeError::RingPedersen { party: j, source })?;
    Ok((paillier, rp))
}

impl AuxInfo {
    /// Length of [`Self::to_bytes`].
    pub(super) fn encoded_len(&self) -> usize {
        let sk = self.paillier_secret();
        let rp = self.ring_pedersen_secret();
        let mut len = HEADER_LEN
            + bytes_len(self.session_id())
            + 2 // own index
            + RHO_BYTES
            + uint_len(sk.p())
            + uint_len(sk.q())
            + uint_len(rp.p())
            + uint_len(rp.q())
            + uint_len(rp.lambda())
            + 2; // party count
        for j in 0..self.parties() {
            if let Some(a) = self.party(PartyIndex::new(j as u16)) {
                len += uint_len(a.paillier.n())
                    + uint_len(a.ring_pedersen.n())
                    + uint_len(a.ring_pedersen.s())
                    + uint_len(a.ring_pedersen.t());
            }
        }
        len
    }

    /// The store encoding (see [`crate::store`] for the layout): this party's Paillier and
    /// ring-Pedersen secrets in the clear and every party's public parameters, but no
    /// fixed-base table or owner view (decoding rebuilds them). Seal it before it leaves
    /// memory; the buffer is wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let sk = self.paillier_secret();
        let rp = self.ring_pedersen_secret();
        let mut w = begin(KIND, self.encoded_len());
        w.bytes(self.session_id())
            .u16(self.me().get())
            .array(self.rho());
        secret_uint(&mut w, sk.p());
        secret_uint(&mut w, sk.q());
        secret_uint(&mut w, rp.p());
        secret_uint(&mut w, rp.q());
        secret_uint(&mut w, rp.lambda());
        // at most MAX_PARTIES (u16) parties: the committee's size
        w.u16(self.parties() as u16);
        for j in 0..self.parties() {
            if let Some(a) = self.party(PartyIndex::new(j as u16)) {
                w.uint(a.paillier.n())
                    .uint(a.ring_pedersen.n())
                    .uint(a.ring_pedersen.s())
                    .uint(a.ring_pedersen.t());
            }
        }
        finish(w)
    }

    /// Decodes [`Self::to_bytes`] strictly, re-checks what is cheap (each party's parameters as
    /// the protocol checks them before any proof; N_i = p·q with p, q a Paillier-Blum pair;
    /// N̂_i = p̂·q̂ and s_i = t_i^λ with 1 ≤ λ < φ(N̂_i)) and rebuilds the peers' fixed-base
    /// tables and this party's owner views. The proofs that made the values are not
    /// re-verified: the record is trusted once unsealed (see [`crate::store`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreDecodeError> {
        let mut r = open(bytes, KIND)?;
        let f = parse(&mut r)?;
        r.finish().map_err(malformed(KIND))?;
        let m = f.parties.len();
        if m < 2 {
            return Err(inconsistent(KIND, "fewer than two parties"));
        }
        if f.me.as_usize() >= m {
            return Err(inconsistent(KIND, "own index outside the committee"));
        }
        // every party's public values first: cheap, and refuses garbage before the costly work
        let mut public = Vec::with_capacity(m);
        for (j, fields) in f.parties.into_iter().enumerate() {
            // j < m ≤ MAX_PARTIES
            public.push(check_public(PartyIndex::new(j as u16), fields)?);
        }
        let me = f.me;
        let (own_n, own_rp) = match public.get(me.as_usize()) {
            Some((pk, rp)) => (pk.n().clone(), rp.clone()),
            None => return Err(inconsistent(KIND, "own index outside the committee")),
        };
        let paillier = PaillierSecretKey::from_primes(f.p.expose().clone(), f.q.expose().clone())
            .map_err(|source| StoreDecodeError::Paillier { party: me, source })?;
        if paillier.public().n() != &own_n {
            return Err(inconsistent(KIND, "this party's Paillier modulus N ≠ p·q"));
        }
        let rp_secret = RingPedersenSecret::from_parts(f.p_hat, f.q_hat, f.lambda)
            .map_err(|source| StoreDecodeError::RingPedersen { party: me, source })?;
        if rp_secret.lambda().is_zero() || rp_secret.lambda() >= rp_secret.phi() {
            return Err(inconsistent(KIND, "ring-Pedersen λ outside [1, φ(N̂))"));
        }
        let own_view = rp_secret
            .owner_params(&own_rp)
            .map_err(|source| StoreDecodeError::RingPedersen { party: me, source })?;
        let parties = public
            .into_iter()
            .enumerate()
            .map(|(j, (paillier, rp))| {
                if j == me.as_usize() {
                    PartyAux {
                        paillier,
                        ring_pedersen: own_view.clone(),
                    }
                } else {
                    // as the protocol's output: tables for the randomness we encrypt under N_j
                    PartyAux {
                        paillier: paillier.with_nonce_tables(),
                        ring_pedersen: rp.with_tables(),
                    }
                }
            })
            .collect();
        Ok(AuxInfo::from_parts(
            f.session_id,
            me,
            f.rho,
            paillier,
            rp_secret,
            parties,
        ))
    }
}
