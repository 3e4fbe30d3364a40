//! Issue #4: reshare across separate `signer-node` processes. One fleet of five
//! real processes on loopback (devnet PKI, sealed sled stores, mTLS, fixture primes):
//!
//! 1. a 2-of-3 keygen on signers {1, 2, 3}; signers 4 and 5 hold nothing; signers 1 and 2
//!    make a presignature at epoch 0;
//! 2. `StartReshare` (2, 3) → (3, 5) on all five: dealers 1 and 2, new committee {1..5};
//!    every signer reports the same public key and chain code, threshold 3, holders {1..5},
//!    epoch 1;
//! 3. what was made before the reshare no longer works: the epoch-0 presignature is gone from
//!    the pools of signers 1 and 2 (a `Sign` naming it finds nothing), and presigning at
//!    epoch 0 is refused;
//! 4. newcomer signer 4 is stopped (SIGTERM) and started again: it lists the key with the
//!    same public key at epoch 1 from its sealed store;
//! 5. the new committee presigns and signs with {2, 4, 5} (two newcomers, one of them the
//!    restarted one): the signature verifies with libsecp256k1 under the unchanged key;
//! 6. every signer stops cleanly and its audit chain verifies.
//!
//! Aux info (for 3 signers in keygen, for 5 in the reshare) is most of the cost. Refresh
//! across processes is not repeated here: `devnet_command.rs` runs one on three `signer-node
//! run` processes and signs at the new epoch, and a second five-signer aux-info run would add
//! as much time as the reshare itself (about 100 s of this test's 250 s on shared cores).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process_fleet;

use std::time::{Duration, Instant};

use custody_proto::signer::v1::{
    session_status_response::Outcome, FillPresignPoolRequest, KeyInfo, SessionState,
    StartReshareRequest,
};
use process_fleet::{random_id, wire_path, ProcessFleet};
use signer_node::config::NodeConfig;
use tonic::Code;

/// Round deadline: aux-info rounds of five processes on two shared cores take tens of seconds.
const DEADLINE_MS: u64 = 180_000;
/// How long a keygen or a reshare may take (aux info with the fixture primes).
const AUX_LIMIT: Duration = Duration::from_secs(600);

/// Waits for `session` to end with a key on every one of `signers` and returns the keys.
async fn keys_after(fleet: &mut ProcessFleet, signers: &[u16], session: &[u8]) -> Vec<KeyInfo> {
    let mut keys = Vec::new();
    for &i in signers {
        let status = fleet.wait_end(i, session, AUX_LIMIT).await;
        assert_eq!(
            status.state,
            SessionState::Completed as i32,
            "signer {i}: {status:?}"
        );
        let Some(Outcome::Key(info)) = status.outcome else {
            panic!("signer {i}: no key outcome: {status:?}");
        };
        keys.push(info);
    }
    keys
}

/// Presigns at `epoch` with `signers`; returns the presignature id.
async fn presign(fleet: &mut ProcessFleet, key_id: &[u8], epoch: u64, signers: &[u16]) -> Vec<u8> {
    let id = random_id();
    fleet.start_presign_at(key_id, epoch, &id, signers).await;
    for &i in signers {
        let status = fleet.wait_end(i, &id, Duration::from_secs(300)).await;
        assert_eq!(
            status.state,
            SessionState::Completed as i32,
            "signer {i}: presigning at epoch {epoch}: {status:?}"
        );
    }
    id
}

/// Checks that every key reports `original`'s key at `threshold`, `holders` and `epoch`.
fn assert_same_key(keys: &[KeyInfo], original: &KeyInfo, threshold: u32, epoch: u64) {
    for after in keys {
        assert_eq!(after.key_id, original.key_id);
        assert_eq!(
            after.public_key, original.public_key,
            "the key is unchanged"
        );
        assert_eq!(after.chain_code, original.chain_code);
        assert_eq!(
            (after.threshold, after.holders.as_slice(), after.epoch),
            (threshold, &[1u32, 2, 3, 4, 5][..], epoch)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshare_to_newcomers_across_processes() {
    let started = Instant::now();
    let mut fleet = ProcessFleet::create(5, |_, _, raw: &mut NodeConfig| {
        raw.round_deadline_ms = DEADLINE_MS;
    });
    let all = [1u16, 2, 3, 4, 5];
    for i in all {
        fleet.start(i, None);
    }
    fleet.wait_serving().await;

    // ---- 1. 2-of-3 on {1, 2, 3}; a presignature of epoch 0 ------------------------------
    let (key_id, key) = fleet.keygen(2, &[1, 2, 3]).await;
    assert_eq!((key.threshold, key.epoch), (2, 0));
    for i in [4, 5] {
        assert!(fleet.list_keys(i).await.is_empty(), "signer {i} is empty");
    }
    let old_presignature = presign(&mut fleet, &key_id, 0, &[1, 2]).await;
    eprintln!("keygen 2-of-3 and a presignature: {:?}", started.elapsed());

    // ---- 2. reshare (2, 3) -> (3, 5): 1 and 2 deal, 4 and 5 join --------------------------
    let reshare = random_id();
    for i in all {
        fleet
            .control(i)
            .start_reshare(StartReshareRequest {
                session_id: reshare.clone(),
                key_id: key_id.clone(),
                epoch: 0,
                dealers: vec![1, 2],
                new_committee: all.iter().map(|i| u32::from(*i)).collect(),
                new_threshold: 3,
            })
            .await
            .unwrap();
    }
    let reshared = keys_after(&mut fleet, &all, &reshare).await;
    assert_same_key(&reshared, &key, 3, 1);
    for i in all {
        assert_eq!(
            fleet.list_keys(i).await,
            vec![reshared[0].clone()],
            "signer {i}"
        );
    }
    eprintln!("reshare to 3-of-5: {:?}", started.elapsed());

    // ---- 3. what was made before the reshare no longer works ------------------------------
    // The reshare erased the epoch-0 presignature with the old share (REF-02): the pool has
    // nothing under that id (a presignature still there would have been taken and then
    // refused for its epoch, with another message).
    for i in [1, 2] {
        let authorization = fleet.authorization(&key_id, b"with a presignature of epoch 0");
        let request = fleet.sign_request(&key_id, &old_presignature, &[1, 2, 3], authorization);
        let refused = fleet.control(i).sign(request).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::FailedPrecondition,
            "signer {i}: {refused:?}"
        );
        assert!(
            refused.message().contains("not in the pool"),
            "signer {i}: {refused:?}"
        );
    }
    let stale = fleet
        .control(1)
        .fill_presign_pool(FillPresignPoolRequest {
            session_id: random_id(),
            key_id: key_id.clone(),
            epoch: 0,
            path: wire_path(),
            signers: vec![1, 2, 3],
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");

    // ---- 4. a newcomer restarts with its reshared share -----------------------------------
    fleet.stop(4);
    fleet.start(4, None);
    fleet.wait_serving().await;
    assert_eq!(
        fleet.list_keys(4).await,
        vec![reshared[0].clone()],
        "signer 4 after its restart"
    );

    // ---- 5. the new committee signs, with both newcomers ----------------------------------
    let fresh = presign(&mut fleet, &key_id, 1, &[2, 4, 5]).await;
    fleet
        .sign_and_verify(&key_id, &key, &fresh, &[2, 4, 5], b"after the reshare")
        .await;
    eprintln!(
        "presign and sign after the reshare: {:?}",
        started.elapsed()
    );

    // ---- 6. clean stops, intact audit chains ----------------------------------------------
    fleet.stop_all();
    for i in all {
        fleet.audit_verify(i);
    }
}
