# shellcheck shell=bash
# docker: a private dockerd (Debian's docker.io 20.10) with its own data-root, exec-root, pidfile,
# socket and daemon.json; vfs storage, no bridge, no iptables. dockerd 20.10 takes its proxy only
# from the environment (HTTPS_PROXY) and its trust store from SSL_CERT_FILE (Go), so changing
# trust means restarting it. The CLI (Debian's /usr/bin/docker) uses its own DOCKER_CONFIG;
# `docker login` is real (the daemon checks the credentials through pantry). Wrong credentials are
# written into config.json by hand, as `docker login` would refuse them.

client_docker() { run_row docker; }

DOCKER_BIN=/usr/bin/docker
[ -x "$DOCKER_BIN" ] || DOCKER_BIN=docker

docker_cli() { # docker_cli [timeout SECONDS] ARGS...
  local t=()
  [ "$1" = timeout ] && { t=(timeout "$2"); shift 2; }
  "${t[@]}" env DOCKER_CONFIG="$WORK/clients/docker/cli" DOCKER_HOST="unix://$DOCKER_SOCK" "$DOCKER_BIN" "$@"
}

docker_start() { # docker_start TRUST
  local d=$WORK/clients/docker
  DOCKER_N=$((DOCKER_N + 1)) DOCKER_TRUST=$1
  DOCKER_SOCK=$d/docker.sock
  mkdir -p "$d/data" "$d/exec" "$d/cli"
  # DOCKER_DAEMON_JSON / DOCKER_NO_PROXY: the registry-mirror row's dockerd (mirrors, no proxy)
  local json=${DOCKER_DAEMON_JSON:-'{}'} proxy=(HTTPS_PROXY="http://$PANTRY_ADDR" HTTP_PROXY="http://$PANTRY_ADDR")
  [ -n "${DOCKER_NO_PROXY:-}" ] && proxy=()
  printf '%s\n' "$json" >"$d/daemon.json"
  # short exec-root: dockerd's containerd socket path must stay under 108 bytes
  DOCKER_EXEC=$(mktemp -d /tmp/pantry-interop-dockerd.XXXXXX)
  echo "$DOCKER_EXEC" >>"$WORK/tmpdirs"
  spawn dockerd "$d/dockerd$DOCKER_N.log" env -u NO_PROXY -u no_proxy -u HTTPS_PROXY -u HTTP_PROXY \
    -u https_proxy -u http_proxy SSL_CERT_FILE="$(trust_file "$1")" "${proxy[@]}" \
    dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$DOCKER_EXEC" \
    --pidfile "$d/dockerd.pid" -H "unix://$DOCKER_SOCK" --storage-driver vfs \
    --iptables=false --ip6tables=false --bridge=none --ip-masq=false --userland-proxy=false \
    --log-level debug
  if ! wait_for 60 dockerd docker_cli version; then
    ROW_SETUP_ERROR="dockerd did not start: $(grep -iE 'level=(error|fatal)|failed' "$d/dockerd$DOCKER_N.log" \
      | tail -3 | tr '\n' ' ' | cut -c1-400)"
    return 1
  fi
}

docker_stop() {
  [ -n "${DOCKER_SOCK:-}" ] || return 0
  stop_named dockerd
}

docker_setup() { DOCKER_N=0; docker_start upstream; }
docker_teardown() { docker_stop; }

docker_reset() {
  local ids
  ids=$(docker_cli images -aq 2>/dev/null | sort -u)
  # shellcheck disable=SC2086  # one argument per image id
  [ -n "$ids" ] && docker_cli rmi -f $ids >/dev/null 2>&1
  docker_cli image prune -af >/dev/null 2>&1
  [ -z "$(docker_cli images -aq 2>/dev/null)" ] || { log "docker: images left after reset"; return 1; }
}

docker_pull() { # KIND TRUST CREDS OUT LOG
  local kind=$1 trust=$2 creds=$3 logf=$5 reg
  reg=$(registry_of "$kind")
  if [ "$trust" != "$DOCKER_TRUST" ]; then
    docker_stop
    docker_start "$trust" || { echo "$ROW_SETUP_ERROR" >"$logf"; return 1; }
  fi
  : >"$logf"
  case $creds in
    none) docker_cli logout "$reg" >>"$logf" 2>&1 ;;
    good) docker_cli timeout 120 login -u "$REG_USER" --password-stdin "$reg" <<<"$REG_PASS" >>"$logf" 2>&1 \
            || { echo "docker login failed" >>"$logf"; return 1; } ;;
    wrong) "$PY" - "$WORK/clients/docker/cli/config.json" "$reg" "$REG_USER:$REG_WRONG_PASS" <<'EOF'
import base64, json, os, sys
path, reg, cred = sys.argv[1:]
cfg = json.load(open(path)) if os.path.exists(path) else {}
cfg.setdefault("auths", {})[reg] = {"auth": base64.b64encode(cred.encode()).decode()}
json.dump(cfg, open(path, "w"))
EOF
    ;;
  esac
  docker_cli timeout "$ROW_TIMEOUT" pull "$(image_of "$kind" docker)" >>"$logf" 2>&1
}

docker_content() { docker_idcfg "$(image_of "$1" docker)"; }

docker_idcfg() { # docker_idcfg IMAGE : "idcfg ID LAYERS..." of a pulled image
  local id layers
  read -r id layers < <(docker_cli image inspect --format '{{.Id}} {{range .RootFS.Layers}}{{.}} {{end}}' \
    "$1" 2>/dev/null)
  echo "idcfg $id $layers"
}
