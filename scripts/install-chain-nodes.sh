#!/usr/bin/env bash
# Installs the pinned local chain nodes from chain-nodes/package.json + package-lock.json:
# anvil (npm @foundry-rs/anvil, Ethereum) and bcoin 1.0.2 (Bitcoin, run in regtest with
# NODE_BACKEND=js). Idempotent: does nothing when node_modules matches the lockfile. Prints the
# directory holding the `anvil` and `bcoin` launchers on stdout.
#
# `--ignore-scripts`: bcoin's native add-ons are not built (NODE_BACKEND=js uses the pure
# JavaScript backends), and anvil's binary comes in its platform package
# (@foundry-rs/anvil-linux-amd64), so its postinstall step is not needed.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../chain-nodes" && pwd)"

if ! command -v npm >/dev/null 2>&1; then
    echo "install-chain-nodes.sh: npm is missing; install Node.js 20 and npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi

stamp="$dir/node_modules/.custody-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
    || [ ! -x "$dir/node_modules/.bin/anvil" ] || [ ! -x "$dir/node_modules/.bin/bcoin" ]; then
    echo "install-chain-nodes.sh: npm ci in $dir" >&2
    if ! log=$(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund 2>&1); then
        echo "$log" >&2
        exit 1
    fi
    echo "$want" >"$stamp"
fi

# A launcher that runs is the check that the platform package came with it.
if ! "$dir/node_modules/.bin/anvil" --version >/dev/null 2>&1; then
    echo "install-chain-nodes.sh: anvil does not run (no @foundry-rs/anvil package for $(uname -sm)?)" >&2
    exit 1
fi
echo "$dir/node_modules/.bin"
