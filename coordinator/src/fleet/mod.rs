//! The coordinator's side of the signer fleet: it starts sessions on the signers'
//! `SignerControl` service over mTLS (coordinator certificate, every channel pinned to the
//! signer index it means to reach) and waits for their outcome.
//!
//! The coordinator decides *when* a key is made or an order signed; each signer decides for
//! itself *whether* it signs (its signing gate checks the authorization). Nothing here holds
//! or sees a secret. What a session returns is checked before it is used: every holder must
//! report the same key after a DKG, and a signature must verify under the child key for the
//! digest the adapter computed, with low s and the right recovery id.
//!
//! | module | job |
//! |---|---|
//! | [`reliability`] | which t signers sign: the most reliable ones |
//! | [`presign_pool`] | presignatures made ahead, by key, epoch, path and signer set |

pub mod presign_pool;
pub mod reliability;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custody_proto::peer_tls::signer_channel;
use custody_proto::signer::v1::session_status_response::Outcome;
use custody_proto::signer::v1::signer_control_client::SignerControlClient;
use custody_proto::signer::v1::{
    Authorization, DerivationPath as WirePath, FillPresignPoolRequest, KeyInfo, ListKeysRequest,
    SessionState, SessionStatusRequest, SessionStatusResponse, SignRequest, StartKeygenRequest,
};
use custody_proto::tls::TlsMaterial;
use k256::ecdsa::hazmat::VerifyPrimitive;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256::elliptic_curve::sec1::FromEncodedPoint;
use k256::{AffinePoint, EncodedPoint, ProjectivePoint};
use mpc_core::hd::{ChainCode, DerivationPath, ExtendedPublicKey};
use rand::RngCore;
use tonic::transport::Channel;
use tonic::Code;

use crate::adapter::FleetSignature;
use presign_pool::{PoolKey, PresignPool};
use reliability::{Observation, Reliability};

/// How often a waiting session is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long a signer in a running session may stay unreachable before the session is given
/// up as failed (the signer is then cooled down and another subset is tried).
pub const UNREACHABLE_GRACE: Duration = Duration::from_secs(3);

/// Longest wait for one signer's answer to a `ListKeys` probe ([`FleetClient::find_key`],
/// [`FleetClient::reachable_holders`]), whatever longer limit the caller passes (callers pass
/// their session limit): a probe is one small call, and a signer that accepts connections but
/// never answers must not hold an engine task for a session's length.
pub const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// One signer: its index and its gRPC endpoint (`https://HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerEndpoint {
    /// The signer index (its certificate is `custody://signer/<index>`).
    pub index: u16,
    /// Where it listens.
    pub url: String,
}

/// A threshold key as the fleet reported it after a DKG (all holders agreed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetKey {
    /// The key id the coordinator chose.
    pub key_id: [u8; 32],
    /// The public key.
    pub public_key: k256::PublicKey,
    /// The BIP32 chain code from the DKG's joint randomness.
    pub chain_code: [u8; 32],
    /// How many signers sign.
    pub threshold: u16,
    /// Who holds a share.
    pub holders: Vec<u16>,
    /// The share epoch (presignatures are bound to it).
    pub epoch: u64,
}

impl FleetKey {
    /// The child public key at the non-hardened `path` (public BIP32 derivation).
    pub fn child_key(&self, path: &[u32]) -> Result<k256::PublicKey, FleetError> {
        let master = ExtendedPublicKey::new_master(
            ProjectivePoint::from(*self.public_key.as_affine()),
            ChainCode(self.chain_code),
        )
        .map_err(|e| FleetError::Derivation(e.to_string()))?;
        let path = DerivationPath::from_indices(path)
            .map_err(|e| FleetError::Derivation(e.to_string()))?;
        let (child, _) = master
            .derive_path(&path)
            .map_err(|e| FleetError::Derivation(e.to_string()))?;
        k256::PublicKey::from_affine(child.public_key().to_affine())
            .map_err(|e| FleetError::Derivation(e.to_string()))
    }
}

/// One signature to make: which key and path, with which authorization, for which digest.
#[derive(Debug, Clone)]
pub struct SignJob {
    /// The key.
    pub key: FleetKey,
    /// Path of the child key that signs.
    pub path: Vec<u32>,
    /// The order and the proof that the chain decided it (checked by every signer).
    pub authorization: Authorization,
    /// Which of the order's inputs.
    pub input_index: u32,
    /// The digest the adapter computed for that input: the signature must verify for it.
    pub digest: [u8; 32],
}

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The configuration names no usable signer, or an endpoint is unusable.
    #[error("fleet configuration: {0}")]
    Config(String),
    /// A signer could not be reached.
    #[error("signer {signer} is unreachable: {detail}")]
    Unreachable {
        /// The signer.
        signer: u16,
        /// What the transport said.
        detail: String,
    },
    /// A signer refused the request (policy, bad request, wrong state): retrying with other
    /// signers does not help.
    #[error("signer {signer} refused ({code:?}): {message}")]
    Refused {
        /// The signer.
        signer: u16,
        /// The gRPC code.
        code: Code,
        /// The signer's message.
        message: String,
    },
    /// The protocol aborted and named culprits.
    #[error("session aborted, culprits {culprits:?}: {reason}")]
    Aborted {
        /// The signers the protocol blamed.
        culprits: Vec<u16>,
        /// What failed.
        reason: String,
    },
    /// A round deadline passed on a signer before every message arrived.
    #[error("session expired on signer {signer}")]
    Expired {
        /// The signer that reported it.
        signer: u16,
    },
    /// The coordinator's own deadline passed with these signers still working.
    #[error("session did not finish in {limit:?}; still running on {pending:?}")]
    Timeout {
        /// The deadline.
        limit: Duration,
        /// Who had not finished.
        pending: Vec<u16>,
    },
    /// Signers reported results that are not acceptable (disagreeing keys, a signature
    /// that does not verify, a missing outcome).
    #[error("inconsistent result from the fleet: {0}")]
    Inconsistent(String),
    /// Fewer usable signers than the threshold.
    #[error("{needed} signers needed, only {usable} usable")]
    NotEnoughSigners {
        /// The threshold.
        needed: usize,
        /// How many could be chosen.
        usable: usize,
    },
    /// A BIP32 derivation failed.
    #[error("derivation: {0}")]
    Derivation(String),
}

impl FleetError {
    /// Whether trying again with other signers may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            FleetError::Unreachable { .. }
                | FleetError::Aborted { .. }
                | FleetError::Expired { .. }
                | FleetError::Timeout { .. }
        )
    }
}

/// The request that starts a session, sent alike to every chosen signer.
enum Start {
    Keygen(StartKeygenRequest),
    Presign(FillPresignPoolRequest),
    Sign(SignRequest),
}

/// The control channels to every signer of the fleet.
pub struct FleetClient {
    controls: BTreeMap<u16, SignerControlClient<Channel>>,
    reliability: Mutex<Reliability>,
    pool: Mutex<PresignPool>,
    blames: Mutex<Vec<BlameRecord>>,
}

/// An aborted session's blame as a signer reported it (OPS-02): the culprits, the reason and
/// the evidence (the culprits' encoded, node-signed envelopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlameRecord {
    /// The session.
    pub session_id: [u8; 32],
    /// Signer indices named, strictly increasing.
    pub culprits: Vec<u16>,
    /// What failed.
    pub reason: String,
    /// The evidence envelopes.
    pub evidence: Vec<Vec<u8>>,
}

/// Tag of [`evidence_digest`].
pub const EVIDENCE_DIGEST_TAG: &[u8] = b"custody.blame-evidence.v1";

/// SHA-256(tag ‖ count u32 ‖ (length u32 ‖ envelope)*): what the chain records of a blame's
/// evidence.
pub fn evidence_digest(evidence: &[Vec<u8>]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(EVIDENCE_DIGEST_TAG);
    h.update(
        u32::try_from(evidence.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for e in evidence {
        h.update(u32::try_from(e.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(e);
    }
    h.finalize().into()
}

impl BlameRecord {
    /// The record of `session`'s blame, if it names anyone: culprits sorted and deduplicated,
    /// the reason cut to at most `max_reason` bytes (on a character boundary; "unspecified"
    /// if empty).
    pub fn from_report(
        session_id: [u8; 32],
        culprits: &[u32],
        reason: &str,
        evidence: &[Vec<u8>],
        max_reason: usize,
    ) -> Option<Self> {
        let mut culprits: Vec<u16> = culprits
            .iter()
            .filter_map(|&c| u16::try_from(c).ok())
            .filter(|&c| c > 0)
            .collect();
        culprits.sort_unstable();
        culprits.dedup();
        if culprits.is_empty() {
            return None;
        }
        let mut cut = reason.len().min(max_reason);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let reason = match reason[..cut].trim() {
            "" => "unspecified".to_owned(),
            r => r.to_owned(),
        };
        Some(Self {
            session_id,
            culprits,
            reason,
            evidence: evidence.to_vec(),
        })
    }
}

impl std::fmt::Debug for FleetClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetClient")
            .field("signers", &self.controls.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A fresh random 32-byte session id.
pub fn new_session_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut id);
    id
}

fn transport_or_refusal(signer: u16, status: tonic::Status) -> FleetError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            FleetError::Unreachable {
                signer,
                detail: status.message().to_owned(),
            }
        }
        code => FleetError::Refused {
            signer,
            code,
            message: status.message().to_owned(),
        },
    }
}

fn wire_path(path: &[u32]) -> WirePath {
    WirePath {
        indices: path.to_vec(),
    }
}

impl FleetClient {
    /// Lazily connecting channels to `signers`, presenting `material` (a coordinator
    /// certificate) and accepting only the signer each endpoint names.
    pub fn connect(material: &TlsMaterial, signers: &[SignerEndpoint]) -> Result<Self, FleetError> {
        if signers.is_empty() {
            return Err(FleetError::Config("no signers".into()));
        }
        let mut controls = BTreeMap::new();
        for s in signers {
            let channel = signer_channel(material, &s.url, s.index)
                .map_err(|e| FleetError::Config(format!("signer {}: {e}", s.index)))?;
            if controls
                .insert(s.index, SignerControlClient::new(channel))
                .is_some()
            {
                return Err(FleetError::Config(format!(
                    "signer {} listed twice",
                    s.index
                )));
            }
        }
        let reliability = Mutex::new(Reliability::new(controls.keys().copied()));
        Ok(Self {
            controls,
            reliability,
            pool: Mutex::new(PresignPool::default()),
            blames: Mutex::new(Vec::new()),
        })
    }

    /// The signer indices.
    pub fn signers(&self) -> Vec<u16> {
        self.controls.keys().copied().collect()
    }

    fn control(&self, signer: u16) -> Result<SignerControlClient<Channel>, FleetError> {
        self.controls
            .get(&signer)
            .cloned()
            .ok_or_else(|| FleetError::Config(format!("signer {signer} is not in the fleet")))
    }

    fn observe(&self, signers: &[u16], observation: Observation) {
        let now = Instant::now();
        if let Ok(mut r) = self.reliability.lock() {
            for &s in signers {
                r.observe(s, observation, now);
            }
        }
    }

    /// Records what a failed session says about its signers.
    fn learn_from(&self, error: &FleetError) {
        match error {
            FleetError::Aborted { culprits, .. } => self.observe(culprits, Observation::Culprit),
            FleetError::Unreachable { signer, .. } | FleetError::Expired { signer } => {
                self.observe(&[*signer], Observation::Unresponsive)
            }
            FleetError::Timeout { pending, .. } => self.observe(pending, Observation::Unresponsive),
            _ => {}
        }
    }

    /// The `t` most reliable of `holders`, avoiding `avoid`.
    pub fn choose_signers(
        &self,
        holders: &[u16],
        t: usize,
        avoid: &[u16],
    ) -> Result<Vec<u16>, FleetError> {
        let r = self
            .reliability
            .lock()
            .map_err(|_| FleetError::Config("reliability table poisoned".into()))?;
        r.choose(holders, t, avoid, Instant::now())
            .ok_or(FleetError::NotEnoughSigners {
                needed: t,
                usable: holders.iter().filter(|h| !avoid.contains(h)).count(),
            })
    }

    /// Starts one session on every signer of `signers` with the same request, then waits for
    /// its end; what fails teaches the reliability table.
    async fn run_session(
        &self,
        session: &[u8; 32],
        signers: &[u16],
        start: Start,
        limit: Duration,
    ) -> Result<BTreeMap<u16, SessionStatusResponse>, FleetError> {
        for &s in signers {
            let mut control = self.control(s)?;
            let started = match &start {
                Start::Keygen(r) => control.start_keygen(r.clone()).await.map(drop),
                Start::Presign(r) => control.fill_presign_pool(r.clone()).await.map(drop),
                Start::Sign(r) => control.sign(r.clone()).await.map(drop),
            };
            started
                .map_err(|e| transport_or_refusal(s, e))
                .inspect_err(|e| self.learn_from(e))?;
        }
        self.wait_all(session, signers, limit)
            .await
            .inspect_err(|e| self.learn_from(e))
    }

    /// Polls `session` on every signer of `signers` until all completed, one aborted or
    /// expired, or `limit` passed.
    async fn wait_all(
        &self,
        session: &[u8; 32],
        signers: &[u16],
        limit: Duration,
    ) -> Result<BTreeMap<u16, SessionStatusResponse>, FleetError> {
        let start = Instant::now();
        let mut done = BTreeMap::new();
        let mut unreachable_since: BTreeMap<u16, Instant> = BTreeMap::new();
        loop {
            for &s in signers {
                if done.contains_key(&s) {
                    continue;
                }
                let mut control = self.control(s)?;
                let status = match control
                    .session_status(SessionStatusRequest {
                        session_id: session.to_vec(),
                    })
                    .await
                {
                    Ok(r) => {
                        unreachable_since.remove(&s);
                        r.into_inner()
                    }
                    // A signer that cannot be asked right now may answer on the next poll;
                    // one that stays unreachable for UNREACHABLE_GRACE is given up on (its
                    // session cannot finish without it), rather than waiting out `limit`.
                    Err(e) if transport_or_refusal(s, e.clone()).is_retryable() => {
                        let since = *unreachable_since.entry(s).or_insert_with(Instant::now);
                        if since.elapsed() > UNREACHABLE_GRACE {
                            return Err(transport_or_refusal(s, e));
                        }
                        continue;
                    }
                    Err(e) => return Err(transport_or_refusal(s, e)),
                };
                match SessionState::try_from(status.state) {
                    Ok(SessionState::Completed) => {
                        done.insert(s, status);
                    }
                    Ok(SessionState::Aborted) => {
                        let blame = status.blame.unwrap_or_default();
                        if let Some(record) = BlameRecord::from_report(
                            *session,
                            &blame.culprits,
                            &blame.reason,
                            &blame.evidence,
                            crate::chain::tx::MAX_BLAME_REASON_BYTES,
                        ) {
                            if let Ok(mut b) = self.blames.lock() {
                                b.push(record);
                            }
                        }
                        return Err(FleetError::Aborted {
                            culprits: blame
                                .culprits
                                .iter()
                                .filter_map(|&c| u16::try_from(c).ok())
                                .collect(),
                            reason: blame.reason,
                        });
                    }
                    Ok(SessionState::Expired) => return Err(FleetError::Expired { signer: s }),
                    Ok(SessionState::Pending | SessionState::Running) => {}
                    Ok(SessionState::Unspecified) | Err(_) => {
                        return Err(FleetError::Inconsistent(format!(
                            "signer {s} reports session state {}",
                            status.state
                        )))
                    }
                }
            }
            if done.len() == signers.len() {
                return Ok(done);
            }
            if start.elapsed() > limit {
                return Err(FleetError::Timeout {
                    limit,
                    pending: signers
                        .iter()
                        .copied()
                        .filter(|s| !done.contains_key(s))
                        .collect(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The holders of `key` that answer `ListKeys` within `limit` (at most [`PROBE_LIMIT`])
    /// and list the key: a
    /// reachability probe that starts no session. Holders that do not answer are recorded as
    /// unresponsive.
    pub async fn reachable_holders(&self, key: &FleetKey, limit: Duration) -> Vec<u16> {
        let limit = limit.min(PROBE_LIMIT);
        let mut reachable = Vec::new();
        for &holder in &key.holders {
            let Ok(mut control) = self.control(holder) else {
                continue;
            };
            match tokio::time::timeout(limit, control.list_keys(ListKeysRequest {})).await {
                Ok(Ok(answer)) => {
                    if answer
                        .into_inner()
                        .keys
                        .iter()
                        .any(|k| k.key_id == key.key_id)
                    {
                        reachable.push(holder);
                    } else {
                        tracing::warn!(signer = holder, "signer does not list the fleet key");
                    }
                }
                Ok(Err(status)) => {
                    tracing::warn!(signer = holder, error = %transport_or_refusal(holder, status), "signer probe failed");
                    self.observe(&[holder], Observation::Unresponsive);
                }
                Err(_) => {
                    tracing::warn!(signer = holder, "signer probe timed out");
                    self.observe(&[holder], Observation::Unresponsive);
                }
            }
        }
        reachable
    }

    /// The key `key_id` as its holders report it over `ListKeys` (no session is started; each
    /// signer gets at most `limit`, and never more than [`PROBE_LIMIT`]):
    /// `None` if no reachable signer holds it. Every reachable holder must report the same
    /// public facts, and at least t of them must answer; the epoch is the highest one that
    /// at least t holders share (the share epoch presignatures bind to). Used after a
    /// restart to find a DKG that finished before its key was recorded on chain, and to
    /// learn the current epoch after a refresh.
    pub async fn find_key(
        &self,
        key_id: [u8; 32],
        limit: Duration,
    ) -> Result<Option<FleetKey>, FleetError> {
        let limit = limit.min(PROBE_LIMIT);
        let mut reports: Vec<(u16, FleetKey)> = Vec::new();
        for (&signer, control) in &self.controls {
            let mut control = control.clone();
            let answer =
                match tokio::time::timeout(limit, control.list_keys(ListKeysRequest {})).await {
                    Ok(Ok(a)) => a.into_inner(),
                    Ok(Err(e)) => {
                        tracing::warn!(signer, error = %e, "ListKeys failed");
                        continue;
                    }
                    Err(_) => {
                        tracing::warn!(signer, "ListKeys timed out");
                        continue;
                    }
                };
            if let Some(info) = answer.keys.iter().find(|k| k.key_id == key_id) {
                reports.push((signer, fleet_key(key_id, info)?));
            }
        }
        let Some((_, first)) = reports.first() else {
            return Ok(None);
        };
        let facts = |k: &FleetKey| (k.public_key, k.chain_code, k.threshold, k.holders.clone());
        if let Some((s, _)) = reports.iter().find(|(_, k)| facts(k) != facts(first)) {
            return Err(FleetError::Inconsistent(format!(
                "signer {s} reports other facts for key {} than signer {}",
                hex::encode(key_id),
                reports[0].0
            )));
        }
        if let Some((s, _)) = reports.iter().find(|(s, k)| !k.holders.contains(s)) {
            return Err(FleetError::Inconsistent(format!(
                "signer {s} reports key {} but is not one of its holders",
                hex::encode(key_id)
            )));
        }
        let t = usize::from(first.threshold);
        let mut epochs: Vec<u64> = reports.iter().map(|(_, k)| k.epoch).collect();
        epochs.sort_unstable_by(|a, b| b.cmp(a));
        let epoch = epochs
            .iter()
            .copied()
            .find(|e| epochs.iter().filter(|x| *x == e).count() >= t)
            .ok_or(FleetError::NotEnoughSigners {
                needed: t,
                usable: reports.len(),
            })?;
        let mut key = first.clone();
        key.epoch = epoch;
        Ok(Some(key))
    }

    /// Runs a DKG of a `threshold`-of-`participants` key with id `key_id` (GJKR DKG and
    /// CGGMP24 aux info on the signers) and returns the key every participant reported.
    pub async fn keygen(
        &self,
        key_id: [u8; 32],
        threshold: u16,
        participants: &[u16],
        limit: Duration,
    ) -> Result<FleetKey, FleetError> {
        let session = new_session_id();
        let request = StartKeygenRequest {
            session_id: session.to_vec(),
            key_id: key_id.to_vec(),
            threshold: u32::from(threshold),
            participants: participants.iter().map(|&p| u32::from(p)).collect(),
        };
        let statuses = self
            .run_session(&session, participants, Start::Keygen(request), limit)
            .await?;
        let mut agreed: Option<KeyInfo> = None;
        for (s, status) in statuses {
            let Some(Outcome::Key(info)) = status.outcome else {
                return Err(FleetError::Inconsistent(format!(
                    "signer {s} finished the DKG without a key"
                )));
            };
            match &agreed {
                None => agreed = Some(info),
                Some(k) if *k == info => {}
                Some(_) => {
                    return Err(FleetError::Inconsistent(format!(
                        "signer {s} reports another key than the others"
                    )))
                }
            }
        }
        self.observe(participants, Observation::Completed);
        let info = agreed.ok_or_else(|| FleetError::Config("no participants".into()))?;
        fleet_key(key_id, &info)
    }

    /// Makes one presignature for `key` at `path` on exactly `signers` (a presign session);
    /// returns its id (the session id, the same on every signer).
    pub async fn presign(
        &self,
        key: &FleetKey,
        path: &[u32],
        signers: &[u16],
        limit: Duration,
    ) -> Result<[u8; 32], FleetError> {
        let session = new_session_id();
        let request = FillPresignPoolRequest {
            session_id: session.to_vec(),
            key_id: key.key_id.to_vec(),
            epoch: key.epoch,
            path: Some(wire_path(path)),
            signers: signers.iter().map(|&i| u32::from(i)).collect(),
        };
        let statuses = self
            .run_session(&session, signers, Start::Presign(request), limit)
            .await?;
        for (s, status) in statuses {
            if !matches!(status.outcome, Some(Outcome::PresignaturesAdded(n)) if n >= 1) {
                return Err(FleetError::Inconsistent(format!(
                    "signer {s} finished presigning without a presignature"
                )));
            }
        }
        Ok(session)
    }

    /// Signs `job` on exactly `signers` with the presignature `presignature_id` and checks
    /// the result before returning it.
    pub async fn sign_with(
        &self,
        job: &SignJob,
        signers: &[u16],
        presignature_id: &[u8; 32],
        limit: Duration,
    ) -> Result<FleetSignature, FleetError> {
        let session = new_session_id();
        let request = SignRequest {
            session_id: session.to_vec(),
            key_id: job.key.key_id.to_vec(),
            path: Some(wire_path(&job.path)),
            signers: signers.iter().map(|&i| u32::from(i)).collect(),
            authorization: Some(job.authorization.clone()),
            input_index: job.input_index,
            presignature_id: presignature_id.to_vec(),
        };
        let statuses = self
            .run_session(&session, signers, Start::Sign(request), limit)
            .await?;
        let child = VerifyingKey::from(job.key.child_key(&job.path)?);
        let mut result = None;
        for (s, status) in statuses {
            let Some(Outcome::Signature(sig)) = status.outcome else {
                return Err(FleetError::Inconsistent(format!(
                    "signer {s} finished signing without a signature"
                )));
            };
            let checked = check_signature(&child, &job.digest, &sig.r_s, sig.recovery_id)
                .map_err(|why| FleetError::Inconsistent(format!("signer {s}: {why}")))?;
            match result {
                None => result = Some(checked),
                Some(r) if r == checked => {}
                Some(_) => {
                    return Err(FleetError::Inconsistent(format!(
                        "signer {s} reports another signature than the others"
                    )))
                }
            }
        }
        self.observe(signers, Observation::Completed);
        result.ok_or_else(|| FleetError::Config("no signers".into()))
    }

    /// The blames of aborted sessions seen since the last call (to report on chain).
    pub fn take_blames(&self) -> Vec<BlameRecord> {
        self.blames
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }

    /// Presignatures made ahead for `key` (at its epoch) and `path`, over every signer set.
    pub fn pooled(&self, key: &FleetKey, path: &[u32]) -> usize {
        self.pool
            .lock()
            .map(|p| p.count(&key.key_id, key.epoch, path))
            .unwrap_or(0)
    }

    /// Makes one presignature ahead of time for `key` at `path` with the `t` most reliable
    /// holders and keeps its id for [`FleetClient::sign`].
    pub async fn fill_pool(
        &self,
        key: &FleetKey,
        path: &[u32],
        limit: Duration,
    ) -> Result<(), FleetError> {
        let signers = self.choose_signers(&key.holders, usize::from(key.threshold), &[])?;
        let id = self.presign(key, path, &signers, limit).await?;
        self.pool
            .lock()
            .map_err(|_| FleetError::Config("presignature pool poisoned".into()))?
            .put(
                PoolKey {
                    key_id: key.key_id,
                    epoch: key.epoch,
                    path: path.to_vec(),
                    signers,
                },
                id,
            );
        Ok(())
    }

    /// A pooled presignature for `job` whose signers are all currently choosable (not
    /// cooling down after a failure); taken out of the pool.
    fn take_pooled(&self, job: &SignJob) -> Option<(Vec<u16>, [u8; 32])> {
        let cooling: Vec<u16> = {
            let r = self.reliability.lock().ok()?;
            let now = Instant::now();
            job.key
                .holders
                .iter()
                .copied()
                .filter(|&h| !r.choosable(h, now))
                .collect()
        };
        self.pool
            .lock()
            .ok()?
            .take(&job.key.key_id, job.key.epoch, &job.path, &cooling)
    }

    /// Signs `job` with a pooled presignature if there is one, else presigns on demand with
    /// the most reliable `t` holders, retrying with other signers when a signer is unreachable, a session expires or the protocol blames
    /// someone (the culprit is not chosen again), at most `attempts` times. A refusal by a
    /// signer's gate is not retried.
    pub async fn sign(
        &self,
        job: &SignJob,
        attempts: usize,
        limit: Duration,
    ) -> Result<FleetSignature, FleetError> {
        // A presignature made ahead for exactly this key, epoch and path: one signing round.
        // If that fails (a signer lost it in a restart, or is down), the id is spent anyway and
        // signing continues on demand below.
        if let Some((signers, presignature)) = self.take_pooled(job) {
            tracing::info!(?signers, path = ?job.path, "signing with a pooled presignature");
            match self.sign_with(job, &signers, &presignature, limit).await {
                Ok(sig) => return Ok(sig),
                Err(e) => {
                    tracing::warn!(error = %e, "signing with a pooled presignature failed; presigning on demand");
                    self.learn_from(&e);
                }
            }
        }
        let mut avoid: Vec<u16> = Vec::new();
        let mut last = FleetError::NotEnoughSigners {
            needed: usize::from(job.key.threshold),
            usable: 0,
        };
        for attempt in 1..=attempts.max(1) {
            let signers =
                self.choose_signers(&job.key.holders, usize::from(job.key.threshold), &avoid)?;
            tracing::info!(attempt, ?signers, path = ?job.path, "signing");
            let result = async {
                let presignature = self.presign(&job.key, &job.path, &signers, limit).await?;
                self.sign_with(job, &signers, &presignature, limit).await
            }
            .await;
            match result {
                Ok(sig) => return Ok(sig),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(attempt, error = %e, "signing attempt failed; trying other signers");
                    match &e {
                        FleetError::Aborted { culprits, .. } => avoid.extend(culprits),
                        FleetError::Unreachable { signer, .. } | FleetError::Expired { signer } => {
                            avoid.push(*signer)
                        }
                        FleetError::Timeout { pending, .. } => avoid.extend(pending),
                        _ => {}
                    }
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

/// The key a signer reported, parsed.
fn fleet_key(key_id: [u8; 32], info: &KeyInfo) -> Result<FleetKey, FleetError> {
    if info.key_id != key_id {
        return Err(FleetError::Inconsistent(
            "reported key: another key id".into(),
        ));
    }
    FleetKey::from_wire(
        &info.key_id,
        &info.public_key,
        &info.chain_code,
        info.threshold,
        &info.holders,
        info.epoch,
    )
    .map_err(|why| FleetError::Inconsistent(format!("reported key: {why}")))
}

impl FleetKey {
    /// A key from its wire fields (a signer's `KeyInfo`, the coordinator API's `FleetKey`):
    /// 32-byte key id and chain code, a SEC1 public key that is a curve point other than the
    /// identity, threshold and holder indices that fit u16. Says which field is bad.
    pub fn from_wire(
        key_id: &[u8],
        public_key: &[u8],
        chain_code: &[u8],
        threshold: u32,
        holders: &[u32],
        epoch: u64,
    ) -> Result<Self, &'static str> {
        let key_id: [u8; 32] = key_id.try_into().map_err(|_| "key id is not 32 bytes")?;
        let point = EncodedPoint::from_bytes(public_key).map_err(|_| "public key encoding")?;
        let point: Option<AffinePoint> = AffinePoint::from_encoded_point(&point).into();
        let public_key =
            k256::PublicKey::from_affine(point.ok_or("public key is not a curve point")?)
                .map_err(|_| "public key is the identity point")?;
        let chain_code: [u8; 32] = chain_code
            .try_into()
            .map_err(|_| "chain code is not 32 bytes")?;
        let threshold = u16::try_from(threshold).map_err(|_| "threshold")?;
        let holders = holders
            .iter()
            .map(|&h| u16::try_from(h).map_err(|_| "holder index"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            key_id,
            public_key,
            chain_code,
            threshold,
            holders,
            epoch,
        })
    }
}

/// Checks a reported signature: 64 bytes r‖s, low s, verifies for `digest` under `key`, and
/// the recovery id recovers `key`.
pub fn check_signature(
    key: &VerifyingKey,
    digest: &[u8; 32],
    r_s: &[u8],
    recovery_id: u32,
) -> Result<FleetSignature, String> {
    let signature = Signature::from_slice(r_s).map_err(|_| "not a 64-byte r||s".to_owned())?;
    if signature.normalize_s().is_some() {
        return Err("s is not low".into());
    }
    key.as_affine()
        .verify_prehashed(&(*digest).into(), &signature)
        .map_err(|_| "does not verify under the child key".to_owned())?;
    let recovery_id = u8::try_from(recovery_id)
        .ok()
        .and_then(RecoveryId::from_byte)
        .ok_or_else(|| "recovery id out of range".to_owned())?;
    let recovered = VerifyingKey::recover_from_prehash(digest, &signature, recovery_id)
        .map_err(|_| "recovery id does not recover a key".to_owned())?;
    if recovered.to_encoded_point(true) != key.to_encoded_point(true) {
        return Err("recovery id recovers another key".into());
    }
    Ok(FleetSignature {
        signature,
        recovery_id,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use k256::ecdsa::SigningKey;

    fn signed(digest: &[u8; 32]) -> (VerifyingKey, Vec<u8>, u32) {
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let (sig, rec) = key.sign_prehash_recoverable(digest).unwrap();
        (
            *key.verifying_key(),
            sig.to_bytes().to_vec(),
            u32::from(rec.to_byte()),
        )
    }

    #[test]
    fn blame_records_are_normalised_and_digested() {
        let r = BlameRecord::from_report(
            [1; 32],
            &[3, 0, 2, 3, 70_000],
            "é".repeat(200).as_str(),
            &[vec![1], vec![2, 3]],
            256,
        )
        .unwrap();
        assert_eq!(r.culprits, vec![2, 3]);
        assert_eq!(r.reason.len(), 256, "cut on a character boundary");
        assert!(BlameRecord::from_report([1; 32], &[0], "x", &[], 256).is_none());
        assert_eq!(
            BlameRecord::from_report([1; 32], &[1], "  ", &[], 256)
                .unwrap()
                .reason,
            "unspecified"
        );
        // Length-prefixed: moving a byte between envelopes changes the digest.
        assert_ne!(
            evidence_digest(&[vec![1], vec![2, 3]]),
            evidence_digest(&[vec![1, 2], vec![3]])
        );
        assert_ne!(evidence_digest(&[]), evidence_digest(&[vec![]]));
    }

    #[test]
    fn good_signature_passes() {
        let digest = [9u8; 32];
        let (key, rs, rec) = signed(&digest);
        let out = check_signature(&key, &digest, &rs, rec).unwrap();
        assert_eq!(out.signature.to_bytes().to_vec(), rs);
    }

    #[test]
    fn bad_signatures_are_refused() {
        let digest = [9u8; 32];
        let (key, rs, rec) = signed(&digest);
        assert!(
            check_signature(&key, &[8u8; 32], &rs, rec).is_err(),
            "other digest"
        );
        assert!(
            check_signature(&key, &digest, &rs[..63], rec).is_err(),
            "short"
        );
        assert!(
            check_signature(&key, &digest, &rs, rec ^ 1).is_err(),
            "wrong recovery id"
        );
        assert!(
            check_signature(&key, &digest, &rs, 7).is_err(),
            "recovery id range"
        );
        // the same signature with high s
        let sig = Signature::from_slice(&rs).unwrap();
        let high = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        assert!(
            check_signature(&key, &digest, &high.to_bytes(), rec ^ 1).is_err(),
            "high s"
        );
        let other = SigningKey::from_bytes(&[5u8; 32].into()).unwrap();
        assert!(
            check_signature(other.verifying_key(), &digest, &rs, rec).is_err(),
            "other key"
        );
    }

    #[test]
    fn child_keys_follow_public_bip32() {
        let secret = SigningKey::from_bytes(&[3u8; 32].into()).unwrap();
        let key = FleetKey {
            key_id: [1; 32],
            public_key: k256::PublicKey::from(secret.verifying_key()),
            chain_code: [2; 32],
            threshold: 2,
            holders: vec![1, 2, 3],
            epoch: 0,
        };
        let a = key.child_key(&[0, 1]).unwrap();
        assert_ne!(a, key.child_key(&[0, 2]).unwrap());
        assert_eq!(a, key.child_key(&[0, 1]).unwrap());
        assert!(key.child_key(&[1 << 31]).is_err(), "hardened step refused");
    }

    #[test]
    fn reported_keys_are_parsed_strictly() {
        let secret = SigningKey::from_bytes(&[3u8; 32].into()).unwrap();
        let good = KeyInfo {
            key_id: vec![1; 32],
            public_key: secret
                .verifying_key()
                .to_encoded_point(true)
                .as_bytes()
                .to_vec(),
            chain_code: vec![2; 32],
            threshold: 2,
            holders: vec![1, 2, 3],
            epoch: 4,
        };
        let key = fleet_key([1; 32], &good).unwrap();
        assert_eq!((key.threshold, key.epoch, key.holders.len()), (2, 4, 3));
        for bad in [
            KeyInfo {
                public_key: vec![5; 33],
                ..good.clone()
            },
            KeyInfo {
                public_key: vec![2; 32],
                ..good.clone()
            },
            KeyInfo {
                chain_code: vec![2; 31],
                ..good.clone()
            },
            KeyInfo {
                threshold: 70_000,
                ..good.clone()
            },
            KeyInfo {
                holders: vec![1, 70_000],
                ..good.clone()
            },
            KeyInfo {
                key_id: vec![9; 32],
                ..good.clone()
            },
        ] {
            assert!(fleet_key([1; 32], &bad).is_err(), "{bad:?}");
        }
    }
}
