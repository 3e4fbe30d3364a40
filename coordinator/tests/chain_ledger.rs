//! The chain end to end on real sled stores: refused transactions, the lock-out saga with
//! the proof a signer checks, restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use coordinator::chain::{
    lockout_id, Asset, BlockTx, Chain, ChainError, Genesis, LockOutOutcome, LockOutStatus,
    SignedTransaction, SoloConsensus, SystemTx, TxBody, TxRejection,
};
use custody_proto::chain::codec::Writer;
use custody_proto::chain::{merkle_root, CertificateError, OrderCommitment, ValidatorSet};
use k256::ecdsa::signature::Signer;

/// (state root, accounts of the given users, totals of every asset).
fn snapshot(chain: &Chain<SoloConsensus>, users: &[&User]) -> impl PartialEq + std::fmt::Debug {
    let accounts: Vec<_> = users
        .iter()
        .map(|u| chain.account(&u.address).unwrap())
        .collect();
    let totals: Vec<_> = Asset::ALL
        .iter()
        .map(|a| chain.totals(*a).unwrap())
        .collect();
    (chain.state_root(), accounts, totals)
}

/// Submits `tx` alone: `check` and the block both refuse it with `expected`, and the state
/// (root, accounts, totals) is what it was.
fn refused(chain: &mut Chain<SoloConsensus>, users: &[&User], tx: BlockTx, expected: TxRejection) {
    let before = snapshot(chain, users);
    assert_eq!(chain.check(&tx), Err(expected.clone()));
    let height = chain.height();
    let outcome = chain
        .produce_block(std::slice::from_ref(&tx), 1_000 * (height + 1))
        .unwrap();
    assert_eq!(outcome.results, vec![Err(expected)]);
    let block = chain.block(outcome.height).unwrap().unwrap();
    assert!(block.transactions.is_empty());
    assert_eq!(block.header.tx_root, merkle_root::<Vec<u8>>(&[]));
    assert_eq!(snapshot(chain, users), before);
    chain.invariant_check().unwrap();
}

#[test]
fn each_invalid_transaction_is_refused_with_its_reason_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    let (alice, bob, admin) = (user(1), user(2), user(100));
    let users = [&alice, &bob, &admin];
    let nonce = fund(&mut chain, &alice, 0, Asset::METH, 1, 1_000);
    assert_eq!(nonce, 1);

    // Bad signature: Alice's transaction signed by Bob.
    let mut forged = signed(
        &bob,
        nonce,
        TxBody::Transfer {
            to: bob.address,
            asset: Asset::METH,
            amount: 10,
        },
    );
    if let BlockTx::Signed(s) = &mut forged {
        s.tx.sender = coordinator::chain::account::compressed(alice.key.verifying_key());
    }
    refused(&mut chain, &users, forged, TxRejection::BadSignature);

    // Overdraft.
    refused(
        &mut chain,
        &users,
        signed(
            &alice,
            nonce,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::METH,
                amount: 1_001,
            },
        ),
        TxRejection::Overdraft {
            account: alice.address,
            asset: Asset::METH,
            balance: 1_000,
            requested: 1_001,
        },
    );
    // Overdraft of an asset Alice holds none of, and a lock-out beyond the balance.
    refused(
        &mut chain,
        &users,
        signed(
            &alice,
            nonce,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::MBTC,
                amount: 1,
            },
        ),
        TxRejection::Overdraft {
            account: alice.address,
            asset: Asset::MBTC,
            balance: 0,
            requested: 1,
        },
    );
    refused(
        &mut chain,
        &users,
        signed(
            &alice,
            nonce,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "0xdead".into(),
                amount: 2_000,
            },
        ),
        TxRejection::Overdraft {
            account: alice.address,
            asset: Asset::METH,
            balance: 1_000,
            requested: 2_000,
        },
    );

    // Replayed nonce: Alice's first transaction (nonce 0) sent again.
    refused(
        &mut chain,
        &users,
        signed(
            &alice,
            0,
            TxBody::RequestDepositAddress { asset: Asset::METH },
        ),
        TxRejection::BadNonce {
            expected: 1,
            got: 0,
        },
    );
    refused(
        &mut chain,
        &users,
        signed(
            &alice,
            5,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::METH,
                amount: 1,
            },
        ),
        TxRejection::BadNonce {
            expected: 1,
            got: 5,
        },
    );

    // Wrong chain.
    let mut other = signed(
        &alice,
        nonce,
        TxBody::Transfer {
            to: bob.address,
            asset: Asset::METH,
            amount: 1,
        },
    );
    if let BlockTx::Signed(s) = &mut other {
        s.tx.chain_id = "other-chain".into();
        *s = s.tx.clone().sign(&alice.key);
    }
    refused(
        &mut chain,
        &users,
        other,
        TxRejection::WrongChain {
            expected: CHAIN_ID.into(),
            got: "other-chain".into(),
        },
    );

    // Zero amount, bad destination.
    refused(
        &mut chain,
        &users,
        signed(
            &alice,
            nonce,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::METH,
                amount: 0,
            },
        ),
        TxRejection::ZeroAmount,
    );
    refused(
        &mut chain,
        &users,
        signed(
            &alice,
            nonce,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "has space".into(),
                amount: 1,
            },
        ),
        TxRejection::BadDestination { max: 128 },
    );

    // Key generation by a non-admin.
    refused(
        &mut chain,
        &users,
        signed(&alice, nonce, TxBody::RequestKeygen),
        TxRejection::Unauthorized {
            account: alice.address,
            action: "request a key generation",
        },
    );

    // Deposits: credited twice, to an account without a deposit address, zero.
    refused(
        &mut chain,
        &users,
        credit(Asset::METH, 1, alice.address, 5),
        TxRejection::DuplicateDeposit([1; 32]),
    );
    refused(
        &mut chain,
        &users,
        credit(Asset::METH, 2, bob.address, 5),
        TxRejection::NoDepositAddress {
            account: bob.address,
            asset: Asset::METH,
        },
    );
    refused(
        &mut chain,
        &users,
        credit(Asset::MBTC, 3, alice.address, 5),
        TxRejection::NoDepositAddress {
            account: alice.address,
            asset: Asset::MBTC,
        },
    );

    // Lock-out steps for a lock-out that does not exist.
    let ghost = [0x77; 32];
    refused(
        &mut chain,
        &users,
        BlockTx::System(SystemTx::CommitOrder(
            OrderCommitment::new(ghost, vec![1]).unwrap(),
        )),
        TxRejection::UnknownLockOut(ghost),
    );
    refused(
        &mut chain,
        &users,
        BlockTx::System(SystemTx::SettleLockOut {
            lockout_id: ghost,
            outcome: LockOutOutcome::Refunded,
        }),
        TxRejection::UnknownLockOut(ghost),
    );

    // After all that, the account is untouched and a valid transaction still goes through.
    assert_eq!(chain.account(&alice.address).unwrap().nonce, 1);
    block_ok(
        &mut chain,
        &[signed(
            &alice,
            1,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::METH,
                amount: 400,
            },
        )],
    );
    assert_eq!(chain.balance(&alice.address, Asset::METH).unwrap(), 600);
    assert_eq!(chain.balance(&bob.address, Asset::METH).unwrap(), 400);
}

/// Builds the signed-transaction bytes of a transfer whose asset code is `code`, signed
/// correctly, as a client with a newer asset list would send it.
fn transfer_bytes_with_asset_code(u: &User, code: u8) -> Vec<u8> {
    let mut tx = Writer::tagged("custody.chain.v1/transaction");
    tx.var(CHAIN_ID.as_bytes());
    tx.fixed(&coordinator::chain::account::compressed(
        u.key.verifying_key(),
    ));
    tx.u64(1);
    tx.u8(1); // transfer
    tx.fixed(&[9; 20]);
    tx.u8(code);
    tx.u128(1);
    let signing = tx.finish();
    let sig: k256::ecdsa::Signature = u.key.sign(&signing);
    let mut w = Writer::tagged("custody.chain.v1/signed-transaction");
    w.var(&signing);
    w.fixed(&sig.to_bytes());
    w.finish()
}

#[test]
fn unknown_asset_is_refused_on_submission_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    let alice = user(1);
    fund(&mut chain, &alice, 0, Asset::METH, 1, 50);
    let before = snapshot(&chain, &[&alice]);
    // The same bytes with a known code decode to a valid transfer.
    let known =
        BlockTx::decode(&transfer_bytes_with_asset_code(&alice, Asset::METH.code())).unwrap();
    assert!(matches!(&known, BlockTx::Signed(SignedTransaction { .. })));
    assert_eq!(chain.check(&known), Ok(()));
    assert_eq!(
        BlockTx::decode(&transfer_bytes_with_asset_code(&alice, 9)),
        Err(TxRejection::UnknownAsset(9))
    );
    // A system deposit of an unknown asset.
    let mut bytes = credit(Asset::METH, 4, alice.address, 1).encode();
    let at = 4 + "custody.chain.v1/credit-deposit".len();
    bytes[at] = 3;
    assert_eq!(BlockTx::decode(&bytes), Err(TxRejection::UnknownAsset(3)));
    assert_eq!(snapshot(&chain, &[&alice]), before);
}

#[test]
fn lock_out_saga_with_the_proof_a_signer_checks() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    let alice = user(1);
    let nonce = fund(&mut chain, &alice, 0, Asset::MBTC, 1, 100_000);
    block_ok(
        &mut chain,
        &[signed(
            &alice,
            nonce,
            TxBody::RequestLockOut {
                asset: Asset::MBTC,
                to_external: "bcrt1qxyz".into(),
                amount: 30_000,
            },
        )],
    );
    let id = lockout_id(&alice.address, nonce);
    let record = chain.lockout(&id).unwrap().unwrap();
    assert_eq!(record.status, LockOutStatus::Locked);
    assert_eq!(chain.balance(&alice.address, Asset::MBTC).unwrap(), 70_000);
    assert_eq!(chain.totals(Asset::MBTC).unwrap().locked, 30_000);
    assert_eq!(chain.totals(Asset::MBTC).unwrap().supply, 100_000);
    assert!(chain.order_proof(&id).unwrap().is_none());

    // Burning before the order is committed is refused.
    let burn = BlockTx::System(SystemTx::SettleLockOut {
        lockout_id: id,
        outcome: LockOutOutcome::Burned,
    });
    assert_eq!(
        chain.check(&burn),
        Err(TxRejection::WrongLockOutState {
            id,
            status: LockOutStatus::Locked,
            action: "burning"
        })
    );

    // Commit the order in a block beside other transactions, so the proof has siblings.
    let order = b"unsigned bitcoin transaction paying bcrt1qxyz".to_vec();
    let bob = user(2);
    block_ok(
        &mut chain,
        &[
            signed(
                &bob,
                0,
                TxBody::RequestDepositAddress { asset: Asset::METH },
            ),
            BlockTx::System(SystemTx::CommitOrder(
                OrderCommitment::new(id, order.clone()).unwrap(),
            )),
            signed(
                &bob,
                1,
                TxBody::RequestDepositAddress { asset: Asset::MBTC },
            ),
        ],
    );
    assert_eq!(
        chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::OrderCommitted
    );

    // What a signer does: pinned validator set, certificate, inclusion, decode the order.
    let proof = chain.order_proof(&id).unwrap().unwrap();
    let pinned = genesis().validators;
    proof
        .certificate
        .verify(&pinned, CHAIN_ID, &proof.header)
        .unwrap();
    proof
        .proof
        .verify(&proof.header.tx_root, &proof.leaf)
        .unwrap();
    assert_eq!(proof.proof.index, 1);
    assert_eq!(proof.proof.leaf_count, 3);
    let committed = custody_proto::chain::verify_committed_order(
        &pinned,
        CHAIN_ID,
        &proof.header,
        &proof.certificate,
        &proof.leaf,
        &proof.proof,
    )
    .unwrap();
    assert_eq!(committed.lockout_id(), id);
    assert_eq!(committed.order(), order.as_slice());
    // The same through the generic queries.
    let (leaf, p) = chain
        .transaction_proof(proof.header.height, 1)
        .unwrap()
        .unwrap();
    assert_eq!(leaf, proof.leaf);
    assert_eq!(p, proof.proof);
    // Another validator set does not accept the certificate.
    let stranger =
        ValidatorSet::new(&[(validator_key(201).verifying_key().to_bytes(), 1)]).unwrap();
    assert_eq!(
        proof.certificate.verify(&stranger, CHAIN_ID, &proof.header),
        Err(CertificateError::BadSignature(0))
    );
    // A different order is not proven by this proof.
    let custody_proto::chain::CommittedSigning::Order(mut tampered) = committed.clone() else {
        panic!("a committed order proves an order commitment");
    };
    tampered.order.push(0);
    assert!(proof
        .proof
        .verify(&proof.header.tx_root, &tampered.encode())
        .is_err());

    // Committing again is refused; burning works once; refunding after a burn is refused.
    let again = BlockTx::System(SystemTx::CommitOrder(
        OrderCommitment::new(id, vec![1]).unwrap(),
    ));
    assert!(matches!(
        chain.check(&again),
        Err(TxRejection::WrongLockOutState { .. })
    ));
    block_ok(&mut chain, std::slice::from_ref(&burn));
    let totals = chain.totals(Asset::MBTC).unwrap();
    assert_eq!(
        (totals.supply, totals.locked, totals.credited, totals.burned),
        (70_000, 0, 100_000, 30_000)
    );
    assert_eq!(
        chain.lockout(&id).unwrap().unwrap().status,
        LockOutStatus::Burned
    );
    let refund = BlockTx::System(SystemTx::SettleLockOut {
        lockout_id: id,
        outcome: LockOutOutcome::Refunded,
    });
    assert!(matches!(
        chain.check(&refund),
        Err(TxRejection::WrongLockOutState {
            status: LockOutStatus::Burned,
            ..
        })
    ));
    assert!(matches!(
        chain.check(&burn),
        Err(TxRejection::WrongLockOutState {
            status: LockOutStatus::Burned,
            ..
        })
    ));
}

#[test]
fn refund_returns_the_locked_amount_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    let alice = user(1);
    let nonce = fund(&mut chain, &alice, 0, Asset::METH, 1, 5_000);
    block_ok(
        &mut chain,
        &[signed(
            &alice,
            nonce,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "0xabc".into(),
                amount: 5_000,
            },
        )],
    );
    let id = lockout_id(&alice.address, nonce);
    assert_eq!(chain.balance(&alice.address, Asset::METH).unwrap(), 0);
    let refund = BlockTx::System(SystemTx::SettleLockOut {
        lockout_id: id,
        outcome: LockOutOutcome::Refunded,
    });
    // Refunded twice in the same block: the second is refused.
    let outcome = chain
        .produce_block(&[refund.clone(), refund.clone()], 1_000_000)
        .unwrap();
    assert_eq!(outcome.results[0], Ok(0));
    assert!(matches!(
        outcome.results[1],
        Err(TxRejection::WrongLockOutState {
            status: LockOutStatus::Refunded,
            ..
        })
    ));
    chain.invariant_check().unwrap();
    assert_eq!(chain.balance(&alice.address, Asset::METH).unwrap(), 5_000);
    let totals = chain.totals(Asset::METH).unwrap();
    assert_eq!((totals.supply, totals.locked, totals.burned), (5_000, 0, 0));
}

#[test]
fn admin_requests_keygen_and_users_get_deposit_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open(dir.path());
    let (admin, alice) = (user(100), user(1));
    block_ok(
        &mut chain,
        &[
            signed(&admin, 0, TxBody::RequestKeygen),
            signed(
                &alice,
                0,
                TxBody::RequestDepositAddress { asset: Asset::MBTC },
            ),
            signed(
                &alice,
                1,
                TxBody::RequestDepositAddress { asset: Asset::MBTC },
            ),
        ],
    );
    let request = chain.keygen_request(0).unwrap().unwrap();
    assert_eq!(request.requester, admin.address);
    assert!(chain.keygen_request(1).unwrap().is_none());
    let addresses = chain.deposit_addresses(&alice.address).unwrap();
    let paths: Vec<String> = addresses.iter().map(|a| a.path.to_string()).collect();
    assert_eq!(paths, vec!["m/2/0", "m/2/1"]);
    assert!(addresses
        .iter()
        .all(|a| a.account == alice.address && a.asset == Asset::MBTC));
    assert!(chain.deposit_addresses(&admin.address).unwrap().is_empty());
}

#[test]
fn restart_keeps_state_blocks_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (user(1), user(2));
    let (root, height, last_hash) = {
        let mut chain = open(dir.path());
        let nonce = fund(&mut chain, &alice, 0, Asset::METH, 1, 900);
        block_ok(
            &mut chain,
            &[signed(
                &alice,
                nonce,
                TxBody::Transfer {
                    to: bob.address,
                    asset: Asset::METH,
                    amount: 300,
                },
            )],
        );
        let h = chain.height();
        (
            chain.state_root(),
            h,
            chain.block(h).unwrap().unwrap().header.hash(),
        )
    };
    let mut chain = open(dir.path());
    assert_eq!(chain.height(), height);
    assert_eq!(chain.state_root(), root);
    assert_eq!(chain.balance(&alice.address, Asset::METH).unwrap(), 600);
    assert_eq!(chain.account(&alice.address).unwrap().nonce, 2);
    assert!(chain.deposit(&[1; 32]).unwrap().is_some());
    chain.invariant_check().unwrap();
    for h in 1..=height {
        let block = chain.block(h).unwrap().unwrap();
        block
            .certificate
            .verify(chain.validator_set(), CHAIN_ID, &block.header)
            .unwrap();
        let previous = if h == 1 {
            genesis().hash()
        } else {
            chain.block(h - 1).unwrap().unwrap().header.hash()
        };
        assert_eq!(block.header.previous_hash, previous);
    }
    // The replayed transfer is refused after the restart too; a new block links to the old tip.
    let replay = signed(
        &alice,
        1,
        TxBody::Transfer {
            to: bob.address,
            asset: Asset::METH,
            amount: 300,
        },
    );
    assert_eq!(
        chain.check(&replay),
        Err(TxRejection::BadNonce {
            expected: 2,
            got: 1
        })
    );
    block_ok(
        &mut chain,
        &[signed(
            &bob,
            0,
            TxBody::Transfer {
                to: alice.address,
                asset: Asset::METH,
                amount: 1,
            },
        )],
    );
    assert_eq!(
        chain
            .block(height + 1)
            .unwrap()
            .unwrap()
            .header
            .previous_hash,
        last_hash
    );
    // Block time never goes backwards.
    assert!(matches!(
        chain.produce_block(&[], 1),
        Err(ChainError::TimeWentBackwards { .. })
    ));
}

#[test]
fn reopening_with_another_genesis_or_validator_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut other = genesis();
    other.chain_id = "another".into();
    assert!(matches!(
        Chain::open(
            dir.path(),
            other,
            SoloConsensus::new(validator_key(200)).unwrap()
        ),
        Err(ChainError::GenesisMismatch)
    ));
    let g: Genesis = genesis();
    assert!(matches!(
        Chain::open(
            dir.path(),
            g,
            SoloConsensus::new(validator_key(201)).unwrap()
        ),
        Err(ChainError::ValidatorSetMismatch)
    ));
}

#[test]
fn tampered_state_is_detected_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let alice = user(1);
    {
        let mut chain = open(dir.path());
        fund(&mut chain, &alice, 0, Asset::METH, 1, 10);
    }
    {
        // Mint 1 wei behind the chain's back, straight into sled.
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("chain").unwrap();
        let key = [b"s/acct/".as_slice(), &alice.address.0].concat();
        let mut v = tree.get(&key).unwrap().unwrap().to_vec();
        let last = v.len() - 17;
        v[last] ^= 1;
        tree.insert(key, v).unwrap();
        db.flush().unwrap();
    }
    let result = Chain::open(
        dir.path(),
        genesis(),
        SoloConsensus::new(validator_key(200)).unwrap(),
    );
    assert!(matches!(
        result,
        Err(ChainError::StateRootMismatch { height: 2 })
    ));
}
