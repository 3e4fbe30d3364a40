//! Paillier ciphertext decoder: any byte string either decodes to a unit of Z*_{N²} under the
//! fixture key (and then re-encodes to the same bytes) or is refused; it never panics.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpc_core::paillier::{PaillierPublicKey, PaillierSecretKey};

fn key() -> &'static PaillierPublicKey {
    static KEY: OnceLock<PaillierPublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let [p, q] = mpc_core::fixtures::safe_prime_pair(0);
        PaillierSecretKey::from_primes(p, q)
            .expect("fixture key")
            .public()
            .clone()
    })
}

fuzz_target!(|data: &[u8]| {
    let pk = key();
    if let Ok(c) = pk.ciphertext_from_bytes(data) {
        assert_eq!(pk.ciphertext_to_bytes(&c), data);
    }
});
