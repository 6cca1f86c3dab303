#!/usr/bin/env bash
# Short fuzz run of every target (cargo-fuzz, libFuzzer) from the committed seed corpus.
#   fuzz/run.sh [SECONDS_PER_TARGET]   (default 15; CI runs it after the tests, 7 targets ≈ 1.75 min)
# Installs cargo-fuzz if it is missing. The stable toolchain builds the targets with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz wants nightly flags). New inputs go to a temp dir, so the
# committed corpus stays the seeds; a crash leaves its input in fuzz/artifacts/TARGET/ and fails.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-15}
TARGETS=(connect_target route digest accept config references sniff challenge)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build || { df -h . | sed 's/^/disk: /'; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${TARGETS[@]}"; do
  mkdir -p "$work/$target"
  if cargo fuzz run "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=0 >"$work/$target.log" 2>&1; then
    echo "fuzz $target: $(grep -m1 -oE 'Done [0-9]+ runs' "$work/$target.log" || echo done), no crash"
  else
    echo "fuzz $target: FAILED"; tail -n 30 "$work/$target.log"
    failed+=("$target")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz targets that failed: ${failed[*]} (inputs in fuzz/artifacts/)"; exit 1; }
