//! One set of aux-info safe primes as the prime pool stores it: the four safe primes of one
//! signer's aux info (Paillier p, q and ring-Pedersen p̂, q̂; CGGMP24 Fig. 7).
//!
//! The values are secret (whoever knows them factors the signer's Paillier modulus): they are
//! held in [`SecretUint`]s (wiped on drop), never printed by `Debug`, and their encoding is a
//! [`Zeroizing`] buffer that the store seals before it touches the disk.
//!
//! Encoding (version 1): `"PSET"` ‖ version u8 (1) ‖ bits u32 BE ‖ 4 × (length u32 BE ‖
//! big-endian value). Decoding is strict: every prime has exactly `bits` bits and is odd,
//! nothing follows the fourth value.

use std::fmt;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use mpc_core::arith::SecretUint;
use mpc_core::aux_info::AuxPrimes;
use mpc_core::primes::SafePrimeGenerator;
use num_bigint::BigUint;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

/// Magic at the start of an encoded prime set.
const MAGIC: &[u8; 4] = b"PSET";
/// Encoding version written by this build.
const VERSION: u8 = 1;
/// Smallest prime size a set may have (the generator's own minimum).
pub const MIN_BITS: u32 = 16;
/// Largest prime size a set may have (bounds decoding work).
pub const MAX_BITS: u32 = 8192;

/// The id of one stored prime set (random, 32 bytes; only names the record).
pub type PrimeSetId = [u8; 32];

/// Why an encoded prime set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrimeSetDecodeError {
    /// Not a prime-set record or another version.
    #[error("not a version-1 prime set record")]
    Header,
    /// The prime size is outside the supported range.
    #[error("prime size of {0} bits is outside {MIN_BITS}..={MAX_BITS}")]
    Bits(u32),
    /// The record ends early or has bytes after the fourth prime.
    #[error("prime set record has the wrong length")]
    Length,
    /// A value does not have exactly the stated size or is even.
    #[error("prime {0} of the set does not have the stated size or is even")]
    Value(usize),
}

/// Why no prime set could be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("safe prime generation failed: {0}")]
pub struct PrimeSetGenError(pub String);

/// Four safe primes for one aux info (secret; see the module docs).
pub struct PrimeSet {
    bits: u32,
    primes: [SecretUint; 4],
}

impl fmt::Debug for PrimeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrimeSet(<redacted>, {} bits)", self.bits)
    }
}

impl PrimeSet {
    /// Generates four fresh safe primes of `bits` bits with `generator` (build it once and
    /// reuse it: its sieve table is costly), calling `on_prime(k, time)` after the k-th
    /// (1..=4) with the time it took.
    pub fn generate(
        generator: &SafePrimeGenerator,
        rng: &mut impl CryptoRngCore,
        bits: u32,
        mut on_prime: impl FnMut(usize, Duration),
    ) -> Result<Self, PrimeSetGenError> {
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(PrimeSetGenError(format!(
                "prime size of {bits} bits is outside {MIN_BITS}..={MAX_BITS}"
            )));
        }
        let mut one = |k: usize| {
            let start = Instant::now();
            let p = generator
                .generate(rng, bits, |_| ControlFlow::Continue(()))
                .map_err(|e| PrimeSetGenError(e.to_string()))?;
            on_prime(k, start.elapsed());
            Ok::<_, PrimeSetGenError>(SecretUint::new(p))
        };
        Ok(Self {
            bits,
            primes: [one(1)?, one(2)?, one(3)?, one(4)?],
        })
    }

    /// A set from four given primes of `bits` bits each (for primes made elsewhere, e.g.
    /// tests with fixture primes). Checks sizes and oddness, not primality.
    pub fn from_primes(bits: u32, primes: [BigUint; 4]) -> Result<Self, PrimeSetDecodeError> {
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(PrimeSetDecodeError::Bits(bits));
        }
        let primes = primes.map(SecretUint::new);
        if let Some(k) = primes
            .iter()
            .position(|p| p.expose().bits() != u64::from(bits) || !p.expose().bit(0))
        {
            return Err(PrimeSetDecodeError::Value(k));
        }
        Ok(Self { bits, primes })
    }

    /// The size of each prime, in bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The durable encoding (secret: seal it before storing).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            9 + 4 * (4 + (self.bits as usize).div_ceil(8)),
        ));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.bits.to_be_bytes());
        for p in &self.primes {
            let bytes = Zeroizing::new(p.expose().to_bytes_be());
            // A prime has at most MAX_BITS bits, so its length fits a u32.
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Decodes [`PrimeSet::encode`]'s output strictly (see the module docs). Primality is
    /// not re-tested: a record is trusted once it unsealed.
    pub fn decode(bytes: &[u8]) -> Result<Self, PrimeSetDecodeError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(PrimeSetDecodeError::Header)?;
        let (version, rest) = rest.split_first().ok_or(PrimeSetDecodeError::Header)?;
        if *version != VERSION {
            return Err(PrimeSetDecodeError::Header);
        }
        let (bits, mut rest) = rest
            .split_first_chunk::<4>()
            .ok_or(PrimeSetDecodeError::Length)?;
        let bits = u32::from_be_bytes(*bits);
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(PrimeSetDecodeError::Bits(bits));
        }
        let want_len = (bits as usize).div_ceil(8);
        let mut values = Vec::with_capacity(4);
        for k in 0..4 {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or(PrimeSetDecodeError::Length)?;
            let len = u32::from_be_bytes(*len) as usize;
            if len != want_len {
                return Err(PrimeSetDecodeError::Value(k));
            }
            let value = tail.get(..len).ok_or(PrimeSetDecodeError::Length)?;
            let p = SecretUint::new(BigUint::from_bytes_be(value));
            if p.expose().bits() != u64::from(bits) || !p.expose().bit(0) {
                return Err(PrimeSetDecodeError::Value(k));
            }
            values.push(p);
            rest = &tail[len..];
        }
        if !rest.is_empty() {
            return Err(PrimeSetDecodeError::Length);
        }
        let primes: [SecretUint; 4] = values.try_into().map_err(|_| PrimeSetDecodeError::Length)?;
        Ok(Self { bits, primes })
    }

    /// The primes as aux-info input (p, q, p̂, q̂ in generation order).
    pub fn into_aux_primes(self) -> AuxPrimes {
        let [p, q, ph, qh] = &self.primes;
        AuxPrimes::new(
            p.expose().clone(),
            q.expose().clone(),
            ph.expose().clone(),
            qh.expose().clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    fn set() -> PrimeSet {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut seen = Vec::new();
        let g = SafePrimeGenerator::new();
        let s = PrimeSet::generate(&g, &mut rng, 64, |k, _| seen.push(k)).unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4]);
        s
    }

    #[test]
    fn round_trips_and_redacts() {
        let s = set();
        let enc = s.encode();
        let d = PrimeSet::decode(&enc).unwrap();
        assert_eq!(d.bits(), 64);
        assert_eq!(*d.encode(), *enc);
        for p in &d.primes {
            let mut rng = rand::rngs::OsRng;
            assert!(mpc_core::primes::is_safe_prime(&mut rng, p.expose()));
        }
        assert_eq!(format!("{d:?}"), "PrimeSet(<redacted>, 64 bits)");
    }

    #[test]
    fn decoding_is_strict() {
        let enc = set().encode().to_vec();
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(
            PrimeSet::decode(&long).unwrap_err(),
            PrimeSetDecodeError::Length
        );
        assert_eq!(
            PrimeSet::decode(&enc[..enc.len() - 1]).unwrap_err(),
            PrimeSetDecodeError::Length
        );
        let mut version = enc.clone();
        version[4] = 2;
        assert_eq!(
            PrimeSet::decode(&version).unwrap_err(),
            PrimeSetDecodeError::Header
        );
        let mut bits = enc.clone();
        bits[5..9].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(
            PrimeSet::decode(&bits).unwrap_err(),
            PrimeSetDecodeError::Bits(8)
        );
        let mut even = enc.clone();
        // last byte of the first prime (offset 9 + 4 + 8 - 1)
        even[20] &= 0xfe;
        assert_eq!(
            PrimeSet::decode(&even).unwrap_err(),
            PrimeSetDecodeError::Value(0)
        );
        let g = SafePrimeGenerator::with_sieve_limit(1 << 10);
        assert!(PrimeSet::generate(&g, &mut rand::rngs::OsRng, 8, |_, _| {}).is_err());
    }
}
