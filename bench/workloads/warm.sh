# shellcheck shell=bash
# Workload "warm" (issue workload 1): one 1 GiB blob (256 MiB in quick mode) from a warm cache.
# Each system starts anew, one verified pull fills its cache from the unthrottled upstream, then
# $REPS pulls are timed (curl to /dev/null: hashing would cap the rate on 2 cores; the size is
# checked). "limit" is nginx itself serving the file from local disk. Rows: MB/s per pull.

WARM_SYSTEMS=(limit pantry pantry_verify squid distribution)
warm_prepare() {
  WARM_MIB=$([ -n "$QUICK" ] && echo 256 || echo 1024)
  [ -n "${BLOB_HEX[$WARM_MIB]:-}" ] || make_blob "$WARM_MIB"
}

warm_system() { # warm_system SYSTEM
  local sys=$1 d=$WORK/runs/warm-$1 url rep out size secs load mark ok=0 requests bytes kinds mbps
  mkdir -p "$d"
  MAXTIME=600
  "sys_${sys}_start" "$d"
  url=$BASE_URL$(blob_path "$WARM_MIB")
  fetch_verified "$d/prime" "$url"
  verified "$d/prime" "${BLOB_HEX[$WARM_MIB]}" ||
    failed warm "$sys: the priming pull failed: $(client_failures "$d")"
  sleep 1   # a proxy commits the blob once the body is complete
  sampler_start "$d"
  mark=$(upstream_lines)
  for ((rep = 1; rep <= REPS; rep++)); do
    load=$(load_now)
    out=$(curl -sS --fail --max-time "$MAXTIME" -A pantry-bench "${CLIENT_ARGS[@]}" -o /dev/null \
      -w '%{size_download} %{time_total}' "$url" 2>>"$d/warm.err") || out="0 0"
    read -r size secs <<<"$out"
    ok=$([ "$size" = "$((WARM_MIB * 1048576))" ] && echo 1 || echo 0)
    mbps=$(awk -v b="$size" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0) ? b / s / 1e6 : 0 }')
    tsv_row warm system="$sys" mib="$WARM_MIB" rep="$rep" bytes="$size" secs="$secs" ok="$ok" \
      mbps="$mbps" load="$load"
    log "warm $sys ${WARM_MIB} MiB (pull $rep): $secs s, $mbps MB/s"
    [ "$ok" = 1 ] || failed warm "$sys pull $rep: $size bytes: $(tail_msg "$d/warm.err" 2)"
  done
  sampler_stop "$d"
  "sys_${sys}_stop"
  upstream_flush   # every request the pulls made is logged
  # per system: the upstream requests the timed pulls caused (a cache causes none), RSS and CPU
  read -r requests bytes kinds < <(upstream_requests_since "$mark")
  tsv_row warm-system system="$sys" primed="$(verified "$d/prime" "${BLOB_HEX[$WARM_MIB]}" && echo 1 || echo 0)" \
    upstream_requests="$requests" upstream_bytes="$bytes" upstream_kinds="$kinds" rss_kib="$RSS_KIB" cpu="$CPU_S"
  [ -n "$KEEP" ] || rm -rf "$d/cache" "$d/storage"
}

warm_run() {
  local s
  for s in "${WARM_SYSTEMS[@]}"; do wants "$s" && warm_system "$s"; done
}
