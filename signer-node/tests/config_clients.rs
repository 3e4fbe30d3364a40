//! Config of the raw-signing allow-list (`[[clients]]`) and of the metrics endpoint
//! (`metrics_listen`): every refusal names its key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use signer_node::config::{AllowedKeys, ConfigError, NodeConfig, ValidatedConfig};
use signer_node::node_key::NodeKey;

const KEY_A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const KEY_B: &str = "0202020202020202020202020202020202020202020202020202020202020202";

/// A valid config of signer 1 in a fleet of 2; `top` goes among the top-level keys and
/// `tail` after the last table.
fn config(top: &str, tail: &str) -> String {
    let p1 = NodeKey::generate().public_hex();
    let p2 = NodeKey::generate().public_hex();
    let a = NodeKey::generate().public_hex();
    format!(
        r#"
listen = "127.0.0.1:7001"
fleet_id = "devnet"
index = 1
data_dir = "data"
node_key = "node.key"
hsm_profile = "hsm.toml"
round_deadline_ms = 30000
{top}

[tls]
ca = "ca.pem"
cert = "cert.pem"
key = "key.pem"

[[peers]]
index = 1
endpoint = "https://127.0.0.1:7001"
node_public_key = "{p1}"

[[peers]]
index = 2
endpoint = "https://127.0.0.1:7002"
node_public_key = "{p2}"

[authorizers]
keys = ["{a}"]
quorum = 1

[policy]
max_signatures_per_window = 100
window_secs = 3600
{tail}
"#
    )
}

fn load(text: &str) -> Result<ValidatedConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.toml");
    std::fs::write(&path, text).unwrap();
    NodeConfig::load(&path)
}

/// `text` must be refused with a message that contains `key` and `why`.
fn refused(text: &str, key: &str, why: &str) {
    match load(text) {
        Ok(_) => panic!("config with a bad `{key}` was accepted"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(key) && message.contains(why),
                "message {message:?} does not name {key:?} and say {why:?}"
            );
        }
    }
}

fn client(name: &str, keys: &str, max: &str) -> String {
    format!("\n[[clients]]\nname = \"{name}\"\n{keys}\nmax_signatures_per_hour = {max}\n")
}

#[test]
fn clients_and_metrics_are_optional() {
    let c = load(&config("", "")).unwrap();
    assert!(c.clients.is_empty());
    assert_eq!(c.raw.metrics_listen, None);
}

#[test]
fn an_allow_list_loads() {
    let tail = client(
        "wallet",
        &format!("keys = [\"{KEY_A}\", \"{KEY_B}\"]"),
        "10",
    ) + &client("chain-node.1", "all_keys = true", "1");
    let c = load(&config("metrics_listen = \"127.0.0.1:9100\"", &tail)).unwrap();
    assert_eq!(c.clients.len(), 2);
    assert_eq!(c.clients[0].name, "wallet");
    assert_eq!(c.clients[0].max_signatures_per_hour, 10);
    match &c.clients[0].keys {
        AllowedKeys::Only(keys) => {
            assert!(keys.contains(&[1; 32]) && keys.contains(&[2; 32]) && keys.len() == 2)
        }
        AllowedKeys::All => panic!("wallet was given two keys"),
    }
    assert_eq!(c.clients[1].keys, AllowedKeys::All);
    assert_eq!(
        c.raw.metrics_listen,
        Some("127.0.0.1:9100".parse().unwrap())
    );
    // IPv6 loopback too
    assert!(load(&config("metrics_listen = \"[::1]:9100\"", "")).is_ok());
}

#[test]
fn bad_clients_are_refused_naming_the_key() {
    let keys = format!("keys = [\"{KEY_A}\"]");
    refused(
        &config("", &client("bad name", &keys, "1")),
        "clients[0].name",
        "[A-Za-z0-9._-]",
    );
    refused(
        &config("", &client("", &keys, "1")),
        "clients[0].name",
        "1 to 64",
    );
    refused(
        &config("", &(client("w", &keys, "1") + &client("w", &keys, "1"))),
        "clients[1].name",
        "listed twice",
    );
    refused(
        &config("", &client("w", "keys = [\"abcd\"]", "1")),
        "clients[0].keys[0]",
        "32 bytes",
    );
    refused(
        &config("", &client("w", "keys = [\"zz\"]", "1")),
        "clients[0].keys[0]",
        "not hex",
    );
    refused(
        &config(
            "",
            &client("w", &format!("keys = [\"{KEY_A}\", \"{KEY_A}\"]"), "1"),
        ),
        "clients[0].keys[1]",
        "twice",
    );
    refused(
        &config("", &client("w", "", "1")),
        "clients[0].keys",
        "all_keys",
    );
    refused(
        &config("", &client("w", &format!("{keys}\nall_keys = true"), "1")),
        "clients[0].keys",
        "not both",
    );
    refused(
        &config("", &client("w", &keys, "0")),
        "clients[0].max_signatures_per_hour",
        "at least 1",
    );
    // unknown keys inside [[clients]] and a missing quota are refused by the parser
    refused(
        &config("", &(client("w", &keys, "1") + "quota = 3\n")),
        "quota",
        "unknown field",
    );
    refused(
        &config("", "\n[[clients]]\nname = \"w\"\nall_keys = true\n"),
        "max_signatures_per_hour",
        "missing field",
    );
}

#[test]
fn metrics_on_a_non_loopback_address_needs_the_explicit_switch() {
    refused(
        &config("metrics_listen = \"0.0.0.0:9100\"", ""),
        "metrics_listen",
        "metrics_allow_non_loopback",
    );
    refused(
        &config("metrics_listen = \"10.1.2.3:9100\"", ""),
        "metrics_listen",
        "not a loopback address",
    );
    let c = load(&config(
        "metrics_listen = \"10.1.2.3:9100\"\nmetrics_allow_non_loopback = true",
        "",
    ))
    .unwrap();
    assert_eq!(c.raw.metrics_listen, Some("10.1.2.3:9100".parse().unwrap()));
    refused(
        &config("metrics_listen = \"localhost:9100\"", ""),
        "metrics_listen",
        "",
    );
}
