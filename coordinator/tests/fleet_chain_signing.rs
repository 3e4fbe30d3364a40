//! The coordinator's trust path with real signers: three `signer-node` instances run
//! in-process (real mTLS on loopback, the real session runner and signing gate, memory vaults,
//! the committed fixture primes) and pin the chain's validator set in `[chain]`. The
//! coordinator runs a 2-of-3 DKG through `FleetClient`, commits a lock-out order on its own
//! chain, and the signers sign it because the chain's commit certificate and the Merkle proof
//! say the order was decided; with one signer down the other two sign; an order the chain did
//! not commit is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod support;

use std::time::Duration;

use common::*;
use coordinator::chain::{lockout_id, Asset, BlockTx, SystemTx, TxBody};
use coordinator::fleet::{FleetClient, FleetError, SignJob};
use custody_proto::chain::OrderCommitment;
use custody_proto::order::{DigestRule, OrderInput, SigningOrder};
use custody_proto::signer::v1::{Authorization, ChainAuthorization};
use custody_proto::tls::TlsMaterial;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use support::signers::Signers;

const FLEET: &str = "chainfleet";

/// Starts three signers pinned to the test chain's validator set; returns the coordinator's
/// fleet client and the running signers.
async fn fleet(dir: &std::path::Path) -> (FleetClient, Signers) {
    let validator = hex_string(validator_key(200).verifying_key().as_bytes());
    let signers = Signers::start(dir, FLEET, 3, CHAIN_ID, &validator, &[]).await;
    let material = TlsMaterial::load(
        &signers.layout.ca_cert,
        &signers.coordinator_dir().join("cert.pem"),
        &signers.coordinator_dir().join("key.pem"),
    )
    .unwrap();
    (
        FleetClient::connect(&material, &signers.endpoints).unwrap(),
        signers,
    )
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn keccak(message: &[u8]) -> [u8; 32] {
    use sha3::Digest;
    sha3::Keccak256::digest(message).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signers_sign_what_the_chain_committed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, mut signers) = fleet(dir.path()).await;

    let key = fleet
        .keygen([7; 32], 2, &[1, 2, 3], Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!((key.threshold, key.holders.clone()), (2, vec![1, 2, 3]));

    // The chain decides a lock-out and commits its order.
    let mut chain = open(&dir.path().join("chain"));
    let alice = user(1);
    let nonce = fund(&mut chain, &alice, 0, Asset::METH, 1, 5_000);
    block_ok(
        &mut chain,
        &[signed(
            &alice,
            nonce,
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "0x00000000000000000000000000000000000000aa".into(),
                amount: 2_000,
            },
        )],
    );
    let id = lockout_id(&alice.address, nonce);
    let path = vec![0, 5];
    let message = b"EIP-1559 signing payload of the lock-out".to_vec();
    let order = |message: &[u8]| {
        SigningOrder {
            fleet_id: FLEET.into(),
            key_id: key.key_id,
            not_after: u64::MAX,
            inputs: vec![OrderInput {
                path: path.clone(),
                rule: DigestRule::Keccak256,
                message: message.to_vec(),
            }],
        }
        .encode()
        .unwrap()
    };
    block_ok(
        &mut chain,
        &[BlockTx::System(SystemTx::CommitOrder(
            OrderCommitment::new(id, order(&message)).unwrap(),
        ))],
    );
    let proof = chain.order_proof(&id).unwrap().unwrap();
    let chain_auth = ChainAuthorization {
        header: proof.header.encode(),
        certificate: proof.certificate.encode(),
        order_commitment: proof.leaf.clone(),
        inclusion_proof: proof.proof.encode(),
    };
    let job = SignJob {
        key: key.clone(),
        path: path.clone(),
        authorization: Authorization {
            order: Vec::new(),
            signatures: Vec::new(),
            chain: Some(chain_auth.clone()),
        },
        input_index: 0,
        digest: keccak(&message),
    };
    let signed = fleet.sign(&job, 2, Duration::from_secs(120)).await.unwrap();

    // libsecp256k1 agrees, under the child key at the path.
    let child = key.child_key(&path).unwrap();
    let secp_key =
        secp256k1::PublicKey::from_slice(child.to_encoded_point(true).as_bytes()).unwrap();
    let secp_sig = secp256k1::ecdsa::Signature::from_compact(&signed.signature.to_bytes()).unwrap();
    secp256k1::SECP256K1
        .verify_ecdsa(
            &secp256k1::Message::from_digest(keccak(&message)),
            &secp_sig,
            &secp_key,
        )
        .unwrap();

    // A presignature made ahead (warm pool): the next signature needs only the signing
    // round, and the pooled id is used once.
    fleet
        .fill_pool(&key, &path, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(fleet.pooled(&key, &path), 1);
    assert_eq!(fleet.pooled(&key, &[0, 6]), 0, "bound to its path");
    let pooled = fleet.sign(&job, 1, Duration::from_secs(120)).await.unwrap();
    assert_eq!(fleet.pooled(&key, &path), 0);
    assert_ne!(pooled.signature, signed.signature);
    secp256k1::SECP256K1
        .verify_ecdsa(
            &secp256k1::Message::from_digest(keccak(&message)),
            &secp256k1::ecdsa::Signature::from_compact(&pooled.signature.to_bytes()).unwrap(),
            &secp_key,
        )
        .unwrap();

    // Signer 1 goes down: the client's first choice fails to start and the retry signs
    // with the remaining two.
    signers.stop(1).await;
    let again = fleet.sign(&job, 3, Duration::from_secs(120)).await.unwrap();
    assert_ne!(
        again.signature, signed.signature,
        "a fresh presignature, a fresh nonce"
    );
    assert_eq!(
        fleet.choose_signers(&[1, 2, 3], 2, &[]).unwrap(),
        vec![2, 3],
        "the failed start taught the reliability table"
    );

    // An order the chain did not commit, presented with the real block's proof: every
    // signer's gate refuses it, and the fleet client does not retry a refusal.
    let other = b"pay the attacker instead".to_vec();
    let mut forged = job.clone();
    forged.authorization.chain = Some(ChainAuthorization {
        order_commitment: OrderCommitment::new(id, order(&other)).unwrap().encode(),
        ..chain_auth
    });
    forged.digest = keccak(&other);
    match fleet.sign(&forged, 2, Duration::from_secs(120)).await {
        Err(FleetError::Refused { code, message, .. }) => {
            assert_eq!(code, tonic::Code::PermissionDenied, "{message}");
            assert!(message.contains("not a transaction of block"), "{message}");
        }
        other => panic!("a forged order was not refused: {other:?}"),
    }
}
