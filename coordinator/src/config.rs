//! The `coordinator run` configuration file (TOML). Unknown keys are refused with a message
//! naming the key; relative paths are relative to the file's directory.
//!
//! ```toml
//! listen = "127.0.0.1:7300"
//! data_dir = "data"                  # the chain's sled store lives in data_dir/chain
//! chain_id = "custody-dev"
//! admin = "<40 hex digits>"          # genesis admin account address
//! validator_key = "validator.key"    # from `coordinator init-validator-key` (solo consensus)
//! block_interval_ms = 500            # optional, default 500
//! wait_timeout_ms = 30000            # optional: how long SubmitTransaction { wait } waits
//!
//! [tls]
//! ca = "ca.pem"
//! cert = "cert.pem"                  # must be custody://coordinator/N
//! key = "key.pem"
//!
//! [mempool]                          # optional, each key optional
//! max_transactions = 10000
//! max_bytes = 16777216
//! max_per_sender = 64
//!
//! [fleet]                            # optional: without it no DKG runs and no lock-out is signed
//! fleet_id = "devnet"                # the signers' fleet id (written into every signing order)
//! threshold = 3                      # t of the keys the chain's RequestKeygen asks for
//! session_timeout_secs = 600         # optional: per DKG / signing session
//! sign_attempts = 3                  # optional: signer subsets tried per signature
//! presign_per_path = 0               # optional: presignatures kept ready per deposit path
//! signers = [{ index = 1, url = "https://127.0.0.1:7101" }, ...]
//!
//! [ethereum]                         # optional: enables mETH lock-in and lock-out
//! rpc_url = "http://127.0.0.1:8545"
//! chain_id = 31337                   # checked against the node's eth_chainId
//! legacy_transactions = false        # optional: EIP-155 type-0 instead of EIP-1559
//!
//! [bitcoin]                          # optional: enables mBTC (a bcoin node)
//! url = "http://127.0.0.1:48332"
//! api_key = "..."
//! hrp = "bc"                         # bech32 prefix: bc, tb, bcrt, rb (bcoin regtest)
//! fee_rate_sat_per_vb = 2            # optional
//!
//! # Both chain sections also take (each optional):
//! # confirmations = 6                # z; default from attacker_share and risk
//! # attacker_share = 0.1             # q of the catch-up probability P(z)
//! # risk = 0.001                     # ε: z is the least depth with P(z) ≤ ε
//! # start_height = 0                 # first external height that can hold deposits
//! # order_ttl_secs = 3600            # how long a signing order stays valid
//! # commit_timeout_blocks = 60       # lock-out without a committed order after this: refund
//!
//! [engine]                           # optional
//! interval_ms = 1000                 # how often the watchers and sagas run
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::chain::Address;
use crate::node::{MempoolLimits, NodeConfig};

/// The configuration as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Chain id, 1..=64 bytes.
    pub chain_id: String,
    /// Genesis admin address, 40 hex digits.
    pub admin: String,
    /// The solo validator's Ed25519 key file.
    pub validator_key: PathBuf,
    /// Block interval in milliseconds.
    #[serde(default = "default_block_interval")]
    pub block_interval_ms: u64,
    /// How long `SubmitTransaction { wait }` waits, in milliseconds.
    #[serde(default = "default_wait_timeout")]
    pub wait_timeout_ms: u64,
    /// mTLS files.
    pub tls: TlsFiles,
    /// Mempool caps.
    #[serde(default)]
    pub mempool: MempoolSection,
    /// The signer fleet.
    #[serde(default)]
    pub fleet: Option<FleetSection>,
    /// The Ethereum node (mETH).
    #[serde(default)]
    pub ethereum: Option<EthereumSection>,
    /// The Bitcoin node (mBTC).
    #[serde(default)]
    pub bitcoin: Option<BitcoinSection>,
    /// The contract engine's loop.
    #[serde(default)]
    pub engine: EngineSection,
}

/// `[fleet]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// The signers' fleet id.
    pub fleet_id: String,
    /// Threshold t of the keys generated for the chain.
    pub threshold: u16,
    /// Limit of one DKG or signing session, in seconds.
    #[serde(default = "default_session_timeout")]
    pub session_timeout_secs: u64,
    /// Signer subsets tried per signature.
    #[serde(default = "default_sign_attempts")]
    pub sign_attempts: usize,
    /// Presignatures kept ready per deposit path (0: presign on demand only).
    #[serde(default)]
    pub presign_per_path: usize,
    /// Every signer.
    pub signers: Vec<SignerSection>,
}

fn default_session_timeout() -> u64 {
    600
}

fn default_sign_attempts() -> usize {
    3
}

/// One `[[fleet.signers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerSection {
    /// Its index (certificate `custody://signer/<index>`).
    pub index: u16,
    /// `https://HOST:PORT`.
    pub url: String,
}

/// What both external chain sections set about deposits and lock-outs (flat keys of each
/// section).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct DepthSettings {
    /// z, overriding the computed one.
    pub confirmations: Option<u64>,
    /// q (default 0.1).
    pub attacker_share: Option<f64>,
    /// ε (default 10⁻³).
    pub risk: Option<f64>,
    /// First external height that can hold deposits (default 0).
    pub start_height: Option<u64>,
    /// Lifetime of a signing order in seconds (default 3600).
    pub order_ttl_secs: Option<u64>,
    /// Chain blocks a lock-out may wait for its committed order (default 60).
    pub commit_timeout_blocks: Option<u64>,
}

impl FleetSection {
    /// The signer endpoints.
    pub fn endpoints(&self) -> Vec<crate::fleet::SignerEndpoint> {
        self.signers
            .iter()
            .map(|s| crate::fleet::SignerEndpoint {
                index: s.index,
                url: s.url.clone(),
            })
            .collect()
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.fleet_id.is_empty() {
            return Err(("fleet.fleet_id", "must not be empty".into()));
        }
        if self.signers.is_empty() {
            return Err(("fleet.signers", "must list at least one signer".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.signers {
            if s.index == 0 || !seen.insert(s.index) {
                return Err((
                    "fleet.signers",
                    format!("signer index {} is 0 or listed twice", s.index),
                ));
            }
            if !s.url.starts_with("https://") {
                return Err((
                    "fleet.signers",
                    format!("signer {}: the url must start with https://", s.index),
                ));
            }
        }
        if self.threshold == 0 || usize::from(self.threshold) > self.signers.len() {
            return Err((
                "fleet.threshold",
                format!("must be 1 to {} (the signers listed)", self.signers.len()),
            ));
        }
        if self.session_timeout_secs == 0 {
            return Err(("fleet.session_timeout_secs", "must be at least 1".into()));
        }
        if self.sign_attempts == 0 {
            return Err(("fleet.sign_attempts", "must be at least 1".into()));
        }
        Ok(())
    }
}

impl DepthSettings {
    /// The engine settings for one asset: z from `confirmations`, or from the catch-up
    /// probability for (q, ε) (defaults 0.1 and 10⁻³, giving 6).
    pub fn engine_config(
        &self,
        fleet_id: &str,
    ) -> Result<crate::engine::EngineConfig, (&'static str, String)> {
        // Computed even when `confirmations` overrides it, so that a q or ε out of range
        // is refused rather than silently ignored.
        let computed = crate::engine::EngineConfig::depth_for(
            self.attacker_share.unwrap_or(0.1),
            self.risk.unwrap_or(1e-3),
        )
        .map_err(|e| ("attacker_share or risk", e.to_string()))?;
        let depth = match self.confirmations {
            Some(0) => return Err(("confirmations", "must be at least 1".into())),
            Some(z) => z,
            None => computed,
        };
        let order_ttl_secs = self.order_ttl_secs.unwrap_or(3600);
        let commit_timeout_blocks = self.commit_timeout_blocks.unwrap_or(60);
        if order_ttl_secs == 0 {
            return Err(("order_ttl_secs", "must be at least 1".into()));
        }
        if commit_timeout_blocks == 0 {
            return Err(("commit_timeout_blocks", "must be at least 1".into()));
        }
        Ok(crate::engine::EngineConfig {
            depth,
            reorg_margin: depth,
            start_height: self.start_height.unwrap_or(0),
            max_scan_blocks: 1000,
            fleet_id: fleet_id.to_owned(),
            order_ttl_secs,
            commit_timeout_blocks,
        })
    }
}

/// `[ethereum]`.
#[derive(Debug, Clone, Deserialize)]
pub struct EthereumSection {
    /// The node's JSON-RPC URL.
    pub rpc_url: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Type-0 EIP-155 transactions instead of EIP-1559.
    #[serde(default)]
    pub legacy_transactions: bool,
    /// Depth and timeouts (flat keys of the section).
    #[serde(flatten)]
    pub depth: DepthSettings,
    /// Keys nothing above took: refused by [`Config::load`], naming them. (serde cannot
    /// both flatten and `deny_unknown_fields`; a flattened struct takes its own keys out of
    /// the entries first, so only unknown ones land here.)
    #[serde(flatten)]
    pub unknown: std::collections::BTreeMap<String, toml::Value>,
}

/// `[bitcoin]`.
#[derive(Clone, Deserialize)]
pub struct BitcoinSection {
    /// The bcoin node's HTTP endpoint.
    pub url: String,
    /// Its `--api-key`.
    pub api_key: String,
    /// bech32 human-readable part.
    pub hrp: String,
    /// Fee rate, satoshi per virtual byte.
    #[serde(default)]
    pub fee_rate_sat_per_vb: Option<u64>,
    /// Depth and timeouts (flat keys of the section).
    #[serde(flatten)]
    pub depth: DepthSettings,
    /// Keys nothing above took: refused by [`Config::load`], naming them. (serde cannot
    /// both flatten and `deny_unknown_fields`; a flattened struct takes its own keys out of
    /// the entries first, so only unknown ones land here.)
    #[serde(flatten)]
    pub unknown: std::collections::BTreeMap<String, toml::Value>,
}

impl std::fmt::Debug for BitcoinSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoinSection")
            .field("url", &self.url)
            .field("api_key", &"<redacted>")
            .field("hrp", &self.hrp)
            .finish_non_exhaustive()
    }
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// How often the deposit watchers and lock-out sagas run, in milliseconds.
    #[serde(default = "default_engine_interval")]
    pub interval_ms: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            interval_ms: default_engine_interval(),
        }
    }
}

fn default_engine_interval() -> u64 {
    1000
}

fn default_block_interval() -> u64 {
    500
}

fn default_wait_timeout() -> u64 {
    30_000
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Fleet CA certificate.
    pub ca: PathBuf,
    /// This coordinator's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// `[mempool]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolSection {
    /// See [`MempoolLimits::max_transactions`].
    pub max_transactions: Option<usize>,
    /// See [`MempoolLimits::max_bytes`].
    pub max_bytes: Option<usize>,
    /// See [`MempoolLimits::max_per_sender`].
    pub max_per_sender: Option<usize>,
}

/// Why a configuration or key file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message (names the key and line).
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: `{key}` {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A validator key file is not 64 hex digits.
    #[error("{0}: not a validator key file (64 hex digits of an Ed25519 secret key)")]
    BadValidatorKey(PathBuf),
}

impl Config {
    /// Reads and checks `path`; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data_dir,
            &mut config.validator_key,
            &mut config.tls.ca,
            &mut config.tls.cert,
            &mut config.tls.key,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        let invalid = |key, reason: &str| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            reason: reason.to_owned(),
        };
        if config.chain_id.is_empty() || config.chain_id.len() > 64 {
            return Err(invalid("chain_id", "must be 1 to 64 bytes"));
        }
        if config.block_interval_ms == 0 {
            return Err(invalid("block_interval_ms", "must be at least 1"));
        }
        if config.wait_timeout_ms == 0 {
            return Err(invalid("wait_timeout_ms", "must be at least 1"));
        }
        config.admin_address().map_err(|r| invalid("admin", r))?;
        if config.engine.interval_ms == 0 {
            return Err(invalid("engine.interval_ms", "must be at least 1"));
        }
        if let Some(fleet) = &config.fleet {
            fleet.check().map_err(|(key, r)| invalid(key, &r))?;
        }
        let fleet_id = config
            .fleet
            .as_ref()
            .map(|f| f.fleet_id.as_str())
            .unwrap_or("");
        let unknown =
            |section: &'static str, keys: &std::collections::BTreeMap<String, toml::Value>| {
                match keys.keys().next() {
                    Some(k) => Err(invalid(section, &format!("has an unknown key `{k}`"))),
                    None => Ok(()),
                }
            };
        if let Some(eth) = &config.ethereum {
            unknown("ethereum", &eth.unknown)?;
            eth.depth
                .engine_config(fleet_id)
                .map_err(|(key, r)| invalid(key, &r))?;
            if !eth.rpc_url.starts_with("http://") && !eth.rpc_url.starts_with("https://") {
                return Err(invalid(
                    "ethereum.rpc_url",
                    "must be an http:// or https:// URL",
                ));
            }
        }
        if let Some(btc) = &config.bitcoin {
            unknown("bitcoin", &btc.unknown)?;
            btc.depth
                .engine_config(fleet_id)
                .map_err(|(key, r)| invalid(key, &r))?;
            crate::adapter::bitcoin::address::parse_hrp(&btc.hrp)
                .map_err(|e| invalid("bitcoin.hrp", &e.to_string()))?;
            if !btc.url.starts_with("http://") && !btc.url.starts_with("https://") {
                return Err(invalid("bitcoin.url", "must be an http:// or https:// URL"));
            }
            if btc.fee_rate_sat_per_vb == Some(0) {
                return Err(invalid("bitcoin.fee_rate_sat_per_vb", "must be at least 1"));
            }
        }
        Ok(config)
    }

    /// The genesis admin address.
    pub fn admin_address(&self) -> Result<Address, &'static str> {
        parse_address(&self.admin)
    }

    /// The node loop settings.
    pub fn node_config(&self) -> NodeConfig {
        let d = MempoolLimits::default();
        NodeConfig {
            block_interval: Duration::from_millis(self.block_interval_ms),
            mempool: MempoolLimits {
                max_transactions: self.mempool.max_transactions.unwrap_or(d.max_transactions),
                max_bytes: self.mempool.max_bytes.unwrap_or(d.max_bytes),
                max_per_sender: self.mempool.max_per_sender.unwrap_or(d.max_per_sender),
            },
            ..NodeConfig::default()
        }
    }
}

/// An account address from 40 hex digits (an optional `0x` prefix is allowed).
pub fn parse_address(text: &str) -> Result<Address, &'static str> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let bytes = hex::decode(t).map_err(|_| "must be 40 hex digits")?;
    <[u8; 20]>::try_from(bytes.as_slice())
        .map(Address)
        .map_err(|_| "must be 40 hex digits (20 bytes)")
}

/// Writes a new Ed25519 validator key (64 hex digits, mode 0600) to `path`; refuses to
/// overwrite. Returns the public key.
pub fn write_validator_key(path: &Path) -> Result<[u8; 32], ConfigError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut_slice());
    let key = ed25519_dalek::SigningKey::from_bytes(&secret);
    let text = Zeroizing::new(hex::encode(key.to_bytes()) + "\n");
    write_secret_file(path, text.as_bytes())?;
    Ok(key.verifying_key().to_bytes())
}

/// Reads a validator key file.
pub fn read_validator_key(path: &Path) -> Result<ed25519_dalek::SigningKey, ConfigError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?,
    );
    let bytes = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| ConfigError::BadValidatorKey(path.to_owned()))?,
    );
    let secret: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ConfigError::BadValidatorKey(path.to_owned()))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&secret))
}

/// Creates `path` with mode 0600 (on Unix) and writes `bytes`; refuses to overwrite.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
chain_id = "c"
admin = "0x0101010101010101010101010101010101010101"
validator_key = "v.key"
[tls]
ca = "ca.pem"
cert = "cert.pem"
key = "key.pem"
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(&p)
    }

    #[test]
    fn good_config_loads_with_defaults_and_paths_beside_the_file() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.block_interval_ms, 500);
        assert!(c.data_dir.ends_with("data"));
        assert_ne!(c.data_dir, Path::new("data"));
        assert_eq!(c.admin_address().unwrap(), Address([1; 20]));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = load(&GOOD.replace("chain_id", "blocktime = 3\nchain_id")).unwrap_err();
        assert!(e.to_string().contains("unknown field `blocktime`"), "{e}");
        let e = load(&format!("{GOOD}extra = 1\n")).unwrap_err();
        assert!(e.to_string().contains("`extra`"), "{e}");
        let e = load(&GOOD.replace("[tls]", "[tls]\nkey_password = \"x\"")).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `key_password`"),
            "{e}"
        );
        let e = load(&GOOD.replace("0x01010101", "0x0101")).unwrap_err();
        assert!(e.to_string().contains("`admin`"), "{e}");
        let e = load(&GOOD.replace(
            "chain_id = \"c\"",
            "chain_id = \"c\"\nblock_interval_ms = 0",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("`block_interval_ms`"), "{e}");
    }

    const ENGINE: &str = r#"
[fleet]
fleet_id = "devnet"
threshold = 2
signers = [{ index = 1, url = "https://127.0.0.1:7101" }, { index = 2, url = "https://127.0.0.1:7102" }]

[ethereum]
rpc_url = "http://127.0.0.1:8545"
chain_id = 31337
confirmations = 2

[bitcoin]
url = "http://127.0.0.1:48443"
api_key = "k"
hrp = "rb"

[engine]
interval_ms = 250
"#;

    #[test]
    fn engine_sections_load_with_defaults() {
        let c = load(&format!("{GOOD}{ENGINE}")).unwrap();
        let fleet = c.fleet.as_ref().unwrap();
        assert_eq!((fleet.threshold, fleet.sign_attempts), (2, 3));
        assert_eq!(fleet.endpoints().len(), 2);
        let eth = c
            .ethereum
            .as_ref()
            .unwrap()
            .depth
            .engine_config("devnet")
            .unwrap();
        assert_eq!((eth.depth, eth.fleet_id.as_str()), (2, "devnet"));
        // No confirmations given: z from q = 0.1, ε = 10⁻³.
        let btc = c
            .bitcoin
            .as_ref()
            .unwrap()
            .depth
            .engine_config("devnet")
            .unwrap();
        assert_eq!(btc.depth, 6);
        assert_eq!(c.engine.interval_ms, 250);
        assert!(
            !format!("{:?}", c.bitcoin).contains("\"k\""),
            "api key redacted"
        );
    }

    #[test]
    fn bad_engine_sections_are_named() {
        let full = format!("{GOOD}{ENGINE}");
        for (from, to, key) in [
            ("threshold = 2", "threshold = 3", "fleet.threshold"),
            ("threshold = 2", "threshold = 0", "fleet.threshold"),
            ("index = 2", "index = 1", "fleet.signers"),
            (
                "https://127.0.0.1:7102",
                "http://127.0.0.1:7102",
                "fleet.signers",
            ),
            ("hrp = \"rb\"", "hrp = \"\"", "bitcoin.hrp"),
            ("confirmations = 2", "confirmations = 0", "confirmations"),
            (
                "chain_id = 31337",
                "chain_id = 31337\nattacker_share = 0.6",
                "attacker_share or risk",
            ),
            ("interval_ms = 250", "interval_ms = 0", "engine.interval_ms"),
            ("fleet_id = \"devnet\"", "fleet_id = \"\"", "fleet.fleet_id"),
        ] {
            let e = load(&full.replace(from, to)).unwrap_err();
            assert!(
                e.to_string().contains(&format!("`{key}`")),
                "{from} -> {to}: {e}"
            );
        }
        let e = load(&full.replace("chain_id = 31337", "chain_id = 31337\nconfirmation = 2"))
            .unwrap_err();
        assert!(e.to_string().contains("unknown key `confirmation`"), "{e}");
        let e = load(&full.replace("hrp = ", "hpr = \"rb\"\nhrp = ")).unwrap_err();
        assert!(
            e.to_string().contains("`bitcoin` has an unknown key `hpr`"),
            "{e}"
        );
        let e = load(&full.replace("[engine]", "[engine]\nspeed = 1")).unwrap_err();
        assert!(e.to_string().contains("unknown field `speed`"), "{e}");
    }

    #[test]
    fn validator_key_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.key");
        let public = write_validator_key(&p).unwrap();
        assert_eq!(
            read_validator_key(&p).unwrap().verifying_key().to_bytes(),
            public
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(write_validator_key(&p).is_err());
        std::fs::write(dir.path().join("bad"), "zz").unwrap();
        assert!(matches!(
            read_validator_key(&dir.path().join("bad")),
            Err(ConfigError::BadValidatorKey(_))
        ));
    }
}
