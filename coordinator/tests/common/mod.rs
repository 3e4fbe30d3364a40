//! Shared set-up of the chain integration tests: real sled stores in temporary directories,
//! real keys from fixed seeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::Path;

use coordinator::chain::account::compressed;
use coordinator::chain::{
    Address, Asset, BlockTx, Chain, Genesis, SoloConsensus, SystemTx, Transaction, TxBody,
};
use ed25519_dalek::SigningKey as ValidatorKey;
use k256::ecdsa::SigningKey;

pub const CHAIN_ID: &str = "custody-test";

/// A user account with its secp256k1 key.
pub struct User {
    pub key: SigningKey,
    pub address: Address,
}

pub fn user(seed: u8) -> User {
    let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let address = Address::of_key(key.verifying_key());
    User { key, address }
}

pub fn validator_key(seed: u8) -> ValidatorKey {
    ValidatorKey::from_bytes(&[seed; 32])
}

/// The admin is user 100; the solo validator has seed 200.
pub fn genesis() -> Genesis {
    let consensus = SoloConsensus::new(validator_key(200)).unwrap();
    Genesis {
        chain_id: CHAIN_ID.into(),
        admin: user(100).address,
        validators: coordinator::chain::Consensus::validator_set(&consensus).clone(),
    }
}

pub fn open(dir: &Path) -> Chain<SoloConsensus> {
    Chain::open(
        dir,
        genesis(),
        SoloConsensus::new(validator_key(200)).unwrap(),
    )
    .unwrap()
}

pub fn signed(u: &User, nonce: u64, body: TxBody) -> BlockTx {
    let tx = Transaction {
        chain_id: CHAIN_ID.into(),
        sender: compressed(u.key.verifying_key()),
        nonce,
        body,
    };
    BlockTx::Signed(tx.sign(&u.key))
}

pub fn credit(asset: Asset, id: u8, account: Address, amount: u128) -> BlockTx {
    BlockTx::System(SystemTx::CreditDeposit {
        asset,
        deposit_id: [id; 32],
        account,
        amount,
    })
}

/// Produces a block with `txs` at a time after the previous block, asserts every
/// transaction was accepted and the invariant holds.
pub fn block_ok(chain: &mut Chain<SoloConsensus>, txs: &[BlockTx]) {
    let time = 1_000 * (chain.height() + 1);
    let outcome = chain.produce_block(txs, time).unwrap();
    for (i, r) in outcome.results.iter().enumerate() {
        assert!(r.is_ok(), "transaction {i} refused: {r:?}");
    }
    chain.invariant_check().unwrap();
}

/// Gives `u` a deposit address for `asset` and credits `amount` with deposit id `id`.
/// `nonce` is the user's current nonce; returns the next one.
pub fn fund(
    chain: &mut Chain<SoloConsensus>,
    u: &User,
    nonce: u64,
    asset: Asset,
    id: u8,
    amount: u128,
) -> u64 {
    block_ok(
        chain,
        &[signed(u, nonce, TxBody::RequestDepositAddress { asset })],
    );
    block_ok(chain, &[credit(asset, id, u.address, amount)]);
    nonce + 1
}
