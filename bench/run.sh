#!/usr/bin/env bash
# Benchmark: concurrent cold pulls of one registry blob through pantry and its peers, side by side.
#
# Upstream is Debian's nginx serving a random blob over TLS as registry.test at a registry path
# (/v2/bench/blobs/sha256:HEX), limited to 5 MB/s per connection (like a CDN edge). N curl clients
# start at once and each fetches the whole blob, hashing the body (every body is verified against
# the digest). Systems, each started cold (fresh process, empty cache) for every measurement:
#   direct        clients straight to nginx (the reference)
#   pantry        intercepting proxy (release build): curl -x http://127.0.0.1:PORT --cacert pantry-CA
#   squid         squid-openssl, ssl-bump caching proxy with collapsed_forwarding
#   distribution  Debian's docker-registry (distribution 2.8) as a pull-through mirror
# Per system, blob size and client count it records the wall time (start until the last client
# finished), upstream blob GETs and bytes (nginx access log), bodies verified, and the proxy's peak
# RSS (VmHWM, summed over its processes). Results: bench/RESULTS.md; raw data and logs: bench/work/.
#
#   bench/run.sh --quick     200 MiB, 1 and 16 clients, 1 repetition (a few minutes)
#   bench/run.sh             full: 200 MiB and 1 GiB, 1/16/32 clients, 3 repetitions (median, min-max)
# Options (override the mode's choice): --sizes 200,1024 (MiB)  --clients 1,16,32  --reps 3, or
#   --workload MIB:CLIENTS:REPS (repeatable, e.g. --workload 200:1,16,32:3 --workload 1024:1,32:1)
#   --systems direct,pantry,squid,distribution  --rate 5m (nginx limit_rate)  --note TEXT and
#   --notes-file FILE (markdown) add to RESULTS.md's notes  --results FILE (default bench/RESULTS.md)  --no-install  --no-build (use
#   target/release/pantry as it is)  --pantry-bin FILE (use this binary)  --keep (keep caches, blobs)
# squid's memory settings can be varied through SQUID_CACHE_MEM ("64 MB"), SQUID_MEM_OBJ ("1 MB"),
# SQUID_CACHE_DIR_TYPE (aufs) and SQUID_READ_AHEAD ("1 MB"); for diagnosis, UP_HTTP2= (empty)
# makes nginx speak HTTP/1.1 only and CLIENT_EXTRA adds curl options (e.g. --http1.1).
# Needs root (apt-get, squid drops to user proxy). Uses loopback only and free ports; stops every
# process it started when it exits; changes nothing outside bench/work except installing packages.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
WORK=$BENCH_DIR/work
UP_HOST=registry.test
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)

MODE=full SIZES="" CLIENTS="" REPS="" WORKLOADS=() SYSTEMS=direct,pantry,squid,distribution RATE=5m NOTE=""
RESULTS=$BENCH_DIR/RESULTS.md INSTALL=1 BUILD=1 KEEP="" PANTRY_BIN_GIVEN="" NOTES_FILE=""
ARGS="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) MODE=quick; shift ;;
    --sizes) SIZES=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --workload) WORKLOADS+=("$2"); shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
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
[ -n "$SIZES$CLIENTS$REPS" ] || [ "${#WORKLOADS[@]}" -gt 0 ] && MODE=custom
if [ "$MODE" = quick ]; then
  SIZES=${SIZES:-200} CLIENTS=${CLIENTS:-1,16} REPS=${REPS:-1}
else
  SIZES=${SIZES:-200,1024} CLIENTS=${CLIENTS:-1,16,32} REPS=${REPS:-3}
fi
if [ "${#WORKLOADS[@]}" -eq 0 ]; then   # sizes x clients x reps, unless --workload said otherwise
  IFS=, read -r -a SIZE_LIST <<<"$SIZES"
  for mib in "${SIZE_LIST[@]}"; do WORKLOADS+=("$mib:$CLIENTS:$REPS"); done
fi
SIZE_LIST=() MAX_REPS=0
for w in "${WORKLOADS[@]}"; do
  [[ $w =~ ^[0-9]+:[0-9]+(,[0-9]+)*:[0-9]+$ ]] || { echo "bad workload '$w' (want MIB:N,N,...:REPS)" >&2; exit 2; }
  IFS=: read -r mib _ reps <<<"$w"
  SIZE_LIST+=("$mib")
  [ "$reps" -gt "$MAX_REPS" ] && MAX_REPS=$reps
done
IFS=, read -r -a SYSTEM_LIST <<<"$SYSTEMS"

# shellcheck source-path=SCRIPTDIR source=lib/procs.sh
. "$BENCH_DIR/lib/procs.sh"
# shellcheck source-path=SCRIPTDIR source=lib/upstream.sh
. "$BENCH_DIR/lib/upstream.sh"
# shellcheck source-path=SCRIPTDIR source=lib/systems.sh
. "$BENCH_DIR/lib/systems.sh"

for s in "${SYSTEM_LIST[@]}"; do
  declare -F "sys_${s}_start" >/dev/null || die "unknown system: $s (know: direct pantry squid distribution)"
done
case $RATE in *[kK]) RATE_BYTES=$((${RATE%?} * 1024)) ;; *[mM]) RATE_BYTES=$((${RATE%?} * 1048576)) ;;
  *) RATE_BYTES=$RATE ;; esac

# ---- work dir, clean-up ------------------------------------------------------------------------
[ -f "$WORK/pids" ] && stop_all   # a run killed hard may have left daemons: stop those it recorded
rm -rf "$WORK"
mkdir -p "$WORK"/{logs,conf,runs}
: >"$WORK/pids"
OWN_POLICY_RC=
CLIENT_PIDS=()
on_exit() {
  local rc=$? pid child start
  for pid in "${CLIENT_PIDS[@]}"; do   # clients still running (interrupted): curl, sha256sum, subshell
    while read -r child start; do
      [ -n "$child" ] && [ "$(proc_start "$child")" = "$start" ] && kill -TERM "$child" 2>/dev/null
    done <<<"$(descendants "$pid")"
    kill -TERM "$pid" 2>/dev/null
  done
  stop_all
  [ -n "$OWN_POLICY_RC" ] && rm -f /usr/sbin/policy-rc.d
  [ -n "$KEEP" ] || rm -rf "$WORK/blobs" "$WORK"/runs/*/cache "$WORK"/runs/*/storage
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP

# ---- packages and pantry -----------------------------------------------------------------------
install_deps() {
  local missing=() cmd
  for cmd in nginx squid docker-registry curl openssl sha256sum setsid; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  [ -x "$SQUID_CERTGEN" ] || missing+=(security_file_certgen)
  [ "${#missing[@]}" -eq 0 ] && return 0
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
      curl openssl ca-certificates coreutils util-linux python3; } </dev/null >"$WORK/logs/apt.log" 2>&1 \
    || die "apt-get failed: $(tail_msg "$WORK/logs/apt.log" 5)"
  if [ -n "$OWN_POLICY_RC" ]; then rm -f /usr/sbin/policy-rc.d; OWN_POLICY_RC=; fi
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

# ---- one measurement ---------------------------------------------------------------------------
client() { # client PREFIX : one pull; PREFIX.sum gets the body's sha256, PREFIX.rc curl's and sha256sum's status
  # shellcheck disable=SC2086  # CLIENT_EXTRA: extra curl options, e.g. --http1.1
  curl -sS --fail --max-time "$MAXTIME" -A pantry-bench ${CLIENT_EXTRA:-} "${CLIENT_ARGS[@]}" "$CLIENT_URL" 2>"$1.err" \
    -w '%{stderr}time: total=%{time_total} first_byte=%{time_starttransfer} http=%{http_version}\n' |
    sha256sum >"$1.sum"
  echo "${PIPESTATUS[*]}" >"$1.rc"
}

measure() { # measure SYSTEM MIB CLIENTS REP : appends a row to $WORK/results.tsv
  local sys=$1 n=$3 rep=$4 d i mark t0 t1 sampler="" pids=() gets bytes slowest other ok=0 rss=0 nproc=0 cpu=0 wall load
  MIB=$2
  d=$WORK/runs/$sys-${MIB}M-${n}c-r$rep
  mkdir -p "$d/clients"
  MAXTIME=$((MIB * 1048576 * 3 / RATE_BYTES + 120))
  "sys_${sys}_start" "$d"
  [ -n "$SYS_PID" ] && { "$PY" "$BENCH_DIR/rss_sample.py" "$SYS_PID" "$d/rss" & sampler=$!; }
  mark=$(upstream_lines)
  load=$(cut -d' ' -f1 /proc/loadavg)   # what else this machine was doing
  t0=$(date +%s.%N)
  for ((i = 1; i <= n; i++)); do
    client "$d/clients/$i" &
    pids+=($!)
  done
  CLIENT_PIDS=("${pids[@]}")
  wait "${pids[@]}"
  CLIENT_PIDS=()
  t1=$(date +%s.%N)
  if [ -n "$sampler" ]; then
    sleep 0.5; kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    read -r rss nproc cpu <"$d/rss" || true
  fi
  declare -F "sys_${sys}_after" >/dev/null && "sys_${sys}_after" "$d"
  "sys_${sys}_stop"
  sleep 1   # nginx logs a request when it ends; the system's upstream connections closed on stop
  read -r gets bytes slowest other < <(upstream_since "$mark")
  for ((i = 1; i <= n; i++)); do
    [ "$(cat "$d/clients/$i.rc" 2>/dev/null)" = "0 0" ] &&
      [ "$(cut -d' ' -f1 "$d/clients/$i.sum")" = "${BLOB_HEX[$MIB]}" ] && ok=$((ok + 1))
  done
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sys" "$MIB" "$n" "$rep" "$wall" "$gets" \
    "$bytes" "$ok" "${rss:-0}" "${nproc:-0}" "$other" "$load" "${cpu:-0}" "$slowest" >>"$WORK/results.tsv"
  log "$sys ${MIB} MiB x $n (rep $rep): ${wall} s, $gets upstream GETs (slowest ${slowest} s), $((bytes / 1048576)) MiB upstream, $ok/$n verified, peak RSS $((${rss:-0} / 1024)) MiB, CPU ${cpu:-0} s${other:+ (other upstream requests: $other)}"
  if [ "$ok" -ne "$n" ]; then
    log "  failures: $(cat "$d"/clients/*.err 2>/dev/null | grep -v '^time: ' | sort | uniq -c | head -3 | tr '\n' ' ')"
  fi
  [ -n "$KEEP" ] || rm -rf "$d/cache" "$d/storage"
}

# ---- the run -----------------------------------------------------------------------------------
START=$SECONDS
[ -n "$INSTALL" ] && install_deps
build_pantry
read -r PORT_UP PORT_PANTRY PORT_SQUID PORT_MIRROR <<<"$(free_ports 4)"
log "ports: nginx $PORT_UP, pantry $PORT_PANTRY, squid $PORT_SQUID, distribution $PORT_MIRROR"
make_certs
for mib in "${SIZE_LIST[@]}"; do [ -n "${BLOB_HEX[$mib]:-}" ] || make_blob "$mib"; done
start_nginx
squid_setup
: >"$WORK/results.tsv"
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "args=${ARGS:-(none)}"
  echo "mode=$MODE"; echo "workloads=${WORKLOADS[*]}"; echo "rate=$RATE"
  echo "systems=$SYSTEMS"
  echo "nproc=$(nproc)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "git=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git -C "$REPO_ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo "git_dirty=1"
  [ -n "$PANTRY_BIN_GIVEN" ] && echo "pantry_bin_given=$PANTRY_BIN"
  for s in direct pantry squid distribution; do echo "version_$s=$("sys_${s}_version" 2>&1 | head -1)"; done
  echo "curl=$(curl --version | head -1 | cut -d' ' -f1-2)"
  echo "squid_cache_mem=$SQUID_CACHE_MEM"; echo "squid_mem_obj=$SQUID_MEM_OBJ"
  echo "squid_cache_dir=$SQUID_CACHE_DIR_TYPE"; echo "squid_read_ahead=$SQUID_READ_AHEAD"
  echo "note=$NOTE"
} >"$WORK/meta"

for ((rep = 1; rep <= MAX_REPS; rep++)); do
  for w in "${WORKLOADS[@]}"; do
    IFS=: read -r mib clients reps <<<"$w"
    [ "$rep" -le "$reps" ] || continue
    IFS=, read -r -a client_list <<<"$clients"
    for n in "${client_list[@]}"; do
      # rotate the systems' order per repetition, so none always runs first or last
      for ((k = 0; k < ${#SYSTEM_LIST[@]}; k++)); do
        measure "${SYSTEM_LIST[$(((k + rep - 1) % ${#SYSTEM_LIST[@]}))]}" "$mib" "$n" "$rep"
      done
    done
  done
done

echo "elapsed=$((SECONDS - START)) s" >>"$WORK/meta"
stop_all
"$PY" "$BENCH_DIR/report.py" "$WORK/meta" "$WORK/results.tsv" ${NOTES_FILE:+"$NOTES_FILE"} >"$RESULTS" \
  || die "report.py failed"
log "done in $((SECONDS - START)) s; wrote $RESULTS"
