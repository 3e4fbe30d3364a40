//! Prometheus metrics: counters kept by the runner, the registry and the peer service, and a
//! small plaintext HTTP responder for `GET /metrics` (text exposition format 0.0.4).
//!
//! Metrics carry no secrets and no session ids: every label takes a value from a fixed set
//! (protocol kind, outcome, refusal reason), except `client` (the names on this signer's
//! allow-list, so bounded by the configuration) and `key_id` of the pool gauge (the keys this
//! signer holds, read from the vault at each scrape).
//!
//! The endpoint is plaintext HTTP/1.1 without authentication: `metrics_listen` must be a
//! loopback address unless the configuration says `metrics_allow_non_loopback = true`
//! (checked in [`crate::config`]). Each connection gets one response and is closed; a request
//! head over [`MAX_REQUEST_HEAD_BYTES`] or slower than [`REQUEST_TIMEOUT`] is dropped, and at
//! most [`MAX_CONNECTIONS`] scrapes are served at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use custody_proto::signer::v1::{ProtocolKind, SessionState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::envelope::EnvelopeError;
use crate::gate::GateRefusal;
use crate::inbox::InboxRefusal;
use crate::vault::Vault;

/// Upper bounds (seconds) of the session duration histogram's buckets.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];
/// Longest request head the endpoint reads.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most scrapes served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a client's `SignDigest` was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientRefusal {
    /// Malformed request (lengths, path, signer set).
    InvalidArgument,
    /// The caller is not on the allow-list.
    NotAllowed,
    /// The caller may not use this key.
    KeyNotAllowed,
    /// Over quota.
    Quota,
    /// No such key here.
    NoSuchKey,
    /// Session id used before.
    SessionExists,
    /// Anything else before the session started (vault or setup failure).
    Other,
}

impl ClientRefusal {
    fn label(self) -> &'static str {
        match self {
            ClientRefusal::InvalidArgument => "invalid_argument",
            ClientRefusal::NotAllowed => "client_not_allowed",
            ClientRefusal::KeyNotAllowed => "key_not_allowed",
            ClientRefusal::Quota => "quota",
            ClientRefusal::NoSuchKey => "no_such_key",
            ClientRefusal::SessionExists => "session_exists",
            ClientRefusal::Other => "other",
        }
    }
}

/// The `kind` label of a protocol.
pub fn kind_label(kind: ProtocolKind) -> &'static str {
    match kind {
        ProtocolKind::Unspecified => "unspecified",
        ProtocolKind::Dkg => "dkg",
        ProtocolKind::AuxInfo => "aux_info",
        ProtocolKind::Refresh => "refresh",
        ProtocolKind::Reshare => "reshare",
        ProtocolKind::Presign => "presign",
        ProtocolKind::Sign => "sign",
        ProtocolKind::PresignProposal => "presign_proposal",
    }
}

fn state_label(state: SessionState) -> &'static str {
    match state {
        SessionState::Completed => "completed",
        SessionState::Aborted => "aborted",
        SessionState::Expired => "expired",
        SessionState::Pending | SessionState::Running | SessionState::Unspecified => "other",
    }
}

fn envelope_reason(e: &EnvelopeError) -> &'static str {
    match e {
        EnvelopeError::TooLarge { .. } => "too_large",
        EnvelopeError::Malformed(_) => "malformed",
        EnvelopeError::OtherFleet { .. } => "other_fleet",
        EnvelopeError::CallerNotSigner(_) => "caller_not_signer",
        EnvelopeError::SenderMismatch { .. } => "sender_mismatch",
        EnvelopeError::UnknownSender(_) => "unknown_sender",
        EnvelopeError::NotForUs { .. } => "not_for_us",
        EnvelopeError::BadSignature(_) => "bad_signature",
    }
}

fn inbox_reason(r: &InboxRefusal) -> &'static str {
    match r {
        InboxRefusal::NoSuchSession(_) => "no_such_session",
        InboxRefusal::Duplicate(_) => "duplicate",
        InboxRefusal::WrongState(_) => "wrong_state",
    }
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`].
    buckets: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, n) in DURATION_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Families {
    sessions_started: BTreeMap<&'static str, u64>,
    sessions_ended: BTreeMap<(&'static str, &'static str), u64>,
    sessions_withdrawn: BTreeMap<&'static str, u64>,
    session_seconds: BTreeMap<&'static str, Histogram>,
    envelopes_received: u64,
    envelopes_refused: BTreeMap<&'static str, u64>,
    client_signatures: BTreeMap<String, u64>,
    client_failures: BTreeMap<String, u64>,
    client_refusals: BTreeMap<&'static str, u64>,
    gate_refusals: BTreeMap<&'static str, u64>,
}

/// The counters of one node.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

impl Metrics {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(&self, f: impl FnOnce(&mut Families)) {
        // a poisoned lock only means a panic elsewhere while counting: keep counting
        let mut guard = match self.families.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }

    fn read(&self) -> MutexGuard<'_, Families> {
        match self.families.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A session of `kind` was registered.
    pub fn session_started(&self, kind: ProtocolKind) {
        self.with(|f| *f.sessions_started.entry(kind_label(kind)).or_default() += 1);
    }

    /// A session of `kind` ended in `state` after `elapsed`.
    pub fn session_ended(&self, kind: ProtocolKind, state: SessionState, elapsed: Duration) {
        let kind = kind_label(kind);
        self.with(|f| {
            *f.sessions_ended
                .entry((kind, state_label(state)))
                .or_default() += 1;
            f.session_seconds
                .entry(kind)
                .or_default()
                .observe(elapsed.as_secs_f64());
        });
    }

    /// A registered session was withdrawn before it started (its request was refused).
    pub fn session_withdrawn(&self, kind: ProtocolKind) {
        self.with(|f| *f.sessions_withdrawn.entry(kind_label(kind)).or_default() += 1);
    }

    /// An envelope reached `Deliver`.
    pub fn envelope_received(&self) {
        self.with(|f| f.envelopes_received += 1);
    }

    /// An envelope failed verification.
    pub fn envelope_refused(&self, e: &EnvelopeError) {
        let reason = envelope_reason(e);
        self.with(|f| *f.envelopes_refused.entry(reason).or_default() += 1);
    }

    /// A verified envelope was refused by the inbox.
    pub fn envelope_refused_by_inbox(&self, r: &InboxRefusal) {
        let reason = inbox_reason(r);
        self.with(|f| *f.envelopes_refused.entry(reason).or_default() += 1);
    }

    /// The signing gate refused a `Sign`.
    pub fn gate_refused(&self, r: &GateRefusal) {
        let reason = match r {
            GateRefusal::Malformed(_) => "malformed",
            GateRefusal::Denied(_) => "denied",
        };
        self.with(|f| *f.gate_refusals.entry(reason).or_default() += 1);
    }

    /// An allow-listed client got a signature.
    pub fn client_signed(&self, client: &str) {
        self.with(|f| {
            *f.client_signatures.entry(client.to_owned()).or_default() += 1;
        });
    }

    /// An accepted `SignDigest` of an allow-listed client ended without a signature.
    pub fn client_failed(&self, client: &str) {
        self.with(|f| *f.client_failures.entry(client.to_owned()).or_default() += 1);
    }

    /// A `SignDigest` was refused before a session started.
    pub fn client_refused(&self, reason: ClientRefusal) {
        self.with(|f| *f.client_refusals.entry(reason.label()).or_default() += 1);
    }

    /// The exposition text, with `pool` the presignatures per key (hex key id, count).
    pub fn render(&self, pool: &[(String, usize)]) -> String {
        let f = self.read();
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "signer_node_build_info",
            "gauge",
            "Build of this signer node (always 1).",
        );
        sample(
            &mut out,
            "signer_node_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );

        family(
            &mut out,
            "signer_node_sessions_started_total",
            "counter",
            "Sessions registered, by protocol kind.",
        );
        for (kind, n) in &f.sessions_started {
            sample(
                &mut out,
                "signer_node_sessions_started_total",
                &[("kind", kind)],
                *n,
            );
        }
        family(
            &mut out,
            "signer_node_sessions_ended_total",
            "counter",
            "Sessions ended, by protocol kind and final state (completed, aborted, expired).",
        );
        for ((kind, state), n) in &f.sessions_ended {
            sample(
                &mut out,
                "signer_node_sessions_ended_total",
                &[("kind", kind), ("state", state)],
                *n,
            );
        }
        family(
            &mut out,
            "signer_node_sessions_withdrawn_total",
            "counter",
            "Sessions registered and withdrawn because their request was refused before starting.",
        );
        for (kind, n) in &f.sessions_withdrawn {
            sample(
                &mut out,
                "signer_node_sessions_withdrawn_total",
                &[("kind", kind)],
                *n,
            );
        }
        family(
            &mut out,
            "signer_node_session_duration_seconds",
            "histogram",
            "Time from registration to the end of a session, by protocol kind.",
        );
        for (kind, h) in &f.session_seconds {
            for (bound, n) in DURATION_BUCKETS.iter().zip(h.buckets.iter()) {
                let le = format!("{bound}");
                sample(
                    &mut out,
                    "signer_node_session_duration_seconds_bucket",
                    &[("kind", kind), ("le", &le)],
                    *n,
                );
            }
            sample(
                &mut out,
                "signer_node_session_duration_seconds_bucket",
                &[("kind", kind), ("le", "+Inf")],
                h.count,
            );
            let _ = writeln!(
                out,
                "signer_node_session_duration_seconds_sum{{kind=\"{}\"}} {}",
                escape(kind),
                h.sum
            );
            sample(
                &mut out,
                "signer_node_session_duration_seconds_count",
                &[("kind", kind)],
                h.count,
            );
        }

        family(
            &mut out,
            "signer_node_envelopes_received_total",
            "counter",
            "Envelopes that reached SignerPeer.Deliver.",
        );
        sample(
            &mut out,
            "signer_node_envelopes_received_total",
            &[],
            f.envelopes_received,
        );
        family(
            &mut out,
            "signer_node_envelopes_refused_total",
            "counter",
            "Envelopes refused, by reason (verification or inbox).",
        );
        for (reason, n) in &f.envelopes_refused {
            sample(
                &mut out,
                "signer_node_envelopes_refused_total",
                &[("reason", reason)],
                *n,
            );
        }

        family(
            &mut out,
            "signer_node_presignatures_in_pool",
            "gauge",
            "Presignatures in this signer's pool, by key.",
        );
        for (key, n) in pool {
            sample(
                &mut out,
                "signer_node_presignatures_in_pool",
                &[("key_id", key)],
                *n as u64,
            );
        }

        family(
            &mut out,
            "signer_node_client_signatures_total",
            "counter",
            "Raw-digest signatures issued to allow-listed clients, by client.",
        );
        for (client, n) in &f.client_signatures {
            sample(
                &mut out,
                "signer_node_client_signatures_total",
                &[("client", client)],
                *n,
            );
        }
        family(
            &mut out,
            "signer_node_client_sessions_failed_total",
            "counter",
            "Accepted raw-digest requests whose session ended without a signature, by client.",
        );
        for (client, n) in &f.client_failures {
            sample(
                &mut out,
                "signer_node_client_sessions_failed_total",
                &[("client", client)],
                *n,
            );
        }
        family(
            &mut out,
            "signer_node_client_refusals_total",
            "counter",
            "SignDigest requests refused before a session started, by reason.",
        );
        for (reason, n) in &f.client_refusals {
            sample(
                &mut out,
                "signer_node_client_refusals_total",
                &[("reason", reason)],
                *n,
            );
        }
        family(
            &mut out,
            "signer_node_gate_refusals_total",
            "counter",
            "Sign requests refused by the signing gate, by reason (malformed, denied).",
        );
        for (reason, n) in &f.gate_refusals {
            sample(
                &mut out,
                "signer_node_gate_refusals_total",
                &[("reason", reason)],
                *n,
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value (backslash, double quote, line feed).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Reads the pool levels from the vault (on a blocking thread: the sealed store reads disk).
async fn pool_levels(vault: Arc<dyn Vault>) -> Vec<(String, usize)> {
    let read = tokio::task::spawn_blocking(move || -> Result<Vec<(String, usize)>, String> {
        let keys = vault.list_keys().map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let n = vault.presignatures(&key).map_err(|e| e.to_string())?.len();
            out.push((hex::encode(key), n));
        }
        Ok(out)
    })
    .await;
    match read {
        Ok(Ok(levels)) => levels,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the presignature pool levels");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: pool level task failed");
            Vec::new()
        }
    }
}

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    vault: Arc<dyn Vault>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let local = listener.local_addr().ok();
    tracing::info!(listen = ?local, "serving Prometheus metrics (plaintext HTTP, GET /metrics)");
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(%peer, "metrics: too many scrapes at once; closing");
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let vault = Arc::clone(&vault);
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &metrics, vault).await {
                tracing::debug!(%peer, error = %e, "metrics: connection ended");
            }
            drop(permit);
        });
    }
    tracing::info!("metrics endpoint stopped");
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

fn parse_request_line(head: &[u8]) -> Asked {
    let Some(line_end) = head.windows(2).position(|w| w == b"\r\n") else {
        return Asked::BadRequest;
    };
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Asked::BadRequest;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Asked::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Asked::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Asked::MethodNotAllowed,
    };
    if path == "/metrics" {
        Asked::Metrics { head_only }
    } else {
        Asked::NotFound
    }
}

async fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    vault: Arc<dyn Vault>,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        loop {
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_REQUEST_HEAD_BYTES {
                return Ok(false);
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(false);
            }
            head.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let complete = match read {
        Ok(Ok(complete)) => complete,
        Ok(Err(e)) => return Err(e),
        Err(_) => false,
    };
    let asked = if complete {
        parse_request_line(&head)
    } else {
        Asked::BadRequest
    };
    let (status, content_type, body, head_only) = match asked {
        Asked::Metrics { head_only } => {
            let pool = pool_levels(vault).await;
            ("200 OK", CONTENT_TYPE, metrics.render(&pool), head_only)
        }
        Asked::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: metrics are at /metrics\n".to_owned(),
            false,
        ),
        Asked::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_owned(),
            false,
        ),
        Asked::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".to_owned(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Asked::Metrics { head_only: false }
        );
        assert_eq!(
            parse_request_line(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Asked::Metrics { head_only: true }
        );
        assert_eq!(
            parse_request_line(b"GET / HTTP/1.1\r\n\r\n"),
            Asked::NotFound
        );
        assert_eq!(
            parse_request_line(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Asked::MethodNotAllowed
        );
        assert_eq!(
            parse_request_line(b"GET /metrics\r\n\r\n"),
            Asked::BadRequest
        );
        assert_eq!(
            parse_request_line(b"GET /metrics SPDY/3\r\n\r\n"),
            Asked::BadRequest
        );
    }

    #[test]
    fn histogram_is_cumulative_and_labels_are_escaped() {
        let m = Metrics::new();
        m.session_started(ProtocolKind::Sign);
        m.session_ended(
            ProtocolKind::Sign,
            SessionState::Completed,
            Duration::from_millis(700),
        );
        m.client_signed("a\"b\\c\nd");
        let text = m.render(&[("ab".into(), 3)]);
        assert!(text
            .contains("signer_node_session_duration_seconds_bucket{kind=\"sign\",le=\"0.5\"} 0\n"));
        assert!(text
            .contains("signer_node_session_duration_seconds_bucket{kind=\"sign\",le=\"1\"} 1\n"));
        assert!(text.contains(
            "signer_node_session_duration_seconds_bucket{kind=\"sign\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains("signer_node_session_duration_seconds_count{kind=\"sign\"} 1\n"));
        assert!(text
            .contains("signer_node_sessions_ended_total{kind=\"sign\",state=\"completed\"} 1\n"));
        assert!(
            text.contains("signer_node_client_signatures_total{client=\"a\\\"b\\\\c\\nd\"} 1\n")
        );
        assert!(text.contains("signer_node_presignatures_in_pool{key_id=\"ab\"} 3\n"));
    }
}
