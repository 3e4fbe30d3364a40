//! `custody`: the command line a person uses against a coordinator's public API.
//!
//! It connects over mTLS with a client certificate of the fleet (`--tls-dir DIR` holding
//! `ca.pem`, `cert.pem`, `key.pem`, or `--ca --cert --key`), fills the nonce from
//! `GetAccount`, signs locally with the account key file and submits with `wait`, showing a
//! spinner until the block is committed. Amounts are integers in the smallest unit (wei for
//! mETH, satoshi for mBTC). Errors print as one readable line; the exit code is 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use coordinator::chain::{Address, Asset, TxBody};
use coordinator::client::{new_account_key, read_account_key, ApiClient, ClientError};
use coordinator::config::parse_address;
use custody_proto::coordinator::v1 as pb;
use custody_proto::tls::TlsMaterial;
use indicatif::{ProgressBar, ProgressStyle};
use k256::ecdsa::SigningKey;
use tokio_stream::StreamExt;

#[derive(Parser)]
#[command(name = "custody", version, about = "Talk to a custody coordinator")]
struct Cli {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Connection {
    /// The coordinator's API endpoint.
    #[arg(
        long,
        global = true,
        env = "CUSTODY_ENDPOINT",
        default_value = "https://127.0.0.1:7300"
    )]
    endpoint: String,
    /// A directory holding ca.pem, cert.pem and key.pem (a client certificate of the fleet).
    #[arg(long, global = true, env = "CUSTODY_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// The fleet CA certificate (instead of --tls-dir).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// The client certificate (instead of --tls-dir).
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// The client certificate's private key (instead of --tls-dir).
    #[arg(long = "tls-key", global = true)]
    tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Account keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the account address of a key file.
    Address {
        /// The account key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Send mapped tokens to another account.
    Transfer {
        /// The sender's account key file.
        #[arg(long)]
        key: PathBuf,
        /// Recipient address (40 hex digits).
        #[arg(long)]
        to: String,
        /// The asset.
        #[arg(long, value_enum)]
        asset: AssetArg,
        /// Amount in the smallest unit (wei, satoshi).
        #[arg(long)]
        amount: String,
    },
    /// Request a deposit (lock-in) address for an asset and show the account's addresses.
    DepositAddress {
        /// The account key file.
        #[arg(long)]
        key: PathBuf,
        /// The asset to deposit.
        #[arg(long, value_enum)]
        asset: AssetArg,
        /// Only show the addresses already issued; request nothing.
        #[arg(long)]
        show: bool,
    },
    /// Lock mapped tokens and ask for them to be paid out on the external chain.
    LockOut {
        /// The account key file.
        #[arg(long)]
        key: PathBuf,
        /// The asset.
        #[arg(long, value_enum)]
        asset: AssetArg,
        /// Destination on the external chain.
        #[arg(long)]
        to: String,
        /// Amount in the smallest unit (wei, satoshi).
        #[arg(long)]
        amount: String,
        /// Wait (spinner) until the lock-out is burned or refunded, showing its stage.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Show an account's nonce and balances.
    Account {
        /// The account key file (or give --address).
        #[arg(long, conflicts_with = "address", required_unless_present = "address")]
        key: Option<PathBuf>,
        /// The account address.
        #[arg(long)]
        address: Option<String>,
    },
    /// As the chain's admin: request a key generation, then wait (spinner) until the
    /// coordinator's DKG on the signer fleet has recorded the key, and print it.
    Keygen {
        /// The admin's account key file.
        #[arg(long)]
        key: PathBuf,
        /// Give up waiting after this many seconds (the request stays on chain).
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Show where a lock-out stands.
    LockOutStatus {
        /// The lock-out id (64 hex digits), as `custody lock-out` printed it.
        id: String,
    },
    /// Print committed blocks' events.
    Events {
        /// First height.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Keep following new blocks.
        #[arg(long)]
        follow: bool,
    },
    /// Show the chain's status.
    Status,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Make a new account key (secp256k1) in a file readable only by you.
    New {
        /// Where to write it; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AssetArg {
    /// Mapped ether (wei).
    Meth,
    /// Mapped bitcoin (satoshi).
    Mbtc,
}

impl From<AssetArg> for Asset {
    fn from(a: AssetArg) -> Self {
        match a {
            AssetArg::Meth => Asset::METH,
            AssetArg::Mbtc => Asset::MBTC,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    File(#[from] coordinator::config::ConfigError),
    #[error("TLS: {0}")]
    Tls(#[from] custody_proto::tls::TlsError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Api {
    inner: ApiClient,
}

impl Api {
    fn connect(conn: &Connection) -> Result<Self, CliError> {
        let (ca, cert, key) = match (&conn.tls_dir, &conn.ca, &conn.cert, &conn.tls_key) {
            (_, Some(ca), Some(cert), Some(key)) => (ca.clone(), cert.clone(), key.clone()),
            (Some(dir), None, None, None) => {
                (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
            }
            _ => {
                return Err(CliError::Usage(
                    "give a client certificate: --tls-dir DIR (with ca.pem, cert.pem, key.pem) or all of --ca, --cert and --tls-key".into(),
                ))
            }
        };
        let tls = TlsMaterial::load(&ca, &cert, &key)?;
        Ok(Self {
            inner: ApiClient::connect(&tls, &conn.endpoint)?,
        })
    }

    fn err(&self, s: tonic::Status) -> CliError {
        self.inner.err(s).into()
    }

    async fn status(&mut self) -> Result<pb::Status, CliError> {
        Ok(self.inner.status().await?)
    }

    async fn account(&mut self, address: &Address) -> Result<pb::Account, CliError> {
        Ok(self.inner.account(address).await?)
    }

    /// Fills chain id and nonce, signs, submits with wait behind a spinner.
    async fn sign_and_submit(
        &mut self,
        key: &SigningKey,
        body: TxBody,
    ) -> Result<pb::SubmitTransactionResponse, CliError> {
        let (tx, nonce) = self.inner.sign(key, body).await?;
        let spinner = spinner(&format!("waiting for a block to include nonce {nonce}"));
        let result = self.inner.submit_and_wait(tx).await;
        spinner.finish_and_clear();
        let r = result?;
        println!(
            "committed in block {} (index {}), transaction {}",
            r.height,
            r.index,
            hex::encode(&r.transaction_hash)
        );
        Ok(r)
    }
}

/// A spinner with `message` and the elapsed time.
fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

fn read_key(path: &Path) -> Result<SigningKey, CliError> {
    Ok(read_account_key(path)?)
}

fn amount(text: &str) -> Result<u128, CliError> {
    text.parse::<u128>()
        .ok()
        .filter(|a| *a > 0)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--amount {text:?} is not a whole number above zero in the smallest unit (wei, satoshi)"
            ))
        })
}

fn address_arg(flag: &str, text: &str) -> Result<Address, CliError> {
    parse_address(text).map_err(|reason| CliError::Usage(format!("{flag} {text:?} {reason}")))
}

fn asset_name(code: i32) -> &'static str {
    match pb::Asset::try_from(code) {
        Ok(pb::Asset::Meth) => "mETH",
        Ok(pb::Asset::Mbtc) => "mBTC",
        _ => "unknown asset",
    }
}

fn stage_name(code: i32) -> &'static str {
    match pb::LockOutStage::try_from(code) {
        Ok(pb::LockOutStage::Locked) => "locked (waiting for its external order)",
        Ok(pb::LockOutStage::OrderCommitted) => "order committed (being signed and paid out)",
        Ok(pb::LockOutStage::Burned) => "burned (paid out on the external chain)",
        Ok(pb::LockOutStage::Refunded) => "refunded",
        Ok(pb::LockOutStage::Cancelling) => {
            "cancelling (the order expired unsigned; a cancelling transaction is being mined)"
        }
        Ok(pb::LockOutStage::Cancelled) => "cancelled (refunded less the cancellation's fee)",
        _ => "unknown",
    }
}

fn print_event(e: &pb::BlockEvents) {
    use pb::transaction_event::Kind;
    println!("block {} {}", e.height, hex::encode(&e.hash));
    for t in &e.transactions {
        let from = hex::encode(&t.sender);
        let what = match &t.kind {
            Some(Kind::Transfer(x)) => format!(
                "transfer {} {} from {from} to {}",
                x.amount,
                asset_name(x.asset),
                hex::encode(&x.to)
            ),
            Some(Kind::KeygenRequested(_)) => format!("key generation requested by {from}"),
            Some(Kind::DepositAddressRequested(a)) => {
                format!("deposit address for {} requested by {from}", asset_name(*a))
            }
            Some(Kind::LockOutRequested(l)) => format!(
                "lock-out {} of {} {} by {from} to {}",
                hex::encode(&l.lock_out_id),
                l.amount,
                asset_name(l.asset),
                l.destination
            ),
            Some(Kind::DepositCredited(l)) => format!(
                "deposit {} credited: {} {} to {}",
                hex::encode(&l.deposit_id),
                l.amount,
                asset_name(l.asset),
                hex::encode(&l.account)
            ),
            Some(Kind::OrderCommitted(o)) => {
                format!(
                    "order committed for lock-out {}",
                    hex::encode(&o.lock_out_id)
                )
            }
            Some(Kind::CancellationCommitted(c)) => format!(
                "cancellation committed for lock-out {} (fee at most {})",
                hex::encode(&c.lock_out_id),
                c.fee
            ),
            Some(Kind::LockOutSettled(s)) => format!(
                "lock-out {} {}",
                hex::encode(&s.lock_out_id),
                stage_name(s.stage)
            ),
            Some(Kind::FleetKeyRecorded(k)) => format!(
                "fleet key {} recorded ({}-of-{}, key id {})",
                hex::encode(&k.public_key),
                k.threshold,
                k.holders.len(),
                hex::encode(&k.key_id)
            ),
            Some(Kind::SignerBlamed(b)) => format!(
                "signers {:?} blamed for session {}: {} (evidence digest {})",
                b.culprits,
                hex::encode(&b.session_id),
                b.reason,
                hex::encode(&b.evidence_digest)
            ),
            Some(Kind::Other(_)) | None => "transaction of another kind".to_owned(),
        };
        println!("  #{} {what}", t.index);
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Key(KeyCommand::New { out }) => {
            let key = new_account_key(&out)?;
            println!("{}", Address::of_key(key.verifying_key()));
            Ok(())
        }
        Command::Address { key } => {
            println!("{}", Address::of_key(read_key(&key)?.verifying_key()));
            Ok(())
        }
        Command::Transfer {
            key,
            to,
            asset,
            amount: a,
        } => {
            let body = TxBody::Transfer {
                to: address_arg("--to", &to)?,
                asset: asset.into(),
                amount: amount(&a)?,
            };
            let key = read_key(&key)?;
            Api::connect(&cli.conn)?.sign_and_submit(&key, body).await?;
            Ok(())
        }
        Command::DepositAddress { key, asset, show } => {
            let key = read_key(&key)?;
            let mut api = Api::connect(&cli.conn)?;
            if !show {
                api.sign_and_submit(
                    &key,
                    TxBody::RequestDepositAddress {
                        asset: asset.into(),
                    },
                )
                .await?;
            }
            let address = Address::of_key(key.verifying_key());
            let list = match api
                .inner
                .client
                .get_deposit_addresses(pb::GetDepositAddressesRequest {
                    account: address.0.to_vec(),
                })
                .await
            {
                Ok(r) => r.into_inner(),
                Err(s) => return Err(api.err(s)),
            };
            let wanted = convert_asset(asset.into());
            for a in list.addresses.iter().filter(|a| a.asset == wanted) {
                let path: Vec<String> = a.path.iter().map(|i| i.to_string()).collect();
                let external = if a.address.is_empty() {
                    "(no external address yet: no fleet key is recorded, or the coordinator runs no adapter for this asset)".to_owned()
                } else {
                    a.address.clone()
                };
                println!(
                    "{} deposit address: {external}  (path m/{}, issued in block {})",
                    asset_name(a.asset),
                    path.join("/"),
                    a.height
                );
            }
            Ok(())
        }
        Command::LockOut {
            key,
            asset,
            to,
            amount: a,
            wait,
            timeout_secs,
        } => {
            let body = TxBody::RequestLockOut {
                asset: asset.into(),
                to_external: to,
                amount: amount(&a)?,
            };
            let key = read_key(&key)?;
            let mut api = Api::connect(&cli.conn)?;
            let r = api.sign_and_submit(&key, body).await?;
            println!("lock-out id {}", hex::encode(&r.lock_out_id));
            if !wait {
                return Ok(());
            }
            let id: [u8; 32] =
                r.lock_out_id.as_slice().try_into().map_err(|_| {
                    CliError::Usage("the coordinator returned no lock-out id".into())
                })?;
            let spinner = spinner("lock-out: locked");
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout_secs);
            loop {
                let l = api.inner.lock_out(&id).await?;
                let stage = pb::LockOutStage::try_from(l.stage).ok();
                spinner.set_message(format!("lock-out: {}", stage_name(l.stage)));
                if matches!(
                    stage,
                    Some(
                        pb::LockOutStage::Burned
                            | pb::LockOutStage::Refunded
                            | pb::LockOutStage::Cancelled
                    )
                ) {
                    spinner.finish_and_clear();
                    println!("lock-out {}: {}", hex::encode(id), stage_name(l.stage));
                    return Ok(());
                }
                if std::time::Instant::now() > deadline {
                    spinner.finish_and_clear();
                    return Err(CliError::Usage(format!(
                        "lock-out still {} after {timeout_secs} s; follow it with `custody lock-out-status {}`",
                        stage_name(l.stage),
                        hex::encode(id)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Command::Keygen { key, timeout_secs } => {
            let key = read_key(&key)?;
            let mut api = Api::connect(&cli.conn)?;
            let before = api.status().await?.fleet_key.map(|k| k.request_id);
            api.sign_and_submit(&key, TxBody::RequestKeygen).await?;
            let spinner = spinner("DKG on the signer fleet (GJKR + CGGMP24 aux info)");
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout_secs);
            loop {
                let status = api.status().await?;
                if let Some(k) = status.fleet_key.filter(|k| Some(k.request_id) != before) {
                    spinner.finish_and_clear();
                    println!(
                        "fleet key {} ({}-of-{}, key id {}, recorded at height {})",
                        hex::encode(&k.public_key),
                        k.threshold,
                        k.holders.len(),
                        hex::encode(&k.key_id),
                        k.height
                    );
                    return Ok(());
                }
                if std::time::Instant::now() > deadline {
                    spinner.finish_and_clear();
                    return Err(CliError::Usage(format!(
                        "no key recorded after {timeout_secs} s (the request stays on chain; see the coordinator's log, and `custody status`)"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Command::Account { key, address } => {
            let who = match (key, address) {
                (Some(k), _) => Address::of_key(read_key(&k)?.verifying_key()),
                (None, Some(a)) => address_arg("--address", &a)?,
                (None, None) => return Err(CliError::Usage("give --key or --address".into())),
            };
            let a = Api::connect(&cli.conn)?.account(&who).await?;
            println!("account {who}");
            println!("next nonce {}", a.next_nonce);
            for b in &a.balances {
                println!("{} {}", asset_name(b.asset), b.amount);
            }
            Ok(())
        }
        Command::LockOutStatus { id } => {
            let bytes = hex::decode(id.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    CliError::Usage(format!("{id:?} is not a lock-out id (64 hex digits)"))
                })?;
            let mut api = Api::connect(&cli.conn)?;
            let l = match api
                .inner
                .client
                .get_lock_out(pb::GetLockOutRequest { lock_out_id: bytes })
                .await
            {
                Ok(r) => r.into_inner(),
                Err(s) => return Err(api.err(s)),
            };
            println!("lock-out {}", hex::encode(&l.lock_out_id));
            println!("stage {}", stage_name(l.stage));
            println!("owner {}", hex::encode(&l.owner));
            println!("amount {} {}", l.amount, asset_name(l.asset));
            println!("destination {}", l.destination);
            println!("requested in block {}", l.requested_height);
            if l.order_height > 0 {
                println!(
                    "order committed in block {} (index {})",
                    l.order_height, l.order_index
                );
            }
            Ok(())
        }
        Command::Events { from, follow } => {
            let mut api = Api::connect(&cli.conn)?;
            let top = api.status().await?.height;
            let mut stream = match api
                .inner
                .client
                .stream_events(pb::StreamEventsRequest { from_height: from })
                .await
            {
                Ok(r) => r.into_inner(),
                Err(s) => return Err(api.err(s)),
            };
            if !follow && from > top {
                return Ok(());
            }
            while let Some(item) = stream.next().await {
                let e = item.map_err(|s| api.err(s))?;
                print_event(&e);
                if !follow && e.height >= top {
                    break;
                }
            }
            Ok(())
        }
        Command::Status => {
            let s = Api::connect(&cli.conn)?.status().await?;
            println!("chain {}", s.chain_id);
            println!("height {}", s.height);
            println!("last block {}", hex::encode(&s.last_block_hash));
            println!("mempool {}", s.mempool_size);
            match &s.fleet_key {
                Some(k) => println!(
                    "fleet key {} ({}-of-{}, recorded at height {})",
                    hex::encode(&k.public_key),
                    k.threshold,
                    k.holders.len(),
                    k.height
                ),
                None => println!("fleet key: none yet (no DKG recorded)"),
            }
            for t in &s.totals {
                println!(
                    "{}: supply {} locked {} credited {} burned {}",
                    asset_name(t.asset),
                    t.supply,
                    t.locked,
                    t.credited,
                    t.burned
                );
            }
            Ok(())
        }
    }
}

fn convert_asset(a: Asset) -> i32 {
    coordinator::api::convert::asset_to_pb(a)
}
