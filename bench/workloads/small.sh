# shellcheck shell=bash
# Workload "small": many small requests. A cached OCI image manifest (a few hundred bytes) is asked
# for again and again, once by digest (/v2/small/manifests/sha256:HEX, immutable) and once by tag
# (/v2/small/manifests/v1, which a cache may have to revalidate), by the load generator oha
# (https://github.com/hatoo/oha) through the proxy (`oha -x`, a CONNECT tunnel per connection,
# HTTP/1.1 with keep-alive inside it). Each system starts anew per repetition and one curl GET of
# each URL warms it; then oha runs for a fixed time per URL at 1 connection (latency: what one
# client waits) and at 8 connections (throughput: the machine saturated). Rows: requests/s, p50
# and p99 latency, 2xx and failed requests, the upstream requests the oha run caused (nginx's
# access log: a cache that serves the manifest itself causes none), the proxy's peak RSS.

SMALL_SYSTEMS=(direct pantry squid distribution)
SMALL_HTTP=${SMALL_HTTP:-1.1}   # oha --http-version inside the tunnel; SMALL_HTTP=2 tries h2 (not squid)
SMALL_REPO=small
SMALL_TAG=v1
# what containerd and docker send; distribution 2.8 answers 404 to a client that does not accept OCI
SMALL_ACCEPT="application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
OHA=

small_find_oha() {
  OHA=$(command -v oha 2>/dev/null) || OHA=
  [ -z "$OHA" ] && [ -x "$HOME/.cargo/bin/oha" ] && OHA=$HOME/.cargo/bin/oha
  [ -n "$OHA" ]
}

small_install() { # oha from crates.io with its locked dependencies (into ~/.cargo/bin)
  small_find_oha && return 0
  command -v cargo >/dev/null 2>&1 || die "the small workload needs oha and cargo is missing to install it"
  log "installing oha with cargo install oha --locked (output in $WORK/logs/cargo-oha.log)"
  cargo install oha --locked </dev/null >"$WORK/logs/cargo-oha.log" 2>&1 \
    || die "cargo install oha failed: $(tail_msg "$WORK/logs/cargo-oha.log" 3)"
  small_find_oha || die "cargo install oha succeeded but no oha in PATH or ~/.cargo/bin"
}

small_prepare() {
  small_find_oha || die "the small workload needs oha: run without --no-install, or cargo install oha --locked"
  SMALL_SECS=$([ -n "$QUICK" ] && echo 3 || echo 10)   # oha -z: seconds per URL and concurrency
  SMALL_CLIENTS=(1 8)
  local dir=$WORK/image/small tmp layer_hex diff_hex config_hex layer_size config_size
  mkdir -p "$dir/layer" "$WORK/blobs"
  tmp=$dir/layer
  # one layer: a tar.gz of one small file; the config names its uncompressed digest
  echo "pantry bench small image" >"$tmp/hello.txt"
  tar -C "$tmp" --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00Z' -cf "$dir/layer.tar" hello.txt
  diff_hex=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  gzip -n -c "$dir/layer.tar" >"$dir/layer.tar.gz"
  layer_hex=$(sha256sum "$dir/layer.tar.gz" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$dir/layer.tar.gz")
  cp "$dir/layer.tar.gz" "$WORK/blobs/sha256:$layer_hex"
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"pantry bench"}]}' \
    "$diff_hex" >"$dir/config.json"
  config_hex=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
  config_size=$(stat -c %s "$dir/config.json")
  cp "$dir/config.json" "$WORK/blobs/sha256:$config_hex"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}],"annotations":{"org.opencontainers.image.title":"pantry bench small"}}' \
    "$config_hex" "$config_size" "$layer_hex" "$layer_size" >"$dir/manifest.json"
  SMALL_HEX=$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)
  rm -rf "$tmp" "$dir/layer.tar" "$dir/layer.tar.gz" "$dir/config.json"
  log "small manifest: sha256:$SMALL_HEX ($(stat -c %s "$dir/manifest.json") bytes), tag $SMALL_TAG"
  # exact-match locations (before the blob regex); add_header here replaces the server's, so the
  # API version header is repeated; HEAD is answered by nginx from the same file
  local path
  for path in "sha256:$SMALL_HEX" "$SMALL_TAG"; do
    cat <<NGINX
    location = /v2/$SMALL_REPO/manifests/$path {
      alias $dir/manifest.json;
      default_type application/vnd.oci.image.manifest.v1+json;
      add_header Docker-Distribution-Api-Version registry/2.0 always;
      add_header Docker-Content-Digest sha256:$SMALL_HEX always;
    }
NGINX
  done >"$WORK/conf/nginx.d/small.locations"
}

# small_oha OUT URL CLIENTS : oha with CLIENTS connections against URL through the running system
# for SMALL_SECS seconds; its JSON summary in OUT, its messages in OUT.log
small_oha() {
  local out=$1 url=$2 n=$3 args
  # TLS: oha --cacert trusts CA_FILE (in addition to the native store), so the proxy's (or the
  # upstream's) certificate is verified as a client would, no --insecure
  args=(--no-tui --output-format json -o "$out" -z "${SMALL_SECS}s" -w -c "$n" --http-version "$SMALL_HTTP"
    --disable-compression -H "Accept: $SMALL_ACCEPT" --cacert "$CA_FILE" -t 10s)
  if [ -n "$PROXY_URL" ]; then
    # the proxy resolves registry.test; oha must not look it up first (it is in no resolver here)
    args+=(-x "$PROXY_URL" --no-pre-lookup)
  elif [[ $BASE_URL == https://$UP_HOST:* ]]; then
    args+=(--connect-to "$UP_HOST:$PORT_UP:127.0.0.1:$PORT_UP")   # curl's --resolve
  fi
  "$OHA" "${args[@]}" "$url" </dev/null >"$out.log" 2>&1 &
  CLIENT_PIDS=($!)
  wait "${CLIENT_PIDS[0]}"
  local rc=$?
  CLIENT_PIDS=()
  return "$rc"
}

# small_parse FILE : "RPS P50_MS P99_MS OK ERRORS ERROR_KINDS" from oha's JSON (2xx responses are
# ok; other statuses and transport errors are errors, except requests cut off by the deadline)
small_parse() {
  "$PY" - "$1" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("0 0 0 0 0 no-output"); sys.exit()
codes = {int(k): v for k, v in r.get("statusCodeDistribution", {}).items()}
ok = sum(v for k, v in codes.items() if 200 <= k < 300)
kinds = {f"http-{k}": v for k, v in codes.items() if not 200 <= k < 300}
for k, v in r.get("errorDistribution", {}).items():
    if k != "aborted due to deadline":
        kinds[k.replace(" ", "_").replace(",", ";")[:60]] = v
total = r["summary"]["total"] or 1
p = r.get("latencyPercentiles", {})
ms = lambda v: 1000 * (v or 0)
print(f"{ok / total:.1f} {ms(p.get('p50')):.3f} {ms(p.get('p99')):.3f} {ok} {sum(kinds.values())} "
      + (",".join(f"{k}={v}" for k, v in kinds.items()) or "-"))
PY
}

small_sampled() { # small_sampled DIR : "PEAK_RSS_KIB CPU_S" so far, from the running sampler's file
  local kib=0 cpu=0
  [ -n "$SAMPLER" ] && { sleep 0.3; read -r kib _ cpu <"$1/rss"; } 2>/dev/null
  echo "${kib:-0} ${cpu:-0}"
}

small_system() { # small_system SYSTEM REP
  local sys=$1 rep=$2 d what url n mark load out rps p50 p99 ok errors kinds requests ukinds
  local rss cpu0 cpu1
  d=$WORK/runs/small-$sys-r$rep
  mkdir -p "$d"
  # shellcheck disable=SC2034  # read by fetch_verified
  MAXTIME=30
  "sys_${sys}_start" "$d"
  CLIENT_ARGS+=(-H "Accept: $SMALL_ACCEPT")
  sampler_start "$d"
  # warm: one GET of each URL, the body checked against the manifest's digest
  for what in digest tag; do
    url=$BASE_URL/v2/$SMALL_REPO/manifests/$([ "$what" = digest ] && echo "sha256:$SMALL_HEX" || echo "$SMALL_TAG")
    fetch_verified "$d/warm-$what" "$url"
    verified "$d/warm-$what" "$SMALL_HEX" || failed small "$sys: warming GET by $what failed: $(client_failures "$d")"
  done
  sleep 1   # a cache commits the manifest once the response is complete
  for what in digest tag; do
    url=$BASE_URL/v2/$SMALL_REPO/manifests/$([ "$what" = digest ] && echo "sha256:$SMALL_HEX" || echo "$SMALL_TAG")
    for n in "${SMALL_CLIENTS[@]}"; do
      out=$d/oha-$what-c$n.json
      read -r _ cpu0 < <(small_sampled "$d")
      mark=$(upstream_lines) load=$(load_now)
      small_oha "$out" "$url" "$n" || log "small $sys $what c$n: oha exited $?: $(tail_msg "$out.log" 3)"
      upstream_flush   # every request the run made is logged
      read -r rss cpu1 < <(small_sampled "$d")   # VmHWM: the peak since the system started
      read -r rps p50 p99 ok errors kinds < <(small_parse "$out")
      read -r requests _ ukinds < <(upstream_requests_since "$mark")
      tsv_row small system="$sys" what="$what" clients="$n" rep="$rep" secs="$SMALL_SECS" http="$SMALL_HTTP" \
        rps="$rps" \
        p50_ms="$p50" p99_ms="$p99" ok="$ok" errors="$errors" upstream_requests="$requests" \
        upstream_kinds="$ukinds" rss_kib="$rss" cpu="$(elapsed "$cpu0" "$cpu1")" load="$load" \
        error_kinds="$kinds"
      log "small $sys by $what, $n conn (rep $rep): $rps req/s, p50 $p50 ms, p99 $p99 ms, $ok ok," \
        "$errors errors$([ "$errors" = 0 ] || echo " ($kinds)"), $requests upstream requests ($ukinds)," \
        "peak RSS $((rss / 1024)) MiB"
      [ "$errors" = 0 ] && [ "${ok:-0}" -gt 0 ] || failed small "$sys by $what, $n conn: $ok ok, $errors failed ($kinds)"
    done
  done
  sampler_stop "$d"
  declare -F "sys_${sys}_after" >/dev/null && "sys_${sys}_after" "$d"
  "sys_${sys}_stop"
  [ -n "$KEEP" ] || rm -rf "$d/cache" "$d/storage"
}

small_run() {
  local rep k systems=() s
  for s in "${SMALL_SYSTEMS[@]}"; do wants "$s" && systems+=("$s"); done
  echo "version_oha=$("$OHA" --version 2>/dev/null | head -1)" >>"$WORK/meta"
  for ((rep = 1; rep <= REPS; rep++)); do
    # rotate the systems' order per repetition, so none always runs first or last
    for ((k = 0; k < ${#systems[@]}; k++)); do
      small_system "${systems[$(((k + rep - 1) % ${#systems[@]}))]}" "$rep"
    done
  done
}
