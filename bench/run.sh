#!/usr/bin/env bash
# Benchmarks: pantry side by side with its peers, the same workloads against each in one run.
#
# Upstream is Debian's nginx on loopback, serving random blobs (and a realistic image) over TLS as
# registry.test at registry paths, one repository throttled per connection (--rate), the others
# unthrottled from local disk. Systems (not every workload has every one; see bench/README.md):
#   direct        clients straight to the upstream (the baseline)
#   limit         clients straight to nginx serving the bytes from local disk, unthrottled
#   pantry        the intercepting proxy, release build, cold (empty cache) and warm
#   pantry_verify pantry with verify_reads = true (warm workload only: what verifying costs)
#   squid         squid-openssl as a caching ssl-bump proxy with collapsed_forwarding
#   distribution  Debian's docker-registry as a pull-through mirror
#   mitmproxy     (PyPI) for the TLS handshake workload only; it does not cache
# Workloads (bench/workloads/NAME.sh, each writing its own table in RESULTS.md):
#   warm        one 1 GiB blob from a warm cache: MB/s
#   cold        one blob from an empty cache, unthrottled and throttled upstream, 1/8/32 clients:
#               wall time, upstream GETs and bytes, peak RSS and CPU of the proxy
#   image       a 24-layer image pulled with skopeo, cold then warm: time, upstream requests
#   small       many small requests (manifests by digest and by tag) with oha through the proxy
#   ageing      by-tag hits after 100,000 revalidations of the tag (tag_ttl = 0) vs a fresh store
#   store-size  1k, 100k and 1M stored entries: start to first hit, hit latency, idle RSS, an
#               eviction pass and the hits during it, `cache stats` and `cache ls` time
#   handshakes  new CONNECT + TLS + GET to many distinct host names per second
#   fleet       3 caches x 8 clients cold on one throttled blob: a pantry fleet over a shared
#               store, 3 independent pantries, 3 distribution mirrors over one S3 bucket (SeaweedFS)
#
#   bench/run.sh --quick     small sizes, 1 repetition, every workload (a few minutes; CI's smoke test)
#   bench/run.sh             the full run, 3 repetitions (about an hour on a 2-core machine)
# Options: --only warm,cold,...  --systems direct,limit,pantry,...  --reps N  --rate 5m (the
#   throttled repository's limit_rate)  --note TEXT  --notes-file FILE (markdown for RESULTS.md's
#   notes)  --results FILE (default bench/RESULTS.md)  --no-install  --no-build (use
#   target/release/pantry as it is)  --pantry-bin FILE  --keep (keep caches and blobs)
# For diagnosis, COLD_MIB, COLD_CLIENTS and COLD_UPSTREAMS narrow the cold workload (workloads/cold.sh),
# STORE_SIZE_ENTRIES (e.g. 1000,100000) the store-size workload's sizes.
# squid's memory settings can be varied through SQUID_CACHE_MEM ("64 MB"), SQUID_MEM_OBJ ("1 MB"),
# SQUID_CACHE_DIR_TYPE (ufs) and SQUID_READ_AHEAD ("1 MB").
# Needs root (apt-get, squid drops to user proxy, private /etc/hosts in a mount namespace). Uses
# loopback only and free ports; stops every process it started when it exits; changes nothing
# outside bench/work except installing packages (apt-get, pip into bench/work, cargo install oha).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
WORK=${BENCH_WORK:-$BENCH_DIR/work}   # BENCH_WORK: another work dir, so two runs can coexist
UP_HOST=registry.test
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
ALL_WORKLOADS=warm,cold,image,small,ageing,store-size,handshakes,fleet
ALL_SYSTEMS=direct,limit,pantry,pantry_verify,squid,distribution,mitmproxy

QUICK="" ONLY=$ALL_WORKLOADS SYSTEMS=$ALL_SYSTEMS REPS="" RATE=5m NOTE="" NOTES_FILE=""
RESULTS=$BENCH_DIR/RESULTS.md INSTALL=1 BUILD=1 KEEP="" PANTRY_BIN_GIVEN=""
ARGS="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --note) NOTE=$2; shift 2 ;;
    --notes-file) NOTES_FILE=$(realpath "$2"); shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --no-install) INSTALL=""; shift ;;
    --no-build) BUILD=""; shift ;;
    --pantry-bin) PANTRY_BIN_GIVEN=$2; BUILD=""; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$NOTE" ] && ARGS=${ARGS/"$NOTE"/…}   # RESULTS.md shows the note in its own section
REPS=${REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)}
IFS=, read -r -a WORKLOAD_LIST <<<"$ONLY"
IFS=, read -r -a SYSTEM_LIST <<<"$SYSTEMS"
case $RATE in *[kK]) RATE_BYTES=$((${RATE%?} * 1024)) ;; *[mM]) RATE_BYTES=$((${RATE%?} * 1048576)) ;;
  *) RATE_BYTES=$RATE ;; esac

# shellcheck source-path=SCRIPTDIR source=lib/procs.sh
. "$BENCH_DIR/lib/procs.sh"
# shellcheck source-path=SCRIPTDIR source=lib/upstream.sh
. "$BENCH_DIR/lib/upstream.sh"
# shellcheck source-path=SCRIPTDIR source=lib/systems.sh
. "$BENCH_DIR/lib/systems.sh"
# shellcheck source-path=SCRIPTDIR source=lib/measure.sh
. "$BENCH_DIR/lib/measure.sh"
for w in "${WORKLOAD_LIST[@]}"; do
  [ -f "$BENCH_DIR/workloads/$w.sh" ] || die "unknown workload: $w (know: $ALL_WORKLOADS)"
  # shellcheck source=/dev/null
  . "$BENCH_DIR/workloads/$w.sh"
done
for s in "${SYSTEM_LIST[@]}"; do
  [[ ,$ALL_SYSTEMS, == *,$s,* ]] || die "unknown system: $s (know: $ALL_SYSTEMS)"
done
wants() { [[ ,$SYSTEMS, == *,$1,* ]]; }   # wants SYSTEM : was it asked for

# ---- work dir, clean-up ------------------------------------------------------------------------
[ -f "$WORK/pids" ] && stop_all   # a run killed hard may have left daemons: stop those it recorded
rm -rf "$WORK/runs" "$WORK/results" "$WORK/conf" "$WORK/blobs" "$WORK/logs" "$WORK/image"
mkdir -p "$WORK"/{logs,conf/nginx.d,runs,results}
: >"$WORK/pids"
OWN_POLICY_RC=
CLIENT_PIDS=()
on_exit() {
  local rc=$? pid child start
  for pid in "${CLIENT_PIDS[@]}"; do   # clients still running (interrupted) and what they started
    while read -r child start; do
      [ -n "$child" ] && [ "$(proc_start "$child")" = "$start" ] && kill -TERM "$child" 2>/dev/null
    done <<<"$(descendants "$pid")"
    kill -TERM "$pid" 2>/dev/null
  done
  stop_all
  [ -n "$OWN_POLICY_RC" ] && rm -f /usr/sbin/policy-rc.d
  [ -n "$KEEP" ] || rm -rf "$WORK/blobs" "$WORK/image" "$WORK"/runs/*/cache "$WORK"/runs/*/storage
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP

# ---- packages and pantry -----------------------------------------------------------------------
install_deps() {
  local missing=() cmd
  for cmd in nginx squid docker-registry skopeo curl openssl sha256sum setsid unshare; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  [ -x "$SQUID_CERTGEN" ] || missing+=(security_file_certgen)
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root so the benchmark can apt-get install them"
    log "installing Debian packages (missing: ${missing[*]}); output in $WORK/logs/apt.log"
    # package scripts must not start system services: a policy-rc.d that says 101 (removed on exit)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && OWN_POLICY_RC=1
    fi
    local apt=(apt-get -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
      -o Dpkg::Options::=--force-confold)
    { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update &&
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y nginx-light squid-openssl docker-registry \
        skopeo curl openssl ca-certificates coreutils util-linux python3 python3-venv; } </dev/null \
      >"$WORK/logs/apt.log" 2>&1 || die "apt-get failed: $(tail_msg "$WORK/logs/apt.log" 5)"
    if [ -n "$OWN_POLICY_RC" ]; then rm -f /usr/sbin/policy-rc.d; OWN_POLICY_RC=; fi
  fi
  for w in "${WORKLOAD_LIST[@]}"; do
    if declare -F "${w//-/_}_install" >/dev/null; then "${w//-/_}_install"; fi
  done
}

build_pantry() {
  local target
  if [ -n "$PANTRY_BIN_GIVEN" ]; then
    PANTRY_BIN=$(realpath "$PANTRY_BIN_GIVEN")
    [ -x "$PANTRY_BIN" ] || die "no pantry binary at $PANTRY_BIN_GIVEN"
    return 0
  fi
  target=$(cd "$REPO_ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') || target=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
  PANTRY_BIN=$target/release/pantry
  if [ -n "$BUILD" ]; then
    log "cargo build --release (output in $WORK/logs/cargo-build.log)"
    (cd "$REPO_ROOT" && cargo build --release) </dev/null >"$WORK/logs/cargo-build.log" 2>&1 \
      || die "cargo build --release failed: $(tail_msg "$WORK/logs/cargo-build.log" 3)"
  fi
  [ -x "$PANTRY_BIN" ] || die "no pantry binary at $PANTRY_BIN"
}

write_meta() {
  local s v
  {
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "args=${ARGS:-(none)}"
    echo "mode=$([ -n "$QUICK" ] && echo quick || echo full)"
    echo "workloads=$ONLY"; echo "systems=$SYSTEMS"; echo "reps=$REPS"; echo "rate=$RATE"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
    # the commit the measured binary was built from (its --version), not the checkout's HEAD now
    local built
    built=$("$PANTRY_BIN" --version 2>/dev/null | grep -o 'commit [^,)]*' | cut -d' ' -f2)
    built=${built:-unknown}
    echo "git=${built%+changes}"
    [[ $built == *+changes ]] && echo "git_dirty=1"
    [ -n "$PANTRY_BIN_GIVEN" ] && echo "pantry_bin_given=$PANTRY_BIN"
    for s in "${SYSTEM_LIST[@]}"; do
      declare -F "sys_${s}_version" >/dev/null && v=$("sys_${s}_version" 2>&1 | head -1) && echo "version_$s=$v"
    done
    echo "curl=$(curl --version | head -1 | cut -d' ' -f1-2)"
    echo "squid_cache_mem=$SQUID_CACHE_MEM"; echo "squid_mem_obj=$SQUID_MEM_OBJ"
    echo "squid_cache_dir=$SQUID_CACHE_DIR_TYPE"; echo "squid_read_ahead=$SQUID_READ_AHEAD"
    echo "note=$NOTE"
  } >"$WORK/meta"
}

# ---- the run -----------------------------------------------------------------------------------
# RESULTS.md's charts directory is replaced only if an earlier run made it (its marker file)
CHARTS=$(dirname "$RESULTS")/charts
MARK=.written-by-pantry-bench
[ ! -e "$CHARTS" ] || [ -e "$CHARTS/$MARK" ] || die "$CHARTS exists and was not written by bench/run.sh"
START=$SECONDS
[ -n "$INSTALL" ] && install_deps
build_pantry
read -r PORT_UP PORT_PANTRY PORT_SQUID PORT_MIRROR PORT_MITM <<<"$(free_ports 5)"
log "ports: nginx $PORT_UP, pantry $PORT_PANTRY, squid $PORT_SQUID, distribution $PORT_MIRROR, mitmproxy $PORT_MITM"
make_certs
write_hosts
for w in "${WORKLOAD_LIST[@]}"; do "${w//-/_}_prepare"; done   # blobs, fixtures, nginx.d snippets
backdate_fixtures
start_nginx
squid_setup
write_meta
for w in "${WORKLOAD_LIST[@]}"; do
  log "== workload $w"
  t=$SECONDS
  "${w//-/_}_run"   # a workload's functions are named with _ for its -
  echo "elapsed_$w=$((SECONDS - t))" >>"$WORK/meta"
done
echo "elapsed=$((SECONDS - START)) s" >>"$WORK/meta"
stop_all
# the charts go beside RESULTS.md (charts/NAME.svg), drawn anew from this run's numbers
rm -rf "$CHARTS.new" && mkdir -p "$CHARTS.new" && : >"$CHARTS.new/$MARK"
BENCH_CHARTS=$CHARTS.new BENCH_CHARTS_LINK=charts "$PY" "$BENCH_DIR/report.py" "$WORK" ${NOTES_FILE:+"$NOTES_FILE"} >"$RESULTS.new" \
  || die "report.py failed"
rm -rf "$CHARTS" && mv "$CHARTS.new" "$CHARTS"
mv "$RESULTS.new" "$RESULTS"
log "done in $((SECONDS - START)) s; wrote $RESULTS"
if [ -s "$WORK/results/failures.txt" ]; then
  log "$(wc -l <"$WORK/results/failures.txt") measurement(s) FAILED (also in RESULTS.md):"
  sed 's/^/  /' "$WORK/results/failures.txt" >&2
  exit 1
fi
