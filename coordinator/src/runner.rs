//! The engine loop of a running coordinator (issue #5): the tasks that turn the chain's
//! decisions into work on the signer fleet and the external chains, and their results into
//! system transactions for the next blocks.
//!
//! | task | every `interval` |
//! |---|---|
//! | key generation and blame reports | blames of aborted fleet sessions proposed as `ReportBlame` (evidence kept in the journal, its digest on chain); for each [`ChainReader::pending_keygen_requests`]: find the key on the signers (a DKG that finished before a restart) or run the DKG, then propose `RecordFleetKey` |
//! | one per asset | [`DepositWatcher::scan`] (credits) and, with a fleet, [`LockOutSaga::step`] (commit, sign, broadcast, burn or refund) |
//! | presignature pool, one per asset | with `presign_per_path > 0`: one presignature made ahead per tick for a path of the asset below its target ([`crate::fleet::FleetClient::fill_pool`]) |
//!
//! Every task reads the chain through a [`ChainReader`] (never the chain's lock across an
//! `.await`) and proposes through [`Node::submit_system`]; a proposal already waiting in the
//! mempool is not an error, and the chain re-checks everything when the block executes it.
//! A failing step is logged and retried on the next tick: an unreachable node or signer
//! delays the work, it never loses it (the engine's journal and the chain hold the state).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::adapter::ChainAdapter;
use crate::chain::{Asset, BlockTx, ChainReader, Consensus, SystemTx};
use crate::engine::{
    keys, DepositWatcher, EngineConfig, EngineError, FleetSigner, Journal, LockOutSaga,
};
use crate::fleet::FleetKey;
use crate::node::{MempoolError, Node, SubmitError};

/// Longest wait between two attempts at a failing DKG.
const KEYGEN_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How often the share epoch of the fleet key is asked again (a refresh raises it).
const EPOCH_REFRESH: Duration = Duration::from_secs(60);

/// The key id the coordinator gives the DKG of key generation request `request_id`: fixed
/// by the chain, so a restarted coordinator asks the signers for the same key instead of
/// running a second DKG.
pub fn keygen_key_id(chain_id: &str, request_id: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"custody.coordinator.keygen.v1");
    h.update((chain_id.len() as u64).to_be_bytes());
    h.update(chain_id.as_bytes());
    h.update(request_id.to_be_bytes());
    h.finalize().into()
}

/// Exponential backoff after failures: each failure doubles the wait (from `base` up to
/// `max`), a success resets it.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    base: Duration,
    max: Duration,
    delay: Duration,
    not_before: Option<Instant>,
}

impl Backoff {
    fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            delay: base,
            not_before: None,
        }
    }

    fn ready(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// Records a failure at `now`; returns how long the next attempt waits.
    fn failed(&mut self, now: Instant) -> Duration {
        let wait = self.delay;
        self.not_before = Some(now + wait);
        self.delay = (self.delay * 2).min(self.max);
        wait
    }

    fn succeeded(&mut self) {
        self.delay = self.base;
        self.not_before = None;
    }
}

/// Settings of the key generation task.
#[derive(Debug, Clone, Copy)]
pub struct KeygenSettings {
    /// Threshold t of every generated key; all configured signers hold a share.
    pub threshold: u16,
    /// Limit of one DKG session (and of a `ListKeys` probe).
    pub limit: Duration,
}

/// What the engine tasks share.
pub struct Engine<C: Consensus> {
    /// The node (reads and proposals).
    pub node: Node<C>,
    /// The engine journal.
    pub journal: Arc<Journal>,
    /// The signer fleet, if configured.
    pub fleet: Option<Arc<FleetSigner>>,
    /// How often each task runs.
    pub interval: Duration,
    /// Presignatures kept ready per deposit path (and the change path) of each asset; 0
    /// presigns on demand only.
    pub presign_per_path: usize,
    /// The fleet key with its share epoch as the signers last reported it, and when; shared
    /// by every task of the engine, so the signers are asked once per [`EPOCH_REFRESH`].
    key_cache: Arc<tokio::sync::Mutex<Option<(FleetKey, Instant)>>>,
}

impl<C: Consensus> Clone for Engine<C> {
    fn clone(&self) -> Self {
        Self {
            node: self.node.clone(),
            journal: Arc::clone(&self.journal),
            fleet: self.fleet.clone(),
            interval: self.interval,
            presign_per_path: self.presign_per_path,
            key_cache: Arc::clone(&self.key_cache),
        }
    }
}

fn now_unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs `body` every `interval` until `stop` resolves.
async fn every<F, Fut>(interval: Duration, stop: tokio::sync::watch::Receiver<bool>, mut body: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut stop = stop;
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => body().await,
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

impl<C: Consensus + Send + 'static> Engine<C> {
    /// An engine over `node` and `journal`; `fleet` signs (none: deposits are watched and
    /// credited, lock-outs wait); every task runs each `interval`.
    pub fn new(
        node: Node<C>,
        journal: Arc<Journal>,
        fleet: Option<Arc<FleetSigner>>,
        interval: Duration,
        presign_per_path: usize,
    ) -> Self {
        Self {
            node,
            journal,
            fleet,
            interval,
            presign_per_path,
            key_cache: Arc::default(),
        }
    }

    /// Proposes `txs`; returns how many entered the mempool. Already waiting is fine;
    /// anything else is logged (the chain refuses what is no longer valid, e.g. a credit
    /// another scan proposed first, and the next tick proposes again what is still due).
    fn propose(&self, txs: Vec<BlockTx>) -> usize {
        let mut accepted = 0;
        for tx in txs {
            let BlockTx::System(tx) = tx else {
                tracing::error!("the engine produced a signed transaction; not proposed");
                continue;
            };
            match self.node.submit_system(tx) {
                Ok(_) => accepted += 1,
                Err(SubmitError::Mempool(MempoolError::Duplicate)) => {}
                Err(e) => tracing::warn!(error = %e, "engine proposal refused"),
            }
        }
        accepted
    }

    /// The fleet key of the chain with its current share epoch, cached per key id and asked
    /// again every [`EPOCH_REFRESH`]. The cache is shared by the engine's tasks; one that
    /// finds it stale asks the signers while the others wait for its answer.
    async fn current_key(&self, reader: &ChainReader) -> Result<Option<FleetKey>, EngineError> {
        let Some(recorded) = keys::latest_fleet_key(reader, 0)? else {
            return Ok(None);
        };
        let mut cache = self.key_cache.lock().await;
        let cache = &mut *cache;
        if let Some((key, asked)) = cache {
            if key.key_id == recorded.key_id && asked.elapsed() < EPOCH_REFRESH {
                return Ok(Some(key.clone()));
            }
        }
        let mut key = recorded;
        let previous = cache
            .as_ref()
            .filter(|(k, _)| k.key_id == key.key_id)
            .map(|(k, _)| k.epoch);
        key.epoch = previous.unwrap_or(0);
        if let Some(fleet) = &self.fleet {
            match fleet.client.find_key(key.key_id, fleet.limit).await {
                Ok(Some(found)) if found.public_key == key.public_key => key.epoch = found.epoch,
                Ok(Some(_)) => {
                    return Err(EngineError::Config(
                        "the signers hold another public key under the recorded key id".into(),
                    ))
                }
                Ok(None) => tracing::warn!("no reachable signer lists the recorded fleet key"),
                Err(e) => tracing::warn!(error = %e, "cannot ask the signers for the key epoch"),
            }
        }
        *cache = Some((key.clone(), Instant::now()));
        Ok(Some(key))
    }

    /// Starts the key generation task (needs a fleet) and returns its handle.
    pub fn spawn_keygen(
        &self,
        settings: KeygenSettings,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let fleet = self.fleet.clone()?;
        let engine = self.clone();
        // After a failed DKG the next one waits twice as long (up to KEYGEN_MAX_BACKOFF), so
        // a fleet that cannot finish one (too few signers up) is not flooded with sessions.
        let backoff = Arc::new(std::sync::Mutex::new(Backoff::new(
            engine.interval,
            KEYGEN_MAX_BACKOFF,
        )));
        Some(tokio::spawn(async move {
            every(engine.interval, stop, || {
                let engine = engine.clone();
                let fleet = Arc::clone(&fleet);
                let backoff = Arc::clone(&backoff);
                async move {
                    engine.report_blames(&fleet);
                    if !backoff.lock().is_ok_and(|b| b.ready(Instant::now())) {
                        return;
                    }
                    let result = engine.keygen_once(&fleet, settings).await;
                    if let Ok(mut b) = backoff.lock() {
                        match result {
                            Ok(()) => b.succeeded(),
                            Err(e) => {
                                let wait = b.failed(Instant::now());
                                tracing::warn!(error = %e, retry_in = ?wait, "key generation failed");
                            }
                        }
                    }
                }
            })
            .await;
        }))
    }

    /// Puts the blames of aborted fleet sessions on chain (OPS-02): the evidence goes to the
    /// journal, its digest with the culprits and reason into a `ReportBlame`. A blame whose
    /// evidence cannot be journaled is logged and not reported (the chain must not name a
    /// digest nobody can open).
    fn report_blames(&self, fleet: &FleetSigner) {
        for blame in fleet.client.take_blames() {
            if let Err(e) = self
                .journal
                .put_blame_evidence(&blame.session_id, &blame.evidence)
            {
                tracing::error!(session = %hex::encode(blame.session_id), error = %e, "cannot keep blame evidence; not reported");
                continue;
            }
            tracing::warn!(
                session = %hex::encode(blame.session_id),
                culprits = ?blame.culprits,
                reason = %blame.reason,
                "reporting a blame on chain"
            );
            self.propose(vec![BlockTx::System(SystemTx::ReportBlame {
                session_id: blame.session_id,
                culprits: blame.culprits,
                reason: blame.reason,
                evidence_digest: crate::fleet::evidence_digest(&blame.evidence),
            })]);
        }
    }

    async fn keygen_once(
        &self,
        fleet: &FleetSigner,
        settings: KeygenSettings,
    ) -> Result<(), String> {
        let reader = self.node.reader().map_err(|e| e.to_string())?;
        let pending = reader
            .pending_keygen_requests()
            .map_err(|e| e.to_string())?;
        let chain_id = reader.genesis().chain_id.clone();
        for request_id in pending {
            let key_id = keygen_key_id(&chain_id, request_id);
            let key = match fleet
                .client
                .find_key(key_id, settings.limit)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(key) => {
                    tracing::info!(request_id, "the signers already hold this request's key");
                    key
                }
                None => {
                    let participants = fleet.client.signers();
                    tracing::info!(
                        request_id,
                        threshold = settings.threshold,
                        signers = ?participants,
                        "running the DKG for a key generation request"
                    );
                    fleet
                        .client
                        .keygen(key_id, settings.threshold, &participants, settings.limit)
                        .await
                        .map_err(|e| format!("DKG for request {request_id}: {e}"))?
                }
            };
            let BlockTx::System(record) =
                keys::record_fleet_key(request_id, &key).map_err(|e| e.to_string())?
            else {
                return Err("record_fleet_key did not give a system transaction".into());
            };
            match self.node.submit_system_and_wait(record).await {
                Ok(included) => tracing::info!(
                    request_id,
                    height = included.height,
                    public_key = %hex::encode(k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key.public_key, true).as_bytes()),
                    "fleet key recorded on chain"
                ),
                Err(SubmitError::Mempool(MempoolError::Duplicate)) => {}
                Err(e) => return Err(format!("recording the key of request {request_id}: {e}")),
            }
        }
        Ok(())
    }

    /// Starts the task that keeps `presign_per_path` presignatures ready for the paths of
    /// `asset` (none if that is 0 or there is no fleet). It runs beside the saga, so a slow
    /// or failing presigning session never delays a lock-out.
    pub fn spawn_presign_pool(
        &self,
        asset: Asset,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.presign_per_path == 0 || self.fleet.is_none() {
            return None;
        }
        let engine = self.clone();
        Some(tokio::spawn(async move {
            every(engine.interval, stop, || {
                let engine = engine.clone();
                async move {
                    if let Err(e) = engine.pool_once(asset).await {
                        tracing::warn!(asset = %asset, error = %e, "presignature pool step failed");
                    }
                }
            })
            .await;
        }))
    }

    /// Starts the deposit watcher and (with a fleet) the lock-out saga of one asset.
    pub fn spawn_asset<A: ChainAdapter + 'static>(
        &self,
        asset: Asset,
        adapter: A,
        config: EngineConfig,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let adapter = Arc::new(adapter);
        let config = Arc::new(config);
        tokio::spawn(async move {
            every(engine.interval, stop, || {
                let engine = engine.clone();
                let adapter = Arc::clone(&adapter);
                let config = Arc::clone(&config);
                async move {
                    if let Err(e) = engine.asset_once(asset, &*adapter, &config).await {
                        tracing::warn!(asset = %asset, error = %e, "engine step failed; will retry");
                    }
                }
            })
            .await;
        })
    }

    async fn asset_once<A: ChainAdapter>(
        &self,
        asset: Asset,
        adapter: &A,
        config: &EngineConfig,
    ) -> Result<(), EngineError> {
        let Some((reader, key)) = self.reader_and_key().await? else {
            return Ok(());
        };
        let watcher = DepositWatcher {
            asset,
            adapter,
            key: &key,
            journal: &self.journal,
            config,
        };
        let credits = watcher.scan(&reader).await?;
        let n = self.propose(credits);
        if n > 0 {
            tracing::info!(asset = %asset, credits = n, "deposits proposed for credit");
        }
        let Some(fleet) = &self.fleet else {
            return Ok(());
        };
        let saga = LockOutSaga {
            asset,
            adapter,
            signer: &**fleet,
            key: &key,
            journal: &self.journal,
            config,
        };
        let outcome = saga.step(&reader, now_unix_secs()).await?;
        self.propose(outcome.txs);
        Ok(())
    }

    /// One tick of the presignature pool task of `asset`.
    async fn pool_once(&self, asset: Asset) -> Result<(), EngineError> {
        let Some(fleet) = &self.fleet else {
            return Ok(());
        };
        let Some((reader, key)) = self.reader_and_key().await? else {
            return Ok(());
        };
        self.warm_pool(asset, &reader, &key, fleet).await
    }

    /// A reader on the committed state and the fleet key it records (`None` before the
    /// first DKG).
    async fn reader_and_key(&self) -> Result<Option<(ChainReader, FleetKey)>, EngineError> {
        let reader = self
            .node
            .reader()
            .map_err(|e| EngineError::Config(e.to_string()))?;
        Ok(self.current_key(&reader).await?.map(|key| (reader, key)))
    }

    /// Tops up the presignature pool: at most one presignature per tick, for the first path
    /// of `asset` (its deposit paths, then its change path) with fewer than
    /// `presign_per_path`. O(deposit addresses of the asset) per tick.
    async fn warm_pool(
        &self,
        asset: Asset,
        reader: &ChainReader,
        key: &FleetKey,
        fleet: &FleetSigner,
    ) -> Result<(), EngineError> {
        if self.presign_per_path == 0 {
            return Ok(());
        }
        let mut paths: Vec<Vec<u32>> = reader
            .deposit_addresses_of(asset)?
            .iter()
            .map(|d| d.path.indices().iter().map(|i| i.get()).collect())
            .collect();
        paths.push(crate::engine::addresses::change_path(asset));
        let Some(path) = paths
            .into_iter()
            .find(|p| fleet.client.pooled(key, p) < self.presign_per_path)
        else {
            return Ok(());
        };
        match fleet.client.fill_pool(key, &path, fleet.limit).await {
            Ok(()) => tracing::info!(asset = %asset, ?path, "presignature made ahead"),
            Err(e) => tracing::warn!(asset = %asset, ?path, error = %e, "presigning ahead failed"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut b = Backoff::new(s, 4 * s);
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), s);
        assert!(!b.ready(t0) && b.ready(t0 + s));
        assert_eq!(b.failed(t0 + s), 2 * s);
        assert!(!b.ready(t0 + 2 * s));
        assert_eq!(b.failed(t0 + 3 * s), 4 * s);
        assert_eq!(b.failed(t0 + 7 * s), 4 * s, "capped");
        b.succeeded();
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), s, "reset");
    }

    #[test]
    fn keygen_key_ids_differ_by_chain_and_request() {
        let a = keygen_key_id("custody-dev", 0);
        assert_eq!(a, keygen_key_id("custody-dev", 0));
        assert_ne!(a, keygen_key_id("custody-dev", 1));
        assert_ne!(a, keygen_key_id("custody-de", 0));
        // Length-prefixed: ("ab", …) and ("a", "b"…) cannot collide.
        assert_ne!(keygen_key_id("ab", 0), keygen_key_id("a", 0));
    }
}
