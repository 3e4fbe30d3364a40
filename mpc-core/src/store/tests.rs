//! Store codec tests: round trips of real protocol outputs (a 2-of-3 DKG, dealt aux info from
//! the fixture primes, a presigning run), use of the decoded values (presign, sign, verify with
//! libsecp256k1), every truncation, bit flips at every field boundary, targeted
//! inconsistencies, wrong kinds and versions, and random bytes.

use alloc::format;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use std::sync::OnceLock;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::elliptic_curve::PrimeField;
use k256::{FieldBytes, Scalar};
use num_bigint::BigUint;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use super::*;
use crate::aux_info::{dealt_for_tests, AuxInfo};
use crate::dkg::{DkgConfig, DkgParty, KeyShare};
use crate::encoding::point_bytes;
use crate::presign::{PresignConfig, PresignParty, Presignature};
use crate::protocol::{Committee, Outcome};
use crate::sign::{combine, PartialSignature};
use crate::sim::Sim;

const T: u16 = 2;
const M: u16 = 3;
const SIGNERS: [u16; 2] = [0, 1];

/// Real outputs, made once: key shares of a 2-of-3 DKG and dealt aux info for the same
/// committee, and their encodings.
struct Fixture {
    keys: Vec<KeyShare>,
    aux: Vec<AuxInfo>,
    key_bytes: Vec<Vec<u8>>,
    aux_bytes: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5703_0001);
        let committee = Committee::standard(M).unwrap();
        let parties = (0..M)
            .map(|i| {
                let cfg = DkgConfig {
                    session_id: b"store-test-dkg".to_vec(),
                    committee: committee.clone(),
                    threshold: T,
                    me: PartyIndex::new(i),
                };
                DkgParty::new(cfg, &mut rng).unwrap()
            })
            .collect();
        let keys: Vec<KeyShare> = Sim::new(parties)
            .run(&mut rng)
            .outcomes
            .into_iter()
            .map(|o| match o {
                Some(Outcome::Output(k)) => k,
                other => panic!("honest DKG: {other:?}"),
            })
            .collect();
        let aux = dealt_for_tests(M, b"store-test-aux", &mut rng);
        let key_bytes = keys.iter().map(|k| k.to_bytes().to_vec()).collect();
        let aux_bytes = aux.iter().map(|a| a.to_bytes().to_vec()).collect();
        Fixture {
            keys,
            aux,
            key_bytes,
            aux_bytes,
        }
    })
}

/// Presignatures of the signers {0, 1} made from the given key shares and aux info.
fn presign(keys: &[KeyShare], aux: &[Arc<AuxInfo>], sid: &[u8], seed: u64) -> Vec<Presignature> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let parties = SIGNERS
        .iter()
        .map(|&i| {
            let cfg = PresignConfig {
                session_id: sid.to_vec(),
                key_id: b"store-key".to_vec(),
                epoch: 0,
                signers: SIGNERS.iter().map(|&s| PartyIndex::new(s)).collect(),
                path: "m/7/42".parse().unwrap(),
            };
            let i = usize::from(i);
            PresignParty::new(cfg, &keys[i], Arc::clone(&aux[i]), &mut rng).unwrap()
        })
        .collect();
    Sim::new(parties)
        .run(&mut rng)
        .outcomes
        .into_iter()
        .map(|o| match o {
            Some(Outcome::Output(p)) => p,
            other => panic!("honest presigning: {other:?}"),
        })
        .collect()
}

/// Combines the partial signatures and verifies the result with libsecp256k1.
fn combine_and_verify(
    public: &crate::presign::PresignaturePublic,
    digest: &[u8; 32],
    partials: &[PartialSignature],
) {
    let sig = combine(public, digest, partials).unwrap();
    let secp = secp256k1::Secp256k1::verification_only();
    let msg = secp256k1::Message::from_digest(*digest);
    let pk_bytes = public.public_key.to_affine().to_encoded_point(true);
    let pk = secp256k1::PublicKey::from_slice(pk_bytes.as_bytes()).unwrap();
    let s = secp256k1::ecdsa::Signature::from_compact(&sig.signature.to_bytes()).unwrap();
    secp.verify_ecdsa(&msg, &s, &pk).unwrap();
}

// ---------------------------------------------------------------- layouts (field spans)

/// Walks an encoding by its documented layout and records the span of every field (length
/// prefixes and counts are fields of their own). Checks the layout covers the bytes exactly.
struct Walk<'a> {
    bytes: &'a [u8],
    pos: usize,
    spans: Vec<Range<usize>>,
}

impl<'a> Walk<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let mut w = Self {
            bytes,
            pos: 0,
            spans: Vec::new(),
        };
        w.fixed(1); // tag
        w.fixed(1); // version
        w
    }

    fn fixed(&mut self, n: usize) -> Range<usize> {
        let span = self.pos..self.pos + n;
        assert!(
            span.end <= self.bytes.len(),
            "layout runs past the encoding"
        );
        self.spans.push(span.clone());
        self.pos += n;
        span
    }

    fn u16(&mut self) -> usize {
        let s = self.fixed(2);
        usize::from(u16::from_be_bytes([
            self.bytes[s.start],
            self.bytes[s.start + 1],
        ]))
    }

    /// A u32 length prefix and its body; returns the body's span.
    fn prefixed(&mut self) -> Range<usize> {
        let s = self.fixed(4);
        let b = &self.bytes[s];
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        self.fixed(len)
    }

    fn done(self) -> Vec<Range<usize>> {
        assert_eq!(self.pos, self.bytes.len(), "layout covers the encoding");
        self.spans.into_iter().filter(|s| !s.is_empty()).collect()
    }
}

fn key_share_spans(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut w = Walk::new(bytes);
    w.prefixed(); // session id
    w.fixed(2); // me
    w.fixed(2); // t
    let m = w.u16();
    for _ in 0..m {
        w.fixed(32);
    }
    w.fixed(32); // secret share
    let n = w.u16();
    for _ in 0..n {
        w.fixed(33);
    }
    w.fixed(33); // public key
    w.fixed(32); // chain code
    let q = w.u16();
    for _ in 0..q {
        w.fixed(2);
    }
    w.fixed(8); // epoch
    w.done()
}

/// Aux info spans, and the body spans of the bigints in order: p, q, p̂, q̂, λ, then
/// N_j, N̂_j, s_j, t_j per party.
fn aux_info_spans(bytes: &[u8]) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let mut w = Walk::new(bytes);
    w.prefixed(); // session id
    w.fixed(2); // me
    w.fixed(32); // ρ
    let mut ints = Vec::new();
    for _ in 0..5 {
        ints.push(w.prefixed());
    }
    let m = w.u16();
    for _ in 0..4 * m {
        ints.push(w.prefixed());
    }
    (w.done(), ints)
}

fn presignature_spans(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut w = Walk::new(bytes);
    w.prefixed(); // session id
    w.prefixed(); // key id
    w.fixed(8); // epoch
    w.fixed(2); // me
    let n = w.u16();
    for _ in 0..n {
        w.fixed(2);
    }
    w.prefixed(); // path
    w.fixed(32); // ssid
    w.fixed(32); // transcript
    for _ in 0..3 {
        w.fixed(33);
    }
    for _ in 0..2 {
        let c = w.u16();
        for _ in 0..c {
            w.fixed(33);
        }
    }
    w.fixed(32); // k
    w.fixed(32); // χ
    w.done()
}

/// Replaces the bytes in `span` (a length-prefixed body) by `new`, fixing the prefix.
fn replace_body(bytes: &[u8], span: &Range<usize>, new: &[u8]) -> Vec<u8> {
    let mut out = bytes[..span.start - 4].to_vec();
    out.extend_from_slice(&(new.len() as u32).to_be_bytes());
    out.extend_from_slice(new);
    out.extend_from_slice(&bytes[span.end..]);
    out
}

/// Replaces fixed-width bytes at `at`.
fn replace_at(bytes: &[u8], at: usize, new: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + new.len()].copy_from_slice(new);
    out
}

// ---------------------------------------------------------------- mutation drivers

/// Every strict prefix is refused as truncated, and one extra byte as trailing.
fn truncations_and_extension_refused<T>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, StoreDecodeError>,
) {
    for len in 0..bytes.len() {
        match decode(&bytes[..len]) {
            Err(StoreDecodeError::Malformed {
                source: DecodeError::Truncated { .. },
                ..
            }) => {}
            Err(other) => panic!("prefix of {len} bytes: {other}"),
            Ok(_) => panic!("prefix of {len} bytes decoded"),
        }
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(matches!(
        decode(&longer),
        Err(StoreDecodeError::Malformed {
            source: DecodeError::TrailingBytes(1),
            ..
        })
    ));
}

/// Which byte of a field a flip hits.
#[derive(Clone, Copy)]
enum End {
    First,
    Last,
}

/// Every byte-and-bit choice at both ends of a field.
const ALL_ENDS: [(End, u8); 6] = [
    (End::First, 0),
    (End::First, 1),
    (End::First, 7),
    (End::Last, 0),
    (End::Last, 1),
    (End::Last, 7),
];

/// Flips, for every span, the given bit of its first or last byte: each result is refused, or
/// decodes to a value whose encoding is exactly the mutated bytes (a different value, never
/// the original silently). Returns how many were refused and accepted.
fn flips_at_boundaries<T>(
    bytes: &[u8],
    spans: &[Range<usize>],
    flips: &[(End, u8)],
    decode: impl Fn(&[u8]) -> Result<T, StoreDecodeError>,
    encode: impl Fn(&T) -> Vec<u8>,
) -> (usize, usize) {
    let (mut refused, mut accepted) = (0, 0);
    for span in spans {
        for &(end, bit) in flips {
            let at = match end {
                End::First => span.start,
                End::Last => span.end - 1,
            };
            let mut mutated = bytes.to_vec();
            mutated[at] ^= 1 << bit;
            match decode(&mutated) {
                Err(_) => refused += 1,
                Ok(v) => {
                    assert_eq!(
                        encode(&v),
                        mutated,
                        "accepted flip at {at} bit {bit} re-encodes"
                    );
                    accepted += 1;
                }
            }
        }
    }
    (refused, accepted)
}

// ---------------------------------------------------------------- key share

#[test]
fn key_share_round_trips_exactly() {
    let fx = fixture();
    for (key, bytes) in fx.keys.iter().zip(&fx.key_bytes) {
        assert_eq!(bytes.len(), key.encoded_len(), "length computed up front");
        let back = KeyShare::from_bytes(bytes).unwrap();
        assert_eq!(back.session_id(), key.session_id());
        assert_eq!(back.me(), key.me());
        assert_eq!(back.threshold(), key.threshold());
        assert_eq!(back.committee(), key.committee());
        assert_eq!(back.secret_share(), key.secret_share());
        assert_eq!(back.public_shares(), key.public_shares());
        assert_eq!(back.public_key(), key.public_key());
        assert_eq!(back.chain_code(), key.chain_code());
        assert_eq!(back.qual(), key.qual());
        assert_eq!(back.epoch(), key.epoch());
        assert_eq!(back.to_bytes().as_slice(), bytes.as_slice());
    }
}

#[test]
fn key_share_keeps_qual_and_epoch() {
    // QUAL other than the whole committee and a non-zero epoch survive the round trip
    let fx = fixture();
    let key = &fx.keys[0];
    let spans = key_share_spans(&fx.key_bytes[0]);
    let epoch = spans.last().unwrap().start;
    let bytes = replace_at(&fx.key_bytes[0], epoch, &7u64.to_be_bytes());
    let back = KeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(back.epoch(), 7);
    let partial_qual = KeyShare::from_parts(
        key.session_id(),
        key.me(),
        key.threshold(),
        key.committee().clone(),
        Zeroizing::new(*key.secret_share()),
        key.public_shares().to_vec(),
        *key.public_key(),
        *key.chain_code(),
        3,
    )
    .unwrap()
    .with_qual(vec![PartyIndex::new(0), PartyIndex::new(1)])
    .unwrap();
    let back = KeyShare::from_bytes(&partial_qual.to_bytes()).unwrap();
    assert_eq!(back.qual(), &[PartyIndex::new(0), PartyIndex::new(1)]);
    assert_eq!(back.epoch(), 3);
}

#[test]
fn key_share_truncations_and_flips() {
    let fx = fixture();
    let bytes = &fx.key_bytes[1];
    truncations_and_extension_refused(bytes, KeyShare::from_bytes);
    let spans = key_share_spans(bytes);
    let (refused, accepted) =
        flips_at_boundaries(bytes, &spans, &ALL_ENDS, KeyShare::from_bytes, |k| {
            k.to_bytes().to_vec()
        });
    assert!(refused > spans.len(), "most flips are refused");
    assert!(accepted > 0, "some flips land in values that stay valid");
}

#[test]
fn key_share_inconsistencies_are_refused() {
    let fx = fixture();
    let bytes = &fx.key_bytes[0];
    let spans = key_share_spans(bytes);
    // spans: tag, version, sid len, sid, me, t, m, x1..x3, secret, count, X1..X3, Y, chain, q-count, qual.., epoch
    let me = spans[4].start;
    let t = spans[5].start;
    let secret = spans[10].start;
    let count = spans[11].start;
    let cap_x0 = spans[12].start;
    let cap_y = spans[15].start;
    let qual0 = spans[18].start;
    let inconsistent = |b: &[u8]| match KeyShare::from_bytes(b) {
        Err(StoreDecodeError::Inconsistent { kind, what }) => {
            assert_eq!(kind, RecordKind::KeyShare);
            what
        }
        other => panic!("expected an inconsistency, got {other:?}"),
    };
    assert_eq!(
        inconsistent(&replace_at(bytes, me, &3u16.to_be_bytes())),
        "own index outside the committee"
    );
    assert_eq!(
        inconsistent(&replace_at(bytes, t, &0u16.to_be_bytes())),
        "threshold outside 1..=committee size"
    );
    assert_eq!(
        inconsistent(&replace_at(bytes, t, &4u16.to_be_bytes())),
        "threshold outside 1..=committee size"
    );
    assert_eq!(
        inconsistent(&replace_at(bytes, count, &2u16.to_be_bytes())),
        "public share count ≠ committee size"
    );
    // QUAL without this party (party 0): {1, 2}; QUAL not increasing: {0, 2, 1}
    let q_count = spans[17].start;
    let epoch = spans.last().unwrap().start;
    let mut no_me = bytes[..q_count].to_vec();
    for v in [2u16, 1, 2] {
        no_me.extend_from_slice(&v.to_be_bytes());
    }
    no_me.extend_from_slice(&bytes[epoch..]);
    assert!(inconsistent(&no_me).starts_with("QUAL"));
    let mut unordered = bytes.clone();
    unordered[qual0 + 2..qual0 + 4].copy_from_slice(&2u16.to_be_bytes());
    unordered[qual0 + 4..qual0 + 6].copy_from_slice(&1u16.to_be_bytes());
    assert!(inconsistent(&unordered).starts_with("QUAL"));
    // another valid scalar as the secret share
    let other = Scalar::from(5u64).to_bytes();
    assert!(matches!(
        KeyShare::from_bytes(&replace_at(bytes, secret, &other)),
        Err(StoreDecodeError::KeyShare(KeyShareError::SecretShare))
    ));
    // a scalar ≥ q
    assert!(matches!(
        KeyShare::from_bytes(&replace_at(bytes, secret, &[0xFF; 32])),
        Err(StoreDecodeError::Malformed {
            source: DecodeError::BadScalar { .. },
            ..
        })
    ));
    // public key: identity, off-curve, uncompressed tag
    assert!(matches!(
        KeyShare::from_bytes(&replace_at(bytes, cap_y, &[0; 33])),
        Err(StoreDecodeError::KeyShare(KeyShareError::IdentityKey))
    ));
    let mut off_curve = [0xFFu8; 33];
    off_curve[0] = 0x02;
    assert!(matches!(
        KeyShare::from_bytes(&replace_at(bytes, cap_y, &off_curve)),
        Err(StoreDecodeError::Malformed {
            source: DecodeError::BadPoint { .. },
            ..
        })
    ));
    let mut tagged = point_bytes(fx.keys[0].public_key());
    tagged[0] = 0x04;
    assert!(KeyShare::from_bytes(&replace_at(bytes, cap_y, &tagged)).is_err());
    // another party's public share in place of X_1: off the polynomial
    let x2 = point_bytes(&fx.keys[0].public_shares()[1]);
    assert!(matches!(
        KeyShare::from_bytes(&replace_at(bytes, cap_x0 + 33 * 2, &x2)),
        Err(StoreDecodeError::KeyShare(KeyShareError::PublicShares))
    ));
    // a repeated evaluation point
    let x1 = spans[7].start;
    let x0 = Scalar::from(1u64).to_bytes();
    assert!(matches!(
        KeyShare::from_bytes(&replace_at(bytes, x1 + 32, &x0)),
        Err(StoreDecodeError::Committee(_))
    ));
}

// ---------------------------------------------------------------- aux info

#[test]
fn aux_info_round_trips_and_rebuilds_views() {
    let fx = fixture();
    for (aux, bytes) in fx.aux.iter().zip(&fx.aux_bytes) {
        assert_eq!(bytes.len(), aux.encoded_len(), "length computed up front");
        let back = AuxInfo::from_bytes(bytes).unwrap();
        assert_eq!(back.session_id(), aux.session_id());
        assert_eq!(back.me(), aux.me());
        assert_eq!(back.rho(), aux.rho());
        assert_eq!(back.parties(), aux.parties());
        assert_eq!(back.paillier_secret().p(), aux.paillier_secret().p());
        assert_eq!(back.paillier_secret().q(), aux.paillier_secret().q());
        let (a, b) = (aux.ring_pedersen_secret(), back.ring_pedersen_secret());
        assert_eq!(
            (b.p(), b.q(), b.lambda(), b.phi()),
            (a.p(), a.q(), a.lambda(), a.phi())
        );
        assert!(back.own_paillier_view().is_owner_view());
        for j in 0..M {
            let j = PartyIndex::new(j);
            let (orig, dec) = (aux.party(j).unwrap(), back.party(j).unwrap());
            assert_eq!(dec.paillier, orig.paillier);
            assert!(!dec.paillier.is_owner_view(), "peers' keys are plain");
            assert_eq!(
                dec.paillier.has_fast_nonces(),
                j != back.me(),
                "nonce tables for peers' keys only"
            );
            assert_eq!(
                format!("{:?}", dec.paillier),
                format!("{:?}", orig.paillier)
            );
            assert_eq!(dec.ring_pedersen, orig.ring_pedersen);
            // the same accelerator as the protocol's output: owner CRT for self, tables for peers
            assert_eq!(
                format!("{:?}", dec.ring_pedersen),
                format!("{:?}", orig.ring_pedersen)
            );
        }
        assert_eq!(back.to_bytes().as_slice(), bytes.as_slice());
    }
}

#[test]
fn aux_info_truncations_and_flips() {
    let fx = fixture();
    let bytes = &fx.aux_bytes[2];
    truncations_and_extension_refused(bytes, AuxInfo::from_bytes);
    let (spans, _) = aux_info_spans(bytes);
    // two flips per field (the top bit of the first byte, the low bit of the last): a flip
    // that decodes rebuilds two peers' tables (≈ 0.5 s), so this record gets fewer than the
    // others, and still every field boundary
    let ends = [(End::First, 7), (End::Last, 0)];
    let (refused, accepted) = flips_at_boundaries(bytes, &spans, &ends, AuxInfo::from_bytes, |a| {
        a.to_bytes().to_vec()
    });
    assert!(refused > spans.len(), "most flips are refused");
    assert!(accepted > 0, "some flips land in values that stay valid");
}

#[test]
fn aux_info_inconsistencies_are_refused() {
    let fx = fixture();
    let bytes = &fx.aux_bytes[0]; // party 0
    let (spans, ints) = aux_info_spans(bytes);
    let [p, q, p_hat, q_hat, lambda] = [0, 1, 2, 3, 4].map(|k| ints[k].clone());
    let party = |j: usize, k: usize| ints[5 + 4 * j + k].clone();
    let body = |r: &Range<usize>| bytes[r.clone()].to_vec();
    let me_at = spans[4].start;
    let err = |b: &[u8]| AuxInfo::from_bytes(b).unwrap_err();

    // own N replaced by a peer's: N ≠ p·q
    let swapped = replace_body(bytes, &party(0, 0), &body(&party(1, 0)));
    assert_eq!(
        err(&swapped),
        StoreDecodeError::Inconsistent {
            kind: RecordKind::AuxInfo,
            what: "this party's Paillier modulus N ≠ p·q"
        }
    );
    // own s replaced by a peer's: s ≠ t^λ (and N̂ ≠ p̂·q̂ for the peer's N̂)
    let other_s = replace_body(bytes, &party(0, 2), &body(&party(1, 2)));
    assert!(matches!(
        err(&other_s),
        StoreDecodeError::RingPedersen { party, source: RingPedersenError::BadBase(_) | RingPedersenError::BadPrimes(_) } if party == PartyIndex::new(0)
    ));
    let other_n_hat = replace_body(bytes, &party(0, 1), &body(&party(1, 1)));
    assert!(matches!(
        err(&other_n_hat),
        StoreDecodeError::RingPedersen { .. }
    ));
    // λ + 1: s ≠ t^λ
    let lambda_v = BigUint::from_bytes_be(&body(&lambda));
    let plus_one = replace_body(bytes, &lambda, &(&lambda_v + 1u32).to_bytes_be());
    assert!(matches!(
        err(&plus_one),
        StoreDecodeError::RingPedersen {
            source: RingPedersenError::BadPrimes(_),
            ..
        }
    ));
    // λ + φ(N̂): still s = t^λ, but not the canonical λ
    let phi = fx.aux[0].ring_pedersen_secret().phi().clone();
    let plus_phi = replace_body(bytes, &lambda, &(&lambda_v + &phi).to_bytes_be());
    assert_eq!(
        err(&plus_phi),
        StoreDecodeError::Inconsistent {
            kind: RecordKind::AuxInfo,
            what: "ring-Pedersen λ outside [1, φ(N̂))"
        }
    );
    // p̂ = q̂
    let same = replace_body(bytes, &p_hat, &body(&q_hat));
    assert!(matches!(err(&same), StoreDecodeError::RingPedersen { .. }));
    // Paillier p = q, and p of another key
    let same = replace_body(bytes, &p, &body(&q));
    assert!(matches!(err(&same), StoreDecodeError::Paillier { .. }));
    let other_p = replace_body(bytes, &p, &body(&p_hat));
    assert!(err(&other_p).to_string().contains("aux info record"));
    // a bigint with a leading zero byte
    let mut padded = vec![0u8];
    padded.extend_from_slice(&body(&party(2, 0)));
    assert!(matches!(
        err(&replace_body(bytes, &party(2, 0), &padded)),
        StoreDecodeError::Malformed {
            source: DecodeError::NonCanonical { .. },
            ..
        }
    ));
    // a peer's N even / too small, N̂ = N
    let mut even = body(&party(2, 0));
    *even.last_mut().unwrap() ^= 1;
    assert!(matches!(
        err(&replace_body(bytes, &party(2, 0), &even)),
        StoreDecodeError::Paillier { party, source: PaillierError::EvenModulus } if party == PartyIndex::new(2)
    ));
    assert!(matches!(
        err(&replace_body(bytes, &party(2, 0), &[0x0F; 300])),
        StoreDecodeError::Paillier {
            source: PaillierError::ModulusTooSmall { .. },
            ..
        }
    ));
    assert!(matches!(
        err(&replace_body(bytes, &party(2, 1), &body(&party(2, 0)))),
        StoreDecodeError::RingPedersen {
            source: RingPedersenError::SameAsPaillier | RingPedersenError::BadBase(_),
            ..
        }
    ));
    // own index outside the committee; a modulus over the cap
    assert!(matches!(
        err(&replace_at(bytes, me_at, &3u16.to_be_bytes())),
        StoreDecodeError::Inconsistent { .. }
    ));
    assert!(matches!(
        err(&replace_body(
            bytes,
            &party(1, 0),
            &[0xFF; MAX_MODULUS_BYTES_FOR_TEST + 1]
        )),
        StoreDecodeError::Malformed {
            source: DecodeError::TooLong { .. },
            ..
        }
    ));
}

const MAX_MODULUS_BYTES_FOR_TEST: usize = crate::params::MAX_MODULUS_BYTES;

// ---------------------------------------------------------------- use of decoded values

#[test]
fn decoded_share_and_aux_presign_and_decoded_presignatures_sign() {
    let fx = fixture();
    let keys: Vec<KeyShare> = fx
        .key_bytes
        .iter()
        .map(|b| KeyShare::from_bytes(b).unwrap())
        .collect();
    let aux: Vec<Arc<AuxInfo>> = fx
        .aux_bytes
        .iter()
        .map(|b| Arc::new(AuxInfo::from_bytes(b).unwrap()))
        .collect();
    let originals = presign(&keys, &aux, b"store-test-presign", 11);
    let encoded: Vec<Vec<u8>> = originals.iter().map(|p| p.to_bytes().to_vec()).collect();
    for (p, b) in originals.iter().zip(&encoded) {
        assert_eq!(b.len(), p.encoded_len());
        assert_eq!(p.session_id(), b"store-test-presign");
    }
    let decoded: Vec<Presignature> = encoded
        .iter()
        .map(|b| Presignature::from_bytes(b).unwrap())
        .collect();
    for ((o, d), b) in originals.iter().zip(&decoded).zip(&encoded) {
        assert_eq!(d.me(), o.me());
        assert_eq!(d.session_id(), o.session_id());
        assert_eq!(d.public(), o.public());
        assert_eq!(d.to_bytes().as_slice(), b.as_slice());
    }
    let digest = [0x5Au8; 32];
    let public = decoded[0].public().clone();
    // the decoded presignature signs exactly as the original would (same σ_i; the original
    // is consumed here and never used again)
    let partials: Vec<PartialSignature> = originals
        .into_iter()
        .zip(decoded)
        .map(|(o, d)| {
            let from_original = o.sign(&digest);
            let from_decoded = d.sign_at_epoch(0, &digest).unwrap();
            assert_eq!(from_decoded, from_original);
            from_decoded
        })
        .collect();
    combine_and_verify(&public, &digest, &partials);
}

// ---------------------------------------------------------------- presignature

/// Encoded presignatures of the fixture key, made once from the in-memory values.
fn presignature_bytes() -> &'static Vec<Vec<u8>> {
    static BYTES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let fx = fixture();
        let aux: Vec<Arc<AuxInfo>> = fx
            .aux_bytes
            .iter()
            .map(|b| Arc::new(AuxInfo::from_bytes(b).unwrap()))
            .collect();
        presign(&fx.keys, &aux, b"store-test-presign-2", 12)
            .iter()
            .map(|p| p.to_bytes().to_vec())
            .collect()
    })
}

#[test]
fn presignature_truncations_and_flips() {
    let bytes = &presignature_bytes()[1];
    truncations_and_extension_refused(bytes, Presignature::from_bytes);
    let spans = presignature_spans(bytes);
    let (refused, accepted) =
        flips_at_boundaries(bytes, &spans, &ALL_ENDS, Presignature::from_bytes, |p| {
            p.to_bytes().to_vec()
        });
    assert!(refused > spans.len(), "most flips are refused");
    assert!(accepted > 0, "some flips land in values that stay valid");
}

#[test]
fn presignature_inconsistencies_are_refused() {
    let bytes = &presignature_bytes()[0]; // party 0, first signer
    let spans = presignature_spans(bytes);
    // spans: tag, version, sid len, sid, key len, key, epoch, me, n, s0, s1, path len, path,
    // ssid, transcript, Y, R, Γ, Δ count, Δ0, Δ1, S count, S0, S1, k, χ
    let me = spans[7].start;
    let s0 = spans[9].start;
    let s1 = spans[10].start;
    let cap_r = spans[16].start;
    let delta_count = spans[18].start;
    let delta0 = spans[19].start;
    let k = spans[24].start;
    let chi = spans[25].start;
    let what = |b: &[u8]| match Presignature::from_bytes(b) {
        Err(StoreDecodeError::Inconsistent { kind, what }) => {
            assert_eq!(kind, RecordKind::Presignature);
            what
        }
        other => panic!("expected an inconsistency, got {other:?}"),
    };
    let scalar_at = |at: usize| {
        let mut repr = FieldBytes::default();
        repr.copy_from_slice(&bytes[at..at + 32]);
        Option::<Scalar>::from(Scalar::from_repr(repr)).unwrap()
    };
    let k_value = scalar_at(k);
    let other_k = (k_value + Scalar::ONE).to_bytes();
    assert!(what(&replace_at(bytes, k, &other_k)).starts_with("Δ_i ≠ k_i·Γ"));
    let chi_value = scalar_at(chi);
    let other_chi = (chi_value + Scalar::ONE).to_bytes();
    assert!(what(&replace_at(bytes, chi, &other_chi)).starts_with("S_i ≠ χ_i·Γ"));
    assert_eq!(what(&replace_at(bytes, k, &[0; 32])), "k_i is zero");
    // the other signer's Δ in our place: the nonce does not match
    let delta1 = bytes[delta0 + 33..delta0 + 66].to_vec();
    assert!(what(&replace_at(bytes, delta0, &delta1)).starts_with("Δ_i ≠ k_i·Γ"));
    assert_eq!(
        what(&replace_at(bytes, me, &5u16.to_be_bytes())),
        "own index not among the signers"
    );
    let mut decreasing = bytes.clone();
    decreasing[s0..s0 + 2].copy_from_slice(&1u16.to_be_bytes());
    decreasing[s1..s1 + 2].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(what(&decreasing), "signers not strictly increasing");
    assert_eq!(
        what(&replace_at(bytes, delta_count, &1u16.to_be_bytes())),
        "Δ or S count ≠ signer count"
    );
    assert_eq!(
        what(&replace_at(bytes, cap_r, &[0; 33])),
        "R is the identity"
    );
    // a hardened path index is refused by the path decoder
    let path = spans[12].clone();
    let short = crate::hd::DerivationPath::from_indices(&[7])
        .unwrap()
        .to_bytes();
    let mut bad_path = short.clone();
    bad_path[2] |= 0x80;
    assert!(matches!(
        Presignature::from_bytes(&replace_body(bytes, &path, &bad_path)),
        Err(StoreDecodeError::Malformed {
            source: DecodeError::OutOfRange { .. },
            ..
        })
    ));
    // another valid path decodes, to a different value (what it claims is what it holds: the
    // seal, not the decoder, keeps a stored record from being edited)
    let other = Presignature::from_bytes(&replace_body(bytes, &path, &short)).unwrap();
    assert_eq!(other.public().path.to_bytes(), short);
}

// ---------------------------------------------------------------- kinds, versions, secrets

#[test]
fn wrong_kind_and_version_are_named() {
    let fx = fixture();
    let key = &fx.key_bytes[0];
    let aux = &fx.aux_bytes[0];
    let pre = &presignature_bytes()[0];
    let e = AuxInfo::from_bytes(key).unwrap_err();
    assert_eq!(
        e,
        StoreDecodeError::WrongKind {
            expected: RecordKind::AuxInfo,
            found: 0x70
        }
    );
    assert_eq!(
        e.to_string(),
        "the aux info decoder was given a key share record (tag 0x70)"
    );
    assert!(matches!(
        KeyShare::from_bytes(aux),
        Err(StoreDecodeError::WrongKind {
            expected: RecordKind::KeyShare,
            found: 0x71
        })
    ));
    assert!(matches!(
        KeyShare::from_bytes(pre),
        Err(StoreDecodeError::WrongKind { found: 0x72, .. })
    ));
    assert!(matches!(
        Presignature::from_bytes(key),
        Err(StoreDecodeError::WrongKind { found: 0x70, .. })
    ));
    assert!(Presignature::from_bytes(&[0x99, 1])
        .unwrap_err()
        .to_string()
        .contains("no record kind"));
    for kind in [
        RecordKind::KeyShare,
        RecordKind::AuxInfo,
        RecordKind::Presignature,
    ] {
        assert_eq!(RecordKind::from_tag(kind.tag()), Some(kind));
    }
    let mut v2 = key.clone();
    v2[1] = 2;
    assert_eq!(
        KeyShare::from_bytes(&v2).unwrap_err(),
        StoreDecodeError::UnsupportedVersion {
            kind: RecordKind::KeyShare,
            found: 2,
            supported: FORMAT_VERSION
        }
    );
}

#[test]
fn debug_and_errors_hold_no_secret() {
    let fx = fixture();
    let key = KeyShare::from_bytes(&fx.key_bytes[0]).unwrap();
    let secret_hex = hex::encode(key.secret_share().to_bytes());
    assert!(!format!("{key:?}").contains(&secret_hex));
    let pre = Presignature::from_bytes(&presignature_bytes()[0]).unwrap();
    let k_hex = hex::encode(pre.k.to_bytes());
    assert!(!format!("{pre:?}").contains(&k_hex));
    let aux = AuxInfo::from_bytes(&fx.aux_bytes[0]).unwrap();
    let p_dec = aux.paillier_secret().p().to_str_radix(10);
    let p_hex = aux.paillier_secret().p().to_str_radix(16);
    let dbg = format!("{aux:?}");
    assert!(!dbg.contains(&p_dec[..20]) && !dbg.contains(&p_hex[..20]));
}

// ---------------------------------------------------------------- random input

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), tag in 0x6Fu8..0x74) {
        // with and without a valid header, so the decoders get past the tag and version
        for input in [body.clone(), [&[tag, FORMAT_VERSION][..], &body].concat()] {
            let _ = KeyShare::from_bytes(&input);
            let _ = AuxInfo::from_bytes(&input);
            let _ = Presignature::from_bytes(&input);
        }
    }

    #[test]
    fn random_edits_of_valid_records_never_panic(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        // key shares and presignatures (aux info edits that decode rebuild tables: the
        // boundary flips above cover those)
        let base = if which == 0 { &fixture().key_bytes[2] } else { &presignature_bytes()[1] };
        let mut bytes = base.clone();
        for (at, x) in &edits {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if which == 0 {
            if let Ok(k) = KeyShare::from_bytes(&bytes) {
                prop_assert_eq!(k.to_bytes().to_vec(), bytes);
            }
        } else if let Ok(p) = Presignature::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes().to_vec(), bytes);
        }
    }
}
