//! bcoin's REST API (same port and API key as its JSON-RPC; HTTP basic authentication with
//! user `x`), for what its node RPC lacks: unspent coins by address (`--index-address`) and a
//! transaction by id from the mempool or the chain (`--index-tx`).

use std::time::Duration;

use serde_json::Value;

use crate::adapter::jsonrpc::{RpcError, MAX_RESPONSE_BYTES};

/// A client for bcoin's REST endpoints. `Debug` does not show the API key.
pub struct BcoinRest {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl std::fmt::Debug for BcoinRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BcoinRest")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl BcoinRest {
    /// A client for the node at `base` (`http://127.0.0.1:48332`).
    pub fn new(base: &str, api_key: &str, timeout: Duration) -> Result<Self, RpcError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| RpcError::Transport {
                method: "(client)".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    /// `GET path`: the JSON body, or `None` when the node answers 404.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, RpcError> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(path, request).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, RpcError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(path, request)
            .await?
            .ok_or_else(|| RpcError::Malformed {
                method: path.to_owned(),
                detail: "404".into(),
            })
    }

    async fn send(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<Value>, RpcError> {
        let transport = |detail: String| RpcError::Transport {
            method: path.to_owned(),
            detail,
        };
        let response = request
            .basic_auth("x", Some(&self.api_key))
            .send()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport(e.to_string()))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(transport(format!("answer of {} bytes", bytes.len())));
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| RpcError::Malformed {
            method: path.to_owned(),
            detail: format!("HTTP {status}: {e}"),
        })?;
        if !status.is_success() {
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            return Err(RpcError::Node {
                method: path.to_owned(),
                code: i64::from(status.as_u16()),
                message: message.to_owned(),
            });
        }
        Ok(Some(body))
    }
}
