//! Offline tests of the pure parts: building from given coins, signing with real keys,
//! libbitcoinconsensus through `attach_signatures`, the vsize estimate against the real size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use bitcoin::hashes::Hash;
use k256::ecdsa::{RecoveryId, Signature, SigningKey};

fn adapter() -> BitcoinAdapter {
    // Never contacted: these tests use only the pure methods.
    BitcoinAdapter::new(BitcoinConfig::bcoin_regtest("http://127.0.0.1:9", "unused")).unwrap()
}

fn key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32].into()).unwrap()
}

fn fleet(a: &BitcoinAdapter, byte: u8, path: Vec<u32>) -> FleetAddress {
    let public_key = k256::PublicKey::from(key(byte).verifying_key());
    FleetAddress {
        path,
        address: a.address(&public_key).unwrap(),
        public_key,
    }
}

fn coin(byte: u8, value: u64, source: usize) -> tx::Candidate {
    tx::Candidate {
        outpoint: OutPoint::new(Txid::from_byte_array([byte; 32]), u32::from(byte)),
        value,
        source,
    }
}

fn sign(k: &SigningKey, digest: &[u8; 32]) -> FleetSignature {
    let (signature, recovery_id): (Signature, RecoveryId) =
        k.sign_prehash_recoverable(digest).unwrap();
    assert!(signature.normalize_s().is_none(), "k256 signs low-s");
    FleetSignature {
        signature,
        recovery_id,
    }
}

/// Two sources, a change address and an external destination.
fn plan(a: &BitcoinAdapter, amount: u128) -> WithdrawalPlan {
    let to = a
        .address(&k256::PublicKey::from(key(9).verifying_key()))
        .unwrap();
    WithdrawalPlan {
        to,
        amount,
        sources: vec![fleet(a, 1, vec![0, 1]), fleet(a, 2, vec![0, 2])],
        change: Some(fleet(a, 3, vec![1, 0])),
        reserved: Vec::new(),
    }
}

#[test]
fn two_inputs_with_change_sign_and_pass_libbitcoinconsensus() {
    let a = adapter();
    let p = plan(&a, 150_000);
    let u = a
        .assemble(&p, vec![coin(10, 100_000, 0), coin(11, 80_000, 1)])
        .unwrap();
    assert_eq!(u.inputs.len(), 2);
    assert_eq!(u.inputs[0].path, vec![0, 1]);
    assert_eq!(u.inputs[1].path, vec![0, 2]);
    for input in &u.inputs {
        assert_eq!(input.digest, sighash::sha256d(&input.preimage));
    }
    let (unsigned, spent) = tx::decode_unsigned(&u.unsigned_tx).unwrap();
    // rust-bitcoin's BIP143 gives the digests the signers will sign.
    let mut cache = bitcoin::sighash::SighashCache::new(&unsigned);
    for (i, input) in u.inputs.iter().enumerate() {
        let theirs = cache
            .p2wpkh_signature_hash(
                i,
                &spent[i].script_pubkey,
                spent[i].value,
                bitcoin::sighash::EcdsaSighashType::All,
            )
            .unwrap();
        assert_eq!(theirs.to_byte_array(), input.digest);
    }
    assert_eq!(unsigned.output.len(), 2);
    assert_eq!(
        unsigned.output[1].value.to_sat(),
        30_000,
        "change = inputs − amount"
    );
    let vsize = tx::estimate_vsize(2, &[22, 22]);
    assert_eq!(u.fee, u128::from(vsize * 2));
    assert_eq!(u.sent, 150_000 - u.fee);
    assert_eq!(
        u.spends,
        vec![
            Spend::Outpoint(format!("{}:10", Txid::from_byte_array([10; 32]))),
            Spend::Outpoint(format!("{}:11", Txid::from_byte_array([11; 32]))),
        ]
    );

    let sigs = [
        sign(&key(1), &u.inputs[0].digest),
        sign(&key(2), &u.inputs[1].digest),
    ];
    let signed = a.attach_signatures(&u, &sigs).unwrap();
    let tx = decode_raw(&signed.raw).unwrap();
    assert_eq!(tx.compute_txid().to_string(), signed.txid);
    // The estimate is an upper bound, at most 1 vbyte per input above the real size.
    let actual = tx.vsize() as u64;
    assert!(
        vsize >= actual && vsize - actual <= 2,
        "{vsize} vs {actual}"
    );
}

#[test]
fn wrong_key_high_s_and_tampering_are_refused() {
    let a = adapter();
    let u = a
        .assemble(
            &plan(&a, 150_000),
            vec![coin(10, 100_000, 0), coin(11, 80_000, 1)],
        )
        .unwrap();
    let good = [
        sign(&key(1), &u.inputs[0].digest),
        sign(&key(2), &u.inputs[1].digest),
    ];
    assert!(a.attach_signatures(&u, &good).is_ok());

    // Input 0 signed by input 1's key.
    let wrong = [sign(&key(2), &u.inputs[0].digest), good[1]];
    assert!(matches!(
        a.attach_signatures(&u, &wrong),
        Err(AdapterError::Invalid(_))
    ));

    // The same signature with s replaced by n − s (high-s) is refused.
    let s = good[0].signature;
    let high = Signature::from_scalars(s.r(), -*s.s()).unwrap();
    let high = [
        FleetSignature {
            signature: high,
            recovery_id: good[0].recovery_id,
        },
        good[1],
    ];
    assert!(matches!(
        a.attach_signatures(&u, &high),
        Err(AdapterError::Invalid(_))
    ));

    // Too few signatures.
    assert!(a.attach_signatures(&u, &good[..1]).is_err());

    // A signing input whose digest is not the transaction's sighash.
    let mut forged = u.clone();
    forged.inputs[0].digest = [7; 32];
    let sig = [sign(&key(1), &[7; 32]), good[1]];
    assert!(a.attach_signatures(&forged, &sig).is_err());

    // A signing input claiming another key than the spent output's.
    let mut swapped = u.clone();
    swapped.inputs[0].public_key = u.inputs[1].public_key;
    assert!(a
        .attach_signatures(&swapped, &[sign(&key(2), &u.inputs[0].digest), good[1]])
        .is_err());

    // An altered output amount changes the sighash: refused before any signature check.
    let (mut t, spent) = tx::decode_unsigned(&u.unsigned_tx).unwrap();
    t.output[0].value = Amount::from_sat(t.output[0].value.to_sat() + 1);
    let mut altered = u.clone();
    altered.unsigned_tx = tx::encode_unsigned(&t, &spent);
    assert!(a.attach_signatures(&altered, &good).is_err());
}

#[test]
fn dust_change_is_dropped_and_dust_destination_refused() {
    let a = adapter();
    // 100 sat over the amount: below the dust limit, no change output.
    let u = a
        .assemble(&plan(&a, 99_900), vec![coin(10, 100_000, 0)])
        .unwrap();
    let (t, _) = tx::decode_unsigned(&u.unsigned_tx).unwrap();
    assert_eq!(t.output.len(), 1);
    assert_eq!(u.fee, 100_000 - u.sent);
    assert_eq!(
        u.sent,
        u128::from(99_900 - tx::estimate_vsize(1, &[22]) * 2)
    );

    // The fee would leave the destination below the dust limit.
    let tiny = u128::from(tx::estimate_vsize(1, &[22, 22]) * 2 + 545);
    assert!(matches!(
        a.assemble(&plan(&a, tiny), vec![coin(10, 100_000, 0)]),
        Err(AdapterError::InsufficientFunds(_))
    ));
    // Not enough coins.
    assert!(matches!(
        a.assemble(&plan(&a, 100_001), vec![coin(10, 100_000, 0)]),
        Err(AdapterError::InsufficientFunds(_))
    ));
    // Change without a change address is refused rather than burned.
    let mut no_change = plan(&a, 50_000);
    no_change.change = None;
    assert!(matches!(
        a.assemble(&no_change, vec![coin(10, 100_000, 0)]),
        Err(AdapterError::Invalid(_))
    ));
}

#[test]
fn bad_plans_are_refused() {
    let a = adapter();
    let mut p = plan(&a, 50_000);
    p.to = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into();
    assert!(matches!(
        a.assemble(&p, vec![coin(10, 100_000, 0)]),
        Err(AdapterError::Invalid(_))
    ));
    let mut p = plan(&a, 50_000);
    p.sources[0].address = p.sources[1].address.clone();
    assert!(matches!(
        a.assemble(&p, vec![coin(10, 100_000, 0)]),
        Err(AdapterError::Invalid(_))
    ));
    let p = plan(&a, u128::from(MAX_MONEY) + 1);
    assert!(matches!(
        a.assemble(&p, vec![coin(10, 100_000, 0)]),
        Err(AdapterError::Invalid(_))
    ));
    assert!(parse_outpoint("nope:1").is_err());
    assert!(BitcoinAdapter::new(BitcoinConfig {
        dust_limit: MIN_DUST_LIMIT - 1,
        ..BitcoinConfig::bcoin_regtest("http://127.0.0.1:9", "k")
    })
    .is_err());
    assert!(BitcoinAdapter::new(BitcoinConfig {
        fee_rate_sat_per_vb: 0,
        ..BitcoinConfig::bcoin_regtest("http://127.0.0.1:9", "k")
    })
    .is_err());
}

#[test]
fn vsize_estimate_bounds_real_transactions() {
    let a = adapter();
    for n in 1..=6u8 {
        let coins: Vec<_> = (0..n)
            .map(|i| coin(20 + i, 50_000, usize::from(i % 2)))
            .collect();
        // Just above n − 1 coins: all n are selected.
        let amount = 50_000 * u128::from(n - 1) + 10_000;
        let u = a.assemble(&plan(&a, amount), coins).unwrap();
        assert_eq!(u.inputs.len(), usize::from(n));
        let sigs: Vec<_> = u
            .inputs
            .iter()
            .map(|i| sign(&key(if i.path == vec![0, 1] { 1 } else { 2 }), &i.digest))
            .collect();
        let tx = decode_raw(&a.attach_signatures(&u, &sigs).unwrap().raw).unwrap();
        let outs: Vec<usize> = tx.output.iter().map(|o| o.script_pubkey.len()).collect();
        let estimate = tx::estimate_vsize(tx.input.len(), &outs);
        let actual = tx.vsize() as u64;
        assert!(estimate >= actual, "{n} inputs: {estimate} < {actual}");
        // 72 + 1 byte assumed per signature, real low-s ones are 71 or 72 with the sighash
        // byte: at most 2 witness bytes (half a vbyte) per input, plus rounding.
        assert!(
            estimate - actual <= u64::from(n).div_ceil(2) + 1,
            "{n}: {estimate} vs {actual}"
        );
    }
}

#[test]
fn debug_output_hides_the_api_key() {
    let a = BitcoinAdapter::new(BitcoinConfig::bcoin_regtest(
        "http://127.0.0.1:9",
        "s3cr3t-key",
    ))
    .unwrap();
    let shown = format!("{a:?}");
    assert!(shown.contains("127.0.0.1:9"), "{shown}");
    assert!(!shown.contains("s3cr3t-key"), "{shown}");
}

#[test]
fn many_large_coins_do_not_overflow() {
    let a = adapter();
    // 20 000 coins of 21 million BTC each sum past u64::MAX: still no panic.
    let coins: Vec<_> = (0..20_000u32)
        .map(|i| tx::Candidate {
            outpoint: OutPoint::new(Txid::from_byte_array([1; 32]), i),
            value: MAX_MONEY,
            source: 0,
        })
        .collect();
    let mut p = plan(&a, u128::from(MAX_MONEY));
    p.amount = u128::from(MAX_MONEY);
    let u = a.assemble(&p, coins.clone()).unwrap();
    assert_eq!(u.inputs.len(), 1);
    // More than MAX_INPUTS coins are needed: refused, not overflowed.
    let small: Vec<_> = coins
        .into_iter()
        .map(|c| tx::Candidate { value: 1_000, ..c })
        .collect();
    assert!(matches!(
        a.assemble(&plan(&a, 1_000_000), small),
        Err(AdapterError::InsufficientFunds(_))
    ));
}

/// The cancellation spends exactly the payment's inputs, from the same keys, to one change
/// output; it signs and passes libbitcoinconsensus; its fee follows the rate; inputs too small
/// to pay it and leave more than dust are refused.
#[tokio::test]
async fn cancellation_spends_the_payments_inputs_to_change() {
    let a = adapter();
    let p = plan(&a, 150_000);
    let payment = a
        .assemble(&p, vec![coin(10, 100_000, 0), coin(11, 80_000, 1)])
        .unwrap();
    let change = fleet(&a, 3, vec![1, 0]);
    let cancel = a.build_cancellation(&payment, &change).await.unwrap();
    assert_eq!(cancel.spends, payment.spends);
    assert_eq!(cancel.sent, 0);
    let (paid, _) = tx::decode_unsigned(&payment.unsigned_tx).unwrap();
    let (tx, spent) = tx::decode_unsigned(&cancel.unsigned_tx).unwrap();
    let outpoints = |t: &Transaction| {
        t.input
            .iter()
            .map(|i| i.previous_output)
            .collect::<Vec<_>>()
    };
    assert_eq!(outpoints(&tx), outpoints(&paid));
    assert_eq!(tx.output.len(), 1);
    assert_eq!(tx.output[0].script_pubkey, a.fleet_script(&change).unwrap());
    let vsize = tx::estimate_vsize(2, &[tx.output[0].script_pubkey.len()]);
    assert_eq!(cancel.fee, u128::from(vsize * a.config.fee_rate_sat_per_vb));
    assert_eq!(
        u128::from(tx.output[0].value.to_sat()) + cancel.fee,
        180_000
    );
    assert_eq!(spent.len(), 2);
    let keys = [key(1), key(2)];
    for (input, paid_input) in cancel.inputs.iter().zip(&payment.inputs) {
        assert_eq!(input.path, paid_input.path);
        assert_eq!(input.public_key, paid_input.public_key);
        assert_ne!(input.digest, paid_input.digest, "another transaction");
    }
    let sigs: Vec<_> = cancel
        .inputs
        .iter()
        .zip(&keys)
        .map(|(i, k)| sign(k, &i.digest))
        .collect();
    let signed = a.attach_signatures(&cancel, &sigs).unwrap();
    assert_eq!(signed.txid, tx.compute_txid().to_string());

    // Fees rose since the payment was built: its one small input cannot pay the
    // cancellation's fee and leave more than dust.
    let tiny = a
        .assemble(&plan(&a, 1_000), vec![coin(12, 1_000, 0)])
        .unwrap();
    let mut dearer = BitcoinConfig::bcoin_regtest("http://127.0.0.1:9", "unused");
    dearer.fee_rate_sat_per_vb = 20;
    let dearer = BitcoinAdapter::new(dearer).unwrap();
    assert!(a.build_cancellation(&tiny, &change).await.is_ok());
    assert!(matches!(
        dearer.build_cancellation(&tiny, &change).await,
        Err(AdapterError::InsufficientFunds(_))
    ));
    // Not a Bitcoin payment.
    let mut other = payment.clone();
    other.chain = ExternalChain::Ethereum;
    assert!(matches!(
        a.build_cancellation(&other, &change).await,
        Err(AdapterError::Invalid(_))
    ));
}
