//! Config refusals: each invalid or unknown key is refused at start with a message naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use signer_node::config::{ConfigError, NodeConfig};
use signer_node::node_key::NodeKey;

struct Keys {
    peers: Vec<String>,
    authorizers: Vec<String>,
}

fn keys() -> Keys {
    Keys {
        peers: (0..3).map(|_| NodeKey::generate().public_hex()).collect(),
        authorizers: (0..2).map(|_| NodeKey::generate().public_hex()).collect(),
    }
}

/// A valid config of signer 2 in a fleet of 3.
fn valid(k: &Keys) -> String {
    format!(
        r#"
listen = "127.0.0.1:7002"
fleet_id = "devnet"
index = 2
data_dir = "data"
node_key = "node.key"
hsm_profile = "hsm.toml"
round_deadline_ms = 30000

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

[[peers]]
index = 3
endpoint = "https://127.0.0.1:7003"
node_public_key = "{p3}"

[authorizers]
keys = ["{a1}", "{a2}"]
quorum = 2

[policy]
max_signatures_per_window = 100
window_secs = 3600

[limits]
max_envelope_payload_bytes = 1048576
max_request_bytes = 65536
"#,
        p1 = k.peers[0],
        p2 = k.peers[1],
        p3 = k.peers[2],
        a1 = k.authorizers[0],
        a2 = k.authorizers[1],
    )
}

fn load(text: &str) -> Result<(), ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.toml");
    std::fs::write(&path, text).unwrap();
    NodeConfig::load(&path).map(|_| ())
}

/// `text` must be refused with a message that contains `key`.
fn refused(text: &str, key: &str) {
    match load(text) {
        Ok(()) => panic!("config with a bad `{key}` was accepted"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(key),
                "message {message:?} does not name {key:?}"
            );
        }
    }
}

#[test]
fn valid_config_loads_with_paths_resolved() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.toml");
    std::fs::write(&path, valid(&k)).unwrap();
    let config = NodeConfig::load(&path).unwrap();
    assert_eq!(config.index(), 2);
    assert_eq!(config.peers.len(), 3);
    assert_eq!(config.raw.tls.ca, dir.path().join("ca.pem"));
    assert_eq!(config.authorizer_keys.len(), 2);
    assert_eq!(config.round_deadline.as_millis(), 30000);
}

#[test]
fn limits_table_may_be_left_out() {
    let k = keys();
    let text = valid(&k);
    let cut = text.find("[limits]").unwrap();
    assert!(load(&text[..cut]).is_ok());
}

#[test]
fn unknown_keys_are_refused_everywhere() {
    let k = keys();
    let v = valid(&k);
    refused(
        &v.replace("index = 2\n", "index = 2\nlisten_port = 1\n"),
        "listen_port",
    );
    refused(
        &v.replace("key = \"key.pem\"", "key = \"key.pem\"\npassword = \"x\""),
        "password",
    );
    refused(
        &v.replace(
            "endpoint = \"https://127.0.0.1:7001\"",
            "endpoint = \"https://127.0.0.1:7001\"\nweight = 3",
        ),
        "weight",
    );
    refused(
        &v.replace("quorum = 2", "quorum = 2\nthreshold = 1"),
        "threshold",
    );
    refused(
        &v.replace("window_secs = 3600", "window_secs = 3600\nburst = 9"),
        "burst",
    );
    refused(
        &v.replace(
            "max_request_bytes = 65536",
            "max_request_bytes = 65536\nmax_x = 1",
        ),
        "max_x",
    );
    refused(&format!("{v}\n[extra]\na = 1\n"), "extra");
}

#[test]
fn wrong_types_and_missing_keys_are_refused() {
    let k = keys();
    let v = valid(&k);
    refused(&v.replace("index = 2\n", "index = \"two\"\n"), "index");
    refused(&v.replace("index = 2\n", "index = 70000\n"), "index");
    refused(
        &v.replace("listen = \"127.0.0.1:7002\"", "listen = \"somewhere\""),
        "listen",
    );
    refused(
        &v.replace("round_deadline_ms = 30000\n", ""),
        "round_deadline_ms",
    );
    refused(
        &v.replace("fleet_id = \"devnet\"", "fleet_id = \"Dev Net\""),
        "fleet_id",
    );
}

#[test]
fn quorum_must_be_between_one_and_the_number_of_keys() {
    let k = keys();
    let v = valid(&k);
    refused(&v.replace("quorum = 2", "quorum = 0"), "authorizers.quorum");
    refused(&v.replace("quorum = 2", "quorum = 3"), "authorizers.quorum");
}

#[test]
fn authorizer_keys_must_be_valid_and_distinct() {
    let k = keys();
    let v = valid(&k);
    refused(
        &v.replace(&k.authorizers[1], &k.authorizers[0]),
        "authorizers.keys[1]",
    );
    refused(&v.replace(&k.authorizers[0], "zz"), "authorizers.keys[0]");
    refused(
        &v.replace(&k.authorizers[0], &k.authorizers[0][..62]),
        "authorizers.keys[0]",
    );
    refused(
        &v.replace(
            &format!(
                "keys = [\"{}\", \"{}\"]",
                k.authorizers[0], k.authorizers[1]
            ),
            "keys = []",
        ),
        "authorizers.keys",
    );
}

#[test]
fn peers_are_checked() {
    let k = keys();
    let v = valid(&k);
    // duplicate index
    refused(&v.replace("index = 3\n", "index = 1\n"), "peers[2].index");
    // own index missing
    refused(
        &v.replace("index = 2\nendpoint", "index = 4\nendpoint"),
        "index",
    );
    // bad hex
    refused(
        &v.replace(&k.peers[0], &"g".repeat(64)),
        "peers[0].node_public_key",
    );
    // the same key pinned twice
    refused(
        &v.replace(&k.peers[2], &k.peers[1]),
        "peers[2].node_public_key",
    );
    // plaintext or portless endpoint
    refused(
        &v.replace("https://127.0.0.1:7003", "http://127.0.0.1:7003"),
        "peers[2].endpoint",
    );
    refused(
        &v.replace("https://127.0.0.1:7003", "https://127.0.0.1"),
        "peers[2].endpoint",
    );
}

#[test]
fn policy_limits_and_deadline_are_checked() {
    let k = keys();
    let v = valid(&k);
    refused(
        &v.replace(
            "max_signatures_per_window = 100",
            "max_signatures_per_window = 0",
        ),
        "policy.max_signatures_per_window",
    );
    refused(
        &v.replace("window_secs = 3600", "window_secs = 0"),
        "policy.window_secs",
    );
    refused(
        &v.replace(
            "max_envelope_payload_bytes = 1048576",
            "max_envelope_payload_bytes = 0",
        ),
        "limits.max_envelope_payload_bytes",
    );
    refused(
        &v.replace(
            "max_request_bytes = 65536",
            "max_request_bytes = 999999999999",
        ),
        "limits.max_request_bytes",
    );
    refused(
        &v.replace("round_deadline_ms = 30000", "round_deadline_ms = 0"),
        "round_deadline_ms",
    );
}

#[test]
fn session_retention_limits_default_and_are_checked() {
    let k = keys();
    let v = valid(&k);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.toml");
    let load_config = |text: &str| {
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(&path).unwrap()
    };
    let config = load_config(&v);
    assert_eq!(config.raw.limits.session_retention_secs, 3600);
    assert_eq!(config.raw.limits.max_finished_sessions, 10_000);
    let set = |extra: &str| {
        v.replace(
            "max_request_bytes = 65536",
            &format!("max_request_bytes = 65536\n{extra}"),
        )
    };
    let config = load_config(&set(
        "session_retention_secs = 60\nmax_finished_sessions = 5",
    ));
    assert_eq!(config.raw.limits.session_retention_secs, 60);
    assert_eq!(config.raw.limits.max_finished_sessions, 5);
    refused(
        &set("session_retention_secs = 0"),
        "limits.session_retention_secs",
    );
    refused(
        &set("session_retention_secs = 604801"),
        "limits.session_retention_secs",
    );
    refused(
        &set("max_finished_sessions = 0"),
        "limits.max_finished_sessions",
    );
}

#[test]
fn unreadable_file_names_the_file() {
    let e = NodeConfig::load(std::path::Path::new("/nonexistent/signer.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/signer.toml"));
}

#[test]
fn chain_pin_is_checked() {
    let k = keys();
    let v1 = NodeKey::generate().public_hex();
    let v2 = NodeKey::generate().public_hex();
    let with_chain = |chain_id: &str, validators: &str| {
        format!(
            "{}\n[chain]\nchain_id = \"{chain_id}\"\nvalidators = [{validators}]\n",
            valid(&k)
        )
    };
    let two = format!("{{ key = \"{v1}\", power = 1 }}, {{ key = \"{v2}\", power = 3 }}");
    load(&with_chain("custody-devnet", &two)).unwrap();
    refused(&with_chain("", &two), "chain.chain_id");
    refused(&with_chain(&"x".repeat(65), &two), "chain.chain_id");
    refused(&with_chain("c", ""), "chain.validators");
    refused(
        &with_chain("c", &format!("{{ key = \"{v1}\", power = 0 }}")),
        "chain.validators[0].power",
    );
    refused(
        &with_chain(
            "c",
            &format!("{{ key = \"{v1}\", power = 1 }}, {{ key = \"{v1}\", power = 1 }}"),
        ),
        "chain.validators[1].key",
    );
    refused(
        &with_chain("c", "{ key = \"zz\", power = 1 }"),
        "chain.validators[0].key",
    );
    refused(
        &with_chain("c", &format!("{{ key = \"{v1}\", power = 1, weight = 2 }}")),
        "weight",
    );
}
