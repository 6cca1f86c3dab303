#!/usr/bin/env bash
# Runs every test pantry has: the in-process suite (cargo test), a short fuzz run of every fuzz
# target (fuzz/run.sh, about 2 minutes plus building) and the real-client interop suite
# (tests/interop/run.sh, which installs its own Debian packages and needs root).
# PANTRY_SKIP_FUZZ=1 and PANTRY_SKIP_INTEROP=1 leave those parts out.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --all-targets
if [[ "${PANTRY_SKIP_FUZZ:-0}" == 1 ]]; then
    echo "fuzz run skipped (PANTRY_SKIP_FUZZ=1)"
else
    bash fuzz/run.sh 15
fi
if [[ "${PANTRY_SKIP_INTEROP:-0}" == 1 ]]; then
    echo "interop suite skipped (PANTRY_SKIP_INTEROP=1)"
    exit 0
fi
bash tests/interop/run.sh
