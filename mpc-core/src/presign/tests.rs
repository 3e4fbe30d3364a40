//! Presigning and signing tests: honest runs for several (t, m), every signer subset of a
//! 3-of-5 key, HD paths, one misbehaviour per checklist item PRE-01..05 and SIG-02/03, and the
//! independent verifier (libsecp256k1 through the `secp256k1` crate).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::aux_info::dealt_for_tests;
use crate::dkg::{DkgConfig, DkgParty};
use crate::protocol::{Committee, Outcome, Protocol, Step};
use crate::sign::{combine, PartialSignature, SignError};
use crate::sim::Sim;

/// Runs a DKG (or, with `zero`, the zero-sharing run of a refresh) among m parties.
fn run_dkg(t: u16, m: u16, sid: &[u8], zero: bool, rng: &mut ChaCha20Rng) -> Vec<KeyShare> {
    let committee = Committee::standard(m).unwrap();
    let parties = (0..m)
        .map(|i| {
            let cfg = DkgConfig {
                session_id: sid.to_vec(),
                committee: committee.clone(),
                threshold: t,
                me: PartyIndex::new(i),
            };
            if zero {
                DkgParty::new_zero_sharing(cfg, rng).unwrap()
            } else {
                DkgParty::new(cfg, rng).unwrap()
            }
        })
        .collect();
    let report = Sim::new(parties).run(rng);
    report
        .outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            Some(Outcome::Output(k)) => k,
            other => panic!("dkg party {i}: {other:?}"),
        })
        .collect()
}

/// A t-of-m key from the DKG and dealt aux info for the same committee.
fn setup(t: u16, m: u16, seed: u64) -> (Vec<KeyShare>, Vec<Arc<AuxInfo>>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = run_dkg(t, m, b"presign-test-dkg", false, &mut rng);
    let aux = dealt_for_tests(m, b"presign-test-aux", &mut rng)
        .into_iter()
        .map(Arc::new)
        .collect();
    (keys, aux)
}

fn config(signers: &[u16], path: &str, sid: &[u8]) -> PresignConfig {
    PresignConfig {
        session_id: sid.to_vec(),
        key_id: b"key-1".to_vec(),
        epoch: 0,
        signers: signers.iter().map(|&s| PartyIndex::new(s)).collect(),
        path: path.parse().unwrap(),
    }
}

/// Runs the signers' parties with FIFO delivery; party i misbehaves as `bad` says.
fn run_presign(
    keys: &[KeyShare],
    aux: &[Arc<AuxInfo>],
    cfg_of: impl Fn(u16) -> PresignConfig,
    signers: &[u16],
    bad: Option<(u16, Misbehaviour)>,
    seed: u64,
) -> Vec<(u16, Outcome<Presignature>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut parties: Vec<(u16, PresignParty)> = signers
        .iter()
        .map(|&i| {
            let key = &keys[usize::from(i)];
            let aux = Arc::clone(&aux[usize::from(i)]);
            let p = match &bad {
                Some((b, f)) if *b == i => {
                    PresignParty::with_misbehaviour(cfg_of(i), key, aux, &mut rng, f.clone())
                }
                _ => PresignParty::new(cfg_of(i), key, aux, &mut rng),
            };
            (i, p.unwrap())
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut queue: VecDeque<(u16, Incoming)> = VecDeque::new();
    let route = |from: u16, step: Step<Presignature>, queue: &mut VecDeque<(u16, Incoming)>| {
        for o in step.outgoing {
            let to: Vec<u16> = match o.to {
                Recipient::All => signers.iter().copied().filter(|&s| s != from).collect(),
                Recipient::One(j) => vec![j.get()],
            };
            for t in to {
                queue.push_back((t, o.to_incoming(PartyIndex::new(from))));
            }
        }
        step.outcome
    };
    for (i, p) in parties.iter_mut() {
        let step = p.start(&mut rng).unwrap();
        if let Some(o) = route(*i, step, &mut queue) {
            outcomes.push((*i, o));
        }
    }
    let mut idle = 0;
    while let Some((to, msg)) = queue.pop_front() {
        let Some((_, p)) = parties.iter_mut().find(|(i, _)| *i == to) else {
            continue;
        };
        match p.current_round() {
            None => continue,
            Some(r) if r < msg.round => {
                queue.push_back((to, msg));
                idle += 1;
                if idle > queue.len() + 1 {
                    break;
                }
                continue;
            }
            _ => {}
        }
        idle = 0;
        let step = match p.handle(&mut rng, msg) {
            Ok(s) => s,
            Err(_) => continue,
        };
        if let Some(o) = route(to, step, &mut queue) {
            outcomes.push((to, o));
        }
    }
    // parties still waiting get their deadline
    for (i, p) in parties.iter_mut() {
        if let Some(round) = p.current_round() {
            if let Ok(step) = p.on_round_deadline(&mut rng, round) {
                if let Some(o) = step.outcome {
                    outcomes.push((*i, o));
                }
            }
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes
}

fn presignatures(outcomes: Vec<(u16, Outcome<Presignature>)>) -> Vec<Presignature> {
    outcomes
        .into_iter()
        .map(|(i, o)| match o {
            Outcome::Output(p) => p,
            Outcome::Abort(a) => panic!("party {i} aborted: {a:?}"),
        })
        .collect()
}

/// Signs `digest` with the presignatures and checks the result with k256 (inside `combine`)
/// and with libsecp256k1, including public-key recovery.
fn sign_and_verify(presigs: Vec<Presignature>, digest: &[u8; 32]) -> ProjectivePoint {
    let public = presigs[0].public().clone();
    for p in &presigs {
        assert_eq!(
            p.public(),
            &public,
            "every signer holds the same public values"
        );
    }
    let partials: Vec<PartialSignature> = presigs.into_iter().map(|p| p.sign(digest)).collect();
    let sig = combine(&public, digest, &partials).unwrap();
    assert!(!bool::from(sig.signature.s().is_high()), "low-s");
    // independent verifier: libsecp256k1
    let secp = secp256k1::Secp256k1::verification_only();
    let msg = secp256k1::Message::from_digest(*digest);
    let pk_bytes = public.public_key.to_affine().to_encoded_point(true);
    let pk = secp256k1::PublicKey::from_slice(pk_bytes.as_bytes()).unwrap();
    let compact = sig.signature.to_bytes();
    let s = secp256k1::ecdsa::Signature::from_compact(&compact).unwrap();
    secp.verify_ecdsa(&msg, &s, &pk).unwrap();
    let rid = secp256k1::ecdsa::RecoveryId::from_i32(i32::from(sig.recovery_id.to_byte())).unwrap();
    let rs = secp256k1::ecdsa::RecoverableSignature::from_compact(&compact, rid).unwrap();
    assert_eq!(
        secp.recover_ecdsa(&msg, &rs).unwrap(),
        pk,
        "recovery id is right"
    );
    public.public_key
}

use k256::elliptic_curve::group::Group;
use k256::elliptic_curve::scalar::IsHigh;
use k256::elliptic_curve::sec1::ToEncodedPoint;

const SID: &[u8] = b"presign-session-1";

#[test]
fn honest_2_of_3_presign_and_sign_verifies_with_libsecp256k1() {
    let (keys, aux) = setup(2, 3, 1);
    let out = run_presign(&keys, &aux, |_| config(&[0, 2], "m", SID), &[0, 2], None, 2);
    let presigs = presignatures(out);
    // a holder of the key recomputes the run's session digest (blame re-checks use it)
    for (p, i) in presigs.iter().zip([0usize, 2]) {
        let ssid = session_digest(&config(&[0, 2], "m", SID), &keys[i], &aux[i]).unwrap();
        assert_eq!(ssid, p.public().ssid);
    }
    let pk = sign_and_verify(presigs, &[7u8; 32]);
    assert_eq!(
        pk,
        *keys[0].public_key(),
        "root path signs with the DKG key"
    );
}

#[test]
fn one_of_one_signs_alone() {
    let (keys, aux) = setup(1, 1, 3);
    let out = run_presign(&keys, &aux, |_| config(&[0], "m", SID), &[0], None, 4);
    sign_and_verify(presignatures(out), &[9u8; 32]);
}

#[test]
fn hd_path_signs_for_the_derived_child_key() {
    let (keys, aux) = setup(2, 2, 5);
    let path = "m/0/7";
    let out = run_presign(
        &keys,
        &aux,
        |_| config(&[0, 1], path, SID),
        &[0, 1],
        None,
        6,
    );
    let pk = sign_and_verify(presignatures(out), &[1u8; 32]);
    let (child, _) = derive_shift(
        keys[0].public_key(),
        &ChainCode(*keys[0].chain_code()),
        &path.parse().unwrap(),
    )
    .unwrap();
    assert_eq!(pk, child);
    assert_ne!(pk, *keys[0].public_key());
}

/// Every 3-signer subset of a 3-of-5 key signs (two subsets at a time, one per core).
#[test]
fn every_subset_of_a_3_of_5_key_signs() {
    let (keys, aux) = setup(3, 5, 7);
    let mut subsets = Vec::new();
    for a in 0..5u16 {
        for b in a + 1..5 {
            for c in b + 1..5 {
                subsets.push([a, b, c]);
            }
        }
    }
    assert_eq!(subsets.len(), 10);
    std::thread::scope(|scope| {
        for half in subsets.chunks(5) {
            let (keys, aux) = (&keys, &aux);
            scope.spawn(move || {
                for s in half {
                    let seed = u64::from(s[0] * 25 + s[1] * 5 + s[2]);
                    let out = run_presign(keys, aux, |_| config(s, "m/1", SID), s, None, seed);
                    sign_and_verify(presignatures(out), &[s[2] as u8; 32]);
                }
            });
        }
    });
}

#[test]
fn fewer_or_more_than_t_signers_are_refused_at_setup() {
    let (keys, aux) = setup(2, 3, 8);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for signers in [&[0u16][..], &[0, 1, 2]] {
        assert_eq!(
            PresignParty::new(
                config(signers, "m", SID),
                &keys[0],
                Arc::clone(&aux[0]),
                &mut rng
            )
            .err(),
            Some(PresignSetupError::SignerCount {
                got: signers.len(),
                t: 2
            })
        );
    }
    for signers in [[1u16, 2], [1, 0]] {
        assert_eq!(
            PresignParty::new(
                config(&signers, "m", SID),
                &keys[0],
                Arc::clone(&aux[0]),
                &mut rng
            )
            .err(),
            Some(PresignSetupError::SignerSet)
        );
    }
    assert_eq!(
        PresignParty::new(
            config(&[0, 1], "m", SID),
            &keys[0],
            Arc::clone(&aux[1]),
            &mut rng
        )
        .err(),
        Some(PresignSetupError::AuxMismatch)
    );
}

/// Runs a 2-of-2 presign where party 1 misbehaves; returns both parties' aborts.
fn aborts(bad: Misbehaviour, seed: u64) -> (Abort, Option<Abort>) {
    let (keys, aux) = setup(2, 2, seed);
    let cfg = |_| config(&[0, 1], "m", SID);
    let out = run_presign(&keys, &aux, cfg, &[0, 1], Some((1, bad)), seed);
    let mut honest = None;
    let mut cheater = None;
    for (i, o) in out {
        match (i, o) {
            (0, Outcome::Abort(a)) => honest = Some(a),
            (0, Outcome::Output(_)) => panic!("the honest party finished"),
            (_, Outcome::Abort(a)) => cheater = Some(a),
            _ => {}
        }
    }
    (honest.expect("the honest party ended"), cheater)
}

/// Runs a 2-of-2 presign where party 1 misbehaves; returns party 0's abort.
fn abort_of_honest(bad: Misbehaviour, seed: u64) -> Abort {
    aborts(bad, seed).0
}

fn assert_proof_blamed(abort: &Abort, proof: &str) {
    assert_eq!(abort.culprits, vec![PartyIndex::new(1)]);
    match &abort.reason {
        AbortReason::InvalidProof { proof: p, .. } => assert_eq!(*p, proof),
        other => panic!("expected {proof} to fail, got {other:?}"),
    }
    assert!(matches!(abort.evidence, Evidence::Payload { .. }));
}

/// PRE-01: a K_i that is not what A_i commits to has no valid Πenc-elg; it is refused before
/// any homomorphic use and its sender named.
#[test]
fn pre_01_unproven_k_is_blamed_before_use() {
    let abort = abort_of_honest(
        Misbehaviour {
            k_not_committed: true,
            ..Misbehaviour::default()
        },
        11,
    );
    assert_eq!(abort.round, 1);
    assert_proof_blamed(&abort, "Πenc-elg (Fig. 24)");
}

/// PRE-05: K_i = 0 is not a unit: refused without panic, sender named.
#[test]
fn pre_05_zero_ciphertext_is_blamed() {
    let abort = abort_of_honest(
        Misbehaviour {
            zero_ciphertext: true,
            ..Misbehaviour::default()
        },
        12,
    );
    assert_eq!(abort.culprits, vec![PartyIndex::new(1)]);
    assert_eq!(abort.reason, AbortReason::InvalidCiphertext);
}

/// PRE-03: Γ_i that does not open B_i fails Πelog.
#[test]
fn pre_03_gamma_not_committed_is_blamed() {
    let abort = abort_of_honest(
        Misbehaviour {
            gamma_not_committed: true,
            ..Misbehaviour::default()
        },
        13,
    );
    assert_proof_blamed(&abort, "Πelog (Fig. 23)");
}

/// PRE-02: an affine operation with another multiplier than Γ_i fails Πaff-g.
#[test]
fn pre_02_affine_operation_with_other_gamma_is_blamed() {
    let abort = abort_of_honest(
        Misbehaviour {
            d_with_other_gamma: true,
            ..Misbehaviour::default()
        },
        14,
    );
    assert_proof_blamed(&abort, "Πaff-g (Fig. 25)");
}

/// PRE-04: a wrong δ_i fails δ·G = Σ Δ_j; the identification round (Fig. 9) names exactly
/// the cheater: its Πdec shows δ_i is not what its ciphertexts decrypt to.
#[test]
fn pre_04_wrong_delta_is_identified() {
    let (abort, cheater) = aborts(
        Misbehaviour {
            delta_off_by_one: true,
            ..Misbehaviour::default()
        },
        15,
    );
    assert_eq!(abort.round, 4);
    assert_proof_blamed(&abort, "Πdec (Fig. 28)");
    // the honest party's identification material verifies: the cheater's own run, which
    // checks it with the same code, finds nobody to blame
    let cheater = cheater.expect("the cheater ends too");
    assert!(cheater.culprits.is_empty(), "{cheater:?}");
}

/// PRE-04: a wrong S_i = χ_i·Γ fails Σ S_j = δ·X; identification names the cheater.
#[test]
fn pre_04_wrong_chi_is_identified() {
    let (abort, cheater) = aborts(
        Misbehaviour {
            chi_off_by_one: true,
            ..Misbehaviour::default()
        },
        16,
    );
    assert_eq!(abort.round, 4);
    assert_proof_blamed(&abort, "Πdec (Fig. 28)");
    let cheater = cheater.expect("the cheater ends too");
    assert!(cheater.culprits.is_empty(), "{cheater:?}");
}

/// SIG-02 / PRE-06 binding: parties that disagree on the derivation path do not produce a
/// presignature (every proof is bound to the path through the session digest).
#[test]
fn sig_02_parties_with_different_paths_do_not_presign() {
    let (keys, aux) = setup(2, 2, 16);
    let out = run_presign(
        &keys,
        &aux,
        |i| config(&[0, 1], if i == 0 { "m/0" } else { "m/1" }, SID),
        &[0, 1],
        None,
        16,
    );
    assert!(out.iter().all(|(_, o)| matches!(o, Outcome::Abort(_))));
}

/// SIG-03: a wrong partial signature is named before combining; a partial of another
/// presignature is refused.
#[test]
fn sig_03_partial_signatures_are_checked_before_combining() {
    let (keys, aux) = setup(2, 3, 17);
    let out = run_presign(
        &keys,
        &aux,
        |_| config(&[1, 2], "m", SID),
        &[1, 2],
        None,
        18,
    );
    let presigs = presignatures(out);
    let public = presigs[0].public().clone();
    let digest = [3u8; 32];
    let mut partials: Vec<PartialSignature> =
        presigs.into_iter().map(|p| p.sign(&digest)).collect();
    let good = partials.clone();
    partials[1].sigma += Scalar::ONE;
    assert_eq!(
        combine(&public, &digest, &partials),
        Err(SignError::InvalidPartial(PartyIndex::new(2)))
    );
    let mut other = good.clone();
    other[0].transcript[0] ^= 1;
    assert_eq!(
        combine(&public, &digest, &other),
        Err(SignError::TranscriptMismatch(PartyIndex::new(1)))
    );
    assert_eq!(
        combine(&public, &digest, &good[..1]),
        Err(SignError::SignerSet)
    );
    let dup = [good[0].clone(), good[0].clone()];
    assert_eq!(combine(&public, &digest, &dup), Err(SignError::SignerSet));
    // a partial for another digest does not combine into a signature for this one
    assert!(combine(&public, &[4u8; 32], &good).is_err());
    assert!(combine(&public, &digest, &good).is_ok());
    // wire encoding round-trips and refuses garbage
    let bytes = good[0].to_bytes();
    assert_eq!(PartialSignature::from_bytes(&bytes).unwrap(), good[0]);
    assert!(PartialSignature::from_bytes(&bytes[..bytes.len() - 1]).is_err());
}

/// Every message of an honest run fits its cap and round-trips; garbage never panics.
#[test]
fn messages_round_trip_within_caps_and_garbage_is_refused() {
    let (keys, aux) = setup(2, 2, 19);
    let mut rng = ChaCha20Rng::seed_from_u64(20);
    let mut a = PresignParty::new(
        config(&[0, 1], "m", SID),
        &keys[0],
        Arc::clone(&aux[0]),
        &mut rng,
    )
    .unwrap();
    let step = a.start(&mut rng).unwrap();
    for o in &step.outgoing {
        let direct = matches!(o.to, Recipient::One(_));
        assert!(o.payload.len() <= max_len(2, 1, direct));
        if direct {
            assert_eq!(
                Round1Direct::from_bytes(&o.payload).unwrap().to_bytes(),
                o.payload
            );
        } else {
            assert_eq!(
                Round1Broadcast::from_bytes(&o.payload).unwrap().to_bytes(),
                o.payload
            );
        }
    }
    let mut g = ChaCha20Rng::seed_from_u64(21);
    for len in [0usize, 1, 40, 300, 3000] {
        let mut bytes = alloc::vec![0u8; len];
        rand::RngCore::fill_bytes(&mut g, &mut bytes);
        for tag in 0x50..=0x54u8 {
            if let Some(f) = bytes.first_mut() {
                *f = tag;
            }
            let _ = Round1Broadcast::from_bytes(&bytes);
            let _ = Round1Direct::from_bytes(&bytes);
            let _ = Round2Broadcast::from_bytes(&bytes, 2);
            let _ = Round2Direct::from_bytes(&bytes);
            let _ = Round3Broadcast::from_bytes(&bytes, 2);
            let _ = PartialSignature::from_bytes(&bytes);
        }
    }
    // a malformed round-1 message is refused and changes nothing
    let mut b = PresignParty::new(
        config(&[0, 1], "m", SID),
        &keys[1],
        Arc::clone(&aux[1]),
        &mut rng,
    )
    .unwrap();
    let _ = b.start(&mut rng).unwrap();
    let mut bad = step.outgoing[0].to_incoming(PartyIndex::new(0));
    bad.payload.truncate(10);
    assert!(matches!(
        b.handle(&mut rng, bad),
        Err(Rejected::Malformed(_))
    ));
    assert_eq!(b.current_round(), Some(1));
}

/// REF-01: a refresh (zero-sharing run added to every share) keeps the public key and chain
/// code, changes every share, moves to epoch 1, and the refreshed shares presign and sign.
/// REF-03: a presignature of epoch 0 is refused afterwards, and presigning for a stale epoch is
/// refused at setup.
#[test]
fn ref_01_ref_03_refresh_keeps_the_key_and_retires_old_presignatures() {
    let (keys, aux) = setup(2, 3, 30);
    let out = run_presign(
        &keys,
        &aux,
        |_| config(&[0, 1], "m", SID),
        &[0, 1],
        None,
        31,
    );
    let old_presigs = presignatures(out);
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    let zero = run_dkg(2, 3, b"refresh-epoch-1", true, &mut rng);
    assert!(bool::from(zero[0].public_key().is_identity()));
    let refreshed: Vec<KeyShare> = keys
        .iter()
        .zip(&zero)
        .map(|(k, z)| k.refresh(z).unwrap())
        .collect();
    for (old, new) in keys.iter().zip(&refreshed) {
        assert_eq!(new.public_key(), old.public_key());
        assert_eq!(new.chain_code(), old.chain_code());
        assert_ne!(*new.secret_share(), *old.secret_share());
        assert_eq!(new.epoch(), 1);
        new.validate().unwrap();
    }
    // a normal DKG output is not a zero sharing; another party's is refused
    assert_eq!(
        keys[0].refresh(&keys[0]).err(),
        Some(crate::dkg::RefreshError::NonZeroSharing)
    );
    assert_eq!(
        keys[0].refresh(&zero[1]).err(),
        Some(crate::dkg::RefreshError::Mismatch)
    );
    // REF-03: old presignatures are refused at the new epoch (accepted at their own)
    let digest = [5u8; 32];
    let mut old = old_presigs.into_iter();
    let first = old.next().unwrap();
    assert_eq!(
        first.sign_at_epoch(1, &digest),
        Err(SignError::StaleEpoch {
            presignature: 0,
            current: 1
        })
    );
    assert!(old.next().unwrap().sign_at_epoch(0, &digest).is_ok());
    // presigning with the refreshed shares needs the new epoch
    let mut stale = config(&[0, 1], "m", SID);
    stale.epoch = 0;
    assert_eq!(
        PresignParty::new(stale, &refreshed[0], Arc::clone(&aux[0]), &mut rng).err(),
        Some(PresignSetupError::Epoch { got: 0, current: 1 })
    );
    let fresh = |_| {
        let mut c = config(&[0, 2], "m/9", b"presign-after-refresh");
        c.epoch = 1;
        c
    };
    let out = run_presign(&refreshed, &aux, fresh, &[0, 2], None, 33);
    let pk = sign_and_verify(presignatures(out), &digest);
    assert_ne!(pk, *keys[0].public_key(), "m/9 is a child key");
}

/// REF-01: a refresh dealer whose constant term is not zero is named and the run aborts.
#[test]
fn ref_01_non_zero_refresh_dealer_is_blamed() {
    let mut rng = ChaCha20Rng::seed_from_u64(34);
    let committee = Committee::standard(3).unwrap();
    let parties = (0..3u16)
        .map(|i| {
            let cfg = DkgConfig {
                session_id: b"refresh-bad".to_vec(),
                committee: committee.clone(),
                threshold: 2,
                me: PartyIndex::new(i),
            };
            if i == 2 {
                DkgParty::zero_sharing_with_misbehaviour(
                    cfg,
                    &mut rng,
                    crate::dkg::Misbehaviour {
                        constant_term: Some(Scalar::ONE),
                        ..Default::default()
                    },
                )
                .unwrap()
            } else {
                DkgParty::new_zero_sharing(cfg, &mut rng).unwrap()
            }
        })
        .collect();
    let report = Sim::new(parties).run(&mut rng);
    for i in 0..2 {
        let abort = report.abort(i).expect("honest parties abort");
        assert_eq!(abort.culprits, vec![PartyIndex::new(2)]);
        assert_eq!(abort.reason, AbortReason::NonZeroRefresh);
    }
}

/// A 4-of-7 key presigns and signs (the largest honest size of the issue).
#[test]
fn honest_4_of_7_presign_and_sign() {
    let (keys, aux) = setup(4, 7, 35);
    let out = run_presign(
        &keys,
        &aux,
        |_| config(&[1, 3, 4, 6], "m/2", SID),
        &[1, 3, 4, 6],
        None,
        36,
    );
    sign_and_verify(presignatures(out), &[6u8; 32]);
}
