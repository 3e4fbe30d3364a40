#!/usr/bin/env bash
# The whole custody system on this machine, in one command: installs the pinned chain nodes
# (anvil, bcoin), builds the signer (with the PUBLIC fixture primes: devnet only) and the
# coordinator in release mode, and runs `coordinator devnet`: 5 signer processes (3-of-5), a
# coordinator, the DKG, an ETH and a BTC lock-in and lock-out, then live status until Ctrl-C.
#
#   scripts/devnet.sh                      # devnet in target/devnet (wiped first)
#   scripts/devnet.sh --exit-when-done     # stop (exit 0) once the flow is done
#   scripts/devnet.sh --free-ports         # free ports instead of 7300, 7101.., 8545, 48443
#
# Other arguments go to `coordinator devnet` (see `target/release/coordinator devnet --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir="$(scripts/install-chain-nodes.sh)"
echo "devnet.sh: building signer-node and coordinator (release) ..." >&2
cargo build --release -p signer-node --features devnet-fixtures -p coordinator --bins
exec target/release/coordinator devnet \
    --dir target/devnet --fresh \
    --signer-bin target/release/signer-node \
    --chain-nodes-bin "$bin_dir" \
    "$@"
