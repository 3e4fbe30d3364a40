//! The transaction rules: how each transaction changes the state, or why it is refused.
//! Every replica runs the same rules on the same block and reaches the same state root.

use custody_proto::chain::{CancellationCommitment, OrderCommitment};
use custody_proto::order::SigningOrder;
use mpc_core::hd::DerivationPath;
use sha2::{Digest, Sha256};

use super::state::{
    blame_count_key, blame_key, deposit_address_count_key, deposit_address_key, deposit_key,
    fleet_key_key, keygen_key, lockout_key,
};
use super::state::{
    BlameReport, CommittedCancellation, CommittedOrder, DepositAddress, DepositRecord,
    FleetKeyRecord, KeygenRequest, LockOutRecord, LockOutStatus, Overlay, MAX_FLEET_KEY_HOLDERS,
};
use super::tx::{MAX_BLAME_REASON_BYTES, MAX_DESTINATION_BYTES};
use super::{
    Address, Amount, Asset, BlockTx, LockOutOutcome, SignedTransaction, SystemTx, TxBody,
    TxRejection,
};

/// Tag hashed into a lock-out id.
pub const LOCKOUT_ID_TAG: &[u8] = b"custody.chain.v1/lockout-id";

/// The id of the lock-out requested by `sender` with the transaction of nonce `nonce`:
/// `SHA-256("custody.chain.v1/lockout-id" ‖ address (20) ‖ nonce (u64 BE))`; unique because
/// an account uses each nonce once.
pub fn lockout_id(sender: &Address, nonce: u64) -> [u8; 32] {
    Sha256::new()
        .chain_update(LOCKOUT_ID_TAG)
        .chain_update(sender.0)
        .chain_update(nonce.to_be_bytes())
        .finalize()
        .into()
}

/// Where a transaction is executed.
pub(crate) struct TxContext<'c> {
    pub(crate) chain_id: &'c str,
    pub(crate) height: u64,
    pub(crate) index: u32,
    /// The block's time (header `time_unix_ms`).
    pub(crate) time_unix_ms: u64,
}

/// Applies `tx` to `state`'s pending writes, or refuses it. The caller keeps or drops the
/// pending writes according to the result.
pub(crate) fn apply(
    state: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    tx: &BlockTx,
) -> Result<(), TxRejection> {
    match tx {
        BlockTx::Signed(s) => apply_signed(state, ctx, s),
        BlockTx::System(s) => apply_system(state, ctx, s),
    }
}

fn apply_signed(
    state: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    stx: &SignedTransaction,
) -> Result<(), TxRejection> {
    let tx = &stx.tx;
    if tx.chain_id != ctx.chain_id {
        return Err(TxRejection::WrongChain {
            expected: ctx.chain_id.to_owned(),
            got: tx.chain_id.clone(),
        });
    }
    stx.verify_signature()?;
    let sender = stx.sender();
    let mut account = state.account(&sender)?;
    if tx.nonce != account.nonce {
        return Err(TxRejection::BadNonce {
            expected: account.nonce,
            got: tx.nonce,
        });
    }
    account.nonce = account
        .nonce
        .checked_add(1)
        .ok_or(TxRejection::Exhausted("nonces"))?;
    match &tx.body {
        TxBody::Transfer { to, asset, amount } => {
            debit(&mut account, &sender, *asset, *amount)?;
            state.put_account(&sender, &account);
            // Read the recipient after the sender is written, so a transfer to oneself
            // credits the debited record.
            let mut recipient = state.account(to)?;
            credit(&mut recipient, *asset, *amount)?;
            state.put_account(to, &recipient);
        }
        TxBody::RequestKeygen => {
            if state.admin()? != Some(sender) {
                return Err(TxRejection::Unauthorized {
                    account: sender,
                    action: "request a key generation",
                });
            }
            let id = state.next_sequence("keygen")?;
            state.put(
                keygen_key(id),
                KeygenRequest {
                    requester: sender,
                    height: ctx.height,
                }
                .encode(),
            );
            state.put_account(&sender, &account);
            tracing::info!(id, requester = %sender, "key generation requested");
        }
        TxBody::RequestDepositAddress { asset } => {
            let seq = state.next_sequence("addr")?;
            // Non-hardened BIP32 indices stop at 2^31 - 1.
            let index = u32::try_from(seq)
                .ok()
                .filter(|i| *i < (1 << 31))
                .ok_or(TxRejection::Exhausted("deposit address indices"))?;
            let path = DerivationPath::from_indices(&[u32::from(asset.code()), index])
                .map_err(|_| TxRejection::Exhausted("deposit address indices"))?;
            let count = state.deposit_address_count(&sender, *asset)?;
            let next = count
                .checked_add(1)
                .ok_or(TxRejection::Exhausted("deposit addresses of this account"))?;
            let record = DepositAddress {
                account: sender,
                asset: *asset,
                path,
                height: ctx.height,
            };
            state.put(deposit_address_key(&sender, *asset, count), record.encode());
            state.put(
                deposit_address_count_key(&sender, *asset),
                next.to_be_bytes().to_vec(),
            );
            state.put_account(&sender, &account);
        }
        TxBody::RequestLockOut {
            asset,
            to_external,
            amount,
        } => {
            check_destination(to_external)?;
            debit(&mut account, &sender, *asset, *amount)?;
            let mut totals = state.totals(*asset)?;
            totals.locked = totals
                .locked
                .checked_add(*amount)
                .ok_or(TxRejection::Overflow)?;
            let id = lockout_id(&sender, tx.nonce);
            let record = LockOutRecord {
                owner: sender,
                asset: *asset,
                amount: *amount,
                to_external: to_external.clone(),
                status: LockOutStatus::Locked,
                requested_height: ctx.height,
                order: None,
                cancellation: None,
            };
            state.put(lockout_key(&id), record.encode());
            state.put_totals(*asset, &totals);
            state.put_account(&sender, &account);
            tracing::info!(lockout = %super::rejection::hex32(&id), %asset, amount, "lock-out requested, balance locked");
        }
    }
    Ok(())
}

fn apply_system(
    state: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    tx: &SystemTx,
) -> Result<(), TxRejection> {
    match tx {
        SystemTx::CreditDeposit {
            asset,
            deposit_id,
            account,
            amount,
        } => {
            if *amount == 0 {
                return Err(TxRejection::ZeroAmount);
            }
            if state.deposit(deposit_id)?.is_some() {
                return Err(TxRejection::DuplicateDeposit(*deposit_id));
            }
            if state.deposit_address_count(account, *asset)? == 0 {
                return Err(TxRejection::NoDepositAddress {
                    account: *account,
                    asset: *asset,
                });
            }
            let mut holder = state.account(account)?;
            credit(&mut holder, *asset, *amount)?;
            let mut totals = state.totals(*asset)?;
            totals.supply = totals
                .supply
                .checked_add(*amount)
                .ok_or(TxRejection::Overflow)?;
            totals.credited = totals
                .credited
                .checked_add(*amount)
                .ok_or(TxRejection::Overflow)?;
            let record = DepositRecord {
                asset: *asset,
                account: *account,
                amount: *amount,
                height: ctx.height,
            };
            state.put(deposit_key(deposit_id), record.encode());
            state.put_account(account, &holder);
            state.put_totals(*asset, &totals);
        }
        SystemTx::CommitOrder(OrderCommitment { lockout_id, order }) => {
            let mut record = state
                .lockout(lockout_id)?
                .ok_or(TxRejection::UnknownLockOut(*lockout_id))?;
            if record.status != LockOutStatus::Locked {
                return Err(TxRejection::WrongLockOutState {
                    id: *lockout_id,
                    status: record.status,
                    action: "committing an order",
                });
            }
            record.status = LockOutStatus::OrderCommitted;
            record.order = Some(CommittedOrder {
                order: order.clone(),
                height: ctx.height,
                index: ctx.index,
            });
            state.put(lockout_key(lockout_id), record.encode());
        }
        SystemTx::CommitCancellation(c) => commit_cancellation(state, ctx, c)?,
        SystemTx::RecordFleetKey {
            request_id,
            key_id,
            public_key,
            chain_code,
            threshold,
            holders,
        } => {
            if state.keygen(*request_id)?.is_none() {
                return Err(TxRejection::UnknownKeygenRequest(*request_id));
            }
            if state.fleet_key(*request_id)?.is_some() {
                return Err(TxRejection::FleetKeyAlreadyRecorded(*request_id));
            }
            check_fleet_key(public_key, *threshold, holders)?;
            let record = FleetKeyRecord {
                key_id: *key_id,
                public_key: *public_key,
                chain_code: *chain_code,
                threshold: *threshold,
                holders: holders.clone(),
                height: ctx.height,
            };
            state.put(fleet_key_key(*request_id), record.encode());
            tracing::info!(
                request_id,
                threshold,
                holders = holders.len(),
                "fleet key recorded"
            );
        }
        SystemTx::ReportBlame {
            session_id,
            culprits,
            reason,
            evidence_digest,
        } => {
            if state.blame(session_id)?.is_some() {
                return Err(TxRejection::BlameAlreadyReported(*session_id));
            }
            check_blame(culprits, reason)?;
            for &c in culprits {
                let n = state
                    .blame_count(c)?
                    .checked_add(1)
                    .ok_or(TxRejection::Overflow)?;
                state.put(blame_count_key(c), n.to_be_bytes().to_vec());
            }
            let report = BlameReport {
                culprits: culprits.clone(),
                reason: reason.clone(),
                evidence_digest: *evidence_digest,
                height: ctx.height,
            };
            state.put(blame_key(session_id), report.encode());
            tracing::warn!(session = %hex::encode(session_id), ?culprits, %reason, "blame reported");
        }
        SystemTx::SettleLockOut {
            lockout_id,
            outcome,
        } => {
            let mut record = state
                .lockout(lockout_id)?
                .ok_or(TxRejection::UnknownLockOut(*lockout_id))?;
            // Burned: the payment won (also over a committed cancellation). Refunded: only
            // before any cancellation, since a cancelling lock-out may still be paid out.
            // Cancelled: only a cancelling one, and the refund is less its committed fee.
            let (allowed, action) = match outcome {
                LockOutOutcome::Burned => (
                    matches!(
                        record.status,
                        LockOutStatus::OrderCommitted | LockOutStatus::Cancelling
                    ),
                    "burning",
                ),
                LockOutOutcome::Refunded => (
                    matches!(
                        record.status,
                        LockOutStatus::Locked | LockOutStatus::OrderCommitted
                    ),
                    "refunding",
                ),
                LockOutOutcome::Cancelled => (
                    record.status == LockOutStatus::Cancelling,
                    "settling a cancellation",
                ),
            };
            if !allowed {
                return Err(TxRejection::WrongLockOutState {
                    id: *lockout_id,
                    status: record.status,
                    action,
                });
            }
            let mut totals = state.totals(record.asset)?;
            totals.locked = totals
                .locked
                .checked_sub(record.amount)
                .ok_or(TxRejection::Overflow)?;
            // What leaves the mapped supply, and what goes back to the owner.
            let (destroyed, returned, status) = match outcome {
                LockOutOutcome::Burned => (record.amount, 0, LockOutStatus::Burned),
                LockOutOutcome::Refunded => (0, record.amount, LockOutStatus::Refunded),
                LockOutOutcome::Cancelled => {
                    let fee = record
                        .cancellation
                        .as_ref()
                        .map(|c| c.fee)
                        .ok_or(TxRejection::UnknownLockOut(*lockout_id))?;
                    let back = record
                        .amount
                        .checked_sub(fee)
                        .ok_or(TxRejection::Overflow)?;
                    (fee, back, LockOutStatus::Cancelled)
                }
            };
            totals.supply = totals
                .supply
                .checked_sub(destroyed)
                .ok_or(TxRejection::Overflow)?;
            totals.burned = totals
                .burned
                .checked_add(destroyed)
                .ok_or(TxRejection::Overflow)?;
            if returned > 0 {
                let mut owner = state.account(&record.owner)?;
                credit(&mut owner, record.asset, returned)?;
                state.put_account(&record.owner, &owner);
            }
            record.status = status;
            state.put_totals(record.asset, &totals);
            state.put(lockout_key(lockout_id), record.encode());
        }
    }
    Ok(())
}

/// `CommitCancellation` (whitepaper §3.4.3, a lock-out that cannot be signed is returned;
/// DESIGN §6): allowed for a lock-out whose order is committed and **expired** at this
/// block's time (its `not_after` passed, so no signer signs it any more), once, with a fee
/// no larger than the locked amount (the refund is the amount less the fee).
fn commit_cancellation(
    state: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    c: &CancellationCommitment,
) -> Result<(), TxRejection> {
    let id = c.lockout_id;
    let mut record = state.lockout(&id)?.ok_or(TxRejection::UnknownLockOut(id))?;
    if record.status != LockOutStatus::OrderCommitted {
        return Err(TxRejection::WrongLockOutState {
            id,
            status: record.status,
            action: "committing a cancellation",
        });
    }
    let bad = |reason: String| TxRejection::BadCancellation { id, reason };
    let committed = record
        .order
        .as_ref()
        .ok_or_else(|| bad("no committed order".into()))?;
    let order = SigningOrder::decode(&committed.order)
        .map_err(|e| bad(format!("the committed order does not decode: {e}")))?;
    let now_secs = ctx.time_unix_ms / 1000;
    if order.not_after >= now_secs {
        return Err(bad(format!(
            "the order is valid until {} and the block time is {now_secs}",
            order.not_after
        )));
    }
    if c.fee > record.amount {
        return Err(bad(format!(
            "the fee {} is more than the locked amount {}",
            c.fee, record.amount
        )));
    }
    record.status = LockOutStatus::Cancelling;
    record.cancellation = Some(CommittedCancellation {
        order: c.order.clone(),
        fee: c.fee,
        height: ctx.height,
        index: ctx.index,
    });
    state.put(lockout_key(&id), record.encode());
    tracing::warn!(lockout = %super::rejection::hex32(&id), fee = c.fee, "cancellation committed");
    Ok(())
}

fn debit(
    account: &mut super::Account,
    who: &Address,
    asset: Asset,
    amount: Amount,
) -> Result<(), TxRejection> {
    if amount == 0 {
        return Err(TxRejection::ZeroAmount);
    }
    let balance = account.balance(asset);
    let rest = balance.checked_sub(amount).ok_or(TxRejection::Overdraft {
        account: *who,
        asset,
        balance,
        requested: amount,
    })?;
    account.balances.insert(asset, rest);
    Ok(())
}

fn credit(account: &mut super::Account, asset: Asset, amount: Amount) -> Result<(), TxRejection> {
    let sum = account
        .balance(asset)
        .checked_add(amount)
        .ok_or(TxRejection::Overflow)?;
    account.balances.insert(asset, sum);
    Ok(())
}

/// A fleet key must be a compressed secp256k1 point, with 1 ≤ threshold ≤ holders ≤
/// [`MAX_FLEET_KEY_HOLDERS`] and holder indices strictly increasing (no duplicates, one
/// encoding per set).
fn check_fleet_key(
    public_key: &[u8; 33],
    threshold: u16,
    holders: &[u16],
) -> Result<(), TxRejection> {
    let point = k256::PublicKey::from_sec1_bytes(public_key)
        .map_err(|_| TxRejection::BadFleetKey("the public key is not a secp256k1 point"))?;
    if super::account::compressed(&point.into()) != *public_key {
        return Err(TxRejection::BadFleetKey(
            "the public key is not SEC1 compressed",
        ));
    }
    if holders.is_empty() || holders.len() > MAX_FLEET_KEY_HOLDERS {
        return Err(TxRejection::BadFleetKey("1 to 256 holders are needed"));
    }
    if !holders.windows(2).all(|w| w[0] < w[1]) {
        return Err(TxRejection::BadFleetKey(
            "holders must be strictly increasing",
        ));
    }
    if threshold == 0 || usize::from(threshold) > holders.len() {
        return Err(TxRejection::BadFleetKey(
            "the threshold must be 1..=holders",
        ));
    }
    Ok(())
}

fn check_blame(culprits: &[u16], reason: &str) -> Result<(), TxRejection> {
    if culprits.is_empty() || culprits.len() > MAX_FLEET_KEY_HOLDERS {
        return Err(TxRejection::BadBlameReport("1 to 256 culprits are needed"));
    }
    if culprits[0] == 0 || !culprits.windows(2).all(|w| w[0] < w[1]) {
        return Err(TxRejection::BadBlameReport(
            "culprits must be signer indices ≥ 1, strictly increasing",
        ));
    }
    if reason.is_empty() || reason.len() > MAX_BLAME_REASON_BYTES {
        return Err(TxRejection::BadBlameReport(
            "the reason must be 1..=256 bytes",
        ));
    }
    Ok(())
}

fn check_destination(to: &str) -> Result<(), TxRejection> {
    let ok = !to.is_empty()
        && to.len() <= MAX_DESTINATION_BYTES
        && to.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(TxRejection::BadDestination {
            max: MAX_DESTINATION_BYTES,
        })
    }
}
