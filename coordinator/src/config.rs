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
