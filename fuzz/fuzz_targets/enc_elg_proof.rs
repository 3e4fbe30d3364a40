//! Πenc-elg decoder + verifier on arbitrary bytes: never panics; decodable input is canonical.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::enc_elg::{EncElgProof, EncElgStatement};
use num_bigint::BigUint;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = EncElgProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let k = common::keys();
        let c = BigUint::from(12345u32);
        let (a, b, x) = (common::point(2), common::point(3), common::point(5));
        let st = EncElgStatement {
            n0: k.prover.public(),
            aux: &k.aux,
            cap_c: &c,
            cap_a: &a,
            cap_b: &b,
            cap_x: &x,
        };
        let _ = proof.verify(&common::ctx(), &st);
    }
});
