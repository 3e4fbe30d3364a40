#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test of the workspace, and that the fuzz
# targets still compile. This is the command the README gives and the one CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase header carries the seconds since the start, so a slow CI run shows where it went.
phase() { echo "== [$(date -u +%H:%M:%S), +${SECONDS}s] $*"; }

phase "SoftHSM2 for the hsm-profiles pkcs11 tests (installed with apt-get when missing)"
scripts/install-softhsm.sh

phase "anvil and bcoin for the coordinator's chain-adapter tests (pinned npm packages)"
scripts/install-chain-nodes.sh

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings
# the library as a dependent crate builds it: without the test-fixtures feature
cargo clippy --workspace -- -D warnings

phase "cargo test (workspace)"
cargo test --workspace --all-features --no-fail-fast

phase "fuzz targets compile (cargo-fuzz crate, stable toolchain)"
cargo check --manifest-path fuzz/Cargo.toml --bins --examples

phase "done"
