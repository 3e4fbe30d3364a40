//! The chain state in sled, and the overlay a block is executed in before it is written.
//!
//! Every state entry lives under the key prefix `s/` of the chain's sled tree:
//!
//! | key | value |
//! |---|---|
//! | `s/admin` | the genesis admin's address (20 bytes) |
//! | `s/acct/` address | [`Account`] |
//! | `s/asset/` code | [`AssetTotals`] |
//! | `s/deposit/` deposit id | [`DepositRecord`] |
//! | `s/lockout/` lock-out id | [`LockOutRecord`] |
//! | `s/addr/` address ‖ asset code ‖ sequence (u32 BE) | [`DepositAddress`] |
//! | `s/addr-of/` address ‖ asset code | number of deposit addresses (u32 BE) |
//! | `s/keygen/` id (u64 BE) | [`KeygenRequest`] |
//! | `s/fleetkey/` keygen request id (u64 BE) | [`FleetKeyRecord`]: the key its DKG produced |
//! | `s/seq/addr`, `s/seq/keygen` | next sequence number (u64 BE) |
//!
//! **State root**: the RFC 6962 Merkle root (`custody_proto::chain::merkle_root`) over every
//! entry under `s/` in key order, each leaf being `u32 BE key length ‖ key ‖ u32 BE value
//! length ‖ value`. It is recomputed from all entries at every block: O(state), acceptable
//! for the embedded chain now; an incremental tree replaces it when the state grows.

mod records;

pub(crate) use records::{decode_holders, encode_holders};

use std::collections::BTreeMap;

use custody_proto::chain::merkle_root;

pub use records::{
    Account, AssetTotals, BlameReport, CommittedCancellation, CommittedOrder, DepositAddress,
    DepositRecord, FleetKeyRecord, KeygenRequest, LockOutRecord, LockOutStatus,
    MAX_FLEET_KEY_HOLDERS,
};

use super::{Address, Asset, TxRejection};

/// Prefix of every state entry.
pub(crate) const STATE_PREFIX: &[u8] = b"s/";

pub(crate) fn admin_key() -> Vec<u8> {
    b"s/admin".to_vec()
}

pub(crate) fn account_key(a: &Address) -> Vec<u8> {
    [b"s/acct/".as_slice(), &a.0].concat()
}

pub(crate) fn asset_key(asset: Asset) -> Vec<u8> {
    [b"s/asset/".as_slice(), &[asset.code()]].concat()
}

pub(crate) fn deposit_key(id: &[u8; 32]) -> Vec<u8> {
    [b"s/deposit/".as_slice(), id].concat()
}

pub(crate) fn lockout_key(id: &[u8; 32]) -> Vec<u8> {
    [b"s/lockout/".as_slice(), id].concat()
}

pub(crate) const LOCKOUT_PREFIX: &[u8] = b"s/lockout/";
pub(crate) const ACCOUNT_PREFIX: &[u8] = b"s/acct/";
pub(crate) const DEPOSIT_ADDRESS_PREFIX: &[u8] = b"s/addr/";

pub(crate) fn deposit_address_prefix(a: &Address) -> Vec<u8> {
    [b"s/addr/".as_slice(), &a.0].concat()
}

pub(crate) fn deposit_address_key(a: &Address, asset: Asset, seq: u32) -> Vec<u8> {
    [
        deposit_address_prefix(a).as_slice(),
        &[asset.code()],
        &seq.to_be_bytes(),
    ]
    .concat()
}

pub(crate) fn deposit_address_count_key(a: &Address, asset: Asset) -> Vec<u8> {
    [b"s/addr-of/".as_slice(), &a.0, &[asset.code()]].concat()
}

pub(crate) const FLEET_KEY_PREFIX: &[u8] = b"s/fleetkey/";

pub(crate) fn fleet_key_key(request_id: u64) -> Vec<u8> {
    [FLEET_KEY_PREFIX, &request_id.to_be_bytes()].concat()
}

pub(crate) fn blame_key(session_id: &[u8; 32]) -> Vec<u8> {
    [b"s/blame/".as_slice(), session_id].concat()
}

/// How many reports name `signer`: a u64 counter.
pub(crate) fn blame_count_key(signer: u16) -> Vec<u8> {
    [b"s/blamecount/".as_slice(), &signer.to_be_bytes()].concat()
}

pub(crate) fn keygen_key(id: u64) -> Vec<u8> {
    [b"s/keygen/".as_slice(), &id.to_be_bytes()].concat()
}

pub(crate) fn sequence_key(name: &str) -> Vec<u8> {
    [b"s/seq/".as_slice(), name.as_bytes()].concat()
}

fn store_err(e: impl std::fmt::Display) -> TxRejection {
    TxRejection::Store(e.to_string())
}

/// A view of the state: committed entries in sled under writes not yet committed. Writes
/// of the transaction being executed stay apart until it succeeds, so a refused
/// transaction leaves no trace.
pub(crate) struct Overlay<'a> {
    base: &'a sled::Tree,
    block: BTreeMap<Vec<u8>, Vec<u8>>,
    pending: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(base: &'a sled::Tree) -> Self {
        Self {
            base,
            block: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TxRejection> {
        if let Some(v) = self.pending.get(key).or_else(|| self.block.get(key)) {
            return Ok(Some(v.clone()));
        }
        Ok(self.base.get(key).map_err(store_err)?.map(|v| v.to_vec()))
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert(key, value);
    }

    /// Keeps the current transaction's writes.
    pub(crate) fn keep_transaction(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.block.extend(pending);
    }

    /// Drops the current transaction's writes.
    pub(crate) fn drop_transaction(&mut self) {
        self.pending.clear();
    }

    /// The kept writes, to commit.
    pub(crate) fn into_writes(self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.block
    }

    fn decoded<T>(
        &self,
        key: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, custody_proto::chain::DecodeError>,
    ) -> Result<Option<T>, TxRejection> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => decode(&v)
                .map(Some)
                .map_err(|e| store_err(format!("corrupt state entry: {e}"))),
        }
    }

    pub(crate) fn account(&self, a: &Address) -> Result<Account, TxRejection> {
        Ok(self
            .decoded(&account_key(a), Account::decode)?
            .unwrap_or_default())
    }

    pub(crate) fn put_account(&mut self, a: &Address, acct: &Account) {
        self.put(account_key(a), acct.encode());
    }

    pub(crate) fn totals(&self, asset: Asset) -> Result<AssetTotals, TxRejection> {
        Ok(self
            .decoded(&asset_key(asset), AssetTotals::decode)?
            .unwrap_or_default())
    }

    pub(crate) fn put_totals(&mut self, asset: Asset, t: &AssetTotals) {
        self.put(asset_key(asset), t.encode());
    }

    pub(crate) fn deposit(&self, id: &[u8; 32]) -> Result<Option<DepositRecord>, TxRejection> {
        self.decoded(&deposit_key(id), DepositRecord::decode)
    }

    pub(crate) fn lockout(&self, id: &[u8; 32]) -> Result<Option<LockOutRecord>, TxRejection> {
        self.decoded(&lockout_key(id), LockOutRecord::decode)
    }

    pub(crate) fn fleet_key(&self, request_id: u64) -> Result<Option<FleetKeyRecord>, TxRejection> {
        self.decoded(&fleet_key_key(request_id), FleetKeyRecord::decode)
    }

    pub(crate) fn blame(&self, session_id: &[u8; 32]) -> Result<Option<BlameReport>, TxRejection> {
        self.decoded(&blame_key(session_id), BlameReport::decode)
    }

    pub(crate) fn blame_count(&self, signer: u16) -> Result<u64, TxRejection> {
        Ok(self
            .get(&blame_count_key(signer))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    pub(crate) fn keygen(&self, id: u64) -> Result<Option<KeygenRequest>, TxRejection> {
        self.decoded(&keygen_key(id), KeygenRequest::decode)
    }

    pub(crate) fn admin(&self) -> Result<Option<Address>, TxRejection> {
        Ok(self
            .get(&admin_key())?
            .and_then(|v| <[u8; 20]>::try_from(v.as_slice()).ok())
            .map(Address))
    }

    pub(crate) fn deposit_address_count(
        &self,
        a: &Address,
        asset: Asset,
    ) -> Result<u32, TxRejection> {
        self.u32_at(&deposit_address_count_key(a, asset))
    }

    fn u32_at(&self, key: &[u8]) -> Result<u32, TxRejection> {
        match self.get(key)? {
            None => Ok(0),
            Some(v) => <[u8; 4]>::try_from(v.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| store_err("corrupt counter")),
        }
    }

    /// Takes the next number of the sequence `name`.
    pub(crate) fn next_sequence(&mut self, name: &str) -> Result<u64, TxRejection> {
        let key = sequence_key(name);
        let current = match self.get(&key)? {
            None => 0,
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| store_err("corrupt sequence"))?,
        };
        let next = current
            .checked_add(1)
            .ok_or(TxRejection::Exhausted("sequence numbers"))?;
        self.put(key, next.to_be_bytes().to_vec());
        Ok(current)
    }

    /// The state root this view would have if its kept writes were committed.
    pub(crate) fn state_root(&self) -> Result<[u8; 32], TxRejection> {
        let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.base.scan_prefix(STATE_PREFIX) {
            let (k, v) = item.map_err(store_err)?;
            entries.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in &self.block {
            entries.insert(k.clone(), v.clone());
        }
        let leaves: Vec<Vec<u8>> = entries.iter().map(|(k, v)| state_leaf(k, v)).collect();
        Ok(merkle_root(&leaves))
    }
}

fn state_leaf(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut leaf = Vec::with_capacity(8 + key.len() + value.len());
    // Keys and values are small records; their lengths fit in u32.
    leaf.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
    leaf.extend_from_slice(key);
    leaf.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
    leaf.extend_from_slice(value);
    leaf
}
