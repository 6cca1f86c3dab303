# shellcheck shell=bash
# Workload "image" (issue workload 4): a realistic image pulled with skopeo, cold then warm. The
# image (tests/interop/make_oci.py) is a two-platform index whose platform manifests share 24
# layers from 2 KiB to 200 MiB (to 20 MiB in quick mode), ~620 MiB in all, plus one small layer
# each; nginx serves it as registry.test/image:v1, unthrottled. Per system, started anew with an
# empty cache: `skopeo copy docker://…/image:v1 dir:…` twice (cold, then warm within every
# cache's freshness lifetime); rows: time, the upstream requests and bytes each pull caused, the
# proxy's peak RSS and CPU.

IMAGE_SYSTEMS=(direct pantry squid distribution)
IMAGE_SIZES_FULL=2048,8192,32768,102400,307200,1048576,2097152,3145728,5242880,8388608,12582912,20971520,31457280,52428800,83886080,125829120,209715200,4096,16384,65536,524288,1572864,6291456,41943040
IMAGE_SIZES_QUICK=2048,8192,32768,102400,307200,1048576,2097152,3145728,5242880,8388608,12582912,20971520,4096,16384,65536,524288,1572864,6291456,2048,8192,32768,102400,307200,1048576

image_prepare() {
  local layout=$WORK/image/layout f hex media
  mkdir -p "$WORK/image" "$WORK/blobs"
  log "image: building a 2-platform image of 24 shared layers (make_oci.py)"
  "$PY" "$REPO_ROOT/tests/interop/make_oci.py" "$layout" --tag v1 --platforms amd64,arm64 \
    --sizes "$([ -n "$QUICK" ] && echo "$IMAGE_SIZES_QUICK" || echo "$IMAGE_SIZES_FULL")" \
    >"$WORK/image/summary.json" 2>"$WORK/logs/make_oci.log" \
    || die "make_oci.py failed: $(tail_msg "$WORK/logs/make_oci.log")"
  for f in "$layout"/blobs/sha256/*; do ln -f "$f" "$WORK/blobs/sha256:${f##*/}"; done
  IMAGE_BYTES=$(du -cb "$layout"/blobs/sha256/* | tail -1 | cut -f1)
  # manifests: the index by tag and by digest, each platform manifest by digest, with their types
  {
    "$PY" - "$layout" "$WORK/image" <<'PY'
import json, os, sys
layout, out = sys.argv[1], sys.argv[2]
index = json.load(open(os.path.join(layout, "index.json")))["manifests"][0]
def blob(d): return os.path.join(layout, "blobs", "sha256", d.split(":")[1])
def loc(path, digest, media):
    print(f'location = {path} {{ alias {blob(digest)}; default_type {media}; '
          f'add_header Docker-Distribution-Api-Version registry/2.0 always; '
          f'add_header Docker-Content-Digest {digest} always; }}')
loc("/v2/image/manifests/v1", index["digest"], index["mediaType"])
loc(f"/v2/image/manifests/{index['digest']}", index["digest"], index["mediaType"])
for m in json.load(open(blob(index["digest"])))["manifests"]:
    loc(f"/v2/image/manifests/{m['digest']}", m["digest"], m["mediaType"])
PY
  } >"$WORK/conf/nginx.d/image.locations" || die "image: could not write the manifest locations"
  log "image: $(grep -c . "$WORK/conf/nginx.d/image.locations") manifests, $((IMAGE_BYTES / 1048576)) MiB of blobs"
}

image_pull() { # image_pull DIR NAME : one skopeo copy through the running system; sets PULL_SECS, PULL_OK
  local d=$1 name=$2 ref env=(env -u NO_PROXY -u no_proxy) t0 t1 run=()
  rm -rf "$d/$name.dir" "$d/certs.d"
  mkdir -p "$d/certs.d"
  cp "$CA_FILE" "$d/certs.d/ca.crt"
  ref=${BASE_URL#https://}/image:v1
  if [ -n "$PROXY_URL" ]; then
    env+=(HTTPS_PROXY="$PROXY_URL" https_proxy="$PROXY_URL")
  else
    env+=(-u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy)
    run=(with_hosts)   # skopeo resolves registry.test through the system resolver
  fi
  t0=$(date +%s.%N)
  "${run[@]}" "${env[@]}" skopeo copy --retry-times 0 --src-cert-dir "$d/certs.d" \
    "docker://$ref" "dir:$d/$name.dir" >"$d/$name.log" 2>&1
  PULL_OK=$?
  t1=$(date +%s.%N)
  PULL_SECS=$(elapsed "$t0" "$t1")
  [ "$PULL_OK" = 0 ] && PULL_OK=1 || { PULL_OK=0; failed image "$name pull: skopeo: $(tail_msg "$d/$name.log" 2)"; }
  rm -rf "$d/$name.dir"
}

image_system() { # image_system SYSTEM REP
  local sys=$1 rep=$2 d=$WORK/runs/image-$1-r$2 pull mark load requests bytes kinds
  mkdir -p "$d"
  "sys_${sys}_start" "$d"
  sampler_start "$d"
  for pull in cold warm; do
    mark=$(upstream_lines) load=$(load_now)
    image_pull "$d" "$pull"
    upstream_flush   # every request the pull made is logged
    read -r requests bytes kinds < <(upstream_requests_since "$mark")
    tsv_row image system="$sys" rep="$rep" pull="$pull" secs="$PULL_SECS" ok="$PULL_OK" \
      upstream_requests="$requests" upstream_bytes="$bytes" upstream_kinds="$kinds" image_bytes="$IMAGE_BYTES" \
      load="$load"
    log "image $sys $pull (rep $rep): $PULL_SECS s, $requests upstream requests, $((bytes / 1048576)) MiB upstream ($kinds)"
  done
  sampler_stop "$d"
  "sys_${sys}_stop"
  tsv_row image-system system="$sys" rep="$rep" rss_kib="$RSS_KIB" cpu="$CPU_S"   # over both pulls
  [ -n "$KEEP" ] || rm -rf "$d/cache" "$d/storage"
}

image_run() {
  local rep k systems=() s
  for s in "${IMAGE_SYSTEMS[@]}"; do wants "$s" && systems+=("$s"); done
  for ((rep = 1; rep <= REPS; rep++)); do
    for ((k = 0; k < ${#systems[@]}; k++)); do
      image_system "${systems[$(((k + rep - 1) % ${#systems[@]}))]}" "$rep"
    done
  done
}
