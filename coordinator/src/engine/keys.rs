//! The fleet key on chain (whitepaper §3.4.2: the lock-in key comes from a DKG the chain
//! asked for). The admin's `RequestKeygen` transaction records a request; the node loop runs
//! the DKG for each of [`Chain::pending_keygen_requests`] (`FleetClient::keygen`) and
//! proposes [`record_fleet_key`]; the engine then derives every deposit and change address
//! from [`latest_fleet_key`].

use k256::elliptic_curve::sec1::ToEncodedPoint;

use crate::chain::{BlockTx, ChainReader, FleetKeyRecord, SystemTx};
use crate::fleet::FleetKey;

use super::EngineError;

/// The system transaction recording `key` as the result of key generation request
/// `request_id`.
pub fn record_fleet_key(request_id: u64, key: &FleetKey) -> Result<BlockTx, EngineError> {
    let public_key: [u8; 33] = key
        .public_key
        .to_encoded_point(true)
        .as_bytes()
        .try_into()
        .map_err(|_| EngineError::Config("fleet public key is not 33 bytes compressed".into()))?;
    let mut holders = key.holders.clone();
    holders.sort_unstable();
    holders.dedup();
    Ok(BlockTx::System(SystemTx::RecordFleetKey {
        request_id,
        key_id: key.key_id,
        public_key,
        chain_code: key.chain_code,
        threshold: key.threshold,
        holders,
    }))
}

/// The [`FleetKey`] of a chain record. The share epoch is not chain state (a share refresh
/// changes it, not the key); the caller passes the fleet's current one.
pub fn fleet_key(record: &FleetKeyRecord, epoch: u64) -> Result<FleetKey, EngineError> {
    let public_key = k256::PublicKey::from_sec1_bytes(&record.public_key).map_err(|_| {
        EngineError::Chain(crate::chain::ChainError::Corrupt(
            "recorded fleet key is not a point".into(),
        ))
    })?;
    Ok(FleetKey {
        key_id: record.key_id,
        public_key,
        chain_code: record.chain_code,
        threshold: record.threshold,
        holders: record.holders.clone(),
        epoch,
    })
}

/// The key the engine uses: the most recently requested one that is recorded.
pub fn latest_fleet_key(chain: &ChainReader, epoch: u64) -> Result<Option<FleetKey>, EngineError> {
    chain
        .latest_fleet_key()?
        .map(|(_, r)| fleet_key(&r, epoch))
        .transpose()
}
