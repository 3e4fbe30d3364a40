//! The README's main command for now: an honest in-process demonstration of what mpc-core
//! can do today. Generates real safe primes with progress, builds Paillier-Blum keys, and
//! proves and verifies each zero-knowledge proof that exists, printing timings.
//! (The signer fleet and devnet replace this in later issues.)
//!
//! `cargo run --release -p mpc-core --features test-fixtures --example demo [-- --fixtures]`
//! With `--fixtures` the prover's primes come from the committed test fixtures instead of
//! being generated (faster; those primes are public, never use them for real keys).
//! With `--plain` the proofs run without fixed-base tables and owner CRT views (to compare).

use std::io::Write;
use std::ops::ControlFlow;
use std::time::Instant;

use mpc_core::arith::random_signed_bits;
use mpc_core::fixtures::instances::{all_instances, Parties};
use mpc_core::fixtures::safe_prime_pair;
use mpc_core::paillier::PaillierSecretKey;
use mpc_core::params::PRIME_BITS;
use mpc_core::primes::generate_safe_prime;
use mpc_core::zk::ProofContext;

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!(
        "  {label:<44} {:>9.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let use_fixtures = std::env::args().any(|a| a == "--fixtures");
    let plain = std::env::args().any(|a| a == "--plain");
    let mut rng = rand_core::OsRng;
    println!("mpc-core demo: CGGMP24 building blocks, one process, no network\n");

    println!(
        "1. Paillier-Blum key of the prover ({}-bit safe primes)",
        PRIME_BITS
    );
    let (p, q) = if use_fixtures {
        println!("  using committed fixture primes (--fixtures)");
        let [p, q] = safe_prime_pair(0);
        (p, q)
    } else {
        let mut primes = Vec::new();
        for which in ["p", "q"] {
            let start = Instant::now();
            let prime = generate_safe_prime(&mut rng, PRIME_BITS, |progress| {
                if progress.fermat_tests % 50 == 0 {
                    print!(
                        "\r  searching for safe prime {which}: {} candidates tested",
                        progress.fermat_tests
                    );
                    let _ = std::io::stdout().flush();
                }
                ControlFlow::Continue(())
            })?;
            println!(
                "\r  safe prime {which} found in {:.1} s{:30}",
                start.elapsed().as_secs_f64(),
                ""
            );
            primes.push(prime);
        }
        let q = primes.pop().ok_or("missing prime")?;
        let p = primes.pop().ok_or("missing prime")?;
        (p, q)
    };
    let sk = timed("key setup (CRT constants)", || {
        PaillierSecretKey::from_primes(p, q)
    })?;
    let pk = sk.public().clone();
    println!("  N has {} bits", pk.n().bits());

    println!("\n2. Paillier encryption and decryption");
    let m = random_signed_bits(&mut rng, 256);
    let (c, _) = timed("encrypt (public key)", || pk.encrypt(&mut rng, &m));
    let _ = timed("encrypt (owner, CRT)", || sk.encrypt(&mut rng, &m));
    let back = timed("decrypt (CRT)", || sk.decrypt(&c));
    println!(
        "  round trip: {}",
        if back == m { "ok" } else { "MISMATCH" }
    );
    if back != m {
        return Err("decryption mismatch".into());
    }

    println!(
        "\n3. Zero-knowledge proofs: prove, verify, and the same proof replayed in another session"
    );
    println!("  (prover: the key above; verifier: fixture Paillier and ring-Pedersen keys)");
    let parties = Parties {
        prover: sk,
        ..Parties::from_fixtures(&mut rng)
    };
    let parties = if plain {
        println!("  (--plain: no fixed-base tables, no owner CRT views)");
        parties
    } else {
        timed("tables of peer N̂ + owner CRT views (once/epoch)", || {
            parties.accelerated()
        })
    };
    let rho = [0u8; 32];
    let ctx = ProofContext {
        session_id: b"demo-session",
        prover: 1,
        rho: &rho,
    };
    let replay = ProofContext {
        session_id: b"another-session",
        prover: 1,
        rho: &rho,
    };
    println!(
        "  {:<20} {:>10} {:>10} {:>10}  replay",
        "proof", "prove ms", "verify ms", "bytes"
    );
    for instance in all_instances(&mut rng, &parties) {
        let start = Instant::now();
        let proof = instance.prove(&mut rng, &ctx)?;
        let prove_ms = start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        instance.verify(&ctx, &proof)?;
        let verify_ms = start.elapsed().as_secs_f64() * 1e3;
        let replayed = match instance.verify(&replay, &proof) {
            Ok(()) => return Err(format!("{} verified in another session", instance.name()).into()),
            Err(e) => e,
        };
        println!(
            "  {:<20} {prove_ms:>10.1} {verify_ms:>10.1} {:>10}  refused ({replayed})",
            instance.name(),
            proof.len()
        );
    }
    println!("\nall checks passed");
    Ok(())
}
