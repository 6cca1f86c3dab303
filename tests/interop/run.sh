#!/usr/bin/env bash
# Real-client interop suite for pantry. See tests/interop/README.md.
#   tests/interop/run.sh [--only docker,skopeo,...] [--keep] [--no-install] [--build] [--hold]
#   --build: run `cargo build --release` even if target/release/pantry exists
#   --hold: set up upstream, fixtures and pantry, print how to reach them, wait for Ctrl-C
set -uo pipefail

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$INTEROP_DIR/../.." && pwd)
ALL_CLIENTS=(skopeo curl python podman containerd docker mirror)

ONLY="" KEEP="" INSTALL=1 HOLD="" BUILD=""
while [ $# -gt 0 ]; do
  case $1 in
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --keep) KEEP=1; shift ;;
    --no-install) INSTALL=""; shift ;;
    --hold) HOLD=1; shift ;;
    --build) BUILD=1; shift ;;
    -h|--help) sed -n '2,5p' "$0"; echo "clients: ${ALL_CLIENTS[*]}"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
CLIENTS=("${ALL_CLIENTS[@]}")
if [ -n "$ONLY" ]; then
  IFS=, read -r -a CLIENTS <<<"$ONLY"
  for c in "${CLIENTS[@]}"; do
    [[ " ${ALL_CLIENTS[*]} " == *" $c "* ]] || { echo "unknown client: $c (know: ${ALL_CLIENTS[*]})" >&2; exit 2; }
  done
fi

WORK=${INTEROP_WORK:-$INTEROP_DIR/work}
# shellcheck source=lib/common.sh
. "$INTEROP_DIR/lib/common.sh"
for f in "$INTEROP_DIR"/lib/*.sh "$INTEROP_DIR"/clients/*.sh; do
  # shellcheck disable=SC1090
  . "$f"
done

# a previous run that was killed hard may have left daemons: stop what its pid file names
if [ -f "$WORK/pids" ]; then cleanup_all; fi
rm -rf "$WORK"
mkdir -p "$WORK"/{logs,conf,marks,storage}
: >"$WORK/pids"; : >"$WORK/results.tsv"

on_exit() {
  local rc=$?
  if [ -z "${REPORTED:-}" ] && [ "$rc" != 130 ] && [ -f "$WORK/results.tsv" ]; then
    # stopped before the rows ran (e.g. the upstream side could not be set up): still say so per row
    for c in "${CLIENTS[@]}"; do fail_rest "$c" "suite stopped early: ${DIE_MSG:-exit status $rc}"; done
    cleanup_all; CLEANED=1
    report
    rc=1
  fi
  [ -n "${CLEANED:-}" ] || cleanup_all
  [ -n "$KEEP" ] || rm -rf "$WORK/storage" "$WORK/layouts" "$WORK/clients" "$WORK/pantry-cache"
  exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

print_table() {
  "$PY" - "$WORK/results.tsv" "${CLIENTS[*]}" "${CHECKS[*]}" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
clients, checks = sys.argv[2].split(), sys.argv[3].split()
cell = {}
for c, k, s, d in rows:
    cell[(c, k)] = (s, d)
w = max(len(c) for c in clients + ["client"])
print()
print("client".ljust(w), *[k.center(max(len(k), 4)) for k in checks], sep=" | ")
print("-" * (w + sum(max(len(k), 4) + 3 for k in checks)))
for c in clients:
    marks = []
    for k in checks:
        s = cell.get((c, k), ("-", ""))[0]
        marks.append({"PASS": "ok", "FAIL": "FAIL", "SKIP": "-"}.get(s, s).center(max(len(k), 4)))
    print(c.ljust(w), *marks, sep=" | ")
print()
groups = {}
for c, k, s, d in rows:
    if s == "FAIL":
        groups.setdefault(d, []).append("%s/%s" % (c, k))
if groups:
    print("failures:")
    for d, where in groups.items():
        print("  %s: %s" % (", ".join(where), d))
    print()
EOF
}

report() { # the table, the failures and the closing line; status 0 only if all passed
  REPORTED=1
  print_table
  local passed failed
  passed=$(awk -F'\t' '$3 == "PASS"' "$WORK/results.tsv" | wc -l)
  failed=$(awk -F'\t' '$3 == "FAIL"' "$WORK/results.tsv" | wc -l)
  echo "logs: $WORK/logs   total time: $((SECONDS - START)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

START=$SECONDS
[ -n "$INSTALL" ] && install_deps
for p in "$PORT_ANON" "$PORT_BASIC" "$PORT_TOKEN" "$PORT_AUTH" "$PORT_CDN" "$PORT_ANON_BACKEND" "$PORT_TOKEN_ADMIN"; do
  port_free "$p" || die "port $p is in use (another run still going?)"
done
log "upstream side: certificates, registries, token server, nginx"
make_certs
start_registries
start_nginx
FIXTURE_CLIENTS=()
for c in "${CLIENTS[@]}"; do [ "$c" = mirror ] || FIXTURE_CLIENTS+=("$c"); done
make_fixtures "${FIXTURE_CLIENTS[@]}"
stop_named registry-tokenadm      # pushing is over; nothing may bypass the token registry's auth
log "upstream ready after $((SECONDS - START)) s"

start_pantry || log "pantry unavailable: $PANTRY_ERROR"
if [ -n "$HOLD" ]; then
  log "holding; work dir $WORK; pantry ${PANTRY_ERROR:-at $PANTRY_ADDR}; Ctrl-C (or TERM) ends"
  sleep infinity & wait $!
fi

for c in "${CLIENTS[@]}"; do
  if [ -n "$PANTRY_ERROR" ]; then
    fail_rest "$c" "pantry not running: $PANTRY_ERROR"
    continue
  fi
  if ! pantry_healthy; then
    fail_rest "$c" "pantry stopped answering /healthz before this row: $(tail_msg "$WORK/logs/pantry.log" 2)"
    continue
  fi
  log "=== client $c"
  row_start=$SECONDS
  "client_${c}"
  log "=== client $c took $((SECONDS - row_start)) s"
done

log "stopping everything the suite started"
cleanup_all; CLEANED=1
report
