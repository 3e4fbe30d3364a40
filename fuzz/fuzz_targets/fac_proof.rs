//! Πfac decoder + verifier on arbitrary bytes: never panics; decodable input is canonical.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::fac::{FacProof, FacStatement};

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = FacProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let k = common::keys();
        let st = FacStatement {
            n0: k.prover.public(),
            aux: &k.aux,
        };
        let _ = proof.verify(&common::ctx(), &st);
    }
});
