//! A DKG party (party 0 of a 2-of-3 session) fed arbitrary operation sequences (`ops.rs`):
//! never panics, and if it finishes with an output, the output is self-consistent
//! (`KeyShare::validate`).
#![no_main]
#[path = "dkg_common.rs"]
mod dkg_common;
#[path = "ops.rs"]
mod ops;

use libfuzzer_sys::fuzz_target;
use mpc_core::protocol::Outcome;

fuzz_target!(|data: &[u8]| {
    let honest = dkg_common::honest_to_party_0();
    if let Some(Outcome::Output(share)) = ops::run(dkg_common::party(0), honest, data, 8, 5, 7) {
        share
            .validate()
            .expect("a finished DKG output is self-consistent");
    }
});
