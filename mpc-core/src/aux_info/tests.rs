//! Aux-info tests: an honest run, one misbehaviour per checklist item the protocol checks
//! (AUX-01..03 and AUX-06 through the proofs, AUX-05, PARAM-01, PARAM-02), harness faults, and
//! the decoders. Runs use the committed fixture primes (party i: pairs 2i and 2i+1).

use alloc::vec::Vec;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::fixtures::safe_prime_pair;
use crate::protocol::{Outcome, Protocol};
use crate::sim::{Fault, Report, Sim};

const SID: &[u8] = b"aux-test-session";

fn primes(i: u16) -> AuxPrimes {
    let [p, q] = safe_prime_pair(2 * usize::from(i));
    let [ph, qh] = safe_prime_pair(2 * usize::from(i) + 1);
    AuxPrimes::new(p, q, ph, qh)
}

fn config(m: u16, i: u16) -> AuxConfig {
    AuxConfig {
        session_id: SID.to_vec(),
        committee: Committee::standard(m).unwrap(),
        me: PartyIndex::new(i),
    }
}

fn run(m: u16, bad: &[(u16, Misbehaviour)], faults: Vec<Fault>) -> Report<AuxInfo> {
    let parties = (0..m)
        .map(|i| {
            let mut rng = ChaCha20Rng::seed_from_u64(100 + u64::from(i));
            match bad.iter().find(|(j, _)| *j == i) {
                Some((_, f)) => {
                    AuxInfoParty::with_misbehaviour(config(m, i), primes(i), &mut rng, f.clone())
                        .unwrap()
                }
                None => AuxInfoParty::new(config(m, i), primes(i), &mut rng).unwrap(),
            }
        })
        .collect();
    let mut sim = Sim::new(parties);
    for f in faults {
        sim = sim.fault(f);
    }
    sim.run(&mut ChaCha20Rng::seed_from_u64(7))
}

/// Every party other than `culprit` aborted naming exactly `culprit` for `reason`.
fn assert_blamed(report: &Report<AuxInfo>, m: u16, culprit: u16, reason: &AbortReason) {
    for i in (0..m).filter(|&i| i != culprit) {
        let abort = report
            .abort(i)
            .unwrap_or_else(|| panic!("party {i} did not abort"));
        assert_eq!(abort.culprits, vec![PartyIndex::new(culprit)], "party {i}");
        assert_eq!(&abort.reason, reason, "party {i}");
    }
}

#[test]
fn honest_run_gives_every_party_the_same_verified_parameters() {
    let m = 3;
    let report = run(m, &[], Vec::new());
    let outputs: Vec<&AuxInfo> = (0..m).map(|i| report.output(i).unwrap()).collect();
    for (i, out) in outputs.iter().enumerate() {
        assert_eq!(out.me(), PartyIndex::new(i as u16));
        assert_eq!(out.parties(), usize::from(m));
        assert_eq!(out.rho(), outputs[0].rho());
        assert_ne!(out.rho(), &[0u8; RHO_BYTES]);
        assert!(out.own_paillier_view().is_owner_view());
        assert_eq!(out.own_paillier_view(), out.paillier_secret().public());
        for (j, other) in outputs.iter().enumerate() {
            let view = out.party(PartyIndex::new(j as u16)).unwrap();
            let theirs = other.party(PartyIndex::new(j as u16)).unwrap();
            // everyone holds the same public values of j (equality ignores accelerators)
            assert_eq!(view.paillier, *other.paillier_secret().public());
            assert_eq!(view.ring_pedersen, theirs.ring_pedersen);
            assert!(!view.paillier.is_owner_view());
            let shown = alloc::format!("{:?}", view.ring_pedersen);
            if i == j {
                assert!(shown.contains("owner CRT"), "{shown}");
            } else {
                assert!(shown.contains("fixed-base tables"), "{shown}");
            }
        }
        // secrets never print
        assert!(!alloc::format!("{out:?}").contains(&out.paillier_secret().p().to_string()));
    }
}

/// AUX-05: a reveal that does not open the round-1 commitment names its sender.
#[test]
fn aux_05_reveal_not_matching_the_commitment_is_blamed() {
    let bad = Misbehaviour {
        wrong_reveal: true,
        ..Misbehaviour::default()
    };
    let report = run(2, &[(1, bad)], Vec::new());
    assert_blamed(&report, 2, 1, &AbortReason::InvalidDecommitment);
}

/// AUX-05: equivocating the round-2 reveal (one version to each peer) aborts naming the
/// sender, through the commitment or the echo of round 3.
#[test]
fn aux_05_equivocated_reveal_is_blamed() {
    let report = run(
        3,
        &[],
        alloc::vec![Fault::equivocate(2, 2, &[0], |p| {
            // flip a bit of u_i (the last field): still well formed, a different opening
            let last = p.len() - 1;
            p[last] ^= 1;
        })],
    );
    let abort = report.abort(0).expect("party 0 sees a bad opening");
    assert_eq!(abort.culprits, vec![PartyIndex::new(2)]);
    assert_eq!(abort.reason, AbortReason::InvalidDecommitment);
    assert!(report.output(1).is_none(), "party 1 must not finish");
}

/// PARAM-02: N̂ = N is refused before any proof is checked.
#[test]
fn param_02_ring_pedersen_modulus_equal_to_paillier_modulus_is_blamed() {
    let bad = Misbehaviour {
        n_hat_equals_n: true,
        ..Misbehaviour::default()
    };
    let report = run(2, &[(0, bad)], Vec::new());
    assert_blamed(
        &report,
        2,
        0,
        &AbortReason::InvalidAuxParameters(
            "ring-Pedersen modulus equals the Paillier modulus (PARAM-02)",
        ),
    );
}

/// PARAM-01: a Paillier modulus below 3072 bits is refused (the reveal is rewritten with a
/// fresh valid commitment, so only the size check can catch it).
#[test]
fn param_01_small_paillier_modulus_is_blamed() {
    let m = 2;
    let mut parties: Vec<AuxInfoParty> = (0..m)
        .map(|i| {
            let mut rng = ChaCha20Rng::seed_from_u64(100 + u64::from(i));
            AuxInfoParty::new(config(m, i), primes(i), &mut rng).unwrap()
        })
        .collect();
    // party 1 reveals a 1536-bit "modulus" (a prime) and commits to it
    let small = safe_prime_pair(0)[0].clone();
    parties[1].reveal.n = small;
    let report = Sim::new(parties).run(&mut ChaCha20Rng::seed_from_u64(7));
    assert_blamed(
        &report,
        m,
        1,
        &AbortReason::InvalidAuxParameters("Paillier modulus: odd, 3072 to 4096 bits (PARAM-01)"),
    );
}

/// AUX-06: Πmod proven under another ρ fails, and names the prover.
#[test]
fn aux_06_mod_proof_under_another_rho_is_blamed() {
    let bad = Misbehaviour {
        stale_rho_in_mod: true,
        ..Misbehaviour::default()
    };
    let report = run(2, &[(1, bad)], Vec::new());
    let abort = report.abort(0).unwrap();
    assert_eq!(abort.culprits, vec![PartyIndex::new(1)]);
    assert!(matches!(
        abort.reason,
        AbortReason::InvalidProof {
            proof: "Πmod (Fig. 12)",
            ..
        }
    ));
}

/// AUX-02: Πfac is verified against the verifier's own ring-Pedersen parameters; one made for
/// other parameters fails.
#[test]
fn aux_02_fac_proof_for_other_parameters_is_blamed() {
    let bad = Misbehaviour {
        fac_for_wrong_params: true,
        ..Misbehaviour::default()
    };
    let report = run(2, &[(0, bad)], Vec::new());
    let abort = report.abort(1).unwrap();
    assert_eq!(abort.culprits, vec![PartyIndex::new(0)]);
    assert!(matches!(
        abort.reason,
        AbortReason::InvalidProof {
            proof: "Πfac (Fig. 26)",
            ..
        }
    ));
}

/// AUX-03: a Πprm that does not verify for the revealed (N̂, s, t) names the prover (the
/// proof is swapped for one of another party, with a matching commitment).
#[test]
fn aux_03_prm_proof_of_other_parameters_is_blamed() {
    let m = 2;
    let mut parties: Vec<AuxInfoParty> = (0..m)
        .map(|i| {
            let mut rng = ChaCha20Rng::seed_from_u64(100 + u64::from(i));
            AuxInfoParty::new(config(m, i), primes(i), &mut rng).unwrap()
        })
        .collect();
    parties[1].reveal.prm = parties[0].reveal.prm.clone();
    let report = Sim::new(parties).run(&mut ChaCha20Rng::seed_from_u64(7));
    let abort = report.abort(0).unwrap();
    assert_eq!(abort.culprits, vec![PartyIndex::new(1)]);
    assert!(matches!(
        abort.reason,
        AbortReason::InvalidProof {
            proof: "Πprm (Fig. 13)",
            ..
        }
    ));
}

/// A different result digest in round 4 aborts naming the sender.
#[test]
fn different_result_digest_is_blamed() {
    let bad = Misbehaviour {
        wrong_result: true,
        ..Misbehaviour::default()
    };
    let report = run(2, &[(1, bad)], Vec::new());
    assert_blamed(&report, 2, 1, &AbortReason::AuxResultMismatch);
}

/// A party silent in round 3 is named at the deadline; nobody finishes.
#[test]
fn silent_party_is_named_at_the_deadline() {
    let report = run(2, &[], alloc::vec![Fault::drop(0, 3)]);
    let abort = report.abort(1).unwrap();
    assert_eq!(abort.culprits, vec![PartyIndex::new(0)]);
    assert_eq!(abort.reason, AbortReason::MissingMessage);
    assert!(report.deadlines > 0);
}

#[test]
fn setup_refuses_bad_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let [p, q] = safe_prime_pair(0);
    let [ph, qh] = safe_prime_pair(1);
    let same = AuxPrimes::new(p.clone(), q.clone(), p.clone(), qh.clone());
    assert!(matches!(
        AuxInfoParty::new(config(2, 0), same, &mut rng),
        Err(AuxSetupError::RingPedersen(
            RingPedersenError::SameAsPaillier
        ))
    ));
    let equal = AuxPrimes::new(p.clone(), p.clone(), ph.clone(), qh.clone());
    assert!(matches!(
        AuxInfoParty::new(config(2, 0), equal, &mut rng),
        Err(AuxSetupError::Paillier(_))
    ));
    let mut cfg = config(2, 0);
    cfg.session_id.clear();
    let ok = || AuxPrimes::new(p.clone(), q.clone(), ph.clone(), qh.clone());
    assert_eq!(
        AuxInfoParty::new(cfg, ok(), &mut rng).err(),
        Some(AuxSetupError::SessionId(0))
    );
    assert_eq!(
        AuxInfoParty::new(config(1, 0), ok(), &mut rng).err(),
        Some(AuxSetupError::TooFewParties(1))
    );
    let mut cfg = config(2, 0);
    cfg.me = PartyIndex::new(5);
    assert_eq!(
        AuxInfoParty::new(cfg, ok(), &mut rng).err(),
        Some(AuxSetupError::NotInCommittee(PartyIndex::new(5)))
    );
    assert_eq!(alloc::format!("{:?}", ok()), "AuxPrimes(<redacted>)");
}

/// Malformed, truncated, extended or oversized messages are refused and change nothing: the
/// party still finishes an honest run afterwards.
#[test]
fn malformed_messages_are_refused_without_state_change() {
    let m = 2;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut a = AuxInfoParty::new(config(m, 0), primes(0), &mut rng).unwrap();
    let mut b = AuxInfoParty::new(config(m, 1), primes(1), &mut rng).unwrap();
    let sa = a.start(&mut rng).unwrap();
    let sb = b.start(&mut rng).unwrap();
    let from_b = sb.outgoing[0].to_incoming(PartyIndex::new(1));
    let mut bad = from_b.clone();
    bad.payload.truncate(5);
    assert!(matches!(
        a.handle(&mut rng, bad),
        Err(Rejected::Malformed(_))
    ));
    let mut bad = from_b.clone();
    bad.payload.push(0);
    assert!(matches!(
        a.handle(&mut rng, bad),
        Err(Rejected::Malformed(_)) | Err(Rejected::Oversized { .. })
    ));
    let mut bad = from_b.clone();
    bad.payload = alloc::vec![msg::tags::R1_COMMIT; max_len(2, 1, false) + 1];
    assert!(matches!(
        a.handle(&mut rng, bad),
        Err(Rejected::Oversized { .. })
    ));
    let mut bad = from_b.clone();
    bad.round = 2;
    assert!(matches!(
        a.handle(&mut rng, bad),
        Err(Rejected::WrongRound { .. })
    ));
    // garbage decoders: never panic
    let mut g = ChaCha20Rng::seed_from_u64(9);
    for len in [0usize, 1, 2, 33, 100, 5000] {
        let mut bytes = alloc::vec![0u8; len];
        rand::RngCore::fill_bytes(&mut g, &mut bytes);
        for tag in 0x40..=0x44u8 {
            if let Some(first) = bytes.first_mut() {
                *first = tag;
            }
            let _ = Round1::from_bytes(&bytes);
            let _ = Round2::from_bytes(&bytes, 2);
            let _ = Round3Mod::from_bytes(&bytes, 2);
            let _ = Round3Fac::from_bytes(&bytes);
            let _ = Round4::from_bytes(&bytes, 2);
        }
    }
    // the honest exchange still completes
    let mut queue: Vec<(u16, Incoming)> = Vec::new();
    for o in sa.outgoing {
        queue.push((1, o.to_incoming(PartyIndex::new(0))));
    }
    queue.push((0, from_b));
    let mut outputs = 0;
    while let Some((to, msg)) = queue.pop() {
        let (party, from) = if to == 0 { (&mut a, 0) } else { (&mut b, 1) };
        let _ = from;
        let step = party.handle(&mut rng, msg).unwrap();
        for o in step.outgoing {
            let incoming = o.to_incoming(PartyIndex::new(to));
            queue.insert(0, (1 - to, incoming));
        }
        if let Some(outcome) = step.outcome {
            assert!(matches!(outcome, Outcome::Output(_)), "{outcome:?}");
            outputs += 1;
        }
    }
    assert_eq!(outputs, 2);
}

/// Real messages fit their caps, and every round's encodings round-trip.
#[test]
fn real_messages_round_trip_within_their_caps() {
    let m = 2;
    let report = run(m, &[], Vec::new());
    assert!(report.output(0).is_some());
    for msg in &report.sent[0] {
        let direct = matches!(msg.to, Recipient::One(_));
        assert!(
            msg.payload.len() <= max_len(usize::from(m), msg.round, direct),
            "round {} is {} bytes",
            msg.round,
            msg.payload.len()
        );
        match (msg.round, direct) {
            (1, _) => assert_eq!(
                Round1::from_bytes(&msg.payload).unwrap().to_bytes(),
                msg.payload
            ),
            (2, _) => assert_eq!(
                Round2::from_bytes(&msg.payload, 2).unwrap().to_bytes(),
                msg.payload
            ),
            (3, false) => assert_eq!(
                Round3Mod::from_bytes(&msg.payload, 2).unwrap().to_bytes(),
                msg.payload
            ),
            (3, true) => assert_eq!(
                Round3Fac::from_bytes(&msg.payload).unwrap().to_bytes(),
                msg.payload
            ),
            _ => assert_eq!(
                Round4::from_bytes(&msg.payload, 2).unwrap().to_bytes(),
                msg.payload
            ),
        }
    }
}
