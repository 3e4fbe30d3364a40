//! Property: random sequences of valid and invalid transactions, in random blocks, are
//! accepted or refused exactly as a simple model says, balances match the model, and the
//! conservation invariant holds after every block.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::*;
use coordinator::chain::{
    lockout_id, Asset, BlockTx, LockOutOutcome, LockOutStatus, SystemTx, TxBody,
};
use custody_proto::chain::{CancellationCommitment, OrderCommitment};
use custody_proto::order::{DigestRule, OrderInput, SigningOrder};
use proptest::prelude::*;

const USERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    RequestAddress {
        u: usize,
        asset: usize,
    },
    Deposit {
        u: usize,
        asset: usize,
        id: u8,
        amount: u128,
    },
    Transfer {
        from: usize,
        to: usize,
        asset: usize,
        amount: u128,
    },
    LockOut {
        u: usize,
        asset: usize,
        amount: u128,
    },
    Commit {
        k: usize,
    },
    Burn {
        k: usize,
    },
    Refund {
        k: usize,
    },
    /// Commit a cancellation of the k-th lock-out's order with this fee.
    Cancel {
        k: usize,
        fee: u128,
    },
    /// Settle the k-th lock-out as cancelled.
    Cancelled {
        k: usize,
    },
    Replay {
        u: usize,
    },
    Forged {
        u: usize,
        amount: u128,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    let a = 0..2usize;
    let amt = 0u128..1_500;
    prop_oneof![
        (u.clone(), a.clone()).prop_map(|(u, asset)| Op::RequestAddress { u, asset }),
        (u.clone(), a.clone(), 0u8..10, amt.clone()).prop_map(|(u, asset, id, amount)| {
            Op::Deposit {
                u,
                asset,
                id,
                amount,
            }
        }),
        (u.clone(), u.clone(), a.clone(), amt.clone()).prop_map(|(from, to, asset, amount)| {
            Op::Transfer {
                from,
                to,
                asset,
                amount,
            }
        }),
        (u.clone(), a, amt.clone()).prop_map(|(u, asset, amount)| Op::LockOut { u, asset, amount }),
        (0usize..8).prop_map(|k| Op::Commit { k }),
        (0usize..8).prop_map(|k| Op::Burn { k }),
        (0usize..8).prop_map(|k| Op::Refund { k }),
        (0usize..8, 0u128..300).prop_map(|(k, fee)| Op::Cancel { k, fee }),
        (0usize..8).prop_map(|k| Op::Cancelled { k }),
        u.clone().prop_map(|u| Op::Replay { u }),
        (u, amt).prop_map(|(u, amount)| Op::Forged { u, amount }),
    ]
}

#[derive(Clone)]
struct ModelLockOut {
    id: [u8; 32],
    owner: usize,
    asset: usize,
    amount: u128,
    status: LockOutStatus,
    /// Its committed order's `not_after` is before every block time.
    expired: bool,
    /// The committed cancellation's fee.
    fee: u128,
}

#[derive(Clone, Default)]
struct Model {
    balances: [[u128; 2]; USERS],
    nonces: [u64; USERS],
    has_address: [[bool; 2]; USERS],
    deposits: BTreeSet<u8>,
    lockouts: Vec<ModelLockOut>,
    credited: [u128; 2],
    burned: [u128; 2],
}

/// The transaction for `op` and whether the model accepts it (updating itself if so).
fn step(m: &mut Model, users: &[User], op: &Op) -> (BlockTx, bool) {
    let asset_of = |i: usize| Asset::ALL[i];
    match *op {
        Op::RequestAddress { u, asset } => {
            let tx = signed(
                &users[u],
                m.nonces[u],
                TxBody::RequestDepositAddress {
                    asset: asset_of(asset),
                },
            );
            m.nonces[u] += 1;
            m.has_address[u][asset] = true;
            (tx, true)
        }
        Op::Deposit {
            u,
            asset,
            id,
            amount,
        } => {
            let tx = credit(asset_of(asset), id, users[u].address, amount);
            let ok = amount > 0 && !m.deposits.contains(&id) && m.has_address[u][asset];
            if ok {
                m.deposits.insert(id);
                m.balances[u][asset] += amount;
                m.credited[asset] += amount;
            }
            (tx, ok)
        }
        Op::Transfer {
            from,
            to,
            asset,
            amount,
        } => {
            let body = TxBody::Transfer {
                to: users[to].address,
                asset: asset_of(asset),
                amount,
            };
            let tx = signed(&users[from], m.nonces[from], body);
            let ok = amount > 0 && m.balances[from][asset] >= amount;
            if ok {
                m.nonces[from] += 1;
                m.balances[from][asset] -= amount;
                m.balances[to][asset] += amount;
            }
            (tx, ok)
        }
        Op::LockOut { u, asset, amount } => {
            let body = TxBody::RequestLockOut {
                asset: asset_of(asset),
                to_external: "ext-address".into(),
                amount,
            };
            let tx = signed(&users[u], m.nonces[u], body);
            let ok = amount > 0 && m.balances[u][asset] >= amount;
            if ok {
                let id = lockout_id(&users[u].address, m.nonces[u]);
                m.lockouts.push(ModelLockOut {
                    id,
                    owner: u,
                    asset,
                    amount,
                    status: LockOutStatus::Locked,
                    expired: false,
                    fee: 0,
                });
                m.nonces[u] += 1;
                m.balances[u][asset] -= amount;
            }
            (tx, ok)
        }
        Op::Commit { k }
        | Op::Burn { k }
        | Op::Refund { k }
        | Op::Cancel { k, .. }
        | Op::Cancelled { k } => {
            // Cancelling steps prefer a lock-out in the state they need, so that whole
            // cancellations happen in most cases; without one they pick any (and are refused).
            let fits = |lo: &ModelLockOut| match *op {
                Op::Cancel { .. } => lo.status == LockOutStatus::OrderCommitted && lo.expired,
                Op::Cancelled { .. } => lo.status == LockOutStatus::Cancelling,
                _ => false,
            };
            let fitting: Vec<usize> = (0..m.lockouts.len())
                .filter(|&i| fits(&m.lockouts[i]))
                .collect();
            let picked = if fitting.is_empty() {
                (!m.lockouts.is_empty()).then(|| k % m.lockouts.len())
            } else {
                Some(fitting[k % fitting.len()])
            };
            let Some(l) = picked else {
                // No lock-out yet: settle one that does not exist.
                let tx = BlockTx::System(SystemTx::SettleLockOut {
                    lockout_id: [k as u8; 32],
                    outcome: LockOutOutcome::Refunded,
                });
                return (tx, false);
            };
            let lo = &mut m.lockouts[l];
            let settle = |outcome| {
                BlockTx::System(SystemTx::SettleLockOut {
                    lockout_id: lo.id,
                    outcome,
                })
            };
            // Even k: an order that has already expired (not_after 0), so it may be cancelled;
            // odd k: one that never expires.
            let expires = k % 2 == 0;
            let (tx, ok) = match *op {
                Op::Commit { .. } => {
                    let order = SigningOrder {
                        fleet_id: "fleet".into(),
                        key_id: [1; 32],
                        not_after: if expires { 0 } else { u64::MAX },
                        inputs: vec![OrderInput {
                            path: vec![],
                            rule: DigestRule::Keccak256,
                            message: vec![k as u8],
                        }],
                    };
                    (
                        BlockTx::System(SystemTx::CommitOrder(
                            OrderCommitment::new(lo.id, order.encode().unwrap()).unwrap(),
                        )),
                        lo.status == LockOutStatus::Locked,
                    )
                }
                Op::Cancel { fee, .. } => (
                    BlockTx::System(SystemTx::CommitCancellation(
                        CancellationCommitment::new(lo.id, fee, vec![k as u8 + 1]).unwrap(),
                    )),
                    lo.status == LockOutStatus::OrderCommitted && lo.expired && fee <= lo.amount,
                ),
                Op::Burn { .. } => (
                    settle(LockOutOutcome::Burned),
                    matches!(
                        lo.status,
                        LockOutStatus::OrderCommitted | LockOutStatus::Cancelling
                    ),
                ),
                Op::Cancelled { .. } => (
                    settle(LockOutOutcome::Cancelled),
                    lo.status == LockOutStatus::Cancelling,
                ),
                _ => (
                    settle(LockOutOutcome::Refunded),
                    matches!(
                        lo.status,
                        LockOutStatus::Locked | LockOutStatus::OrderCommitted
                    ),
                ),
            };
            if ok {
                match *op {
                    Op::Commit { .. } => {
                        lo.status = LockOutStatus::OrderCommitted;
                        lo.expired = expires;
                    }
                    Op::Cancel { fee, .. } => {
                        lo.status = LockOutStatus::Cancelling;
                        lo.fee = fee;
                    }
                    Op::Burn { .. } => {
                        lo.status = LockOutStatus::Burned;
                        m.burned[lo.asset] += lo.amount;
                    }
                    Op::Cancelled { .. } => {
                        lo.status = LockOutStatus::Cancelled;
                        m.burned[lo.asset] += lo.fee;
                        m.balances[lo.owner][lo.asset] += lo.amount - lo.fee;
                    }
                    _ => {
                        lo.status = LockOutStatus::Refunded;
                        m.balances[lo.owner][lo.asset] += lo.amount;
                    }
                }
            }
            (tx, ok)
        }
        Op::Replay { u } => {
            // A nonce already used, or one in the future.
            let nonce = if m.nonces[u] > 0 { m.nonces[u] - 1 } else { 1 };
            (
                signed(
                    &users[u],
                    nonce,
                    TxBody::RequestDepositAddress { asset: Asset::METH },
                ),
                false,
            )
        }
        Op::Forged { u, amount } => {
            let other = &users[(u + 1) % USERS];
            let mut tx = signed(
                other,
                m.nonces[u],
                TxBody::Transfer {
                    to: other.address,
                    asset: Asset::METH,
                    amount,
                },
            );
            if let BlockTx::Signed(s) = &mut tx {
                s.tx.sender = coordinator::chain::account::compressed(users[u].key.verifying_key());
            }
            (tx, false)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_transactions_keep_the_model_and_the_invariant(
        blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut chain = open(dir.path());
        let users: Vec<User> = (1..=USERS as u8).map(user).collect();
        let mut model = Model::default();
        // A funded start, so lock-outs and their settlement happen in most cases.
        let mut prologue = Vec::new();
        for u in 0..USERS {
            for asset in 0..2 {
                prologue.push(Op::RequestAddress { u, asset });
                prologue.push(Op::Deposit { u, asset, id: 100 + (2 * u + asset) as u8, amount: 2_000 });
            }
        }
        for ops in std::iter::once(&prologue).chain(&blocks) {
            let (txs, expected): (Vec<BlockTx>, Vec<bool>) = ops.iter().map(|o| step(&mut model, &users, o)).unzip();
            let root_before = chain.state_root();
            let outcome = chain.produce_block(&txs, 1_000 * (chain.height() + 1)).unwrap();
            let got: Vec<bool> = outcome.results.iter().map(Result::is_ok).collect();
            prop_assert_eq!(&got, &expected, "ops {:?} results {:?}", ops, outcome.results);
            if !expected.iter().any(|ok| *ok) {
                prop_assert_eq!(chain.state_root(), root_before);
            }
            prop_assert!(chain.invariant_check().is_ok(), "{:?}", chain.invariant_check());
            for (u, user) in users.iter().enumerate() {
                let account = chain.account(&user.address).unwrap();
                prop_assert_eq!(account.nonce, model.nonces[u]);
                for (a, asset) in Asset::ALL.into_iter().enumerate() {
                    prop_assert_eq!(account.balance(asset), model.balances[u][a]);
                }
            }
            for (a, asset) in Asset::ALL.into_iter().enumerate() {
                let t = chain.totals(asset).unwrap();
                prop_assert_eq!(t.supply, model.credited[a] - model.burned[a]);
                prop_assert_eq!((t.credited, t.burned), (model.credited[a], model.burned[a]));
            }
        }
    }
}
