//! DKG message decoders on arbitrary bytes: never panic; whatever decodes re-encodes to the
//! same bytes (the encodings are canonical). The first byte picks the message type (low three
//! bits: round, bit 3: the direct message of round 2) and the session shape (high bits).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpc_core::dkg::msg::{reencode, Shape};

const SHAPES: [Shape; 3] = [
    Shape { m: 1, t: 1 },
    Shape { m: 3, t: 2 },
    Shape { m: 7, t: 4 },
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let shape = SHAPES[usize::from(selector >> 4) % SHAPES.len()];
    let round = 1 + u16::from(selector & 0x07) % 6;
    let direct = selector & 0x08 != 0;
    if let Ok(again) = reencode(round, direct, bytes, &shape) {
        assert_eq!(again, bytes);
    }
});
