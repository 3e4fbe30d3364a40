#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) on top of the honest seed corpus.
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`). Proofs of the 128-repetition
# proofs are up to ~350 KB, hence -max_len.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets="paillier_ciphertext sch_proof mod_proof prm_proof fac_proof enc_elg_proof elog_proof aff_g_proof aff_g_star_proof dec_proof hd_decoders store_decoders dkg_messages dkg_party cggmp_messages presign_party aux_party reshare_party"
# Safe Rust (forbid(unsafe_code)): the fuzzer hunts panics and hangs, so no sanitizer (ASan
# makes the 3072-bit verifications ~10x slower for nothing).
cargo +nightly fuzz build --sanitizer none
cargo run --release --example make_seeds
for t in $targets; do
  echo "== $t (${seconds}s)"
  cargo +nightly fuzz run --sanitizer none "$t" -- -max_total_time="$seconds" -max_len=400000 -rss_limit_mb=4096 2>&1 | tail -n 3
done
