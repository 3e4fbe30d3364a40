//! A caller of the public API (`custody.coordinator.v1`) over mTLS, shared by the `custody`
//! CLI and the `devnet` command: connect with a client certificate, read status and
//! accounts, fill chain id and nonce, sign locally with a secp256k1 account key and submit.
//! gRPC failures become [`ClientError`]s that read as one line.

use std::path::{Path, PathBuf};

use custody_proto::coordinator::v1 as pb;
use custody_proto::coordinator::v1::coordinator_client::CoordinatorClient;
use custody_proto::tls::TlsMaterial;
use k256::ecdsa::SigningKey;
use tonic::transport::Channel;
use zeroize::Zeroizing;

use crate::chain::account::compressed;
use crate::chain::{Address, Transaction, TxBody};
use crate::config::write_secret_file;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The coordinator could not be reached (connection refused, TLS failed, ...).
    #[error("cannot reach the coordinator at {endpoint}: {detail}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport's message with its causes.
        detail: String,
    },
    /// The coordinator answered with an error.
    #[error("the coordinator refused ({code}): {message}")]
    Refused {
        /// A readable name of the gRPC code.
        code: String,
        /// Its message (for a refused transaction, the `TxRejection`).
        message: String,
    },
    /// The TLS files could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] custody_proto::tls::TlsError),
    /// An account key file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An account key file does not hold a key.
    #[error("{0}: not an account key file (64 hex digits of a secp256k1 secret key)")]
    BadKey(PathBuf),
    /// An account key file could not be written.
    #[error(transparent)]
    File(#[from] crate::config::ConfigError),
}

impl ClientError {
    /// The error of a failed call to `endpoint`.
    pub fn from_status(endpoint: &str, s: tonic::Status) -> Self {
        use std::error::Error;
        use tonic::Code;
        let code = match s.code() {
            Code::Unavailable => {
                let mut detail = s.message().to_owned();
                let mut source = s.source();
                while let Some(e) = source {
                    let text = e.to_string();
                    if !detail.contains(&text) {
                        detail = format!("{detail}: {text}");
                    }
                    source = e.source();
                }
                return ClientError::Unreachable {
                    endpoint: endpoint.to_owned(),
                    detail,
                };
            }
            Code::InvalidArgument => "invalid argument",
            Code::FailedPrecondition => "failed precondition",
            Code::PermissionDenied => "permission denied",
            Code::NotFound => "not found",
            Code::ResourceExhausted => "resource exhausted",
            Code::DeadlineExceeded => "deadline exceeded",
            Code::Unauthenticated => "unauthenticated",
            Code::Internal => "internal error",
            _ => "error",
        };
        ClientError::Refused {
            code: code.to_owned(),
            message: s.message().to_owned(),
        }
    }
}

/// Reads an account key file (64 hex digits of a secp256k1 secret key).
pub fn read_account_key(path: &Path) -> Result<SigningKey, ClientError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| ClientError::Io {
            path: path.to_owned(),
            source,
        })?,
    );
    let bytes =
        Zeroizing::new(hex::decode(text.trim()).map_err(|_| ClientError::BadKey(path.to_owned()))?);
    SigningKey::from_slice(&bytes).map_err(|_| ClientError::BadKey(path.to_owned()))
}

/// Makes a new account key and writes it to `path` (mode 0600; never overwrites).
pub fn new_account_key(path: &Path) -> Result<SigningKey, ClientError> {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let text = Zeroizing::new(hex::encode(key.to_bytes()) + "\n");
    write_secret_file(path, text.as_bytes())?;
    Ok(key)
}

/// A connection to one coordinator's public API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// The generated gRPC client, for calls this type does not wrap.
    pub client: CoordinatorClient<Channel>,
    endpoint: String,
}

impl ApiClient {
    /// A lazy connection to `endpoint` (`https://HOST:PORT`) with a client certificate.
    pub fn connect(tls: &TlsMaterial, endpoint: &str) -> Result<Self, ClientError> {
        let channel = tls.channel(endpoint)?;
        Ok(Self {
            client: CoordinatorClient::new(channel),
            endpoint: endpoint.to_owned(),
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The error of a failed call.
    pub fn err(&self, s: tonic::Status) -> ClientError {
        ClientError::from_status(&self.endpoint, s)
    }

    /// `GetStatus`.
    pub async fn status(&mut self) -> Result<pb::Status, ClientError> {
        match self.client.get_status(pb::GetStatusRequest {}).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(self.err(s)),
        }
    }

    /// `GetAccount`.
    pub async fn account(&mut self, address: &Address) -> Result<pb::Account, ClientError> {
        match self
            .client
            .get_account(pb::GetAccountRequest {
                address: address.0.to_vec(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(self.err(s)),
        }
    }

    /// `GetDepositAddresses` of `account`.
    pub async fn deposit_addresses(
        &mut self,
        account: &Address,
    ) -> Result<Vec<pb::DepositAddress>, ClientError> {
        match self
            .client
            .get_deposit_addresses(pb::GetDepositAddressesRequest {
                account: account.0.to_vec(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().addresses),
            Err(s) => Err(self.err(s)),
        }
    }

    /// `GetLockOut`.
    pub async fn lock_out(&mut self, id: &[u8; 32]) -> Result<pb::LockOut, ClientError> {
        match self
            .client
            .get_lock_out(pb::GetLockOutRequest {
                lock_out_id: id.to_vec(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(self.err(s)),
        }
    }

    /// Fills chain id (from `GetStatus`) and nonce (from `GetAccount`) and signs `body`;
    /// returns the encoded transaction and its nonce.
    pub async fn sign(
        &mut self,
        key: &SigningKey,
        body: TxBody,
    ) -> Result<(Vec<u8>, u64), ClientError> {
        let status = self.status().await?;
        let address = Address::of_key(key.verifying_key());
        let nonce = self.account(&address).await?.next_nonce;
        let tx = Transaction {
            chain_id: status.chain_id,
            sender: compressed(key.verifying_key()),
            nonce,
            body,
        }
        .sign(key);
        Ok((tx.encode(), nonce))
    }

    /// `SubmitTransaction` with `wait`: returns once a block has included it.
    pub async fn submit_and_wait(
        &mut self,
        transaction: Vec<u8>,
    ) -> Result<pb::SubmitTransactionResponse, ClientError> {
        match self
            .client
            .submit_transaction(pb::SubmitTransactionRequest {
                transaction,
                wait: true,
            })
            .await
        {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(self.err(s)),
        }
    }
}
