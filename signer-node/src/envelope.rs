//! Signed protocol envelopes between signers (NET-01, NET-02, NET-04).
//!
//! The sender signs, with its Ed25519 node key, the [`signing_bytes`] of
//! (fleet id, session id, protocol, round, from, to, SHA-256(payload)). The receiver runs
//! [`EnvelopeVerifier::verify`], which checks in this order and stops at the first failure:
//!
//! 1. size: the payload is at most the configured cap (`RESOURCE_EXHAUSTED`). The transport
//!    refuses larger encoded messages before decoding them (see [`crate::server`]);
//! 2. well-formedness: 32-byte session id, a known protocol, round, `from` and `to` in range,
//!    a recipient, a 64-byte signature (`INVALID_ARGUMENT`);
//! 3. fleet id is ours (`INVALID_ARGUMENT`);
//! 4. the caller's mTLS certificate is a signer's and its index equals `from`
//!    (`PERMISSION_DENIED`), and `from` is a pinned peer other than us;
//! 5. `to` is us or broadcast (`INVALID_ARGUMENT`);
//! 6. the signature verifies under `from`'s pinned node key, with the payload hash
//!    recomputed here (`PERMISSION_DENIED`).
//!
//! Duplicate detection needs the session, so it belongs to the [`crate::inbox::SessionInbox`]
//! that receives the [`VerifiedEnvelope`]; [`crate::inbox::DuplicateFilter`] implements it.

use std::collections::BTreeMap;
use std::fmt;

use custody_proto::signer::v1::{envelope::To, Broadcast, Envelope, ProtocolKind};
use ed25519_dalek::{Signature, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::config::{FleetId, ValidatedConfig};
use crate::identity::CallerIdentity;
use crate::node_key::NodeKey;

/// Domain separation tag that starts every envelope's signed bytes.
pub const ENVELOPE_SIGNING_TAG: &[u8] = b"custody.signer.v1/envelope";
/// Length of a session id.
pub const SESSION_ID_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Upper bound of everything in an encoded envelope except its payload: fleet id (64),
/// session id (32), signature (64), the integers and the protobuf tags and lengths, rounded
/// up generously. The transport's decoding cap is the payload cap plus this.
pub const ENVELOPE_OVERHEAD_BYTES: usize = 1024;

/// A 32-byte session id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; SESSION_ID_LEN]);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", hex::encode(self.0))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Who an envelope is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// One signer, by index.
    Signer(u16),
    /// Every party of the session.
    Broadcast,
}

/// Everything an envelope's signature covers except the payload itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The fleet.
    pub fleet_id: FleetId,
    /// The session.
    pub session_id: SessionId,
    /// The protocol (never `Unspecified`).
    pub protocol: ProtocolKind,
    /// The round.
    pub round: u16,
    /// The sender's signer index.
    pub from: u16,
    /// The recipient.
    pub to: Recipient,
}

/// What identifies one message of a session; the same key twice is a duplicate (NET-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey {
    /// The session.
    pub session_id: SessionId,
    /// The protocol, as its wire number.
    pub protocol: i32,
    /// The round.
    pub round: u16,
    /// The sender.
    pub from: u16,
    /// The recipient.
    pub to: Recipient,
}

/// The bytes an envelope's signature covers: the tag, then each field as a 4-byte big-endian
/// length followed by its bytes (integers big-endian, fixed width; `to` as 0 for broadcast
/// or 1 followed by the index).
pub fn signing_bytes(header: &EnvelopeHeader, payload_hash: &[u8; 32]) -> Vec<u8> {
    let to = match header.to {
        Recipient::Broadcast => vec![0u8],
        Recipient::Signer(i) => {
            let mut v = vec![1u8];
            v.extend_from_slice(&i.to_be_bytes());
            v
        }
    };
    let fields: [&[u8]; 8] = [
        ENVELOPE_SIGNING_TAG,
        header.fleet_id.as_str().as_bytes(),
        &header.session_id.0,
        &(header.protocol as i32).to_be_bytes(),
        &header.round.to_be_bytes(),
        &header.from.to_be_bytes(),
        &to,
        payload_hash,
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for field in fields {
        // Every field is far below 4 GiB (the largest is the 64-character fleet id).
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// SHA-256 of a payload.
pub fn payload_hash(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}

/// Builds and signs an outgoing envelope.
pub fn seal(key: &NodeKey, header: &EnvelopeHeader, payload: Vec<u8>) -> Envelope {
    let signature = key.sign(&signing_bytes(header, &payload_hash(&payload)));
    Envelope {
        fleet_id: header.fleet_id.as_str().to_owned(),
        session_id: header.session_id.0.to_vec(),
        protocol: header.protocol as i32,
        round: u32::from(header.round),
        from: u32::from(header.from),
        to: Some(match header.to {
            Recipient::Broadcast => To::Broadcast(Broadcast {}),
            Recipient::Signer(i) => To::Signer(u32::from(i)),
        }),
        payload,
        signature: signature.to_bytes().to_vec(),
    }
}

/// An envelope that passed every check, with the header parsed and the envelope kept as
/// bytes: together with the sender's pinned key it is evidence anyone can check with
/// [`verify_evidence`].
#[derive(Clone)]
pub struct VerifiedEnvelope {
    header: EnvelopeHeader,
    payload_hash: [u8; 32],
    envelope: Envelope,
    encoded: Vec<u8>,
}

impl VerifiedEnvelope {
    /// The parsed header.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.envelope.payload
    }

    /// SHA-256 of the payload, computed here.
    pub fn payload_hash(&self) -> &[u8; 32] {
        &self.payload_hash
    }

    /// The envelope, protobuf-encoded as received (fields re-encoded canonically; the
    /// signature covers [`signing_bytes`], so the encoding does not affect verification).
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// The key that identifies this message within its session.
    pub fn delivery_key(&self) -> DeliveryKey {
        DeliveryKey {
            session_id: self.header.session_id,
            protocol: self.header.protocol as i32,
            round: self.header.round,
            from: self.header.from,
            to: self.header.to,
        }
    }
}

impl fmt::Debug for VerifiedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedEnvelope")
            .field("header", &self.header)
            .field("payload_len", &self.envelope.payload.len())
            .finish_non_exhaustive()
    }
}

/// Why an incoming envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The payload is over the cap.
    #[error("envelope payload of {size} bytes is over the cap of {cap} bytes")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The cap.
        cap: usize,
    },
    /// A field is missing or out of range.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// The envelope belongs to another fleet.
    #[error("envelope is for fleet {got:?}, this node is in fleet {ours:?}")]
    OtherFleet {
        /// Its fleet id.
        got: String,
        /// Ours.
        ours: String,
    },
    /// The caller is not a signer.
    #[error("only signers deliver envelopes; the caller is {0}")]
    CallerNotSigner(String),
    /// `from` is not the caller's certificate index (NET-02).
    #[error("envelope claims to be from signer {claimed}, but the caller's certificate is signer {authenticated}")]
    SenderMismatch {
        /// The envelope's `from`.
        claimed: u16,
        /// The index in the caller's certificate.
        authenticated: u16,
    },
    /// The sender has no pinned node key here.
    #[error("signer {0} is not a pinned peer of this node")]
    UnknownSender(u16),
    /// The envelope is not addressed to this node.
    #[error("envelope is addressed to signer {to}, this node is signer {ours}")]
    NotForUs {
        /// Its recipient.
        to: u16,
        /// Our index.
        ours: u16,
    },
    /// The signature does not verify.
    #[error("envelope signature does not verify under the pinned node key of signer {0}")]
    BadSignature(u16),
}

impl EnvelopeError {
    /// The gRPC status code for this refusal (DESIGN §7).
    pub fn code(&self) -> tonic::Code {
        match self {
            EnvelopeError::TooLarge { .. } => tonic::Code::ResourceExhausted,
            EnvelopeError::Malformed(_)
            | EnvelopeError::OtherFleet { .. }
            | EnvelopeError::NotForUs { .. } => tonic::Code::InvalidArgument,
            EnvelopeError::CallerNotSigner(_)
            | EnvelopeError::SenderMismatch { .. }
            | EnvelopeError::UnknownSender(_)
            | EnvelopeError::BadSignature(_) => tonic::Code::PermissionDenied,
        }
    }
}

impl From<EnvelopeError> for Status {
    fn from(e: EnvelopeError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

/// Checks incoming envelopes against this node's fleet, index and pinned peer keys.
#[derive(Debug, Clone)]
pub struct EnvelopeVerifier {
    fleet_id: FleetId,
    own_index: u16,
    peer_keys: BTreeMap<u16, VerifyingKey>,
    max_payload: usize,
}

impl EnvelopeVerifier {
    /// A verifier for the node described by `config`.
    pub fn from_config(config: &ValidatedConfig) -> Self {
        Self::new(
            config.fleet_id().clone(),
            config.index(),
            config.peers.iter().map(|p| (p.index, p.node_key)).collect(),
            config.raw.limits.max_envelope_payload_bytes,
        )
    }

    /// A verifier from its parts.
    pub fn new(
        fleet_id: FleetId,
        own_index: u16,
        peer_keys: BTreeMap<u16, VerifyingKey>,
        max_payload: usize,
    ) -> Self {
        Self {
            fleet_id,
            own_index,
            peer_keys,
            max_payload,
        }
    }

    /// The payload cap.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Runs every check (see the module docs for the order) on an envelope the authenticated
    /// `caller` delivered.
    pub fn verify(
        &self,
        caller: &CallerIdentity,
        envelope: Envelope,
    ) -> Result<VerifiedEnvelope, EnvelopeError> {
        if envelope.payload.len() > self.max_payload {
            return Err(EnvelopeError::TooLarge {
                size: envelope.payload.len(),
                cap: self.max_payload,
            });
        }
        let (header, signature) = parse(&envelope)?;

        if header.fleet_id != self.fleet_id {
            return Err(EnvelopeError::OtherFleet {
                got: envelope.fleet_id.clone(),
                ours: self.fleet_id.to_string(),
            });
        }
        let CallerIdentity::Signer(authenticated) = caller else {
            return Err(EnvelopeError::CallerNotSigner(caller.to_string()));
        };
        if header.from != *authenticated {
            return Err(EnvelopeError::SenderMismatch {
                claimed: header.from,
                authenticated: *authenticated,
            });
        }
        let key = match self.peer_keys.get(&header.from) {
            Some(key) if header.from != self.own_index => key,
            _ => return Err(EnvelopeError::UnknownSender(header.from)),
        };
        if let Recipient::Signer(to) = header.to {
            if to != self.own_index {
                return Err(EnvelopeError::NotForUs {
                    to,
                    ours: self.own_index,
                });
            }
        }
        let payload_hash = payload_hash(&envelope.payload);
        key.verify_strict(&signing_bytes(&header, &payload_hash), &signature)
            .map_err(|_| EnvelopeError::BadSignature(header.from))?;

        let encoded = envelope.encode_to_vec();
        Ok(VerifiedEnvelope {
            header,
            payload_hash,
            envelope,
            encoded,
        })
    }
}

/// Checks a kept envelope (as [`VerifiedEnvelope::encoded`] returns it) against the sender's
/// node key, as a third party judging evidence would; returns the header it proves.
pub fn verify_evidence(
    encoded: &[u8],
    sender_key: &VerifyingKey,
) -> Result<EnvelopeHeader, EnvelopeError> {
    let envelope = Envelope::decode(encoded)
        .map_err(|e| EnvelopeError::Malformed(format!("not an encoded envelope: {e}")))?;
    let (header, signature) = parse(&envelope)?;
    sender_key
        .verify_strict(
            &signing_bytes(&header, &payload_hash(&envelope.payload)),
            &signature,
        )
        .map_err(|_| EnvelopeError::BadSignature(header.from))?;
    Ok(header)
}

/// Well-formedness: every field present and in range.
fn parse(envelope: &Envelope) -> Result<(EnvelopeHeader, Signature), EnvelopeError> {
    let malformed = |m: String| EnvelopeError::Malformed(m);
    let fleet_id =
        FleetId::new(&envelope.fleet_id).map_err(|e| malformed(format!("fleet_id {e}")))?;
    let session_id: [u8; SESSION_ID_LEN] =
        envelope.session_id.as_slice().try_into().map_err(|_| {
            malformed(format!(
                "session_id must be {SESSION_ID_LEN} bytes, got {}",
                envelope.session_id.len()
            ))
        })?;
    let protocol = match ProtocolKind::try_from(envelope.protocol) {
        Ok(ProtocolKind::Unspecified) | Err(_) => {
            return Err(malformed(format!(
                "protocol {} is not a known protocol kind",
                envelope.protocol
            )))
        }
        Ok(p) => p,
    };
    let round = u16::try_from(envelope.round)
        .map_err(|_| malformed(format!("round {} is over 65535", envelope.round)))?;
    let from = u16::try_from(envelope.from)
        .map_err(|_| malformed(format!("from {} is over 65535", envelope.from)))?;
    let to = match &envelope.to {
        None => return Err(malformed("no recipient (to) given".into())),
        Some(To::Broadcast(_)) => Recipient::Broadcast,
        Some(To::Signer(i)) => Recipient::Signer(
            u16::try_from(*i).map_err(|_| malformed(format!("to {i} is over 65535")))?,
        ),
    };
    let signature: [u8; SIGNATURE_LEN] =
        envelope.signature.as_slice().try_into().map_err(|_| {
            malformed(format!(
                "signature must be {SIGNATURE_LEN} bytes, got {}",
                envelope.signature.len()
            ))
        })?;
    Ok((
        EnvelopeHeader {
            fleet_id,
            session_id: SessionId(session_id),
            protocol,
            round,
            from,
            to,
        },
        Signature::from_bytes(&signature),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    struct Fleet {
        keys: BTreeMap<u16, NodeKey>,
        verifier: EnvelopeVerifier,
    }

    /// Signers 1..=3; the verifier is signer 2's.
    fn fleet() -> Fleet {
        let keys: BTreeMap<u16, NodeKey> = (1..=3).map(|i| (i, NodeKey::generate())).collect();
        let pinned = keys.iter().map(|(i, k)| (*i, k.verifying_key())).collect();
        let verifier = EnvelopeVerifier::new(FleetId::new("f").unwrap(), 2, pinned, 1000);
        Fleet { keys, verifier }
    }

    fn header(from: u16, to: Recipient) -> EnvelopeHeader {
        EnvelopeHeader {
            fleet_id: FleetId::new("f").unwrap(),
            session_id: SessionId([7; 32]),
            protocol: ProtocolKind::Presign,
            round: 3,
            from,
            to,
        }
    }

    #[test]
    fn sealed_envelope_verifies_and_is_evidence() {
        let f = fleet();
        let env = seal(
            &f.keys[&1],
            &header(1, Recipient::Signer(2)),
            b"hello".to_vec(),
        );
        let v = f
            .verifier
            .verify(&CallerIdentity::Signer(1), env.clone())
            .unwrap();
        assert_eq!(v.payload(), b"hello");
        assert_eq!(v.header(), &header(1, Recipient::Signer(2)));
        let back = verify_evidence(v.encoded(), &f.keys[&1].verifying_key()).unwrap();
        assert_eq!(back, header(1, Recipient::Signer(2)));
        assert!(verify_evidence(v.encoded(), &f.keys[&3].verifying_key()).is_err());
        // broadcast is for us too
        let env = seal(&f.keys[&3], &header(3, Recipient::Broadcast), vec![]);
        assert!(f.verifier.verify(&CallerIdentity::Signer(3), env).is_ok());
    }

    #[test]
    fn every_signed_field_is_bound() {
        let f = fleet();
        let good = seal(&f.keys[&1], &header(1, Recipient::Signer(2)), b"p".to_vec());
        let caller = CallerIdentity::Signer(1);
        let tampered: [fn(&mut Envelope); 5] = [
            |e| e.session_id[0] ^= 1,
            |e| e.protocol = ProtocolKind::Sign as i32,
            |e| e.round += 1,
            |e| e.to = Some(To::Broadcast(Broadcast {})),
            |e| e.payload.push(0),
        ];
        for t in tampered {
            let mut env = good.clone();
            t(&mut env);
            assert_eq!(
                f.verifier.verify(&caller, env).unwrap_err(),
                EnvelopeError::BadSignature(1)
            );
        }
        // the signing bytes differ per fleet, so a fleet change cannot be replayed either
        let mut h = header(1, Recipient::Signer(2));
        let a = signing_bytes(&h, &[0; 32]);
        h.fleet_id = FleetId::new("g").unwrap();
        assert_ne!(a, signing_bytes(&h, &[0; 32]));
    }

    #[test]
    fn refusals_have_their_codes() {
        let f = fleet();
        let k1 = &f.keys[&1];
        let signer1 = CallerIdentity::Signer(1);
        let check = |env: Envelope, caller: &CallerIdentity, code: tonic::Code| {
            let err = f.verifier.verify(caller, env).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        };
        check(
            seal(k1, &header(1, Recipient::Signer(2)), vec![0; 1001]),
            &signer1,
            tonic::Code::ResourceExhausted,
        );
        let mut env = seal(k1, &header(1, Recipient::Signer(2)), vec![]);
        env.session_id.pop();
        check(env, &signer1, tonic::Code::InvalidArgument);
        let mut env = seal(k1, &header(1, Recipient::Signer(2)), vec![]);
        env.protocol = 0;
        check(env, &signer1, tonic::Code::InvalidArgument);
        let mut env = seal(k1, &header(1, Recipient::Signer(2)), vec![]);
        env.to = None;
        check(env, &signer1, tonic::Code::InvalidArgument);
        let mut env = seal(k1, &header(1, Recipient::Signer(2)), vec![]);
        env.round = 70_000;
        check(env, &signer1, tonic::Code::InvalidArgument);
        let mut h = header(1, Recipient::Signer(2));
        h.fleet_id = FleetId::new("other").unwrap();
        check(seal(k1, &h, vec![]), &signer1, tonic::Code::InvalidArgument);
        check(
            seal(k1, &header(1, Recipient::Signer(3)), vec![]),
            &signer1,
            tonic::Code::InvalidArgument,
        );
        check(
            seal(k1, &header(1, Recipient::Signer(2)), vec![]),
            &CallerIdentity::Signer(3),
            tonic::Code::PermissionDenied,
        );
        check(
            seal(k1, &header(1, Recipient::Signer(2)), vec![]),
            &CallerIdentity::Coordinator(1),
            tonic::Code::PermissionDenied,
        );
        // an unpinned sender, and ourselves
        let stranger = NodeKey::generate();
        check(
            seal(&stranger, &header(9, Recipient::Broadcast), vec![]),
            &CallerIdentity::Signer(9),
            tonic::Code::PermissionDenied,
        );
        check(
            seal(&f.keys[&2], &header(2, Recipient::Broadcast), vec![]),
            &CallerIdentity::Signer(2),
            tonic::Code::PermissionDenied,
        );
        // signed by the wrong key
        check(
            seal(&f.keys[&3], &header(1, Recipient::Signer(2)), vec![]),
            &signer1,
            tonic::Code::PermissionDenied,
        );
    }
}
