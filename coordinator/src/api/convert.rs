//! Chain types to and from `custody.coordinator.v1` messages, and rejections to statuses.

use custody_proto::coordinator::v1 as pb;
use tonic::Status;

use crate::chain::{
    Account, Address, Amount, Asset, Block, BlockTx, DepositAddress, DepositRecord, LockOutOutcome,
    LockOutRecord, LockOutStatus, RejectionClass, SystemTx, TxBody, TxRejection,
};
use crate::node::{tx_hash, SubmitError};

/// The wire code of an asset.
pub fn asset_to_pb(asset: Asset) -> i32 {
    match asset {
        Asset::METH => pb::Asset::Meth as i32,
        Asset::MBTC => pb::Asset::Mbtc as i32,
    }
}

/// An amount as a decimal string.
pub fn amount(a: Amount) -> String {
    a.to_string()
}

/// A fixed-length byte field, or INVALID_ARGUMENT naming it.
pub fn fixed<const N: usize>(bytes: &[u8], field: &str) -> Result<[u8; N], Status> {
    <[u8; N]>::try_from(bytes).map_err(|_| {
        Status::invalid_argument(format!("{field} must be {N} bytes, got {}", bytes.len()))
    })
}

/// A 20-byte account address field.
pub fn address(bytes: &[u8], field: &str) -> Result<Address, Status> {
    fixed::<20>(bytes, field).map(Address)
}

/// The status for a rejected transaction (DESIGN §7), with the reason as the message.
pub fn rejection_status(reason: &TxRejection) -> Status {
    let message = format!("transaction refused: {reason}");
    match reason.class() {
        RejectionClass::InvalidArgument => Status::invalid_argument(message),
        RejectionClass::FailedPrecondition => Status::failed_precondition(message),
        RejectionClass::PermissionDenied => Status::permission_denied(message),
        RejectionClass::Internal => Status::internal(message),
    }
}

/// The status for a failed submission.
pub fn submit_status(e: &SubmitError) -> Status {
    match e {
        SubmitError::Rejected(r) => rejection_status(r),
        SubmitError::Mempool(m @ crate::node::MempoolError::Full(_)) => {
            Status::resource_exhausted(m.to_string())
        }
        SubmitError::Mempool(m) => Status::failed_precondition(m.to_string()),
        SubmitError::TooLong(_) => Status::invalid_argument(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

/// An account message.
pub fn account(address: &Address, a: &Account) -> pb::Account {
    pb::Account {
        address: address.0.to_vec(),
        next_nonce: a.nonce,
        balances: Asset::ALL
            .into_iter()
            .map(|asset| pb::Balance {
                asset: asset_to_pb(asset),
                amount: amount(a.balance(asset)),
            })
            .collect(),
    }
}

/// A deposit address message.
pub fn deposit_address(d: &DepositAddress, external: String) -> pb::DepositAddress {
    pb::DepositAddress {
        asset: asset_to_pb(d.asset),
        path: d.path.indices().iter().map(|i| i.get()).collect(),
        height: d.height,
        address: external,
    }
}

/// A lock-in message.
pub fn lock_in(id: &[u8; 32], d: &DepositRecord) -> pb::LockIn {
    pb::LockIn {
        deposit_id: id.to_vec(),
        asset: asset_to_pb(d.asset),
        account: d.account.0.to_vec(),
        amount: amount(d.amount),
        height: d.height,
    }
}

/// The wire stage of a lock-out status.
pub fn stage(s: LockOutStatus) -> i32 {
    (match s {
        LockOutStatus::Locked => pb::LockOutStage::Locked,
        LockOutStatus::OrderCommitted => pb::LockOutStage::OrderCommitted,
        LockOutStatus::Burned => pb::LockOutStage::Burned,
        LockOutStatus::Refunded => pb::LockOutStage::Refunded,
        LockOutStatus::Cancelling => pb::LockOutStage::Cancelling,
        LockOutStatus::Cancelled => pb::LockOutStage::Cancelled,
    }) as i32
}

/// A lock-out message.
pub fn lock_out(id: &[u8; 32], l: &LockOutRecord) -> pb::LockOut {
    pb::LockOut {
        lock_out_id: id.to_vec(),
        owner: l.owner.0.to_vec(),
        asset: asset_to_pb(l.asset),
        amount: amount(l.amount),
        destination: l.to_external.clone(),
        stage: stage(l.status),
        requested_height: l.requested_height,
        order: l
            .order
            .as_ref()
            .map(|o| o.order.clone())
            .unwrap_or_default(),
        order_height: l.order.as_ref().map(|o| o.height).unwrap_or(0),
        order_index: l.order.as_ref().map(|o| o.index).unwrap_or(0),
        cancellation: l
            .cancellation
            .as_ref()
            .map(|c| c.order.clone())
            .unwrap_or_default(),
        cancellation_fee: amount(l.cancellation.as_ref().map_or(0, |c| c.fee)),
        cancellation_height: l.cancellation.as_ref().map_or(0, |c| c.height),
    }
}

/// A block message.
pub fn block(b: &Block) -> pb::Block {
    pb::Block {
        height: b.header.height,
        hash: b.header.hash().to_vec(),
        header: b.header.encode(),
        certificate: b.certificate.encode(),
        transactions: b.transactions.clone(),
        time_unix_ms: b.header.time_unix_ms,
    }
}

/// What each transaction of a committed block did.
pub fn block_events(b: &Block) -> pb::BlockEvents {
    use pb::transaction_event::Kind;
    let transactions = b
        .transactions
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let mut sender = Vec::new();
            let kind = match BlockTx::decode(bytes) {
                Ok(BlockTx::Signed(s)) => {
                    let from = s.sender();
                    sender = from.0.to_vec();
                    Some(match s.tx.body {
                        TxBody::Transfer {
                            to,
                            asset,
                            amount: a,
                        } => Kind::Transfer(pb::Transfer {
                            to: to.0.to_vec(),
                            asset: asset_to_pb(asset),
                            amount: amount(a),
                        }),
                        TxBody::RequestKeygen => Kind::KeygenRequested(pb::KeygenRequested {}),
                        TxBody::RequestDepositAddress { asset } => {
                            Kind::DepositAddressRequested(asset_to_pb(asset))
                        }
                        TxBody::RequestLockOut {
                            asset,
                            to_external,
                            amount: a,
                        } => Kind::LockOutRequested(pb::LockOutRequested {
                            lock_out_id: crate::chain::lockout_id(&from, s.tx.nonce).to_vec(),
                            asset: asset_to_pb(asset),
                            amount: amount(a),
                            destination: to_external,
                        }),
                    })
                }
                Ok(BlockTx::System(SystemTx::CreditDeposit {
                    asset,
                    deposit_id,
                    account,
                    amount: a,
                })) => Some(Kind::DepositCredited(pb::LockIn {
                    deposit_id: deposit_id.to_vec(),
                    asset: asset_to_pb(asset),
                    account: account.0.to_vec(),
                    amount: amount(a),
                    height: b.header.height,
                })),
                Ok(BlockTx::System(SystemTx::CommitOrder(c))) => {
                    Some(Kind::OrderCommitted(pb::OrderCommitted {
                        lock_out_id: c.lockout_id.to_vec(),
                        order: c.order,
                    }))
                }
                Ok(BlockTx::System(SystemTx::CommitCancellation(c))) => {
                    Some(Kind::CancellationCommitted(pb::CancellationCommitted {
                        lock_out_id: c.lockout_id.to_vec(),
                        order: c.order,
                        fee: amount(c.fee),
                    }))
                }
                Ok(BlockTx::System(SystemTx::SettleLockOut {
                    lockout_id,
                    outcome,
                })) => Some(Kind::LockOutSettled(pb::LockOutSettled {
                    lock_out_id: lockout_id.to_vec(),
                    stage: stage(match outcome {
                        LockOutOutcome::Burned => LockOutStatus::Burned,
                        LockOutOutcome::Refunded => LockOutStatus::Refunded,
                        LockOutOutcome::Cancelled => LockOutStatus::Cancelled,
                    }),
                })),
                Ok(BlockTx::System(SystemTx::RecordFleetKey {
                    request_id,
                    key_id,
                    public_key,
                    chain_code,
                    threshold,
                    holders,
                })) => Some(Kind::FleetKeyRecorded(pb::FleetKey {
                    request_id,
                    key_id: key_id.to_vec(),
                    public_key: public_key.to_vec(),
                    chain_code: chain_code.to_vec(),
                    threshold: u32::from(threshold),
                    holders: holders.into_iter().map(u32::from).collect(),
                    height: b.header.height,
                })),
                Ok(BlockTx::System(SystemTx::ReportBlame {
                    session_id,
                    culprits,
                    reason,
                    evidence_digest,
                })) => Some(Kind::SignerBlamed(pb::SignerBlamed {
                    session_id: session_id.to_vec(),
                    culprits: culprits.into_iter().map(u32::from).collect(),
                    reason,
                    evidence_digest: evidence_digest.to_vec(),
                })),
                // Kinds this version does not describe (later system transactions).
                #[allow(unreachable_patterns)]
                _ => Some(Kind::Other(bytes.clone())),
            };
            pb::TransactionEvent {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                transaction_hash: tx_hash(bytes).to_vec(),
                sender,
                kind,
            }
        })
        .collect();
    pb::BlockEvents {
        height: b.header.height,
        hash: b.header.hash().to_vec(),
        time_unix_ms: b.header.time_unix_ms,
        transactions,
    }
}
