# shellcheck shell=bash
# restart-offline: cached images keep pulling when the registry is gone, after pantry restarts.
# With the registry up, skopeo and docker (through the proxy) and containerd (through the mirror
# port, ?ns=) pull their anonymous image. Then every registry, the token server and nginx (front
# and CDN) stop, pantry restarts on the same cache, and each client pulls again with an empty
# local store: the image must come whole (restart-skopeo, restart-docker, restart-mirror). Last,
# listeners that count connections take the registry's and the CDN's ports, pantry restarts with
# --offline and each client pulls once more into an empty local store: every image must come
# whole and nothing may even be dialled (offline). The row stops the registries, so it runs last; it pulls the images of the skopeo,
# docker and mirror-containerd rows (their fixtures are made for it, see fixture_clients).

client_restart-offline() {
  local r=restart-offline
  mkdir -p "$WORK/clients/$r"
  skopeo_setup
  DOCKER_N=0
  if ! docker_start pantry; then
    fail "$r" restart-docker "${ROW_SETUP_ERROR:-dockerd did not start}"
  fi
  if ! containerd_setup_mirror; then
    fail "$r" restart-mirror "${ROW_SETUP_ERROR:-containerd did not start}"
  fi

  # 1. with the registry up: each client's image is in pantry's cache
  local primed=""
  restart_prime skopeo pantry && primed+=" skopeo"
  grep -q "^$r	restart-docker	" "$WORK/results.tsv" || { restart_prime docker pantry && primed+=" docker"; }
  grep -q "^$r	restart-mirror	" "$WORK/results.tsv" \
    || { restart_prime mirror-containerd mirror && primed+=" mirror-containerd"; }

  # 2. the registry is gone; pantry restarts on the same cache
  stop_named nginx
  for name in registry-anon registry-basic registry-token token-server; do stop_named "$name"; done
  if ! restart_pantry; then
    fail_rest "$r" "pantry did not restart: $PANTRY_ERROR"
    restart_teardown
    return
  fi
  [[ $primed == *" skopeo"* ]] && restart_pull restart-skopeo skopeo pantry
  if [[ $primed == *" docker"* ]]; then
    if docker_reset; then
      restart_pull restart-docker docker pantry
    else
      fail "$r" restart-docker "could not empty dockerd's image store before the pull"
    fi
  fi
  if [[ $primed == *" mirror-containerd"* ]]; then
    if containerd_reset; then
      restart_pull restart-mirror mirror-containerd mirror
    else
      fail "$r" restart-mirror "could not empty containerd's content store before the pull"
    fi
  fi

  # 3. --offline, with listeners on the registry's ports counting every connection pantry makes;
  # each client that could be primed pulls again into an empty local store
  local counted=$WORK/clients/$r/dialled field got want note n c problems="" pulled=""
  : >"$counted"
  spawn sentinel "$WORK/logs/sentinel.log" "$PY" -c "$SENTINEL_PY" "$counted" "$PORT_ANON" "$PORT_CDN"
  if ! wait_for 10 "the counting listeners" grep -q '^ready' "$WORK/logs/sentinel.log"; then
    fail "$r" offline "the listeners on the registry's ports did not start: $(tail_msg "$WORK/logs/sentinel.log" 2)"
  elif [ -z "$primed" ]; then
    fail "$r" offline "no client's image could be put in the cache, so there is nothing to pull offline"
  else
    PANTRY_EXTRA_ARGS=(--offline)
    if ! restart_pantry; then
      fail "$r" offline "pantry did not start with --offline: $PANTRY_ERROR"
    else
      for c in $primed; do
        case $c in docker) docker_reset ;; mirror-containerd) containerd_reset ;; esac
        if ! row_pull "$c" anon "$([ "$c" = mirror-containerd ] && echo mirror || echo pantry)" none; then
          problems+="$c: pull failed (rc $ROW_RC): $(failure_msg "$ROW_LOG"); "
          continue
        fi
        { read -r field got; read -r note; } < <("${c}_content" anon "$ROW_OUT")
        want=$(fixture anon "$c" "$field")
        if [ -n "$got" ] && same_set "$want" "$got"; then pulled+=" $c"; else problems+="$c: content differs; "; fi
      done
      n=$(wc -l <"$counted")
      [ "$n" = 0 ] || problems+="pantry --offline connected to the registry's or the CDN's port $n times; "
      if [ -z "$problems" ]; then
        pass "$r" offline "pulled from pantry --offline with the pushed content:$pulled; nothing was dialled"
      else
        fail "$r" offline "$problems"
      fi
    fi
    PANTRY_EXTRA_ARGS=()
  fi
  restart_teardown
}

# Listens on each port given after the file, appending a line to the file per connection.
SENTINEL_PY='
import socket, sys, threading
path, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
socks = []
for port in ports:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16); socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        with open(path, "a") as f: f.write("%d\n" % s.getsockname()[1])
        c.close()
for s in socks: threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
'

restart_teardown() {
  stop_named sentinel
  docker_stop
  stop_named containerd
}

# restart_prime CLIENT TRUST : pull CLIENT's anonymous image into an empty local store, registry up
restart_prime() {
  local c=$1
  case $c in docker) docker_reset ;; mirror-containerd) containerd_reset ;; esac
  row_pull "$c" anon "$2" none
  if [ "$ROW_RC" -ne 0 ]; then
    fail restart-offline "$(restart_check "$c")" \
      "the pull with the registry up failed (rc $ROW_RC): $(failure_msg "$ROW_LOG")"
    return 1
  fi
}

# restart_pull CHECK CLIENT TRUST : pull again and compare with the pushed image, under this row
restart_pull() {
  row_pull "$2" anon "$3" none
  pull_matches restart-offline "$1" "$2" anon "$2 after a restart of pantry with the registry down"
}

restart_check() { # the check a client's pull is recorded under
  case $1 in skopeo) echo restart-skopeo ;; docker) echo restart-docker ;; *) echo restart-mirror ;; esac
}

restart_pantry() { # stop pantry and start it again on the same cache (PANTRY_EXTRA_ARGS appended)
  stop_named pantry
  start_pantry
}

# fixture_clients CLIENT... : the rows whose images must be pushed (restart-offline pulls others')
fixture_clients() {
  local c out=()
  for c in "$@"; do
    case $c in
      restart-offline) out+=(skopeo docker mirror-containerd) ;;
      fleet) out+=(skopeo docker) ;;
      upstream-credentials) out+=(skopeo docker) ;;
      image) out+=(docker) ;;
      status-page) out+=(skopeo) ;;
      *) out+=("$c") ;;
    esac
  done
  printf '%s\n' "${out[@]}" | awk '!seen[$0]++' | tr '\n' ' '
}
