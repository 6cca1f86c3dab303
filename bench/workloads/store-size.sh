# shellcheck shell=bash
# Workload "store-size": does pantry's cost grow with the number of entries it stores? For each
# size (1,000, 100,000 and 1,000,000 distinct 1 KiB blobs; 1,000 and 5,000 in quick mode) a fresh
# pantry is filled through the proxy (curl --parallel, each blob a miss fetched from nginx and
# committed by pantry's own code), stopped, then measured on that store:
#   tools     `pantry cache stats` and `pantry cache ls` on the stopped store (wall time)
#   start     from spawning pantry to the first hit (a GET answered from the store)
#   idle RSS  resident memory once pantry has counted the store ("counted the store" in its log)
#   hits      oha at 1 connection for SMALL_SECS over random entries: p50/p99 (upstream GETs: 0)
#   eviction  pantry restarted with a cap the store just fits, then one more blob written through
#             it takes it over: the eviction pass's time (its "eviction pass" log line) and p99 of
#             the hits oha got meanwhile
# Targets at 1M entries: start ≤ 2 s, hit p50 ≤ 1.2× the 1k store's, idle RSS ≤ 64 MiB, hits
# during the pass p99 ≤ 2× idle, `cache stats` ≤ 5 s.

STORE_SIZE_SYSTEMS=(pantry)
STORE_SIZE_BLOB=1024
# oha and its JSON are the small workload's
# shellcheck source=small.sh
declare -F small_prepare >/dev/null || . "$BENCH_DIR/workloads/small.sh"

store_size_install() { small_install; }

store_size_prepare() {
  if [ -n "${STORE_SIZE_ENTRIES:-}" ]; then   # for diagnosis: STORE_SIZE_ENTRIES=1000,100000
    IFS=, read -r -a STORE_SIZES <<<"$STORE_SIZE_ENTRIES"
  elif [ -n "$QUICK" ]; then STORE_SIZES=(1000 5000); else STORE_SIZES=(1000 100000 1000000); fi
  [ -n "${SMALL_SECS:-}" ] || small_prepare   # also finds oha
  local largest n t=$SECONDS
  largest=$(printf '%s\n' "${STORE_SIZES[@]}" | sort -n | tail -n 1)
  n=$((largest + 1))   # one more: the write that starts an eviction pass
  STORE_SIZE_URLS=$WORK/image/many.urls
  mkdir -p "$WORK/blobs/many" "$WORK/image"
  "$PY" "$BENCH_DIR/many_blobs.py" "$WORK/blobs/many" "$n" "$STORE_SIZE_BLOB" \
    "https://$UP_HOST:$PORT_UP" "$STORE_SIZE_URLS" || die "store-size: could not write the blobs"
  log "store-size: $n blobs of $STORE_SIZE_BLOB bytes written in $((SECONDS - t)) s"
  cat >"$WORK/conf/nginx.d/store-size.locations" <<NGINX
    location ~ "^/v2/many/blobs/sha256:([0-9a-f]{2})([0-9a-f]{62})\$" {
      alias $WORK/blobs/many/\$1/\$2;
      add_header Docker-Distribution-Api-Version registry/2.0 always;
      add_header Docker-Content-Digest sha256:\$1\$2 always;
    }
NGINX
}

# store_size_fill DIR N : GET the first N URLs once each through the running pantry; "OK SECS"
store_size_fill() {
  local d=$1 n=$2 t0 t1
  head -n "$n" "$STORE_SIZE_URLS" | awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' >"$d/fill.cfg"
  t0=$(date +%s.%N)
  curl -sS --no-progress-meter -Z --parallel-max 8 --parallel-immediate -A pantry-bench "${CLIENT_ARGS[@]}" -K "$d/fill.cfg" \
    -w '%{http_code}\n' >"$d/fill.codes" 2>"$d/fill.err" </dev/null
  t1=$(date +%s.%N)
  echo "$(grep -c '^200$' "$d/fill.codes") $(elapsed "$t0" "$t1")"
}

# store_size_log_ms LOG MESSAGE : "MS END_EPOCH" of the first log line with MESSAGE (its ms=
# field, and when it was written), or nothing
store_size_log_ms() {
  "$PY" - "$1" "$2" <<'PY'
import datetime, re, sys
found = None
for line in open(sys.argv[1], errors="replace"):
    if sys.argv[2] in line and (m := re.search(r"\bms=(\d+)", line)):
        t = re.match(r"(\d{4}-\d\d-\d\dT[\d:.]+)Z?", line)
        at = datetime.datetime.fromisoformat(t.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp() if t else 0
        found = f"{m.group(1)} {at:.3f}"
        break
print(found or "")
PY
}

# store_size_window FROM TO DB T0 [DB T0...] : "N P50_MS P99_MS" of the oha requests (sqlite DBs,
# each of a run started at epoch T0) that started between epochs FROM and TO
store_size_window() {
  "$PY" - "$@" <<'PY'
import sqlite3, sys
lo, hi = float(sys.argv[1]), float(sys.argv[2])
rows = []
for db, t0 in zip(sys.argv[3::2], map(float, sys.argv[4::2])):
    try:
        found = sqlite3.connect(db).execute("select start, duration, status from oha").fetchall()
    except sqlite3.Error:
        continue
    rows += [d for s, d, st in found if lo <= t0 + s <= hi and 200 <= st < 300]
rows.sort()
q = lambda p: 1000 * rows[min(len(rows) - 1, int(p * len(rows)))] if rows else 0
print(f"{len(rows)} {q(0.5):.3f} {q(0.99):.3f}")
PY
}

# store_size_oha OUT SECS URLS [OHA ARGS...] : oha at 1 connection through the running pantry for
# SECS seconds over random URLs of the file URLS; its JSON summary in OUT.json, messages in OUT.log
store_size_oha() {
  local out=$1 secs=$2 urls=$3
  shift 3
  "$OHA" --no-tui --output-format json -o "$out.json" -z "${secs}s" -c 1 --http-version 1.1 \
    --disable-compression --cacert "$CA_FILE" -t 10s -x "$PROXY_URL" --no-pre-lookup \
    --urls-from-file "$urls" "$@" </dev/null >"$out.log" 2>&1
}

store_size_upstream_gets() { # GETs of the store's blobs nginx logged so far
  local n
  n=$(grep -c '^GET /v2/many/' "$UP_LOG" 2>/dev/null) || true
  echo "${n:-0}"
}

store_size_phase() { # store_size_phase N REP
  local n=$1 rep=$2 d ok fill_s disk_kib files t0 t1 stats_s ls_s start_s first count rss
  local rps p50 p99 hits errors kinds before after cap pass pass_ms pass_end during secs
  d=$WORK/runs/store-size-$n-r$rep
  rm -rf "$d" && mkdir -p "$d"
  # shellcheck disable=SC2034  # read by fetch_verified
  MAXTIME=30
  sys_pantry_start "$d"
  read -r ok fill_s < <(store_size_fill "$d" "$n")
  sys_pantry_stop
  mv "$d/pantry.log" "$d/pantry-fill.log"
  [ "$ok" = "$n" ] || failed store-size "$n: the fill got $ok of $n blobs ($(sort "$d/fill.codes" | uniq -c |
    grep -v ' 200$' | head -3 | xargs)); pantry said: $(grep -m2 -E ' (WARN|ERROR) ' "$d/pantry-fill.log" | cut -c1-200 | xargs)"
  disk_kib=$(du -sk "$d/cache" | cut -f1)
  files=$(find "$d/cache" -type f | wc -l)
  t0=$(date +%s.%N); "$PANTRY_BIN" cache stats --cache-dir "$d/cache" >"$d/stats.txt" 2>&1; t1=$(date +%s.%N)
  stats_s=$(elapsed "$t0" "$t1")
  t0=$(date +%s.%N); "$PANTRY_BIN" cache ls --cache-dir "$d/cache" >"$d/ls.txt" 2>&1; t1=$(date +%s.%N)
  ls_s=$(elapsed "$t0" "$t1")
  [ "$(grep -c 'sha256:' "$d/ls.txt")" -ge "$n" ] || failed store-size "$n: cache ls listed $(grep -c 'sha256:' "$d/ls.txt") entries"

  # start until the first hit, then idle memory once the store is counted
  first=$(head -n 1 "$STORE_SIZE_URLS")
  t0=$(date +%s.%N)
  sys_pantry_start "$d"
  until curl -sS --fail -m 10 -o /dev/null -D "$d/first.head" "${CLIENT_ARGS[@]}" "$first" 2>>"$d/first.err" \
      && grep -qi '^cache-status: pantry; hit' "$d/first.head"; do
    [ "$(elapsed "$t0" "$(date +%s.%N)" | cut -d. -f1)" -lt 60 ] || { failed store-size "$n: no hit within 60 s"; break; }
    sleep 0.02
  done
  t1=$(date +%s.%N)
  start_s=$(elapsed "$t0" "$t1")
  wait_for 600 "pantry to count the store" grep -q 'counted the store' "$d/pantry.log" \
    || failed store-size "$n: pantry never said it counted the store"
  read -r count _ < <(store_size_log_ms "$d/pantry.log" "counted the store")
  sleep 1
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$SYS_PID/status" 2>/dev/null)
  [ -n "$rss" ] || failed store-size "$n: pantry was gone before its idle RSS was read"

  # hits over random entries; none may reach the upstream
  before=$(store_size_upstream_gets)
  head -n "$n" "$STORE_SIZE_URLS" >"$d/urls"
  store_size_oha "$d/hits" "$SMALL_SECS" "$d/urls" || log "store-size $n: oha exited $?"
  after=$(store_size_upstream_gets)
  read -r rps p50 p99 hits errors kinds < <(small_parse "$d/hits.json")
  [ "$errors" = 0 ] && [ "${hits:-0}" -gt 0 ] || failed store-size "$n hits: $hits ok, $errors failed ($kinds)"
  [ "$after" = "$before" ] || failed store-size "$n hits: $((after - before)) reached the upstream"
  sys_pantry_stop
  mv "$d/pantry.log" "$d/pantry-hits.log"

  # an eviction pass triggered as in production, by a write that takes the store over its cap
  # (the cap fits the store exactly; one more blob goes over), with oha's hits going on while it
  # runs: on the newer half of the entries, which the pass (least recently used first, down to
  # 90 % of the cap) keeps, so the hits stay hits and do not refill what it removed
  cap=$(((n + 1) * STORE_SIZE_BLOB - 1))
  secs=$((SMALL_SECS + 2))
  tail -n "$((n / 2))" "$d/urls" >"$d/newer.urls"
  sys_pantry_start "$d" --max-size "$cap"
  wait_for 600 "pantry to count the store" grep -q 'counted the store' "$d/pantry.log" \
    || failed store-size "$n: pantry never said it counted the store"
  # oha in rounds of a few seconds (each its own database, its start time noted) until the pass
  # is over: how long a pass over a large store takes is what is measured
  local round=0 starts=()
  while [ "$round" -lt 60 ]; do
    starts+=("$(date +%s.%N)")
    store_size_oha "$d/during-$round" "$secs" "$d/newer.urls" --db-url "$d/during-$round.db" &
    CLIENT_PIDS=($!)
    if [ "$round" = 0 ]; then
      sleep 1   # the hits' connection is up and warm before the write
      sed -n "$((n + 1))p" "$STORE_SIZE_URLS" >"$d/extra.url"
      curl -sS --fail -m 30 -o /dev/null -A pantry-bench "${CLIENT_ARGS[@]}" "$(cat "$d/extra.url")" 2>"$d/extra.err" \
        || failed store-size "$n: the write over the cap failed: $(head -c 200 "$d/extra.err")"
    fi
    wait "${CLIENT_PIDS[0]}" || log "store-size $n: oha exited $?"
    CLIENT_PIDS=()
    round=$((round + 1))
    grep -q 'eviction pass' "$d/pantry.log" && break
  done
  read -r pass_ms pass_end < <(store_size_log_ms "$d/pantry.log" "eviction pass")
  sys_pantry_stop
  if [ -n "${pass_ms:-}" ]; then
    pass=$(awk -v e="$pass_end" -v m="$pass_ms" 'BEGIN { printf "%.3f", e - m / 1000 }')
    local i dbs=()
    for ((i = 0; i < round; i++)); do dbs+=("$d/during-$i.db" "${starts[$i]}"); done
    read -r during _ during_p99 < <(store_size_window "$pass" "$pass_end" "${dbs[@]}")
    [ "${during:-0}" -gt 0 ] || during_p99=   # no hit during the pass: nothing measured
  else
    failed store-size "$n: no eviction pass within $((round * secs)) s of a write over the cap"
    during=0 during_p99=
  fi
  tsv_row store-size entries="$n" rep="$rep" fill_s="$fill_s" disk_kib="$disk_kib" files="$files" \
    stats_s="$stats_s" ls_s="$ls_s" start_s="$start_s" count_ms="${count:-}" rss_kib="$rss" rps="$rps" \
    p50_ms="$p50" p99_ms="$p99" hits="$hits" pass_ms="${pass_ms:-}" during_n="$during" during_p99_ms="$during_p99"
  log "store-size $n (rep $rep): filled in $fill_s s; $((disk_kib / 1024)) MiB, $files files on disk;" \
    "stats $stats_s s, ls $ls_s s; first hit after $start_s s, counted in ${count:-?} ms, idle RSS $((rss / 1024)) MiB;" \
    "hits p50 $p50 ms p99 $p99 ms; eviction pass ${pass_ms:-?} ms, $during hits during it, p99 ${during_p99:-?} ms"
  [ -n "$KEEP" ] || rm -rf "$d/cache" "$d"/during-*.db
}

store_size_run() {
  wants pantry || return 0
  echo "version_oha=$("$OHA" --version 2>/dev/null | head -1)" >>"$WORK/meta"
  local rep n
  for ((rep = 1; rep <= REPS; rep++)); do
    for n in "${STORE_SIZES[@]}"; do store_size_phase "$n" "$rep"; done
  done
}
