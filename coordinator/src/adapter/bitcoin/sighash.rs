//! The BIP143 signature preimage of a P2WPKH input (SIGHASH_ALL), built field by field from
//! the specification (<https://github.com/bitcoin/bips/blob/master/bip-0143.mediawiki>), so
//! that signers receive the exact bytes they hash (SIG-01). rust-bitcoin's `SighashCache`
//! computes the same digest independently; the tests check that they agree.

use bitcoin::consensus::encode::serialize;
use bitcoin::{Transaction, TxOut, WPubkeyHash};
use sha2::{Digest, Sha256};

/// `SIGHASH_ALL`, the only type this adapter signs with.
pub const SIGHASH_ALL: u32 = 1;

/// SHA-256 applied twice.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    let once = Sha256::digest(data);
    Sha256::digest(once).into()
}

/// The BIP143 preimage for input `index` of `tx`, which spends `spent` (a P2WPKH output whose
/// key hash is `key_hash`), with `SIGHASH_ALL`:
///
/// 1. nVersion (4 LE) 2. hashPrevouts 3. hashSequence 4. outpoint (32 + 4 LE)
/// 5. scriptCode `0x19 76 a9 14 <key hash> 88 ac` 6. amount (8 LE) 7. nSequence (4 LE)
/// 8. hashOutputs 9. nLockTime (4 LE) 10. sighash type (4 LE).
///
/// Returns `None` when `index` is not an input of `tx`.
pub fn p2wpkh_preimage(
    tx: &Transaction,
    index: usize,
    spent: &TxOut,
    key_hash: &WPubkeyHash,
) -> Option<Vec<u8>> {
    let input = tx.input.get(index)?;

    let mut prevouts = Vec::with_capacity(36 * tx.input.len());
    let mut sequences = Vec::with_capacity(4 * tx.input.len());
    for txin in &tx.input {
        prevouts.extend_from_slice(&serialize(&txin.previous_output));
        sequences.extend_from_slice(&txin.sequence.0.to_le_bytes());
    }
    let mut outputs = Vec::new();
    for txout in &tx.output {
        outputs.extend_from_slice(&serialize(txout));
    }

    let mut preimage = Vec::with_capacity(4 + 32 + 32 + 36 + 26 + 8 + 4 + 32 + 4 + 4);
    preimage.extend_from_slice(&tx.version.0.to_le_bytes());
    preimage.extend_from_slice(&sha256d(&prevouts));
    preimage.extend_from_slice(&sha256d(&sequences));
    preimage.extend_from_slice(&serialize(&input.previous_output));
    // scriptCode of P2WPKH: the P2PKH script of the key hash, with its length prefix.
    preimage.extend_from_slice(&[0x19, 0x76, 0xa9, 0x14]);
    preimage.extend_from_slice(key_hash.as_ref());
    preimage.extend_from_slice(&[0x88, 0xac]);
    preimage.extend_from_slice(&spent.value.to_sat().to_le_bytes());
    preimage.extend_from_slice(&input.sequence.0.to_le_bytes());
    preimage.extend_from_slice(&sha256d(&outputs));
    preimage.extend_from_slice(&tx.lock_time.to_consensus_u32().to_le_bytes());
    preimage.extend_from_slice(&SIGHASH_ALL.to_le_bytes());
    Some(preimage)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bitcoin::consensus::encode::deserialize;
    use bitcoin::hashes::Hash;
    use bitcoin::sighash::{EcdsaSighashType, SighashCache};
    use bitcoin::{Amount, ScriptBuf};

    /// BIP143 "Native P2WPKH" example: the unsigned transaction, the second input's spent
    /// output (6 BTC to `00141d0f172a0ecb48aee1be1f2687d2963ae33f71a1`), and the spec's
    /// sigHash preimage and sigHash.
    const UNSIGNED: &str = "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000";
    const PREIMAGE: &str = "0100000096b827c8483d4e9b96712b6713a7b68d6e8003a781feba36c31143470b4efd3752b0a642eea2fb7ae638c36f6252b6750293dbe574a806984b8e4d8548339a3bef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a010000001976a9141d0f172a0ecb48aee1be1f2687d2963ae33f71a188ac0046c32300000000ffffffff863ef3e1a92afbfdb97f31ad0fc7683ee943e9abcf2501590ff8f6551f47e5e51100000001000000";
    const SIGHASH: &str = "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670";

    #[test]
    fn bip143_native_p2wpkh_example() {
        let tx: Transaction = deserialize(&hex::decode(UNSIGNED).unwrap()).unwrap();
        let key_hash = WPubkeyHash::from_slice(
            &hex::decode("1d0f172a0ecb48aee1be1f2687d2963ae33f71a1").unwrap(),
        )
        .unwrap();
        let spent = TxOut {
            value: Amount::from_sat(600_000_000),
            script_pubkey: ScriptBuf::new_p2wpkh(&key_hash),
        };
        let preimage = p2wpkh_preimage(&tx, 1, &spent, &key_hash).unwrap();
        assert_eq!(hex::encode(&preimage), PREIMAGE);
        assert_eq!(hex::encode(sha256d(&preimage)), SIGHASH);

        // rust-bitcoin's own BIP143 implementation gives the same digest.
        let theirs = SighashCache::new(&tx)
            .p2wpkh_signature_hash(1, &spent.script_pubkey, spent.value, EcdsaSighashType::All)
            .unwrap();
        assert_eq!(theirs.to_byte_array(), sha256d(&preimage));

        assert!(p2wpkh_preimage(&tx, 2, &spent, &key_hash).is_none());
    }
}
