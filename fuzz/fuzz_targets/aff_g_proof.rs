//! Πaff-g decoder + verifier on arbitrary bytes: never panics; whatever decodes re-encodes to the
//! same bytes (canonical); verification runs against a fixed honest statement.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::aff_g::AffGProof;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = AffGProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
    }
    let _ = common::instance("Πaff-g").verify(&common::ctx(), data);
});
