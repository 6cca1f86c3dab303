# shellcheck shell=bash
# What every workload measures with: result rows, the proxy's peak RSS and CPU, curl clients.

# tsv_row WORKLOAD NAME=VALUE... : append a row to $WORK/results/WORKLOAD.tsv; the first row of a
# file also writes the header (the names), so every row of a workload names its values in one order
tsv_row() {
  local f=$WORK/results/$1.tsv names=() vals=() kv
  shift
  for kv in "$@"; do names+=("${kv%%=*}"); vals+=("${kv#*=}"); done
  [ -s "$f" ] || (IFS=$'\t'; echo "${names[*]}") >"$f"
  (IFS=$'\t'; echo "${vals[*]}") >>"$f"
}

# sampler_start DIR : sample the running system's peak RSS and CPU into DIR/rss (none for direct)
SAMPLER=
sampler_start() {
  SAMPLER= RSS_KIB=0 RSS_NPROC=0 CPU_S=0
  [ -n "$SYS_PID" ] || return 0
  "$PY" "$BENCH_DIR/rss_sample.py" "$SYS_PID" "$1/rss" &
  SAMPLER=$!
}
# sampler_stop DIR : stop sampling; sets RSS_KIB, RSS_NPROC and CPU_S
sampler_stop() {
  [ -n "$SAMPLER" ] || return 0
  sleep 0.5; kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null
  read -r RSS_KIB RSS_NPROC CPU_S <"$1/rss" || true
  SAMPLER=
}

# failed WORKLOAD WHAT : a measurement went wrong (a body not verified, a pull or request failed);
# run.sh lists them at the end and exits 1, so a broken run is never mistaken for a result
failed() { # one line each (what it quotes may hold newlines)
  local what
  what=$(printf '%s' "${*:2}" | tr '\r\n\t' '   ')
  log "  FAILED: $1: $what"; printf '%s\t%s\n' "$1" "$what" >>"$WORK/results/failures.txt"
}

load_now() { cut -d' ' -f1 /proc/loadavg; }   # what else this machine was doing
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# fetch_verified PREFIX URL : one GET through the system (CLIENT_ARGS); PREFIX.sum gets the body's
# sha256, PREFIX.rc curl's and sha256sum's exit status, PREFIX.err curl's errors and timings
fetch_verified() {
  curl -sS --fail --max-time "$MAXTIME" -A pantry-bench "${CLIENT_ARGS[@]}" "$2" 2>"$1.err" \
    -w '%{stderr}time: total=%{time_total} first_byte=%{time_starttransfer} http=%{http_version}\n' |
    sha256sum >"$1.sum"
  echo "${PIPESTATUS[*]}" >"$1.rc"
}
verified() { # verified PREFIX HEX : did the fetch succeed with that digest
  [ "$(cat "$1.rc" 2>/dev/null)" = "0 0" ] && [ "$(cut -d' ' -f1 "$1.sum" 2>/dev/null)" = "$2" ]
}

# fetch_clients N DIR URL : N verified fetches of URL at once; waits for all (interruptible)
fetch_clients() {
  local n=$1 dir=$2 url=$3 i pids=()
  mkdir -p "$dir"
  for ((i = 1; i <= n; i++)); do
    fetch_verified "$dir/$i" "$url" &
    pids+=($!)
  done
  CLIENT_PIDS=("${pids[@]}")
  wait "${pids[@]}"
  CLIENT_PIDS=()
}
count_verified() { # count_verified N DIR HEX
  local i ok=0
  for ((i = 1; i <= $1; i++)); do verified "$2/$i" "$3" && ok=$((ok + 1)); done
  echo "$ok"
}
client_failures() { cat "$1"/*.err 2>/dev/null | grep -v '^time: ' | sort | uniq -c | head -3 | tr '\n' ' '; }
