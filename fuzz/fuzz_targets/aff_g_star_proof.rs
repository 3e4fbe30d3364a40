//! Πaff-g* decoder + verifier on arbitrary bytes: never panics; decodable input is canonical.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::aff_g_star::{AffGStarProof, AffGStarStatement};
use num_bigint::BigUint;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = AffGStarProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let k = common::keys();
        let (c, d, y) = (
            BigUint::from(5u32),
            BigUint::from(7u32),
            BigUint::from(11u32),
        );
        let x = common::point(13);
        let st = AffGStarStatement {
            n0: k.verifier.public(),
            n1: k.prover.public(),
            cap_c: &c,
            cap_d: &d,
            cap_y: &y,
            cap_x: &x,
        };
        let _ = proof.verify(&common::ctx(), &st);
    }
});
