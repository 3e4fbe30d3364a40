//! The `[pools]` table: defaults, accepted values, and every refusal naming its key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use signer_node::config::{ConfigError, NodeConfig, ValidatedConfig};
use signer_node::node_key::NodeKey;

/// A valid config of signer 2 in a fleet of 3, followed by `pools` (a `[pools]` table or "").
fn config(pools: &str) -> String {
    let p: Vec<String> = (0..3).map(|_| NodeKey::generate().public_hex()).collect();
    let a = NodeKey::generate().public_hex();
    let peers: String = (1..=3)
        .map(|i| {
            format!(
                "[[peers]]\nindex = {i}\nendpoint = \"https://127.0.0.1:700{i}\"\nnode_public_key = \"{}\"\n\n",
                p[i - 1]
            )
        })
        .collect();
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

{peers}
[authorizers]
keys = ["{a}"]
quorum = 1

[policy]
max_signatures_per_window = 100
window_secs = 3600

{pools}
"#
    )
}

fn load(text: &str) -> Result<ValidatedConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.toml");
    std::fs::write(&path, text).unwrap();
    NodeConfig::load(&path)
}

/// `pools` must be refused with a message naming `key`.
fn refused(pools: &str, key: &str) {
    match load(&config(pools)) {
        Ok(_) => panic!("[pools] with a bad `{key}` was accepted: {pools}"),
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
fn pools_are_off_by_default() {
    let c = load(&config("")).unwrap();
    let p = &c.raw.pools;
    assert_eq!(
        (p.safe_prime_sets, p.prime_threads, p.presignatures_per_key),
        (0, 1, 0)
    );
    assert!(p.presign_signer_sets.is_empty());
    assert_eq!(p.status_log_secs, 60);
}

#[test]
fn pools_accept_valid_values() {
    let c = load(&config(
        "[pools]\nsafe_prime_sets = 4\nprime_threads = 2\npresignatures_per_key = 10\npresign_signer_sets = [[3, 1], [2, 3]]\nstatus_log_secs = 5\n",
    ))
    .unwrap();
    let p = &c.raw.pools;
    assert_eq!(
        (p.safe_prime_sets, p.prime_threads, p.presignatures_per_key),
        (4, 2, 10)
    );
    assert_eq!(p.signer_sets(), vec![vec![1, 3], vec![2, 3]]);
    assert_eq!(p.status_log_secs, 5);
}

#[test]
fn pools_refusals_name_their_key() {
    refused("[pools]\nprime_sets = 1\n", "prime_sets");
    refused("[pools]\nsafe_prime_sets = -1\n", "safe_prime_sets");
    refused("[pools]\nsafe_prime_sets = 65\n", "pools.safe_prime_sets");
    refused("[pools]\nprime_threads = 0\n", "pools.prime_threads");
    refused("[pools]\nprime_threads = 17\n", "pools.prime_threads");
    refused(
        "[pools]\npresignatures_per_key = 1001\n",
        "pools.presignatures_per_key",
    );
    refused("[pools]\nstatus_log_secs = 0\n", "pools.status_log_secs");
    refused(
        "[pools]\npresign_signer_sets = [[1, 2]]\n",
        "pools.presignatures_per_key",
    );
    refused(
        "[pools]\npresignatures_per_key = 2\npresign_signer_sets = [[1, 2], []]\n",
        "pools.presign_signer_sets[1]",
    );
    refused(
        "[pools]\npresignatures_per_key = 2\npresign_signer_sets = [[1, 1]]\n",
        "pools.presign_signer_sets[0]",
    );
    refused(
        "[pools]\npresignatures_per_key = 2\npresign_signer_sets = [[1, 4]]\n",
        "pools.presign_signer_sets[0]",
    );
    refused(
        "[pools]\npresignatures_per_key = 2\npresign_signer_sets = [[1, 2], [2, 1]]\n",
        "pools.presign_signer_sets[1]",
    );
    refused(
        "[pools]\npresignatures_per_key = 2\npresign_signer_sets = [[1, 70000]]\n",
        "presign_signer_sets",
    );
}
