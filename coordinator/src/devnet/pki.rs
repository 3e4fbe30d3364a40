//! The devnet's files: the fleet PKI and signer configs (written by the signers' own
//! `signer_node::pki::write_devnet`, then pinned to the devnet chain and switched to the
//! public fixture primes), the coordinator's validator key and config, and the account keys
//! of the genesis admin and the demo user.
//!
//! ```text
//! DIR/ca.pem                      fleet CA (ca.key beside it)
//! DIR/signer-N/signer.toml        signer N (node.log, data/ beside it)
//! DIR/coordinator-1/              the coordinator's certificate (custody://coordinator/1)
//! DIR/client-devnet/              the API client certificate (custody://client/devnet) and
//!                                 a copy of ca.pem, for `custody --tls-dir`
//! DIR/coordinator/coordinator.toml, validator.key, data/, coordinator.log
//! DIR/accounts/admin.key, user.key
//! ```

use std::path::{Path, PathBuf};

use k256::ecdsa::SigningKey;
use signer_node::config::{ChainConfig, FleetId, NodeConfig, ValidatorConfig};
use signer_node::pki::{write_devnet, DevnetSpec};

use super::DevnetError;
use crate::chain::Address;
use crate::client::new_account_key;

/// The fleet id of the devnet's signers.
pub const FLEET_ID: &str = "devnet";
/// The devnet chain's id.
pub const CHAIN_ID: &str = "custody-devnet";
/// The name of the API client certificate.
pub const CLIENT_NAME: &str = "devnet";

/// What [`write_fleet`] wrote.
#[derive(Debug, Clone)]
pub struct FleetFiles {
    /// The fleet CA certificate.
    pub ca: PathBuf,
    /// Each signer's config, in index order.
    pub signer_configs: Vec<PathBuf>,
    /// The coordinator's certificate directory (cert.pem, key.pem).
    pub coordinator_tls: PathBuf,
    /// The API client's certificate directory (cert.pem, key.pem).
    pub client_tls: PathBuf,
    /// The coordinator's directory (config, validator key, data, log).
    pub coordinator_dir: PathBuf,
    /// The genesis admin (may request key generation).
    pub admin: SigningKey,
    /// The demo user.
    pub user: SigningKey,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> DevnetError {
    move |source| DevnetError::Io { what, source }
}

/// Writes the PKI, the `signers` signer configs (listening on `ports`, pinned to the devnet
/// chain's solo validator, fixture primes on) and the account keys into `dir`, which must
/// not exist or be empty.
pub fn write_fleet(dir: &Path, signers: u16, ports: &[u16]) -> Result<FleetFiles, DevnetError> {
    let layout = write_devnet(&DevnetSpec {
        fleet_id: FleetId::new(FLEET_ID).map_err(DevnetError::Setup)?,
        signers,
        coordinators: 1,
        clients: vec![CLIENT_NAME.to_owned()],
        // Orders are authorized by the chain's commit certificates; the authorizer key the
        // writer insists on is never used.
        authorizers: 1,
        quorum: 1,
        host: "127.0.0.1".into(),
        ports: ports.to_vec(),
        out: dir.to_owned(),
    })?;
    let coordinator_dir = dir.join("coordinator");
    std::fs::create_dir_all(coordinator_dir.join("data"))
        .map_err(io(format!("creating {}", coordinator_dir.display())))?;
    let validator = crate::config::write_validator_key(&coordinator_dir.join("validator.key"))?;
    for path in &layout.signer_configs {
        pin_signer(path, &validator)?;
    }
    let accounts = dir.join("accounts");
    std::fs::create_dir_all(&accounts).map_err(io(format!("creating {}", accounts.display())))?;
    let admin = new_account_key(&accounts.join("admin.key"))?;
    let user = new_account_key(&accounts.join("user.key"))?;
    let (Some(coordinator_tls), Some(client_tls)) = (
        layout.coordinator_dirs.first().cloned(),
        layout.client_dirs.first().cloned(),
    ) else {
        return Err(DevnetError::Setup(
            "the PKI writer made no coordinator or client certificate".into(),
        ));
    };
    // `custody --tls-dir` wants ca.pem beside the client's cert.pem and key.pem.
    let client_ca = client_tls.join("ca.pem");
    std::fs::copy(&layout.ca_cert, &client_ca)
        .map_err(io(format!("writing {}", client_ca.display())))?;
    Ok(FleetFiles {
        ca: layout.ca_cert,
        signer_configs: layout.signer_configs,
        coordinator_tls,
        client_tls,
        coordinator_dir,
        admin,
        user,
    })
}

/// Rewrites one signer config: `[chain]` pins the devnet chain and its validator, the
/// PUBLIC fixture primes are on (devnet only: aux info does not wait for prime generation),
/// and the raw-signing allow-list the writer adds for every client certificate is emptied
/// (the devnet's client certificate is for the coordinator API only).
fn pin_signer(path: &Path, validator: &[u8; 32]) -> Result<(), DevnetError> {
    let text = std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
    let mut config = NodeConfig::parse(&text)
        .map_err(|e| DevnetError::Setup(format!("{}: {e}", path.display())))?;
    config.devnet.fixture_primes = true;
    config.clients.clear();
    config.chain = Some(ChainConfig {
        chain_id: CHAIN_ID.into(),
        validators: vec![ValidatorConfig {
            key: hex::encode(validator),
            power: 1,
        }],
    });
    let body = toml::to_string(&config)
        .map_err(|e| DevnetError::Setup(format!("{}: {e}", path.display())))?;
    let text = format!(
        "# signer {} of the coordinator devnet; PUBLIC fixture primes: never for real keys.\n{body}",
        config.index
    );
    std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))
}

/// The chains the coordinator maps, as its config names them.
#[derive(Debug, Clone)]
pub struct ChainEndpoints {
    /// anvil's JSON-RPC URL.
    pub eth_url: String,
    /// anvil's chain id.
    pub eth_chain_id: u64,
    /// bcoin's HTTP URL.
    pub btc_url: String,
    /// bcoin's API key.
    pub btc_api_key: String,
    /// First bcoin height the deposit watcher scans (the tip when the devnet starts).
    pub btc_start_height: u64,
}

/// Writes `coordinator.toml` for the devnet and returns its path.
pub fn write_coordinator_config(
    files: &FleetFiles,
    listen_port: u16,
    signer_ports: &[u16],
    threshold: u16,
    confirmations: u64,
    chains: &ChainEndpoints,
) -> Result<PathBuf, DevnetError> {
    let admin = Address::of_key(files.admin.verifying_key());
    let signers: Vec<String> = signer_ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "  {{ index = {}, url = \"https://127.0.0.1:{p}\" }},",
                i + 1
            )
        })
        .collect();
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let text = format!(
        r#"# The devnet's coordinator; written by `coordinator devnet`.
listen = "127.0.0.1:{listen_port}"
data_dir = "data"
chain_id = "{CHAIN_ID}"
admin = "{admin}"
validator_key = "validator.key"
block_interval_ms = 500

[tls]
ca = {ca}
cert = {cert}
key = {key}

[fleet]
fleet_id = "{FLEET_ID}"
threshold = {threshold}
signers = [
{signers}
]

[ethereum]
rpc_url = "{eth_url}"
chain_id = {eth_chain_id}
confirmations = {confirmations}
start_height = 0

[bitcoin]
url = "{btc_url}"
api_key = "{btc_api_key}"
hrp = "rb"
confirmations = {confirmations}
start_height = {btc_start_height}

[engine]
interval_ms = 1000
"#,
        ca = quote(&files.ca),
        cert = quote(&files.coordinator_tls.join("cert.pem")),
        key = quote(&files.coordinator_tls.join("key.pem")),
        signers = signers.join("\n"),
        eth_url = chains.eth_url,
        eth_chain_id = chains.eth_chain_id,
        btc_url = chains.btc_url,
        btc_api_key = chains.btc_api_key,
        btc_start_height = chains.btc_start_height,
    );
    let path = files.coordinator_dir.join("coordinator.toml");
    std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
    Ok(path)
}
