//! Who is calling: the role in the caller's mTLS certificate.
//!
//! The fleet CA writes the role into the leaf certificate's URI SAN:
//! `custody://signer/3`, `custody://coordinator/1` or `custody://client/NAME`. A certificate
//! must carry exactly one `custody://` URI, and it must be well formed; anything else is
//! refused. Other SAN kinds (DNS names, IP addresses) are for TLS server names and are
//! ignored here.

use std::fmt;

use tonic::{Request, Status};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The URI scheme (with its `://`) of role SANs.
pub const ROLE_URI_PREFIX: &str = "custody://";
/// Longest client name.
pub const MAX_CLIENT_NAME_LEN: usize = 64;

/// The authenticated caller of an RPC, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallerIdentity {
    /// A signer node, by its signer index.
    Signer(u16),
    /// A coordinator replica, by its index.
    Coordinator(u16),
    /// A client (chain node, wallet), by name.
    Client(String),
}

/// The role part of a [`CallerIdentity`], for checks and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A signer node.
    Signer,
    /// A coordinator replica.
    Coordinator,
    /// A client.
    Client,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Signer => "signer",
            Role::Coordinator => "coordinator",
            Role::Client => "client",
        })
    }
}

impl CallerIdentity {
    /// The role.
    pub fn role(&self) -> Role {
        match self {
            CallerIdentity::Signer(_) => Role::Signer,
            CallerIdentity::Coordinator(_) => Role::Coordinator,
            CallerIdentity::Client(_) => Role::Client,
        }
    }

    /// The identity as its certificate URI (`custody://signer/3`).
    pub fn to_uri(&self) -> String {
        match self {
            CallerIdentity::Signer(i) => format!("{ROLE_URI_PREFIX}signer/{i}"),
            CallerIdentity::Coordinator(i) => format!("{ROLE_URI_PREFIX}coordinator/{i}"),
            CallerIdentity::Client(name) => format!("{ROLE_URI_PREFIX}client/{name}"),
        }
    }

    /// Parses a role URI. Indices are decimal without sign or leading zeros; client names
    /// are 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub fn from_uri(uri: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::MalformedUri(uri.to_owned());
        let rest = uri.strip_prefix(ROLE_URI_PREFIX).ok_or_else(bad)?;
        let (role, id) = rest.split_once('/').ok_or_else(bad)?;
        match role {
            "signer" => parse_index(id).map(CallerIdentity::Signer).ok_or_else(bad),
            "coordinator" => parse_index(id)
                .map(CallerIdentity::Coordinator)
                .ok_or_else(bad),
            "client" if valid_client_name(id) => Ok(CallerIdentity::Client(id.to_owned())),
            _ => Err(bad()),
        }
    }

    /// Extracts the identity from a DER leaf certificate.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|_| IdentityError::UnparsableCertificate)?;
        if !rest.is_empty() {
            return Err(IdentityError::UnparsableCertificate);
        }
        let san = cert
            .subject_alternative_name()
            .map_err(|_| IdentityError::UnparsableCertificate)?;
        let mut role_uris = san
            .iter()
            .flat_map(|ext| ext.value.general_names.iter())
            .filter_map(|name| match name {
                GeneralName::URI(uri) if uri.starts_with(ROLE_URI_PREFIX) => Some(*uri),
                _ => None,
            });
        let first = role_uris.next().ok_or(IdentityError::NoRoleUri)?;
        let extra = role_uris.count();
        if extra > 0 {
            return Err(IdentityError::SeveralRoleUris(extra + 1));
        }
        Self::from_uri(first)
    }

    /// The caller of a request, from the leaf certificate the TLS layer verified.
    pub fn from_request<T>(request: &Request<T>) -> Result<Self, IdentityError> {
        let certs = request.peer_certs().ok_or(IdentityError::NoCertificate)?;
        let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
        Self::from_certificate_der(leaf.as_ref())
    }
}

impl fmt::Display for CallerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

fn parse_index(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

fn valid_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CLIENT_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a caller has no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The connection carried no client certificate (cannot happen behind the mTLS server,
    /// which demands one; checked anyway).
    #[error("the caller presented no client certificate")]
    NoCertificate,
    /// The leaf certificate is not parsable X.509.
    #[error("the caller's certificate cannot be parsed")]
    UnparsableCertificate,
    /// No `custody://` URI SAN.
    #[error("the caller's certificate has no custody:// role URI")]
    NoRoleUri,
    /// More than one `custody://` URI SAN.
    #[error("the caller's certificate has {0} custody:// role URIs; exactly one is allowed")]
    SeveralRoleUris(usize),
    /// A `custody://` URI that is not one of the three role forms.
    #[error("the caller's role URI {0:?} is not custody://signer/N, custody://coordinator/N or custody://client/NAME")]
    MalformedUri(String),
}

impl From<IdentityError> for Status {
    fn from(e: IdentityError) -> Status {
        Status::permission_denied(e.to_string())
    }
}

/// Checks that `identity` has the `required` role; the refusal names both roles.
pub fn require_role(identity: &CallerIdentity, required: Role) -> Result<(), Status> {
    if identity.role() == required {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "this service requires a {required} certificate; the caller presented {identity} (role {})",
            identity.role()
        )))
    }
}

/// A tonic interceptor that admits only callers of one role and hands their identity to the
/// handlers (as a request extension, read with [`caller`]).
#[derive(Debug, Clone, Copy)]
pub struct RoleGate {
    required: Role,
}

impl RoleGate {
    /// Admits callers of `required` role only.
    pub fn new(required: Role) -> Self {
        Self { required }
    }
}

impl tonic::service::Interceptor for RoleGate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let identity = CallerIdentity::from_request(&request)?;
        require_role(&identity, self.required)?;
        request.extensions_mut().insert(identity);
        Ok(request)
    }
}

/// The caller identity a [`RoleGate`] put on the request. A handler reached without the gate
/// (a wiring bug) refuses the call with `PERMISSION_DENIED` rather than serve it.
pub fn caller<T>(request: &Request<T>) -> Result<&CallerIdentity, Status> {
    request.extensions().get::<CallerIdentity>().ok_or_else(|| {
        Status::permission_denied(
            "no verified caller identity on this request (service served without its role gate)",
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn role_uris_round_trip() {
        for id in [
            CallerIdentity::Signer(0),
            CallerIdentity::Signer(65535),
            CallerIdentity::Coordinator(1),
            CallerIdentity::Client("eth-node_1.a".into()),
        ] {
            assert_eq!(CallerIdentity::from_uri(&id.to_uri()).unwrap(), id);
        }
    }

    #[test]
    fn malformed_role_uris_are_refused() {
        for uri in [
            "custody://signer/",
            "custody://signer/03",
            "custody://signer/+3",
            "custody://signer/65536",
            "custody://signer/3/4",
            "custody://coordinator/x",
            "custody://client/",
            "custody://client/a b",
            "custody://client/a/b",
            "custody://admin/1",
            "custody:/signer/1",
            "https://signer/1",
        ] {
            assert!(
                matches!(
                    CallerIdentity::from_uri(uri),
                    Err(IdentityError::MalformedUri(_))
                ),
                "{uri} was accepted"
            );
        }
        let long = format!("custody://client/{}", "a".repeat(65));
        assert!(CallerIdentity::from_uri(&long).is_err());
    }

    #[test]
    fn wrong_role_names_both_roles() {
        let e = require_role(&CallerIdentity::Client("w".into()), Role::Coordinator).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("requires a coordinator"));
        assert!(e.message().contains("custody://client/w"));
    }
}
