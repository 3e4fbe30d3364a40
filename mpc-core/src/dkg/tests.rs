//! DKG tests: honest runs, one misbehaviour test per checklist item DKG-01..07, and the
//! harness faults (drop, delay, corrupt, replay, equivocate).

use alloc::vec::Vec;

use k256::elliptic_curve::Field;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::encoding::DecodeError;
use crate::protocol::Echo;
use crate::protocol::{Outcome, Protocol};
use crate::sim::{Fault, Report, Select, Sim};
use crate::vss::interpolate_at_zero;

const SID: &[u8] = b"dkg-test-session";

fn config(sid: &[u8], t: u16, m: u16, i: u16) -> DkgConfig {
    DkgConfig {
        session_id: sid.to_vec(),
        committee: Committee::standard(m).unwrap(),
        threshold: t,
        me: PartyIndex::new(i),
    }
}

/// Parties of one session; party i draws from its own RNG seeded `seed + i`, so a party's
/// polynomial is the same in two sessions with the same seed.
fn parties_in(sid: &[u8], t: u16, m: u16, seed: u64, bad: &[(u16, Misbehaviour)]) -> Vec<DkgParty> {
    (0..m)
        .map(|i| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed + u64::from(i));
            let cfg = config(sid, t, m, i);
            match bad.iter().find(|(j, _)| *j == i) {
                Some((_, f)) => DkgParty::with_misbehaviour(cfg, &mut rng, f.clone()).unwrap(),
                None => DkgParty::new(cfg, &mut rng).unwrap(),
            }
        })
        .collect()
}

fn run_with(
    t: u16,
    m: u16,
    seed: u64,
    bad: &[(u16, Misbehaviour)],
    faults: Vec<Fault>,
) -> Report<KeyShare> {
    let mut sim = Sim::new(parties_in(SID, t, m, seed, bad));
    for f in faults {
        sim = sim.fault(f);
    }
    sim.run(&mut ChaCha20Rng::seed_from_u64(seed ^ 0xD1CE))
}

fn p(i: u16) -> PartyIndex {
    PartyIndex::new(i)
}

/// Every honest party finished with the same public data and QUAL = `qual`; each share is
/// valid; t shares of honest parties interpolate to the secret of Y.
fn assert_consistent(report: &Report<KeyShare>, honest: &[u16], t: u16, qual: &[u16]) {
    let outs: Vec<&KeyShare> = honest
        .iter()
        .map(|i| {
            report
                .output(*i)
                .unwrap_or_else(|| panic!("party {i} did not finish: {:?}", report.abort(*i)))
        })
        .collect();
    let first = outs[0];
    let qual: Vec<PartyIndex> = qual.iter().map(|i| p(*i)).collect();
    for (k, o) in outs.iter().enumerate() {
        assert_eq!(o.me(), p(honest[k]));
        assert_eq!(o.public_key(), first.public_key());
        assert_eq!(o.chain_code(), first.chain_code());
        assert_eq!(o.public_shares(), first.public_shares());
        assert_eq!(o.qual(), &qual[..]);
        assert_eq!(o.threshold(), t);
        o.validate().unwrap();
        assert_eq!(
            ProjectivePoint::GENERATOR * o.secret_share(),
            o.public_shares()[o.me().as_usize()]
        );
    }
    let t = usize::from(t);
    // every t-subset of the honest parties (all C(n, t) of them: n ≤ 7 here)
    let subsets: Vec<Vec<&KeyShare>> = (0u32..1 << outs.len())
        .filter(|mask| mask.count_ones() as usize == t)
        .map(|mask| {
            (0..outs.len())
                .filter(|k| mask & (1 << k) != 0)
                .map(|k| outs[k])
                .collect()
        })
        .collect();
    assert!(outs.len() < t || !subsets.is_empty());
    {
        for window in &subsets {
            let points: Vec<Scalar> = window
                .iter()
                .map(|o| *o.committee().point(o.me()).unwrap())
                .collect();
            let values: Vec<Scalar> = window.iter().map(|o| *o.secret_share()).collect();
            let secret = interpolate_at_zero(&points, &values).unwrap();
            assert_eq!(ProjectivePoint::GENERATOR * *secret, *first.public_key());
            // and the App. F.1 conversion gives the same
            let signers: Vec<PartyIndex> = window.iter().map(|o| o.me()).collect();
            let sum = window.iter().fold(Scalar::ZERO, |acc, o| {
                acc + o.lagrange_in(&signers, o.me()).unwrap() * o.secret_share()
            });
            assert_eq!(sum, *secret);
        }
    }
}

/// Every party in `honest` aborted naming exactly `culprits`, for `reason` if given.
fn assert_aborts(
    report: &Report<KeyShare>,
    honest: &[u16],
    culprits: &[u16],
    reason: Option<AbortReason>,
) {
    let culprits: Vec<PartyIndex> = culprits.iter().map(|i| p(*i)).collect();
    for i in honest {
        let a = report
            .abort(*i)
            .unwrap_or_else(|| panic!("party {i} did not abort"));
        assert_eq!(a.culprits, culprits, "party {i}: {a:?}");
        if let Some(r) = &reason {
            assert_eq!(&a.reason, r, "party {i}: {a:?}");
        }
    }
}

#[test]
fn honest_runs_agree_for_all_sizes() {
    for (t, m) in [(1, 1), (2, 2), (2, 3), (3, 5), (4, 7)] {
        let report = run_with(t, m, 100 + u64::from(m), &[], Vec::new());
        let all: Vec<u16> = (0..m).collect();
        assert_consistent(&report, &all, t, &all);
        assert_eq!(report.deadlines, 0, "(t, m) = ({t}, {m})");
        assert!(
            report.rejections.iter().all(Vec::is_empty),
            "(t, m) = ({t}, {m})"
        );
    }
}

#[test]
fn honest_run_with_shuffled_delivery_agrees() {
    let sim = Sim::new(parties_in(SID, 3, 5, 7, &[])).shuffled();
    let report = sim.run(&mut ChaCha20Rng::seed_from_u64(99));
    assert_consistent(&report, &[0, 1, 2, 3, 4], 3, &[0, 1, 2, 3, 4]);
}

#[test]
fn different_sessions_give_different_keys_and_chain_codes() {
    let a =
        Sim::new(parties_in(b"session-a", 2, 3, 1, &[])).run(&mut ChaCha20Rng::seed_from_u64(1));
    let b =
        Sim::new(parties_in(b"session-b", 2, 3, 2, &[])).run(&mut ChaCha20Rng::seed_from_u64(1));
    let (a, b) = (a.output(0).unwrap(), b.output(0).unwrap());
    assert_ne!(a.public_key(), b.public_key());
    assert_ne!(a.chain_code(), b.chain_code());
}

#[test]
fn key_share_debug_redacts_the_secret_and_validate_catches_tampering() {
    let mut report = run_with(2, 3, 5, &[], Vec::new());
    let Some(Some(Outcome::Output(mut share))) = report.outcomes.pop() else {
        panic!("no output")
    };
    let dbg = alloc::format!("{share:?}");
    assert!(!dbg.contains("secret_share"));
    assert!(!dbg.contains(&alloc::format!("{:?}", share.secret_share())));
    let direct = Round2Share {
        s: Zeroizing::new(*share.secret_share()),
        s_prime: Zeroizing::new(Scalar::ONE),
    };
    assert_eq!(alloc::format!("{direct:?}"), "Round2Share(<redacted>)");
    let evidence = Evidence::Payload {
        from: p(1),
        round: 2,
        bytes: direct.to_bytes(),
    };
    assert_eq!(
        alloc::format!("{evidence:?}"),
        "Payload { from: PartyIndex(1), round: 2, len: 65 }"
    );
    share.public_shares[0] += ProjectivePoint::GENERATOR;
    assert_eq!(share.validate(), Err(KeyShareError::PublicShares));
    share.public_shares[0] -= ProjectivePoint::GENERATOR;
    share.validate().unwrap();
    *share.secret_share += Scalar::ONE;
    assert_eq!(share.validate(), Err(KeyShareError::SecretShare));
}

/// Delivers messages by hand (FIFO, each held until its receiver reaches its round), calling
/// `before` ahead of every delivery; returns the outcomes and the refused deliveries.
#[allow(clippy::type_complexity)]
fn drive(
    parties: &mut [DkgParty],
    rng: &mut ChaCha20Rng,
    mut before: impl FnMut(u16, &mut DkgParty, &Incoming, &mut ChaCha20Rng),
) -> (Vec<Option<Outcome<KeyShare>>>, Vec<(u16, Rejected)>) {
    let m = parties.len() as u16;
    let mut queue: Vec<(u16, Incoming)> = Vec::new();
    let push = |queue: &mut Vec<(u16, Incoming)>, from: u16, out: Outgoing| match out.to {
        Recipient::All => {
            for r in (0..m).filter(|r| *r != from) {
                queue.push((r, out.to_incoming(p(from))));
            }
        }
        Recipient::One(r) => queue.push((r.get(), out.to_incoming(p(from)))),
    };
    let mut outcomes: Vec<Option<Outcome<KeyShare>>> = (0..m).map(|_| None).collect();
    let mut refused = Vec::new();
    for (i, party) in parties.iter_mut().enumerate() {
        let step = party.start(rng).unwrap();
        for o in step.outgoing {
            push(&mut queue, i as u16, o);
        }
    }
    while let Some(k) = queue.iter().position(|(to, msg)| {
        parties[usize::from(*to)]
            .current_round()
            .is_some_and(|r| msg.round <= r)
    }) {
        let (to, msg) = queue.remove(k);
        let party = &mut parties[usize::from(to)];
        before(to, party, &msg, rng);
        match party.handle(rng, msg) {
            Ok(step) => {
                for o in step.outgoing {
                    push(&mut queue, to, o);
                }
                if let Some(oc) = step.outcome {
                    outcomes[usize::from(to)] = Some(oc);
                }
            }
            Err(e) => refused.push((to, e)),
        }
    }
    (outcomes, refused)
}

// ---------------------------------------------------------------- DKG-01

/// DKG-01: a dealer committing to t + 1 Pedersen values (degree t) is refused by every
/// receiver's decoder (size cap or exact count), disqualified at the deadline, and the others
/// finish with threshold t.
#[test]
fn dkg_01_t_plus_1_commitments_are_rejected_and_dealer_disqualified() {
    let bad = Misbehaviour {
        extra_coefficient: true,
        ..Misbehaviour::default()
    };
    let report = run_with(2, 4, 11, &[(1, bad)], Vec::new());
    for i in [0u16, 2, 3] {
        assert!(
            report.rejections[usize::from(i)]
                .iter()
                .any(|(m, e)| m.from == p(1)
                    && m.round == 2
                    && matches!(
                        e,
                        Rejected::Oversized { .. }
                            | Rejected::Malformed(DecodeError::WrongCount { .. })
                    )),
            "party {i}: {:?}",
            report.rejections[usize::from(i)]
        );
    }
    assert_consistent(&report, &[0, 2, 3], 2, &[0, 2, 3]);
}

/// DKG-01 at the decoder: exactly t entries, whatever the cap.
#[test]
fn dkg_01_decoder_requires_exactly_t_commitments() {
    let shape = Shape { m: 3, t: 2 };
    let reveal = |n: usize| Round2Reveal {
        echo: Echo(alloc::vec![[0u8; 32]; 3]),
        pedersen: alloc::vec![ProjectivePoint::GENERATOR; n],
        rid: [1; 32],
        chain_code: [2; 32],
        nonce: [3; 32],
    };
    assert!(Round2Reveal::from_bytes(&reveal(2).to_bytes(), &shape).is_ok());
    for n in [1usize, 3] {
        assert_eq!(
            Round2Reveal::from_bytes(&reveal(n).to_bytes(), &shape),
            Err(DecodeError::WrongCount {
                field: "C_ik",
                got: n,
                expected: 2
            })
        );
    }
    let feldman = |n: usize| Round5Feldman {
        echo: Echo(alloc::vec![[0u8; 32]; 3]),
        feldman: alloc::vec![ProjectivePoint::GENERATOR; n],
        proof: SchProof {
            a: ProjectivePoint::GENERATOR,
            z: Scalar::ONE,
        },
    };
    assert!(Round5Feldman::from_bytes(&feldman(2).to_bytes(), &shape).is_ok());
    assert!(Round5Feldman::from_bytes(&feldman(3).to_bytes(), &shape).is_err());
}

// ---------------------------------------------------------------- DKG-02

fn bad_share_to(targets: &[u16]) -> Misbehaviour {
    Misbehaviour {
        bad_share_to: targets.iter().map(|i| p(*i)).collect(),
        ..Misbehaviour::default()
    }
}

/// DKG-02: a bad share draws a complaint; the dealer answers it correctly in public, stays
/// in QUAL, and the complainer uses the answered share.
#[test]
fn dkg_02_bad_share_is_complained_and_a_correct_answer_keeps_the_dealer() {
    let report = run_with(3, 5, 21, &[(1, bad_share_to(&[0]))], Vec::new());
    assert_consistent(&report, &[0, 1, 2, 3, 4], 3, &[0, 1, 2, 3, 4]);
}

/// DKG-02: a bad share answered with another bad share disqualifies the dealer.
#[test]
fn dkg_02_bad_share_with_wrong_answer_disqualifies_the_dealer() {
    let mut bad = bad_share_to(&[0]);
    bad.wrong_answers = true;
    let report = run_with(3, 5, 22, &[(1, bad)], Vec::new());
    assert_consistent(&report, &[0, 2, 3, 4], 3, &[0, 2, 3, 4]);
}

/// DKG-02: a complaint left unanswered (the dealer is silent in round 4) disqualifies it.
#[test]
fn dkg_02_unanswered_complaint_disqualifies_the_dealer() {
    let report = run_with(
        2,
        4,
        23,
        &[(1, bad_share_to(&[2]))],
        alloc::vec![Fault::drop(1, 4)],
    );
    assert_consistent(&report, &[0, 2, 3], 2, &[0, 2, 3]);
}

/// DKG-02 / GJKR 1c: t or more complaints disqualify the dealer even if it answers them.
#[test]
fn dkg_02_t_complaints_disqualify_the_dealer() {
    let report = run_with(2, 4, 24, &[(3, bad_share_to(&[0, 1]))], Vec::new());
    assert_consistent(&report, &[0, 1, 2], 2, &[0, 1, 2]);
}

/// DKG-02 with the share's other half: a direct share that does not even decode counts as
/// missing, draws a complaint, and the public answer resolves it.
#[test]
fn dkg_02_garbled_direct_share_is_complained_and_answered() {
    let garble = |b: &mut Vec<u8>| b.truncate(10);
    let fault = Fault::corrupt(2, 2, garble).to(&[0]).only(Select::Direct);
    let report = run_with(2, 3, 25, &[], alloc::vec![fault]);
    assert_consistent(&report, &[0, 1, 2], 2, &[0, 1, 2]);
    assert!(report.rejections[0]
        .iter()
        .any(|(_, e)| matches!(e, Rejected::Malformed(_))));
}

/// DKG-02 / GJKR 4b: Feldman values that do not match the shares are blamed on the dealer
/// with the complainers' shares as public evidence.
#[test]
fn dkg_02_feldman_values_not_matching_the_shares_abort_naming_the_dealer() {
    let bad = Misbehaviour {
        feldman_mismatch: true,
        ..Misbehaviour::default()
    };
    let report = run_with(2, 3, 26, &[(2, bad)], Vec::new());
    assert_aborts(&report, &[0, 1], &[2], Some(AbortReason::FeldmanMismatch));
}

/// A Feldman complaint that its own share refutes is blamed on the complainer.
#[test]
fn false_feldman_complaint_is_blamed_on_the_complainer() {
    let bad = Misbehaviour {
        false_feldman_complaint: Some(p(0)),
        ..Misbehaviour::default()
    };
    let report = run_with(2, 4, 27, &[(1, bad)], Vec::new());
    assert_aborts(&report, &[0, 2, 3], &[1], Some(AbortReason::FalseComplaint));
}

// ---------------------------------------------------------------- DKG-03

/// Offset of Πsch (A ‖ z) at the end of a round-5 message.
const SCH_BYTES: usize = 33 + 32;

/// DKG-03: a dealer replays its Πsch from another session (same polynomial, same A_i0):
/// it fails under this session's (session id, ρ) and the dealer is named.
#[test]
fn dkg_03_schnorr_proof_replayed_from_another_session_is_rejected() {
    let (t, m, seed) = (2, 3, 31);
    let old = Sim::new(parties_in(b"old-session", t, m, seed, &[]))
        .run(&mut ChaCha20Rng::seed_from_u64(1));
    let old_r5 = old.sent[1]
        .iter()
        .find(|o| o.round == 5)
        .unwrap()
        .payload
        .clone();
    let old_proof = old_r5[old_r5.len() - SCH_BYTES..].to_vec();
    // the honest run of the new session for reference: same A_10, different proof
    let new = Sim::new(parties_in(SID, t, m, seed, &[])).run(&mut ChaCha20Rng::seed_from_u64(1));
    let new_r5 = &new.sent[1].iter().find(|o| o.round == 5).unwrap().payload;
    let a10 = Echo::encoded_len(3) + 1 + 2;
    assert_eq!(old_r5[a10..a10 + 33], new_r5[a10..a10 + 33], "same A_10");
    assert_consistent(&new, &[0, 1, 2], t, &[0, 1, 2]);

    let replay = move |b: &mut Vec<u8>| {
        let n = b.len();
        b[n - SCH_BYTES..].copy_from_slice(&old_proof);
    };
    let report = run_with(t, m, seed, &[], alloc::vec![Fault::corrupt(1, 5, replay)]);
    assert_aborts(
        &report,
        &[0, 2],
        &[1],
        Some(AbortReason::InvalidSchnorrProof),
    );
}

// ---------------------------------------------------------------- DKG-04

/// DKG-04: a party outside the committee map cannot be created, messages from indices
/// outside it are refused, and the map itself refuses zero and repeated points
/// (`protocol::tests::dkg_04_committee_refuses_zero_and_repeated_points`).
#[test]
fn dkg_04_indices_outside_the_committee_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    assert_eq!(
        DkgParty::new(config(SID, 2, 3, 3), &mut rng).unwrap_err(),
        DkgSetupError::NotInCommittee(p(3))
    );
    assert!(matches!(
        DkgParty::new(config(SID, 4, 3, 0), &mut rng),
        Err(DkgSetupError::Threshold { t: 4, m: 3 })
    ));
    assert!(matches!(
        DkgParty::new(config(SID, 0, 3, 0), &mut rng),
        Err(DkgSetupError::Threshold { .. })
    ));
    assert!(matches!(
        DkgParty::new(config(b"", 2, 3, 0), &mut rng),
        Err(DkgSetupError::SessionId(0))
    ));
    let mut party = DkgParty::new(config(SID, 2, 3, 0), &mut rng).unwrap();
    let _ = party.start(&mut rng).unwrap();
    let msg = Incoming {
        round: 1,
        from: p(7),
        to: Recipient::All,
        payload: Round1 {
            commitment: [0; 32],
        }
        .to_bytes(),
    };
    assert_eq!(
        party.handle(&mut rng, msg).unwrap_err(),
        Rejected::UnknownSender(p(7))
    );
}

/// A deadline for a round other than the current one is refused and changes nothing: a late
/// timer cannot cut the next round short.
#[test]
fn deadline_for_another_round_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let mut party = DkgParty::new(config(SID, 2, 3, 0), &mut rng).unwrap();
    assert_eq!(
        party.on_round_deadline(&mut rng, 1).unwrap_err(),
        Rejected::NotStarted
    );
    let _ = party.start(&mut rng).unwrap();
    for round in [0, 2, 6] {
        assert_eq!(
            party.on_round_deadline(&mut rng, round).unwrap_err(),
            Rejected::WrongRound {
                expected: 1,
                got: round
            }
        );
    }
    assert_eq!(party.current_round(), Some(1));
    assert!(party.disqualified().iter().all(Option::is_none));
    // the real deadline of round 1 disqualifies both silent parties; one party is fewer than
    // t = 2, so the run ends there, naming them
    let step = party.on_round_deadline(&mut rng, 1).unwrap();
    assert_eq!(
        party.disqualified(),
        &[
            None,
            Some(Disqualification::Missing { round: 1 }),
            Some(Disqualification::Missing { round: 1 })
        ]
    );
    match step.outcome {
        Some(Outcome::Abort(a)) => {
            assert_eq!(a.culprits, alloc::vec![p(1), p(2)]);
            assert_eq!(a.reason, AbortReason::TooFewQualified);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(party.current_round(), None);
}

// ---------------------------------------------------------------- DKG-05

/// DKG-05: a dealer whose secret is zero (A_i0 = O) is named.
#[test]
fn dkg_05_zero_secret_dealer_is_blamed() {
    let bad = Misbehaviour {
        constant_term: Some(Scalar::ZERO),
        ..Misbehaviour::default()
    };
    let report = run_with(2, 3, 51, &[(1, bad)], Vec::new());
    assert_aborts(&report, &[0, 2], &[1], Some(AbortReason::ZeroSecret));
}

/// DKG-05: secrets that sum to zero give the identity as joint key, which aborts (nobody
/// can be named: every dealer's own secret is non-zero).
#[test]
fn dkg_05_joint_identity_key_aborts() {
    let c0 = Scalar::random(&mut ChaCha20Rng::seed_from_u64(1));
    let c1 = Scalar::random(&mut ChaCha20Rng::seed_from_u64(2));
    let with = |c: Scalar| Misbehaviour {
        constant_term: Some(c),
        ..Misbehaviour::default()
    };
    let bad = [(0, with(c0)), (1, with(c1)), (2, with(-(c0 + c1)))];
    let report = run_with(2, 3, 52, &bad, Vec::new());
    assert_aborts(
        &report,
        &[0, 1, 2],
        &[],
        Some(AbortReason::JointKeyIdentity),
    );
}

// ---------------------------------------------------------------- DKG-06

/// DKG-06: a party echoing a different (Y, chain code, X_j, QUAL) is named.
#[test]
fn dkg_06_result_echo_mismatch_aborts_naming_the_sender() {
    let bad = Misbehaviour {
        wrong_result: true,
        ..Misbehaviour::default()
    };
    let report = run_with(3, 5, 61, &[(2, bad)], Vec::new());
    assert_aborts(
        &report,
        &[0, 1, 3, 4],
        &[2],
        Some(AbortReason::ResultMismatch),
    );
}

/// DKG-06: the chain-code contribution is committed in round 1; changing it in the reveal
/// (for everyone alike) fails the decommitment and disqualifies the dealer, whose
/// contribution then does not enter the chain code.
#[test]
fn dkg_06_chain_code_contribution_changed_after_commitment_disqualifies() {
    let (t, m) = (2u16, 4u16);
    let offset = 1 + Echo::encoded_len(usize::from(m)) + 2 + usize::from(t) * 33 + 32;
    let flip = move |b: &mut Vec<u8>| b[offset] ^= 1;
    let fault = Fault::corrupt(3, 2, flip).only(Select::Broadcast);
    let report = run_with(t, m, 62, &[], alloc::vec![fault]);
    assert_consistent(&report, &[0, 1, 2], t, &[0, 1, 2]);
    // the chain code is the digest of QUAL's committed contributions, recomputed here
    let out = report.output(0).unwrap();
    let cfg = config(SID, t, m, 0);
    let mut tr = session_transcript(&cfg, b"HD chain code");
    for j in 0..3u16 {
        let reveal = &report.sent[usize::from(j)]
            .iter()
            .find(|o| o.round == 2 && o.to == Recipient::All)
            .unwrap()
            .payload;
        let r = Round2Reveal::from_bytes(reveal, &Shape { m: 4, t: 2 }).unwrap();
        tr.append_u64(b"j", u64::from(j));
        tr.append_bytes(b"c_j", &r.chain_code);
    }
    assert_eq!(&digest(&tr), out.chain_code());
}

// ---------------------------------------------------------------- DKG-07 (see also vss)

/// DKG-07: the parties use the hash-to-curve generator: a share verifies under H and fails
/// under any other second generator.
#[test]
fn dkg_07_parties_use_the_hash_to_curve_generator() {
    let mut rng = ChaCha20Rng::seed_from_u64(71);
    let party = DkgParty::new(config(SID, 2, 3, 0), &mut rng).unwrap();
    assert_eq!(party.h, crate::vss::hash_to_curve_h().unwrap());
    let x = Scalar::from(2u64);
    let (s, s2) = (party.a.evaluate(&x), party.b.evaluate(&x));
    assert!(verify_pedersen_share(
        &party.pedersen,
        &party.h,
        &x,
        &s,
        &s2
    ));
    let other_h = party.h + ProjectivePoint::GENERATOR;
    assert!(!verify_pedersen_share(
        &party.pedersen,
        &other_h,
        &x,
        &s,
        &s2
    ));
}

// ---------------------------------------------------------------- harness faults

/// NET-03: a round-1 broadcast that one receiver sees differently aborts every honest party
/// naming the sender.
#[test]
fn equivocation_in_round_1_aborts_naming_the_sender() {
    let flip = |b: &mut Vec<u8>| b[5] ^= 0x40;
    let report = run_with(
        2,
        4,
        81,
        &[],
        alloc::vec![Fault::equivocate(1, 1, &[2], flip)],
    );
    assert_aborts(&report, &[0, 2, 3], &[1], None);
}

/// NET-03 after QUAL: an equivocated round-5 broadcast (one receiver gets a garbled copy)
/// aborts every honest party naming the sender.
#[test]
fn equivocation_in_round_5_aborts_naming_the_sender() {
    let flip = |b: &mut Vec<u8>| {
        let n = b.len();
        b[n - 1] ^= 1;
    };
    let report = run_with(
        3,
        5,
        82,
        &[],
        alloc::vec![Fault::equivocate(4, 5, &[0, 1], flip)],
    );
    assert_aborts(&report, &[0, 1, 2, 3], &[4], None);
}

/// Two different direct shares from one dealer to one party (a forged one arrives first):
/// the receiver complains, the dealer's public answer settles the share, everyone finishes.
#[test]
fn conflicting_direct_shares_are_complained_about() {
    let mut rng = ChaCha20Rng::seed_from_u64(83);
    let mut parties = parties_in(SID, 2, 3, 83, &[]);
    let mut injected = false;
    let (outcomes, refused) = drive(&mut parties, &mut rng, |to, party, msg, rng| {
        if !injected && msg.from == p(2) && to == 0 && msg.round == 2 {
            injected = true;
            let mut forged = Round2Share {
                s: Zeroizing::new(Scalar::ONE),
                s_prime: Zeroizing::new(Scalar::ONE),
            }
            .to_bytes();
            forged[40] ^= 1;
            let step = party
                .handle(
                    rng,
                    Incoming {
                        round: 2,
                        from: p(1),
                        to: Recipient::One(p(0)),
                        payload: forged,
                    },
                )
                .unwrap();
            assert!(step.outgoing.is_empty() && step.outcome.is_none());
        }
    });
    assert!(injected);
    // the honest share arrived first (then the forged one is the conflict) or after the
    // round closed (then it is stale); either way the receiver complained about P1
    assert!(refused
        .iter()
        .all(|(to, e)| *to == 0 && matches!(e, Rejected::WrongRound { .. })));
    let r3 = parties[0].r3.broadcast(p(0)).unwrap();
    assert_eq!(r3.value.accused, alloc::vec![p(1)]);
    for o in outcomes {
        match o {
            Some(Outcome::Output(o)) => o.validate().unwrap(),
            other => panic!("{other:?}"),
        }
    }
}

/// A dealer that shows one party no answer to its complaint and the others a correct one:
/// the first disqualifies it (and, with t = m, aborts: too few qualified), and its round-5
/// message carries its view of round 4, so the others name the dealer too instead of
/// waiting for the first and blaming it.
#[test]
fn equivocated_answers_are_blamed_on_the_dealer_by_everyone() {
    let hide_answers = |b: &mut Vec<u8>| {
        let count = 1 + Echo::encoded_len(3);
        b.truncate(count + 2);
        b[count..].copy_from_slice(&[0, 0]);
    };
    let report = run_with(
        3,
        3,
        95,
        &[(2, bad_share_to(&[0]))],
        alloc::vec![Fault::equivocate(2, 4, &[0], hide_answers)],
    );
    assert_aborts(&report, &[0], &[2], Some(AbortReason::TooFewQualified));
    assert_aborts(&report, &[1], &[2], None);
}

/// Before QUAL: a party silent in round 1 is disqualified at the deadline and the others
/// finish.
#[test]
fn drop_before_qual_disqualifies_and_the_rest_finish() {
    let report = run_with(2, 4, 84, &[], alloc::vec![Fault::drop(3, 1)]);
    assert_consistent(&report, &[0, 1, 2], 2, &[0, 1, 2]);
    assert!(report.deadlines >= 1);
}

/// After QUAL: a party silent in round 5 is named at the deadline.
#[test]
fn drop_after_qual_aborts_naming_the_silent_party() {
    let report = run_with(2, 4, 85, &[], alloc::vec![Fault::drop(2, 5)]);
    assert_aborts(&report, &[0, 1, 3], &[2], Some(AbortReason::MissingMessage));
}

/// Too many disqualified: fewer than t parties left aborts naming the disqualified ones.
#[test]
fn too_few_qualified_aborts() {
    let report = run_with(
        3,
        4,
        86,
        &[],
        alloc::vec![Fault::drop(2, 1), Fault::drop(3, 1)],
    );
    assert_aborts(
        &report,
        &[0, 1],
        &[2, 3],
        Some(AbortReason::TooFewQualified),
    );
    assert_eq!(
        report.abort(0).unwrap().to_string(),
        "aborted in round 4: fewer than t parties qualified \
         (culprits: [PartyIndex(2), PartyIndex(3)])"
    );
}

/// A round-2 broadcast delayed past the deadline for every receiver: disqualified, and the
/// late copies are refused as stale.
#[test]
fn delay_to_everyone_disqualifies_and_late_messages_are_stale() {
    let report = run_with(
        2,
        4,
        87,
        &[],
        alloc::vec![Fault::delay(1, 2).only(Select::Broadcast)],
    );
    assert_consistent(&report, &[0, 2, 3], 2, &[0, 2, 3]);
    assert!(report.rejections[0]
        .iter()
        .any(|(m, e)| m.from == p(1) && m.round == 2 && matches!(e, Rejected::WrongRound { .. })));
}

/// A round-2 broadcast delayed for one receiver only: views differ, the echo names the
/// sender.
#[test]
fn delay_to_one_receiver_aborts_naming_the_sender_via_echo() {
    let fault = Fault::delay(1, 2).to(&[3]).only(Select::Broadcast);
    let report = run_with(2, 4, 88, &[], alloc::vec![fault]);
    assert_aborts(&report, &[0, 2, 3], &[1], None);
}

/// Identical duplicates are ignored; replays of an old round are refused as stale; the run
/// finishes.
#[test]
fn replayed_and_duplicated_messages_are_refused_and_the_run_finishes() {
    let faults = alloc::vec![Fault::replay(1, 2, 2), Fault::replay(2, 4, 1)];
    let report = run_with(2, 3, 89, &[], faults);
    assert_consistent(&report, &[0, 1, 2], 2, &[0, 1, 2]);
    assert!(report.rejections[0]
        .iter()
        .any(|(m, e)| m.from == p(1) && *e == Rejected::Duplicate));
    assert!(report.rejections[0].iter().any(|(m, e)| m.from == p(2)
        && m.round == 1
        && *e
            == Rejected::WrongRound {
                expected: 4,
                got: 1
            }));
}

/// A corrupted (undecodable) broadcast to everyone is refused as malformed and the sender
/// is disqualified before QUAL.
#[test]
fn corrupted_broadcast_before_qual_disqualifies() {
    let report = run_with(
        2,
        3,
        90,
        &[],
        alloc::vec![Fault::corrupt(0, 3, |b: &mut Vec<u8>| b.push(0))],
    );
    assert_consistent(&report, &[1, 2], 2, &[1, 2]);
    assert!(report.rejections[1]
        .iter()
        .any(|(_, e)| *e == Rejected::Malformed(DecodeError::TrailingBytes(1))));
}

// ---------------------------------------------------------------- decoders and garbage

fn honest_payloads(t: u16, m: u16) -> Vec<(u16, bool, Vec<u8>)> {
    let report = run_with(t, m, 91, &[], Vec::new());
    report.sent[1]
        .iter()
        .map(|o| (o.round, o.to != Recipient::All, o.payload.clone()))
        .collect()
}

fn decode(round: u16, direct: bool, bytes: &[u8], shape: &Shape) -> Result<(), DecodeError> {
    let again = msg::reencode(round, direct, bytes, shape)?;
    assert_eq!(
        again, bytes,
        "canonical: decode then encode gives the same bytes"
    );
    Ok(())
}

/// Every message type round-trips, and refuses every truncation, one extra byte, another
/// message's tag, and random garbage; valid messages fit their size cap.
#[test]
fn decoders_reject_truncated_extended_and_garbage_bytes() {
    let shape = Shape { m: 3, t: 2 };
    let mut rng = ChaCha20Rng::seed_from_u64(92);
    let payloads = honest_payloads(2, 3);
    assert!(payloads.len() >= 7);
    for (round, direct, bytes) in payloads {
        decode(round, direct, &bytes, &shape).unwrap();
        assert!(bytes.len() <= shape.max_len(round, direct));
        for len in 0..bytes.len() {
            assert!(decode(round, direct, &bytes[..len], &shape).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            decode(round, direct, &long, &shape),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut tag = bytes.clone();
        tag[0] ^= 0x0F;
        assert!(decode(round, direct, &tag, &shape).is_err());
        for _ in 0..200 {
            let mut garbage = alloc::vec![0u8; rng.gen_range(0..bytes.len() + 8)];
            rng.fill_bytes(&mut garbage);
            if let Some(first) = garbage.first_mut() {
                *first = bytes[0];
            }
            // random bytes under the right tag are accepted only if they re-encode alike
            let _ = decode(round, direct, &garbage, &shape);
        }
    }
    // index lists must be strictly increasing and below m
    let complaints = |accused: &[u16]| {
        let mut w = crate::encoding::Writer::new(msg::tags::R3_COMPLAINTS);
        Echo(alloc::vec![[0u8; 32]; 3]).write(&mut w);
        w.u16(accused.len() as u16);
        for a in accused {
            w.u16(*a);
        }
        w.finish()
    };
    assert!(Round3Complaints::from_bytes(&complaints(&[0, 2]), &shape).is_ok());
    for bad in [&[2u16, 0][..], &[1, 1], &[3], &[0, 1, 2, 0]] {
        assert!(Round3Complaints::from_bytes(&complaints(bad), &shape).is_err());
    }
}

/// Random messages (random round, sender, recipient and bytes, often under a DKG tag) fed to
/// a party between honest deliveries are all refused without panicking, and the party still
/// finishes the honest run with the others.
#[test]
fn random_messages_never_panic_and_leave_the_party_able_to_finish() {
    let (t, m) = (2u16, 3u16);
    let mut rng = ChaCha20Rng::seed_from_u64(93);
    let mut junk = ChaCha20Rng::seed_from_u64(94);
    let mut parties = parties_in(SID, t, m, 93, &[]);
    let mut refused = 0;
    // lengths of the fixed-size messages, which random bytes could otherwise fill validly
    let shape = Shape {
        m: usize::from(m),
        t: usize::from(t),
    };
    let fixed = [
        shape.max_len(1, false),
        shape.max_len(2, false),
        shape.max_len(2, true),
        shape.max_len(5, false),
    ];
    let (outcomes, honest_refused) = drive(&mut parties, &mut rng, |to, party, _, rng| {
        if to != 0 {
            return;
        }
        for _ in 0..50 {
            let mut len = junk.gen_range(0..400);
            if fixed.contains(&len) {
                len += 1;
            }
            let mut payload = alloc::vec![0u8; len];
            junk.fill_bytes(&mut payload);
            if let Some(b) = payload.first_mut() {
                if junk.gen_bool(0.7) {
                    *b = 0x30 + junk.gen_range(0..7u8);
                }
            }
            let msg = Incoming {
                round: junk.gen_range(0..8),
                from: p(junk.gen_range(0..m + 2)),
                to: if junk.gen_bool(0.5) {
                    Recipient::All
                } else {
                    Recipient::One(p(junk.gen_range(0..m + 1)))
                },
                payload,
            };
            assert!(party.handle(rng, msg).is_err());
            refused += 1;
        }
    });
    assert!(refused > 0);
    assert!(honest_refused.is_empty(), "{honest_refused:?}");
    let outputs: Vec<KeyShare> = outcomes
        .into_iter()
        .map(|o| match o {
            Some(Outcome::Output(o)) => o,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(outputs
        .iter()
        .all(|o| o.public_key() == outputs[0].public_key()));
    // a finished party refuses everything
    let msg = Incoming {
        round: 6,
        from: p(1),
        to: Recipient::All,
        payload: alloc::vec![0x36],
    };
    assert_eq!(
        parties[0].handle(&mut rng, msg).unwrap_err(),
        Rejected::Finished
    );
}

/// Blame does not depend on delivery order: the same faults under shuffled delivery (several
/// seeds) give the same outcome as FIFO.
#[test]
fn outcomes_do_not_depend_on_delivery_order() {
    for seed in 0..4u64 {
        let shuffled = |bad: &[(u16, Misbehaviour)], faults: Vec<Fault>| {
            let mut sim = Sim::new(parties_in(SID, 2, 4, 200 + seed, bad)).shuffled();
            for f in faults {
                sim = sim.fault(f);
            }
            sim.run(&mut ChaCha20Rng::seed_from_u64(seed))
        };
        let flip = |b: &mut Vec<u8>| b[5] ^= 0x40;
        let r = shuffled(&[], alloc::vec![Fault::equivocate(1, 1, &[2], flip)]);
        assert_aborts(&r, &[0, 2, 3], &[1], None);
        let r = shuffled(&[], alloc::vec![Fault::drop(2, 5)]);
        assert_aborts(&r, &[0, 1, 3], &[2], Some(AbortReason::MissingMessage));
        let r = shuffled(&[(1, bad_share_to(&[0]))], Vec::new());
        assert_consistent(&r, &[0, 1, 2, 3], 2, &[0, 1, 2, 3]);
        let r = shuffled(&[], alloc::vec![Fault::drop(3, 2)]);
        assert_consistent(&r, &[0, 1, 2], 2, &[0, 1, 2]);
        let wrong = Misbehaviour {
            wrong_result: true,
            ..Misbehaviour::default()
        };
        let r = shuffled(&[(0, wrong)], Vec::new());
        assert_aborts(&r, &[1, 2, 3], &[0], Some(AbortReason::ResultMismatch));
    }
}
