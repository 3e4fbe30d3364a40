//! Writes the seed corpus: one honest proof per target, for exactly the statements the fuzz
//! targets verify against. `cargo run --release --manifest-path fuzz/Cargo.toml --example make_seeds`
#[path = "../fuzz_targets/aux_common.rs"]
mod aux_common;
#[path = "../fuzz_targets/common.rs"]
mod common;
#[path = "../fuzz_targets/dkg_common.rs"]
mod dkg_common;
#[path = "../fuzz_targets/presign_common.rs"]
mod presign_common;
#[path = "../fuzz_targets/reshare_common.rs"]
mod reshare_common;

use rand::SeedableRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let targets = [
        ("sch_proof", "Πsch"),
        ("mod_proof", "Πmod"),
        ("prm_proof", "Πprm"),
        ("fac_proof", "Πfac"),
        ("enc_elg_proof", "Πenc-elg"),
        ("elog_proof", "Πelog"),
        ("aff_g_proof", "Πaff-g"),
        ("aff_g_star_proof", "Πaff-g*"),
        ("dec_proof", "Πdec"),
    ];
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, prefix) in targets {
        let instance = common::instance(prefix);
        let proof = instance.prove(&mut rng, &common::ctx())?;
        instance.verify(&common::ctx(), &proof)?;
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("honest-proof"), &proof)?;
        println!("{target}: {} bytes", proof.len());
    }
    // the ciphertext decoder: one valid ciphertext under the fixture key
    let dir = root.join("paillier_ciphertext");
    std::fs::create_dir_all(&dir)?;
    let [p, q] = mpc_core::fixtures::safe_prime_pair(0);
    let sk = mpc_core::paillier::PaillierSecretKey::from_primes(p, q)?;
    let (c, _) = sk.public().encrypt(&mut rng, &num_bigint::BigInt::from(42));
    std::fs::write(
        dir.join("honest-ciphertext"),
        sk.public().ciphertext_to_bytes(&c),
    )?;
    println!(
        "paillier_ciphertext: {} bytes",
        sk.public().ciphertext_len()
    );
    // the BIP32 decoders: a path alone, and an extended public key followed by a path
    let dir = root.join("hd_decoders");
    std::fs::create_dir_all(&dir)?;
    let path: mpc_core::hd::DerivationPath = "m/0/1/2147483647".parse()?;
    let xpub = mpc_core::hd::ExtendedPublicKey::new_master(
        k256::ProjectivePoint::GENERATOR * k256::Scalar::from(42u64),
        mpc_core::hd::ChainCode([7; 32]),
    )?;
    std::fs::write(dir.join("honest-path"), path.to_bytes())?;
    let mut key_and_path = xpub.to_bip32_bytes().to_vec();
    key_and_path.extend_from_slice(&path.to_bytes());
    std::fs::write(dir.join("honest-xpub-and-path"), &key_and_path)?;
    std::fs::write(dir.join("honest-path-text"), path.to_string())?;
    println!("hd_decoders: 3 seeds");
    // the DKG: every honest message towards party 0 (selector byte: round, direct bit, shape
    // 3-of-2), and for the state machine the operation list that delivers them all in order
    let honest = dkg_common::honest_to_party_0();
    let dir = root.join("dkg_messages");
    std::fs::create_dir_all(&dir)?;
    let mut ops = Vec::new();
    for (k, msg) in honest.iter().enumerate() {
        let direct = msg.to != mpc_core::protocol::Recipient::All;
        let selector = 0x10 | (u8::from(direct) << 3) | ((msg.round - 1) as u8);
        let mut seed = vec![selector];
        seed.extend_from_slice(&msg.payload);
        std::fs::write(dir.join(format!("honest-{k}")), seed)?;
        ops.extend_from_slice(&[1, k as u8]);
    }
    let dir = root.join("dkg_party");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("honest-run"), &ops)?;
    println!("dkg: {} honest messages", honest.len());
    // presigning: the honest messages towards party 0 (decoder seeds with the type selector of
    // cggmp_messages, 2 parties) and the operation list delivering them all in order
    let honest = presign_common::honest_to_party_0();
    let dir = root.join("cggmp_messages");
    std::fs::create_dir_all(&dir)?;
    let mut ops = Vec::new();
    for (k, msg) in honest.iter().enumerate() {
        let direct = msg.to != mpc_core::protocol::Recipient::All;
        let selector: u8 = match (msg.round, direct) {
            (1, false) => 5,
            (1, true) => 6,
            (2, false) => 7,
            (2, true) => 8,
            _ => 9,
        };
        let mut seed = vec![selector];
        seed.extend_from_slice(&msg.payload);
        std::fs::write(dir.join(format!("presign-{k}")), seed)?;
        ops.extend_from_slice(&[1, k as u8]);
    }
    let dir = root.join("presign_party");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("honest-run"), &ops)?;
    println!("presign: {} honest messages", honest.len());
    // the store decoders: party 0's key share, aux info and presignature of that run
    let dir = root.join("store_decoders");
    std::fs::create_dir_all(&dir)?;
    let names = ["honest-key-share", "honest-aux-info", "honest-presignature"];
    for (name, record) in names.iter().zip(presign_common::store_records()) {
        std::fs::write(dir.join(name), record)?;
    }
    println!("store_decoders: 3 seeds");
    // aux info: the operation list delivering every honest message to party 0 in order
    let honest = aux_common::honest_to_party_0();
    let ops: Vec<u8> = (0..honest.len()).flat_map(|k| [1, k as u8]).collect();
    let dir = root.join("aux_party");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("honest-run"), &ops)?;
    println!("aux info: {} honest messages", honest.len());
    // resharing: the same for the first dealer
    let honest = reshare_common::honest_to_party_0();
    let ops: Vec<u8> = (0..honest.len()).flat_map(|k| [1, k as u8]).collect();
    let dir = root.join("reshare_party");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("honest-run"), &ops)?;
    println!("reshare: {} honest messages", honest.len());
    Ok(())
}
