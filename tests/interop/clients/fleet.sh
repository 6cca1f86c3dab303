# shellcheck shell=bash
# fleet: two pantries that form a fleet (--fleet-listen, --peers; both hold the suite's CA, so the
# clients' trust is unchanged and each admits the other on its mutual-TLS fleet port), each with
# an empty cache. skopeo, then docker, pull their anonymous image through node A, then again
# through node B into an empty local store: B's pull must cost the registries no blob GET (what A
# owns, B streams from A; what B owns, B fetched for A's pull and kept).

FLEET_ADDRS=()

fleet_start() { # starts both members; non-zero (ROW_SETUP_ERROR) if one is not healthy
  local peers="https://127.0.0.1:$((PORT_FLEET_A + 2)),https://127.0.0.1:$((PORT_FLEET_B + 2))" port name
  pantry_upstream_args
  FLEET_ADDRS=()
  for port in "$PORT_FLEET_A" "$PORT_FLEET_B"; do
    name=fleet-$port
    port_free "$port" && port_free $((port + 2)) || { ROW_SETUP_ERROR="port $port or $((port + 2)) is in use"; return 1; }
    mkdir -p -m 700 "$WORK/$name-cache"
    local unset_env=() v
    for v in $(compgen -e); do [[ $v == PANTRY_* ]] && unset_env+=(-u "$v"); done
    RUST_LOG=${RUST_LOG:-info} spawn "$name" "$WORK/logs/$name.log" env "${unset_env[@]}" "$PANTRY_BIN" \
      --listen "127.0.0.1:$port" --cache-dir "$WORK/$name-cache" --certs-dir "$WORK/pantry-certs" \
      --fleet-listen "127.0.0.1:$((port + 2))" --peers "$peers" "${PANTRY_UPSTREAM_ARGS[@]}"
    FLEET_ADDRS+=("127.0.0.1:$port")
    if ! wait_for 30 "$name" curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then
      ROW_SETUP_ERROR="$name did not start: $(tail_msg "$WORK/logs/$name.log" 3)"
      return 1
    fi
  done
}

# fleet_pull CLIENT CHECK : the client pulls through node A, then through node B into an empty
# local store; passes when both pulls give the pushed content and B's cost no blob GET upstream
fleet_pull() {
  local c=$1 k=$2 suite_addr=$PANTRY_ADDR blobs mans detail field got want
  PANTRY_ADDR=${FLEET_ADDRS[0]}
  DOCKER_N=${DOCKER_N:-0}
  if [ "$c" = docker ] && ! docker_start pantry; then
    fail fleet "$k" "${ROW_SETUP_ERROR:-dockerd did not start} (through node A)"
    PANTRY_ADDR=$suite_addr; return
  fi
  # the data-root outlives its daemons: empty it, or a pull finds the image already there
  if [ "$c" = docker ] && ! docker_reset; then
    fail fleet "$k" "could not empty dockerd's image store before the pull through node A"
    docker_stop; PANTRY_ADDR=$suite_addr; return
  fi
  row_pull "$c" anon pantry none
  if [ "$ROW_RC" -ne 0 ]; then
    fail fleet "$k" "the pull through node A failed (rc $ROW_RC): $(failure_msg "$ROW_LOG")"
    [ "$c" = docker ] && docker_stop
    PANTRY_ADDR=$suite_addr; return
  fi
  PANTRY_ADDR=${FLEET_ADDRS[1]}
  if [ "$c" = docker ]; then
    docker_stop
    if ! docker_start pantry || ! docker_reset; then
      fail fleet "$k" "${ROW_SETUP_ERROR:-dockerd did not start, or its image store could not be emptied} (through node B)"
      docker_stop; PANTRY_ADDR=$suite_addr; return
    fi
  fi
  upstream_mark "$k"
  row_pull "$c" anon pantry none
  read -r blobs mans detail < <(upstream_since "$k")
  { read -r field got; read -r _; } < <("${c}_content" anon "$ROW_OUT")   # (docker asks its daemon)
  [ "$c" = docker ] && docker_stop
  PANTRY_ADDR=$suite_addr
  if [ "$ROW_RC" -ne 0 ]; then
    fail fleet "$k" "the pull through node B failed (rc $ROW_RC): $(failure_msg "$ROW_LOG")"
    return
  fi
  want=$(fixture anon "$c" "$field")
  if [ -z "$got" ] || ! same_set "$want" "$got"; then
    fail fleet "$k" "the pull through node B gave other content than was pushed"
  elif [ "$blobs" = 0 ]; then
    pass fleet "$k" "through node B after node A: no blob GET reached the registries or the CDN ($mans manifest-by-digest GETs)"
  else
    fail fleet "$k" "the pull through node B reached the registries: $detail"
  fi
}

client_fleet() {
  mkdir -p "$WORK/clients/fleet"
  if ! fleet_start; then
    fail_rest fleet "${ROW_SETUP_ERROR:-the fleet did not start}"
  else
    skopeo_setup
    fleet_pull skopeo fleet-skopeo
    fleet_pull docker fleet-docker
  fi
  stop_named "fleet-$PORT_FLEET_A"
  stop_named "fleet-$PORT_FLEET_B"
}
