//! The conservation check: mapped value is created only by credited deposits and destroyed
//! only by burned lock-outs.

use super::state::Account;
use super::state::{AssetTotals, LockOutRecord, Overlay, ACCOUNT_PREFIX, LOCKOUT_PREFIX};
use super::{Amount, Asset};

/// A broken conservation law (a bug, never a user's doing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvariantViolation {
    /// Balances plus pending lock-outs differ from the supply.
    #[error("{asset}: balances {balances} + pending lock-outs {pending} != supply {supply}")]
    Unbalanced {
        /// Asset.
        asset: Asset,
        /// Σ balances.
        balances: Amount,
        /// Σ amounts of pending lock-outs.
        pending: Amount,
        /// Recorded supply.
        supply: Amount,
    },
    /// The recorded locked total differs from the pending lock-outs.
    #[error("{asset}: recorded locked {recorded} != pending lock-outs {pending}")]
    LockedMismatch {
        /// Asset.
        asset: Asset,
        /// Recorded total.
        recorded: Amount,
        /// Σ pending lock-outs.
        pending: Amount,
    },
    /// The supply differs from credited minus burned.
    #[error("{asset}: supply {supply} != credited {credited} - burned {burned}")]
    SupplyMismatch {
        /// Asset.
        asset: Asset,
        /// Recorded supply.
        supply: Amount,
        /// Σ credited deposits.
        credited: Amount,
        /// Σ burned lock-outs.
        burned: Amount,
    },
    /// A sum overflowed u128.
    #[error("a sum over the state overflowed")]
    Overflow,
    /// The state could not be read.
    #[error("state unreadable: {0}")]
    Store(String),
}

/// Checks, for every asset: Σ balances + Σ pending lock-outs = supply = credited − burned,
/// and the recorded locked total = Σ pending lock-outs. Reads the whole committed state.
pub(crate) fn check(tree: &sled::Tree) -> Result<(), InvariantViolation> {
    let store = |e: &dyn std::fmt::Display| InvariantViolation::Store(e.to_string());
    let mut balances = [0u128; Asset::ALL.len()];
    for item in tree.scan_prefix(ACCOUNT_PREFIX) {
        let (_, v) = item.map_err(|e| store(&e))?;
        let account = Account::decode(&v).map_err(|e| store(&e))?;
        for (i, asset) in Asset::ALL.into_iter().enumerate() {
            balances[i] = balances[i]
                .checked_add(account.balance(asset))
                .ok_or(InvariantViolation::Overflow)?;
        }
    }
    let mut pending = [0u128; Asset::ALL.len()];
    for item in tree.scan_prefix(LOCKOUT_PREFIX) {
        let (_, v) = item.map_err(|e| store(&e))?;
        let lockout = LockOutRecord::decode(&v).map_err(|e| store(&e))?;
        if lockout.status.is_pending() {
            let i = lockout.asset.index();
            pending[i] = pending[i]
                .checked_add(lockout.amount)
                .ok_or(InvariantViolation::Overflow)?;
        }
    }
    let view = Overlay::new(tree);
    for (i, asset) in Asset::ALL.into_iter().enumerate() {
        let AssetTotals {
            supply,
            locked,
            credited,
            burned,
        } = view.totals(asset).map_err(|e| store(&e))?;
        let held = balances[i]
            .checked_add(pending[i])
            .ok_or(InvariantViolation::Overflow)?;
        if held != supply {
            return Err(InvariantViolation::Unbalanced {
                asset,
                balances: balances[i],
                pending: pending[i],
                supply,
            });
        }
        if locked != pending[i] {
            return Err(InvariantViolation::LockedMismatch {
                asset,
                recorded: locked,
                pending: pending[i],
            });
        }
        if credited.checked_sub(burned) != Some(supply) {
            return Err(InvariantViolation::SupplyMismatch {
                asset,
                supply,
                credited,
                burned,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::chain::state::{account_key, asset_key, lockout_key, LockOutStatus};
    use crate::chain::Address;

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("chain").unwrap()
    }

    fn put_account(t: &sled::Tree, seed: u8, meth: u128) {
        let mut a = Account::default();
        a.balances.insert(Asset::METH, meth);
        t.insert(account_key(&Address([seed; 20])), a.encode())
            .unwrap();
    }

    fn put_totals(t: &sled::Tree, supply: u128, locked: u128, credited: u128, burned: u128) {
        t.insert(
            asset_key(Asset::METH),
            AssetTotals {
                supply,
                locked,
                credited,
                burned,
            }
            .encode(),
        )
        .unwrap();
    }

    fn put_lockout(t: &sled::Tree, id: u8, amount: u128, status: LockOutStatus) {
        let l = LockOutRecord {
            owner: Address([1; 20]),
            asset: Asset::METH,
            amount,
            to_external: "x".into(),
            status,
            requested_height: 1,
            order: None,
            cancellation: None,
        };
        t.insert(lockout_key(&[id; 32]), l.encode()).unwrap();
    }

    #[test]
    fn balanced_state_passes_and_each_broken_law_is_named() {
        let t = tree();
        put_account(&t, 1, 60);
        put_account(&t, 2, 10);
        put_lockout(&t, 1, 30, LockOutStatus::OrderCommitted);
        put_lockout(&t, 2, 25, LockOutStatus::Burned);
        put_lockout(&t, 3, 5, LockOutStatus::Refunded);
        // 60 + 10 + 30 pending = 100 = 125 credited - 25 burned.
        put_totals(&t, 100, 30, 125, 25);
        check(&t).unwrap();

        // One wei minted into a balance without a deposit.
        put_account(&t, 2, 11);
        assert!(matches!(
            check(&t),
            Err(InvariantViolation::Unbalanced {
                balances: 71,
                supply: 100,
                ..
            })
        ));
        put_account(&t, 2, 10);

        // The recorded locked total drifts from the pending lock-outs.
        put_totals(&t, 100, 31, 125, 25);
        assert!(matches!(
            check(&t),
            Err(InvariantViolation::LockedMismatch {
                recorded: 31,
                pending: 30,
                ..
            })
        ));

        // Supply no longer credited minus burned.
        put_totals(&t, 100, 30, 126, 25);
        assert!(matches!(
            check(&t),
            Err(InvariantViolation::SupplyMismatch { .. })
        ));

        // A burned lock-out counted as pending again.
        put_totals(&t, 100, 30, 125, 25);
        put_lockout(&t, 2, 25, LockOutStatus::Locked);
        assert!(matches!(
            check(&t),
            Err(InvariantViolation::Unbalanced { pending: 55, .. })
        ));
    }
}
