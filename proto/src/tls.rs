//! mTLS for the fleet's servers and their outgoing channels (rustls through tonic): signer
//! nodes and coordinators both use it.
//!
//! The server demands a client certificate that chains to the fleet CA on every connection;
//! there is no plaintext listener and no optional client authentication. Outgoing channels
//! present the node's own certificate and trust only the fleet CA.
//!
//! [`TlsMaterial::channel`] checks the server's certificate against the fleet CA and the
//! endpoint's host name only. Channels to peer signers, which carry secret-bearing envelopes,
//! are made by [`crate::peer_tls::signer_channel`], which also pins the server's role URI to
//! the signer it means to reach (`custody://signer/N`).

use std::fmt;
use std::path::{Path, PathBuf};

use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};
use zeroize::Zeroizing;

use crate::identity::{CallerIdentity, IdentityError};

/// How long a TLS handshake may take before the server drops the connection.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The PEM material of one mTLS identity plus the CA it trusts.
#[derive(Clone)]
pub struct TlsMaterial {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Zeroizing<Vec<u8>>,
    identity: CallerIdentity,
}

impl TlsMaterial {
    /// Reads the CA certificate, our certificate and our key from PEM files and checks that
    /// the certificate parses and carries exactly one valid role URI.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Self::from_pem(read(ca)?, read(cert)?, Zeroizing::new(read(key)?))
    }

    /// The material from PEM bytes.
    pub fn from_pem(
        ca_pem: Vec<u8>,
        cert_pem: Vec<u8>,
        key_pem: Zeroizing<Vec<u8>>,
    ) -> Result<Self, TlsError> {
        let (_, ca) = x509_parser::pem::parse_x509_pem(&ca_pem)
            .map_err(|_| TlsError::NotPem("CA certificate"))?;
        if ca.label != "CERTIFICATE" {
            return Err(TlsError::NotPem("CA certificate"));
        }
        let (_, cert) = x509_parser::pem::parse_x509_pem(&cert_pem)
            .map_err(|_| TlsError::NotPem("certificate"))?;
        let identity = CallerIdentity::from_certificate_der(&cert.contents)?;
        if !String::from_utf8_lossy(&key_pem).contains("PRIVATE KEY-----") {
            return Err(TlsError::NotPem("private key"));
        }
        Ok(Self {
            ca_pem,
            cert_pem,
            key_pem,
            identity,
        })
    }

    /// The role in this material's own certificate.
    pub fn identity(&self) -> &CallerIdentity {
        &self.identity
    }

    /// The fleet CA certificate, PEM.
    pub(crate) fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// Our certificate, PEM.
    pub(crate) fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// Our TLS private key, PEM.
    pub(crate) fn key_pem(&self) -> &[u8] {
        &self.key_pem
    }

    /// Server side: our certificate, client certificates from the fleet CA mandatory.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, self.key_pem.as_slice()))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(false)
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// Client side: present our certificate, trust only the fleet CA. `server_name`
    /// overrides the name checked in the server's certificate (default: the endpoint's host).
    pub fn client_config(&self, server_name: Option<&str>) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, self.key_pem.as_slice()))
            .timeout(HANDSHAKE_TIMEOUT);
        match server_name {
            Some(name) => config.domain_name(name),
            None => config,
        }
    }

    /// A lazily connecting mTLS channel to `endpoint` (`https://HOST:PORT`).
    pub fn channel(&self, endpoint: &str) -> Result<Channel, TlsError> {
        Ok(Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| TlsError::Endpoint(endpoint.to_owned(), e.to_string()))?
            .tls_config(self.client_config(None))
            .map_err(|e| TlsError::Endpoint(endpoint.to_owned(), e.to_string()))?
            .connect_lazy())
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("the {0} file is not PEM")]
    NotPem(&'static str),
    /// The node's own certificate has no usable role URI.
    #[error("own certificate: {0}")]
    Identity(#[from] IdentityError),
    /// An endpoint URL is unusable.
    #[error("endpoint {0}: {1}")]
    Endpoint(String, String),
    /// The rustls client configuration could not be built from the material.
    #[error("TLS client configuration: {0}")]
    ClientConfig(String),
}
