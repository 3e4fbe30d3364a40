//! Segwit addresses with a configurable bech32 human-readable part (BIP173, BIP350).
//!
//! rust-bitcoin's `Address` ties the HRP to its `Network` enum (`Network::Regtest` renders
//! `bcrt`), but bcoin's regtest uses `rb`. So the adapter builds the witness program itself and
//! encodes or decodes it with the `bech32` crate rust-bitcoin re-exports, checking the HRP
//! against the configured one.

use bitcoin::bech32::{segwit, Hrp};
use bitcoin::{CompressedPublicKey, ScriptBuf, WPubkeyHash, WitnessProgram, WitnessVersion};
use k256::elliptic_curve::sec1::ToEncodedPoint;

use crate::adapter::AdapterError;

/// The 33-byte SEC1 compressed encoding of `public_key`.
pub fn compressed(public_key: &k256::PublicKey) -> [u8; 33] {
    let point = public_key.to_encoded_point(true);
    let mut out = [0u8; 33];
    // A compressed SEC1 point of a valid public key is always 33 bytes.
    if point.as_bytes().len() == out.len() {
        out.copy_from_slice(point.as_bytes());
    }
    out
}

/// HASH160 of the compressed public key: the P2WPKH witness program.
pub fn pubkey_hash(public_key: &k256::PublicKey) -> Result<WPubkeyHash, AdapterError> {
    let key = CompressedPublicKey::from_slice(&compressed(public_key))
        .map_err(|e| AdapterError::Invalid(format!("public key: {e}")))?;
    Ok(key.wpubkey_hash())
}

/// The P2WPKH output script `OP_0 <20-byte HASH160(compressed key)>`.
pub fn p2wpkh_script(public_key: &k256::PublicKey) -> Result<ScriptBuf, AdapterError> {
    Ok(ScriptBuf::new_p2wpkh(&pubkey_hash(public_key)?))
}

/// Parses a configured human-readable part (`bc`, `tb`, `bcrt`, `rb`, ...).
pub fn parse_hrp(hrp: &str) -> Result<Hrp, AdapterError> {
    let parsed = Hrp::parse(hrp).map_err(|e| AdapterError::Invalid(format!("HRP {hrp:?}: {e}")))?;
    if parsed.as_str() != hrp.to_ascii_lowercase() {
        return Err(AdapterError::Invalid(format!(
            "HRP {hrp:?} is not canonical"
        )));
    }
    Ok(parsed)
}

/// Renders a witness-program output script (any version) as a segwit address under `hrp`.
pub fn encode(hrp: Hrp, script: &bitcoin::Script) -> Result<String, AdapterError> {
    let (version, program) = witness_program(script)
        .ok_or_else(|| AdapterError::Invalid("not a witness program script".into()))?;
    segwit::encode(hrp, version.to_fe(), program.program().as_bytes())
        .map_err(|e| AdapterError::Invalid(format!("segwit encoding: {e}")))
}

/// Parses a segwit address (v0 bech32 or v1+ bech32m) and returns its output script. The HRP
/// must be `hrp`; base58 addresses are not accepted.
pub fn decode(hrp: Hrp, address: &str) -> Result<ScriptBuf, AdapterError> {
    let invalid = |detail: String| AdapterError::Invalid(format!("address {address:?}: {detail}"));
    let (got_hrp, version, program) =
        segwit::decode(address).map_err(|e| invalid(e.to_string()))?;
    if got_hrp != hrp {
        return Err(invalid(format!(
            "human-readable part {got_hrp} is not the configured {hrp}"
        )));
    }
    let version = WitnessVersion::try_from(version).map_err(|e| invalid(e.to_string()))?;
    let program = WitnessProgram::new(version, &program).map_err(|e| invalid(e.to_string()))?;
    Ok(ScriptBuf::new_witness_program(&program))
}

/// The witness version and program of a witness-program script.
fn witness_program(script: &bitcoin::Script) -> Option<(WitnessVersion, WitnessProgram)> {
    let version = script.witness_version()?;
    let bytes = script.as_bytes();
    // OP_n ‖ push(len) ‖ program, with 2..=40 program bytes (BIP141).
    let program = bytes.get(2..)?;
    if usize::from(*bytes.get(1)?) != program.len() {
        return None;
    }
    WitnessProgram::new(version, program)
        .ok()
        .map(|p| (version, p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    /// BIP173 valid addresses with their scripts (mainnet `bc` and testnet `tb`).
    const BIP173: &[(&str, &str)] = &[
        (
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
            "0014751e76e8199196d454941c45d1b3a323f1433bd6",
        ),
        (
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
            "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
        ),
        (
            "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
            "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
        ),
    ];

    #[test]
    fn bip173_vectors_decode_and_encode() {
        for (address, script_hex) in BIP173 {
            let lower = address.to_ascii_lowercase();
            let hrp = parse_hrp(lower.split('1').next().unwrap()).unwrap();
            let script = decode(hrp, address).unwrap();
            assert_eq!(hex::encode(script.as_bytes()), *script_hex, "{address}");
            assert_eq!(encode(hrp, &script).unwrap(), lower);
        }
    }

    #[test]
    fn bip173_invalid_addresses_are_refused() {
        let bc = parse_hrp("bc").unwrap();
        for bad in [
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", // bad checksum
            "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2", // invalid witness version
            "bc1rw5uspcuh",                               // program too short
            "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",      // v2 with bech32 checksum
            "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",       // v0 program of 16 bytes
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4X", // mixed case
        ] {
            assert!(decode(bc, bad).is_err(), "{bad}");
        }
        // A valid testnet address is refused under the mainnet HRP.
        assert!(decode(bc, BIP173[1].0).is_err());
    }

    #[test]
    fn regtest_rb_round_trip() {
        // The BIP173 example key 0279be66…f81798 (the generator G).
        let g = k256::PublicKey::from_sec1_bytes(
            &hex::decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
                .unwrap(),
        )
        .unwrap();
        let script = p2wpkh_script(&g).unwrap();
        assert_eq!(
            hex::encode(script.as_bytes()),
            "0014751e76e8199196d454941c45d1b3a323f1433bd6"
        );
        let bc = parse_hrp("bc").unwrap();
        assert_eq!(
            encode(bc, &script).unwrap(),
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        );
        let rb = parse_hrp("rb").unwrap();
        let address = encode(rb, &script).unwrap();
        assert!(address.starts_with("rb1q"), "{address}");
        assert_eq!(decode(rb, &address).unwrap(), script);
        assert!(decode(bc, &address).is_err());
        assert!(decode(parse_hrp("bcrt").unwrap(), &address).is_err());
    }

    #[test]
    fn non_canonical_hrp_is_refused() {
        assert!(parse_hrp("").is_err());
        assert!(parse_hrp("r b").is_err());
        assert!(parse_hrp("rb").is_ok());
    }

    proptest::proptest! {
        /// Arbitrary strings never panic the decoder; what it accepts re-encodes to the
        /// lowercase input.
        #[test]
        fn decode_is_total(address in "(rb1|bc1|RB1)?[a-zA-Z0-9]{0,70}") {
            let rb = parse_hrp("rb").unwrap();
            if let Ok(script) = decode(rb, &address) {
                proptest::prop_assert_eq!(encode(rb, &script).unwrap(), address.to_ascii_lowercase());
            }
        }

        /// Every witness program of a valid length round-trips under `rb`.
        #[test]
        fn witness_programs_round_trip(program in proptest::collection::vec(proptest::num::u8::ANY, 20..=20)) {
            let rb = parse_hrp("rb").unwrap();
            let script = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_slice(&program).unwrap());
            let address = encode(rb, &script).unwrap();
            proptest::prop_assert_eq!(decode(rb, &address).unwrap(), script);
        }
    }
}
