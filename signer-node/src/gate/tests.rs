#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use custody_proto::signer::v1::{Authorization, AuthorizerSignature};
use ed25519_dalek::{Signer, SigningKey};

use super::*;

const KEY: [u8; 32] = [9u8; 32];

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn authorizers() -> Vec<SigningKey> {
    (1u8..=3)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect()
}

fn gate(quorum: usize, max: u32) -> PolicyGate {
    PolicyGate::new(
        FleetId::new("devnet").unwrap(),
        authorizers().iter().map(|k| k.verifying_key()).collect(),
        quorum,
        max,
        Duration::from_secs(60),
    )
}

fn input(path: &[u32], message: &[u8]) -> OrderInput {
    OrderInput {
        path: path.to_vec(),
        rule: DigestRule::Keccak256,
        message: message.to_vec(),
    }
}

/// Two inputs at m/44/60/0/0/7 and a third at another path (a transaction spending from two
/// addresses).
fn order() -> SigningOrder {
    SigningOrder {
        fleet_id: "devnet".into(),
        key_id: KEY,
        not_after: 2_000,
        inputs: vec![
            input(&[44, 60, 0, 0, 7], b"first message"),
            input(&[44, 60, 0, 0, 7], b"second"),
            input(&[44, 60, 0, 0, 9], b"third"),
        ],
    }
}

fn sign(order: &[u8], keys: &[&SigningKey]) -> Authorization {
    let msg = authorization_signing_bytes(order);
    Authorization {
        order: order.to_vec(),
        signatures: keys
            .iter()
            .map(|k| AuthorizerSignature {
                public_key: k.verifying_key().to_bytes().to_vec(),
                signature: k.sign(&msg).to_bytes().to_vec(),
            })
            .collect(),
        chain: None,
    }
}

fn path() -> DerivationPath {
    "m/44/60/0/0/7".parse().unwrap()
}

#[test]
fn a_quorum_approves_the_digest_recomputed_from_the_order() {
    let keys = authorizers();
    let bytes = order().encode().unwrap();
    let auth = sign(&bytes, &[&keys[0], &keys[2]]);
    let g = gate(2, 10);
    let a = g.approve_at(t(1_000), &KEY, &path(), &auth, 1).unwrap();
    assert_eq!(a.digest, DigestRule::Keccak256.digest(b"second"));
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(a.order_hash, sha);
    // the three rules are the standard hashes
    assert_eq!(
        hex::encode(DigestRule::Keccak256.digest(b"")),
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    );
    assert_eq!(
        hex::encode(DigestRule::Sha256.digest(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        DigestRule::DoubleSha256.digest(b"abc"),
        DigestRule::Sha256.digest(&DigestRule::Sha256.digest(b"abc"))
    );
}

#[test]
fn refusals_name_their_reason() {
    let keys = authorizers();
    let stranger = SigningKey::from_bytes(&[77u8; 32]);
    let bytes = order().encode().unwrap();
    // one approval per window: the refusals below must not use it up
    let g = gate(2, 1);
    let now = t(1_000);
    let denied = |r: Result<SignApproval, GateRefusal>, needle: &str| match r {
        Err(GateRefusal::Denied(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected a denial with {needle:?}, got {other:?}"),
    };
    let malformed = |r: Result<SignApproval, GateRefusal>, needle: &str| match r {
        Err(GateRefusal::Malformed(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected malformed with {needle:?}, got {other:?}"),
    };
    // one signature, or the same key twice, or a stranger's: below quorum
    denied(
        g.approve_at(now, &KEY, &path(), &sign(&bytes, &[&keys[0]]), 0),
        "1 of the required 2",
    );
    denied(
        g.approve_at(now, &KEY, &path(), &sign(&bytes, &[&keys[1], &keys[1]]), 0),
        "1 of the required 2",
    );
    denied(
        g.approve_at(now, &KEY, &path(), &sign(&bytes, &[&keys[1], &stranger]), 0),
        "1 of the required 2",
    );
    // signatures over another order do not verify for this one
    let mut other = order();
    other.inputs[0].message = b"pay the attacker".to_vec();
    let mut swapped = sign(&other.encode().unwrap(), &[&keys[0], &keys[1]]);
    swapped.order = bytes.clone();
    denied(
        g.approve_at(now, &KEY, &path(), &swapped, 0),
        "does not verify",
    );
    // the order must match the request and the node
    let ok = sign(&bytes, &[&keys[0], &keys[1]]);
    denied(
        g.approve_at(now, &[1u8; 32], &path(), &ok, 0),
        "order names key",
    );
    denied(
        g.approve_at(now, &KEY, &"m/44/60/0/0/8".parse().unwrap(), &ok, 0),
        "SIG-02",
    );
    // each input is signed by its own path only: input 2 belongs to m/44/60/0/0/9
    denied(g.approve_at(now, &KEY, &path(), &ok, 2), "SIG-02");
    let mut foreign = order();
    foreign.fleet_id = "other-fleet".into();
    denied(
        g.approve_at(
            now,
            &KEY,
            &path(),
            &sign(&foreign.encode().unwrap(), &[&keys[0], &keys[1]]),
            0,
        ),
        "fleet",
    );
    denied(g.approve_at(t(2_001), &KEY, &path(), &ok, 0), "expired");
    malformed(g.approve_at(now, &KEY, &path(), &ok, 3), "input 3");
    // malformed authorizations
    let mut short = ok.clone();
    short.signatures[0].signature.pop();
    malformed(g.approve_at(now, &KEY, &path(), &short, 0), "not 64 bytes");
    let mut garbage = sign(b"this is not an order at all", &[&keys[0], &keys[1]]);
    malformed(
        g.approve_at(now, &KEY, &path(), &garbage, 0),
        "not a custody.order.v2",
    );
    garbage.signatures = (0..20).map(|_| ok.signatures[0].clone()).collect();
    malformed(
        g.approve_at(now, &KEY, &path(), &garbage, 0),
        "authorizer signatures",
    );
    // none of the refusals above charged the velocity limit: the one approval is still there
    g.approve_at(now, &KEY, &path(), &ok, 0).unwrap();
    let status: tonic::Status = g.approve_at(now, &KEY, &path(), &ok, 0).unwrap_err().into();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

#[test]
fn velocity_limit_slides_per_key() {
    let keys = authorizers();
    let g = gate(1, 2);
    let mut other_key = order();
    other_key.key_id = [3u8; 32];
    let a = sign(&order().encode().unwrap(), &[&keys[0]]);
    let b = sign(&other_key.encode().unwrap(), &[&keys[0]]);
    g.approve_at(t(1_000), &KEY, &path(), &a, 0).unwrap();
    g.approve_at(t(1_030), &KEY, &path(), &a, 1).unwrap();
    let third = g.approve_at(t(1_059), &KEY, &path(), &a, 0);
    assert!(matches!(third, Err(GateRefusal::Denied(m)) if m.contains("velocity")));
    // another key has its own budget
    g.approve_at(t(1_059), &[3u8; 32], &path(), &b, 0).unwrap();
    // 60 s after the first charge one slot is free again, but only one
    g.approve_at(t(1_060), &KEY, &path(), &a, 0).unwrap();
    assert!(g.approve_at(t(1_061), &KEY, &path(), &a, 0).is_err());
    assert!(g.approve_at(t(1_090), &KEY, &path(), &a, 0).is_ok());
}

mod chain_form {
    use super::*;
    use crate::gate::chain::ChainPin;
    use custody_proto::chain::{
        merkle_root, vote_signing_bytes, BlockHeader, CommitCertificate, InclusionProof,
        OrderCommitment, ValidatorSet, HEADER_VERSION,
    };
    use custody_proto::signer::v1::ChainAuthorization;

    const CHAIN: &str = "custody-test";

    /// Four validators with powers 1, 1, 1, 2 (total 5: more than 2/3 needs 4).
    fn validators() -> Vec<SigningKey> {
        (21u8..=24)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect()
    }

    fn pinned(keys: &[SigningKey]) -> ValidatorSet {
        let members: Vec<([u8; 32], u64)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.verifying_key().to_bytes(), if i == 3 { 2 } else { 1 }))
            .collect();
        ValidatorSet::new(&members).unwrap()
    }

    fn chain_gate() -> PolicyGate {
        gate(2, 10).with_chain(Some(ChainPin {
            chain_id: CHAIN.into(),
            validators: pinned(&validators()),
        }))
    }

    /// A block at height 7 whose transactions are [a transfer, the order commitment, another],
    /// certified by the validators at `signers`; the authorization for the commitment.
    fn committed(order: &[u8], signers: &[usize], chain_id: &str) -> ChainAuthorization {
        let commitment = OrderCommitment::new([5; 32], order.to_vec())
            .unwrap()
            .encode();
        let leaves = vec![
            b"a transfer".to_vec(),
            commitment.clone(),
            b"another".to_vec(),
        ];
        let header = BlockHeader {
            version: HEADER_VERSION,
            chain_id: chain_id.into(),
            height: 7,
            previous_hash: [1; 32],
            time_unix_ms: 1_000_000,
            tx_root: merkle_root(&leaves),
            state_root: [2; 32],
            proposer: validators()[0].verifying_key().to_bytes(),
        };
        let hash = header.hash();
        let keys = validators();
        let certificate = CommitCertificate {
            height: 7,
            round: 0,
            block_hash: hash,
            signatures: signers
                .iter()
                .map(|&i| {
                    let sig = keys[i].sign(&vote_signing_bytes(chain_id, 7, 0, &hash));
                    (i as u16, sig.to_bytes())
                })
                .collect(),
        };
        ChainAuthorization {
            header: header.encode(),
            certificate: certificate.encode(),
            order_commitment: commitment,
            inclusion_proof: InclusionProof::build(&leaves, 1).unwrap().encode(),
        }
    }

    fn auth(chain: ChainAuthorization) -> Authorization {
        Authorization {
            order: Vec::new(),
            signatures: Vec::new(),
            chain: Some(chain),
        }
    }

    #[test]
    fn a_certified_block_authorizes_its_order() {
        let bytes = order().encode().unwrap();
        let g = chain_gate();
        // validators 0, 1 and 3: power 4 of 5
        let a = g
            .approve_at(
                t(1_000),
                &KEY,
                &path(),
                &auth(committed(&bytes, &[0, 1, 3], CHAIN)),
                1,
            )
            .unwrap();
        assert_eq!(a.digest, DigestRule::Keccak256.digest(b"second"));
        assert_eq!(a.chain_height, Some(7));
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(a.order_hash, sha);
    }

    #[test]
    fn chain_refusals_name_their_reason() {
        let bytes = order().encode().unwrap();
        let g = chain_gate();
        let now = t(1_000);
        let refused = |a: Authorization, needle: &str, malformed: bool| match (
            g.approve_at(now, &KEY, &path(), &a, 0),
            malformed,
        ) {
            (Err(GateRefusal::Malformed(m)), true) | (Err(GateRefusal::Denied(m)), false) => {
                assert!(m.contains(needle), "{m:?} lacks {needle:?}")
            }
            (other, _) => panic!("expected a refusal with {needle:?}, got {other:?}"),
        };
        // power 3 of 5 is not more than 2/3
        refused(
            auth(committed(&bytes, &[0, 1, 2], CHAIN)),
            "not certified",
            false,
        );
        // another chain's block
        refused(
            auth(committed(&bytes, &[0, 1, 3], "other-chain")),
            "not certified",
            false,
        );
        // a certificate by validators this signer does not pin
        let mut foreign = committed(&bytes, &[0, 1, 3], CHAIN);
        let strangers: Vec<SigningKey> = (31u8..=34)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let header = BlockHeader::decode(&foreign.header).unwrap();
        let mut cert = CommitCertificate::decode(&foreign.certificate).unwrap();
        for (i, sig) in cert.signatures.iter_mut() {
            *sig = strangers[usize::from(*i)]
                .sign(&vote_signing_bytes(CHAIN, 7, 0, &header.hash()))
                .to_bytes();
        }
        foreign.certificate = cert.encode();
        refused(auth(foreign), "not certified", false);
        // an order the block does not contain (the proof is for the real commitment)
        let mut swapped = committed(&bytes, &[0, 1, 3], CHAIN);
        let mut other = order();
        other.inputs[1].message = b"pay the attacker".to_vec();
        swapped.order_commitment = OrderCommitment::new([5; 32], other.encode().unwrap())
            .unwrap()
            .encode();
        refused(auth(swapped), "not a transaction of block 7", false);
        // both forms at once, garbage, and a node without [chain]
        let mut both = auth(committed(&bytes, &[0, 1, 3], CHAIN));
        both.order = bytes.clone();
        refused(both, "not both", true);
        let mut garbage = committed(&bytes, &[0, 1, 3], CHAIN);
        garbage.header.truncate(10);
        refused(auth(garbage), "header", true);
        let plain = gate(2, 10);
        match plain.approve_at(
            now,
            &KEY,
            &path(),
            &auth(committed(&bytes, &[0, 1, 3], CHAIN)),
            0,
        ) {
            Err(GateRefusal::Denied(m)) => assert!(m.contains("pins no chain"), "{m}"),
            other => panic!("{other:?}"),
        }
        // none of this charged the velocity limit, and the good one still passes
        g.approve_at(
            now,
            &KEY,
            &path(),
            &auth(committed(&bytes, &[0, 1, 3], CHAIN)),
            0,
        )
        .unwrap();
    }
}
