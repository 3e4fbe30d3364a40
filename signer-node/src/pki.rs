//! A devnet PKI: a fleet CA and role certificates made with `rcgen`, node and authorizer keys,
//! and a ready-to-run config per signer.
//!
//! Production operators bring their own CA; what this module writes is for development and
//! tests. The rules a production CA must follow are the same: the leaf's URI SAN names the
//! role (`custody://signer/3`, `custody://coordinator/1`, `custody://client/NAME`), DNS or IP
//! SANs name the hosts a server answers on, and signer and coordinator certificates are valid
//! for both TLS server and client authentication.

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use zeroize::Zeroizing;

use crate::config::{
    AuthorizerConfig, ClientConfig, DevnetSwitches, FleetId, NodeConfig, PeerConfig, PolicyConfig,
    SizeLimits, TlsFiles,
};
use crate::identity::CallerIdentity;
use crate::node_key::{write_secret_file, NodeKey};

/// How long devnet certificates are valid: two years.
pub const DEVNET_VALIDITY_DAYS: i64 = 730;

/// A fleet certificate authority that can issue role certificates.
pub struct FleetCa {
    cert_pem: String,
    key_pem: Zeroizing<String>,
    issuer: Issuer<'static, KeyPair>,
}

impl FleetCa {
    /// A new self-signed CA for `fleet_id`.
    pub fn generate(fleet_id: &FleetId) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&format!("custody fleet {fleet_id} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let cert = params.self_signed(&key)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its PEM certificate and private key (to issue more certificates later).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem,
            issuer,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for `identity`, valid as a TLS server for `hosts` (DNS names or
    /// IP addresses; may be empty for clients).
    pub fn issue(
        &self,
        identity: &CallerIdentity,
        hosts: &[String],
    ) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        let uri = identity.to_uri();
        params
            .subject_alt_names
            .push(SanType::URI(uri.clone().try_into()?));
        params.distinguished_name = distinguished_name(&uri);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match identity {
            CallerIdentity::Client(_) => vec![ExtendedKeyUsagePurpose::ClientAuth],
            CallerIdentity::Signer(_) | CallerIdentity::Coordinator(_) => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }

    /// Writes `ca.pem` and `ca.key` (mode 0600) into `dir`; refuses to overwrite.
    pub fn write(&self, dir: &Path) -> Result<(), PkiError> {
        write_public(&dir.join("ca.pem"), self.cert_pem.as_bytes())?;
        write_secret(&dir.join("ca.key"), self.key_pem.as_bytes())
    }
}

impl fmt::Debug for FleetCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetCa(<private key redacted>)")
    }
}

/// A certificate and its private key, PEM.
pub struct IssuedCertificate {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: Zeroizing<String>,
}

impl IssuedCertificate {
    /// Writes `cert.pem` and `key.pem` (mode 0600) into `dir`; refuses to overwrite.
    pub fn write(&self, dir: &Path) -> Result<(), PkiError> {
        write_public(&dir.join("cert.pem"), self.cert_pem.as_bytes())?;
        write_secret(&dir.join("key.pem"), self.key_pem.as_bytes())
    }
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedCertificate(<private key redacted>)")
    }
}

/// What `signer-node pki devnet` makes.
#[derive(Debug, Clone)]
pub struct DevnetSpec {
    /// The fleet id written into every config.
    pub fleet_id: FleetId,
    /// Number of signers; they get indices 1..=signers.
    pub signers: u16,
    /// Number of coordinator certificates; indices 1..=coordinators.
    pub coordinators: u16,
    /// Names of client certificates. Each is also put on every signer's `[[clients]]`
    /// allow-list with `all_keys = true` (no key exists yet when a devnet is written) and a
    /// quota of [`DEVNET_CLIENT_SIGNATURES_PER_HOUR`]; narrow it to `keys = [...]` once the
    /// keys exist.
    pub clients: Vec<String>,
    /// Number of authorizer keys pinned in every config.
    pub authorizers: usize,
    /// How many authorizer signatures an order needs.
    pub quorum: usize,
    /// Host the signers listen on and are reached at (an IP address or DNS name).
    pub host: String,
    /// Listening port of each signer, in index order (`signers` entries).
    pub ports: Vec<u16>,
    /// The directory to create; it must not exist or be empty.
    pub out: PathBuf,
}

/// Paths of what a devnet run wrote.
#[derive(Debug, Clone)]
pub struct DevnetLayout {
    /// `OUT/ca.pem`.
    pub ca_cert: PathBuf,
    /// The config file of each signer, in index order (`OUT/signer-N/signer.toml`).
    pub signer_configs: Vec<PathBuf>,
    /// The certificate directory of each coordinator (`OUT/coordinator-N`, with cert.pem and
    /// key.pem).
    pub coordinator_dirs: Vec<PathBuf>,
    /// The certificate directory of each client (`OUT/client-NAME`).
    pub client_dirs: Vec<PathBuf>,
    /// Each authorizer's key file (`OUT/authorizer-K/authorizer.key`).
    pub authorizer_keys: Vec<PathBuf>,
}

/// Writes a complete devnet: CA, certificates, node keys, authorizer keys, signer configs.
/// Checks the whole spec before writing anything.
pub fn write_devnet(spec: &DevnetSpec) -> Result<DevnetLayout, PkiError> {
    check_spec(spec)?;
    std::fs::create_dir_all(&spec.out).map_err(|e| io_error(&spec.out, e))?;

    let ca = FleetCa::generate(&spec.fleet_id)?;
    ca.write(&spec.out)?;

    let mut authorizer_keys = Vec::new();
    let mut authorizer_public = Vec::new();
    for k in 1..=spec.authorizers {
        let dir = make_dir(&spec.out.join(format!("authorizer-{k}")))?;
        let key = NodeKey::generate();
        let path = dir.join("authorizer.key");
        key.write_new(&path)?;
        authorizer_public.push(key.public_hex());
        authorizer_keys.push(path);
    }

    let hosts = vec![spec.host.clone()];
    let mut node_keys = Vec::new();
    let mut peers = Vec::new();
    for (i, port) in (1..=spec.signers).zip(&spec.ports) {
        let key = NodeKey::generate();
        peers.push(PeerConfig {
            index: i,
            endpoint: format!("https://{}:{port}", host_for_url(&spec.host)),
            node_public_key: key.public_hex(),
        });
        node_keys.push(key);
    }

    let mut signer_configs = Vec::new();
    for ((i, port), key) in (1..=spec.signers).zip(&spec.ports).zip(&node_keys) {
        let dir = make_dir(&spec.out.join(format!("signer-{i}")))?;
        ca.issue(&CallerIdentity::Signer(i), &hosts)?.write(&dir)?;
        key.write_new(&dir.join("node.key"))?;
        let config = NodeConfig {
            listen: listen_address(&spec.host, *port)?,
            fleet_id: spec.fleet_id.clone(),
            index: i,
            data_dir: "data".into(),
            node_key: "node.key".into(),
            hsm_profile: "hsm-profile.toml".into(),
            round_deadline_ms: 30_000,
            tls: TlsFiles {
                ca: "../ca.pem".into(),
                cert: "cert.pem".into(),
                key: "key.pem".into(),
            },
            peers: peers.clone(),
            authorizers: AuthorizerConfig {
                keys: authorizer_public.clone(),
                quorum: spec.quorum,
            },
            chain: None,
            policy: PolicyConfig {
                max_signatures_per_window: 1000,
                window_secs: 3600,
            },
            limits: SizeLimits::default(),
            devnet: DevnetSwitches {
                fixture_primes: false,
                ephemeral_vault: false,
            },
            pools: crate::pools::PoolSettings::default(),
            clients: spec
                .clients
                .iter()
                .map(|name| ClientConfig {
                    name: name.clone(),
                    keys: Vec::new(),
                    all_keys: true,
                    max_signatures_per_hour: DEVNET_CLIENT_SIGNATURES_PER_HOUR,
                })
                .collect(),
            metrics_listen: None,
            metrics_allow_non_loopback: false,
        };
        // sealing: a file keystore whose passphrase is a random file in the data directory
        // (a devnet stand-in for an operator's secret or an HSM; see hsm-profiles/README.md)
        let data = dir.join("data");
        make_dir(&data)?;
        let mut passphrase = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut passphrase);
        let passphrase_hex = zeroize::Zeroizing::new(hex::encode(passphrase));
        zeroize::Zeroize::zeroize(&mut passphrase);
        write_secret(&data.join("seal-passphrase"), passphrase_hex.as_bytes())?;
        write_public(&dir.join("hsm-profile.toml"), DEVNET_HSM_PROFILE.as_bytes())?;
        let text = toml::to_string(&config).map_err(|e| PkiError::Spec(e.to_string()))?;
        let path = dir.join("signer.toml");
        let header = format!(
            "# signer {i} of devnet fleet {}; written by `signer-node pki devnet`.\n\
             # Relative paths are relative to this file. Run `signer-node init` once, then `run`.\n",
            spec.fleet_id
        );
        write_public(&path, format!("{header}{text}").as_bytes())?;
        signer_configs.push(path);
    }

    let mut coordinator_dirs = Vec::new();
    for c in 1..=spec.coordinators {
        let dir = make_dir(&spec.out.join(format!("coordinator-{c}")))?;
        ca.issue(&CallerIdentity::Coordinator(c), &hosts)?
            .write(&dir)?;
        coordinator_dirs.push(dir);
    }
    let mut client_dirs = Vec::new();
    for name in &spec.clients {
        let dir = make_dir(&spec.out.join(format!("client-{name}")))?;
        ca.issue(&CallerIdentity::Client(name.clone()), &[])?
            .write(&dir)?;
        client_dirs.push(dir);
    }

    Ok(DevnetLayout {
        ca_cert: spec.out.join("ca.pem"),
        signer_configs,
        coordinator_dirs,
        client_dirs,
        authorizer_keys,
    })
}

fn check_spec(spec: &DevnetSpec) -> Result<(), PkiError> {
    if spec.signers == 0 {
        return Err(PkiError::Spec("--signers must be at least 1".into()));
    }
    if spec.ports.len() != usize::from(spec.signers) {
        return Err(PkiError::Spec(format!(
            "{} ports given for {} signers",
            spec.ports.len(),
            spec.signers
        )));
    }
    if spec.ports.contains(&0) {
        return Err(PkiError::Spec("port 0 cannot be pinned in a config".into()));
    }
    let mut ports = spec.ports.clone();
    ports.sort_unstable();
    ports.dedup();
    if ports.len() != spec.ports.len() {
        return Err(PkiError::Spec(
            "two signers were given the same port".into(),
        ));
    }
    if spec.authorizers == 0 || spec.quorum == 0 || spec.quorum > spec.authorizers {
        return Err(PkiError::Spec(format!(
            "quorum must be 1 to the number of authorizers ({}), got {}",
            spec.authorizers, spec.quorum
        )));
    }
    for name in &spec.clients {
        CallerIdentity::from_uri(&format!("custody://client/{name}")).map_err(|_| {
            PkiError::Spec(format!(
                "client name {name:?} must be 1 to 64 characters of [A-Za-z0-9._-]"
            ))
        })?;
    }
    let mut names = spec.clients.clone();
    names.sort();
    names.dedup();
    if names.len() != spec.clients.len() {
        return Err(PkiError::Spec("a client name is given twice".into()));
    }
    listen_address(&spec.host, 1)?;
    if let Ok(mut entries) = std::fs::read_dir(&spec.out) {
        if entries.next().is_some() {
            return Err(PkiError::Spec(format!(
                "{} exists and is not empty; choose a new directory",
                spec.out.display()
            )));
        }
    }
    Ok(())
}

/// The socket address a devnet signer listens on: the host if it is an IP address, otherwise
/// 127.0.0.1 for `localhost` (other DNS names must be given as IP addresses).
fn listen_address(host: &str, port: u16) -> Result<std::net::SocketAddr, PkiError> {
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        other => other.parse().map_err(|_| {
            PkiError::Spec(format!(
                "--host {other:?} must be an IP address or localhost (the devnet config listens on it)"
            ))
        })?,
    };
    Ok((ip, port).into())
}

fn host_for_url(host: &str) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(DEVNET_VALIDITY_DAYS);
}

/// Hourly quota of each `--client` in the devnet configs (the same as the devnet's
/// `[policy] max_signatures_per_window` over its one-hour window).
pub const DEVNET_CLIENT_SIGNATURES_PER_HOUR: u32 = 1000;

/// The sealing profile of a devnet signer (`hsm-profiles`' file backend).
const DEVNET_HSM_PROFILE: &str = "\
# Devnet sealing profile written by `signer-node pki devnet`: the data key is wrapped under a
# passphrase (Argon2id + XChaCha20-Poly1305). The passphrase is a random file in the data
# directory, which protects nothing against someone who can read that directory: production
# nodes take it from an operator secret or use the pkcs11 backend (hsm-profiles/README.md).
# Relative paths are relative to the node's data directory.
description = \"devnet: passphrase-wrapped data key, passphrase file in the data directory\"

[sealing]
backend = \"file\"
keystore = \"sealing.keystore\"
passphrase = { file = \"seal-passphrase\" }

[hardening]
disable_core_dumps = true
not_dumpable = true
lock_memory = \"auto\"
";

fn make_dir(dir: &Path) -> Result<PathBuf, PkiError> {
    std::fs::create_dir(dir).map_err(|e| io_error(dir, e))?;
    Ok(dir.to_owned())
}

fn write_public(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.write_all(contents).map_err(|e| io_error(path, e))
}

fn write_secret(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_secret_file(path, contents).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> PkiError {
    PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Certificate generation failed (or a CA file could not be parsed).
    #[error("certificate generation: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A node or authorizer key file could not be written.
    #[error(transparent)]
    NodeKey(#[from] crate::node_key::NodeKeyError),
    /// The request itself is invalid; nothing was written.
    #[error("{0}")]
    Spec(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn issued_certificates_carry_their_role() {
        let ca = FleetCa::generate(&FleetId::new("t").unwrap()).unwrap();
        for id in [
            CallerIdentity::Signer(3),
            CallerIdentity::Coordinator(1),
            CallerIdentity::Client("wallet".into()),
        ] {
            let issued = ca.issue(&id, &["127.0.0.1".into()]).unwrap();
            let der = pem_to_der(&issued.cert_pem);
            assert_eq!(CallerIdentity::from_certificate_der(&der).unwrap(), id);
        }
    }

    #[test]
    fn reloaded_ca_issues_certificates() {
        let ca = FleetCa::generate(&FleetId::new("t").unwrap()).unwrap();
        let again = FleetCa::from_pem(ca.cert_pem(), &ca.key_pem).unwrap();
        let issued = again.issue(&CallerIdentity::Signer(1), &[]).unwrap();
        let der = pem_to_der(&issued.cert_pem);
        assert_eq!(
            CallerIdentity::from_certificate_der(&der).unwrap(),
            CallerIdentity::Signer(1)
        );
    }

    #[test]
    fn bad_spec_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("net");
        let spec = DevnetSpec {
            fleet_id: FleetId::new("t").unwrap(),
            signers: 3,
            coordinators: 1,
            clients: vec![],
            authorizers: 1,
            quorum: 2,
            host: "127.0.0.1".into(),
            ports: vec![7001, 7002, 7003],
            out: out.clone(),
        };
        assert!(matches!(write_devnet(&spec), Err(PkiError::Spec(_))));
        assert!(!out.exists());
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }
}
