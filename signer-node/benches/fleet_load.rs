//! Fleet load bench (issue #4): five real `signer-node` processes, built with the bench
//! profile (release), on loopback with a devnet PKI and sealed sled stores; a 3-of-5 key;
//! a warm presignature pool on signers 1, 2, 3; then authorized signatures over mTLS, driven
//! by a coordinator-certificate client exactly as the coordinator drives them (`Sign` on each
//! of the t signers, then `SessionStatus` until the signature is there).
//!
//! ```text
//! cargo bench -p signer-node --bench fleet_load -- --signatures 100 --concurrency 4
//! ```
//!
//! Prints, as JSON lines and as text:
//! - `sign_latency`: p50/p99/max of request → signature for one signature at a time (the
//!   client polls `SessionStatus` every millisecond, so the figures include up to 1 ms of
//!   polling);
//! - `sign_throughput`: signatures per second with `--concurrency` signatures in flight;
//! - `signer_rss`: resident memory (VmRSS) of each signer started and idle (no key), idle with
//!   the key and the pool, and the largest value sampled every 20 ms under signing load;
//! - `signer_rss_idle_breakdown`: signer 1's idle resident memory by kind from
//!   `/proc/PID/smaps` (binary and libraries, thread stacks, malloc arenas, main heap, other
//!   anonymous memory) and its thread count.
//!
//! `--signer-env NAME=VALUE` (repeatable) sets an environment variable of every signer, e.g.
//! `--signer-env MALLOC_ARENA_MAX=2`.
//!
//! Every signature is verified with libsecp256k1 after its latency is taken. Presigning
//! (≈ 1 s of CPU per signer per presignature, see BENCHMARKS.md) fills the pool before the
//! clock starts: this measures the online phase a warm pool serves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code
)]

#[path = "../tests/process_fleet/mod.rs"]
mod process_fleet;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_control_client::SignerControlClient, SessionState,
    SessionStatusRequest, SignRequest,
};
use process_fleet::{child_key, random_id, ProcessFleet};
use sha3::{Digest, Keccak256};
use tonic::transport::Channel;

const SIGNERS: [u16; 3] = [1, 2, 3];

struct Args {
    signatures: usize,
    concurrency: usize,
    presign_parallel: usize,
    /// `--signer-env NAME=VALUE` (repeatable): environment of every signer process, e.g.
    /// `MALLOC_ARENA_MAX=2` to compare allocator settings.
    signer_env: Vec<(String, std::ffi::OsString)>,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: usize| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
            })
            .unwrap_or(default)
    };
    Args {
        signatures: value("--signatures", 100).max(1),
        concurrency: value("--concurrency", 4).max(1),
        presign_parallel: value("--presign-parallel", 2).max(1),
        signer_env: argv
            .windows(2)
            .filter(|w| w[0] == "--signer-env")
            .map(|w| {
                let (k, v) = w[1]
                    .split_once('=')
                    .unwrap_or_else(|| panic!("--signer-env NAME=VALUE, got {}", w[1]));
                (k.to_owned(), v.into())
            })
            .collect(),
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(args));
}

/// VmRSS of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Where the resident memory of process `pid` is, in KiB, from /proc/PID/smaps: the binary
/// and libraries (file-backed), thread stacks (the 2 MiB anonymous mappings the Rust runtime
/// and tokio make per thread), glibc's per-thread malloc arenas (anonymous mappings at
/// 64 MiB-aligned addresses), the main heap (`[heap]`, brk), and every other anonymous
/// mapping (large allocations served by mmap, the main thread's stack).
fn rss_breakdown(pid: u32) -> Vec<(&'static str, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut sums = [0u64; 5];
    let mut class = 4;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            {
                let _perms = fields.next();
                let name = fields.nth(3).unwrap_or("");
                class = if name.starts_with('/') {
                    0
                } else if name == "[heap]" {
                    3
                } else if !name.is_empty() {
                    4
                } else if end - start == 2 << 20 {
                    1
                } else if start % (64 << 20) == 0 {
                    2
                } else {
                    4
                };
                continue;
            }
        }
        if first == "Rss:" {
            sums[class] += fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    vec![
        ("files", sums[0]),
        ("thread_stacks", sums[1]),
        ("malloc_arenas", sums[2]),
        ("main_heap", sums[3]),
        ("other_anon", sums[4]),
    ]
}

fn rss_all(fleet: &ProcessFleet) -> Vec<u64> {
    (1..=5)
        .map(|i| fleet.pid(i).map(rss_kib).unwrap_or(0))
        .collect()
}

fn mib(kib: &[u64]) -> String {
    let v: Vec<String> = kib
        .iter()
        .map(|k| format!("{:.1}", *k as f64 / 1024.0))
        .collect();
    format!("[{}]", v.join(", "))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One signature: `Sign` on every signer of [`SIGNERS`] at once, then signer 1's status
/// polled every millisecond until it has the signature. Returns the latency and the
/// signature (r‖s).
async fn sign_once(
    controls: &[SignerControlClient<Channel>],
    request: SignRequest,
) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let calls = SIGNERS.iter().map(|&i| {
        let mut c = controls[usize::from(i) - 1].clone();
        let r = request.clone();
        async move { c.sign(r).await }
    });
    for answer in futures_join_all(calls).await {
        answer.unwrap();
    }
    let mut first = controls[0].clone();
    loop {
        let status = first
            .session_status(SessionStatusRequest {
                session_id: request.session_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        match SessionState::try_from(status.state).unwrap() {
            SessionState::Pending | SessionState::Running => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            SessionState::Completed => match status.outcome {
                Some(Outcome::Signature(s)) => return (started.elapsed(), s.r_s),
                other => panic!("completed without a signature: {other:?}"),
            },
            other => panic!("signing ended {other:?}: {status:?}"),
        }
    }
}

/// Awaits every future (spawned, so they run in parallel on the runtime).
async fn futures_join_all<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn verify(key: &custody_proto::signer::v1::KeyInfo, message: &[u8], r_s: &[u8]) {
    let digest: [u8; 32] = Keccak256::digest(message).into();
    let child = child_key(key);
    let secp = secp256k1::Secp256k1::verification_only();
    let pk = secp256k1::PublicKey::from_slice(child.as_bytes()).unwrap();
    let sig = secp256k1::ecdsa::Signature::from_compact(r_s).unwrap();
    secp.verify_ecdsa(&secp256k1::Message::from_digest(digest), &sig, &pk)
        .expect("libsecp256k1 verifies the fleet's signature");
}

async fn run(args: Args) {
    let mut fleet = ProcessFleet::create(5, |_, _, _| {});
    fleet.env = args.signer_env.clone();
    for i in 1..=5 {
        fleet.start(i, None);
    }
    fleet.wait_serving().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_started = rss_all(&fleet);

    let started = Instant::now();
    let (key_id, key) = fleet.keygen(3, &[1, 2, 3, 4, 5]).await;
    let keygen_s = started.elapsed().as_secs_f64();
    eprintln!("keygen 3-of-5: {keygen_s:.1} s");

    // the pool: one presignature per signature of both phases
    let total = 2 * args.signatures;
    let started = Instant::now();
    let mut pool = Vec::with_capacity(total);
    while pool.len() < total {
        let batch: Vec<Vec<u8>> = (0..args.presign_parallel.min(total - pool.len()))
            .map(|_| random_id())
            .collect();
        for id in &batch {
            fleet.start_presign(&key_id, id, &SIGNERS).await;
        }
        for id in &batch {
            for &i in &SIGNERS {
                let status = fleet.wait_end(i, id, Duration::from_secs(600)).await;
                assert_eq!(
                    status.state,
                    SessionState::Completed as i32,
                    "presign: {status:?}"
                );
            }
        }
        pool.extend(batch);
        eprint!("\rpresignature pool: {}/{total}", pool.len());
    }
    let pool_s = started.elapsed().as_secs_f64();
    eprintln!(" in {pool_s:.0} s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_all(&fleet);
    let breakdown_idle = fleet.pid(1).map(rss_breakdown).unwrap_or_default();
    let threads_idle = fleet
        .pid(1)
        .and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/task")).ok())
        .map_or(0, |d| d.count());

    let controls = fleet.controls.clone();
    let mut pool = pool.into_iter();
    let request = |fleet: &ProcessFleet, presignature: Vec<u8>, n: usize| {
        let message = format!("fleet load bench order {n}").into_bytes();
        let authorization = fleet.authorization(&key_id, &message);
        (
            fleet.sign_request(&key_id, &presignature, &SIGNERS, authorization),
            message,
        )
    };

    // latency: one signature at a time
    let mut latencies = Vec::with_capacity(args.signatures);
    for n in 0..args.signatures {
        let (req, message) = request(&fleet, pool.next().unwrap(), n);
        let (latency, r_s) = sign_once(&controls, req).await;
        verify(&key, &message, &r_s);
        latencies.push(latency.as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
    );

    // throughput: `concurrency` signatures in flight, RSS sampled meanwhile
    let sampling = Arc::new(AtomicBool::new(true));
    let pids: Vec<u32> = (1..=5).map(|i| fleet.pid(i).unwrap_or(0)).collect();
    let sampler = {
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut peak = vec![0u64; pids.len()];
            while sampling.load(Ordering::Relaxed) {
                for (p, &pid) in peak.iter_mut().zip(&pids) {
                    *p = (*p).max(rss_kib(pid));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let jobs: Vec<(SignRequest, Vec<u8>)> = (0..args.signatures)
        .map(|n| request(&fleet, pool.next().unwrap(), args.signatures + n))
        .collect();
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let jobs = Arc::clone(&jobs);
            let controls = controls.clone();
            let key = key.clone();
            async move {
                let mut done = 0usize;
                loop {
                    let job = jobs.lock().unwrap().pop();
                    let Some((req, message)) = job else {
                        return done;
                    };
                    let (_, r_s) = sign_once(&controls, req).await;
                    verify(&key, &message, &r_s);
                    done += 1;
                }
            }
        })
        .collect();
    let done: usize = futures_join_all(workers).await.into_iter().sum();
    let elapsed = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let rss_load = sampler.await.unwrap();
    let throughput = done as f64 / elapsed;

    println!(
        "{{\"bench\":\"sign_latency\",\"parties\":5,\"threshold\":3,\"signatures\":{},\"p50_ms\":{p50:.2},\"p99_ms\":{p99:.2},\"max_ms\":{max:.2}}}",
        args.signatures
    );
    println!(
        "{{\"bench\":\"sign_throughput\",\"parties\":5,\"threshold\":3,\"signatures\":{done},\"concurrency\":{},\"per_second\":{throughput:.1}}}",
        args.concurrency
    );
    println!(
        "{{\"bench\":\"signer_rss\",\"started_kib\":{rss_started:?},\"idle_kib\":{rss_idle:?},\"load_peak_kib\":{rss_load:?}}}"
    );
    let breakdown_json: Vec<String> = breakdown_idle
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    println!(
        "{{\"bench\":\"signer_rss_idle_breakdown\",\"signer\":1,\"threads\":{threads_idle},{}}}",
        breakdown_json.join(",")
    );
    println!("keygen 3-of-5: {keygen_s:.1} s; pool of {total} presignatures on signers 1-3: {pool_s:.0} s");
    println!(
        "sign latency ({} signatures, one at a time): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        args.signatures
    );
    println!(
        "sign throughput ({done} signatures, {} in flight): {throughput:.1} signatures/s",
        args.concurrency
    );
    println!(
        "signer RSS (MiB) started {} idle {} under load (peak) {}",
        mib(&rss_started),
        mib(&rss_idle),
        mib(&rss_load)
    );
    let text: Vec<String> = breakdown_idle
        .iter()
        .map(|(k, v)| format!("{k} {:.1}", *v as f64 / 1024.0))
        .collect();
    println!(
        "signer 1 idle RSS (MiB) by kind, {threads_idle} threads: {}",
        text.join(", ")
    );
    if !args.signer_env.is_empty() {
        println!("signer environment: {:?}", args.signer_env);
    }
}
