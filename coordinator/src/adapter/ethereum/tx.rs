//! The pure half of the Ethereum adapter: addresses, the unsigned transaction and its signing
//! preimage, and turning one fleet signature into the signed EIP-2718 encoding. No I/O.
//!
//! The canonical encoding of an unsigned transaction (what [`UnsignedWithdrawal::unsigned_tx`]
//! carries) is its signing preimage itself:
//!
//! - EIP-1559: `0x02 ‖ rlp([chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas_limit,
//!   to, value, data, access_list])`;
//! - legacy with EIP-155 replay protection: `rlp([nonce, gas_price, gas_limit, to, value, data,
//!   chain_id, 0, 0])`.
//!
//! So what the signers hash is exactly what the adapter later rebuilds, and the two kinds are
//! told apart by the first byte (0x02, or an RLP list header ≥ 0xc0).
//!
//! [`UnsignedWithdrawal::unsigned_tx`]: crate::adapter::UnsignedWithdrawal::unsigned_tx

use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_rlp::Decodable;
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;

use crate::adapter::{AdapterError, FleetSignature, SignedWithdrawal};

/// EIP-2718 type byte of an EIP-1559 transaction.
const EIP1559_TYPE: u8 = 0x02;

/// The Ethereum address of a secp256k1 public key: the last 20 bytes of the Keccak-256 of the
/// uncompressed point without its 0x04 prefix.
pub fn address_of(public_key: &k256::PublicKey) -> Address {
    let point = public_key.to_encoded_point(false);
    // An uncompressed SEC1 point is 0x04 ‖ x ‖ y; `to_encoded_point(false)` always gives that
    // form for a valid public key (the identity cannot be a `PublicKey`).
    let xy = point.as_bytes().get(1..).unwrap_or_default();
    Address::from_word(keccak256(xy))
}

/// The EIP-55 mixed-case checksum form of `address` (no EIP-1191 chain id).
pub fn checksummed(address: &Address) -> String {
    address.to_checksum(None)
}

/// Parses an address strictly: `0x` and 40 hex digits. All-lowercase and all-uppercase forms
/// carry no checksum and are taken as they are; a mixed-case form must be the valid EIP-55
/// checksum, so that a mistyped address is refused rather than paid.
pub fn parse_address(text: &str) -> Result<Address, AdapterError> {
    let invalid = |why: &str| AdapterError::Invalid(format!("address {text:?}: {why}"));
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| invalid("does not start with 0x"))?;
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("is not 40 hexadecimal digits"));
    }
    let mut bytes = [0u8; 20];
    alloy_primitives::hex::decode_to_slice(digits, &mut bytes)
        .map_err(|e| invalid(&e.to_string()))?;
    let address = Address::from(bytes);
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper && checksummed(&address) != text {
        return Err(invalid("mixed case that is not its EIP-55 checksum"));
    }
    Ok(address)
}

/// Lowercase `0x` hex of a 32-byte hash (transaction and block hashes, deposit ids).
pub fn hash_hex(hash: &B256) -> String {
    format!("{hash:#x}")
}

/// A plain ETH transfer the adapter builds, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsignedTx {
    /// EIP-1559 (type 2) with an empty access list and no data.
    Eip1559(TxEip1559),
    /// Legacy (type 0) with EIP-155 chain id.
    Legacy(TxLegacy),
}

/// The fields of a plain transfer, common to both transaction types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The sender's account nonce.
    pub nonce: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// EIP-1559: maxFeePerGas. Legacy: gasPrice.
    pub max_fee_per_gas: u128,
    /// EIP-1559: maxPriorityFeePerGas. Ignored by legacy.
    pub max_priority_fee_per_gas: u128,
    /// Destination.
    pub to: Address,
    /// Wei sent.
    pub value: u128,
}

impl UnsignedTx {
    /// A plain transfer (no data, no access list) of the given type.
    pub fn transfer(legacy: bool, t: &Transfer) -> Self {
        if legacy {
            Self::Legacy(TxLegacy {
                chain_id: Some(t.chain_id),
                nonce: t.nonce,
                gas_price: t.max_fee_per_gas,
                gas_limit: t.gas_limit,
                to: TxKind::Call(t.to),
                value: U256::from(t.value),
                input: Bytes::new(),
            })
        } else {
            Self::Eip1559(TxEip1559 {
                chain_id: t.chain_id,
                nonce: t.nonce,
                gas_limit: t.gas_limit,
                max_fee_per_gas: t.max_fee_per_gas,
                max_priority_fee_per_gas: t.max_priority_fee_per_gas,
                to: TxKind::Call(t.to),
                value: U256::from(t.value),
                access_list: Default::default(),
                input: Bytes::new(),
            })
        }
    }

    /// The transfer's fields, with `legacy` telling the type; `None` for a contract creation
    /// (which this adapter never builds) or a legacy transaction without chain id.
    pub fn fields(&self) -> Option<(bool, Transfer)> {
        let (legacy, t) = match self {
            Self::Eip1559(tx) => (
                false,
                Transfer {
                    chain_id: tx.chain_id,
                    nonce: tx.nonce,
                    gas_limit: tx.gas_limit,
                    max_fee_per_gas: tx.max_fee_per_gas,
                    max_priority_fee_per_gas: tx.max_priority_fee_per_gas,
                    to: *tx.to.to()?,
                    value: u128::try_from(tx.value).ok()?,
                },
            ),
            Self::Legacy(tx) => (
                true,
                Transfer {
                    chain_id: tx.chain_id?,
                    nonce: tx.nonce,
                    gas_limit: tx.gas_limit,
                    max_fee_per_gas: tx.gas_price,
                    max_priority_fee_per_gas: tx.gas_price,
                    to: *tx.to.to()?,
                    value: u128::try_from(tx.value).ok()?,
                },
            ),
        };
        Some((legacy, t))
    }

    /// The exact bytes whose Keccak-256 is signed (see the module docs).
    pub fn signing_preimage(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Eip1559(tx) => tx.encode_for_signing(&mut out),
            Self::Legacy(tx) => tx.encode_for_signing(&mut out),
        }
        out
    }

    /// Keccak-256 of [`Self::signing_preimage`].
    pub fn signing_hash(&self) -> B256 {
        keccak256(self.signing_preimage())
    }

    /// The chain id the transaction commits to (`None` only for a pre-EIP-155 legacy one,
    /// which [`Self::decode_preimage`] never returns).
    pub fn chain_id(&self) -> Option<u64> {
        match self {
            Self::Eip1559(tx) => Some(tx.chain_id),
            Self::Legacy(tx) => tx.chain_id,
        }
    }

    /// Rebuilds a transaction from its signing preimage, refusing anything this adapter would
    /// not have built: other types, a pre-EIP-155 legacy form, non-zero EIP-155 r and s
    /// placeholders, trailing bytes or any non-canonical RLP (the decoded transaction must
    /// encode back to exactly `preimage`).
    pub fn decode_preimage(preimage: &[u8]) -> Result<Self, AdapterError> {
        let invalid = |why: String| AdapterError::Invalid(format!("unsigned transaction: {why}"));
        let first = *preimage
            .first()
            .ok_or_else(|| invalid("empty".to_owned()))?;
        let tx = if first == EIP1559_TYPE {
            let mut body = preimage.get(1..).unwrap_or_default();
            Self::Eip1559(TxEip1559::decode(&mut body).map_err(|e| invalid(e.to_string()))?)
        } else if first >= 0xc0 {
            let mut body = preimage;
            let tx = TxLegacy::decode(&mut body).map_err(|e| invalid(e.to_string()))?;
            if tx.chain_id.is_none() {
                return Err(invalid(
                    "legacy transaction without EIP-155 chain id".into(),
                ));
            }
            Self::Legacy(tx)
        } else {
            return Err(invalid(format!(
                "unknown transaction type byte {first:#04x}"
            )));
        };
        if tx.signing_preimage() != preimage {
            return Err(invalid("not in canonical form".into()));
        }
        Ok(tx)
    }

    /// Checks `signature` against `public_key` over `digest` (low s, a plain y-parity recovery
    /// id, the recovered key is `public_key`, and the signature verifies), then returns the
    /// signed EIP-2718 encoding and its hash. `digest` must be [`Self::signing_hash`]; the
    /// caller checks that.
    pub fn attach(
        &self,
        public_key: &k256::PublicKey,
        digest: &B256,
        signature: &FleetSignature,
    ) -> Result<SignedWithdrawal, AdapterError> {
        verify(
            public_key,
            digest,
            &signature.signature,
            signature.recovery_id,
        )?;
        let (r, s) = signature.signature.split_bytes();
        let r: [u8; 32] = r.into();
        let s: [u8; 32] = s.into();
        let sig = alloy_primitives::Signature::new(
            U256::from_be_bytes(r),
            U256::from_be_bytes(s),
            signature.recovery_id.is_y_odd(),
        );
        let mut raw = Vec::new();
        match self {
            Self::Eip1559(tx) => tx.clone().into_signed(sig).eip2718_encode(&mut raw),
            Self::Legacy(tx) => tx.clone().into_signed(sig).eip2718_encode(&mut raw),
        }
        // The transaction hash is the Keccak-256 of the EIP-2718 encoding for every type
        // (for legacy it is the plain signed RLP list).
        let txid = hash_hex(&keccak256(&raw));
        Ok(SignedWithdrawal { raw, txid })
    }
}

/// The fleet signature checks of [`UnsignedTx::attach`].
fn verify(
    public_key: &k256::PublicKey,
    digest: &B256,
    signature: &Signature,
    recovery_id: RecoveryId,
) -> Result<(), AdapterError> {
    let refuse = |why: &str| AdapterError::Invalid(format!("signature refused: {why}"));
    if signature.normalize_s().is_some() {
        return Err(refuse("s is not in the lower half of the group order"));
    }
    if recovery_id.is_x_reduced() {
        return Err(refuse(
            "recovery id says r was reduced mod n, which Ethereum cannot encode",
        ));
    }
    let expected = VerifyingKey::from(public_key);
    expected
        .verify_prehash(digest.as_slice(), signature)
        .map_err(|_| refuse("does not verify under the input's public key"))?;
    let recovered = VerifyingKey::recover_from_prehash(digest.as_slice(), signature, recovery_id)
        .map_err(|_| refuse("no public key recovers from it with its recovery id"))?;
    if recovered != expected {
        return Err(refuse(
            "the recovery id recovers another key (wrong y parity)",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use alloy_consensus::transaction::SignerRecoverable;
    use alloy_consensus::TxEnvelope;
    use alloy_eips::eip2718::Decodable2718;
    use k256::ecdsa::SigningKey;

    /// The test vectors of EIP-55 (all caps, all lower, normal).
    const EIP55: [&str; 8] = [
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_vectors_render_and_parse() {
        for v in EIP55 {
            let a = parse_address(v).unwrap();
            let mixed = v.bytes().any(|b| b.is_ascii_lowercase())
                && v[2..].bytes().any(|b| b.is_ascii_uppercase());
            if mixed {
                assert_eq!(checksummed(&a), v);
            }
            assert_eq!(parse_address(&v.to_lowercase()).unwrap(), a);
        }
    }

    #[test]
    fn bad_addresses_are_refused() {
        // One letter's case flipped in a valid checksum.
        assert!(parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_err());
        assert!(parse_address("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
        assert!(parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA").is_err());
        assert!(parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd").is_err());
        assert!(parse_address("0xgaaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_err());
        assert!(parse_address("").is_err());
    }

    /// The address of private key 1 (the generator G) is a well-known value, and anvil's first
    /// dev account is derived from its published key.
    #[test]
    fn address_from_public_key() {
        let one = SigningKey::from_slice(&[[0u8; 31].as_slice(), &[1]].concat()).unwrap();
        assert_eq!(
            checksummed(&address_of(&one.verifying_key().into())),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
        let anvil0 = SigningKey::from_slice(
            &hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            checksummed(&address_of(&anvil0.verifying_key().into())),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
    }

    fn transfer() -> Transfer {
        Transfer {
            chain_id: 31337,
            nonce: 7,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: parse_address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").unwrap(),
            value: 123_456_789,
        }
    }

    fn sign(key: &SigningKey, digest: &B256) -> FleetSignature {
        let (signature, recovery_id) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
        FleetSignature {
            signature,
            recovery_id,
        }
    }

    #[test]
    fn preimage_round_trips_and_matches_alloy_signing_hash() {
        for legacy in [false, true] {
            let tx = UnsignedTx::transfer(legacy, &transfer());
            let pre = tx.signing_preimage();
            assert_eq!(pre[0] == EIP1559_TYPE, !legacy);
            let back = UnsignedTx::decode_preimage(&pre).unwrap();
            assert_eq!(back, tx);
            let alloy_hash = match &tx {
                UnsignedTx::Eip1559(t) => t.signature_hash(),
                UnsignedTx::Legacy(t) => t.signature_hash(),
            };
            assert_eq!(tx.signing_hash(), alloy_hash);
            assert_eq!(tx.chain_id(), Some(31337));
        }
    }

    #[test]
    fn decode_refuses_what_the_adapter_never_builds() {
        let pre = UnsignedTx::transfer(false, &transfer()).signing_preimage();
        // Trailing byte.
        let mut longer = pre.clone();
        longer.push(0);
        assert!(UnsignedTx::decode_preimage(&longer).is_err());
        // Truncated.
        assert!(UnsignedTx::decode_preimage(&pre[..pre.len() - 1]).is_err());
        // Other type bytes (EIP-2930, EIP-4844) and garbage.
        for ty in [0x01u8, 0x03, 0x04, 0x7f] {
            let mut other = pre.clone();
            other[0] = ty;
            assert!(UnsignedTx::decode_preimage(&other).is_err(), "type {ty}");
        }
        assert!(UnsignedTx::decode_preimage(&[]).is_err());
        // A pre-EIP-155 legacy transaction (six fields, no chain id).
        let mut bare = Vec::new();
        let UnsignedTx::Legacy(mut legacy) = UnsignedTx::transfer(true, &transfer()) else {
            unreachable!()
        };
        legacy.chain_id = None;
        legacy.encode_for_signing(&mut bare);
        assert!(UnsignedTx::decode_preimage(&bare).is_err());
        // An EIP-155 form whose r and s placeholders are not zero (alloy's decoder skips them).
        let mut placeholder = UnsignedTx::transfer(true, &transfer()).signing_preimage();
        assert_eq!(&placeholder[placeholder.len() - 2..], &[0x80, 0x80]);
        let last = placeholder.len() - 1;
        placeholder[last] = 0x01;
        assert!(UnsignedTx::decode_preimage(&placeholder).is_err());
    }

    #[test]
    fn attach_gives_what_alloy_decodes_and_recovers() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let public: k256::PublicKey = key.verifying_key().into();
        for legacy in [false, true] {
            let tx = UnsignedTx::transfer(legacy, &transfer());
            let digest = tx.signing_hash();
            let signed = tx.attach(&public, &digest, &sign(&key, &digest)).unwrap();
            let envelope = TxEnvelope::decode_2718(&mut signed.raw.as_slice()).unwrap();
            assert_eq!(hash_hex(envelope.tx_hash()), signed.txid);
            assert_eq!(envelope.recover_signer().unwrap(), address_of(&public));
            assert_eq!(envelope.is_legacy(), legacy);
            assert_eq!(
                alloy_consensus::Transaction::chain_id(&envelope),
                Some(31337)
            );
        }
    }

    #[test]
    fn attach_refuses_bad_signatures() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let other = SigningKey::from_slice(&[8u8; 32]).unwrap();
        let public: k256::PublicKey = key.verifying_key().into();
        let tx = UnsignedTx::transfer(false, &transfer());
        let digest = tx.signing_hash();
        // Another key.
        assert!(tx.attach(&public, &digest, &sign(&other, &digest)).is_err());
        // Another digest.
        let wrong = keccak256(b"something else");
        assert!(tx.attach(&public, &digest, &sign(&key, &wrong)).is_err());
        // Flipped parity.
        let mut flipped = sign(&key, &digest);
        flipped.recovery_id = RecoveryId::new(!flipped.recovery_id.is_y_odd(), false);
        assert!(tx.attach(&public, &digest, &flipped).is_err());
        // High s: the same signature with s negated still verifies in plain ECDSA.
        let good = sign(&key, &digest);
        let (r, s) = good.signature.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let high = FleetSignature {
            signature: high,
            recovery_id: RecoveryId::new(!good.recovery_id.is_y_odd(), false),
        };
        assert!(tx.attach(&public, &digest, &high).is_err());
        assert!(tx.attach(&public, &digest, &good).is_ok());
    }

    #[test]
    fn hashes_are_lowercase_0x_hex() {
        let h = keccak256(b"");
        assert_eq!(
            hash_hex(&h),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }
}
