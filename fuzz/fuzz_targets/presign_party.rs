//! A presigning party (party 0 of a 2-of-2 session) fed arbitrary operation sequences
//! (`ops.rs`): never panics, and if it finishes with a presignature, that is the honest run's
//! presignature (the party is deterministic given its seed, and only honest messages verify).
#![no_main]
#[path = "ops.rs"]
mod ops;
#[path = "presign_common.rs"]
mod presign_common;

use libfuzzer_sys::fuzz_target;
use mpc_core::protocol::Outcome;

fuzz_target!(|data: &[u8]| {
    let honest = presign_common::honest_to_party_0();
    let party = presign_common::party0();
    if let Some(Outcome::Output(presignature)) = ops::run(party, honest, data, 5, 4, 131) {
        assert_eq!(presignature.public(), presign_common::honest_public());
    }
});
