//! An aux-info party (party 0 of a 2-party session) fed arbitrary operation sequences
//! (`ops.rs`): never panics, and if it finishes, its output holds both parties' keys.
#![no_main]
#[path = "aux_common.rs"]
mod aux_common;
#[path = "ops.rs"]
mod ops;

use libfuzzer_sys::fuzz_target;
use mpc_core::protocol::{Outcome, PartyIndex};

fuzz_target!(|data: &[u8]| {
    let honest = aux_common::honest_to_party_0();
    if let Some(Outcome::Output(info)) = ops::run(aux_common::party(0), honest, data, 6, 4, 131) {
        assert_eq!(info.parties(), 2);
        assert!(info.party(PartyIndex::new(1)).is_some());
    }
});
