# shellcheck shell=bash
# Logging, free ports and the processes the benchmark starts. Every daemon runs in its own session
# (setsid), so it and its helpers are stopped together by process group; each one is remembered in
# $WORK/pids with its start time, so a pid reused by a stranger is never signalled.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 2; }
tail_msg() { tail -n "${2:-3}" "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-300; }

# free_ports N : print N distinct free loopback TCP ports (held open together while chosen)
free_ports() {
  "$PY" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

proc_start() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

spawn() { # spawn NAME LOGFILE CMD... : start CMD in a session of its own; its pid in $SPAWNED
  local name=$1 logf=$2; shift 2
  setsid "$@" >"$logf" 2>&1 </dev/null &
  SPAWNED=$!
  echo "$SPAWNED $name $(proc_start "$SPAWNED")" >>"$WORK/pids"
}

descendants() { # descendants PID : "PID START" of every process below PID (helpers may setsid)
  awk '{ sub(/^.*\) /, ""); print FILENAME, $2, $20 }' /proc/[0-9]*/stat 2>/dev/null |
    "$PY" -c '
import sys
root, kids = sys.argv[1], {}
for line in sys.stdin:
    path, ppid, start = line.split()
    kids.setdefault(ppid, []).append((path.split("/")[2], start))
todo = [root]
while todo:
    for pid, start in kids.get(todo.pop(), []):
        print(pid, start)
        todo.append(pid)
' "$1"
}

stop_group() { # stop_group PID : TERM its process group, wait up to 10 s, then KILL; then its helpers
  local pid=$1 helpers hpid hstart
  helpers=$(descendants "$pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  # helpers in sessions of their own (squid's pinger outlives squid) that are still the same processes
  while read -r hpid hstart; do
    [ -n "$hpid" ] && [ "$(proc_start "$hpid")" = "$hstart" ] && kill -TERM "$hpid" 2>/dev/null
  done <<<"$helpers"
  return 0
}

stop_named() { # stop_named NAME : stop every process spawned under NAME that is still ours
  local pid name start
  [ -f "$WORK/pids" ] || return 0
  while read -r pid name start; do
    [ "$name" = "$1" ] && [ -n "$start" ] && [ "$(proc_start "$pid")" = "$start" ] && stop_group "$pid"
  done <"$WORK/pids"
  awk -v n="$1" '$2 != n' "$WORK/pids" >"$WORK/pids.new" && mv "$WORK/pids.new" "$WORK/pids"
}

stop_all() { # newest first
  local pid name start
  [ -f "$WORK/pids" ] || return 0
  tac "$WORK/pids" | while read -r pid name start; do
    [ -n "$start" ] && [ "$(proc_start "$pid")" = "$start" ] && stop_group "$pid"
  done
  : >"$WORK/pids"
}

wait_for() { # wait_for SECONDS WHAT CMD... : poll CMD until it succeeds, $SPAWNED dies or time is up
  local end=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -n "${SPAWNED:-}" ] && ! kill -0 "$SPAWNED" 2>/dev/null; then
      log "$what: process $SPAWNED exited"; return 1
    fi
    [ "$SECONDS" -ge "$end" ] && { log "timeout waiting for $what"; return 1; }
    sleep 0.2
  done
}
