#!/usr/bin/env bash
# Runs every test pantry has: the in-process suite (cargo test) and the real-client interop suite
# (tests/interop/run.sh, which installs its own Debian packages and needs root).
# PANTRY_SKIP_INTEROP=1 runs the in-process suite only.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --all-targets
if [[ "${PANTRY_SKIP_INTEROP:-0}" == 1 ]]; then
    echo "interop suite skipped (PANTRY_SKIP_INTEROP=1)"
    exit 0
fi
bash tests/interop/run.sh
