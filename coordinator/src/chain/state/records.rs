//! The records the chain state holds, each with a canonical, tagged encoding.

use std::collections::BTreeMap;

use custody_proto::chain::codec::{Reader, Writer};
use custody_proto::chain::DecodeError;
use mpc_core::hd::DerivationPath;

use crate::chain::tx::MAX_DESTINATION_BYTES;
use crate::chain::{Address, Amount, Asset};

/// One account: its next nonce and a balance per asset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// The nonce its next transaction must carry.
    pub nonce: u64,
    /// Balance per asset; a missing asset is zero.
    pub balances: BTreeMap<Asset, Amount>,
}

impl Account {
    /// The balance of `asset`.
    pub fn balance(&self, asset: Asset) -> Amount {
        self.balances.get(&asset).copied().unwrap_or(0)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/account");
        w.u64(self.nonce);
        for asset in Asset::ALL {
            w.u128(self.balance(asset));
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/account")?;
        let nonce = r.u64()?;
        let mut balances = BTreeMap::new();
        for asset in Asset::ALL {
            let v = r.u128()?;
            if v > 0 {
                balances.insert(asset, v);
            }
        }
        r.finish()?;
        Ok(Self { nonce, balances })
    }
}

/// Chain-wide totals of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssetTotals {
    /// Mapped tokens in existence: balances plus amounts locked by pending lock-outs.
    pub supply: Amount,
    /// Part of the supply locked by lock-outs not yet settled.
    pub locked: Amount,
    /// Sum of every credited (confirmed) lock-in deposit.
    pub credited: Amount,
    /// Sum of every burned (confirmed) lock-out.
    pub burned: Amount,
}

impl AssetTotals {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/asset-totals");
        for v in [self.supply, self.locked, self.credited, self.burned] {
            w.u128(v);
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/asset-totals")?;
        let t = Self {
            supply: r.u128()?,
            locked: r.u128()?,
            credited: r.u128()?,
            burned: r.u128()?,
        };
        r.finish()?;
        Ok(t)
    }
}

/// A credited lock-in deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRecord {
    /// Asset.
    pub asset: Asset,
    /// Credited account.
    pub account: Address,
    /// Amount credited.
    pub amount: Amount,
    /// Height of the block that credited it.
    pub height: u64,
}

impl DepositRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/deposit");
        w.u8(self.asset.code());
        w.fixed(&self.account.0);
        w.u128(self.amount);
        w.u64(self.height);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/deposit")?;
        let asset = stored_asset(r.u8()?)?;
        let d = Self {
            asset,
            account: Address(r.array()?),
            amount: r.u128()?,
            height: r.u64()?,
        };
        r.finish()?;
        Ok(d)
    }
}

/// Where a lock-out is in its saga. Requesting a lock-out locks the balance in the same
/// transaction, so a stored lock-out starts at `Locked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutStatus {
    /// The amount is taken from the balance and held.
    Locked,
    /// The external order is committed in a block; signers may sign it.
    OrderCommitted,
    /// Paid out on the external chain; the mapped amount is destroyed.
    Burned,
    /// Failed or timed out; the amount went back to the owner.
    Refunded,
    /// The order expired with its signing started; a cancelling external transaction (same
    /// nonce or outputs, paying nothing out) is committed and waits to be mined. Still
    /// pending: it ends `Cancelled` (the cancellation won) or `Burned` (the payment won).
    Cancelling,
    /// The cancellation was mined to depth z: the amount minus the cancellation's fee went
    /// back to the owner; the fee is destroyed (it left the external chain's fleet address).
    Cancelled,
}

impl LockOutStatus {
    fn code(self) -> u8 {
        match self {
            LockOutStatus::Locked => 1,
            LockOutStatus::OrderCommitted => 2,
            LockOutStatus::Burned => 3,
            LockOutStatus::Refunded => 4,
            LockOutStatus::Cancelling => 5,
            LockOutStatus::Cancelled => 6,
        }
    }

    fn from_code(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            1 => LockOutStatus::Locked,
            2 => LockOutStatus::OrderCommitted,
            3 => LockOutStatus::Burned,
            4 => LockOutStatus::Refunded,
            5 => LockOutStatus::Cancelling,
            6 => LockOutStatus::Cancelled,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "status",
                    reason: "unknown lock-out status",
                })
            }
        })
    }

    /// Whether the amount is still held (not yet burned or refunded).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            LockOutStatus::Locked | LockOutStatus::OrderCommitted | LockOutStatus::Cancelling
        )
    }
}

/// A lock-out request and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOutRecord {
    /// Account whose balance was locked.
    pub owner: Address,
    /// Asset.
    pub asset: Asset,
    /// Locked amount.
    pub amount: Amount,
    /// Destination on the external chain.
    pub to_external: String,
    /// Saga state.
    pub status: LockOutStatus,
    /// Height of the block that requested it.
    pub requested_height: u64,
    /// The committed order and where its `CommitOrder` transaction sits (height, index in
    /// the block), once committed.
    pub order: Option<CommittedOrder>,
    /// The committed cancellation of that order, once committed (`Cancelling`, `Cancelled`,
    /// or `Burned` when the payment won after all).
    pub cancellation: Option<CommittedCancellation>,
}

/// A committed cancellation: the cancelling transaction's order, the most it costs, and the
/// position of its `CommitCancellation` transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedCancellation {
    /// The unsigned cancelling transaction (custody.order.v2).
    pub order: Vec<u8>,
    /// The most it costs on the external chain; deducted from the refund.
    pub fee: Amount,
    /// Height of the block holding the `CommitCancellation` transaction.
    pub height: u64,
    /// Its index in that block.
    pub index: u32,
}

/// A committed lock-out order and the position of its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOrder {
    /// The unsigned external transaction.
    pub order: Vec<u8>,
    /// Height of the block holding the `CommitOrder` transaction.
    pub height: u64,
    /// Its index in that block.
    pub index: u32,
}

impl LockOutRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/lockout");
        w.fixed(&self.owner.0);
        w.u8(self.asset.code());
        w.u128(self.amount);
        w.var(self.to_external.as_bytes());
        w.u8(self.status.code());
        w.u64(self.requested_height);
        match &self.order {
            None => w.u8(0),
            Some(c) => {
                w.u8(1);
                w.var(&c.order);
                w.u64(c.height);
                w.u32(c.index);
            }
        }
        match &self.cancellation {
            None => w.u8(0),
            Some(c) => {
                w.u8(1);
                w.var(&c.order);
                w.u128(c.fee);
                w.u64(c.height);
                w.u32(c.index);
            }
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/lockout")?;
        let owner = Address(r.array()?);
        let asset = stored_asset(r.u8()?)?;
        let amount = r.u128()?;
        let to_external = r.string("to_external", MAX_DESTINATION_BYTES)?;
        let status = LockOutStatus::from_code(r.u8()?)?;
        let requested_height = r.u64()?;
        let order = match r.u8()? {
            0 => None,
            1 => Some(CommittedOrder {
                order: r
                    .var("order", custody_proto::chain::MAX_ORDER_BYTES)?
                    .to_vec(),
                height: r.u64()?,
                index: r.u32()?,
            }),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "order",
                    reason: "bad option flag",
                })
            }
        };
        let cancellation = match r.u8()? {
            0 => None,
            1 => Some(CommittedCancellation {
                order: r
                    .var("cancellation", custody_proto::chain::MAX_ORDER_BYTES)?
                    .to_vec(),
                fee: r.u128()?,
                height: r.u64()?,
                index: r.u32()?,
            }),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "cancellation",
                    reason: "bad option flag",
                })
            }
        };
        r.finish()?;
        Ok(Self {
            owner,
            asset,
            amount,
            to_external,
            status,
            requested_height,
            order,
            cancellation,
        })
    }
}

/// A deposit address issued to an account: the BIP32 path (non-hardened, under the
/// appliance's distributed key) from which the external address is derived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositAddress {
    /// Owner.
    pub account: Address,
    /// Asset it receives.
    pub asset: Asset,
    /// Derivation path `asset code / sequence number`.
    pub path: DerivationPath,
    /// Height of the block that issued it.
    pub height: u64,
}

impl DepositAddress {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/deposit-address");
        w.fixed(&self.account.0);
        w.u8(self.asset.code());
        w.var(&self.path.to_bytes());
        w.u64(self.height);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/deposit-address")?;
        let account = Address(r.array()?);
        let asset = stored_asset(r.u8()?)?;
        let path =
            DerivationPath::from_bytes(r.var("path", 1024)?).map_err(|_| DecodeError::Invalid {
                field: "path",
                reason: "not a derivation path",
            })?;
        let a = Self {
            account,
            asset,
            path,
            height: r.u64()?,
        };
        r.finish()?;
        Ok(a)
    }
}

/// A key generation request by the admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeygenRequest {
    /// The admin account that asked.
    pub requester: Address,
    /// Height of the block that recorded it.
    pub height: u64,
}

impl KeygenRequest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/keygen-request");
        w.fixed(&self.requester.0);
        w.u64(self.height);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/keygen-request")?;
        let k = Self {
            requester: Address(r.array()?),
            height: r.u64()?,
        };
        r.finish()?;
        Ok(k)
    }
}

/// Most holders a fleet key may have.
pub const MAX_FLEET_KEY_HOLDERS: usize = 256;

/// The key a key generation request produced (DKG on the signer fleet), as the chain
/// records it: deposit addresses and lock-out orders derive from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetKeyRecord {
    /// The key id the coordinator chose for the DKG.
    pub key_id: [u8; 32],
    /// The joint public key, SEC1 compressed.
    pub public_key: [u8; 33],
    /// The BIP32 chain code from the DKG's joint randomness.
    pub chain_code: [u8; 32],
    /// How many signers sign.
    pub threshold: u16,
    /// Who holds a share, strictly increasing.
    pub holders: Vec<u16>,
    /// Height of the block that recorded it.
    pub height: u64,
}

impl FleetKeyRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/fleet-key");
        w.fixed(&self.key_id);
        w.fixed(&self.public_key);
        w.fixed(&self.chain_code);
        w.u16(self.threshold);
        encode_holders(&mut w, &self.holders);
        w.u64(self.height);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/fleet-key")?;
        let k = Self {
            key_id: r.array()?,
            public_key: r.array()?,
            chain_code: r.array()?,
            threshold: r.u16()?,
            holders: decode_holders(&mut r)?,
            height: r.u64()?,
        };
        r.finish()?;
        Ok(k)
    }
}

/// A signing-fleet session that aborted naming culprits, as the chain records it (OPS-02).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlameReport {
    /// The signers named, strictly increasing.
    pub culprits: Vec<u16>,
    /// What failed.
    pub reason: String,
    /// Digest of the evidence envelopes the coordinator keeps.
    pub evidence_digest: [u8; 32],
    /// Height of the block that recorded it.
    pub height: u64,
}

impl BlameReport {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged("custody.chain.v1/state/blame");
        encode_holders(&mut w, &self.culprits);
        w.var(self.reason.as_bytes());
        w.fixed(&self.evidence_digest);
        w.u64(self.height);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::tagged(bytes, "custody.chain.v1/state/blame")?;
        let b = Self {
            culprits: decode_holders(&mut r)?,
            reason: r.string("reason", crate::chain::tx::MAX_BLAME_REASON_BYTES)?,
            evidence_digest: r.array()?,
            height: r.u64()?,
        };
        r.finish()?;
        Ok(b)
    }
}

/// Writes a holder list: count (u16) then each index (u16).
pub(crate) fn encode_holders(w: &mut Writer, holders: &[u16]) {
    // Execution refuses more than MAX_FLEET_KEY_HOLDERS, so the count fits.
    w.u16(u16::try_from(holders.len()).unwrap_or(u16::MAX));
    for h in holders {
        w.u16(*h);
    }
}

/// Reads a holder list written by [`encode_holders`].
pub(crate) fn decode_holders(r: &mut Reader<'_>) -> Result<Vec<u16>, DecodeError> {
    let n = usize::from(r.u16()?);
    if n > MAX_FLEET_KEY_HOLDERS {
        return Err(DecodeError::Invalid {
            field: "holders",
            reason: "too many holders",
        });
    }
    (0..n).map(|_| r.u16()).collect()
}

fn stored_asset(code: u8) -> Result<Asset, DecodeError> {
    Asset::from_code(code).ok_or(DecodeError::Invalid {
        field: "asset",
        reason: "unknown asset code",
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn exact<T: PartialEq + std::fmt::Debug>(
        bytes: &[u8],
        value: &T,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) {
        assert_eq!(&decode(bytes).unwrap(), value);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn records_round_trip_strictly() {
        let mut account = Account {
            nonce: 7,
            balances: BTreeMap::new(),
        };
        account.balances.insert(Asset::MBTC, 21);
        exact(&account.encode(), &account, Account::decode);
        let totals = AssetTotals {
            supply: 1,
            locked: 2,
            credited: 3,
            burned: 4,
        };
        exact(&totals.encode(), &totals, AssetTotals::decode);
        let deposit = DepositRecord {
            asset: Asset::METH,
            account: Address([1; 20]),
            amount: 9,
            height: 3,
        };
        exact(&deposit.encode(), &deposit, DepositRecord::decode);
        let committed = Some(CommittedOrder {
            order: vec![1, 2, 3],
            height: 4,
            index: 2,
        });
        let cancellation = Some(CommittedCancellation {
            order: vec![4, 5],
            fee: 3,
            height: 9,
            index: 0,
        });
        for (order, cancellation, status) in [
            (None, None, LockOutStatus::Locked),
            (committed.clone(), None, LockOutStatus::OrderCommitted),
            (committed, cancellation, LockOutStatus::Cancelling),
        ] {
            let l = LockOutRecord {
                owner: Address([2; 20]),
                asset: Asset::MBTC,
                amount: 5,
                to_external: "bc1q".into(),
                status,
                requested_height: 3,
                order,
                cancellation,
            };
            exact(&l.encode(), &l, LockOutRecord::decode);
        }
        let a = DepositAddress {
            account: Address([3; 20]),
            asset: Asset::METH,
            path: DerivationPath::from_indices(&[1, 5]).unwrap(),
            height: 2,
        };
        exact(&a.encode(), &a, DepositAddress::decode);
        let k = KeygenRequest {
            requester: Address([4; 20]),
            height: 8,
        };
        exact(&k.encode(), &k, KeygenRequest::decode);
        let f = FleetKeyRecord {
            key_id: [5; 32],
            public_key: [2; 33],
            chain_code: [6; 32],
            threshold: 2,
            holders: vec![1, 2, 3],
            height: 9,
        };
        exact(&f.encode(), &f, FleetKeyRecord::decode);
        // Records of one kind do not decode as another.
        assert!(Account::decode(&totals.encode()).is_err());
    }
}
