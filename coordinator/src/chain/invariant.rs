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
