//! The signing gate: what a `Sign` request must prove before this signer lets a partial
//! signature leave (issue #4 "Signing gate", SIG-01).
//!
//! A request carries an `Authorization` in one of two forms: the exact order bytes with
//! Ed25519 signatures over them by a quorum of the authorizer keys pinned in `[authorizers]`,
//! or the chain's decision ([`chain`]): a block certified by more than 2/3 of the voting power
//! of the validator set pinned in `[chain]` and a Merkle proof that it commits the order. The
//! gate checks the quorum or the certificate and inclusion, decodes the order, checks that it names the key and path of the request,
//! recomputes the digest to sign from the order itself (never from a digest the caller
//! supplies) and charges the key's velocity limit. The session runner asks the gate through
//! [`SigningGate`] and signs only the digest it returns.

pub mod chain;
/// The signing order format: shared with the coordinator, so it lives in `custody_proto`.
pub use custody_proto::order;
mod velocity;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use custody_proto::signer::v1::Authorization;
use ed25519_dalek::{Signature, VerifyingKey};
use mpc_core::hd::DerivationPath;
use sha2::{Digest, Sha256};

use crate::config::{FleetId, ValidatedConfig};
use crate::vault::KeyId;
pub use order::{DigestRule, OrderError, OrderInput, SigningOrder};
use velocity::VelocityLimit;

/// Domain tag of what authorizers sign (see `proto/README.md`).
pub const AUTHORIZATION_TAG: &[u8] = b"custody.signer.v1/authorization";

/// The bytes an authorizer signs for `order`: the tag, the order's length (u32, big-endian)
/// and the order.
pub fn authorization_signing_bytes(order: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUTHORIZATION_TAG.len() + 4 + order.len());
    out.extend_from_slice(AUTHORIZATION_TAG);
    out.extend_from_slice(&(order.len() as u32).to_be_bytes());
    out.extend_from_slice(order);
    out
}

/// What the gate approved: the digest to sign and what it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignApproval {
    /// The 32-byte digest the signers sign, recomputed from the order.
    pub digest: [u8; 32],
    /// SHA-256 of the authorized order bytes (for the audit log).
    pub order_hash: [u8; 32],
    /// Height of the chain block that committed the order (chain form only).
    pub chain_height: Option<u64>,
}

/// Why the gate refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateRefusal {
    /// The authorization or order does not parse (`INVALID_ARGUMENT`).
    #[error("malformed authorization: {0}")]
    Malformed(String),
    /// Parsed, but policy says no: quorum, key or path mismatch, velocity (`PERMISSION_DENIED`).
    #[error("refused by the signing gate: {0}")]
    Denied(String),
}

impl From<GateRefusal> for tonic::Status {
    fn from(r: GateRefusal) -> Self {
        match r {
            GateRefusal::Malformed(_) => tonic::Status::invalid_argument(r.to_string()),
            GateRefusal::Denied(_) => tonic::Status::permission_denied(r.to_string()),
        }
    }
}

/// The decision a signer makes before it signs.
pub trait SigningGate: Send + Sync + 'static {
    /// Approves signing input `input_index` of the authorized order with the child key of
    /// `key_id` at `path`, and charges the key's velocity limit; or refuses. Must not block.
    fn approve(
        &self,
        key_id: &KeyId,
        path: &DerivationPath,
        authorization: &Authorization,
        input_index: u32,
    ) -> Result<SignApproval, GateRefusal>;
}

/// The signing gate of a node: pinned authorizer keys and quorum from the configuration, the
/// fleet id, and a velocity limit per key (in memory: a restart forgets past charges, so the
/// limit bounds what one process lifetime signs; persisting the counters belongs with the
/// store).
pub struct PolicyGate {
    fleet_id: FleetId,
    authorizers: Vec<VerifyingKey>,
    quorum: usize,
    chain: Option<chain::ChainPin>,
    velocity: VelocityLimit,
}

impl PolicyGate {
    /// The gate a validated configuration describes.
    pub fn from_config(cfg: &ValidatedConfig) -> Self {
        Self::new(
            cfg.fleet_id().clone(),
            cfg.authorizer_keys.clone(),
            cfg.raw.authorizers.quorum,
            cfg.raw.policy.max_signatures_per_window,
            Duration::from_secs(cfg.raw.policy.window_secs),
        )
        .with_chain(cfg.chain.clone())
    }

    /// Also accepts the chain form, for the chain `pin` (none: only authorizer quorums).
    pub fn with_chain(mut self, pin: Option<chain::ChainPin>) -> Self {
        self.chain = pin;
        self
    }

    /// A gate with explicit settings (the configuration validated them: quorum between 1 and
    /// the number of distinct keys, a positive limit and window).
    pub fn new(
        fleet_id: FleetId,
        authorizers: Vec<VerifyingKey>,
        quorum: usize,
        max_per_window: u32,
        window: Duration,
    ) -> Self {
        Self {
            fleet_id,
            authorizers,
            quorum,
            chain: None,
            velocity: VelocityLimit::new(max_per_window, window),
        }
    }

    /// Counts distinct pinned authorizers whose signature over `order` verifies. A signature
    /// by a pinned key that does not verify refuses the whole request (someone altered it);
    /// signatures by keys that are not pinned are ignored.
    fn check_quorum(&self, auth: &Authorization) -> Result<(), GateRefusal> {
        // more signatures than pinned keys can only be padding
        if auth.signatures.len() > 2 * self.authorizers.len() + 2 {
            return Err(GateRefusal::Malformed(format!(
                "{} authorizer signatures for {} pinned keys",
                auth.signatures.len(),
                self.authorizers.len()
            )));
        }
        let message = authorization_signing_bytes(&auth.order);
        let mut counted: Vec<&VerifyingKey> = Vec::new();
        for (i, sig) in auth.signatures.iter().enumerate() {
            let key_bytes: [u8; 32] = sig.public_key.as_slice().try_into().map_err(|_| {
                GateRefusal::Malformed(format!("signatures[{i}].public_key is not 32 bytes"))
            })?;
            let sig_bytes: [u8; 64] = sig.signature.as_slice().try_into().map_err(|_| {
                GateRefusal::Malformed(format!("signatures[{i}].signature is not 64 bytes"))
            })?;
            let Some(key) = self.authorizers.iter().find(|k| k.as_bytes() == &key_bytes) else {
                continue;
            };
            key.verify_strict(&message, &Signature::from_bytes(&sig_bytes))
                .map_err(|_| {
                    GateRefusal::Denied(format!(
                        "signatures[{i}] by pinned authorizer {} does not verify",
                        hex::encode(key_bytes)
                    ))
                })?;
            if !counted.contains(&key) {
                counted.push(key);
            }
        }
        if counted.len() < self.quorum {
            return Err(GateRefusal::Denied(format!(
                "{} of the required {} authorizer signatures",
                counted.len(),
                self.quorum
            )));
        }
        Ok(())
    }

    /// The order bytes the authorization proves were decided, and the height of the block
    /// that committed them (chain form).
    fn authorized_order<'a>(
        &self,
        authorization: &'a Authorization,
    ) -> Result<(std::borrow::Cow<'a, [u8]>, Option<u64>), GateRefusal> {
        if let Some(proof) = &authorization.chain {
            if !authorization.order.is_empty() || !authorization.signatures.is_empty() {
                return Err(GateRefusal::Malformed(
                    "an authorization carries either the chain form or order and signatures, not both"
                        .into(),
                ));
            }
            let pin = self.chain.as_ref().ok_or_else(|| {
                GateRefusal::Denied(
                    "this signer pins no chain ([chain] is not configured); the chain form is refused"
                        .into(),
                )
            })?;
            let committed = pin.verify(proof)?;
            tracing::debug!(
                lockout = %hex::encode(committed.lockout_id),
                height = committed.height,
                cancellation = committed.cancellation,
                "chain authorization verified"
            );
            return Ok((committed.order.into(), Some(committed.height)));
        }
        if authorization.order.len() > order::MAX_ORDER_BYTES {
            return Err(GateRefusal::Malformed(format!(
                "order is {} bytes, at most {} are accepted",
                authorization.order.len(),
                order::MAX_ORDER_BYTES
            )));
        }
        self.check_quorum(authorization)?;
        Ok((authorization.order.as_slice().into(), None))
    }

    /// [`SigningGate::approve`] at a given time (tests move the clock).
    pub fn approve_at(
        &self,
        now: SystemTime,
        key_id: &KeyId,
        path: &DerivationPath,
        authorization: &Authorization,
        input_index: u32,
    ) -> Result<SignApproval, GateRefusal> {
        let (order_bytes, chain_height) = self.authorized_order(authorization)?;
        let order = SigningOrder::decode(&order_bytes)
            .map_err(|e| GateRefusal::Malformed(e.to_string()))?;
        if order.fleet_id != self.fleet_id.as_str() {
            return Err(GateRefusal::Denied(format!(
                "order is for fleet {:?}, this is {}",
                order.fleet_id, self.fleet_id
            )));
        }
        if &order.key_id != key_id {
            return Err(GateRefusal::Denied(format!(
                "order names key {}, the request key {}",
                hex::encode(order.key_id),
                hex::encode(key_id)
            )));
        }
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now_secs > order.not_after {
            return Err(GateRefusal::Denied(format!(
                "order expired at {} (now {now_secs})",
                order.not_after
            )));
        }
        let input = order.inputs.get(input_index as usize).ok_or_else(|| {
            GateRefusal::Malformed(format!(
                "input {input_index} of an order with {} inputs",
                order.inputs.len()
            ))
        })?;
        let requested: Vec<u32> = path.indices().iter().map(|c| c.get()).collect();
        if input.path != requested {
            return Err(GateRefusal::Denied(format!(
                "order input {input_index} names path {:?}, the request {:?} (SIG-02)",
                input.path, requested
            )));
        }
        let digest = input.digest();
        self.velocity.charge(key_id, now)?;
        Ok(SignApproval {
            digest,
            order_hash: Sha256::digest(&order_bytes).into(),
            chain_height,
        })
    }
}

impl SigningGate for PolicyGate {
    fn approve(
        &self,
        key_id: &KeyId,
        path: &DerivationPath,
        authorization: &Authorization,
        input_index: u32,
    ) -> Result<SignApproval, GateRefusal> {
        self.approve_at(SystemTime::now(), key_id, path, authorization, input_index)
    }
}

#[cfg(test)]
mod tests;
