//! Outgoing mTLS channels to peer signers, with the server's role pinned (NET-02, sending side).
//!
//! [`crate::tls::TlsMaterial::channel`] trusts any server certificate of the fleet CA whose
//! name matches the endpoint's host. Envelopes carry secret shares, so a channel to signer N
//! must reach signer N and nobody else with a fleet certificate: [`signer_channel`] builds a
//! rustls client configuration whose verifier first runs the usual WebPKI checks (chain to the
//! fleet CA, validity, host name) and then requires the certificate's single `custody://` URI
//! to be exactly `custody://signer/N`. The handshake fails otherwise, before any request is
//! sent. tonic gets the finished TLS stream from a custom connector (the endpoint URL it sees
//! is `http://`, because TLS is already done underneath it).

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use crate::identity::CallerIdentity;
use crate::tls::{TlsError, TlsMaterial, HANDSHAKE_TIMEOUT};

/// How long opening the TCP connection to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// WebPKI verification plus the role pin.
#[derive(Debug)]
struct PinnedSignerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    expected: CallerIdentity,
}

impl ServerCertVerifier for PinnedSignerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let presented = CallerIdentity::from_certificate_der(end_entity.as_ref()).map_err(|e| {
            rustls::Error::General(format!("server certificate has no usable role: {e}"))
        })?;
        if presented != self.expected {
            return Err(rustls::Error::General(format!(
                "server certificate is {presented}, expected {}",
                self.expected
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn config_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::ClientConfig(e.to_string())
}

/// A rustls client configuration that presents our certificate and accepts only a server
/// certificate of the fleet CA for `custody://signer/<index>`.
pub fn pinned_client_config(material: &TlsMaterial, index: u16) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(material.ca_pem()) {
        roots.add(ca.map_err(config_error)?).map_err(config_error)?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(config_error)?;
    let verifier = PinnedSignerVerifier {
        inner,
        expected: CallerIdentity::Signer(index),
    };
    let certs = CertificateDer::pem_slice_iter(material.cert_pem())
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_error)?;
    let key = PrivateKeyDer::from_pem_slice(material.key_pem()).map_err(config_error)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(certs, key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A lazily connecting channel to signer `index` at `endpoint` (`https://HOST:PORT`) whose
/// handshake fails unless the server presents `custody://signer/<index>` from the fleet CA.
pub fn signer_channel(
    material: &TlsMaterial,
    endpoint: &str,
    index: u16,
) -> Result<Channel, TlsError> {
    let bad = |why: &str| TlsError::Endpoint(endpoint.to_owned(), why.to_owned());
    let uri: Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("must be https://HOST:PORT"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let authority = uri
        .authority()
        .filter(|a| a.port_u16().is_some())
        .ok_or_else(|| bad("no port"))?
        .as_str()
        .to_owned();
    let server_name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|_| bad("host is not a DNS name or IP address"))?;
    let connector = TlsConnector::from(Arc::new(pinned_client_config(material, index)?));
    let target = authority.clone();
    let connect = tower::service_fn(move |_: Uri| {
        let connector = connector.clone();
        let server_name = server_name.clone();
        let target = target.clone();
        async move {
            let tcp = TcpStream::connect(target.as_str()).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, tcp))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake")
                })??;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    Ok(Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| TlsError::Endpoint(endpoint.to_owned(), e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_with_connector_lazy(connect))
}
