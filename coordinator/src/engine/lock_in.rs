//! The deposit watcher (whitepaper §3.4.2): finds payments to the deposit addresses the chain
//! issued and proposes a `CreditDeposit` for each one with at least z confirmations that the
//! chain has not credited.
//!
//! * **Window.** Each scan covers `frontier − margin ..= tip` (margin ≥ z, at most
//!   `max_scan_blocks`), where the frontier is the lowest external height that may still hold
//!   a deposit not yet final or not yet credited. Blocks re-organised below the frontier are
//!   seen again through the margin.
//! * **Depth.** A deposit with fewer than z confirmations is not proposed; it is found again
//!   by a later scan (its height stays at or above the frontier). One re-organised out before
//!   z is simply no longer reported by the adapter, and never credited.
//! * **Once.** The credit's deposit id is `SHA-256(adapter deposit id)` (Ethereum `txhash`,
//!   Bitcoin `txid:vout`); a deposit the chain already credited is not proposed again, and the
//!   chain refuses a second credit of one id anyway (`DuplicateDeposit`). A proposal the
//!   block producer drops is proposed again: the frontier stays at or below its height
//!   until the chain holds it.
//! * **Change is not a deposit.** Only the chain's deposit addresses are watched; change goes
//!   to a path of another depth ([`super::addresses::change_path`]).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::adapter::ChainAdapter;
use crate::chain::{Asset, BlockTx, ChainReader, SystemTx};
use crate::fleet::FleetKey;

use super::addresses::deposit_addresses;
use super::{EngineConfig, EngineError, Journal};

/// The chain's deposit id for an adapter's deposit id.
pub fn deposit_id(adapter_deposit_id: &str) -> [u8; 32] {
    Sha256::digest(adapter_deposit_id.as_bytes()).into()
}

/// Watches the deposits of one asset on its adapter's chain.
pub struct DepositWatcher<'a, A> {
    /// The mapped asset.
    pub asset: Asset,
    /// Its external chain.
    pub adapter: &'a A,
    /// The fleet key deposit addresses derive from.
    pub key: &'a FleetKey,
    /// Where the frontier is kept.
    pub journal: &'a Journal,
    /// Depth, margins.
    pub config: &'a EngineConfig,
}

impl<A: ChainAdapter> DepositWatcher<'_, A> {
    /// One scan: the `CreditDeposit` transactions to propose now (possibly none). The
    /// frontier advances in the journal.
    pub async fn scan(&self, chain: &ChainReader) -> Result<Vec<BlockTx>, EngineError> {
        let z = self.config.depth.max(1);
        let watched = deposit_addresses(chain, self.key, self.adapter, self.asset)?;
        let tip = self.adapter.tip_height().await?;
        let frontier = self
            .journal
            .frontier(self.asset)?
            .unwrap_or(self.config.start_height);
        let from = frontier
            .saturating_sub(self.config.margin())
            .max(self.config.start_height);
        if from > tip {
            return Ok(Vec::new());
        }
        let to = tip.min(from.saturating_add(self.config.max_scan_blocks.max(1) - 1));
        // Heights ≥ tip − z + 2 are not final yet; everything up to `to` is scanned.
        let mut next_frontier = to
            .saturating_add(1)
            .min(tip.saturating_add(2).saturating_sub(z));
        let mut out = Vec::new();
        if !watched.is_empty() {
            let addresses: Vec<_> = watched.values().map(|(fa, _)| fa.clone()).collect();
            let mut proposed = BTreeSet::new();
            for d in self.adapter.deposits(&addresses, from, to).await? {
                let Some((_, account)) = watched.get(&d.address) else {
                    tracing::warn!(address = %d.address, "adapter reported a deposit to an unwatched address");
                    continue;
                };
                if d.amount == 0 || d.confirmations < z {
                    continue;
                }
                let id = deposit_id(&d.deposit_id);
                if chain.deposit(&id)?.is_some() || !proposed.insert(id) {
                    continue;
                }
                next_frontier = next_frontier.min(d.height);
                tracing::info!(asset = %self.asset, deposit = %d.deposit_id, amount = d.amount, confirmations = d.confirmations, "deposit final: proposing credit");
                out.push(BlockTx::System(SystemTx::CreditDeposit {
                    asset: self.asset,
                    deposit_id: id,
                    account: *account,
                    amount: d.amount,
                }));
            }
        }
        self.journal
            .put_frontier(self.asset, next_frontier.max(self.config.start_height))?;
        Ok(out)
    }
}
