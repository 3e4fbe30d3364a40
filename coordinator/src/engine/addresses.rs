//! Fleet child keys and their external addresses. Deposit addresses are the paths the chain
//! recorded (`m/<asset code>/<seq>`, depth 2); the change of a UTXO lock-out goes to
//! `m/<asset code>/2147483647/0`, depth 3, which no deposit path can ever be, so change is
//! never watched as a deposit.

use std::collections::BTreeMap;

use crate::adapter::{ChainAdapter, FleetAddress};
use crate::chain::{Address, Asset, ChainReader};
use crate::fleet::FleetKey;

use super::EngineError;

/// Largest non-hardened index, used as the change branch.
pub const CHANGE_BRANCH: u32 = (1 << 31) - 1;

/// The change path of `asset`: `m/<asset code>/2147483647/0`.
pub fn change_path(asset: Asset) -> Vec<u32> {
    vec![u32::from(asset.code()), CHANGE_BRANCH, 0]
}

/// The fleet address at `path`: child key from `key`, external address from `adapter`.
pub fn fleet_address<A: ChainAdapter>(
    key: &FleetKey,
    adapter: &A,
    path: &[u32],
) -> Result<FleetAddress, EngineError> {
    let public_key = key.child_key(path)?;
    let address = adapter.address(&public_key)?;
    Ok(FleetAddress {
        path: path.to_vec(),
        public_key,
        address,
    })
}

/// Every deposit address of `asset` the chain issued, with the account it is bound to, keyed
/// by the external address.
pub fn deposit_addresses<A: ChainAdapter>(
    chain: &ChainReader,
    key: &FleetKey,
    adapter: &A,
    asset: Asset,
) -> Result<BTreeMap<String, (FleetAddress, Address)>, EngineError> {
    let mut out = BTreeMap::new();
    for issued in chain.deposit_addresses_of(asset)? {
        let path: Vec<u32> = issued.path.indices().iter().map(|i| i.get()).collect();
        let fa = fleet_address(key, adapter, &path)?;
        out.insert(fa.address.clone(), (fa, issued.account));
    }
    Ok(out)
}
