//! A small JSON-RPC client over HTTP for external chain nodes (anvil speaks JSON-RPC 2.0,
//! bcoin's node RPC 1.0 with HTTP basic authentication; both take the same request shape).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Largest answer accepted from a node.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No answer: connection, timeout, HTTP status without a JSON-RPC body.
    #[error("{method}: transport: {detail}")]
    Transport {
        /// The method called.
        method: String,
        /// What went wrong.
        detail: String,
    },
    /// The node answered with a JSON-RPC error object.
    #[error("{method}: error {code}: {message}")]
    Node {
        /// The method called.
        method: String,
        /// The error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The answer is not what the method returns.
    #[error("{method}: malformed answer: {detail}")]
    Malformed {
        /// The method called.
        method: String,
        /// What did not parse.
        detail: String,
    },
}

/// One node endpoint. `Debug` shows the URL, never the credentials.
pub struct JsonRpcClient {
    http: reqwest::Client,
    url: String,
    basic_auth: Option<(String, String)>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for JsonRpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonRpcClient")
            .field("url", &self.url)
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "(hidden)"))
            .finish_non_exhaustive()
    }
}

impl JsonRpcClient {
    /// A client for `url` (`http://127.0.0.1:8545`), with HTTP basic authentication when
    /// `basic_auth` is given, and a per-call timeout.
    pub fn new(
        url: &str,
        basic_auth: Option<(String, String)>,
        timeout: Duration,
    ) -> Result<Self, RpcError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| RpcError::Transport {
                method: "(client)".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            http,
            url: url.to_owned(),
            basic_auth,
            next_id: AtomicU64::new(1),
        })
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with positional `params` and decodes the result as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, RpcError> {
        let value = self.call_value(method, params).await?;
        serde_json::from_value(value).map_err(|e| RpcError::Malformed {
            method: method.to_owned(),
            detail: e.to_string(),
        })
    }

    /// Calls `method` and returns the raw `result` (which may be `null`).
    pub async fn call_value(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": method,
            "params": params,
        });
        let transport = |detail: String| RpcError::Transport {
            method: method.to_owned(),
            detail,
        };
        let mut request = self.http.post(&self.url).json(&body);
        if let Some((user, password)) = &self.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport(e.to_string()))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(transport(format!("answer of {} bytes", bytes.len())));
        }
        // bcoin answers JSON-RPC errors with HTTP 500 and a body; keep the body when it parses.
        let reply: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if !status.is_success() => return Err(transport(format!("HTTP {status}"))),
            Err(e) => {
                return Err(RpcError::Malformed {
                    method: method.to_owned(),
                    detail: e.to_string(),
                })
            }
        };
        if let Some(err) = reply.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError::Node {
                method: method.to_owned(),
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_owned(),
            });
        }
        if !status.is_success() {
            return Err(transport(format!("HTTP {status}")));
        }
        reply
            .get("result")
            .cloned()
            .ok_or_else(|| RpcError::Malformed {
                method: method.to_owned(),
                detail: "no result".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_hides_the_credentials() {
        let c = JsonRpcClient::new(
            "http://127.0.0.1:1",
            Some(("x".into(), "s3cret-api-key".into())),
            Duration::from_secs(1),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
