#!/usr/bin/env bash
# Real-client interop suite for pantry. See tests/interop/README.md.
#   tests/interop/run.sh [--only docker,skopeo,...] [--keep] [--no-install] [--no-build] [--hold]
#   always runs `cargo build --release` first (a no-op when up to date); --no-build uses the binary as it is
#   --hold: set up upstream, fixtures and pantry, print how to reach them, wait for Ctrl-C
#   known gaps are listed in expected-failures.txt (xfail); exit status non-zero iff a check failed
set -uo pipefail

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$INTEROP_DIR/../.." && pwd)
ALL_CLIENTS=(skopeo curl python prefetch podman containerd docker mirror-containerd mirror-podman mirror-docker
  transparent-skopeo upstream-credentials image status-page fleet restart-offline)   # restart-offline stops the registries: it stays last

ONLY="" KEEP="" INSTALL=1 HOLD="" NO_BUILD=""
while [ $# -gt 0 ]; do
  case $1 in
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --keep) KEEP=1; shift ;;
    --no-install) INSTALL=""; shift ;;
    --hold) HOLD=1; shift ;;
    --no-build) NO_BUILD=1; shift ;;
    -h|--help) sed -n '2,6p' "$0"; echo "clients: ${ALL_CLIENTS[*]}"; exit 0 ;;
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
EXPECTED_FAILURES=${INTEROP_EXPECTED_FAILURES:-$INTEROP_DIR/expected-failures.txt}
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
  remove_policy_rc
  [ -n "$KEEP" ] || rm -rf "$WORK/storage" "$WORK/layouts" "$WORK/clients" "$WORK/pantry-cache"
  exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP

report() { # the table, the failures, the expected failures and the closing lines; status 0 iff none failed
  REPORTED=1
  local passed=0 failed=1 xfailed=0
  if "$PY" "$INTEROP_DIR/report.py" table "$WORK/results.tsv" "$EXPECTED_FAILURES" "${CLIENTS[*]}" \
    "${CHECKS[*]}" "$(all_cells)" "$WORK/counts"; then
    read -r passed failed xfailed <"$WORK/counts"
  else
    echo "report.py failed; the raw results (client, check, status, detail):"
    cat "$WORK/results.tsv"
  fi
  if [ $((passed + failed + xfailed)) -eq 0 ]; then
    echo "no check recorded a result"; failed=1
  fi
  echo "logs: $WORK/logs   total time: $((SECONDS - START)) s"
  echo "$xfailed expected failures (see $(basename "$EXPECTED_FAILURES"))"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

START=$SECONDS
[ -n "$INSTALL" ] && { install_deps; install_browser_driver; }
[ -x "$PY" ] || die "$PY is missing (run without --no-install, as root, to apt-get it)"
xf_errors=$("$PY" "$INTEROP_DIR/report.py" check "$EXPECTED_FAILURES" "$(all_cells)") \
  || die "$(basename "$EXPECTED_FAILURES") has bad entries: $xf_errors"
for p in "$PORT_ANON" "$PORT_BASIC" "$PORT_TOKEN" "$PORT_AUTH" "$PORT_CDN" "$PORT_ANON_BACKEND" "$PORT_TOKEN_ADMIN" "$PORT_PKG"; do
  port_free "$p" || die "port $p is in use (another run still going?)"
done
log "upstream side: certificates, registries, token server, nginx"
make_certs
start_registries
start_nginx
# shellcheck disable=SC2046  # one client a word
make_fixtures $(fixture_clients "${CLIENTS[@]}")
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
