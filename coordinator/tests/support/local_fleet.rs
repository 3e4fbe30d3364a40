//! A stand-in for the signer fleet in engine tests only: an `OrderSigner` over a local k256
//! master key whose BIP32 children (`mpc_core::hd`) sign, after checking the chain
//! authorization the way a signer's gate does (certificate under the pinned validator set,
//! inclusion proof, the order's input path and digest). The production `FleetSigner` over
//! `FleetClient` is exercised by the devnet / end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use coordinator::adapter::FleetSignature;
use coordinator::engine::{OrderSigner, SignError};
use coordinator::fleet::{FleetKey, SignJob};
use custody_proto::chain::ValidatorSet;
use custody_proto::order::SigningOrder;
use k256::ecdsa::SigningKey;
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use mpc_core::hd::{ChainCode, DerivationPath, ExtendedPublicKey};
use signer_node::gate::chain::ChainPin;

/// The signer fleet stand-in: checks the chain authorization, then signs with the BIP32
/// child of a local master key. Counts signing calls; `down` makes the quorum unavailable.
pub struct LocalFleet {
    master: NonZeroScalar,
    /// The fleet key (master public key and chain code).
    pub key: FleetKey,
    /// The chain every signer pins: the stand-in checks authorizations with the signers'
    /// own code (`signer_node::gate::chain`).
    chain: ChainPin,
    /// Signing calls so far.
    pub calls: AtomicUsize,
    /// Every signer unreachable.
    pub down: AtomicBool,
    /// How many coming `ready` calls fail.
    pub fail_ready: AtomicUsize,
}

impl LocalFleet {
    /// A fleet for the chain `chain_id` certified by `validators`.
    pub fn new(validators: ValidatorSet, chain_id: &str) -> Self {
        let master = NonZeroScalar::try_from(&[0x42u8; 32][..]).unwrap();
        let public_key =
            k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * *master).to_affine())
                .unwrap();
        Self {
            master,
            key: FleetKey {
                key_id: [7; 32],
                public_key,
                chain_code: [0x17; 32],
                threshold: 2,
                holders: vec![1, 2, 3],
                epoch: 0,
            },
            chain: ChainPin {
                chain_id: chain_id.to_owned(),
                validators,
            },
            calls: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            fail_ready: AtomicUsize::new(0),
        }
    }

    fn child_secret(&self, path: &[u32]) -> SigningKey {
        let xpub = ExtendedPublicKey::new_master(
            ProjectivePoint::GENERATOR * *self.master,
            ChainCode(self.key.chain_code),
        )
        .unwrap();
        let (_, shift) = xpub
            .derive_path(&DerivationPath::from_indices(path).unwrap())
            .unwrap();
        let secret: Scalar = *self.master + shift;
        SigningKey::from(NonZeroScalar::new(secret).unwrap())
    }
}

impl OrderSigner for LocalFleet {
    async fn ready(&self, _key: &FleetKey) -> Result<(), SignError> {
        let failing = self
            .fail_ready
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing || self.down.load(Ordering::SeqCst) {
            return Err(SignError::QuorumUnavailable(
                "test: every signer unreachable".into(),
            ));
        }
        Ok(())
    }

    async fn sign(&self, job: &SignJob) -> Result<FleetSignature, SignError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(SignError::Failed("test: signers unreachable".into()));
        }
        let refuse = |why: String| SignError::Failed(why);
        let auth = job
            .authorization
            .chain
            .as_ref()
            .ok_or_else(|| refuse("no chain authorization".into()))?;
        assert!(job.authorization.order.is_empty() && job.authorization.signatures.is_empty());
        let committed = self.chain.verify(auth).map_err(|e| refuse(e.to_string()))?;
        let order = SigningOrder::decode(&committed.order).map_err(|e| refuse(e.to_string()))?;
        assert_eq!(order.key_id, self.key.key_id);
        let input = &order.inputs[job.input_index as usize];
        assert_eq!(input.path, job.path);
        // The signer hashes the preimage itself (SIG-01).
        assert_eq!(input.digest(), job.digest);
        let key = self.child_secret(&job.path);
        let (signature, recovery_id) = key.sign_prehash_recoverable(&job.digest).unwrap();
        let (signature, recovery_id) = match signature.normalize_s() {
            Some(low) => (
                low,
                k256::ecdsa::RecoveryId::new(!recovery_id.is_y_odd(), recovery_id.is_x_reduced()),
            ),
            None => (signature, recovery_id),
        };
        Ok(FleetSignature {
            signature,
            recovery_id,
        })
    }
}
