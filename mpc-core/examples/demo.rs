//! The README's main command for now: an honest in-process demonstration of what mpc-core
//! can do today. Generates real safe primes with progress, builds Paillier-Blum keys, proves
//! and verifies each zero-knowledge proof, then runs a 3-of-5 threshold ECDSA end to end: DKG,
//! aux info, presigning for three signers on a BIP32 path, signing, and verification.
//! (The signer fleet and devnet replace this in later issues.)
//!
//! `cargo run --release -p mpc-core --features test-fixtures --example demo [-- --fixtures]`
//! With `--fixtures` the prover's primes come from the committed test fixtures instead of
//! being generated (faster; those primes are public, never use them for real keys).
//! With `--plain` the proofs run without fixed-base tables and owner CRT views (to compare).

use std::io::Write;
use std::ops::ControlFlow;
use std::time::Instant;

use std::sync::Arc;

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use mpc_core::arith::random_signed_bits;
use mpc_core::aux_info::{AuxConfig, AuxInfo, AuxInfoParty, AuxPrimes};
use mpc_core::dkg::{DkgConfig, DkgParty, KeyShare};
use mpc_core::fixtures::instances::{all_instances, Parties};
use mpc_core::fixtures::safe_prime_pair;
use mpc_core::hd::DerivationPath;
use mpc_core::paillier::PaillierSecretKey;
use mpc_core::params::PRIME_BITS;
use mpc_core::presign::{PresignConfig, PresignParty, Presignature};
use mpc_core::primes::generate_safe_prime;
use mpc_core::protocol::{Committee, Outcome, PartyIndex};
use mpc_core::sign::combine;
use mpc_core::sim::{Report, Sim};
use mpc_core::zk::ProofContext;
use sha2::{Digest, Sha256};

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
    threshold_ecdsa(&mut rng)?;
    println!("\nall checks passed");
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Section 4: a 3-of-5 key from the DKG, aux info, a presignature of signers 0, 1, 2 on a
/// BIP32 path, a signature, and its verification.
fn threshold_ecdsa(rng: &mut rand_core::OsRng) -> Result<(), Box<dyn std::error::Error>> {
    let (t, m) = (3u16, 5u16);
    println!("\n4. {t}-of-{m} threshold ECDSA, all parties in this process (messages in memory)");
    let committee = Committee::standard(m)?;
    let dkg: Vec<DkgParty> = (0..m)
        .map(|i| {
            DkgParty::new(
                DkgConfig {
                    session_id: b"demo/dkg".to_vec(),
                    committee: committee.clone(),
                    threshold: t,
                    me: PartyIndex::new(i),
                },
                rng,
            )
        })
        .collect::<Result<_, _>>()?;
    let shares: Vec<KeyShare> = timed("DKG (GJKR + CGGMP24 binding, 6 rounds)", || {
        outputs(Sim::new(dkg).run(rng))
    })?;
    let public_key = shares[0].public_key().to_affine().to_encoded_point(true);
    println!("  joint public key {}", hex(public_key.as_bytes()));

    println!("  aux info uses committed fixture primes (4 per party): generating 20 safe primes");
    println!("  here would take minutes; a signer's background pool does that in production");
    let aux: Vec<AuxInfoParty> = (0..m)
        .map(|i| {
            let [p, q] = safe_prime_pair(2 * usize::from(i));
            let [ph, qh] = safe_prime_pair(2 * usize::from(i) + 1);
            AuxInfoParty::new(
                AuxConfig {
                    session_id: b"demo/aux".to_vec(),
                    committee: committee.clone(),
                    me: PartyIndex::new(i),
                },
                AuxPrimes::new(p, q, ph, qh),
                rng,
            )
        })
        .collect::<Result<_, _>>()?;
    let aux: Vec<AuxInfo> = timed(
        "aux info (Fig. 7: Πprm, Πmod, Πfac; all 5 parties)",
        || outputs(Sim::new(aux).run(rng)),
    )?;
    let aux: Vec<Arc<AuxInfo>> = aux.into_iter().map(Arc::new).collect();

    let path: DerivationPath = "m/44/60/0/0".parse()?;
    let signers: Vec<PartyIndex> = (0..t).map(PartyIndex::new).collect();
    let presign: Vec<PresignParty> = (0..t)
        .map(|i| {
            PresignParty::new(
                PresignConfig {
                    session_id: b"demo/presign-1".to_vec(),
                    key_id: b"demo-key".to_vec(),
                    epoch: 0,
                    signers: signers.clone(),
                    path: path.clone(),
                },
                &shares[usize::from(i)],
                Arc::clone(&aux[usize::from(i)]),
                rng,
            )
        })
        .collect::<Result<_, _>>()?;
    let presigs: Vec<Presignature> = timed(
        &format!("presign (Fig. 8), signers 0,1,2, path {path}"),
        || outputs(Sim::new(presign).run(rng)),
    )?;
    let public = presigs[0].public().clone();
    let digest: [u8; 32] = Sha256::digest(b"demo lock-out order #1").into();
    let partials: Vec<_> = presigs.into_iter().map(|p| p.sign(&digest)).collect();
    let sig = timed("sign (Fig. 10) + combine (each σ_j checked)", || {
        combine(&public, &digest, &partials)
    })?;
    let child = public.public_key.to_affine().to_encoded_point(true);
    println!("  child public key at {path}: {}", hex(child.as_bytes()));
    println!(
        "  signature r‖s {} (recovery id {})",
        hex(&sig.signature.to_bytes()),
        sig.recovery_id.to_byte()
    );
    let key = k256::ecdsa::VerifyingKey::from_affine(public.public_key.to_affine())
        .map_err(|e| format!("child key: {e}"))?;
    key.verify_prehash(&digest, &sig.signature)
        .map_err(|e| format!("signature does not verify: {e}"))?;
    println!("  verified with k256 against the child key: ok");
    Ok(())
}

/// Every party's output of a simulated run, or the first abort as an error.
fn outputs<O>(report: Report<O>) -> Result<Vec<O>, Box<dyn std::error::Error>> {
    report
        .outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            Some(Outcome::Output(out)) => Ok(out),
            Some(Outcome::Abort(a)) => Err(format!("party {i} aborted: {a:?}").into()),
            None => Err(format!("party {i} did not finish").into()),
        })
        .collect()
}
