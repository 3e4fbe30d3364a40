//! Πelog decoder + verifier on arbitrary bytes: never panics; whatever decodes re-encodes to the
//! same bytes (canonical); verification runs against a fixed honest statement.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::elog::ElogProof;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = ElogProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
    }
    let _ = common::instance("Πelog").verify(&common::ctx(), data);
});
