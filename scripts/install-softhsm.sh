#!/usr/bin/env bash
# Installs SoftHSM2 (Debian package `softhsm2`) when `softhsm2-util` is missing, then prints the
# PKCS#11 module path on stdout. Idempotent and quiet; meant for root on Debian 12 (CI, dev boxes).
# The hsm-profiles pkcs11 tests need it: `scripts/test-all.sh` calls this before `cargo test`.
set -euo pipefail

if ! command -v softhsm2-util >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-softhsm.sh: softhsm2-util is missing and apt-get is not available;" \
             "install SoftHSM2 by hand" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "install-softhsm.sh: installing softhsm2 with apt-get" >&2
    # Output is shown only when a step fails, so a normal run stays quiet.
    if ! log=$($SUDO apt-get update -qq 2>&1); then
        echo "$log" >&2
        exit 1
    fi
    if ! log=$($SUDO apt-get install -y -qq --no-install-recommends softhsm2 2>&1); then
        echo "$log" >&2
        exit 1
    fi
fi

# Debian puts the module here; other layouts are tried so the script also helps elsewhere.
for module in \
    /usr/lib/softhsm/libsofthsm2.so \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so \
    /usr/lib64/pkcs11/libsofthsm2.so; do
    if [ -e "$module" ]; then
        echo "$module"
        exit 0
    fi
done
echo "install-softhsm.sh: softhsm2-util is present but libsofthsm2.so was not found" >&2
exit 1
