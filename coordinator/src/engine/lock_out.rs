//! The lock-out saga (whitepaper §3.4.3): a requested lock-out (balance already locked by the
//! `RequestLockOut` transaction) is planned, its order committed in a block, signed by the
//! fleet under the chain's authorization, broadcast, and burned once the payment has z
//! confirmations, or refunded. It never ends half-done, and every step is idempotent: a
//! restart of the coordinator at any point resumes from the chain state and the
//! [`Journal`].
//!
//! # Steps (one [`LockOutSaga::step`] call moves every pending lock-out of the asset)
//!
//! * **Locked, no plan** — build a [`WithdrawalPlan`]: sources are the deposit addresses of the
//!   asset (and the change address), change to [`change_path`], reserved = the spends of every
//!   planned order whose lock-out is not settled (and of any whose signing started). The
//!   adapter chooses fee, nonce or inputs. `InsufficientFunds`/`Invalid` → refund (reason kept
//!   in the journal). Otherwise the order (`custody.order.v2`: fleet id, key id, `not_after`,
//!   one input per adapter signing input) and the unsigned transaction are journaled
//!   **before** `CommitOrder` is proposed, so a restart proposes the same order and never a
//!   second one with other spends.
//! * **Locked, planned** — propose the journaled `CommitOrder` again (the last proposal did not
//!   make it into a block).
//! * **Locked for `commit_timeout_blocks`** — refund: no order was committed in time.
//! * **OrderCommitted** — the journaled order must be byte for byte the committed one. Then:
//!   * a raw transaction was journaled → ask the node for its status **before anything
//!     else**: confirmed successfully with ≥ z confirmations → `SettleLockOut Burned`;
//!     unknown to the node → hand the same raw transaction to it again; otherwise wait;
//!   * signing not started: an order past `not_after` → refund; quorum not available
//!     ([`OrderSigner::ready`] says [`SignError::QuorumUnavailable`]) → refund; else
//!     `signing_started` is journaled and flushed **before** the first session;
//!   * each input without a journaled signature is signed with the chain authorization
//!     (`ChainAuthorization` from [`Chain::order_proof`]); each signature is journaled as it
//!     arrives and never requested again;
//!   * all signed → attach, journal the raw transaction and its id, broadcast;
//!   * signatures missing and the order expired → cancel (below).
//! * **Cancelling** — see below.
//!
//! # When refunding is safe, and cancelling
//!
//! Only while **no signing session for the order has been started**. Once one has, a signer
//! that withheld its partial signature (or a coordinator that lost the answer) may still be
//! able to combine a valid signature and spend the order's nonce or outputs later; refunding
//! then would pay the user twice. So after `signing_started` the saga retries signing and
//! broadcasting and never refunds on its own. A lock-out whose signing cannot complete before
//! the order's `not_after` is **cancelled** (whitepaper §3.4.3: a lock-out that cannot be
//! completed returns the asset; DESIGN §6):
//!
//! * **Expired, signing started, signatures missing** — the adapter builds the cancellation
//!   ([`ChainAdapter::build_cancellation`]: Ethereum, the same nonce paying 0 wei to the
//!   sending address with a higher fee; Bitcoin, every input of the payment back to the
//!   change address). It is journaled (`ca/`), then `CommitCancellation` (fee and order) is
//!   proposed; the chain accepts it only for a committed order whose `not_after` is before
//!   the block's time, with a fee no larger than the locked amount. The lock-out becomes
//!   `Cancelling`. A cancellation that costs more than the lock-out, or that the adapter
//!   cannot build, is [`SagaStatus::NeedsAttention`].
//! * **Cancelling** — first [`ChainAdapter::spent_by`]: the payment mined to depth z →
//!   `SettleLockOut Burned` (someone combined its signature after all; the user was paid);
//!   the cancellation mined to depth z → `SettleLockOut Cancelled`, which returns the amount
//!   less the cancellation's committed fee. Otherwise the cancellation is signed under its
//!   own chain authorization (signers check it like an order), journaled, broadcast, and kept
//!   in the node. The decision reads the external chain's content, not transaction ids the
//!   coordinator holds, since a signer may have combined a signature of its own.
//! * A cancellation whose own order expires unsigned (the quorum stayed away for
//!   `order_ttl_secs`) is [`SagaStatus::NeedsAttention`]: a second cancellation is not
//!   planned automatically.
//!
//! A payment mined but reverted (Ethereum receipt status 0) is reported as
//! [`SagaStatus::NeedsAttention`] and left alone.
//!
//! # Nothing twice
//!
//! * A signature in the journal is reused; the signer is only asked for missing inputs.
//! * The raw transaction is journaled before the first broadcast; after a restart the node is
//!   asked for its status before anything else, and only an unknown transaction is sent again
//!   (the very same bytes, so it cannot spend anything twice).
//! * Each planned order's spends stay reserved while its lock-out is pending, so the adapter
//!   never gives the next order the same nonce or output.
//! * Account nonces (Ethereum) must have no gap under a signed payment: an order starts
//!   signing only after every older pending order with a lower nonce of the same account
//!   has ([`SagaStatus::WaitingForOlderOrder`]), and an unsigned order below which a refund
//!   released a nonce that nothing reuses is refunded as well; the next order takes the
//!   released nonce.
//!
//! # Known limits
//!
//! * The Ethereum adapter checks each source's node balance against one order's amount; it
//!   does not subtract what other open orders from the same address will spend. Two open
//!   orders that together exceed an address's balance both get built, and the second
//!   payment fails at the node after signing (status `NeedsAttention`).
//! * One coordinator plans and journals orders; a committed order this coordinator's
//!   journal does not hold (another proposer planned it) is reported, not signed.

use custody_proto::chain::{CancellationCommitment, OrderCommitment, MAX_ORDER_BYTES};
use custody_proto::order::{DigestRule, OrderInput, SigningOrder};
use custody_proto::signer::v1::{Authorization, ChainAuthorization};

use crate::adapter::{
    AdapterError, ChainAdapter, FleetSignature, SighashRule, Spend, SpentBy, TxStatus,
    UnsignedWithdrawal, WithdrawalPlan,
};
use crate::chain::{
    Asset, BlockTx, ChainReader, LockOutOutcome, LockOutRecord, LockOutStatus, OrderProof, SystemTx,
};
use crate::fleet::{FleetKey, SignJob};

use super::addresses::{change_path, deposit_addresses, fleet_address};
use super::{EngineConfig, EngineError, Journal, LockOutEntry, OrderSigner, SignError};

/// Where one lock-out stands after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaStatus {
    /// `CommitOrder` proposed; waiting for it to be in a block.
    CommitProposed,
    /// `SettleLockOut Refunded` proposed, with the reason.
    RefundProposed(String),
    /// Signing started; not every signature is there yet (the last error, if any).
    Signing(Option<String>),
    /// Broadcast; waiting for z confirmations.
    Broadcast {
        /// The external transaction id.
        txid: String,
        /// Its status at the node.
        status: TxStatus,
    },
    /// `SettleLockOut Burned` proposed.
    BurnProposed,
    /// The order expired with signing started: `CommitCancellation` proposed.
    CancellationProposed,
    /// The cancellation is committed and being signed, broadcast or mined (detail).
    Cancelling(String),
    /// The cancellation is final: `SettleLockOut Cancelled` proposed.
    CancelledProposed,
    /// Something an operator must look at (committed order without a journal entry, a
    /// reverted payment, a node that refuses the signed transaction).
    NeedsAttention(String),
    /// Committed, but an older order on the same account nonce sequence has not started
    /// signing (its id): signing waits, so that order can still be refunded without leaving
    /// a nonce gap under a signed payment.
    WaitingForOlderOrder(String),
    /// A transient failure (node unreachable); retried on the next step.
    Retry(String),
}

/// What one step produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// System transactions for the next block.
    pub txs: Vec<BlockTx>,
    /// Every pending lock-out of the asset and where it stands.
    pub statuses: Vec<([u8; 32], SagaStatus)>,
}

/// The saga for the lock-outs of one asset.
pub struct LockOutSaga<'a, A, S> {
    /// The mapped asset.
    pub asset: Asset,
    /// Its external chain.
    pub adapter: &'a A,
    /// Who signs.
    pub signer: &'a S,
    /// The fleet key.
    pub key: &'a FleetKey,
    /// The engine's journal.
    pub journal: &'a Journal,
    /// Depth, timeouts, fleet id.
    pub config: &'a EngineConfig,
}

/// Which external transaction of a lock-out a journal entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The payment to the destination.
    Payment,
    /// Its cancellation.
    Cancellation,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Payment => "payment",
            Part::Cancellation => "cancellation",
        })
    }
}

/// Whether an order's account nonces let it start signing.
enum NonceOrder {
    /// Nothing older stands in the way.
    Free,
    /// An older, unsigned order with a lower nonce of the same account is pending.
    Wait([u8; 32]),
    /// A lower nonce of the same account was released by a refund and no order uses it:
    /// this order's payment could never be mined.
    Gap(String),
}

fn nonces(entry: &LockOutEntry) -> impl Iterator<Item = (String, u64)> + '_ {
    entry.withdrawal.spends.iter().filter_map(|s| match s {
        Spend::Nonce { address, nonce } => Some((address.to_ascii_lowercase(), *nonce)),
        Spend::Outpoint(_) => None,
    })
}

fn digest_rule(rule: SighashRule) -> DigestRule {
    match rule {
        SighashRule::Keccak256 => DigestRule::Keccak256,
        SighashRule::DoubleSha256 => DigestRule::DoubleSha256,
    }
}

fn hex_id(id: &[u8; 32]) -> String {
    hex::encode(id)
}

fn settle(id: [u8; 32], outcome: LockOutOutcome) -> BlockTx {
    BlockTx::System(SystemTx::SettleLockOut {
        lockout_id: id,
        outcome,
    })
}

impl<A: ChainAdapter, S: OrderSigner> LockOutSaga<'_, A, S> {
    /// Moves every pending lock-out of the asset one step. `now_unix_secs` is wall-clock
    /// time (orders' `not_after` is compared with it, as the signers do).
    pub async fn step(
        &self,
        chain: &ChainReader,
        now_unix_secs: u64,
    ) -> Result<StepOutcome, EngineError> {
        let mut pending: Vec<([u8; 32], LockOutRecord)> = chain
            .lockouts()?
            .into_iter()
            .filter(|(_, r)| r.asset == self.asset && r.status.is_pending())
            .collect();
        // Oldest first, so earlier requests get the earlier nonces.
        pending.sort_by_key(|(id, r)| (r.requested_height, *id));
        let mut out = StepOutcome::default();
        for (id, record) in pending {
            // A refund once decided stands: it is proposed again until a block holds it, and
            // this lock-out is never signed meanwhile (the quorum may come back between the
            // decision and the block).
            if let Some(reason) = self.journal.refund_reason(&id)? {
                out.txs.push(settle(id, LockOutOutcome::Refunded));
                out.statuses.push((id, SagaStatus::RefundProposed(reason)));
                continue;
            }
            let (tx, status) = match record.status {
                LockOutStatus::Locked => self.locked(chain, &id, &record, now_unix_secs).await?,
                LockOutStatus::Cancelling => {
                    self.cancelling(chain, &id, &record, now_unix_secs).await?
                }
                _ => self.committed(chain, &id, &record, now_unix_secs).await?,
            };
            tracing::info!(lockout = %hex_id(&id), ?status, "lock-out step");
            out.txs.extend(tx);
            out.statuses.push((id, status));
        }
        Ok(out)
    }

    fn refund(
        &self,
        id: &[u8; 32],
        reason: String,
    ) -> Result<(Option<BlockTx>, SagaStatus), EngineError> {
        tracing::warn!(lockout = %hex_id(id), %reason, "refunding lock-out");
        self.journal.put_refund_reason(id, &reason)?;
        Ok((
            Some(settle(*id, LockOutOutcome::Refunded)),
            SagaStatus::RefundProposed(reason),
        ))
    }

    /// Spends no new order may use: those of every journaled order on this saga's chain whose
    /// lock-out is still pending, or whose signing started (it might still be spent). The
    /// journal is shared by every asset; another chain's spends (an Ethereum nonce in a
    /// Bitcoin plan) are not this adapter's resources and it refuses them.
    fn reserved(&self, chain: &ChainReader) -> Result<Vec<Spend>, EngineError> {
        let mut reserved = Vec::new();
        for (id, entry) in self.journal.lockouts()? {
            if entry.withdrawal.chain != self.adapter.chain() {
                continue;
            }
            let record = chain.lockout(&id)?;
            let pending = record.as_ref().is_some_and(|r| r.status.is_pending());
            let burned = record
                .as_ref()
                .is_some_and(|r| r.status == LockOutStatus::Burned);
            if pending || (entry.signing_started && !burned) {
                reserved.extend(entry.withdrawal.spends.iter().cloned());
            }
        }
        Ok(reserved)
    }

    /// Account-nonce chains (Ethereum): a payment with nonce n is mined only after n − 1.
    /// Signing an order therefore waits until every older pending order with a lower nonce
    /// of the same account has started signing (after which it is never refunded); and an
    /// order below which a nonce was released by a refund (nothing pending, burned or
    /// signing uses it) is refunded too, before it is signed, since its payment would wait
    /// forever. The next order reuses the released nonce.
    fn nonce_order(
        &self,
        chain: &ChainReader,
        id: &[u8; 32],
        entry: &LockOutEntry,
    ) -> Result<NonceOrder, EngineError> {
        let mine: Vec<(String, u64)> = nonces(entry).collect();
        if mine.is_empty() {
            return Ok(NonceOrder::Free);
        }
        let mut used = std::collections::BTreeSet::new();
        let mut released = Vec::new();
        let mut waiting = None;
        for (other, e) in self.journal.lockouts()? {
            if &other == id {
                continue;
            }
            let status = chain.lockout(&other)?.map(|r| r.status);
            let pending = status.is_some_and(LockOutStatus::is_pending);
            let in_use = pending || e.signing_started || status == Some(LockOutStatus::Burned);
            for (address, nonce) in nonces(&e) {
                let below = mine.iter().any(|(a, n)| *a == address && nonce < *n);
                if in_use {
                    if below && pending && !e.signing_started && waiting.is_none() {
                        waiting = Some(other);
                    }
                    used.insert((address, nonce));
                } else if below && status == Some(LockOutStatus::Refunded) {
                    released.push((address, nonce));
                }
            }
        }
        if let Some((address, nonce)) = released.into_iter().find(|k| !used.contains(k)) {
            return Ok(NonceOrder::Gap(format!(
                "nonce {nonce} of {address} below this order's was released by a refund"
            )));
        }
        Ok(waiting.map_or(NonceOrder::Free, NonceOrder::Wait))
    }

    async fn locked(
        &self,
        chain: &ChainReader,
        id: &[u8; 32],
        record: &LockOutRecord,
        now: u64,
    ) -> Result<(Option<BlockTx>, SagaStatus), EngineError> {
        let deadline = record
            .requested_height
            .saturating_add(self.config.commit_timeout_blocks);
        if chain.committed_height()? >= deadline {
            return self.refund(
                id,
                format!(
                    "no order committed within {} blocks of the request",
                    self.config.commit_timeout_blocks
                ),
            );
        }
        if let Some(entry) = self.journal.lockout(id)? {
            return Ok((
                Some(commit_tx(id, entry.order)?),
                SagaStatus::CommitProposed,
            ));
        }
        let mut sources: Vec<_> = deposit_addresses(chain, self.key, self.adapter, self.asset)?
            .into_values()
            .map(|(fa, _)| fa)
            .collect();
        let change = fleet_address(self.key, self.adapter, &change_path(self.asset))?;
        sources.push(change.clone());
        let plan = WithdrawalPlan {
            to: record.to_external.clone(),
            amount: record.amount,
            sources,
            change: Some(change),
            reserved: self.reserved(chain)?,
        };
        let withdrawal = match self.adapter.build_withdrawal(&plan).await {
            Ok(w) => w,
            Err(AdapterError::InsufficientFunds(why)) => {
                return self.refund(id, format!("insufficient funds: {why}"))
            }
            Err(AdapterError::Invalid(why)) => {
                return self.refund(id, format!("cannot be paid out: {why}"))
            }
            Err(e) => return Ok((None, SagaStatus::Retry(e.to_string()))),
        };
        let order = match self.order_of(&withdrawal, now) {
            Ok(o) => o,
            Err(why) => return self.refund(id, format!("no valid order: {why}")),
        };
        let tx = commit_tx(id, order.clone())?;
        // Journaled before it is proposed: a restart proposes this order, not a new one.
        self.journal
            .put_lockout(id, &LockOutEntry::planned(order, withdrawal))?;
        Ok((Some(tx), SagaStatus::CommitProposed))
    }

    async fn committed(
        &self,
        chain: &ChainReader,
        id: &[u8; 32],
        record: &LockOutRecord,
        now: u64,
    ) -> Result<(Option<BlockTx>, SagaStatus), EngineError> {
        let committed = record.order.as_ref().map(|o| o.order.as_slice());
        let mut entry = match journaled(self.journal.lockout(id)?, committed, Part::Payment) {
            Ok(entry) => entry,
            Err(status) => return Ok((None, status)),
        };
        // 1. Already broadcast: the node's view first.
        if let Some(signed) = entry.broadcast.clone() {
            return self.follow_broadcast(id, &mut entry, &signed).await;
        }
        // 2. Before the first session: the last moment a refund is safe.
        if !entry.signing_started {
            match self.nonce_order(chain, id, &entry)? {
                NonceOrder::Free => {}
                NonceOrder::Gap(why) => return self.refund(id, why),
                NonceOrder::Wait(older) => {
                    return Ok((None, SagaStatus::WaitingForOlderOrder(hex_id(&older))))
                }
            }
            let not_after = SigningOrder::decode(&entry.order)
                .map_err(|e| EngineError::CorruptJournal(e.to_string()))?
                .not_after;
            if now >= not_after {
                return self.refund(id, "the order expired before signing started".into());
            }
            match self.signer.ready(self.key).await {
                Ok(()) => {}
                Err(SignError::QuorumUnavailable(why)) => {
                    return self.refund(id, format!("signing quorum unavailable: {why}"))
                }
                Err(SignError::Failed(why)) => return Ok((None, SagaStatus::Retry(why))),
            }
            entry.signing_started = true;
            self.journal.put_lockout(id, &entry)?;
        }
        // 3. Sign what is missing. An order that expired first is cancelled, never refunded.
        if entry.signatures.iter().any(Option::is_none) {
            let order = SigningOrder::decode(&entry.order)
                .map_err(|e| EngineError::CorruptJournal(e.to_string()))?;
            if now >= order.not_after {
                return self.cancel(id, record, &entry, now).await;
            }
            let proof = chain.order_proof(id)?.ok_or_else(|| {
                EngineError::CorruptJournal("committed lock-out without an order proof".into())
            })?;
            if let Err(why) = self
                .sign_missing(id, Part::Payment, &mut entry, proof)
                .await?
            {
                return Ok((None, SagaStatus::Signing(Some(why))));
            }
        }
        // 4. Attach, journal, broadcast.
        match self
            .attach_and_broadcast(id, Part::Payment, &mut entry)
            .await?
        {
            Ok(txid) => Ok((
                None,
                SagaStatus::Broadcast {
                    txid,
                    status: TxStatus::Pending,
                },
            )),
            Err(status) => Ok((None, status)),
        }
    }

    /// Writes `entry` as the journal entry of `part`.
    fn save(&self, id: &[u8; 32], part: Part, entry: &LockOutEntry) -> Result<(), EngineError> {
        match part {
            Part::Payment => self.journal.put_lockout(id, entry),
            Part::Cancellation => self.journal.put_cancellation(id, entry),
        }
    }

    /// Asks the fleet for each input of `entry` without a journaled signature, under the
    /// chain authorization `proof`; each signature is journaled as it arrives and never
    /// requested again. `Err(reason)` when a session failed (counted in the entry).
    async fn sign_missing(
        &self,
        id: &[u8; 32],
        part: Part,
        entry: &mut LockOutEntry,
        proof: OrderProof,
    ) -> Result<Result<(), String>, EngineError> {
        let authorization = Authorization {
            order: Vec::new(),
            signatures: Vec::new(),
            chain: Some(ChainAuthorization {
                header: proof.header.encode(),
                certificate: proof.certificate.encode(),
                order_commitment: proof.leaf,
                inclusion_proof: proof.proof.encode(),
            }),
        };
        for i in 0..entry.signatures.len() {
            if entry.signatures.get(i).is_some_and(Option::is_some) {
                continue;
            }
            let Some(input) = entry.withdrawal.inputs.get(i) else {
                return Err(EngineError::CorruptJournal(
                    "signature slot without input".into(),
                ));
            };
            let job = SignJob {
                key: self.key.clone(),
                path: input.path.clone(),
                authorization: authorization.clone(),
                input_index: u32::try_from(i)
                    .map_err(|_| EngineError::CorruptJournal("input index".into()))?,
                digest: input.digest,
            };
            match self.signer.sign(&job).await {
                Ok(sig) => {
                    if let Some(slot) = entry.signatures.get_mut(i) {
                        *slot = Some(sig);
                    }
                    self.save(id, part, entry)?;
                }
                Err(e) => {
                    entry.failures = entry.failures.saturating_add(1);
                    entry.last_error = Some(e.to_string());
                    self.save(id, part, entry)?;
                    return Ok(Err(e.to_string()));
                }
            }
        }
        Ok(Ok(()))
    }

    /// Attaches every signature, journals the raw transaction **before** the first broadcast,
    /// and hands it to the node: `Ok(txid)` when the node took it, otherwise the status to
    /// report.
    async fn attach_and_broadcast(
        &self,
        id: &[u8; 32],
        part: Part,
        entry: &mut LockOutEntry,
    ) -> Result<Result<String, SagaStatus>, EngineError> {
        let signatures: Vec<FleetSignature> = entry.signatures.iter().flatten().copied().collect();
        let signed = match self
            .adapter
            .attach_signatures(&entry.withdrawal, &signatures)
        {
            Ok(s) => s,
            Err(e) => {
                return Ok(Err(SagaStatus::NeedsAttention(format!(
                    "{part} signatures do not attach: {e}"
                ))))
            }
        };
        entry.broadcast = Some(signed.clone());
        self.save(id, part, entry)?;
        tracing::info!(lockout = %hex_id(id), txid = %signed.txid, %part, "broadcasting");
        if let Err(e) = self.adapter.broadcast(&signed).await {
            entry.last_error = Some(e.to_string());
            self.save(id, part, entry)?;
            return Ok(Err(SagaStatus::Retry(format!("{part} broadcast: {e}"))));
        }
        Ok(Ok(signed.txid))
    }

    /// The payment's order expired with its signing started (a signature may exist
    /// somewhere): plan its cancellation — the adapter's transaction that uses up the same
    /// nonce or outputs and pays nothing out — journal it, and propose `CommitCancellation`.
    /// The cancellation order is valid for `order_ttl_secs` like a payment order. A
    /// cancellation that costs more than the locked amount, or that the adapter cannot build,
    /// is left to an operator.
    async fn cancel(
        &self,
        id: &[u8; 32],
        record: &LockOutRecord,
        payment: &LockOutEntry,
        now: u64,
    ) -> Result<(Option<BlockTx>, SagaStatus), EngineError> {
        if let Some(planned) = self.journal.cancellation(id)? {
            return Ok((
                Some(cancellation_tx(id, planned.withdrawal.fee, planned.order)?),
                SagaStatus::CancellationProposed,
            ));
        }
        let change = fleet_address(self.key, self.adapter, &change_path(self.asset))?;
        let withdrawal = match self
            .adapter
            .build_cancellation(&payment.withdrawal, &change)
            .await
        {
            Ok(w) => w,
            Err(e @ (AdapterError::InsufficientFunds(_) | AdapterError::Invalid(_))) => {
                return Ok((
                    None,
                    SagaStatus::NeedsAttention(format!(
                        "the order expired with signing started and cannot be cancelled: {e}"
                    )),
                ))
            }
            Err(e) => return Ok((None, SagaStatus::Retry(format!("cancellation: {e}")))),
        };
        if withdrawal.fee > record.amount {
            return Ok((
                None,
                SagaStatus::NeedsAttention(format!(
                    "the order expired with signing started; its cancellation would cost {} and the lock-out is {}",
                    withdrawal.fee, record.amount
                )),
            ));
        }
        let order = match self.order_of(&withdrawal, now) {
            Ok(o) => o,
            Err(why) => {
                return Ok((
                    None,
                    SagaStatus::NeedsAttention(format!("no valid cancellation order: {why}")),
                ))
            }
        };
        let tx = cancellation_tx(id, withdrawal.fee, order.clone())?;
        tracing::warn!(
            lockout = %hex_id(id),
            fee = withdrawal.fee,
            signatures = payment.signatures.iter().filter(|s| s.is_some()).count(),
            of = payment.signatures.len(),
            "order expired with signing started: cancelling it"
        );
        // Journaled before it is proposed, as an order is.
        self.journal
            .put_cancellation(id, &LockOutEntry::planned(order, withdrawal))?;
        Ok((Some(tx), SagaStatus::CancellationProposed))
    }

    /// A cancelling lock-out: settle as soon as the chain shows which of payment and
    /// cancellation used up the spends at depth z (`Burned` or `Cancelled`), else move the
    /// cancellation on: follow its broadcast, or sign it and broadcast it.
    async fn cancelling(
        &self,
        chain: &ChainReader,
        id: &[u8; 32],
        record: &LockOutRecord,
        now: u64,
    ) -> Result<(Option<BlockTx>, SagaStatus), EngineError> {
        let orders = (
            record.order.as_ref().map(|o| o.order.as_slice()),
            record.cancellation.as_ref().map(|c| c.order.as_slice()),
        );
        let payment = journaled(self.journal.lockout(id)?, orders.0, Part::Payment);
        let cancel = journaled(self.journal.cancellation(id)?, orders.1, Part::Cancellation);
        let (payment, mut entry) = match (payment, cancel) {
            (Ok(payment), Ok(cancel)) => (payment, cancel),
            (Err(status), _) | (_, Err(status)) => return Ok((None, status)),
        };
        // 1. The chain's view first.
        match self
            .adapter
            .spent_by(&payment.withdrawal, &entry.withdrawal, self.config.depth)
            .await
        {
            Ok(SpentBy::Payment) => {
                tracing::warn!(lockout = %hex_id(id), "the payment was mined over its cancellation: burning");
                return Ok((
                    Some(settle(*id, LockOutOutcome::Burned)),
                    SagaStatus::BurnProposed,
                ));
            }
            Ok(SpentBy::Cancellation) => {
                tracing::info!(lockout = %hex_id(id), "cancellation final: refunding less its fee");
                return Ok((
                    Some(settle(*id, LockOutOutcome::Cancelled)),
                    SagaStatus::CancelledProposed,
                ));
            }
            Ok(SpentBy::Undecided) => {}
            Err(e @ AdapterError::Unexpected(_)) => {
                return Ok((None, SagaStatus::NeedsAttention(e.to_string())))
            }
            Err(e) => return Ok((None, SagaStatus::Retry(format!("spent by: {e}")))),
        }
        // 2. Broadcast already: keep it in the node.
        if let Some(signed) = entry.broadcast.clone() {
            let status = match self.adapter.status(&signed.txid).await {
                Ok(s) => s,
                Err(e) => return Ok((None, SagaStatus::Retry(format!("status: {e}")))),
            };
            if status == TxStatus::Unknown {
                if let Err(e) = self.adapter.broadcast(&signed).await {
                    entry.last_error = Some(e.to_string());
                    self.journal.put_cancellation(id, &entry)?;
                    return Ok((
                        None,
                        SagaStatus::Cancelling(format!(
                            "the node does not take cancellation {} ({e}); the payment may be in its pool",
                            signed.txid
                        )),
                    ));
                }
            }
            return Ok((
                None,
                SagaStatus::Cancelling(format!("cancellation {} is {status:?}", signed.txid)),
            ));
        }
        // 3. Sign it.
        let order = SigningOrder::decode(&entry.order)
            .map_err(|e| EngineError::CorruptJournal(e.to_string()))?;
        if now >= order.not_after && entry.signatures.iter().any(Option::is_none) {
            return Ok((
                None,
                SagaStatus::NeedsAttention(
                    "the cancellation's order expired before it was signed".into(),
                ),
            ));
        }
        if !entry.signing_started {
            entry.signing_started = true;
            self.journal.put_cancellation(id, &entry)?;
        }
        let proof = chain.cancellation_proof(id)?.ok_or_else(|| {
            EngineError::CorruptJournal("cancelling lock-out without a cancellation proof".into())
        })?;
        if let Err(why) = self
            .sign_missing(id, Part::Cancellation, &mut entry, proof)
            .await?
        {
            return Ok((
                None,
                SagaStatus::Cancelling(format!("signing the cancellation: {why}")),
            ));
        }
        // 4. Attach, journal, broadcast.
        match self
            .attach_and_broadcast(id, Part::Cancellation, &mut entry)
            .await?
        {
            Ok(txid) => Ok((
                None,
                SagaStatus::Cancelling(format!("cancellation {txid} broadcast")),
            )),
            Err(status) => Ok((None, status)),
        }
    }

    /// The `custody.order.v2` bytes for `withdrawal`, valid for `order_ttl_secs` from `now`.
    fn order_of(&self, withdrawal: &UnsignedWithdrawal, now: u64) -> Result<Vec<u8>, String> {
        let order = SigningOrder {
            fleet_id: self.config.fleet_id.clone(),
            key_id: self.key.key_id,
            not_after: now.saturating_add(self.config.order_ttl_secs),
            inputs: withdrawal
                .inputs
                .iter()
                .map(|i| OrderInput {
                    path: i.path.clone(),
                    rule: digest_rule(i.rule),
                    message: i.preimage.clone(),
                })
                .collect(),
        };
        match order.encode() {
            Ok(o) if o.len() <= MAX_ORDER_BYTES => Ok(o),
            Ok(_) => Err("the order is too large".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn follow_broadcast(
        &self,
        id: &[u8; 32],
        entry: &mut LockOutEntry,
        signed: &crate::adapter::SignedWithdrawal,
    ) -> Result<(Option<BlockTx>, SagaStatus), EngineError> {
        let status = match self.adapter.status(&signed.txid).await {
            Ok(s) => s,
            Err(e) => return Ok((None, SagaStatus::Retry(format!("status: {e}")))),
        };
        match status {
            TxStatus::Confirmed {
                confirmations,
                success: true,
            } if confirmations >= self.config.depth => {
                tracing::info!(lockout = %hex_id(id), txid = %signed.txid, confirmations, "lock-out payment final: burning");
                Ok((
                    Some(settle(*id, LockOutOutcome::Burned)),
                    SagaStatus::BurnProposed,
                ))
            }
            TxStatus::Confirmed { success: false, .. } => Ok((
                None,
                SagaStatus::NeedsAttention(format!("payment {} was mined but failed", signed.txid)),
            )),
            TxStatus::Unknown => {
                // The same bytes again: the node dropped or never got them.
                if let Err(e) = self.adapter.broadcast(signed).await {
                    entry.last_error = Some(e.to_string());
                    self.journal.put_lockout(id, entry)?;
                    let status = match e {
                        AdapterError::Rejected(why) => SagaStatus::NeedsAttention(format!(
                            "the node refuses the signed payment: {why}"
                        )),
                        other => SagaStatus::Retry(format!("rebroadcast: {other}")),
                    };
                    return Ok((None, status));
                }
                Ok((
                    None,
                    SagaStatus::Broadcast {
                        txid: signed.txid.clone(),
                        status: TxStatus::Pending,
                    },
                ))
            }
            status => Ok((
                None,
                SagaStatus::Broadcast {
                    txid: signed.txid.clone(),
                    status,
                },
            )),
        }
    }
}

/// The journal entry of `part` if it holds exactly the `committed` order bytes; otherwise
/// what an operator must look at (a committed order this coordinator did not plan, or one
/// that differs from what it journaled).
fn journaled(
    entry: Option<LockOutEntry>,
    committed: Option<&[u8]>,
    part: Part,
) -> Result<LockOutEntry, SagaStatus> {
    let Some(entry) = entry else {
        return Err(SagaStatus::NeedsAttention(format!(
            "{part} committed but not in this coordinator's journal"
        )));
    };
    if committed != Some(entry.order.as_slice()) {
        return Err(SagaStatus::NeedsAttention(format!(
            "the committed {part} order is not the journaled one"
        )));
    }
    Ok(entry)
}

fn cancellation_tx(id: &[u8; 32], fee: u128, order: Vec<u8>) -> Result<BlockTx, EngineError> {
    CancellationCommitment::new(*id, fee, order)
        .map(|c| BlockTx::System(SystemTx::CommitCancellation(c)))
        .map_err(|e| EngineError::CorruptJournal(format!("cancellation commitment: {e}")))
}

fn commit_tx(id: &[u8; 32], order: Vec<u8>) -> Result<BlockTx, EngineError> {
    OrderCommitment::new(*id, order)
        .map(|c| BlockTx::System(SystemTx::CommitOrder(c)))
        .map_err(|e| EngineError::CorruptJournal(format!("order commitment: {e}")))
}
