#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;

use super::*;

const CHAIN: &str = "custody-devnet";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn header(height: u64) -> BlockHeader {
    BlockHeader {
        version: HEADER_VERSION,
        chain_id: CHAIN.to_owned(),
        height,
        previous_hash: [7; 32],
        time_unix_ms: 1_800_000_000_000,
        tx_root: merkle_root(&[b"a".as_slice(), b"b"]),
        state_root: [9; 32],
        proposer: key(1).verifying_key().to_bytes(),
    }
}

fn set(keys: &[&SigningKey], powers: &[u64]) -> ValidatorSet {
    let members: Vec<([u8; 32], u64)> = keys
        .iter()
        .zip(powers)
        .map(|(k, p)| (k.verifying_key().to_bytes(), *p))
        .collect();
    ValidatorSet::new(&members).unwrap()
}

fn certify(h: &BlockHeader, round: u32, signers: &[(u16, &SigningKey)]) -> CommitCertificate {
    let hash = h.hash();
    let msg = vote_signing_bytes(&h.chain_id, h.height, round, &hash);
    CommitCertificate {
        height: h.height,
        round,
        block_hash: hash,
        signatures: signers
            .iter()
            .map(|(i, k)| (*i, k.sign(&msg).to_bytes()))
            .collect(),
    }
}

/// Every strict prefix and every one-byte extension of `bytes` is refused by `decode`.
fn assert_exact<T, E>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, E>) {
    for cut in 0..bytes.len() {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes accepted"
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_err(), "extension accepted");
}

#[test]
fn header_round_trips_and_hash_covers_every_field() {
    let h = header(5);
    let bytes = h.encode();
    assert_eq!(BlockHeader::decode(&bytes).unwrap(), h);
    assert_exact(&bytes, BlockHeader::decode);
    let mut other = h.clone();
    other.time_unix_ms += 1;
    assert_ne!(other.hash(), h.hash());
    let mut other = h.clone();
    other.proposer[31] ^= 1;
    assert_ne!(other.hash(), h.hash());
}

#[test]
fn header_decoder_refuses_bad_fields() {
    let mut h = header(1);
    h.version = 2;
    assert_eq!(
        BlockHeader::decode(&h.encode()),
        Err(DecodeError::UnsupportedVersion(2))
    );
    let mut h = header(1);
    h.chain_id = "x".repeat(MAX_CHAIN_ID_BYTES + 1);
    assert!(matches!(
        BlockHeader::decode(&h.encode()),
        Err(DecodeError::TooLong {
            field: "chain_id",
            ..
        })
    ));
    h.chain_id = String::new();
    assert!(matches!(
        BlockHeader::decode(&h.encode()),
        Err(DecodeError::Invalid {
            field: "chain_id",
            ..
        })
    ));
    // A certificate's bytes are not a header.
    let c = certify(&header(1), 0, &[(0, &key(1))]);
    assert!(matches!(
        BlockHeader::decode(&c.encode()),
        Err(DecodeError::WrongTag { .. })
    ));
}

#[test]
fn validator_set_refuses_duplicates_zero_power_and_weak_keys() {
    let a = key(1).verifying_key().to_bytes();
    let b = key(2).verifying_key().to_bytes();
    assert_eq!(ValidatorSet::new(&[]), Err(ValidatorSetError::Empty));
    assert_eq!(
        ValidatorSet::new(&[(a, 1), (b, 1), (a, 3)]),
        Err(ValidatorSetError::DuplicateKey {
            first: 0,
            second: 2
        })
    );
    assert_eq!(
        ValidatorSet::new(&[(a, 1), (b, 0)]),
        Err(ValidatorSetError::ZeroPower(1))
    );
    // The identity point is a small-order (weak) key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        ValidatorSet::new(&[(identity, 1)]),
        Err(ValidatorSetError::BadKey(0))
    );
    let s = ValidatorSet::new(&[(a, 1), (b, 2)]).unwrap();
    assert_eq!(s.total_power(), 3);
    let bytes = s.encode();
    assert_eq!(ValidatorSet::decode(&bytes).unwrap(), s);
    assert_exact(&bytes, ValidatorSet::decode);
    assert_ne!(
        ValidatorSet::new(&[(b, 2), (a, 1)]).unwrap().hash(),
        s.hash()
    );
}

#[test]
fn solo_certificate_verifies_and_round_trips() {
    let k = key(1);
    let s = set(&[&k], &[1]);
    let h = header(3);
    let c = certify(&h, 0, &[(0, &k)]);
    c.verify(&s, CHAIN, &h).unwrap();
    let bytes = c.encode();
    assert_eq!(CommitCertificate::decode(&bytes).unwrap(), c);
    assert_exact(&bytes, CommitCertificate::decode);
}

#[test]
fn certificate_is_refused_for_another_set_chain_height_or_block() {
    let (k1, k2) = (key(1), key(2));
    let h = header(3);
    let c = certify(&h, 0, &[(0, &k1)]);
    assert_eq!(
        c.verify(&set(&[&k2], &[1]), CHAIN, &h),
        Err(CertificateError::BadSignature(0))
    );
    assert!(matches!(
        c.verify(&set(&[&k1], &[1]), "other", &h),
        Err(CertificateError::WrongChain { .. })
    ));
    let mut h2 = h.clone();
    h2.state_root[0] ^= 1;
    assert_eq!(
        c.verify(&set(&[&k1], &[1]), CHAIN, &h2),
        Err(CertificateError::WrongBlockHash)
    );
    let mut h3 = h.clone();
    h3.height = 4;
    assert!(matches!(
        c.verify(&set(&[&k1], &[1]), CHAIN, &h3),
        Err(CertificateError::WrongHeight { .. })
    ));
    // A vote for another round does not count for this one.
    let mut moved = certify(&h, 1, &[(0, &k1)]);
    moved.round = 0;
    assert_eq!(
        moved.verify(&set(&[&k1], &[1]), CHAIN, &h),
        Err(CertificateError::BadSignature(0))
    );
}

#[test]
fn quorum_needs_more_than_two_thirds_of_power() {
    let keys: Vec<SigningKey> = (1..=4).map(key).collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let s = set(&refs, &[1, 1, 1, 1]);
    let h = header(9);
    // 3 of 4: 9 > 8.
    certify(&h, 2, &[(0, &keys[0]), (1, &keys[1]), (3, &keys[3])])
        .verify(&s, CHAIN, &h)
        .unwrap();
    // 2 of 4: 6 > 8 fails.
    assert_eq!(
        certify(&h, 2, &[(0, &keys[0]), (2, &keys[2])]).verify(&s, CHAIN, &h),
        Err(CertificateError::NoQuorum {
            signed: 2,
            total: 4
        })
    );
    // Exactly 2/3 is not enough: powers 1+1 of 3.
    let s3 = set(&refs[..3], &[1, 1, 1]);
    assert!(matches!(
        certify(&h, 0, &[(0, &keys[0]), (1, &keys[1])]).verify(&s3, CHAIN, &h),
        Err(CertificateError::NoQuorum { .. })
    ));
    // One heavy validator alone has the quorum.
    let heavy = set(&refs, &[10, 1, 1, 1]);
    certify(&h, 0, &[(0, &keys[0])])
        .verify(&heavy, CHAIN, &h)
        .unwrap();
    // Huge powers do not overflow.
    let big = set(&refs, &[u64::MAX, u64::MAX, u64::MAX, 1]);
    certify(&h, 0, &[(0, &keys[0]), (1, &keys[1]), (2, &keys[2])])
        .verify(&big, CHAIN, &h)
        .unwrap();
}

#[test]
fn duplicated_unordered_unknown_and_forged_signers_are_refused() {
    let keys: Vec<SigningKey> = (1..=4).map(key).collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let s = set(&refs, &[1, 1, 1, 1]);
    let h = header(9);
    // The same signature three times would be 3 of 4 if counted.
    let dup = certify(&h, 0, &[(0, &keys[0]), (0, &keys[0]), (0, &keys[0])]);
    assert_eq!(
        dup.verify(&s, CHAIN, &h),
        Err(CertificateError::UnorderedSigners { index: 0 })
    );
    let unordered = certify(&h, 0, &[(1, &keys[1]), (0, &keys[0]), (2, &keys[2])]);
    assert_eq!(
        unordered.verify(&s, CHAIN, &h),
        Err(CertificateError::UnorderedSigners { index: 0 })
    );
    let unknown = certify(&h, 0, &[(0, &keys[0]), (1, &keys[1]), (7, &keys[2])]);
    assert_eq!(
        unknown.verify(&s, CHAIN, &h),
        Err(CertificateError::UnknownValidator(7))
    );
    // Validator 2's slot signed by key 4: forged.
    let forged = certify(&h, 0, &[(0, &keys[0]), (1, &keys[1]), (2, &keys[3])]);
    assert_eq!(
        forged.verify(&s, CHAIN, &h),
        Err(CertificateError::BadSignature(2))
    );
    let mut flipped = certify(&h, 0, &[(0, &keys[0]), (1, &keys[1]), (2, &keys[2])]);
    flipped.signatures[1].1[5] ^= 1;
    assert_eq!(
        flipped.verify(&s, CHAIN, &h),
        Err(CertificateError::BadSignature(1))
    );
}

#[test]
fn empty_tree_and_small_trees_match_rfc6962_definitions() {
    assert_eq!(merkle_root::<&[u8]>(&[]), empty_root());
    assert_eq!(merkle_root(&[b"x"]), leaf_hash(b"x"));
    let three = merkle_root(&[b"a".as_slice(), b"b", b"c"]);
    let expect = node_hash(
        &node_hash(&leaf_hash(b"a"), &leaf_hash(b"b")),
        &leaf_hash(b"c"),
    );
    assert_eq!(three, expect);
    // A leaf is not confused with an inner node holding the same bytes.
    let mut inner = Vec::new();
    inner.extend_from_slice(&leaf_hash(b"a"));
    inner.extend_from_slice(&leaf_hash(b"b"));
    assert_ne!(
        merkle_root(&[inner.as_slice()]),
        merkle_root(&[b"a".as_slice(), b"b"])
    );
}

#[test]
fn proofs_verify_for_every_index_of_trees_of_1_to_17_leaves() {
    for n in 1..=17usize {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("leaf {i}").into_bytes()).collect();
        let root = merkle_root(&leaves);
        for i in 0..n {
            let proof = InclusionProof::build(&leaves, i).unwrap();
            proof.verify(&root, &leaves[i]).unwrap();
            let bytes = proof.encode();
            assert_eq!(InclusionProof::decode(&bytes).unwrap(), proof);
            // Another leaf's bytes at this index fail.
            let other = (i + 1) % n;
            if other != i {
                assert_eq!(
                    proof.verify(&root, &leaves[other]),
                    Err(MerkleError::RootMismatch)
                );
                let mut moved = proof.clone();
                moved.index = other as u64;
                assert!(
                    moved.verify(&root, &leaves[i]).is_err(),
                    "n={n} i={i} index moved to {other}"
                );
            }
            for s in 0..proof.path.len() {
                let mut bad = proof.clone();
                bad.path[s][0] ^= 1;
                assert_eq!(
                    bad.verify(&root, &leaves[i]),
                    Err(MerkleError::RootMismatch)
                );
            }
            let mut short = proof.clone();
            if short.path.pop().is_some() {
                assert!(short.verify(&root, &leaves[i]).is_err());
            }
            let mut long = proof.clone();
            long.path.push([0; 32]);
            assert!(long.verify(&root, &leaves[i]).is_err());
            // `leaf_count` is not bound by the root (RFC 9162 proofs are not): only a
            // count whose tree shape differs at this index is caught.
            let mut resized = proof.clone();
            resized.leaf_count = (n as u64) * 2 + 1;
            assert!(resized.verify(&root, &leaves[i]).is_err());
        }
        assert!(InclusionProof::build(&leaves, n).is_none());
    }
}

#[test]
fn proof_with_index_past_the_end_is_refused() {
    let p = InclusionProof {
        index: 3,
        leaf_count: 3,
        path: vec![],
    };
    assert_eq!(
        p.verify(&empty_root(), b"x"),
        Err(MerkleError::IndexOutOfRange {
            index: 3,
            leaf_count: 3
        })
    );
    let mut bytes = InclusionProof {
        index: 0,
        leaf_count: 1,
        path: vec![[1; 32]; MAX_PROOF_HASHES + 1],
    }
    .encode();
    assert!(matches!(
        InclusionProof::decode(&bytes),
        Err(DecodeError::TooLong { field: "path", .. })
    ));
    bytes.truncate(10);
    assert!(InclusionProof::decode(&bytes).is_err());
}

#[test]
fn order_commitment_is_strict() {
    let c = OrderCommitment::new([4; 32], b"unsigned tx".to_vec()).unwrap();
    let bytes = c.encode();
    assert_eq!(OrderCommitment::decode(&bytes).unwrap(), c);
    assert_exact(&bytes, OrderCommitment::decode);
    assert!(OrderCommitment::new([4; 32], Vec::new()).is_err());
    assert!(OrderCommitment::new([4; 32], vec![0; MAX_ORDER_BYTES + 1]).is_err());
    let empty = OrderCommitment {
        lockout_id: [4; 32],
        order: Vec::new(),
    }
    .encode();
    assert!(OrderCommitment::decode(&empty).is_err());
    let huge = OrderCommitment {
        lockout_id: [4; 32],
        order: vec![1; MAX_ORDER_BYTES + 1],
    }
    .encode();
    assert!(matches!(
        OrderCommitment::decode(&huge),
        Err(DecodeError::TooLong { field: "order", .. })
    ));
    assert!(OrderCommitment::decode(&header(1).encode()).is_err());
}

#[test]
fn cancellation_commitment_is_strict_and_distinct_from_an_order() {
    let c = CancellationCommitment::new([4; 32], 21_000 * 7, b"cancel tx".to_vec()).unwrap();
    let bytes = c.encode();
    assert_eq!(CancellationCommitment::decode(&bytes).unwrap(), c);
    assert_exact(&bytes, CancellationCommitment::decode);
    assert!(CancellationCommitment::new([4; 32], 1, Vec::new()).is_err());
    assert!(CancellationCommitment::new([4; 32], 1, vec![0; MAX_ORDER_BYTES + 1]).is_err());
    // Each leaf decodes as what it is, and only as that.
    assert_eq!(
        CommittedSigning::decode(&bytes).unwrap(),
        CommittedSigning::Cancellation(c.clone())
    );
    assert!(OrderCommitment::decode(&bytes).is_err());
    let order = OrderCommitment::new([4; 32], b"cancel tx".to_vec()).unwrap();
    assert!(CancellationCommitment::decode(&order.encode()).is_err());
    let signing = CommittedSigning::decode(&order.encode()).unwrap();
    assert_eq!(signing, CommittedSigning::Order(order));
    assert_eq!(signing.lockout_id(), c.lockout_id);
    assert_eq!(signing.order(), c.order.as_slice());
    assert!(CommittedSigning::decode(&header(1).encode()).is_err());
}

proptest! {
    #[test]
    fn header_encoding_is_canonical(
        chain in "[a-z0-9-]{1,64}", height: u64, time: u64,
        prev: [u8; 32], tx: [u8; 32], state: [u8; 32], proposer: [u8; 32],
    ) {
        let h = BlockHeader {
            version: HEADER_VERSION, chain_id: chain, height, previous_hash: prev,
            time_unix_ms: time, tx_root: tx, state_root: state, proposer,
        };
        let bytes = h.encode();
        prop_assert_eq!(BlockHeader::decode(&bytes).unwrap(), h);
        assert_exact(&bytes, BlockHeader::decode);
    }

    #[test]
    fn order_commitment_round_trips(id: [u8; 32], order in proptest::collection::vec(any::<u8>(), 1..300)) {
        let c = OrderCommitment::new(id, order).unwrap();
        prop_assert_eq!(OrderCommitment::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn certificate_encoding_round_trips(
        height: u64, round: u32, hash: [u8; 32],
        sigs in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 64)), 0..5),
    ) {
        let c = CommitCertificate {
            height, round, block_hash: hash,
            signatures: sigs.into_iter().map(|(i, s)| (i, <[u8; 64]>::try_from(s.as_slice()).unwrap())).collect(),
        };
        let bytes = c.encode();
        prop_assert_eq!(CommitCertificate::decode(&bytes).unwrap(), c);
        assert_exact(&bytes, CommitCertificate::decode);
    }

    #[test]
    fn random_trees_prove_every_leaf(leaves in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..40)) {
        let root = merkle_root(&leaves);
        for (i, leaf) in leaves.iter().enumerate() {
            let p = InclusionProof::build(&leaves, i).unwrap();
            prop_assert!(p.verify(&root, leaf).is_ok());
            prop_assert_eq!(InclusionProof::decode(&p.encode()).unwrap(), p);
        }
    }
}

#[test]
fn committed_order_is_verified_end_to_end() {
    let k = key(1);
    let s = set(&[&k], &[1]);
    let order = OrderCommitment::new([3; 32], b"raw tx".to_vec()).unwrap();
    let leaves = vec![b"other tx".to_vec(), order.encode(), b"third".to_vec()];
    let mut h = header(4);
    h.tx_root = merkle_root(&leaves);
    let c = certify(&h, 0, &[(0, &k)]);
    let proof = InclusionProof::build(&leaves, 1).unwrap();
    assert_eq!(
        verify_committed_order(&s, CHAIN, &h, &c, &leaves[1], &proof).unwrap(),
        CommittedSigning::Order(order)
    );
    // Pinned set of another validator.
    let other = set(&[&key(2)], &[1]);
    assert!(matches!(
        verify_committed_order(&other, CHAIN, &h, &c, &leaves[1], &proof),
        Err(OrderProofError::Certificate(
            CertificateError::BadSignature(0)
        ))
    ));
    // Another order under the same proof.
    let forged = OrderCommitment::new([3; 32], b"raw tx paying the attacker".to_vec())
        .unwrap()
        .encode();
    assert!(matches!(
        verify_committed_order(&s, CHAIN, &h, &c, &forged, &proof),
        Err(OrderProofError::Inclusion(MerkleError::RootMismatch))
    ));
    // A certified cancellation is accepted as what it is.
    let cancel = CancellationCommitment::new([3; 32], 9, b"cancel".to_vec()).unwrap();
    let leaves2 = vec![cancel.encode(), b"x".to_vec()];
    let mut h2 = header(5);
    h2.tx_root = merkle_root(&leaves2);
    let c2 = certify(&h2, 0, &[(0, &k)]);
    let proof2 = InclusionProof::build(&leaves2, 0).unwrap();
    assert_eq!(
        verify_committed_order(&s, CHAIN, &h2, &c2, &leaves2[0], &proof2).unwrap(),
        CommittedSigning::Cancellation(cancel)
    );
    // A real leaf that is not an order.
    let proof0 = InclusionProof::build(&leaves, 0).unwrap();
    assert!(matches!(
        verify_committed_order(&s, CHAIN, &h, &c, &leaves[0], &proof0),
        Err(OrderProofError::NotAnOrder(_))
    ));
}
