//! Aux-info, presigning, signing and resharing message decoders on arbitrary bytes: never panic; whatever
//! decodes re-encodes to the same bytes (the encodings are canonical). The first byte picks the
//! message type; committees of 2 and 5 parties (echo lengths) are tried.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpc_core::aux_info::msg as aux;
use mpc_core::presign::msg as pre;
use mpc_core::reshare::msg as res;
use mpc_core::sign::PartialSignature;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let m = if selector & 0x80 == 0 { 2 } else { 5 };
    let shape = res::Shape {
        dealers: 2,
        receivers: m,
        t_new: 2,
    };
    let again = match selector % 17 {
        0 => aux::Round1::from_bytes(bytes).map(|v| v.to_bytes()),
        1 => aux::Round2::from_bytes(bytes, m).map(|v| v.to_bytes()),
        2 => aux::Round3Mod::from_bytes(bytes, m).map(|v| v.to_bytes()),
        3 => aux::Round3Fac::from_bytes(bytes).map(|v| v.to_bytes()),
        4 => aux::Round4::from_bytes(bytes, m).map(|v| v.to_bytes()),
        5 => pre::Round1Broadcast::from_bytes(bytes).map(|v| v.to_bytes()),
        6 => pre::Round1Direct::from_bytes(bytes).map(|v| v.to_bytes()),
        7 => pre::Round2Broadcast::from_bytes(bytes, m).map(|v| v.to_bytes()),
        8 => pre::Round2Direct::from_bytes(bytes).map(|v| v.to_bytes()),
        9 => pre::Round3Broadcast::from_bytes(bytes, m).map(|v| v.to_bytes()),
        10 => PartialSignature::from_bytes(bytes).map(|v| v.to_bytes()),
        11 => res::Round1Feldman::from_bytes(bytes, &shape).map(|v| v.to_bytes()),
        12 => res::Round1SubShare::from_bytes(bytes).map(|v| v.to_bytes()),
        13 => res::Round2Complaints::from_bytes(bytes, &shape).map(|v| v.to_bytes()),
        14 => res::Round3Answers::from_bytes(bytes, &shape).map(|v| v.to_bytes()),
        15 => pre::Round4Identify::from_bytes(bytes, m).map(|v| v.to_bytes()),
        _ => res::Round4Confirm::from_bytes(bytes, &shape).map(|v| v.to_bytes()),
    };
    if let Ok(again) = again {
        assert_eq!(again, bytes);
    }
});
