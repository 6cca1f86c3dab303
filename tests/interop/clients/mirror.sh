# shellcheck shell=bash
# Registry-mirror rows: clients that are not told about any proxy, only that pantry's mirror port
# (plain HTTP on 127.0.0.1:$PORT_MIRROR, started with --mirror-listen) mirrors a registry. Each
# pulls the anonymous image twice (the second time with an empty local store) and the second pull
# must cost no upstream GET. Without the mirror the pulls cannot work at all: registry.test has no
# DNS entry, only pantry resolves it.
#   mirror-containerd  ctr with --hosts-dir: hosts.toml for registry.test:5000 lists the mirror, and
#                      containerd adds ?ns=registry.test:5000 to its requests. Its cross-mode check
#                      then copies the same image with skopeo through the proxy port: zero upstream.
#   mirror-podman      registries.conf [[registry.mirror]] (insecure); containers/image sends no ns,
#                      so pantry's --mirror-default (registry.test:5000) answers.
#   mirror-docker      dockerd "registry-mirrors": ["http://127.0.0.1:PORT"] pulling the Docker Hub
#                      name interop/mirror-docker:v1; dockerd sends no ns: --mirror-default answers.

client_mirror-containerd() { mirror_row mirror-containerd; }
client_mirror-podman() { mirror_row mirror-podman; }
client_mirror-docker() { mirror_row mirror-docker; }

mirror_row() { # mirror_row ROW : setup, pull, reset, repull, zero-upstream (and cross-mode)
  local r=$1 what=${1#mirror-}
  mkdir -p "$WORK/clients/$r"
  if ! "${what}_setup_mirror"; then
    fail_rest "$r" "${ROW_SETUP_ERROR:-setup failed}"
    return
  fi
  "${what}_reset"
  row_pull "$r" anon mirror none
  row_content "$r" pull anon
  if ! "${what}_reset"; then
    fail "$r" repull "could not empty the client's local store before the second pull"
    fail "$r" zero-upstream "could not empty the client's local store before the second pull"
  else
    upstream_mark "$r-repull"
    row_pull "$r" anon mirror none
    row_content "$r" repull anon && check_zero_upstream "$r" "$r-repull"
  fi
  if [ "$r" = mirror-containerd ]; then
    upstream_mark "$r-cross"
    local out=$WORK/clients/$r/cross
    mkdir -p "$out"
    REGISTRY_AUTH_FILE=$WORK/clients/skopeo/auth.json proxy_env timeout "$ROW_TIMEOUT" skopeo copy \
      --retry-times 0 --policy "$WORK/conf/policy.json" --src-cert-dir "$WORK/clients/$r/trust-pantry" \
      --src-no-creds "docker://$(image_of anon "$r")" "dir:$out/image" >"$out.log" 2>&1
    local rc=$?
    if [ "$rc" -ne 0 ]; then
      fail "$r" cross-mode "skopeo through the proxy port failed (rc $rc): $(failure_msg "$out.log")"
    else
      local blobs mans detail
      read -r blobs mans detail < <(upstream_since "$r-cross")
      if [ "$blobs" = 0 ] && [ "$mans" = 0 ]; then
        pass "$r" cross-mode "the image pulled through the mirror came from the cache through the proxy port"
      else
        fail "$r" cross-mode "pull through the proxy after the mirror reached upstream: $detail"
      fi
    fi
  fi
  declare -F "${what}_teardown" >/dev/null && "${what}_teardown"
}

mirror_addr() { echo "127.0.0.1:$PORT_MIRROR"; }

# ---- containerd ---------------------------------------------------------------------------------
containerd_setup_mirror() {
  local hosts=$WORK/clients/mirror-containerd/hosts/$REG_HOST:$PORT_ANON
  mkdir -p "$hosts" "$WORK/clients/mirror-containerd/trust-pantry" "$WORK/clients/skopeo"
  cp "$PANTRY_CA" "$WORK/clients/mirror-containerd/trust-pantry/ca.crt"
  [ -f "$WORK/clients/skopeo/auth.json" ] || echo '{}' >"$WORK/clients/skopeo/auth.json"
  cat >"$hosts/hosts.toml" <<EOT
server = "https://$REG_HOST:$PORT_ANON"

[host."http://$(mirror_addr)"]
  capabilities = ["pull", "resolve"]
EOT
  containerd_setup
}

mirror-containerd_pull() { # KIND TRUST CREDS OUT LOG
  env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy timeout "$ROW_TIMEOUT" \
    ctr --address "$CTRD_SOCK" --debug images pull --platform linux/amd64 --snapshotter native \
    --hosts-dir "$WORK/clients/mirror-containerd/hosts" "$(image_of "$1" mirror-containerd)" >"$5" 2>&1
}

mirror-containerd_content() {
  echo "blobs $(present_of "$(fixture "$1" mirror-containerd blobs)" \
    "$(ctr --address "$CTRD_SOCK" content ls -q 2>/dev/null | tr '\n' ' ')")"
}

# ---- podman -------------------------------------------------------------------------------------
podman_setup_mirror() {
  PODMAN_NO_PROXY=1
  PODMAN_REGISTRIES_CONF=$WORK/clients/mirror-podman/registries.conf
  cat >"$PODMAN_REGISTRIES_CONF" <<EOT
[[registry]]
location = "$REG_HOST:$PORT_ANON"

[[registry.mirror]]
location = "$(mirror_addr)"
insecure = true
EOT
  podman_setup
}

podman_teardown() { PODMAN_NO_PROXY="" PODMAN_REGISTRIES_CONF=""; }

mirror-podman_pull() { # KIND TRUST CREDS OUT LOG
  podman_cmd --log-level debug pull --signature-policy "$WORK/conf/policy.json" \
    "$(image_of "$1" mirror-podman)" >"$5" 2>&1
}

mirror-podman_content() { podman_idcfg "$(image_of "$1" mirror-podman)"; }

# ---- docker -------------------------------------------------------------------------------------
docker_setup_mirror() {
  DOCKER_N=0
  DOCKER_NO_PROXY=1 DOCKER_DAEMON_JSON="{\"registry-mirrors\": [\"http://$(mirror_addr)\"]}" docker_start upstream
}

# the Docker Hub name of the anonymous image: dockerd sends it to its mirrors
mirror_docker_image() { echo "interop/mirror-docker:v1"; }

mirror-docker_pull() { # KIND TRUST CREDS OUT LOG
  docker_cli timeout "$ROW_TIMEOUT" pull "$(mirror_docker_image)" >"$5" 2>&1
}

mirror-docker_content() { docker_idcfg "$(mirror_docker_image)"; }
