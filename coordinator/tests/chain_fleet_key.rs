//! The fleet key on chain: `RecordFleetKey` answers a `RequestKeygen`, once, with a valid
//! key; refused records change nothing; the record survives a reopen; the engine reads it
//! back as the `FleetKey` deposit addresses derive from. Real sled stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{block_ok, open, signed, user};
use coordinator::chain::{BlockTx, SystemTx, TxBody, TxRejection};
use coordinator::engine::keys::{latest_fleet_key, record_fleet_key};
use coordinator::fleet::FleetKey;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{NonZeroScalar, ProjectivePoint};

fn key(seed: u8, key_id: u8) -> FleetKey {
    let s = NonZeroScalar::try_from(&[seed; 32][..]).unwrap();
    FleetKey {
        key_id: [key_id; 32],
        public_key: k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * *s).to_affine())
            .unwrap(),
        chain_code: [seed ^ 0x55; 32],
        threshold: 2,
        holders: vec![3, 1, 2],
        epoch: 4,
    }
}

fn with(tx: &BlockTx, f: impl FnOnce(&mut SystemTx)) -> BlockTx {
    let BlockTx::System(mut s) = tx.clone() else {
        panic!()
    };
    f(&mut s);
    BlockTx::System(s)
}

#[test]
fn fleet_key_is_recorded_once_for_a_request_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    let admin = user(100);
    let k = key(9, 1);
    let record = record_fleet_key(0, &k).unwrap();

    // No request yet.
    let root = chain.state_root();
    let out = chain
        .produce_block(std::slice::from_ref(&record), 1_000 * (chain.height() + 1))
        .unwrap();
    assert_eq!(out.results[0], Err(TxRejection::UnknownKeygenRequest(0)));
    assert_eq!(chain.state_root(), root, "a refused record changes nothing");
    assert!(chain.pending_keygen_requests().unwrap().is_empty());

    block_ok(&mut chain, &[signed(&admin, 0, TxBody::RequestKeygen)]);
    assert_eq!(chain.pending_keygen_requests().unwrap(), vec![0]);
    assert!(chain.latest_fleet_key().unwrap().is_none());

    // Invalid keys are refused with the reason.
    let set = |f: fn(&mut SystemTx)| with(&record, f);
    let bad = [
        set(|s| {
            if let SystemTx::RecordFleetKey { public_key, .. } = s {
                public_key[1..].fill(0xff); // x beyond the field: not a point
            }
        }),
        set(|s| {
            if let SystemTx::RecordFleetKey { public_key, .. } = s {
                public_key[0] = 4; // not the compressed form
            }
        }),
        set(|s| {
            if let SystemTx::RecordFleetKey { threshold, .. } = s {
                *threshold = 0;
            }
        }),
        set(|s| {
            if let SystemTx::RecordFleetKey { threshold, .. } = s {
                *threshold = 4;
            }
        }),
        set(|s| {
            if let SystemTx::RecordFleetKey { holders, .. } = s {
                *holders = vec![1, 1, 2];
            }
        }),
        set(|s| {
            if let SystemTx::RecordFleetKey { holders, .. } = s {
                *holders = vec![2, 1, 3];
            }
        }),
        set(|s| {
            if let SystemTx::RecordFleetKey { holders, .. } = s {
                holders.clear();
            }
        }),
    ];
    let root = chain.state_root();
    let out = chain
        .produce_block(&bad, 1_000 * (chain.height() + 1))
        .unwrap();
    for (i, r) in out.results.iter().enumerate() {
        assert!(
            matches!(r, Err(TxRejection::BadFleetKey(_))),
            "case {i}: {r:?}"
        );
    }
    assert_eq!(chain.state_root(), root);

    block_ok(&mut chain, std::slice::from_ref(&record));
    let (id, stored) = chain.latest_fleet_key().unwrap().unwrap();
    assert_eq!(id, 0);
    assert_eq!(stored.holders, vec![1, 2, 3], "holders are recorded sorted");
    assert_eq!(
        stored.public_key.as_slice(),
        k.public_key.to_encoded_point(true).as_bytes()
    );
    assert!(chain.pending_keygen_requests().unwrap().is_empty());

    // Once per request: a second key for request 0 is refused.
    let out = chain
        .produce_block(
            &[record_fleet_key(0, &key(10, 2)).unwrap()],
            1_000 * (chain.height() + 1),
        )
        .unwrap();
    assert_eq!(out.results[0], Err(TxRejection::FleetKeyAlreadyRecorded(0)));

    // A second request and its key become the latest.
    block_ok(&mut chain, &[signed(&admin, 1, TxBody::RequestKeygen)]);
    let k2 = key(11, 3);
    block_ok(&mut chain, &[record_fleet_key(1, &k2).unwrap()]);
    chain.invariant_check().unwrap();
    drop(chain);

    // Survives a reopen; the engine reads the key back with the fleet's current epoch and
    // derives the same children as the key itself.
    let chain = open(dir.path());
    let got = latest_fleet_key(&chain, 4).unwrap().unwrap();
    let mut expected = k2.clone();
    expected.holders.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(
        got.child_key(&[1, 5]).unwrap(),
        k2.child_key(&[1, 5]).unwrap()
    );
    assert_eq!(chain.fleet_key(0).unwrap().unwrap(), stored);
}
