//! Blame reports on chain (OPS-02): a `ReportBlame` records the culprits, the reason and the
//! evidence digest of an aborted fleet session once; refused reports (duplicate session, bad
//! culprit lists, empty or long reasons) change nothing; the per-signer counts add up and the
//! supply invariant holds. Real sled stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{block_ok, open};
use coordinator::chain::{BlockTx, SystemTx, TxRejection};
use coordinator::fleet::{evidence_digest, BlameRecord};

fn report(session: u8, culprits: &[u16], reason: &str) -> BlockTx {
    BlockTx::System(SystemTx::ReportBlame {
        session_id: [session; 32],
        culprits: culprits.to_vec(),
        reason: reason.into(),
        evidence_digest: evidence_digest(&[vec![session, 1], vec![2]]),
    })
}

#[test]
fn a_blame_is_recorded_once_and_counted_per_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    block_ok(
        &mut chain,
        &[
            report(1, &[2], "presign round 2: Πelog of Γ fails"),
            report(2, &[2, 5], "sign: σ_j does not match"),
        ],
    );
    let r = chain.blame_report(&[1; 32]).unwrap().unwrap();
    assert_eq!(r.culprits, vec![2]);
    assert_eq!(r.reason, "presign round 2: Πelog of Γ fails");
    assert_eq!(r.evidence_digest, evidence_digest(&[vec![1, 1], vec![2]]));
    assert_eq!(r.height, chain.height());
    assert_eq!(chain.blame_count(2).unwrap(), 2);
    assert_eq!(chain.blame_count(5).unwrap(), 1);
    assert_eq!(chain.blame_count(1).unwrap(), 0);

    let root = chain.state_root();
    let long = "x".repeat(257);
    let refused = [
        (report(1, &[3], "again"), "duplicate session"),
        (report(3, &[], "none"), "no culprit"),
        (report(3, &[0], "zero"), "index 0"),
        (report(3, &[4, 2], "unsorted"), "not increasing"),
        (report(3, &[2, 2], "twice"), "repeated"),
        (report(3, &[2], ""), "empty reason"),
        (report(3, &[2], &long), "long reason"),
    ];
    for (tx, why) in &refused {
        let out = chain
            .produce_block(std::slice::from_ref(tx), 1_000 * (chain.height() + 1))
            .unwrap();
        match (why, &out.results[0]) {
            (&"duplicate session", Err(TxRejection::BlameAlreadyReported(s))) => {
                assert_eq!(s, &[1; 32])
            }
            (_, Err(TxRejection::BadBlameReport(_))) => {}
            (_, other) => panic!("{why}: {other:?}"),
        }
        assert_eq!(
            chain.state_root(),
            root,
            "{why}: a refused report changes nothing"
        );
    }
    assert_eq!(chain.blame_count(2).unwrap(), 2);
    chain.invariant_check().unwrap();
}

#[test]
fn what_the_fleet_client_reports_is_what_the_chain_accepts() {
    // A signer's Blame as the fleet client turns it into a record: unsorted, repeated and
    // out-of-range indices and an over-long reason are normalised, so the proposal is valid.
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    let evidence = vec![vec![7u8; 40], vec![8u8; 3]];
    let record = BlameRecord::from_report(
        [9; 32],
        &[5, 3, 5, 0],
        &"é".repeat(300),
        &evidence,
        coordinator::chain::tx::MAX_BLAME_REASON_BYTES,
    )
    .unwrap();
    block_ok(
        &mut chain,
        &[BlockTx::System(SystemTx::ReportBlame {
            session_id: record.session_id,
            culprits: record.culprits.clone(),
            reason: record.reason.clone(),
            evidence_digest: evidence_digest(&record.evidence),
        })],
    );
    let r = chain.blame_report(&[9; 32]).unwrap().unwrap();
    assert_eq!(r.culprits, vec![3, 5]);
    assert_eq!(r.evidence_digest, evidence_digest(&evidence));
}
