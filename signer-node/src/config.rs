//! The node's configuration: one TOML file, checked completely at start.
//!
//! Every table refuses unknown keys (`deny_unknown_fields`), and [`NodeConfig::validate`]
//! refuses invalid values with a message naming the key (`peers[2].index`,
//! `authorizers.quorum`, ...). Relative paths are relative to the directory of the config
//! file. See `signer-node/README.md` for an annotated example.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// Longest fleet id, in characters.
pub const MAX_FLEET_ID_LEN: usize = 64;
/// Default cap on one envelope's payload: 32 MiB (presigning's identification round carries
/// 128-repetition proofs, several MB for 5+ signers).
pub const DEFAULT_MAX_ENVELOPE_PAYLOAD_BYTES: usize = 32 * 1024 * 1024;
/// Default cap on one control or client request: 1 MiB (an order with its authorizations).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest accepted value of any size cap: 256 MiB.
pub const MAX_SIZE_CAP_BYTES: usize = 256 * 1024 * 1024;
/// Default `[limits] session_retention_secs`: finished sessions stay in memory this long.
pub const DEFAULT_SESSION_RETENTION_SECS: u64 = 3600;
/// Largest `[limits] session_retention_secs` (one week).
pub const MAX_SESSION_RETENTION_SECS: u64 = 7 * 24 * 3600;
/// Default `[limits] max_finished_sessions`: finished sessions kept in memory at most.
pub const DEFAULT_MAX_FINISHED_SESSIONS: usize = 10_000;
/// Largest `[limits] max_finished_sessions`.
pub const MAX_FINISHED_SESSIONS_CAP: usize = 1_000_000;
/// Longest accepted round deadline: one hour.
pub const MAX_ROUND_DEADLINE_MS: u64 = 60 * 60 * 1000;

/// A fleet id: 1 to 64 characters of `[a-z0-9-]`. Envelopes of other fleets are refused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FleetId(String);

impl FleetId {
    /// Parses a fleet id.
    pub fn new(id: &str) -> Result<Self, String> {
        if id.is_empty() || id.len() > MAX_FLEET_ID_LEN {
            return Err(format!(
                "must be 1 to {MAX_FLEET_ID_LEN} characters, got {}",
                id.len()
            ));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("{id:?} may only contain a-z, 0-9 and '-'"));
        }
        Ok(Self(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FleetId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        Self::new(&id)
    }
}

impl From<FleetId> for String {
    fn from(id: FleetId) -> String {
        id.0
    }
}

impl fmt::Display for FleetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FleetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FleetId({})", self.0)
    }
}

/// The whole configuration file, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Address the mTLS gRPC server listens on (there is no other listener).
    pub listen: SocketAddr,
    /// The fleet this node belongs to.
    pub fleet_id: FleetId,
    /// This node's signer index; it must appear in `peers`.
    pub index: u16,
    /// Directory of the node's store (created by the store work; only checked for now).
    pub data_dir: PathBuf,
    /// The node's Ed25519 key file (64 hex characters, mode 0600).
    pub node_key: PathBuf,
    /// The HSM profile file that will seal the store.
    pub hsm_profile: PathBuf,
    /// How long a protocol round may wait for its messages, in milliseconds.
    pub round_deadline_ms: u64,
    /// Certificates of the mTLS server and client.
    pub tls: TlsFiles,
    /// Every signer of the fleet, this node included.
    pub peers: Vec<PeerConfig>,
    /// Keys whose signatures authorize orders, and how many are needed.
    pub authorizers: AuthorizerConfig,
    /// The coordinator chain whose certified blocks authorize orders (`[chain]`); absent: only
    /// authorizer quorums are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainConfig>,
    /// Limits the node applies to what it signs.
    pub policy: PolicyConfig,
    /// Size caps of incoming messages.
    #[serde(default)]
    pub limits: SizeLimits,
    /// Devnet-only switches (all off unless written); a production config has no `[devnet]`.
    #[serde(default)]
    pub devnet: DevnetSwitches,
    /// Background pools: prime sets and presignatures kept ready (all off by default).
    #[serde(default)]
    pub pools: crate::pools::PoolSettings,
    /// Clients allowed to sign raw digests (`SignerClient.SignDigest`); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientConfig>,
    /// Where to serve Prometheus metrics (plaintext HTTP, `GET /metrics`); off when absent.
    /// Loopback addresses only, unless `metrics_allow_non_loopback = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Allows `metrics_listen` on a non-loopback address (metrics carry no secrets, but the
    /// endpoint is plaintext and unauthenticated).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metrics_allow_non_loopback: bool,
}

/// One client allowed to sign raw digests (`[[clients]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The NAME of its certificate's `custody://client/NAME`.
    pub name: String,
    /// Key ids (64 hex characters each) it may sign with; empty when `all_keys` is set.
    #[serde(default)]
    pub keys: Vec<String>,
    /// It may sign with every key of this signer (instead of listing `keys`).
    #[serde(default)]
    pub all_keys: bool,
    /// At most this many accepted requests within any sliding hour, on this signer.
    pub max_signatures_per_hour: u32,
}

/// Switches that make a node unfit for real keys, for tests and devnets only. Each must be
/// written out explicitly; the node logs a warning for each one that is on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevnetSwitches {
    /// Aux info uses the committed fixture safe primes of `mpc-core` instead of generating
    /// fresh ones. Those primes are PUBLIC: anyone can factor the Paillier moduli, so every
    /// key made this way is broken. Needs a build with the `devnet-fixtures` feature.
    pub fixture_primes: bool,
    /// Keep key shares and presignatures in process memory (`MemoryVault`): everything is
    /// lost when the node stops. Until the sealed store is wired, a node refuses to run
    /// without this switch.
    pub ephemeral_vault: bool,
}

/// PEM files of the node's mTLS identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The fleet CA certificate: callers' and peers' certificates must chain to it.
    pub ca: PathBuf,
    /// This node's certificate (URI SAN `custody://signer/INDEX`).
    pub cert: PathBuf,
    /// This node's TLS private key.
    pub key: PathBuf,
}

/// One signer of the fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its signer index.
    pub index: u16,
    /// Where its gRPC server listens, `https://HOST:PORT`.
    pub endpoint: String,
    /// Its Ed25519 node public key, 64 hex characters; envelopes it signs verify under it.
    pub node_public_key: String,
}

/// Trusted authorizers of orders (the signing gate).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizerConfig {
    /// Ed25519 public keys, 64 hex characters each, distinct.
    pub keys: Vec<String>,
    /// How many distinct keys must sign an order: 1 to `keys.len()`.
    pub quorum: usize,
}

/// The coordinator chain a signer trusts (`[chain]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The chain id every certified header must carry (1 to 64 bytes).
    pub chain_id: String,
    /// The validator set, in index order (the index is the one commit certificates use).
    pub validators: Vec<ValidatorConfig>,
}

/// One validator of the pinned set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorConfig {
    /// Ed25519 public key, 64 hex characters.
    pub key: String,
    /// Voting power, at least 1.
    pub power: u64,
}

/// Velocity limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// At most this many signatures per key within one window.
    pub max_signatures_per_window: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// Size caps of incoming messages (NET-04) and how much of the session table stays in memory
/// (`[limits]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SizeLimits {
    /// Largest payload of one envelope, in bytes.
    pub max_envelope_payload_bytes: usize,
    /// Largest control or client request, in bytes.
    pub max_request_bytes: usize,
    /// Seconds a finished session stays in the in-memory table (the store keeps it).
    pub session_retention_secs: u64,
    /// Most finished sessions kept in the in-memory table (the oldest leave first).
    pub max_finished_sessions: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            max_envelope_payload_bytes: DEFAULT_MAX_ENVELOPE_PAYLOAD_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            session_retention_secs: DEFAULT_SESSION_RETENTION_SECS,
            max_finished_sessions: DEFAULT_MAX_FINISHED_SESSIONS,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value is invalid.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The key, as a path (`peers[1].node_public_key`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// One pinned peer, checked.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its signer index.
    pub index: u16,
    /// Its endpoint URL.
    pub endpoint: String,
    /// Its node public key.
    pub node_key: VerifyingKey,
}

/// A configuration that passed [`NodeConfig::validate`], with paths made absolute and keys
/// decoded.
#[derive(Debug, Clone)]
pub struct ValidatedConfig {
    /// The configuration as written (paths resolved against the file's directory).
    pub raw: NodeConfig,
    /// Peers in index order, this node included.
    pub peers: Vec<Peer>,
    /// Authorizer keys, in the order written.
    pub authorizer_keys: Vec<VerifyingKey>,
    /// The pinned chain, checked (`[chain]`).
    pub chain: Option<crate::gate::chain::ChainPin>,
    /// The round deadline.
    pub round_deadline: Duration,
    /// The raw-signing allow-list, checked (`[[clients]]`).
    pub clients: Vec<ClientPolicy>,
}

/// Which keys a client may sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedKeys {
    /// Every key of this signer.
    All,
    /// These key ids.
    Only(BTreeSet<[u8; 32]>),
}

/// One allow-listed client, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPolicy {
    /// Its certificate name.
    pub name: String,
    /// The keys it may use.
    pub keys: AllowedKeys,
    /// Its quota per sliding hour.
    pub max_signatures_per_hour: u32,
}

impl ValidatedConfig {
    /// The fleet id.
    pub fn fleet_id(&self) -> &FleetId {
        &self.raw.fleet_id
    }

    /// This node's signer index.
    pub fn index(&self) -> u16 {
        self.raw.index
    }

    /// The pinned peer with this index, if any.
    pub fn peer(&self, index: u16) -> Option<&Peer> {
        self.peers.iter().find(|p| p.index == index)
    }
}

impl NodeConfig {
    /// Reads, parses and validates a config file. Relative paths in it are resolved against
    /// the file's directory.
    pub fn load(path: &Path) -> Result<ValidatedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()
    }

    /// Parses TOML text (no validation of values beyond their types).
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Makes every relative path absolute against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.data_dir,
            &mut self.node_key,
            &mut self.hsm_profile,
            &mut self.tls.ca,
            &mut self.tls.cert,
            &mut self.tls.key,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks every value; the error names the first offending key.
    pub fn validate(self) -> Result<ValidatedConfig, ConfigError> {
        if self.round_deadline_ms == 0 || self.round_deadline_ms > MAX_ROUND_DEADLINE_MS {
            return Err(invalid(
                "round_deadline_ms",
                format!(
                    "must be 1 to {MAX_ROUND_DEADLINE_MS}, got {}",
                    self.round_deadline_ms
                ),
            ));
        }
        for (key, p) in [
            ("data_dir", &self.data_dir),
            ("node_key", &self.node_key),
            ("hsm_profile", &self.hsm_profile),
            ("tls.ca", &self.tls.ca),
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
        ] {
            if p.as_os_str().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }

        let peers = self.validate_peers()?;
        let authorizer_keys = self.validate_authorizers()?;
        let chain = self.validate_chain()?;

        if self.policy.max_signatures_per_window == 0 {
            return Err(invalid(
                "policy.max_signatures_per_window",
                "must be at least 1 (a node that may never sign has no use)",
            ));
        }
        if self.policy.window_secs == 0 {
            return Err(invalid("policy.window_secs", "must be at least 1"));
        }
        for (key, v) in [
            (
                "limits.max_envelope_payload_bytes",
                self.limits.max_envelope_payload_bytes,
            ),
            ("limits.max_request_bytes", self.limits.max_request_bytes),
        ] {
            if v == 0 || v > MAX_SIZE_CAP_BYTES {
                return Err(invalid(
                    key,
                    format!("must be 1 to {MAX_SIZE_CAP_BYTES}, got {v}"),
                ));
            }
        }

        let retention = self.limits.session_retention_secs;
        if retention == 0 || retention > MAX_SESSION_RETENTION_SECS {
            return Err(invalid(
                "limits.session_retention_secs",
                format!("must be 1 to {MAX_SESSION_RETENTION_SECS}, got {retention}"),
            ));
        }
        let finished = self.limits.max_finished_sessions;
        if finished == 0 || finished > MAX_FINISHED_SESSIONS_CAP {
            return Err(invalid(
                "limits.max_finished_sessions",
                format!("must be 1 to {MAX_FINISHED_SESSIONS_CAP}, got {finished}"),
            ));
        }

        let fleet: BTreeSet<u16> = peers.iter().map(|p| p.index).collect();
        self.pools
            .check(&fleet)
            .map_err(|(key, reason)| invalid(key, reason))?;
        let clients = self.validate_clients()?;
        if let Some(addr) = self.metrics_listen {
            if !addr.ip().is_loopback() && !self.metrics_allow_non_loopback {
                return Err(invalid(
                    "metrics_listen",
                    format!(
                        "{addr} is not a loopback address; the metrics endpoint is plaintext \
                         HTTP without authentication, so set metrics_allow_non_loopback = true \
                         to serve it on another interface"
                    ),
                ));
            }
        }

        let round_deadline = Duration::from_millis(self.round_deadline_ms);
        Ok(ValidatedConfig {
            raw: self,
            peers,
            authorizer_keys,
            chain,
            round_deadline,
            clients,
        })
    }

    fn validate_clients(&self) -> Result<Vec<ClientPolicy>, ConfigError> {
        let mut names = BTreeSet::new();
        let mut clients = Vec::with_capacity(self.clients.len());
        for (i, c) in self.clients.iter().enumerate() {
            if crate::identity::CallerIdentity::from_uri(&format!(
                "{}client/{}",
                crate::identity::ROLE_URI_PREFIX,
                c.name
            ))
            .is_err()
            {
                return Err(invalid(
                    format!("clients[{i}].name"),
                    format!(
                        "{:?} must be 1 to {} characters of [A-Za-z0-9._-] (the NAME of custody://client/NAME)",
                        c.name,
                        crate::identity::MAX_CLIENT_NAME_LEN
                    ),
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err(invalid(
                    format!("clients[{i}].name"),
                    format!("client {:?} is listed twice", c.name),
                ));
            }
            let keys = match (c.all_keys, c.keys.is_empty()) {
                (true, false) => {
                    return Err(invalid(
                        format!("clients[{i}].keys"),
                        "give either keys or all_keys = true, not both",
                    ))
                }
                (false, true) => {
                    return Err(invalid(
                        format!("clients[{i}].keys"),
                        "list the key ids this client may use, or set all_keys = true",
                    ))
                }
                (true, true) => AllowedKeys::All,
                (false, false) => {
                    let mut set = BTreeSet::new();
                    for (j, k) in c.keys.iter().enumerate() {
                        let key = parse_key_id_hex(k)
                            .map_err(|reason| invalid(format!("clients[{i}].keys[{j}]"), reason))?;
                        if !set.insert(key) {
                            return Err(invalid(
                                format!("clients[{i}].keys[{j}]"),
                                "the same key id is listed twice",
                            ));
                        }
                    }
                    AllowedKeys::Only(set)
                }
            };
            if c.max_signatures_per_hour == 0 {
                return Err(invalid(
                    format!("clients[{i}].max_signatures_per_hour"),
                    "must be at least 1 (remove the client to forbid it)",
                ));
            }
            clients.push(ClientPolicy {
                name: c.name.clone(),
                keys,
                max_signatures_per_hour: c.max_signatures_per_hour,
            });
        }
        Ok(clients)
    }

    fn validate_peers(&self) -> Result<Vec<Peer>, ConfigError> {
        if self.peers.is_empty() {
            return Err(invalid("peers", "must list every signer of the fleet"));
        }
        let mut seen_index = BTreeSet::new();
        let mut seen_key = BTreeSet::new();
        let mut peers = Vec::with_capacity(self.peers.len());
        for (i, peer) in self.peers.iter().enumerate() {
            if !seen_index.insert(peer.index) {
                return Err(invalid(
                    format!("peers[{i}].index"),
                    format!("signer index {} is listed twice", peer.index),
                ));
            }
            check_endpoint(&peer.endpoint)
                .map_err(|reason| invalid(format!("peers[{i}].endpoint"), reason))?;
            let node_key = parse_ed25519_public_hex(&peer.node_public_key)
                .map_err(|reason| invalid(format!("peers[{i}].node_public_key"), reason))?;
            if !seen_key.insert(node_key.to_bytes()) {
                return Err(invalid(
                    format!("peers[{i}].node_public_key"),
                    "the same node key is pinned for two signers",
                ));
            }
            peers.push(Peer {
                index: peer.index,
                endpoint: peer.endpoint.clone(),
                node_key,
            });
        }
        if !seen_index.contains(&self.index) {
            return Err(invalid(
                "index",
                format!(
                    "this node's index {} is not among the peers' indices {:?}",
                    self.index, seen_index
                ),
            ));
        }
        peers.sort_by_key(|p| p.index);
        Ok(peers)
    }

    fn validate_chain(&self) -> Result<Option<crate::gate::chain::ChainPin>, ConfigError> {
        use custody_proto::chain::{ValidatorSet, ValidatorSetError, MAX_CHAIN_ID_BYTES};
        let Some(c) = &self.chain else {
            return Ok(None);
        };
        if c.chain_id.is_empty() || c.chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(invalid(
                "chain.chain_id",
                format!("must be 1 to {MAX_CHAIN_ID_BYTES} bytes"),
            ));
        }
        let mut members = Vec::with_capacity(c.validators.len());
        for (i, v) in c.validators.iter().enumerate() {
            let key = parse_ed25519_public_hex(&v.key)
                .map_err(|reason| invalid(format!("chain.validators[{i}].key"), reason))?;
            members.push((key.to_bytes(), v.power));
        }
        let validators = ValidatorSet::new(&members).map_err(|e| match e {
            ValidatorSetError::ZeroPower(i) => {
                invalid(format!("chain.validators[{i}].power"), "must be at least 1")
            }
            ValidatorSetError::BadKey(i) => invalid(
                format!("chain.validators[{i}].key"),
                "not a usable Ed25519 key (weak or invalid)",
            ),
            ValidatorSetError::DuplicateKey { second, .. } => {
                invalid(format!("chain.validators[{second}].key"), e.to_string())
            }
            other => invalid("chain.validators", other.to_string()),
        })?;
        Ok(Some(crate::gate::chain::ChainPin {
            chain_id: c.chain_id.clone(),
            validators,
        }))
    }

    fn validate_authorizers(&self) -> Result<Vec<VerifyingKey>, ConfigError> {
        let a = &self.authorizers;
        if a.keys.is_empty() {
            return Err(invalid(
                "authorizers.keys",
                "at least one authorizer key is needed",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut keys = Vec::with_capacity(a.keys.len());
        for (i, hex_key) in a.keys.iter().enumerate() {
            let key = parse_ed25519_public_hex(hex_key)
                .map_err(|reason| invalid(format!("authorizers.keys[{i}]"), reason))?;
            if !seen.insert(key.to_bytes()) {
                return Err(invalid(
                    format!("authorizers.keys[{i}]"),
                    "the same key is listed twice (a quorum must be of distinct keys)",
                ));
            }
            keys.push(key);
        }
        if a.quorum == 0 || a.quorum > keys.len() {
            return Err(invalid(
                "authorizers.quorum",
                format!(
                    "must be 1 to the number of keys ({}), got {}",
                    keys.len(),
                    a.quorum
                ),
            ));
        }
        Ok(keys)
    }
}

/// Parses a 64-hex-character Ed25519 public key (and checks it is a valid curve point).
pub fn parse_ed25519_public_hex(text: &str) -> Result<VerifyingKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "an Ed25519 public key is 32 bytes (64 hex characters), got {} bytes",
            b.len()
        )
    })?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// Parses a key id: 64 hex characters (32 bytes).
pub fn parse_key_id_hex(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "a key id is 32 bytes (64 hex characters), got {} bytes",
            b.len()
        )
    })
}

/// Checks an endpoint is `https://HOST:PORT` (there is no plaintext transport).
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some(rest) = endpoint.strip_prefix("https://") else {
        return Err(format!(
            "{endpoint:?} must start with https:// (peers talk mTLS only)"
        ));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err(format!("{endpoint:?} must name a port (https://HOST:PORT)"));
    };
    if host.is_empty() || authority.contains('/') {
        return Err(format!("{endpoint:?} must be https://HOST:PORT"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(format!("{endpoint:?} has an invalid port {port:?}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn fleet_id_rules() {
        assert!(FleetId::new("devnet-1").is_ok());
        assert!(FleetId::new("").is_err());
        assert!(FleetId::new("Dev").is_err());
        assert!(FleetId::new("a b").is_err());
        assert!(FleetId::new(&"a".repeat(65)).is_err());
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint("https://127.0.0.1:7001").is_ok());
        assert!(check_endpoint("https://signer-1.example:443/").is_ok());
        assert!(check_endpoint("http://127.0.0.1:7001").is_err());
        assert!(check_endpoint("https://127.0.0.1").is_err());
        assert!(check_endpoint("https://127.0.0.1:0").is_err());
        assert!(check_endpoint("https://:7001").is_err());
        assert!(check_endpoint("https://h:7001/path").is_err());
    }
}
