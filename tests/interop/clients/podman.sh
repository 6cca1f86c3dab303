# shellcheck shell=bash
# podman 4.3 as root with its own --root/--tmpdir in the work dir and --runroot in a short
# /tmp/pantry-interop-podman.* dir (containers/storage refuses a runroot longer than 50 characters,
# which a work dir in a CI clone easily is), vfs storage, an empty registries.conf and auth file,
# HTTPS_PROXY=pantry. Trust via `pull --cert-dir` (ca.crt added to the system roots); credentials
# via --creds. An empty local store = a new --root.

client_podman() { run_row podman; }

podman_setup() {
  local d=$WORK/clients/podman
  mkdir -p "$d/trust-pantry" "$d/trust-upstream"
  cp "$PANTRY_CA" "$d/trust-pantry/ca.crt"
  cp "$CERTS/testca.pem" "$d/trust-upstream/ca.crt"
  echo '{}' >"$d/auth.json"
  : >"$d/registries.conf"
  PODMAN_RUN=$(mktemp -d /tmp/pantry-interop-podman.XXXXXX)
  echo "$PODMAN_RUN" >>"$WORK/tmpdirs"
  PODMAN_N=0
  podman_reset
  podman_cmd info >"$d/info.log" 2>&1 || { ROW_SETUP_ERROR="podman info failed: $(tail_msg "$d/info.log" 3)"; return 1; }
}

podman_cmd() { # PODMAN_NO_PROXY / PODMAN_REGISTRIES_CONF: the registry-mirror row's podman
  local d=$WORK/clients/podman env=(proxy_env)
  [ -n "${PODMAN_NO_PROXY:-}" ] && env=(env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy)
  CONTAINERS_REGISTRIES_CONF=${PODMAN_REGISTRIES_CONF:-$d/registries.conf} REGISTRY_AUTH_FILE=$d/auth.json TMPDIR=$d/tmp \
    "${env[@]}" timeout "$ROW_TIMEOUT" podman --root "$d/root$PODMAN_N" --runroot "$PODMAN_RUN/run$PODMAN_N" --tmpdir "$d/libpod$PODMAN_N" \
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend file "$@"
}

podman_reset() {
  local d=$WORK/clients/podman
  rm -rf "$d/root$PODMAN_N" "$PODMAN_RUN/run$PODMAN_N" "$d/libpod$PODMAN_N"
  PODMAN_N=$((PODMAN_N + 1))
  mkdir -p "$d/tmp"
}

podman_pull() { # KIND TRUST CREDS OUT LOG
  local kind=$1 trust=$2 creds=$3 logf=$5
  local args=(--cert-dir "$WORK/clients/podman/trust-$trust" --authfile "$WORK/clients/podman/auth.json"
    --signature-policy "$WORK/conf/policy.json")
  [ "$creds" != none ] && args+=(--creds "$REG_USER:$(password_of "$creds")")
  podman_cmd --log-level debug pull "${args[@]}" "$(image_of "$kind" podman)" >"$logf" 2>&1
}

podman_content() { podman_idcfg "$(image_of "$1" podman)"; }

podman_idcfg() { # podman_idcfg IMAGE : "idcfg ID LAYERS..." of a pulled image
  local id layers
  read -r id layers < <(podman_cmd image inspect --format '{{.Id}} {{range .RootFS.Layers}}{{.}} {{end}}' \
    "$1" 2>/dev/null)
  echo "idcfg ${id:+sha256:$id} $layers"
}
