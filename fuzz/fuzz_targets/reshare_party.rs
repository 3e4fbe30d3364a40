//! A resharing party (the first dealer of a 2-of-2 → 2-of-3 resharing) fed arbitrary operation
//! sequences (`ops.rs`): never panics, and if it finishes, its confirmation is for the
//! unchanged key.
#![no_main]
#[path = "ops.rs"]
mod ops;
#[path = "reshare_common.rs"]
mod reshare_common;

use libfuzzer_sys::fuzz_target;
use mpc_core::protocol::Outcome;
use mpc_core::reshare::ReshareOutput;

fuzz_target!(|data: &[u8]| {
    let honest = reshare_common::honest_to_party_0();
    let party = reshare_common::party0();
    let key = party_key();
    match ops::run(party, honest, data, 6, 6, 7) {
        Some(Outcome::Output(ReshareOutput::Dealer(c))) => assert_eq!(c.public_key, key),
        Some(Outcome::Output(ReshareOutput::Receiver(_))) => panic!("a dealer never receives"),
        _ => {}
    }
});

fn party_key() -> k256::ProjectivePoint {
    use std::sync::OnceLock;
    static KEY: OnceLock<k256::ProjectivePoint> = OnceLock::new();
    *KEY.get_or_init(|| {
        let honest = reshare_common::honest_to_party_0();
        let party = reshare_common::party0();
        let ops: Vec<u8> = (0..honest.len()).flat_map(|k| [1, k as u8]).collect();
        match ops::run(party, honest, &ops, 6, 6, 7) {
            Some(Outcome::Output(ReshareOutput::Dealer(c))) => c.public_key,
            _ => panic!("the honest sequence finishes"),
        }
    })
}
