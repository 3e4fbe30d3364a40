//! Pure transaction parts: the adapter's canonical encoding of an unsigned withdrawal, the
//! virtual-size estimate used for the fee, and UTXO selection.

use bitcoin::consensus::encode::{deserialize_partial, serialize};
use bitcoin::{OutPoint, Transaction, TxOut};

use crate::adapter::AdapterError;

/// Version byte of [`encode_unsigned`]'s format.
pub const UNSIGNED_FORMAT_V1: u8 = 1;

/// Largest number of inputs one withdrawal takes (keeps it far below the 400 000 weight-unit
/// standardness limit: 500 × 272 WU ≈ 136 000 WU).
pub const MAX_INPUTS: usize = 500;

/// Witness bytes of one P2WPKH input in the worst case: item count (1), signature length (1),
/// a 72-byte DER signature plus the sighash byte (73), key length (1), compressed key (33).
/// Low-s DER signatures are at most 71 bytes, so this is an upper bound.
pub const P2WPKH_WITNESS_BYTES: u64 = 1 + 1 + 73 + 1 + 33;

/// Non-witness bytes of one input: outpoint (36), empty scriptSig length (1), nSequence (4).
pub const INPUT_BYTES: u64 = 36 + 1 + 4;

/// `version (1) ‖ consensus(unsigned tx) ‖ consensus(Vec<TxOut> spent, one per input)`.
///
/// The unsigned transaction carries no witness, so its encoding is the legacy one; the spent
/// outputs (amount and script) are what BIP143 and libbitcoinconsensus need to re-check it.
pub fn encode_unsigned(tx: &Transaction, spent: &[TxOut]) -> Vec<u8> {
    let mut out = vec![UNSIGNED_FORMAT_V1];
    out.extend_from_slice(&serialize(tx));
    out.extend_from_slice(&serialize(&spent.to_vec()));
    out
}

/// Parses [`encode_unsigned`]'s format strictly: known version, no witness, at least one
/// input, one spent output per input, every spent output P2WPKH, no trailing bytes.
pub fn decode_unsigned(bytes: &[u8]) -> Result<(Transaction, Vec<TxOut>), AdapterError> {
    let invalid = |d: String| AdapterError::Invalid(format!("unsigned transaction: {d}"));
    let (&version, rest) = bytes.split_first().ok_or_else(|| invalid("empty".into()))?;
    if version != UNSIGNED_FORMAT_V1 {
        return Err(invalid(format!("unknown format version {version}")));
    }
    let (tx, used): (Transaction, usize) =
        deserialize_partial(rest).map_err(|e| invalid(e.to_string()))?;
    let rest = rest
        .get(used..)
        .ok_or_else(|| invalid("truncated".into()))?;
    let (spent, used): (Vec<TxOut>, usize) =
        deserialize_partial(rest).map_err(|e| invalid(e.to_string()))?;
    if used != rest.len() {
        return Err(invalid(format!("{} trailing bytes", rest.len() - used)));
    }
    if tx.input.is_empty() || tx.input.len() > MAX_INPUTS {
        return Err(invalid(format!("{} inputs", tx.input.len())));
    }
    if tx.output.is_empty() {
        return Err(invalid("no outputs".into()));
    }
    if tx
        .input
        .iter()
        .any(|i| !i.witness.is_empty() || !i.script_sig.is_empty())
    {
        return Err(invalid("inputs carry signatures".into()));
    }
    if spent.len() != tx.input.len() {
        return Err(invalid(format!(
            "{} spent outputs for {} inputs",
            spent.len(),
            tx.input.len()
        )));
    }
    if spent.iter().any(|s| !s.script_pubkey.is_p2wpkh()) {
        return Err(invalid("a spent output is not P2WPKH".into()));
    }
    Ok((tx, spent))
}

/// Length of Bitcoin's CompactSize encoding of `n`.
fn compact_size_len(n: u64) -> u64 {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Virtual size (vbytes) of a version-2 transaction with `inputs` P2WPKH inputs (signed, worst
/// case per [`P2WPKH_WITNESS_BYTES`]) and outputs with scripts of the given lengths:
///
/// weight = 4 × (4 + cs(inputs) + 41·inputs + cs(outputs) + Σ(8 + cs(len) + len) + 4)
///        + 2 (segwit marker and flag) + 109·inputs;  vsize = ⌈weight / 4⌉.
pub fn estimate_vsize(inputs: usize, output_script_lens: &[usize]) -> u64 {
    let n_in = inputs as u64;
    let outputs: u64 = output_script_lens
        .iter()
        .map(|&len| 8 + compact_size_len(len as u64) + len as u64)
        .sum();
    let base = 4
        + compact_size_len(n_in)
        + INPUT_BYTES * n_in
        + compact_size_len(output_script_lens.len() as u64)
        + outputs
        + 4;
    let weight = 4 * base + 2 + P2WPKH_WITNESS_BYTES * n_in;
    weight.div_ceil(4)
}

/// An unspent output a fleet address can spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The output.
    pub outpoint: OutPoint,
    /// Its amount in satoshi.
    pub value: u64,
    /// Index of the fleet address (in the plan's sources) that owns it.
    pub source: usize,
}

/// Largest-first selection: sorts by amount (descending, then outpoint for determinism) and
/// takes candidates until they cover `target`. `None` when all of them (at most
/// [`MAX_INPUTS`]) do not.
pub fn select(mut candidates: Vec<Candidate>, target: u64) -> Option<(Vec<Candidate>, u64)> {
    candidates.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then_with(|| a.outpoint.txid.cmp(&b.outpoint.txid))
            .then_with(|| a.outpoint.vout.cmp(&b.outpoint.vout))
    });
    let mut chosen = Vec::new();
    let mut total: u64 = 0;
    for candidate in candidates.into_iter().take(MAX_INPUTS) {
        if total >= target {
            break;
        }
        total = total.checked_add(candidate.value)?;
        chosen.push(candidate);
    }
    (total >= target && !chosen.is_empty()).then_some((chosen, total))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::{Amount, ScriptBuf, Txid};

    fn candidate(byte: u8, vout: u32, value: u64) -> Candidate {
        Candidate {
            outpoint: OutPoint::new(Txid::from_byte_array([byte; 32]), vout),
            value,
            source: 0,
        }
    }

    #[test]
    fn selection_is_largest_first_and_deterministic() {
        let c = vec![
            candidate(1, 0, 10),
            candidate(2, 0, 50),
            candidate(3, 1, 30),
            candidate(3, 0, 30),
        ];
        let (chosen, total) = select(c.clone(), 70).unwrap();
        assert_eq!(total, 80);
        assert_eq!(chosen, vec![candidate(2, 0, 50), candidate(3, 0, 30)]);
        assert_eq!(select(c.clone(), 120).unwrap().1, 120);
        assert!(select(c.clone(), 121).is_none());
        assert!(select(Vec::new(), 0).is_none());
        assert_eq!(select(c, 1).unwrap().0.len(), 1);
    }

    #[test]
    fn compact_size_boundaries() {
        assert_eq!(compact_size_len(0xfc), 1);
        assert_eq!(compact_size_len(0xfd), 3);
        assert_eq!(compact_size_len(0x1_0000), 5);
        assert_eq!(compact_size_len(0x1_0000_0000), 9);
    }

    fn sample() -> (Transaction, Vec<TxOut>) {
        let script = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]));
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn {
                previous_output: OutPoint::new(Txid::from_byte_array([9; 32]), 3),
                ..Default::default()
            }],
            output: vec![TxOut {
                value: Amount::from_sat(1000),
                script_pubkey: script.clone(),
            }],
        };
        let spent = vec![TxOut {
            value: Amount::from_sat(5000),
            script_pubkey: script,
        }];
        (tx, spent)
    }

    #[test]
    fn unsigned_encoding_round_trips_and_is_strict() {
        let script = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]));
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn {
                previous_output: OutPoint::new(Txid::from_byte_array([9; 32]), 3),
                ..Default::default()
            }],
            output: vec![TxOut {
                value: Amount::from_sat(1000),
                script_pubkey: script.clone(),
            }],
        };
        let spent = vec![TxOut {
            value: Amount::from_sat(5000),
            script_pubkey: script.clone(),
        }];
        let bytes = encode_unsigned(&tx, &spent);
        assert_eq!(
            decode_unsigned(&bytes).unwrap(),
            (tx.clone(), spent.clone())
        );

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_unsigned(&trailing).is_err());
        let mut version = bytes.clone();
        version[0] = 2;
        assert!(decode_unsigned(&version).is_err());
        assert!(decode_unsigned(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_unsigned(&[]).is_err());
        assert!(decode_unsigned(&encode_unsigned(&tx, &[])).is_err());
        let p2wsh = vec![TxOut {
            value: Amount::from_sat(5000),
            script_pubkey: ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::from_byte_array([1; 32])),
        }];
        assert!(decode_unsigned(&encode_unsigned(&tx, &p2wsh)).is_err());
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the decoder, and whatever it accepts re-encodes to the
        /// same bytes (one encoding per withdrawal).
        #[test]
        fn decode_unsigned_is_total_and_canonical(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut bytes = vec![UNSIGNED_FORMAT_V1];
            bytes.extend_from_slice(&tail);
            if let Ok((tx, spent)) = decode_unsigned(&bytes) {
                proptest::prop_assert_eq!(encode_unsigned(&tx, &spent), bytes);
            }
        }

        /// A valid encoding with one byte changed and maybe cut short never panics the
        /// decoder, and what it accepts is canonical.
        #[test]
        fn mutated_encodings_are_handled(at in 0usize..200, byte in proptest::num::u8::ANY, cut in 0usize..200) {
            let (tx, spent) = sample();
            let mut bytes = encode_unsigned(&tx, &spent);
            let at = at % bytes.len();
            bytes[at] = byte;
            bytes.truncate(bytes.len() - cut % bytes.len());
            if let Ok((tx, spent)) = decode_unsigned(&bytes) {
                proptest::prop_assert_eq!(encode_unsigned(&tx, &spent), bytes);
            }
        }

        /// Selection covers the target with a largest-first prefix and no superfluous input.
        #[test]
        fn selection_covers_the_target_minimally(
            values in proptest::collection::vec(1u64..1_000_000, 0..20),
            target in 1u64..5_000_000,
        ) {
            let candidates: Vec<_> = values
                .iter()
                .enumerate()
                .map(|(i, &v)| candidate(u8::try_from(i).unwrap(), 0, v))
                .collect();
            let sum: u64 = values.iter().sum();
            match select(candidates, target) {
                Some((chosen, total)) => {
                    proptest::prop_assert!(total >= target);
                    proptest::prop_assert_eq!(total, chosen.iter().map(|c| c.value).sum::<u64>());
                    let without_last: u64 = chosen[..chosen.len() - 1].iter().map(|c| c.value).sum();
                    proptest::prop_assert!(without_last < target);
                    proptest::prop_assert!(chosen.windows(2).all(|w| w[0].value >= w[1].value));
                }
                None => proptest::prop_assert!(sum < target),
            }
        }
    }
}
