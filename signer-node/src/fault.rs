//! Test-only fault injection: a node that deliberately sends one bad zero-knowledge proof, so
//! the multi-process tests can show that honest signers abort, blame it, and hand out
//! evidence that verifies ([`crate::blame`]).
//!
//! Two locks keep this out of real fleets:
//!
//! - the corrupting code exists only in builds with the cargo feature `fault-injection`
//!   (test builds; CI enables every feature, so it is compiled there);
//! - even in such a build nothing happens unless the environment variable
//!   [`FAULT_ENV`] names a fault **and** `signer-node run` is given
//!   `--dangerously-inject-faults`; `run` refuses to start when the variable is set without
//!   the flag (and, in a build without the feature, refuses the variable outright).
//!
//! The fault is applied to the payload *before* the envelope is signed, so the envelope is
//! correctly signed by this node and passes every envelope check at the receivers; only the
//! protocol's proof check fails. The payload is decoded and re-encoded with `mpc-core`'s own
//! message types (no blind byte flipping): the message stays well-formed and within its caps.

use custody_proto::signer::v1::ProtocolKind;

/// The environment variable naming the fault to inject (see [`FaultSpec::parse`]).
pub const FAULT_ENV: &str = "SIGNER_NODE_FAULT";

/// The faults a test can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSpec {
    /// `presign-r2-elog`: in presigning round 2, the broadcast's Πelog proof for Γ_i gets its
    /// response z replaced by z + 1 (PRE-03 fails at every receiver).
    PresignRound2Elog,
}

impl FaultSpec {
    /// Parses the value of [`FAULT_ENV`].
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "presign-r2-elog" => Ok(Self::PresignRound2Elog),
            other => Err(format!(
                "{FAULT_ENV}={other:?}: unknown fault (known: presign-r2-elog)"
            )),
        }
    }

    /// The fault named by [`FAULT_ENV`], if the variable is set.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var(FAULT_ENV) {
            Ok(v) => Self::parse(&v).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(format!("{FAULT_ENV}: {e}")),
        }
    }
}

#[cfg(feature = "fault-injection")]
static ARMED: std::sync::OnceLock<FaultSpec> = std::sync::OnceLock::new();

/// Whether this build can inject faults (the `fault-injection` feature).
pub const AVAILABLE: bool = cfg!(feature = "fault-injection");

/// Arms `spec` for the rest of the process. Only `signer-node run --dangerously-inject-faults`
/// calls this; a build without the `fault-injection` feature refuses.
#[cfg(feature = "fault-injection")]
pub fn arm(spec: FaultSpec) -> Result<(), String> {
    ARMED
        .set(spec)
        .map_err(|_| "a fault is already armed".to_owned())
}

/// Arms `spec` for the rest of the process: refused, this build has no fault injection.
#[cfg(not(feature = "fault-injection"))]
pub fn arm(spec: FaultSpec) -> Result<(), String> {
    Err(format!(
        "{FAULT_ENV} names {spec:?}, but this signer-node was built without the \
         `fault-injection` feature"
    ))
}

/// The payload to sign and send: `payload` itself, unless an armed fault targets this
/// message (`kind`, `round`, broadcast or not; `parties` is the committee size the message
/// decoder needs).
#[cfg(feature = "fault-injection")]
pub(crate) fn outgoing(
    kind: ProtocolKind,
    round: u16,
    broadcast: bool,
    parties: usize,
    payload: Vec<u8>,
) -> Vec<u8> {
    match ARMED.get() {
        Some(spec) => corrupt(*spec, kind, round, broadcast, parties, payload),
        None => payload,
    }
}

/// The payload to sign and send: always `payload` (no fault injection in this build).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn outgoing(
    _kind: ProtocolKind,
    _round: u16,
    _broadcast: bool,
    _parties: usize,
    payload: Vec<u8>,
) -> Vec<u8> {
    payload
}

#[cfg(feature = "fault-injection")]
fn corrupt(
    spec: FaultSpec,
    kind: ProtocolKind,
    round: u16,
    broadcast: bool,
    parties: usize,
    payload: Vec<u8>,
) -> Vec<u8> {
    use k256::Scalar;
    use mpc_core::presign::msg::Round2Broadcast;
    match spec {
        FaultSpec::PresignRound2Elog
            if kind == ProtocolKind::Presign && round == 2 && broadcast =>
        {
            match Round2Broadcast::from_bytes(&payload, parties) {
                Ok(mut msg) => {
                    msg.psi.z += Scalar::ONE;
                    tracing::error!(
                        "FAULT INJECTION: sending presigning round 2 with a corrupted Πelog proof"
                    );
                    msg.to_bytes()
                }
                Err(e) => {
                    tracing::error!(error = %e, "FAULT INJECTION: could not decode the round-2 broadcast; sent unchanged");
                    payload
                }
            }
        }
        _ => payload,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn specs_parse_and_unknown_ones_are_refused() {
        assert_eq!(
            FaultSpec::parse("presign-r2-elog").unwrap(),
            FaultSpec::PresignRound2Elog
        );
        assert!(FaultSpec::parse("flip-everything")
            .unwrap_err()
            .contains("unknown fault"));
    }

    #[test]
    fn nothing_is_changed_while_no_fault_is_armed() {
        // no test of this crate arms a fault in-process
        let payload = vec![1, 2, 3];
        assert_eq!(
            outgoing(ProtocolKind::Presign, 2, true, 3, payload.clone()),
            payload
        );
    }
}
