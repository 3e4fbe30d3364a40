//! Πsch decoder + verifier: arbitrary bytes never panic; anything that decodes re-encodes
//! identically (canonical), and verification against a fixed statement just returns a result.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::sch::{SchProof, SchStatement};
use mpc_core::zk::ProofContext;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = SchProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let x = k256::ProjectivePoint::GENERATOR;
        let ctx = ProofContext {
            session_id: b"fuzz",
            prover: 1,
            rho: &[0u8; 32],
        };
        let _ = proof.verify(&ctx, &SchStatement { x: &x });
    }
});
