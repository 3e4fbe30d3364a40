//! The `custody` binary against an in-process coordinator over real mTLS: key, address,
//! deposit address, account, transfer, lock-out, lock-out status, events, status, and
//! readable errors with a non-zero exit code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_support;

use std::process::Output;

use api_support::*;
use coordinator::chain::{Asset, SystemTx};
use custody_proto::identity::CallerIdentity;

struct Cli {
    tls_dir: std::path::PathBuf,
    endpoint: String,
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_custody"));
        cmd.args(args)
            .arg("--endpoint")
            .arg(&self.endpoint)
            .arg("--tls-dir")
            .arg(&self.tls_dir)
            .env_remove("CUSTODY_ENDPOINT")
            .env_remove("CUSTODY_TLS_DIR");
        // The server runs on this runtime: wait for the child off its worker threads.
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{args:?}: {stdout} {stderr}");
        stdout
    }

    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains("Status {"), "Debug dump: {stderr}");
        eprintln!("{args:?} -> {}", stderr.trim_end());
        stderr
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custody_cli_end_to_end() {
    let h = Harness::start().await;
    let work = tempfile::tempdir().unwrap();
    let cli = Cli {
        tls_dir: h.pki.write_dir(
            &CallerIdentity::Client("cli".into()),
            &work.path().join("tls"),
        ),
        endpoint: h.endpoint(),
    };
    let alice_key = work.path().join("alice.key");
    let alice_key = alice_key.to_str().unwrap();
    let alice = cli.ok(&["key", "new", "--out", alice_key]).await;
    let alice = alice.trim().to_owned();
    assert_eq!(alice.len(), 40);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(alice_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(cli.ok(&["address", "--key", alice_key]).await.trim(), alice);
    // Never overwrites a key.
    cli.fails(&["key", "new", "--out", alice_key]).await;

    let out = cli
        .ok(&["deposit-address", "--key", alice_key, "--asset", "mbtc"])
        .await;
    assert!(out.contains("committed in block"), "{out}");
    assert!(
        out.contains("mBTC deposit address: ") && out.contains("(path m/2/"),
        "{out}"
    );

    // Credit 5000 sat to alice in-process, as the lock-in watcher would.
    let address = coordinator::config::parse_address(&alice).unwrap();
    h.node
        .submit_system_and_wait(SystemTx::CreditDeposit {
            asset: Asset::MBTC,
            deposit_id: [3; 32],
            account: address,
            amount: 5000,
        })
        .await
        .unwrap();
    let out = cli.ok(&["account", "--key", alice_key]).await;
    assert!(out.contains("mBTC 5000"), "{out}");
    assert!(out.contains("next nonce 1"), "{out}");

    let bob = user(9).address.to_string();
    cli.ok(&[
        "transfer", "--key", alice_key, "--to", &bob, "--asset", "mbtc", "--amount", "1200",
    ])
    .await;
    let out = cli.ok(&["account", "--address", &bob]).await;
    assert!(out.contains("mBTC 1200"), "{out}");

    let out = cli
        .ok(&[
            "lock-out",
            "--key",
            alice_key,
            "--asset",
            "mbtc",
            "--to",
            "bcrt1qexample",
            "--amount",
            "800",
        ])
        .await;
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("lock-out id "))
        .unwrap()
        .to_owned();
    let out = cli.ok(&["lock-out-status", &id]).await;
    assert!(out.contains("stage locked"), "{out}");
    assert!(out.contains("amount 800 mBTC"), "{out}");

    let out = cli.ok(&["events", "--from", "1"]).await;
    assert!(out.contains("transfer 1200 mBTC from"), "{out}");
    assert!(out.contains("deposit 0303"), "{out}");
    let out = cli.ok(&["status"]).await;
    assert!(out.contains(&format!("chain {CHAIN_ID}")), "{out}");
    assert!(out.contains("mBTC: supply 5000 locked 800"), "{out}");

    // The certificate as three files instead of a directory.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["status", "--endpoint", &cli.endpoint, "--ca"])
        .arg(cli.tls_dir.join("ca.pem"))
        .arg("--cert")
        .arg(cli.tls_dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(cli.tls_dir.join("key.pem"))
        .output()
        .unwrap();
    assert!(out.status.success());

    // events --follow prints blocks committed after it started.
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args([
            "events",
            "--follow",
            "--from",
            "1",
            "--endpoint",
            &cli.endpoint,
            "--tls-dir",
        ])
        .arg(&cli.tls_dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    cli.ok(&[
        "transfer", "--key", alice_key, "--to", &bob, "--asset", "mbtc", "--amount", "77",
    ])
    .await;
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(line) = lines_rx.recv().await {
            if line.contains("transfer 77 mBTC") {
                return true;
            }
        }
        false
    })
    .await;
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        found,
        Ok(true),
        "events --follow did not print the new transfer"
    );

    // Readable refusals, non-zero exit.
    let e = cli
        .fails(&[
            "transfer", "--key", alice_key, "--to", &bob, "--asset", "mbtc", "--amount", "999999",
        ])
        .await;
    assert!(
        e.contains("failed precondition") && e.contains("overdraft"),
        "{e}"
    );
    let e = cli.fails(&["lock-out-status", &"ab".repeat(32)]).await;
    assert!(e.contains("not found"), "{e}");
    let e = cli
        .fails(&[
            "transfer", "--key", alice_key, "--to", "xyz", "--asset", "mbtc", "--amount", "1",
        ])
        .await;
    assert!(e.contains("--to"), "{e}");
    let e = Cli {
        tls_dir: work.path().join("nowhere"),
        endpoint: h.endpoint(),
    }
    .fails(&["status"])
    .await;
    assert!(e.contains("nowhere"), "{e}");
    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = Cli {
        tls_dir: cli.tls_dir.clone(),
        endpoint: format!("https://127.0.0.1:{port}"),
    }
    .fails(&["status"])
    .await;
    assert!(e.contains("cannot reach the coordinator"), "{e}");
}
