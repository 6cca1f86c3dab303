# shellcheck shell=bash
# Workload "cold" (issue workloads 2, 3 and 7): a random blob that no cache has yet, pulled by 1,
# 8 and 32 curl clients at once, from an unthrottled upstream (a 1 GiB blob: the machine is the
# bottleneck, so compare with direct serving as many clients) and from one throttled to $RATE per
# connection (a 200 MiB blob at 5 MB/s by default: the upstream is the bottleneck even for 32
# clients hashing their bodies on 2 cores, so a crowd should take as long as one client). Every
# measurement starts the system anew with an empty cache. Rows: wall time (start until the last
# client finished), upstream blob GETs and bytes and the slowest of those GETs (nginx's access
# log), bodies verified against the digest, the proxy's peak RSS and CPU.

COLD_SYSTEMS=(direct pantry squid distribution)
# COLD_MIB (unthrottled), COLD_THROTTLED_MIB, COLD_CLIENTS ("1 8 32") and COLD_UPSTREAMS
# ("unthrottled throttled") override the mode's choice
cold_prepare() {
  COLD_MIB=${COLD_MIB:-$([ -n "$QUICK" ] && echo 64 || echo 1024)}
  COLD_THROTTLED_MIB=${COLD_THROTTLED_MIB:-$([ -n "$QUICK" ] && echo 32 || echo 200)}
  read -r -a COLD_CLIENTS <<<"${COLD_CLIENTS:-1 8 $([ -n "$QUICK" ] || echo 32)}"
  read -r -a COLD_UPSTREAMS <<<"${COLD_UPSTREAMS:-unthrottled throttled}"
  local mib
  for mib in "$COLD_MIB" "$COLD_THROTTLED_MIB"; do [ -n "${BLOB_HEX[$mib]:-}" ] || make_blob "$mib"; done
}

cold_measure() { # cold_measure SYSTEM UPSTREAM CLIENTS REP
  local sys=$1 upstream=$2 n=$3 rep=$4 d mark t0 t1 load gets bytes slowest other ok mib=$COLD_MIB repo=bench
  [ "$upstream" = throttled ] && mib=$COLD_THROTTLED_MIB repo=throttled
  d=$WORK/runs/cold-$sys-$upstream-${n}c-r$rep
  mkdir -p "$d"
  MAXTIME=$((mib * 1048576 * 3 / RATE_BYTES + 120))
  "sys_${sys}_start" "$d"
  sampler_start "$d"
  mark=$(upstream_lines) load=$(load_now) t0=$(date +%s.%N)
  fetch_clients "$n" "$d/clients" "$BASE_URL$(blob_path "$mib" "$repo")"
  t1=$(date +%s.%N)
  sampler_stop "$d"
  declare -F "sys_${sys}_after" >/dev/null && "sys_${sys}_after" "$d"
  "sys_${sys}_stop"
  upstream_flush   # every request the system made is logged (its connections closed on stop)
  read -r gets bytes slowest other < <(upstream_since "$mark")
  ok=$(count_verified "$n" "$d/clients" "${BLOB_HEX[$mib]}")
  tsv_row cold upstream="$upstream" system="$sys" mib="$mib" clients="$n" rep="$rep" \
    wall="$(elapsed "$t0" "$t1")" gets="$gets" bytes="$bytes" slowest="$slowest" verified="$ok" \
    rss_kib="$RSS_KIB" nproc="$RSS_NPROC" cpu="$CPU_S" load="$load" other="$other"
  log "cold $sys $upstream ${mib} MiB x $n (rep $rep): $(elapsed "$t0" "$t1") s, $gets upstream GETs" \
    "(slowest $slowest s), $((bytes / 1048576)) MiB upstream, $ok/$n verified," \
    "peak RSS $((RSS_KIB / 1024)) MiB, CPU $CPU_S s${other:+ (other upstream requests: $other)}"
  [ "$ok" -eq "$n" ] || failed cold "$sys $upstream x$n: $ok/$n verified: $(client_failures "$d/clients")"
  [ -n "$KEEP" ] || rm -rf "$d/cache" "$d/storage"
}

cold_run() {
  local rep upstream n k systems=() s
  for s in "${COLD_SYSTEMS[@]}"; do wants "$s" && systems+=("$s"); done
  for ((rep = 1; rep <= REPS; rep++)); do
    for upstream in "${COLD_UPSTREAMS[@]}"; do
      for n in "${COLD_CLIENTS[@]}"; do
        # rotate the systems' order per repetition, so none always runs first or last
        for ((k = 0; k < ${#systems[@]}; k++)); do
          cold_measure "${systems[$(((k + rep - 1) % ${#systems[@]}))]}" "$upstream" "$n" "$rep"
        done
      done
    done
  done
}
