//! Πelog decoder + verifier on arbitrary bytes: never panics; decodable input is canonical.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use mpc_core::zk::elog::{ElogProof, ElogStatement};

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = ElogProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let (l, m, x, y, h) = (
            common::point(2),
            common::point(3),
            common::point(5),
            common::point(7),
            common::point(11),
        );
        let st = ElogStatement {
            cap_l: &l,
            cap_m: &m,
            cap_x: &x,
            cap_y: &y,
            h: &h,
        };
        let _ = proof.verify(&common::ctx(), &st);
    }
});
