//! `monty::Montgomery`: exponentiation at 1536/3072/6144-bit moduli with full-length exponents,
//! and single Montgomery products/squarings: the current `src/monty.rs` ("new") against a
//! verbatim copy of the version of commit ded6c12 (`benches/support/monty_baseline.rs`, "old"),
//! both compiled into this binary.
//!
//! `cargo bench -p mpc-core --bench monty` runs criterion.
//! `cargo bench -p mpc-core --bench monty -- --ab [reps]` runs an interleaved A/B comparison
//! (per case `reps` rounds, default 15, each running old and new once, alternating which goes
//! first) and prints medians and minima: use it on a shared, noisy machine. An A/A run (the
//! baseline file replaced by a copy of src/monty.rs) showed ≤ 3 % differences on minima.
#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    dead_code,
    unused_imports
)]

extern crate alloc;

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion};
use mpc_core::arith::random_bits;
use num_bigint::BigUint;
use num_traits::One;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// What both copies of monty.rs need from `crate::arith` (their `#[cfg(test)]` tests are
/// compiled into this bench too, and never run).
mod arith {
    pub use mpc_core::arith::random_bits;

    pub fn wipe_uint(x: &mut num_bigint::BigUint) {
        let zeros = vec![0u32; x.to_u32_digits().len()];
        x.assign_from_slice(&zeros);
    }
}

#[path = "../src/monty.rs"]
mod monty_new;
#[path = "support/monty_baseline.rs"]
mod monty_old;

fn modulus(rng: &mut ChaCha20Rng, bits: u64) -> BigUint {
    random_bits(rng, bits) | BigUint::one() | (BigUint::one() << (bits - 1))
}

struct Case {
    bits: u64,
    m: BigUint,
    base: BigUint,
    exp: BigUint,
    new: monty_new::Montgomery,
    old: monty_old::Montgomery,
}

fn cases() -> Vec<Case> {
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    [1536u64, 3072, 6144]
        .into_iter()
        .map(|bits| {
            let m = modulus(&mut rng, bits);
            let base = random_bits(&mut rng, bits) % &m;
            // full-length exponent (top bit set)
            let exp = random_bits(&mut rng, bits) | (BigUint::one() << (bits - 1));
            Case {
                bits,
                new: monty_new::Montgomery::new(&m).unwrap(),
                old: monty_old::Montgomery::new(&m).unwrap(),
                m,
                base,
                exp,
            }
        })
        .collect()
}

/// `iters` Montgomery products acc ← acc·b (new code).
fn products_new(c: &Case, iters: usize, square: bool) -> Vec<u64> {
    let mont = &c.new;
    let mut s = mont.scratch();
    let mut acc = mont.enter_montgomery(&c.base, &mut s);
    let b = mont.enter_montgomery(&c.exp, &mut s);
    let mut tmp = vec![0u64; mont.limbs()];
    for _ in 0..iters {
        if square {
            mont.sqr_assign(&mut acc, &mut tmp, &mut s);
        } else {
            mont.mul_assign(&mut acc, &b, &mut tmp, &mut s);
        }
    }
    acc
}

/// Same with the old code.
fn products_old(c: &Case, iters: usize, square: bool) -> Vec<u64> {
    let mont = &c.old;
    let mut s = mont.scratch();
    let mut acc = mont.enter_montgomery(&c.base, &mut s);
    let b = mont.enter_montgomery(&c.exp, &mut s);
    let mut tmp = vec![0u64; mont.limbs()];
    for _ in 0..iters {
        if square {
            mont.sqr_assign(&mut acc, &mut tmp, &mut s);
        } else {
            mont.mul_assign(&mut acc, &b, &mut tmp, &mut s);
        }
    }
    acc
}

fn criterion_benches(c: &mut Criterion) {
    let cases = cases();
    let mut group = c.benchmark_group("monty_pow_full_exponent");
    group.sample_size(10);
    for case in &cases {
        group.bench_with_input(BenchmarkId::new("old", case.bits), case, |b, c| {
            b.iter(|| c.old.pow(black_box(&c.base), &c.exp))
        });
        group.bench_with_input(BenchmarkId::new("new", case.bits), case, |b, c| {
            b.iter(|| c.new.pow(black_box(&c.base), &c.exp))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("monty_product_100x");
    for case in &cases {
        for (name, square) in [("mul", false), ("sqr", true)] {
            group.bench_with_input(
                BenchmarkId::new(format!("{name}_old"), case.bits),
                case,
                |b, c| b.iter(|| products_old(c, 100, square)),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{name}_new"), case.bits),
                case,
                |b, c| b.iter(|| products_new(c, 100, square)),
            );
        }
    }
    group.finish();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn report(label: &str, scale: f64, unit: &str, o: &mut [f64], n: &mut [f64]) {
    let (mo, mn) = (median(o), median(n));
    let (lo, ln) = (min(o), min(n));
    println!(
        "{label:<28} {:>9.3} {unit} {:>9.3} {unit} {:>7.2}x   {:>7.3} {unit} {:>7.3} {unit} {:>7.2}x",
        mo * scale,
        mn * scale,
        mo / mn,
        lo * scale,
        ln * scale,
        lo / ln
    );
}

/// Interleaved old/new timing; prints the median time per operation of each.
fn ab(reps: usize) {
    let cases = cases();
    for c in &cases {
        assert_eq!(c.new.pow(&c.base, &c.exp), c.base.modpow(&c.exp, &c.m));
        assert_eq!(c.old.pow(&c.base, &c.exp), c.base.modpow(&c.exp, &c.m));
        assert_eq!(products_new(c, 7, false), products_old(c, 7, false));
        assert_eq!(products_new(c, 7, true), products_old(c, 7, true));
    }
    println!("interleaved A/B, {reps} rounds, per operation (old = commit ded6c12's monty.rs)");
    println!(
        "{:<28} {:>12} {:>12} {:>8}   {:>10} {:>10} {:>8}",
        "case", "old median", "new median", "speedup", "old min", "new min", "speedup"
    );
    for c in &cases {
        let limbs = c.new.limbs();
        // products: enough iterations for ~5 ms per sample
        let iters = (2_000_000 / (limbs * limbs)).max(50);
        for (name, square) in [("mul", false), ("sqr", true)] {
            let (mut o, mut n) = (Vec::new(), Vec::new());
            for round in 0..reps {
                // alternate which goes first: the second of a pair runs with warmer caches
                for first_old in [round % 2 == 0, round % 2 == 1] {
                    let t = Instant::now();
                    if first_old {
                        black_box(products_old(c, iters, square));
                        o.push(t.elapsed().as_secs_f64() / iters as f64);
                    } else {
                        black_box(products_new(c, iters, square));
                        n.push(t.elapsed().as_secs_f64() / iters as f64);
                    }
                }
            }
            report(&format!("{name} {limbs} limbs"), 1e6, "µs", &mut o, &mut n);
        }
        let pows = match c.bits {
            1536 => 4,
            3072 => 2,
            _ => 1,
        };
        let (mut o, mut n) = (Vec::new(), Vec::new());
        for round in 0..reps {
            for first_old in [round % 2 == 0, round % 2 == 1] {
                let t = Instant::now();
                for _ in 0..pows {
                    if first_old {
                        black_box(c.old.pow(black_box(&c.base), &c.exp));
                    } else {
                        black_box(c.new.pow(black_box(&c.base), &c.exp));
                    }
                }
                let per = t.elapsed().as_secs_f64() / pows as f64;
                if first_old {
                    o.push(per)
                } else {
                    n.push(per)
                }
            }
        }
        let label = format!("pow {} bits, {}-bit exp", c.bits, c.bits);
        report(&label, 1e3, "ms", &mut o, &mut n);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `--count old|new mul|sqr BITS ITERS`: only that kernel, for `perf stat` cycle counts,
    // which a busy machine disturbs far less than wall-clock time.
    if let Some(i) = args.iter().position(|a| a == "--count") {
        let arg = |k: usize| args.get(i + k).map(String::as_str).unwrap_or("");
        let bits: u64 = arg(3).parse().unwrap_or(3072);
        let iters: usize = arg(4).parse().unwrap_or(100_000);
        let c = cases()
            .into_iter()
            .find(|c| c.bits == bits)
            .expect("bits: 1536, 3072 or 6144");
        let square = arg(2) == "sqr";
        let out = if arg(1) == "old" {
            products_old(&c, iters, square)
        } else {
            products_new(&c, iters, square)
        };
        black_box(out);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--ab") {
        let reps = args.get(i + 1).and_then(|r| r.parse().ok()).unwrap_or(15);
        ab(reps);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
