//! Where the four safe primes of a signer's aux info come from (Paillier p, q and
//! ring-Pedersen p̂, q̂; CGGMP24 Fig. 7).
//!
//! - [`GeneratedPrimes`]: fresh 1536-bit safe primes from `mpc_core::primes` (seconds to a
//!   minute of CPU each). The runner calls it on a blocking thread, in parallel with the DKG.
//!   With `[pools] safe_prime_sets` > 0 the node uses `pools::prime_pool::PooledPrimes`
//!   instead, which takes sets the background pool made and falls back to this.
//! - `FixturePrimes` (feature `devnet-fixtures`): the committed fixture primes of
//!   `mpc_core::fixtures`. **They are public**: anyone can factor the resulting Paillier
//!   moduli, so every key made with them is broken. Only for tests and devnets, and only
//!   when the config says `[devnet] fixture_primes = true`; [`from_config`] refuses otherwise.

use std::ops::ControlFlow;
use std::sync::Arc;

use mpc_core::aux_info::AuxPrimes;
use mpc_core::params::PRIME_BITS;
use mpc_core::primes::generate_safe_prime;

use crate::config::ValidatedConfig;

/// Why no primes could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrimeError {
    /// The generator failed.
    #[error("safe prime generation failed: {0}")]
    Generation(String),
    /// The fixture set has no primes for this signer index.
    #[error("the fixture primes cover signers 1..={max}; signer {index} has none")]
    NoFixture {
        /// The signer.
        index: u16,
        /// The highest covered index.
        max: usize,
    },
    /// The config asks for fixture primes, but this build does not contain them.
    #[error("[devnet] fixture_primes = true, but this build has no fixture primes (build with the devnet-fixtures feature)")]
    FixturesNotBuilt,
    /// Fixture primes were asked for without the config switch.
    #[error("fixture primes are public and need `[devnet] fixture_primes = true` in the config")]
    FixturesNotAllowed,
}

/// A supplier of aux-info primes. `aux_primes` may take long: callers run it on a blocking
/// thread.
pub trait PrimeSource: Send + Sync + 'static {
    /// Four safe primes for signer `index`'s aux info.
    fn aux_primes(&self, index: u16) -> Result<AuxPrimes, PrimeError>;
    /// A name for logs.
    fn name(&self) -> &'static str;
    /// The level of the prime pool behind this source, if it has one.
    fn pool_level(
        &self,
    ) -> Option<Result<crate::pools::prime_pool::PrimePoolLevel, crate::vault::VaultError>> {
        None
    }
}

/// Fresh safe primes from the OS random generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct GeneratedPrimes;

impl PrimeSource for GeneratedPrimes {
    fn aux_primes(&self, _index: u16) -> Result<AuxPrimes, PrimeError> {
        let mut rng = rand::rngs::OsRng;
        let mut one = || {
            generate_safe_prime(&mut rng, PRIME_BITS, |_| ControlFlow::Continue(()))
                .map_err(|e| PrimeError::Generation(e.to_string()))
        };
        Ok(AuxPrimes::new(one()?, one()?, one()?, one()?))
    }

    fn name(&self) -> &'static str {
        "generated"
    }
}

/// The committed, public fixture primes: signer i gets fixture primes 4(i−1) .. 4(i−1)+3, so
/// every signer's moduli differ. Tests and devnets only (module docs).
#[cfg(feature = "devnet-fixtures")]
#[derive(Debug)]
pub struct FixturePrimes {
    _allowed: (),
}

#[cfg(feature = "devnet-fixtures")]
impl FixturePrimes {
    /// The fixture source, if `config` has `[devnet] fixture_primes = true`.
    pub fn from_config(config: &ValidatedConfig) -> Result<Self, PrimeError> {
        if config.raw.devnet.fixture_primes {
            Ok(Self { _allowed: () })
        } else {
            Err(PrimeError::FixturesNotAllowed)
        }
    }
}

#[cfg(feature = "devnet-fixtures")]
impl PrimeSource for FixturePrimes {
    fn aux_primes(&self, index: u16) -> Result<AuxPrimes, PrimeError> {
        let all = mpc_core::fixtures::safe_primes();
        let first = usize::from(index).saturating_sub(1) * 4;
        match (index, all.get(first..first + 4)) {
            (1.., Some([p, q, ph, qh])) => {
                Ok(AuxPrimes::new(p.clone(), q.clone(), ph.clone(), qh.clone()))
            }
            _ => Err(PrimeError::NoFixture {
                index,
                max: all.len() / 4,
            }),
        }
    }

    fn name(&self) -> &'static str {
        "FIXTURE (public, devnet only)"
    }
}

/// The source the config calls for: fixture primes with `[devnet] fixture_primes = true`
/// (refused if this build lacks them), fresh primes otherwise.
pub fn from_config(config: &ValidatedConfig) -> Result<Arc<dyn PrimeSource>, PrimeError> {
    if !config.raw.devnet.fixture_primes {
        return Ok(Arc::new(GeneratedPrimes));
    }
    #[cfg(feature = "devnet-fixtures")]
    {
        tracing::warn!("[devnet] fixture_primes = true: aux info uses PUBLIC primes; every key of this node is breakable");
        Ok(Arc::new(FixturePrimes::from_config(config)?))
    }
    #[cfg(not(feature = "devnet-fixtures"))]
    Err(PrimeError::FixturesNotBuilt)
}
