//! BIP32 decoders on arbitrary bytes: `DerivationPath::from_bytes`, the 78-byte extended public
//! key and the textual path parser. None may panic; whatever decodes re-encodes to the same
//! bytes (or text); a decoded key and path derive, and the two derivation entry points agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpc_core::hd::{derive_shift, DerivationPath, ExtendedPublicKey, XPUB_LEN};

fuzz_target!(|data: &[u8]| {
    let path = DerivationPath::from_bytes(data).ok();
    if let Some(p) = &path {
        assert_eq!(p.to_bytes(), data);
    }
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(p) = text.parse::<DerivationPath>() {
            assert_eq!(p.to_string(), text);
        }
    }
    // The key is the first 78 bytes; the rest, if it decodes, is the path to derive.
    if data.len() >= XPUB_LEN {
        let (key, rest) = data.split_at(XPUB_LEN);
        if let Ok(xpub) = ExtendedPublicKey::from_bip32_bytes(key) {
            assert_eq!(&xpub.to_bip32_bytes()[..], key);
            if let Ok(p) = DerivationPath::from_bytes(rest) {
                let shifted = derive_shift(xpub.public_key(), xpub.chain_code(), &p);
                if let Ok((child, shift)) = xpub.derive_path(&p) {
                    assert_eq!(shifted, Ok((*child.public_key(), shift)));
                }
            }
        }
    }
});
