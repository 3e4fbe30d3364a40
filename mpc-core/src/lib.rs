//! # mpc-core
//!
//! Sans-IO building blocks of the custody appliance's threshold ECDSA (CGGMP24, i.e. IACR
//! ePrint 2021/060, revision of 2024-10-21; figure numbers refer to that revision).
//!
//! - [`params`]: App. C.1 security parameters as named constants, checked at compile time.
//! - [`primes`]: safe-prime generation (sieve, Fermat, Miller–Rabin) with progress and
//!   cancellation.
//! - [`paillier`]: Paillier-Blum encryption on `num-bigint` with CRT for the key owner.
//! - [`ring_pedersen`]: ring-Pedersen parameters (N̂, s, t) and commitments.
//! - [`fixed_base`]: fixed-base tables and multi-exponentiation for bases fixed for an epoch.
//! - [`transcript`]: the one Fiat–Shamir transcript type.
//! - [`encoding`]: canonical, capped byte encoding and decoding.
//! - [`hd`]: BIP32 non-hardened (public) derivation: child public key, chain code and the
//!   additive shift the signers add to their shares.
//! - [`zk`]: the zero-knowledge proofs Πsch, Πmod, Πprm, Πfac, Πenc-elg, Πaff-g, Πaff-g*,
//!   Πelog and Πdec.
//! - [`protocol`]: the sans-IO framework of every multi-party protocol: party indices and the
//!   committee map, messages, steps, aborts with blame, per-round inboxes with duplicate,
//!   equivocation and broadcast-echo checks.
//! - [`vss`]: Shamir polynomials, Pedersen and Feldman commitments, Lagrange coefficients, the
//!   hash-to-curve generator H.
//! - [`dkg`]: the GJKR Pedersen-VSS DKG (whitepaper §3.5.2) with CGGMP24 Fig. 6 binding; its
//!   zero-sharing mode and `KeyShare::refresh` are the share part of proactive refresh.
//! - [`aux_info`]: auxiliary information (Fig. 7): Paillier-Blum and ring-Pedersen keys per
//!   party with Πprm, Πmod and Πfac.
//! - [`presign`]: presigning (Fig. 8) for t signers of a t-of-m key, on a BIP32 path.
//! - [`sign`]: signing from a presignature (Fig. 10), partial-signature checks, combining.
//! - [`reshare`]: resharing to a new committee (Wong–Wang–Wing redistribution).
//! - [`monty`]: Montgomery arithmetic for the big exponentiations.
//! - [`store`]: durable (to-be-sealed) encodings of key shares, aux info and presignatures.
//! - `sim` (feature `test-fixtures`): in-memory simulation of n parties with a fault plan.
//!
//! No I/O, no threads, no clocks, no logging: callers own all of that.
//!
//! ## Side channels
//! Curve arithmetic on secrets is constant time (`k256`). Big-integer arithmetic is
//! `num-bigint`, which is variable time; `audits/bigint-timing.md` lists every operation that
//! touches a secret and what that means for it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod arith;
pub mod aux_info;
pub mod dkg;
pub mod encoding;
pub mod fixed_base;
pub mod hd;
pub mod monty;
pub mod paillier;
mod paillier_nonce;
pub mod params;
pub mod presign;
pub mod primes;
pub mod protocol;
pub mod reshare;
pub mod ring_pedersen;
pub mod sign;
pub mod store;
pub mod transcript;
pub mod vss;
pub mod zk;

#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod sim;
