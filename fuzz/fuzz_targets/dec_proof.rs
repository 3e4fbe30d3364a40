//! Πdec decoder + verifier on arbitrary bytes: never panics; decodable input is canonical.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::dec::{DecProof, DecStatement};
use num_bigint::BigUint;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = DecProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let k = common::keys();
        let (kk, d) = (BigUint::from(5u32), BigUint::from(7u32));
        let (x, s, g) = (common::point(13), common::point(17), common::point(1));
        let st = DecStatement {
            n: k.prover.public(),
            cap_k: &kk,
            cap_d: &d,
            cap_x: &x,
            cap_s: &s,
            gamma: &g,
        };
        let _ = proof.verify(&common::ctx(), &st);
    }
});
