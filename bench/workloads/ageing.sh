# shellcheck shell=bash
# Workload "ageing": does a tag's hit path slow down as the store ages? The small workload's
# manifest is asked for by tag through pantry with tag_ttl = 0, so that every request is a
# revalidation (a HEAD upstream and a new record for the tag): AGEING_N of them (100,000; 5,000 in
# quick mode) with oha at 8 connections. Then pantry restarts on that store with the default TTL
# and oha measures by-tag hits at 1 connection for SMALL_SECS seconds; the same measurement on a
# fresh store (one GET only) is the reference. Rows: p50/p99 latency and requests/s of the hits,
# and the size of the tag's records on disk. Target: aged ≤ 1.1× fresh.

AGEING_SYSTEMS=(pantry)
# the manifest, its nginx locations and the oha helpers are the small workload's
# shellcheck source=small.sh
declare -F small_prepare >/dev/null || . "$BENCH_DIR/workloads/small.sh"

ageing_install() { small_install; }

ageing_prepare() {
  AGEING_N=$([ -n "$QUICK" ] && echo 5000 || echo 100000)
  [ -n "${SMALL_HEX:-}" ] || small_prepare   # also finds oha
}

# ageing_records DIR : "FILES BYTES" of pantry's mutable records under DIR/cache
ageing_records() {
  local files bytes
  read -r files bytes < <(find "$1/cache/records" -type f -printf '%s\n' 2>/dev/null |
    awk '{ n++; b += $1 } END { printf "%d %d\n", n, b }')
  echo "${files:-0} ${bytes:-0}"
}

ageing_phase() { # ageing_phase PHASE REP : fresh or aged store, then the hits measured
  local phase=$1 rep=$2 d out rps p50 p99 ok errors kinds files bytes revalidations=0
  d=$WORK/runs/ageing-$phase-r$rep
  rm -rf "$d" && mkdir -p "$d"
  # shellcheck disable=SC2034  # read by fetch_verified
  MAXTIME=30
  if [ "$phase" = aged ]; then
    printf 'tag_ttl = "0"\n' >"$d/ttl0.toml"
    sys_pantry_start "$d" --config "$d/ttl0.toml"
    CLIENT_ARGS+=(-H "Accept: $SMALL_ACCEPT")
    fetch_verified "$d/warm" "$BASE_URL/v2/$SMALL_REPO/manifests/$SMALL_TAG"
    "$OHA" --no-tui --output-format json -o "$d/revalidate.json" -n "$AGEING_N" -c 8 --http-version 1.1 \
      --disable-compression -H "Accept: $SMALL_ACCEPT" --cacert "$CA_FILE" -t 10s -x "$PROXY_URL" \
      --no-pre-lookup "$BASE_URL/v2/$SMALL_REPO/manifests/$SMALL_TAG" </dev/null >"$d/revalidate.log" 2>&1
    read -r _ _ _ revalidations errors kinds < <(small_parse "$d/revalidate.json")
    [ "$errors" = 0 ] || failed ageing "revalidations: $errors failed ($kinds)"
    sys_pantry_stop
  fi
  sys_pantry_start "$d"
  CLIENT_ARGS+=(-H "Accept: $SMALL_ACCEPT")
  fetch_verified "$d/hit" "$BASE_URL/v2/$SMALL_REPO/manifests/$SMALL_TAG"
  verified "$d/hit" "$SMALL_HEX" || failed ageing "$phase: the GET by tag failed: $(client_failures "$d")"
  sleep 1   # the manifest is committed once the response is complete
  out=$d/hits.json
  small_oha "$out" "$BASE_URL/v2/$SMALL_REPO/manifests/$SMALL_TAG" 1 \
    || log "ageing $phase: oha exited $?: $(tail_msg "$out.log" 3)"
  read -r rps p50 p99 ok errors kinds < <(small_parse "$out")
  sys_pantry_stop
  read -r files bytes < <(ageing_records "$d")
  tsv_row ageing phase="$phase" rep="$rep" revalidations="$revalidations" rps="$rps" p50_ms="$p50" \
    p99_ms="$p99" ok="$ok" errors="$errors" record_files="$files" record_bytes="$bytes"
  log "ageing $phase (rep $rep): $revalidations revalidations first; hits $rps req/s, p50 $p50 ms," \
    "p99 $p99 ms; records: $files files, $bytes bytes"
  [ "$errors" = 0 ] && [ "${ok:-0}" -gt 0 ] || failed ageing "$phase hits: $ok ok, $errors failed ($kinds)"
  [ -n "$KEEP" ] || rm -rf "$d/cache"
}

ageing_run() {
  wants pantry || return 0
  echo "version_oha=$("$OHA" --version 2>/dev/null | head -1)" >>"$WORK/meta"
  local rep
  for ((rep = 1; rep <= REPS; rep++)); do
    ageing_phase fresh "$rep"
    ageing_phase aged "$rep"
  done
}
