//! Mapped assets: tokens on this chain that stand for value locked on an external chain.

use std::fmt;

/// An amount in the external chain's smallest unit (wei for mETH, satoshi for mBTC).
/// All arithmetic on amounts is checked.
pub type Amount = u128;

/// A mapped asset. Its one-byte code is what transactions and state records carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Asset {
    /// Mapped ether; amounts in wei.
    METH,
    /// Mapped bitcoin; amounts in satoshi.
    MBTC,
}

impl Asset {
    /// Every asset, in code order.
    pub const ALL: [Asset; 2] = [Asset::METH, Asset::MBTC];

    /// The asset's one-byte code: 1 for mETH, 2 for mBTC.
    pub fn code(self) -> u8 {
        match self {
            Asset::METH => 1,
            Asset::MBTC => 2,
        }
    }

    /// Position in [`Asset::ALL`].
    pub fn index(self) -> usize {
        match self {
            Asset::METH => 0,
            Asset::MBTC => 1,
        }
    }

    /// The asset with this code, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Asset::METH => "mETH",
            Asset::MBTC => "mBTC",
        })
    }
}
