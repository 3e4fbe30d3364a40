//! The store decoders on arbitrary bytes: `KeyShare`, `AuxInfo` and `Presignature::from_bytes`
//! (`mpc_core::store`). None may panic; whatever decodes re-encodes to exactly the input (the
//! records are canonical, so an accepted input is never a second spelling of another value).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpc_core::aux_info::AuxInfo;
use mpc_core::dkg::KeyShare;
use mpc_core::presign::Presignature;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = KeyShare::from_bytes(data) {
        assert_eq!(key.to_bytes().as_slice(), data);
        assert!(key.validate().is_ok());
    }
    if let Ok(aux) = AuxInfo::from_bytes(data) {
        assert_eq!(aux.to_bytes().as_slice(), data);
    }
    if let Ok(presignature) = Presignature::from_bytes(data) {
        assert_eq!(presignature.to_bytes().as_slice(), data);
    }
});
