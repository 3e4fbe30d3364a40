//! The public gRPC API end to end: a real chain in sled, the node loop, the mTLS server on
//! loopback, real tonic clients with fleet certificates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_support;

use std::error::Error as _;
use std::time::Duration;

use api_support::*;
use coordinator::chain::tx::SIGNED_TRANSACTION_TAG;
use coordinator::chain::{lockout_id, Asset, BlockTx, SystemTx, TxBody};
use custody_proto::chain::codec::Writer;
use custody_proto::coordinator::v1 as pb;
use custody_proto::coordinator::v1::coordinator_client::CoordinatorClient;
use custody_proto::identity::CallerIdentity;
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Code;

const ETH: u128 = 1_000_000_000_000_000_000;

async fn submit(
    client: &mut CoordinatorClient<tonic::transport::Channel>,
    tx: Vec<u8>,
    wait: bool,
) -> Result<pb::SubmitTransactionResponse, tonic::Status> {
    client
        .submit_transaction(pb::SubmitTransactionRequest {
            transaction: tx,
            wait,
        })
        .await
        .map(|r| r.into_inner())
}

async fn account(
    client: &mut CoordinatorClient<tonic::transport::Channel>,
    u: &User,
) -> pb::Account {
    client
        .get_account(pb::GetAccountRequest {
            address: u.address.0.to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn balance(a: &pb::Account, asset: pb::Asset) -> String {
    a.balances
        .iter()
        .find(|b| b.asset == asset as i32)
        .unwrap()
        .amount
        .clone()
}

/// The admin gets a mETH deposit address through the API and 1000 mETH credited by an
/// in-process system transaction (what the lock-in watcher will do).
async fn fund_admin(h: &Harness, client: &mut CoordinatorClient<tonic::transport::Channel>) {
    let r = submit(
        client,
        signed(
            &h.admin,
            0,
            TxBody::RequestDepositAddress { asset: Asset::METH },
        ),
        true,
    )
    .await
    .unwrap();
    assert!(r.height >= 1);
    let included = h
        .node
        .submit_system_and_wait(SystemTx::CreditDeposit {
            asset: Asset::METH,
            deposit_id: [7; 32],
            account: h.admin.address,
            amount: 1000 * ETH,
        })
        .await
        .unwrap();
    assert!(included.height > r.height);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_lock_out_and_every_query() {
    let h = Harness::start().await;
    let mut client = h.client();
    fund_admin(&h, &mut client).await;
    let bob = user(2);

    let admin = account(&mut client, &h.admin).await;
    assert_eq!(admin.next_nonce, 1);
    assert_eq!(balance(&admin, pb::Asset::Meth), (1000 * ETH).to_string());
    assert_eq!(balance(&admin, pb::Asset::Mbtc), "0");

    // A transfer with wait returns the height of the block that holds it.
    let r = submit(
        &mut client,
        signed(
            &h.admin,
            1,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::METH,
                amount: 250 * ETH,
            },
        ),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.height, h.node.height().unwrap());
    assert!(r.lock_out_id.is_empty());
    let block = client
        .get_block(pb::GetBlockRequest { height: r.height })
        .await
        .unwrap()
        .into_inner();
    let leaf = &block.transactions[r.index as usize];
    assert_eq!(
        coordinator::node::tx_hash(leaf).to_vec(),
        r.transaction_hash
    );
    assert_eq!(
        balance(&account(&mut client, &bob).await, pb::Asset::Meth),
        (250 * ETH).to_string()
    );
    assert_eq!(
        balance(&account(&mut client, &h.admin).await, pb::Asset::Meth),
        (750 * ETH).to_string()
    );

    // The inclusion proof verifies against the header.
    let p = client
        .get_transaction_proof(pb::GetTransactionProofRequest {
            height: r.height,
            index: r.index,
        })
        .await
        .unwrap()
        .into_inner();
    let header = custody_proto::chain::BlockHeader::decode(&p.header).unwrap();
    custody_proto::chain::InclusionProof::decode(&p.proof)
        .unwrap()
        .verify(&header.tx_root, &p.transaction)
        .unwrap();

    // A lock-out: its id comes back and GetLockOut reports LOCKED.
    let r = submit(
        &mut client,
        signed(
            &bob,
            0,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "0x00000000000000000000000000000000000000aa".into(),
                amount: 50 * ETH,
            },
        ),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.lock_out_id, lockout_id(&bob.address, 0).to_vec());
    let l = client
        .get_lock_out(pb::GetLockOutRequest {
            lock_out_id: r.lock_out_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.stage, pb::LockOutStage::Locked as i32);
    assert_eq!(l.amount, (50 * ETH).to_string());
    assert_eq!(l.owner, bob.address.0.to_vec());
    // No order yet: NOT_FOUND.
    let e = client
        .get_order_proof(pb::GetOrderProofRequest {
            lock_out_id: r.lock_out_id.clone(),
            cancellation: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Lock-in status, deposit addresses, status totals.
    let lock_in = client
        .get_lock_in(pb::GetLockInRequest {
            deposit_id: vec![7; 32],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lock_in.amount, (1000 * ETH).to_string());
    assert_eq!(lock_in.account, h.admin.address.0.to_vec());
    let addrs = client
        .get_deposit_addresses(pb::GetDepositAddressesRequest {
            account: h.admin.address.0.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(addrs.addresses.len(), 1);
    assert_eq!(addrs.addresses[0].asset, pb::Asset::Meth as i32);
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.chain_id, CHAIN_ID);
    assert_eq!(status.height, h.node.height().unwrap());
    let meth = &status.totals[0];
    assert_eq!(meth.supply, (1000 * ETH).to_string());
    assert_eq!(meth.locked, (50 * ETH).to_string());
    h.node.with_chain(|c| c.invariant_check().unwrap()).unwrap();

    // Wrong lengths and unknown ids.
    for (e, code) in [
        (
            client
                .get_account(pb::GetAccountRequest {
                    address: vec![1; 19],
                })
                .await
                .unwrap_err(),
            Code::InvalidArgument,
        ),
        (
            client
                .get_lock_out(pb::GetLockOutRequest {
                    lock_out_id: vec![9; 32],
                })
                .await
                .unwrap_err(),
            Code::NotFound,
        ),
        (
            client
                .get_block(pb::GetBlockRequest { height: 999 })
                .await
                .unwrap_err(),
            Code::NotFound,
        ),
    ] {
        assert_eq!(e.code(), code, "{e:?}");
    }
}

/// (state root, height, admin account, bob account) as the API reports them.
async fn snapshot(
    client: &mut CoordinatorClient<tonic::transport::Channel>,
    users: &[&User],
) -> (Vec<u8>, u64, Vec<pb::Account>) {
    let s = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut accounts = Vec::new();
    for u in users {
        accounts.push(account(client, u).await);
    }
    (s.state_root, s.height, accounts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_transactions_are_refused_with_code_and_reason_and_change_nothing() {
    let h = Harness::start().await;
    let mut client = h.client();
    fund_admin(&h, &mut client).await;
    let bob = user(2);
    let transfer = |amount| TxBody::Transfer {
        to: bob.address,
        asset: Asset::METH,
        amount,
    };
    let before = snapshot(&mut client, &[&h.admin, &bob]).await;

    // Bad signature: signed by bob's key for the admin's sender key.
    let mut forged =
        coordinator::chain::SignedTransaction::decode(&signed(&h.admin, 1, transfer(1))).unwrap();
    forged.signature = coordinator::chain::SignedTransaction::decode(&signed(&bob, 1, transfer(1)))
        .unwrap()
        .signature;
    // Unknown asset code 9 in an otherwise well-formed transfer: refused while decoding.
    let mut body = coordinator::chain::SignedTransaction::decode(&signed(&h.admin, 1, transfer(1)))
        .unwrap()
        .tx
        .signing_bytes();
    let at = body.len() - 17;
    assert_eq!(body[at], Asset::METH.code());
    body[at] = 9;
    let mut w = Writer::tagged(SIGNED_TRANSACTION_TAG);
    w.var(&body);
    w.fixed(&[1; 64]);
    let unknown_asset = w.finish();
    // A system transaction from outside.
    let system = BlockTx::System(SystemTx::CreditDeposit {
        asset: Asset::METH,
        deposit_id: [8; 32],
        account: bob.address,
        amount: ETH,
    })
    .encode();

    let cases: Vec<(&str, Vec<u8>, Code, &str)> = vec![
        (
            "bad signature",
            forged.encode(),
            Code::InvalidArgument,
            "signature does not verify",
        ),
        (
            "overdraft",
            signed(&h.admin, 1, transfer(1001 * ETH)),
            Code::FailedPrecondition,
            "overdraft",
        ),
        (
            "replayed nonce",
            signed(
                &h.admin,
                0,
                TxBody::RequestDepositAddress { asset: Asset::METH },
            ),
            Code::FailedPrecondition,
            "bad nonce: the account's next nonce is 1, the transaction has 0",
        ),
        (
            "unknown asset",
            unknown_asset,
            Code::InvalidArgument,
            "unknown asset code 9",
        ),
        (
            "system transaction",
            system,
            Code::InvalidArgument,
            "malformed transaction",
        ),
        (
            "garbage",
            vec![0xff; 40],
            Code::InvalidArgument,
            "malformed transaction",
        ),
        (
            "keygen by a non-admin",
            signed(&bob, 0, TxBody::RequestKeygen),
            Code::PermissionDenied,
            "not authorized",
        ),
        (
            "zero amount",
            signed(&h.admin, 1, transfer(0)),
            Code::InvalidArgument,
            "greater than zero",
        ),
    ];
    for (name, tx, code, reason) in cases {
        for wait in [false, true] {
            let e = submit(&mut client, tx.clone(), wait).await.unwrap_err();
            assert_eq!(e.code(), code, "{name}: {e:?}");
            assert!(e.message().contains(reason), "{name}: {:?}", e.message());
        }
    }
    // Too long for a transaction, and too long for a request.
    let e = submit(&mut client, vec![0; 5000], false).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("at most"), "{e:?}");
    let e = submit(&mut client, vec![0; 100 * 1024], false)
        .await
        .unwrap_err();
    // tonic refuses to decode a request above the service's limit.
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert_eq!(h.node.mempool_len().unwrap(), 0);
    // Give the producer a few intervals: nothing to include, so no block either.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(snapshot(&mut client, &[&h.admin, &bob]).await, before);

    // A duplicate of a waiting transaction, and a second one that the block refuses: the
    // first spends 600 of 1000, the second (nonce 2, accepted behind it) asks for 600 more.
    let first = signed(&h.admin, 1, transfer(600 * ETH));
    let second = signed(&h.admin, 2, transfer(600 * ETH));
    let gap = signed(&h.admin, 4, transfer(ETH));
    // `first` is in the mempool (or already in a block) when `second` arrives; `second` is
    // either queued behind it and refused by the block, or refused on entry once `first` is
    // committed: an overdraft either way.
    let accepted = submit(&mut client, first.clone(), false).await.unwrap();
    assert_eq!(accepted.height, 0);
    let mut c2 = client.clone();
    let second = tokio::spawn(async move { submit(&mut c2, second, true).await });
    // The duplicate meets the original in the mempool, or its block (a replayed nonce).
    let dup = submit(&mut client, first.clone(), false).await.unwrap_err();
    assert_eq!(dup.code(), Code::FailedPrecondition, "{dup:?}");
    let gap = submit(&mut client, gap, false).await.unwrap_err();
    assert_eq!(gap.code(), Code::FailedPrecondition, "{gap:?}");
    assert!(gap.message().contains("bad nonce"), "{gap:?}");
    let b = second.await.unwrap().unwrap_err();
    assert_eq!(b.code(), Code::FailedPrecondition, "{b:?}");
    assert!(b.message().contains("overdraft"), "{:?}", b.message());
    assert!(h.node.height().unwrap() > before.1);
    let admin = account(&mut client, &h.admin).await;
    assert_eq!(balance(&admin, pb::Asset::Meth), (400 * ETH).to_string());
    assert_eq!(admin.next_nonce, 2);
    h.node.with_chain(|c| c.invariant_check().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_replays_then_follows() {
    let h = Harness::start().await;
    let mut client = h.client();
    fund_admin(&h, &mut client).await;
    let top = h.node.height().unwrap();
    let mut stream = client
        .stream_events(pb::StreamEventsRequest { from_height: 1 })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < top as usize {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(ev);
    }
    assert_eq!(
        seen.iter().map(|e| e.height).collect::<Vec<_>>(),
        (1..=top).collect::<Vec<_>>()
    );
    use pb::transaction_event::Kind;
    assert!(seen.iter().flat_map(|e| &e.transactions).any(|t| matches!(
        t.kind,
        Some(Kind::DepositAddressRequested(a)) if a == pb::Asset::Meth as i32
    )));
    assert!(seen.iter().flat_map(|e| &e.transactions).any(|t| matches!(
        &t.kind,
        Some(Kind::DepositCredited(l)) if l.deposit_id == vec![7; 32]
    )));
    // Live: a new transfer arrives on the same stream.
    let bob = user(2);
    let r = submit(
        &mut client,
        signed(
            &h.admin,
            1,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::METH,
                amount: 3,
            },
        ),
        true,
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.height, r.height);
    let t = &ev.transactions[r.index as usize];
    assert_eq!(t.transaction_hash, r.transaction_hash);
    assert_eq!(t.sender, h.admin.address.0.to_vec());
    assert!(
        matches!(&t.kind, Some(Kind::Transfer(x)) if x.amount == "3" && x.to == bob.address.0.to_vec())
    );

    // A stream from a future height sends nothing until that height exists.
    let mut later = client
        .stream_events(pb::StreamEventsRequest {
            from_height: r.height + 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), later.next())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_caller_roles() {
    let h = Harness::start().await;
    // Health and reflection answer a fleet certificate.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        h.channel_as(&CallerIdentity::Client("probe".into())),
    );
    let s = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "custody.coordinator.v1.Coordinator".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        s.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let mut reflection =
        ServerReflectionClient::new(h.channel_as(&CallerIdentity::Client("probe".into())));
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = reflection
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        resp.next().await.unwrap().unwrap().message_response
    else {
        panic!("not a service list")
    };
    assert!(list
        .service
        .iter()
        .any(|s| s.name == "custody.coordinator.v1.Coordinator"));

    // A coordinator certificate is admitted.
    CoordinatorClient::new(h.channel_as(&CallerIdentity::Coordinator(3)))
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap();
    // A signer certificate is refused by role.
    let e = CoordinatorClient::new(h.channel_as(&CallerIdentity::Signer(1)))
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("role signer"), "{e:?}");
    // No client certificate: the TLS handshake fails, nothing is served.
    let no_cert = Endpoint::from_shared(h.endpoint())
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&h.pki.ca_pem)))
        .unwrap()
        .connect_lazy();
    let e = CoordinatorClient::new(no_cert)
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    // The server ends the connection in the handshake (with TLS 1.3 the client may already
    // have sent the request): a transport failure, never an answer of the service.
    assert!(
        matches!(
            e.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown
        ),
        "{e:?}"
    );
    assert!(e.source().is_some(), "not a transport failure: {e:?}");
    // A certificate from another CA is refused too.
    let other = Pki::new();
    let foreign = other.issue(&CallerIdentity::Client("x".into()), &[]);
    let chan = Endpoint::from_shared(h.endpoint())
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&h.pki.ca_pem))
                .identity(tonic::transport::Identity::from_pem(
                    foreign.cert_pem,
                    foreign.key_pem,
                )),
        )
        .unwrap()
        .connect_lazy();
    assert!(CoordinatorClient::new(chan)
        .get_status(pb::GetStatusRequest {})
        .await
        .is_err());
}

/// The hooks the engine uses: system transactions checked on entry, committed blocks
/// watched through `subscribe`; the lock-out saga through them, seen on the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_hooks_drive_the_lock_out_saga() {
    use coordinator::chain::{LockOutOutcome, TxRejection};
    use coordinator::node::SubmitError;
    use custody_proto::chain::{CancellationCommitment, OrderCommitment};
    use custody_proto::order::{DigestRule, OrderInput, SigningOrder};

    let h = Harness::start().await;
    let mut client = h.client();
    let mut blocks = h.node.subscribe();
    // Refused on entry: no deposit address yet. Nothing waits, no block is made.
    let e = h
        .node
        .submit_system(SystemTx::CreditDeposit {
            asset: Asset::METH,
            deposit_id: [7; 32],
            account: h.admin.address,
            amount: 1,
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            SubmitError::Rejected(TxRejection::NoDepositAddress { .. })
        ),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.node.height().unwrap(), 0);
    assert_eq!(h.node.mempool_len().unwrap(), 0);

    fund_admin(&h, &mut client).await;
    // Every committed block arrives on the subscription, in order.
    for height in 1..=h.node.height().unwrap() {
        let b = blocks.recv().await.unwrap();
        assert_eq!(b.block.header.height, height);
        assert_eq!(b.hash, b.block.header.hash());
    }
    // Settling a lock-out that does not exist is refused on entry.
    let settle_unknown = SystemTx::SettleLockOut {
        lockout_id: [1; 32],
        outcome: LockOutOutcome::Burned,
    };
    assert!(h.node.submit_system(settle_unknown).is_err());

    let r = submit(
        &mut client,
        signed(
            &h.admin,
            1,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "0x00000000000000000000000000000000000000bb".into(),
                amount: 5 * ETH,
            },
        ),
        true,
    )
    .await
    .unwrap();
    let id: [u8; 32] = r.lock_out_id.clone().try_into().unwrap();
    // An order valid for about a second, so that it can be cancelled below.
    let now_secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let not_after = now_secs() + 1;
    let order = SigningOrder {
        fleet_id: "fleet".into(),
        key_id: [1; 32],
        not_after,
        inputs: vec![OrderInput {
            path: vec![60, 0],
            rule: DigestRule::Keccak256,
            message: b"unsigned eth tx".to_vec(),
        }],
    }
    .encode()
    .unwrap();
    let commit = SystemTx::CommitOrder(OrderCommitment::new(id, order.clone()).unwrap());
    let waiting = h.node.submit_system(commit.clone()).unwrap();
    let twin = h.node.submit_system(commit).unwrap_err();
    assert!(matches!(twin, SubmitError::Mempool(_)), "{twin:?}");
    let committed = waiting.wait().await.unwrap();

    let leaf = proven_leaf(&mut client, &id, false, committed.height).await;
    assert_eq!(OrderCommitment::decode(&leaf).unwrap().lockout_id, id);
    let l = client
        .get_lock_out(pb::GetLockOutRequest {
            lock_out_id: id.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.stage, pb::LockOutStage::OrderCommitted as i32);
    assert_eq!(l.order, order);
    assert_eq!(l.order_height, committed.height);
    assert!(l.cancellation.is_empty());
    assert_eq!(l.cancellation_fee, "0");
    let e = client
        .get_order_proof(pb::GetOrderProofRequest {
            lock_out_id: id.to_vec(),
            cancellation: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "no cancellation yet");

    // Once the order expired, it is cancelled: the lock-out shows the cancellation, and its
    // proof is served as a CancellationCommitment leaf of a certified block. No block was
    // made since the order's, whose time is before not_after: the cancellation is checked on
    // entry at the time the next block will carry, not at the last block's.
    while now_secs() <= not_after {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = h.node.height().unwrap();
    let cancel = CancellationCommitment::new(id, 21_000, b"cancel tx".to_vec()).unwrap();
    let cancelled = h
        .node
        .submit_system_and_wait(SystemTx::CommitCancellation(cancel.clone()))
        .await
        .unwrap();
    let l = client
        .get_lock_out(pb::GetLockOutRequest {
            lock_out_id: id.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.height, last + 1);
    assert_eq!(l.stage, pb::LockOutStage::Cancelling as i32);
    assert_eq!(l.cancellation, b"cancel tx".to_vec());
    assert_eq!(l.cancellation_fee, "21000");
    assert_eq!(l.cancellation_height, cancelled.height);
    let leaf = proven_leaf(&mut client, &id, true, cancelled.height).await;
    assert_eq!(CancellationCommitment::decode(&leaf).unwrap(), cancel);

    h.node
        .submit_system_and_wait(SystemTx::SettleLockOut {
            lockout_id: id,
            outcome: LockOutOutcome::Burned,
        })
        .await
        .unwrap();
    let l = client
        .get_lock_out(pb::GetLockOutRequest {
            lock_out_id: id.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.stage, pb::LockOutStage::Burned as i32);
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.totals[0].burned, (5 * ETH).to_string());
    h.node.with_chain(|c| c.invariant_check().unwrap()).unwrap();
}

/// Deterministic blocks (the test makes them): a transaction accepted behind another of the
/// same sender is refused by the block, evicted, and its waiting submitter gets the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_refusal_reaches_the_waiting_submitter() {
    let h = Harness::start_with_interval(Duration::from_secs(3600)).await;
    let mut client = h.client();
    let bob = user(2);
    let deposit = signed(
        &h.admin,
        0,
        TxBody::RequestDepositAddress { asset: Asset::METH },
    );
    submit(&mut client, deposit, false).await.unwrap();
    assert_eq!(h.node.produce_once().await.unwrap(), Some(1));
    h.node
        .submit_system(SystemTx::CreditDeposit {
            asset: Asset::METH,
            deposit_id: [1; 32],
            account: h.admin.address,
            amount: 10,
        })
        .unwrap();
    assert_eq!(h.node.produce_once().await.unwrap(), Some(2));
    let transfer = |nonce, amount| {
        signed(
            &h.admin,
            nonce,
            TxBody::Transfer {
                to: bob.address,
                asset: Asset::METH,
                amount,
            },
        )
    };
    let mut c1 = client.clone();
    let first = transfer(1, 7);
    let first = tokio::spawn(async move { submit(&mut c1, first, true).await });
    let mut c2 = client.clone();
    let second = transfer(2, 7);
    while h.node.mempool_len().unwrap() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = tokio::spawn(async move { submit(&mut c2, second, true).await });
    while h.node.mempool_len().unwrap() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.node.produce_once().await.unwrap(), Some(3));
    assert_eq!(h.node.mempool_len().unwrap(), 0);
    let first = first.await.unwrap().unwrap();
    assert_eq!((first.height, first.index), (3, 0));
    let e = second.await.unwrap().unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("overdraft") && e.message().contains("holds 3 mETH"),
        "{e:?}"
    );
    // Nothing waits: no block.
    assert_eq!(h.node.produce_once().await.unwrap(), None);
    assert_eq!(
        balance(&account(&mut client, &bob).await, pb::Asset::Meth),
        "7"
    );
}

/// The fleet key a DKG produced, once recorded on chain, is in `GetStatus` and in the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_fleet_key_is_in_status_and_events() {
    let h = Harness::start().await;
    let mut client = h.client();
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.fleet_key, None);

    submit(
        &mut client,
        signed(&h.admin, 0, TxBody::RequestKeygen),
        true,
    )
    .await
    .unwrap();
    // A deposit address issued before the DKG has a path but no external address yet.
    for (nonce, asset) in [(1, Asset::METH), (2, Asset::MBTC)] {
        submit(
            &mut client,
            signed(&h.admin, nonce, TxBody::RequestDepositAddress { asset }),
            true,
        )
        .await
        .unwrap();
    }
    let deposit_addresses = |mut client: CoordinatorClient<tonic::transport::Channel>| async move {
        client
            .get_deposit_addresses(pb::GetDepositAddressesRequest {
                account: h.admin.address.0.to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .addresses
    };
    let before = deposit_addresses(h.client()).await;
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|a| a.address.is_empty()), "{before:?}");
    let request_id = h
        .node
        .with_chain(|c| c.pending_keygen_requests().unwrap())
        .unwrap()[0];
    let public_key: [u8; 33] = k256::ecdsa::SigningKey::from_bytes(&[5u8; 32].into())
        .unwrap()
        .verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .try_into()
        .unwrap();
    let included = h
        .node
        .submit_system_and_wait(SystemTx::RecordFleetKey {
            request_id,
            key_id: [4; 32],
            public_key,
            chain_code: [6; 32],
            threshold: 3,
            holders: vec![1, 2, 3, 4, 5],
        })
        .await
        .unwrap();
    let expected = pb::FleetKey {
        request_id,
        key_id: vec![4; 32],
        public_key: public_key.to_vec(),
        chain_code: vec![6; 32],
        threshold: 3,
        holders: vec![1, 2, 3, 4, 5],
        height: included.height,
    };
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.fleet_key.as_ref(), Some(&expected));

    // Now the API derives them from the recorded key: the Ethereum one is checked against
    // alloy's own address of the child key.
    let after = deposit_addresses(h.client()).await;
    let key = coordinator::engine::keys::fleet_key(
        &h.node
            .with_chain(|c| c.latest_fleet_key().unwrap().unwrap().1)
            .unwrap(),
        0,
    )
    .unwrap();
    let eth = after
        .iter()
        .find(|a| a.asset == pb::Asset::Meth as i32)
        .unwrap();
    let child = key.child_key(&eth.path).unwrap();
    let uncompressed = k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&child, false);
    let expected_eth =
        alloy_primitives::Address::from_raw_public_key(&uncompressed.as_bytes()[1..])
            .to_checksum(None);
    assert_eq!(eth.address, expected_eth);
    let btc = after
        .iter()
        .find(|a| a.asset == pb::Asset::Mbtc as i32)
        .unwrap();
    assert!(btc.address.starts_with("rb1q"), "{btc:?}");

    let block = first_block_from(&mut client, included.height).await;
    assert_eq!(block.height, included.height);
    assert!(
        block.transactions.iter().any(|t| t.kind
            == Some(pb::transaction_event::Kind::FleetKeyRecorded(
                expected.clone()
            ))),
        "{block:?}"
    );
}

#[tokio::test]
async fn blame_reports_are_served_with_their_evidence() {
    let h = Harness::start().await;
    let mut client = h.client();
    let e = client
        .get_blame(pb::GetBlameRequest {
            session_id: vec![3; 31],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client
        .get_blame(pb::GetBlameRequest {
            session_id: vec![3; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // As the runner does: evidence into the journal, the report with its digest on chain.
    let evidence = vec![vec![1u8, 2, 3], vec![4u8; 50]];
    h.journal.put_blame_evidence(&[3; 32], &evidence).unwrap();
    let included = h
        .node
        .submit_system_and_wait(SystemTx::ReportBlame {
            session_id: [3; 32],
            culprits: vec![2],
            reason: "presign round 2: Πelog of Γ fails".into(),
            evidence_digest: coordinator::fleet::evidence_digest(&evidence),
        })
        .await
        .unwrap();
    let blame = client
        .get_blame(pb::GetBlameRequest {
            session_id: vec![3; 32],
        })
        .await
        .unwrap()
        .into_inner();
    let report = blame.report.clone().unwrap();
    assert_eq!(report.culprits, vec![2]);
    assert_eq!(blame.height, included.height);
    assert_eq!(blame.evidence, evidence);
    assert_eq!(
        report.evidence_digest,
        coordinator::fleet::evidence_digest(&blame.evidence).to_vec()
    );

    // The event stream names it too.
    let block = first_block_from(&mut client, included.height).await;
    assert!(
        block
            .transactions
            .iter()
            .any(|t| t.kind == Some(pb::transaction_event::Kind::SignerBlamed(report.clone()))),
        "{block:?}"
    );

    // Evidence that does not match the recorded digest is not served as if it did.
    h.journal
        .put_blame_evidence(&[3; 32], &[vec![9u8]])
        .unwrap();
    let blame = client
        .get_blame(pb::GetBlameRequest {
            session_id: vec![3; 32],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(blame.evidence.is_empty());
}

/// The first block `StreamEvents` gives from `height` (within 5 s).
/// `GetOrderProof` of lock-out `id` (its order, or its cancellation): the proof must be for
/// the block at `height` and the leaf must be in that block's transaction root. The leaf.
async fn proven_leaf(
    client: &mut CoordinatorClient<tonic::transport::Channel>,
    id: &[u8; 32],
    cancellation: bool,
    height: u64,
) -> Vec<u8> {
    let proof = client
        .get_order_proof(pb::GetOrderProofRequest {
            lock_out_id: id.to_vec(),
            cancellation,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proof.height, height);
    let header = custody_proto::chain::BlockHeader::decode(&proof.header).unwrap();
    custody_proto::chain::InclusionProof::decode(&proof.proof)
        .unwrap()
        .verify(&header.tx_root, &proof.transaction)
        .unwrap();
    proof.transaction
}

async fn first_block_from(
    client: &mut CoordinatorClient<tonic::transport::Channel>,
    height: u64,
) -> pb::BlockEvents {
    let mut stream = client
        .stream_events(pb::StreamEventsRequest {
            from_height: height,
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}
