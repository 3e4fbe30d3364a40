//! Resharing tests: (2,3) → (3,5) and (3,5) → (2,3) keep the key (checked by interpolating the
//! old and the new secret shares, and by `KeyShare::validate`), RES-01 (a dealer changing its
//! constant term is named), complaints settled by a correct answer, a wrong answer names the
//! dealer, a silent dealer is named at the deadline, and setup errors.

use alloc::vec::Vec;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::dkg::{DkgConfig, DkgParty};
use crate::protocol::{Echo, Outcome};
use crate::sim::{Fault, Report, Select, Sim};
use crate::vss::lagrange_coefficient;

fn dkg(t: u16, m: u16, rng: &mut ChaCha20Rng) -> Vec<KeyShare> {
    let committee = Committee::standard(m).unwrap();
    let parties = (0..m)
        .map(|i| {
            DkgParty::new(
                DkgConfig {
                    session_id: b"reshare-test-dkg".to_vec(),
                    committee: committee.clone(),
                    threshold: t,
                    me: PartyIndex::new(i),
                },
                rng,
            )
            .unwrap()
        })
        .collect();
    Sim::new(parties)
        .run(rng)
        .outcomes
        .into_iter()
        .map(|o| match o {
            Some(Outcome::Output(k)) => k,
            _ => panic!("dkg finishes"),
        })
        .collect()
}

/// The secret behind shares `xs` at the committee's points `at`.
fn secret(committee: &Committee, at: &[u16], xs: &[Scalar]) -> Scalar {
    let points: Vec<Scalar> = at
        .iter()
        .map(|i| *committee.point(PartyIndex::new(*i)).unwrap())
        .collect();
    (0..at.len())
        .map(|k| lagrange_coefficient(&points, k, &Scalar::ZERO).unwrap() * xs[k])
        .sum()
}

fn parties(
    keys: &[KeyShare],
    dealers: &[u16],
    m_new: u16,
    t_new: u16,
    rng: &mut ChaCha20Rng,
) -> (ReshareSession, Vec<ReshareParty>) {
    let session = ReshareSession::from_key(
        b"reshare-session",
        &keys[0],
        dealers.iter().map(|d| PartyIndex::new(*d)).collect(),
        Committee::standard(m_new).unwrap(),
        t_new,
    );
    let mut out: Vec<ReshareParty> = dealers
        .iter()
        .map(|d| ReshareParty::dealer(session.clone(), &keys[usize::from(*d)], rng).unwrap())
        .collect();
    for j in 0..m_new {
        out.push(ReshareParty::receiver(session.clone(), PartyIndex::new(j)).unwrap());
    }
    (session, out)
}

fn new_shares(report: &mut Report<ReshareOutput>, dealers: usize) -> Vec<KeyShare> {
    let mut out = Vec::new();
    for (pos, o) in report.outcomes.drain(..).enumerate() {
        match o {
            Some(Outcome::Output(ReshareOutput::Receiver(k))) => {
                assert!(pos >= dealers);
                out.push(k);
            }
            Some(Outcome::Output(ReshareOutput::Dealer(c))) => assert!(pos < dealers, "{c:?}"),
            other => panic!("position {pos}: {other:?}"),
        }
    }
    out
}

fn check_reshare(t: u16, m: u16, dealers: &[u16], t_new: u16, m_new: u16, seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = dkg(t, m, &mut rng);
    let (session, parties) = parties(&keys, dealers, m_new, t_new, &mut rng);
    let mut report = Sim::new(parties).run(&mut rng);
    let new = new_shares(&mut report, dealers.len());
    assert_eq!(new.len(), usize::from(m_new));
    let old_secret = secret(
        &session.old_committee,
        dealers,
        &dealers
            .iter()
            .map(|d| *keys[usize::from(*d)].secret_share())
            .collect::<Vec<_>>(),
    );
    for share in &new {
        assert_eq!(
            share.public_key(),
            keys[0].public_key(),
            "RES-01: the key is unchanged"
        );
        assert_eq!(share.threshold(), t_new);
        assert_eq!(share.epoch(), keys[0].epoch() + 1);
        assert_eq!(share.chain_code(), keys[0].chain_code());
        share.validate().unwrap();
    }
    // any t' new shares interpolate to the old secret; t' − 1 do not determine it
    let first: Vec<u16> = (0..t_new).collect();
    let last: Vec<u16> = (m_new - t_new..m_new).collect();
    for subset in [first, last] {
        let xs: Vec<Scalar> = subset
            .iter()
            .map(|j| *new[usize::from(*j)].secret_share())
            .collect();
        assert_eq!(secret(&session.new_committee, &subset, &xs), old_secret);
    }
    assert_eq!(
        ProjectivePoint::GENERATOR * old_secret,
        *keys[0].public_key()
    );
}

#[test]
fn reshare_2_of_3_to_3_of_5_keeps_the_key() {
    check_reshare(2, 3, &[0, 2], 3, 5, 1);
}

#[test]
fn reshare_3_of_5_to_2_of_3_keeps_the_key() {
    check_reshare(3, 5, &[1, 2, 4], 2, 3, 2);
}

/// RES-01: a dealer whose constant term is not λ_d·x_d (it would change the key) is named.
#[test]
fn res_01_dealer_changing_its_constant_term_is_blamed() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let keys = dkg(2, 3, &mut rng);
    let (_, mut parties) = parties(&keys, &[0, 1], 3, 2, &mut rng);
    // dealer position 1 shares w + 1 instead of w
    if let Role::Dealer {
        polynomial,
        feldman,
    } = &mut parties[1].role
    {
        let c = *polynomial.constant_term() + Scalar::ONE;
        *polynomial = Polynomial::with_constant(&mut rng, &c, 2);
        *feldman = polynomial.feldman_commitments();
    }
    let report = Sim::new(parties).run(&mut rng);
    for pos in [0u16, 2, 3, 4] {
        let abort = report.abort(pos).expect("aborts");
        assert_eq!(abort.culprits, vec![PartyIndex::new(1)]);
        assert_eq!(abort.reason, AbortReason::ReshareConstantMismatch);
    }
}

/// A corrupted sub-share draws a complaint; the dealer's correct public answer settles it and
/// the run finishes with the key unchanged.
#[test]
fn complaint_settled_by_a_correct_answer() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let keys = dkg(2, 3, &mut rng);
    let (_, parties) = parties(&keys, &[0, 1], 3, 2, &mut rng);
    // dealer 0's sub-share to receiver position 3 arrives with its last byte flipped
    let fault = Fault::corrupt(0, 1, |p| {
        let last = p.len() - 1;
        p[last] ^= 1;
    })
    .to(&[3])
    .only(Select::Direct);
    let mut report = Sim::new(parties).fault(fault).run(&mut rng);
    let new = new_shares(&mut report, 2);
    assert_eq!(new[1].public_key(), keys[0].public_key());
}

/// RES-01: a complaint answered with a wrong sub-share names the dealer.
#[test]
fn res_01_wrong_answer_names_the_dealer() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let keys = dkg(2, 3, &mut rng);
    let (_, parties) = parties(&keys, &[0, 1], 3, 2, &mut rng);
    let bad_share = Fault::corrupt(0, 1, |p| {
        let last = p.len() - 1;
        p[last] ^= 1;
    })
    .to(&[3])
    .only(Select::Direct);
    let bad_answer = Fault::corrupt(0, 3, |p| {
        let last = p.len() - 1;
        p[last] ^= 1;
    });
    let report = Sim::new(parties)
        .fault(bad_share)
        .fault(bad_answer)
        .run(&mut rng);
    for pos in [1u16, 2, 3, 4] {
        let abort = report.abort(pos).expect("aborts");
        assert_eq!(abort.culprits, vec![PartyIndex::new(0)], "position {pos}");
        assert_eq!(abort.reason, AbortReason::FeldmanMismatch);
    }
}

/// A dealer that sends nothing is named at the deadline; nobody gets a new share.
#[test]
fn silent_dealer_is_named() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let keys = dkg(2, 3, &mut rng);
    let (_, parties) = parties(&keys, &[0, 1], 3, 2, &mut rng);
    let report = Sim::new(parties).fault(Fault::drop(1, 1)).run(&mut rng);
    for pos in [0u16, 2, 3, 4] {
        let abort = report.abort(pos).expect("aborts");
        assert_eq!(abort.culprits, vec![PartyIndex::new(1)]);
        assert_eq!(abort.reason, AbortReason::MissingMessage);
    }
}

#[test]
fn setup_errors_and_decoders() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys = dkg(2, 3, &mut rng);
    let make = |dealers: &[u16], t_new: u16| {
        ReshareSession::from_key(
            b"s",
            &keys[0],
            dealers.iter().map(|d| PartyIndex::new(*d)).collect(),
            Committee::standard(3).unwrap(),
            t_new,
        )
    };
    assert_eq!(
        ReshareParty::receiver(make(&[0], 2), PartyIndex::new(0)).err(),
        Some(ReshareSetupError::Dealers)
    );
    assert_eq!(
        ReshareParty::receiver(make(&[1, 0], 2), PartyIndex::new(0)).err(),
        Some(ReshareSetupError::Dealers)
    );
    assert_eq!(
        ReshareParty::receiver(make(&[0, 1], 4), PartyIndex::new(0)).err(),
        Some(ReshareSetupError::NewThreshold { t: 4, m: 3 })
    );
    assert_eq!(
        ReshareParty::receiver(make(&[0, 1], 2), PartyIndex::new(3)).err(),
        Some(ReshareSetupError::Role)
    );
    assert_eq!(
        ReshareParty::dealer(make(&[0, 1], 2), &keys[2], &mut rng).err(),
        Some(ReshareSetupError::Role)
    );
    let mut tampered = make(&[0, 1], 2);
    tampered.old_public_shares[1] = ProjectivePoint::GENERATOR;
    assert_eq!(
        ReshareParty::receiver(tampered, PartyIndex::new(0)).err(),
        Some(ReshareSetupError::OldKey)
    );
    // decoders never panic on garbage and refuse non-canonical lists
    let shape = Shape {
        dealers: 2,
        receivers: 3,
        t_new: 2,
    };
    let mut g = ChaCha20Rng::seed_from_u64(8);
    for len in [0usize, 1, 3, 40, 200, 400] {
        let mut bytes = alloc::vec![0u8; len];
        rand::RngCore::fill_bytes(&mut g, &mut bytes);
        for tag in 0x60..=0x64u8 {
            if let Some(f) = bytes.first_mut() {
                *f = tag;
            }
            let _ = Round1Feldman::from_bytes(&bytes, &shape);
            let _ = Round1SubShare::from_bytes(&bytes);
            let _ = Round2Complaints::from_bytes(&bytes, &shape);
            let _ = Round3Answers::from_bytes(&bytes, &shape);
            let _ = Round4Confirm::from_bytes(&bytes, &shape);
        }
    }
    let echo = Echo(alloc::vec![[0u8; 32]; 5]);
    let good = Round2Complaints {
        echo: echo.clone(),
        accused: alloc::vec![0, 1],
    };
    assert_eq!(
        Round2Complaints::from_bytes(&good.to_bytes(), &shape).unwrap(),
        good
    );
    for accused in [alloc::vec![1, 0], alloc::vec![0, 0], alloc::vec![2]] {
        let bad = Round2Complaints {
            echo: echo.clone(),
            accused,
        };
        assert!(Round2Complaints::from_bytes(&bad.to_bytes(), &shape).is_err());
    }
    let too_long = Round1Feldman {
        feldman: alloc::vec![ProjectivePoint::GENERATOR; 3],
    };
    assert!(Round1Feldman::from_bytes(&too_long.to_bytes(), &shape).is_err());
}
