//! A second replica imports the proposer's blocks: same state root, and every block that
//! does not fit (tampered, uncertified, out of order, invalid transaction, wrong state
//! root) is refused with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use coordinator::chain::{
    lockout_id, Asset, Block, BlockTx, Chain, ChainError, FollowerConsensus, LockOutOutcome,
    SystemTx, TxBody, TxRejection,
};
use custody_proto::chain::{merkle_root, vote_signing_bytes, CommitCertificate, OrderCommitment};
use ed25519_dalek::Signer;

fn follower(dir: &std::path::Path) -> Chain<FollowerConsensus> {
    Chain::open(dir, genesis(), FollowerConsensus::new(genesis().validators)).unwrap()
}

/// Certifies `block.header` with validator key `seed`, as a (possibly rogue) validator would.
fn recertify(block: &mut Block, seed: u8) {
    let hash = block.header.hash();
    let vote = vote_signing_bytes(CHAIN_ID, block.header.height, 0, &hash);
    block.certificate = CommitCertificate {
        height: block.header.height,
        round: 0,
        block_hash: hash,
        signatures: vec![(0, validator_key(seed).sign(&vote).to_bytes())],
    };
}

/// `import_block(block)` fails as `check` says and changes nothing.
fn refused(
    replica: &mut Chain<FollowerConsensus>,
    block: &Block,
    check: impl Fn(&ChainError) -> bool,
) {
    let (height, root) = (replica.height(), replica.state_root());
    let err = replica.import_block(block).unwrap_err();
    assert!(check(&err), "unexpected error {err:?}");
    assert_eq!((replica.height(), replica.state_root()), (height, root));
    replica.invariant_check().unwrap();
}

#[test]
fn replica_reaches_the_same_state_and_refuses_blocks_that_do_not_fit() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut proposer = open(dir_a.path());
    let mut replica = follower(dir_b.path());
    assert!(matches!(
        replica.produce_block(&[], 1),
        Err(ChainError::Consensus(_))
    ));

    let (alice, bob) = (user(1), user(2));
    let nonce = fund(&mut proposer, &alice, 0, Asset::MBTC, 1, 10_000);
    block_ok(
        &mut proposer,
        &[signed(
            &alice,
            nonce,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::MBTC,
                amount: 2_500,
            },
        )],
    );
    block_ok(
        &mut proposer,
        &[signed(
            &alice,
            nonce + 1,
            TxBody::RequestLockOut {
                asset: Asset::MBTC,
                to_external: "bcrt1q".into(),
                amount: 1_000,
            },
        )],
    );
    let id = lockout_id(&alice.address, nonce + 1);
    block_ok(
        &mut proposer,
        &[BlockTx::System(SystemTx::CommitOrder(
            OrderCommitment::new(id, vec![7; 40]).unwrap(),
        ))],
    );
    block_ok(
        &mut proposer,
        &[BlockTx::System(SystemTx::SettleLockOut {
            lockout_id: id,
            outcome: LockOutOutcome::Burned,
        })],
    );

    // Out of order: block 2 before block 1.
    let second = proposer.block(2).unwrap().unwrap();
    refused(&mut replica, &second, |e| {
        matches!(e, ChainError::InvalidBlock(_))
    });

    for h in 1..=proposer.height() {
        replica
            .import_block(&proposer.block(h).unwrap().unwrap())
            .unwrap();
        replica.invariant_check().unwrap();
    }
    assert_eq!(replica.height(), proposer.height());
    assert_eq!(replica.state_root(), proposer.state_root());
    for u in [&alice, &bob] {
        assert_eq!(
            replica.account(&u.address).unwrap(),
            proposer.account(&u.address).unwrap()
        );
    }
    assert_eq!(
        replica.lockout(&id).unwrap(),
        proposer.lockout(&id).unwrap()
    );
    assert_eq!(
        replica.totals(Asset::MBTC).unwrap(),
        proposer.totals(Asset::MBTC).unwrap()
    );
    // The same block twice is refused.
    refused(&mut replica, &proposer.block(1).unwrap().unwrap(), |e| {
        matches!(e, ChainError::InvalidBlock(_))
    });

    // Next block from the proposer, then tampered copies of it.
    block_ok(
        &mut proposer,
        &[signed(
            &bob,
            0,
            TxBody::Transfer {
                to: alice.address,
                asset: Asset::MBTC,
                amount: 500,
            },
        )],
    );
    let good = proposer.block(proposer.height()).unwrap().unwrap();

    // Header changed after certification.
    let mut changed = good.clone();
    changed.header.time_unix_ms += 1;
    refused(&mut replica, &changed, |e| {
        matches!(e, ChainError::InvalidCertificate(_))
    });
    // Certified by a key outside the validator set.
    let mut stranger = good.clone();
    recertify(&mut stranger, 201);
    refused(&mut replica, &stranger, |e| {
        matches!(e, ChainError::InvalidCertificate(_))
    });
    // Transactions swapped under a certified header.
    let mut swapped = good.clone();
    swapped.transactions = vec![signed(
        &bob,
        0,
        TxBody::Transfer {
            to: alice.address,
            asset: Asset::MBTC,
            amount: 501,
        },
    )
    .encode()];
    refused(&mut replica, &swapped, |e| {
        matches!(e, ChainError::InvalidBlock(_))
    });
    // A rogue validator certifies a block with an invalid transaction (a deposit credited twice).
    let mut rogue = good.clone();
    rogue.transactions = vec![credit(Asset::MBTC, 1, alice.address, 10_000).encode()];
    rogue.header.tx_root = merkle_root(&rogue.transactions);
    recertify(&mut rogue, 200);
    refused(&mut replica, &rogue, |e| {
        matches!(
            e,
            ChainError::InvalidTransaction {
                index: 0,
                reason: TxRejection::DuplicateDeposit(_)
            }
        )
    });
    // ... or a valid transaction with a state root that re-execution does not give.
    let mut wrong_root = good.clone();
    wrong_root.header.state_root[0] ^= 1;
    recertify(&mut wrong_root, 200);
    refused(&mut replica, &wrong_root, |e| {
        matches!(e, ChainError::InvalidBlock(_))
    });

    replica.import_block(&good).unwrap();
    assert_eq!(replica.state_root(), proposer.state_root());
}
