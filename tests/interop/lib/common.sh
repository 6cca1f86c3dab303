# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings here are used by the files that source this one
# Shared settings, logging, process tracking and result recording for the interop suite.
# Sourced by run.sh; everything else (lib/*.sh, clients/*.sh) relies on these names.

# ---- ports and names (only loopback is ever used) -------------------------------------------
REG_HOST=registry.test
CDN_HOST=cdn.test
PKG_HOST=pkg.test          # the plain HTTP package origin, as pantry resolves it (--resolve)
PORT_ANON=${PORT_ANON:-5000}          # nginx: registry front that redirects blob GETs to the CDN
PORT_BASIC=${PORT_BASIC:-5001}        # distribution with htpasswd
PORT_TOKEN=${PORT_TOKEN:-5002}        # distribution with token auth
PORT_AUTH=${PORT_AUTH:-5003}          # token_server.py (realm https://registry.test:5003/token)
PORT_CDN=${PORT_CDN:-5443}            # nginx: cdn.test, serves blobs from the anonymous registry's storage
PORT_ANON_BACKEND=${PORT_ANON_BACKEND:-5100}   # distribution behind the nginx front
PORT_TOKEN_ADMIN=${PORT_TOKEN_ADMIN:-5102}     # auth-less distribution on the token registry's storage (push only)
PORT_PANTRY=${PORT_PANTRY:-13128}
PORT_MIRROR=${PORT_MIRROR:-15000}     # pantry's registry-mirror port (--mirror-listen)
PORT_FLEET_A=${PORT_FLEET_A:-13140}   # the fleet row's two pantries: proxy ports, and +2 their fleet ports
PORT_FLEET_B=${PORT_FLEET_B:-13141}
PORT_PKG=${PORT_PKG:-5080}            # plain HTTP package origin (python http.server) for curl's egress-cache

REG_USER=interop
REG_PASS=interop-secret
REG_WRONG_PASS=wrong-password

PY=/usr/bin/python3                   # Debian's python (python3-jwt, python3-cryptography from apt)

# ---- logging --------------------------------------------------------------------------------
log()  { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die()  { DIE_MSG="$*"; log "FATAL: $*"; exit 2; }

# ---- background processes -------------------------------------------------------------------
# Every daemon runs in its own session (setsid), so cleanup can end it and all its children by
# process group id. The ids are remembered in $WORK/pids.
spawn() { # spawn NAME LOGFILE CMD... ; starts CMD in its own process group; pid in $SPAWNED
  local name=$1 logf=$2; shift 2
  setsid "$@" >"$logf" 2>&1 </dev/null &
  SPAWNED=$!
  echo "$SPAWNED $name $(proc_start "$SPAWNED")" >>"$WORK/pids"
}

# start time of a process (field 22 of /proc/PID/stat): with the pid it names one process for good,
# so a pid file from an older run never makes us signal a stranger that got the same pid
proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

stop_pid() { # stop_pid PID : TERM the group, wait up to 10 s, then KILL
  local pid=$1 i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { kill -KILL -- "-$pid" 2>/dev/null; return 0; }
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  return 0
}

stop_ours() { # stop_ours PID START : stop_pid, if PID is still the process we started
  [ -n "$2" ] && [ "$(proc_start "$1")" = "$2" ] && stop_pid "$1"
  return 0
}

stop_named() { # stop_named NAME : stop every process spawned under NAME
  local pid name start
  [ -f "$WORK/pids" ] || return 0
  while read -r pid name start; do
    [ "$name" = "$1" ] && stop_ours "$pid" "$start"
  done <"$WORK/pids"
  awk -v n="$1" '$2 != n' "$WORK/pids" >"$WORK/pids.new"
  mv "$WORK/pids.new" "$WORK/pids"
}

cleanup_all() {
  local pid name start
  if [ -f "$WORK/pids" ]; then
    # newest first: clients' daemons before the upstream side
    tac "$WORK/pids" | while read -r pid name start; do stop_ours "$pid" "$start"; done
    : >"$WORK/pids"
  fi
  # docker/containerd/podman may leave mounts below the work dir or their temp dirs
  local dirs=("$WORK") d m
  [ -f "$WORK/tmpdirs" ] && mapfile -t -O 1 dirs <"$WORK/tmpdirs"
  for d in "${dirs[@]}"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    awk -v w="$d" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    [ "$d" != "$WORK" ] && rm -rf "$d"
  done
  rm -f "$WORK/tmpdirs"
}

wait_for() { # wait_for SECONDS DESCRIPTION CMD... : poll CMD until it succeeds (or $SPAWNED dies)
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if [ -n "${SPAWNED:-}" ] && ! kill -0 "$SPAWNED" 2>/dev/null; then
      log "$what: process $SPAWNED exited"
      return 1
    fi
    [ "$SECONDS" -ge "$end" ] && { log "timeout waiting for $what"; return 1; }
    sleep 0.2
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- results --------------------------------------------------------------------------------
# $WORK/results.tsv: client <TAB> check <TAB> PASS|FAIL|SKIP <TAB> detail
CHECKS=(untrusted-ca pull repull zero-upstream basic-auth token-auth deny cross-mode egress-cache
  restart-skopeo restart-docker restart-mirror offline cred-skopeo cred-docker cred-repull cred-other
  image-build image-user image-health image-pull image-repull image-stop page-dom page-progress page-nojs)

result() { # result CLIENT CHECK STATUS DETAIL...
  local c=$1 k=$2 s=$3; shift 3
  local d="$*"
  d=${d//$'\t'/ }; d=${d//$'\n'/ | }
  printf '%s\t%s\t%s\t%s\n' "$c" "$k" "$s" "${d:0:400}" >>"$WORK/results.tsv"
  log "$c/$k: $s ${d:0:200}"
}
pass() { result "$1" "$2" PASS "${@:3}"; }
fail() { result "$1" "$2" FAIL "${@:3}"; }
skip() { result "$1" "$2" SKIP "${@:3}"; }

# the checks a row has: the mirror rows have no proxy trust or credentials to test
checks_of() {
  case $1 in
    mirror-containerd) echo pull repull zero-upstream cross-mode ;;
    restart-offline) echo restart-skopeo restart-docker restart-mirror offline ;;
    fleet) echo fleet-skopeo fleet-docker ;;
    upstream-credentials) echo cred-skopeo cred-docker cred-repull cred-other ;;
    image) echo image-build image-user image-health image-pull image-repull image-stop ;;
    status-page) echo page-dom page-progress page-nojs ;;
    mirror-*|transparent-*) echo pull repull zero-upstream ;;
    curl) echo untrusted-ca pull repull zero-upstream basic-auth token-auth deny egress-cache ;;
    *) echo untrusted-ca pull repull zero-upstream basic-auth token-auth deny ;;
  esac
}
# every cell the suite can produce, as "ROW:CHECK ..." (what expected-failures.txt is checked against)
all_cells() {
  local c k out=()
  for c in "${ALL_CLIENTS[@]}"; do
    for k in $(checks_of "$c"); do out+=("$c:$k"); done
  done
  echo "${out[*]}"
}

# fail every check of a client that has no result yet (e.g. its daemon could not start)
fail_rest() { # fail_rest CLIENT REASON
  local k
  for k in $(checks_of "$1"); do
    grep -q "^$1	$k	" "$WORK/results.tsv" 2>/dev/null || fail "$1" "$k" "$2"
  done
}

# last lines of a file/command output that explain a failure, on one line
tail_msg() { tail -n "${2:-3}" "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-300; }

# the lines of a client's output that can carry its final error (debug chatter left out)
error_lines() { grep -vE 'level=(debug|info)|^[[:space:]]*$' "$1" 2>/dev/null | tail -n 10; }
# the last few meaningful lines of a client's output, on one line (for the report)
failure_msg() { error_lines "$1" | grep -v '^rc=' | tail -n 3 | tr '\n' ' ' | cut -c1-350; }
# does the client output in file $1 end in a TLS trust failure?
TLS_ERROR_RE='x509|certificate (verify|signed|is not|problem)|unknown authority|CERTIFICATE_VERIFY_FAILED|SSL certificate|tls: |handshake failure|invalid peer certificate'
is_tls_error() { error_lines "$1" | grep -qiE "$TLS_ERROR_RE"; }
tls_error_text() { error_lines "$1" | grep -oiE ".{0,60}($TLS_ERROR_RE).{0,80}" | head -1; }
# does the client output in file $1 end in an authorization failure?
is_auth_error() {
  error_lines "$1" | grep -qiE 'unauthori[sz]ed|denied|\b401\b|\b403\b|authenticat|authoriz|forbidden|insufficient_scope|no basic auth'
}
