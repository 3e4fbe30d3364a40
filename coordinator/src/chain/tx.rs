//! Transactions: signed by an account, or made by the proposer (system transactions, no
//! account signature, checked by every replica). Each has one canonical encoding in the
//! format of `custody_proto::chain::codec`; a block's `tx_root` is the Merkle root over
//! these encodings.

use custody_proto::chain::codec::{Reader, Writer};
use custody_proto::chain::{
    CancellationCommitment, DecodeError, OrderCommitment, MAX_CHAIN_ID_BYTES,
};
use k256::ecdsa::signature::{Signer, Verifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};

use super::account::compressed;
use super::{Address, Amount, Asset, TxRejection};

/// Tag of the bytes an account signs.
pub const TRANSACTION_TAG: &str = "custody.chain.v1/transaction";
/// Tag of a signed transaction (the Merkle leaf of a user transaction).
pub const SIGNED_TRANSACTION_TAG: &str = "custody.chain.v1/signed-transaction";
/// Tag of the system transaction that credits a confirmed deposit.
pub const CREDIT_DEPOSIT_TAG: &str = "custody.chain.v1/credit-deposit";
/// Tag of the system transaction that records the key a key generation produced.
pub const RECORD_FLEET_KEY_TAG: &str = "custody.chain.v1/record-fleet-key";
/// Tag of the system transaction that settles a lock-out.
pub const SETTLE_LOCKOUT_TAG: &str = "custody.chain.v1/settle-lockout";
/// Domain tag of [`SystemTx::ReportBlame`].
pub const REPORT_BLAME_TAG: &str = "custody.chain.v1/report-blame";
/// Longest reason of a blame report, in bytes.
pub const MAX_BLAME_REASON_BYTES: usize = 256;

/// Longest external destination (an address on the external chain), in bytes.
pub const MAX_DESTINATION_BYTES: usize = 128;
/// Longest transaction encoding accepted.
pub const MAX_TRANSACTION_BYTES: usize = 4096;

/// What a signed transaction asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxBody {
    /// Move `amount` of `asset` to `to`.
    Transfer {
        /// Recipient.
        to: Address,
        /// Asset moved.
        asset: Asset,
        /// Amount, > 0.
        amount: Amount,
    },
    /// Ask the signers for a new distributed key; only the genesis admin may.
    RequestKeygen,
    /// Ask for a lock-in (deposit) address for `asset`, bound to the sender.
    RequestDepositAddress {
        /// Asset to deposit.
        asset: Asset,
    },
    /// Lock `amount` of `asset` and ask for it to be paid out to `to_external`.
    RequestLockOut {
        /// Asset to lock out.
        asset: Asset,
        /// Destination on the external chain, printable ASCII.
        to_external: String,
        /// Amount, > 0.
        amount: Amount,
    },
}

const BODY_TRANSFER: u8 = 1;
const BODY_KEYGEN: u8 = 2;
const BODY_DEPOSIT_ADDRESS: u8 = 3;
const BODY_LOCKOUT: u8 = 4;

/// An unsigned account transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Chain this transaction is valid on.
    pub chain_id: String,
    /// Sender's SEC1 compressed public key; the sender's address is derived from it.
    pub sender: [u8; 33],
    /// The sender account's next nonce (0 for a new account).
    pub nonce: u64,
    /// What it asks for.
    pub body: TxBody,
}

impl Transaction {
    /// The bytes the sender signs: tag, `chain_id` (var), `sender` (33), `nonce` (u64), body
    /// kind (u8) and the body's fields (`to` 20, asset code u8, amount u128,
    /// `to_external` var).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::tagged(TRANSACTION_TAG);
        w.var(self.chain_id.as_bytes());
        w.fixed(&self.sender);
        w.u64(self.nonce);
        match &self.body {
            TxBody::Transfer { to, asset, amount } => {
                w.u8(BODY_TRANSFER);
                w.fixed(&to.0);
                w.u8(asset.code());
                w.u128(*amount);
            }
            TxBody::RequestKeygen => w.u8(BODY_KEYGEN),
            TxBody::RequestDepositAddress { asset } => {
                w.u8(BODY_DEPOSIT_ADDRESS);
                w.u8(asset.code());
            }
            TxBody::RequestLockOut {
                asset,
                to_external,
                amount,
            } => {
                w.u8(BODY_LOCKOUT);
                w.u8(asset.code());
                w.var(to_external.as_bytes());
                w.u128(*amount);
            }
        }
        w.finish()
    }

    fn decode_signing_bytes(bytes: &[u8]) -> Result<Self, TxRejection> {
        let mut r = Reader::tagged(bytes, TRANSACTION_TAG)?;
        let chain_id = r.string("chain_id", MAX_CHAIN_ID_BYTES)?;
        let sender = r.array()?;
        let nonce = r.u64()?;
        let body = match r.u8()? {
            BODY_TRANSFER => TxBody::Transfer {
                to: Address(r.array()?),
                asset: asset(&mut r)?,
                amount: r.u128()?,
            },
            BODY_KEYGEN => TxBody::RequestKeygen,
            BODY_DEPOSIT_ADDRESS => TxBody::RequestDepositAddress {
                asset: asset(&mut r)?,
            },
            BODY_LOCKOUT => {
                let asset = asset(&mut r)?;
                // Length only here; content is checked when the transaction is applied.
                let to_external = r.string("to_external", MAX_DESTINATION_BYTES)?;
                TxBody::RequestLockOut {
                    asset,
                    to_external,
                    amount: r.u128()?,
                }
            }
            _ => {
                return Err(DecodeError::Invalid {
                    field: "body",
                    reason: "unknown transaction kind",
                }
                .into())
            }
        };
        r.finish()?;
        Ok(Self {
            chain_id,
            sender,
            nonce,
            body,
        })
    }

    /// Signs with `key` (RFC 6979 ECDSA over SHA-256 of [`signing_bytes`](Self::signing_bytes),
    /// s normalised low). `key` must be the sender's key, or the result will not verify.
    pub fn sign(self, key: &SigningKey) -> SignedTransaction {
        let signature: Signature = key.sign(&self.signing_bytes());
        let signature = signature.normalize_s().unwrap_or(signature);
        SignedTransaction {
            tx: self,
            signature: signature.to_bytes().into(),
        }
    }
}

fn asset(r: &mut Reader<'_>) -> Result<Asset, TxRejection> {
    let code = r.u8()?;
    Asset::from_code(code).ok_or(TxRejection::UnknownAsset(code))
}

/// An account transaction with its ECDSA signature `r ‖ s`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// ECDSA secp256k1 signature, `r ‖ s`, s low.
    pub signature: [u8; 64],
}

impl SignedTransaction {
    /// The sender's address.
    pub fn sender(&self) -> Address {
        Address::of_compressed(&self.tx.sender)
    }

    /// Checks the signature: a valid sender key, a low-s signature that verifies over the
    /// signing bytes.
    pub fn verify_signature(&self) -> Result<(), TxRejection> {
        let key = VerifyingKey::from_sec1_bytes(&self.tx.sender)
            .map_err(|_| TxRejection::BadPublicKey)?;
        // Only the compressed form is accepted, so one key has one address.
        if compressed(&key) != self.tx.sender {
            return Err(TxRejection::BadPublicKey);
        }
        let sig = Signature::from_slice(&self.signature).map_err(|_| TxRejection::BadSignature)?;
        if sig.normalize_s().is_some() {
            return Err(TxRejection::BadSignature);
        }
        key.verify(&self.tx.signing_bytes(), &sig)
            .map_err(|_| TxRejection::BadSignature)
    }

    /// The canonical encoding: tag, signing bytes (var), signature (64).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(SIGNED_TRANSACTION_TAG);
        w.var(&self.tx.signing_bytes());
        w.fixed(&self.signature);
        w.finish()
    }

    /// Decodes exactly one signed transaction. The signature is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self, TxRejection> {
        let mut r = Reader::tagged(bytes, SIGNED_TRANSACTION_TAG)?;
        let tx = Transaction::decode_signing_bytes(r.var("transaction", MAX_TRANSACTION_BYTES)?)?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Self { tx, signature })
    }
}

/// How a lock-out ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutOutcome {
    /// The external payment is confirmed: the locked mapped amount is destroyed.
    Burned,
    /// The lock-out failed or timed out: the locked amount returns to its owner.
    Refunded,
    /// The committed cancellation was mined to depth z: the locked amount minus the
    /// cancellation's committed fee returns to its owner; the fee is destroyed (it left the
    /// fleet's external address).
    Cancelled,
}

/// A transaction the proposer puts in a block from what it observed (its chain adapters,
/// the signing sessions); every replica checks it against the state. No account signs it,
/// so it must never be accepted from outside: only the proposer's own observers create
/// these, and a future mempool or RPC must refuse them. Whether a credited deposit really
/// exists on the external chain is for each replica's adapter to confirm (DESIGN §3,
/// lock-in); this module checks only the state rules (once per deposit id, to an account
/// with a deposit address for the asset, lock-out transitions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemTx {
    /// A lock-in deposit with enough confirmations: mint `amount` to `account`.
    CreditDeposit {
        /// Asset deposited.
        asset: Asset,
        /// The deposit's identity on the external chain (e.g. hash of txid and output);
        /// credited at most once.
        deposit_id: [u8; 32],
        /// Owner of the deposit address.
        account: Address,
        /// Amount, > 0.
        amount: Amount,
    },
    /// The order of a lock-out is final: signers may sign it.
    CommitOrder(OrderCommitment),
    /// The committed order of a lock-out expired with its signing started: signers may sign
    /// this cancellation, which uses up the same nonce or outputs and pays nothing out.
    CommitCancellation(CancellationCommitment),
    /// The DKG that key generation request `request_id` asked for produced this key.
    RecordFleetKey {
        /// The key generation request.
        request_id: u64,
        /// The key id the DKG ran with.
        key_id: [u8; 32],
        /// The joint public key, SEC1 compressed.
        public_key: [u8; 33],
        /// The BIP32 chain code.
        chain_code: [u8; 32],
        /// How many signers sign, 1..=holders.
        threshold: u16,
        /// Who holds a share, strictly increasing.
        holders: Vec<u16>,
    },
    /// A signing-fleet session aborted and named culprits (OPS-02): the chain records who,
    /// why and the digest of the evidence (the culprits' signed envelopes, which the
    /// coordinator keeps; anyone with the signers' pinned node keys can check them).
    ReportBlame {
        /// The aborted session, reported once.
        session_id: [u8; 32],
        /// The signer indices the protocol named, strictly increasing.
        culprits: Vec<u16>,
        /// What failed, for a person (at most [`MAX_BLAME_REASON_BYTES`]).
        reason: String,
        /// [`crate::fleet::evidence_digest`] of the evidence envelopes.
        evidence_digest: [u8; 32],
    },
    /// End a lock-out.
    SettleLockOut {
        /// The lock-out.
        lockout_id: [u8; 32],
        /// Burned or refunded.
        outcome: LockOutOutcome,
    },
}

/// Any transaction a block can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockTx {
    /// Signed by an account.
    Signed(SignedTransaction),
    /// Made by the proposer.
    System(SystemTx),
}

impl BlockTx {
    /// The canonical encoding, which is the transaction's Merkle leaf. A
    /// [`SystemTx::CommitOrder`] is encoded as exactly its [`OrderCommitment`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            BlockTx::Signed(s) => s.encode(),
            BlockTx::System(SystemTx::CommitOrder(c)) => c.encode(),
            BlockTx::System(SystemTx::CommitCancellation(c)) => c.encode(),
            BlockTx::System(SystemTx::CreditDeposit {
                asset,
                deposit_id,
                account,
                amount,
            }) => {
                let mut w = Writer::tagged(CREDIT_DEPOSIT_TAG);
                w.u8(asset.code());
                w.fixed(deposit_id);
                w.fixed(&account.0);
                w.u128(*amount);
                w.finish()
            }
            BlockTx::System(SystemTx::RecordFleetKey {
                request_id,
                key_id,
                public_key,
                chain_code,
                threshold,
                holders,
            }) => {
                let mut w = Writer::tagged(RECORD_FLEET_KEY_TAG);
                w.u64(*request_id);
                w.fixed(key_id);
                w.fixed(public_key);
                w.fixed(chain_code);
                w.u16(*threshold);
                super::state::encode_holders(&mut w, holders);
                w.finish()
            }
            BlockTx::System(SystemTx::ReportBlame {
                session_id,
                culprits,
                reason,
                evidence_digest,
            }) => {
                let mut w = Writer::tagged(REPORT_BLAME_TAG);
                w.fixed(session_id);
                super::state::encode_holders(&mut w, culprits);
                w.var(reason.as_bytes());
                w.fixed(evidence_digest);
                w.finish()
            }
            BlockTx::System(SystemTx::SettleLockOut {
                lockout_id,
                outcome,
            }) => {
                let mut w = Writer::tagged(SETTLE_LOCKOUT_TAG);
                w.fixed(lockout_id);
                w.u8(match outcome {
                    LockOutOutcome::Burned => 1,
                    LockOutOutcome::Refunded => 2,
                    LockOutOutcome::Cancelled => 3,
                });
                w.finish()
            }
        }
    }

    /// Decodes exactly one transaction of any kind, chosen by its tag.
    pub fn decode(bytes: &[u8]) -> Result<Self, TxRejection> {
        if bytes.len() > custody_proto::chain::MAX_ORDER_BYTES + 1024 {
            return Err(DecodeError::TooLong {
                field: "transaction",
                len: bytes.len(),
                max: custody_proto::chain::MAX_ORDER_BYTES + 1024,
            }
            .into());
        }
        if let Ok(mut r) = Reader::tagged(bytes, CREDIT_DEPOSIT_TAG) {
            let asset = asset(&mut r)?;
            let tx = SystemTx::CreditDeposit {
                asset,
                deposit_id: r.array()?,
                account: Address(r.array()?),
                amount: r.u128()?,
            };
            r.finish()?;
            return Ok(BlockTx::System(tx));
        }
        if let Ok(mut r) = Reader::tagged(bytes, RECORD_FLEET_KEY_TAG) {
            let tx = SystemTx::RecordFleetKey {
                request_id: r.u64()?,
                key_id: r.array()?,
                public_key: r.array()?,
                chain_code: r.array()?,
                threshold: r.u16()?,
                holders: super::state::decode_holders(&mut r)?,
            };
            r.finish()?;
            return Ok(BlockTx::System(tx));
        }
        if let Ok(mut r) = Reader::tagged(bytes, REPORT_BLAME_TAG) {
            let tx = SystemTx::ReportBlame {
                session_id: r.array()?,
                culprits: super::state::decode_holders(&mut r)?,
                reason: r.string("reason", MAX_BLAME_REASON_BYTES)?,
                evidence_digest: r.array()?,
            };
            r.finish()?;
            return Ok(BlockTx::System(tx));
        }
        if let Ok(mut r) = Reader::tagged(bytes, SETTLE_LOCKOUT_TAG) {
            let lockout_id = r.array()?;
            let outcome = match r.u8()? {
                1 => LockOutOutcome::Burned,
                2 => LockOutOutcome::Refunded,
                3 => LockOutOutcome::Cancelled,
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "outcome",
                        reason: "unknown outcome",
                    }
                    .into())
                }
            };
            r.finish()?;
            return Ok(BlockTx::System(SystemTx::SettleLockOut {
                lockout_id,
                outcome,
            }));
        }
        if Reader::tagged(bytes, custody_proto::chain::CANCELLATION_COMMITMENT_TAG).is_ok() {
            return Ok(BlockTx::System(SystemTx::CommitCancellation(
                CancellationCommitment::decode(bytes)?,
            )));
        }
        if Reader::tagged(bytes, custody_proto::chain::ORDER_COMMITMENT_TAG).is_ok() {
            return Ok(BlockTx::System(SystemTx::CommitOrder(
                OrderCommitment::decode(bytes)?,
            )));
        }
        SignedTransaction::decode(bytes).map(BlockTx::Signed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    fn transfer(k: &SigningKey, nonce: u64) -> Transaction {
        Transaction {
            chain_id: "test".into(),
            sender: compressed(k.verifying_key()),
            nonce,
            body: TxBody::Transfer {
                to: Address([3; 20]),
                asset: Asset::MBTC,
                amount: 5,
            },
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_leaf_encoding() {
        let k = key(1);
        let bodies = [
            TxBody::Transfer {
                to: Address([3; 20]),
                asset: Asset::MBTC,
                amount: u128::MAX,
            },
            TxBody::RequestKeygen,
            TxBody::RequestDepositAddress { asset: Asset::METH },
            TxBody::RequestLockOut {
                asset: Asset::METH,
                to_external: "0xabc".into(),
                amount: 7,
            },
        ];
        let mut all: Vec<BlockTx> = bodies
            .into_iter()
            .map(|body| {
                let tx = Transaction {
                    chain_id: "test".into(),
                    sender: compressed(k.verifying_key()),
                    nonce: 9,
                    body,
                };
                BlockTx::Signed(tx.sign(&k))
            })
            .collect();
        all.push(BlockTx::System(SystemTx::CreditDeposit {
            asset: Asset::METH,
            deposit_id: [5; 32],
            account: Address([6; 20]),
            amount: 1,
        }));
        all.push(BlockTx::System(SystemTx::CommitOrder(
            OrderCommitment::new([8; 32], vec![1, 2]).unwrap(),
        )));
        all.push(BlockTx::System(SystemTx::RecordFleetKey {
            request_id: 3,
            key_id: [4; 32],
            public_key: [2; 33],
            chain_code: [5; 32],
            threshold: 2,
            holders: vec![1, 2, 3],
        }));
        all.push(BlockTx::System(SystemTx::CommitCancellation(
            CancellationCommitment::new([8; 32], 42_000, vec![3, 4]).unwrap(),
        )));
        for outcome in [
            LockOutOutcome::Burned,
            LockOutOutcome::Refunded,
            LockOutOutcome::Cancelled,
        ] {
            all.push(BlockTx::System(SystemTx::SettleLockOut {
                lockout_id: [8; 32],
                outcome,
            }));
        }
        all.push(BlockTx::System(SystemTx::ReportBlame {
            session_id: [9; 32],
            culprits: vec![2, 4],
            reason: "presign round 2: Πelog of Γ fails".into(),
            evidence_digest: [10; 32],
        }));
        for tx in all {
            let bytes = tx.encode();
            assert_eq!(BlockTx::decode(&bytes).unwrap(), tx);
            for cut in 0..bytes.len() {
                assert!(
                    BlockTx::decode(&bytes[..cut]).is_err(),
                    "{tx:?} prefix {cut} accepted"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(BlockTx::decode(&longer).is_err());
        }
    }

    #[test]
    fn commit_order_leaf_is_the_order_commitment_bytes() {
        let c = OrderCommitment::new([8; 32], b"raw unsigned tx".to_vec()).unwrap();
        let leaf = BlockTx::System(SystemTx::CommitOrder(c.clone())).encode();
        assert_eq!(leaf, c.encode());
        assert_eq!(OrderCommitment::decode(&leaf).unwrap(), c);
        // No other transaction decodes as an order commitment.
        let signed = BlockTx::Signed(transfer(&key(1), 0).sign(&key(1))).encode();
        assert!(OrderCommitment::decode(&signed).is_err());
    }

    #[test]
    fn signature_checks_key_message_and_low_s() {
        let k = key(1);
        let good = transfer(&k, 0).sign(&k);
        good.verify_signature().unwrap();
        // Signed by another key.
        let forged = transfer(&k, 0).sign(&key(2));
        assert_eq!(forged.verify_signature(), Err(TxRejection::BadSignature));
        // Message changed after signing.
        let mut changed = good.clone();
        changed.tx.nonce = 1;
        assert_eq!(changed.verify_signature(), Err(TxRejection::BadSignature));
        // The high-s twin of a valid signature is refused.
        let sig = Signature::from_slice(&good.signature).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let mut malleated = good.clone();
        malleated.signature = high.to_bytes().into();
        // k256 0.13's `verify` refuses high s as well; our explicit check keeps the rule if a
        // later k256 relaxes that default.
        assert!(k
            .verifying_key()
            .verify(&good.tx.signing_bytes(), &high)
            .is_err());
        assert_eq!(malleated.verify_signature(), Err(TxRejection::BadSignature));
        // A sender that is not a curve point.
        let mut bad_key = good;
        bad_key.tx.sender = [2; 33];
        bad_key.tx.sender[1..].fill(0xff);
        assert_eq!(bad_key.verify_signature(), Err(TxRejection::BadPublicKey));
    }

    #[test]
    fn unknown_asset_and_kind_codes_are_refused_on_decode() {
        let k = key(1);
        let tx = transfer(&k, 0);
        let mut bytes = tx.signing_bytes();
        // The asset code is the 17th byte from the end (before the u128 amount).
        let at = bytes.len() - 17;
        assert_eq!(bytes[at], Asset::MBTC.code());
        bytes[at] = 9;
        assert_eq!(
            Transaction::decode_signing_bytes(&bytes),
            Err(TxRejection::UnknownAsset(9))
        );
        let mut kind = tx.signing_bytes();
        let at = kind.len() - 38;
        assert_eq!(kind[at], BODY_TRANSFER);
        kind[at] = 77;
        assert!(matches!(
            Transaction::decode_signing_bytes(&kind),
            Err(TxRejection::Malformed(_))
        ));
    }
}
