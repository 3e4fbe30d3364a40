//! The sealed sled store of a signer (issue #4 "Store"): [`SledVault`], the production
//! [`Vault`](crate::vault::Vault).
//!
//! - **Layout** ([`layout`]): one sled database in `DATA_DIR/store/`, one tree per record
//!   kind (`keys`, `aux`, `presignatures`, `reservations`, `prime_sets`, `audit`, and
//!   `sessions`: public, integrity-checked session records) and a `meta`
//!   tree with the format version (an unknown one is refused at open), the data key id of the
//!   sealer the store was created with and a sealed canary (opening with another keystore
//!   fails at once with [`StoreError::WrongDataKey`]).
//! - **Sealing** ([`sealing`], OPS-04): every secret value (key share, aux info,
//!   presignature) is sealed by the HSM profile's [`Sealer`](hsm_profiles::Sealer) with an AAD
//!   naming its record kind, key id, epoch and (for presignatures) session id, so a value moved
//!   to another key, tree, slot or epoch does not open. Epochs and ids are public and stored
//!   in the clear.
//! - **Atomicity and durability**: each state change is one sled transaction together with
//!   its audit entry (a refresh replaces share and aux info and erases the key's
//!   presignatures in one transaction, REF-02), and the database is flushed (fsync) before the
//!   call returns. [`Vault::take_presignature`](crate::vault::Vault::take_presignature)
//!   opens and decodes the presignature, removes it, flushes, and only then returns it
//!   (PRE-06).
//! - **Audit** ([`audit`]): an append-only SHA-256 hash chain, checked by
//!   [`SledVault::verify_audit`] / [`verify_audit_at`] and `signer-node audit verify`.
//!
//! The store writes its own audit entries for the changes it makes (`KeyCreated`,
//! `KeyRefreshed`, `PresignatureAdded`, `PresignatureConsumed`, and `SessionAborted` for a
//! reservation dropped at open); callers of [`Vault::audit`](crate::vault::Vault::audit) add
//! what the store cannot see (partial signatures issued, aborts, refusals).

pub mod audit;
mod db;
mod error;
pub mod layout;
pub mod sealing;
mod vault_impl;

pub use audit::{AuditRecord, ChainReport};
pub use db::{verify_audit_at, CheckReport, SledVault};
pub use error::StoreError;
