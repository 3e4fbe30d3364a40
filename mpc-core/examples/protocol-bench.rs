//! Protocol benchmark: runs the protocols that exist so far for m parties in one process and
//! prints one JSON object per phase with the per-party CPU time (the thread CPU time each party
//! spends in its own calls, summed over its rounds: what one party's machine spends on one
//! core; DESIGN §9; measured with the thread's CPU clock, so other load on the machine does not
//! inflate it), the bytes each party sends, and the wall time.
//!
//! `cargo run --release -p mpc-core --features test-fixtures --example protocol-bench -- \
//!     --parties 5 --threshold 3 --json`
//!
//! Phases: `dkg` (GJKR DKG), `aux_info` (CGGMP24 Fig. 7 with the committed fixture primes, so
//! prime generation is not timed: it belongs to the background pool), `presign` (Fig. 8, the
//! first t parties, path m/0) and `sign` (Fig. 10: one party's partial signature, and the
//! combine with every partial checked, which is timed separately as `combine`).
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use mpc_core::aux_info::{AuxConfig, AuxInfoParty, AuxPrimes};
use mpc_core::dkg::{DkgConfig, DkgParty};
use mpc_core::fixtures::safe_prime_pair;
use mpc_core::presign::{PresignConfig, PresignParty};
use mpc_core::protocol::{Committee, Incoming, Outcome, PartyIndex, Protocol, Recipient, Step};
use mpc_core::sign::combine;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;

struct Measured {
    per_party_cpu: Vec<Duration>,
    bytes_sent: Vec<usize>,
    wall: Duration,
}

/// Delivers every message FIFO, timing each party's calls separately.
fn drive<P: Protocol>(mut parties: Vec<P>, rng: &mut ChaCha20Rng) -> (Vec<P::Output>, Measured) {
    let m = parties.len();
    let mut cpu = vec![Duration::ZERO; m];
    let mut bytes = vec![0usize; m];
    let mut outputs: Vec<Option<P::Output>> = (0..m).map(|_| None).collect();
    let mut queue: VecDeque<(usize, Incoming)> = VecDeque::new();
    let wall = Instant::now();
    let handle_step = |i: usize,
                       step: Step<P::Output>,
                       queue: &mut VecDeque<(usize, Incoming)>,
                       outputs: &mut Vec<Option<P::Output>>,
                       bytes: &mut Vec<usize>| {
        for out in step.outgoing {
            let receivers: Vec<usize> = match out.to {
                Recipient::All => (0..m).filter(|&j| j != i).collect(),
                Recipient::One(j) => vec![j.as_usize()],
            };
            bytes[i] += out.payload.len() * receivers.len();
            for j in receivers {
                queue.push_back((j, out.to_incoming(PartyIndex::new(i as u16))));
            }
        }
        match step.outcome {
            Some(Outcome::Output(o)) => outputs[i] = Some(o),
            Some(Outcome::Abort(a)) => panic!("party {i} aborted: {a:?}"),
            None => {}
        }
    };
    for (i, p) in parties.iter_mut().enumerate() {
        let t = ThreadTime::now();
        let step = p.start(rng).expect("start");
        cpu[i] += t.elapsed();
        handle_step(i, step, &mut queue, &mut outputs, &mut bytes);
    }
    let mut stalled = 0;
    while let Some((to, msg)) = queue.pop_front() {
        if parties[to].current_round() != Some(msg.round) {
            // a message for a later round: hold it back
            queue.push_back((to, msg));
            stalled += 1;
            assert!(stalled <= queue.len() + 1, "no party can make progress");
            continue;
        }
        stalled = 0;
        let t = ThreadTime::now();
        let step = parties[to]
            .handle(rng, msg)
            .expect("honest message accepted");
        cpu[to] += t.elapsed();
        handle_step(to, step, &mut queue, &mut outputs, &mut bytes);
    }
    let wall = wall.elapsed();
    let outputs = outputs
        .into_iter()
        .map(|o| o.expect("every party finished"))
        .collect();
    (
        outputs,
        Measured {
            per_party_cpu: cpu,
            bytes_sent: bytes,
            wall,
        },
    )
}

fn report(phase: &str, m: u16, t: u16, r: &Measured, json: bool) {
    let n = r.per_party_cpu.len() as f64;
    let mean_ms = r
        .per_party_cpu
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .sum::<f64>()
        / n;
    let max_ms = r
        .per_party_cpu
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .fold(0.0, f64::max);
    let bytes = r.bytes_sent.iter().sum::<usize>() / r.bytes_sent.len();
    let wall_ms = r.wall.as_secs_f64() * 1e3;
    if json {
        println!(
            "{{\"phase\":\"{phase}\",\"parties\":{m},\"threshold\":{t},\"per_party_ms\":{mean_ms:.3},\"per_party_max_ms\":{max_ms:.3},\"bytes_per_party\":{bytes},\"wall_ms\":{wall_ms:.1}}}"
        );
    } else {
        println!(
            "{phase:<10} m={m} t={t}: per party {mean_ms:.1} ms CPU (max {max_ms:.1}), {bytes} bytes sent, wall {wall_ms:.1} ms"
        );
    }
}

fn arg(name: &str, default: u16) -> u16 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let m = arg("--parties", 5);
    let t = arg("--threshold", 3);
    let json = std::env::args().any(|a| a == "--json");
    assert!(1 <= t && t <= m, "need 1 ≤ threshold ≤ parties");
    assert!(
        4 * usize::from(m) <= 34,
        "the fixtures hold primes for at most 8 parties"
    );
    let committee = Committee::standard(m).expect("committee");
    let mut rng = ChaCha20Rng::from_entropy();

    let dkg: Vec<DkgParty> = (0..m)
        .map(|i| {
            DkgParty::new(
                DkgConfig {
                    session_id: b"protocol-bench/dkg".to_vec(),
                    committee: committee.clone(),
                    threshold: t,
                    me: PartyIndex::new(i),
                },
                &mut rng,
            )
            .expect("dkg party")
        })
        .collect();
    let (shares, measured) = drive(dkg, &mut rng);
    report("dkg", m, t, &measured, json);

    {
        let setup = ThreadTime::now();
        let wall_setup = Instant::now();
        let aux: Vec<AuxInfoParty> = (0..m)
            .map(|i| {
                let [p, q] = safe_prime_pair(2 * usize::from(i));
                let [ph, qh] = safe_prime_pair(2 * usize::from(i) + 1);
                AuxInfoParty::new(
                    AuxConfig {
                        session_id: b"protocol-bench/aux".to_vec(),
                        committee: committee.clone(),
                        me: PartyIndex::new(i),
                    },
                    AuxPrimes::new(p, q, ph, qh),
                    &mut rng,
                )
                .expect("aux party")
            })
            .collect();
        // key building and Πprm happen in the constructor: count them for each party
        let setup_each = setup.elapsed() / u32::from(m);
        let setup_wall = wall_setup.elapsed();
        let (aux, mut measured) = drive(aux, &mut rng);
        for c in measured.per_party_cpu.iter_mut() {
            *c += setup_each;
        }
        measured.wall += setup_wall;
        report("aux_info", m, t, &measured, json);

        let aux: Vec<Arc<_>> = aux.into_iter().map(Arc::new).collect();
        let signers: Vec<PartyIndex> = (0..t).map(PartyIndex::new).collect();
        let setup = ThreadTime::now();
        let presign: Vec<PresignParty> = (0..t)
            .map(|i| {
                PresignParty::new(
                    PresignConfig {
                        session_id: b"protocol-bench/presign".to_vec(),
                        key_id: b"bench-key".to_vec(),
                        epoch: 0,
                        signers: signers.clone(),
                        path: "m/0".parse().expect("path"),
                    },
                    &shares[usize::from(i)],
                    Arc::clone(&aux[usize::from(i)]),
                    &mut rng,
                )
                .expect("presign party")
            })
            .collect();
        let setup_each = setup.elapsed() / u32::from(t);
        let (presigs, mut measured) = drive(presign, &mut rng);
        for c in measured.per_party_cpu.iter_mut() {
            *c += setup_each;
        }
        report("presign", t, t, &measured, json);

        let digest = [0x5au8; 32];
        let public = presigs[0].public().clone();
        let mut cpu = Vec::new();
        let mut partials = Vec::new();
        for p in presigs {
            let start = ThreadTime::now();
            partials.push(p.sign(&digest));
            cpu.push(start.elapsed());
        }
        let bytes = partials[0].to_bytes().len() * (usize::from(t) - 1);
        report(
            "sign",
            t,
            t,
            &Measured {
                per_party_cpu: cpu,
                bytes_sent: vec![bytes; usize::from(t)],
                wall: Duration::ZERO,
            },
            json,
        );
        let start = ThreadTime::now();
        combine(&public, &digest, &partials).expect("signature verifies");
        report(
            "combine",
            t,
            t,
            &Measured {
                per_party_cpu: vec![start.elapsed()],
                bytes_sent: vec![0],
                wall: Duration::ZERO,
            },
            json,
        );
    }
}
