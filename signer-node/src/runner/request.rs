//! Checks of control requests (DESIGN §7: fixed-length fields, known signers) and the
//! status codes of vault errors.

use custody_proto::signer::v1::DerivationPath as WirePath;
use mpc_core::hd::DerivationPath;
use tonic::Status;

use super::positions::Positions;
use crate::vault::VaultError;

/// A 32-byte field, or `INVALID_ARGUMENT` naming it.
pub fn id32(field: &str, bytes: &[u8]) -> Result<[u8; 32], Status> {
    bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("{field} must be 32 bytes, got {}", bytes.len()))
    })
}

/// A set of distinct signer indices of this fleet (this signer may or may not be one).
pub fn fleet_subset(field: &str, indices: &[u32], fleet: &[u16]) -> Result<Positions, Status> {
    let mut members = Vec::with_capacity(indices.len());
    for i in indices {
        let i = u16::try_from(*i)
            .ok()
            .filter(|i| fleet.contains(i))
            .ok_or_else(|| {
                Status::invalid_argument(format!("{field}: {i} is not a signer of this fleet"))
            })?;
        members.push(i);
    }
    Positions::new(members).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

/// A set of signer indices of this fleet that includes this signer.
pub fn signer_set(
    field: &str,
    indices: &[u32],
    fleet: &[u16],
    me: u16,
) -> Result<Positions, Status> {
    let mut members = Vec::with_capacity(indices.len());
    for i in indices {
        let i = u16::try_from(*i)
            .ok()
            .filter(|i| fleet.contains(i))
            .ok_or_else(|| {
                Status::invalid_argument(format!("{field}: {i} is not a signer of this fleet"))
            })?;
        members.push(i);
    }
    let set =
        Positions::new(members).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))?;
    if set.position_of(me).is_none() {
        return Err(Status::invalid_argument(format!(
            "{field} does not include this signer ({me})"
        )));
    }
    Ok(set)
}

/// The derivation path (absent = the key itself).
pub fn path(field: &str, path: Option<&WirePath>) -> Result<DerivationPath, Status> {
    match path {
        None => Ok(DerivationPath::root()),
        Some(p) => DerivationPath::from_indices(&p.indices)
            .map_err(|e| Status::invalid_argument(format!("{field}: {e}"))),
    }
}

/// The status code of a vault error.
pub fn vault_status(e: VaultError) -> Status {
    match &e {
        VaultError::KeyExists(_)
        | VaultError::KeyReserved(_)
        | VaultError::PresignatureExists { .. }
        | VaultError::SessionExists(_) => Status::already_exists(e.to_string()),
        VaultError::NoSuchKey(_) | VaultError::NoSuchSession(_) => Status::not_found(e.to_string()),
        VaultError::StaleEpoch { .. }
        | VaultError::EpochMismatch { .. }
        | VaultError::SessionEnd { .. } => Status::failed_precondition(e.to_string()),
        VaultError::Decode(_) | VaultError::SessionRecord(_) => Status::data_loss(e.to_string()),
        VaultError::Storage(_) => Status::unavailable(e.to_string()),
    }
}

/// Runs a vault call on a blocking thread (the sealed store flushes to disk).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VaultError> + Send + 'static,
) -> Result<T, VaultError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| VaultError::Storage(format!("vault task failed: {e}")))?
}
