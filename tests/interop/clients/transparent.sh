# shellcheck shell=bash
# Transparent-mode row: a client that knows nothing of any proxy. Two network namespaces made by
# the suite, joined by a veth pair:
#   pantry ns  10.79.0.1  a second pantry (--transparent 10.79.0.1:3129), a registry serving the
#                         anonymous registry's storage on 127.0.0.1:$PORT_ANON, and the redirect set
#                         up by examples/transparent/nftables.sh (TCP $PORT_ANON from the veth to
#                         pantry's transparent port)
#   client ns  10.79.0.2  skopeo, no proxy variables at all; /etc/netns/NS/hosts maps registry.test
#                         to 10.79.0.1 (ip netns exec mounts it as /etc/hosts)
# pantry takes the name from the ClientHello (SNI), intercepts it, and fetches from the registry in
# its namespace. The image is pulled twice (the second time into an empty directory); the second
# pull must cost the registry no blob or manifest-by-digest GET. Needs root, ip and nft.

client_transparent-skopeo() {
  local r=transparent-skopeo
  mkdir -p "$WORK/clients/$r"
  if ! transparent_setup; then
    fail_rest "$r" "${ROW_SETUP_ERROR:-setup failed}"
    transparent_teardown
    return
  fi
  row_pull "$r" anon transparent none
  row_content "$r" pull anon
  upstream_mark "$r-repull"
  row_pull "$r" anon transparent none
  row_content "$r" repull anon && check_zero_upstream "$r" "$r-repull"
  transparent_teardown
}

TP_NS_PANTRY=pantry-tp-$$
TP_NS_CLIENT=pantry-tc-$$
TP_SERVER_IP=10.79.0.1

tp_in() { ip netns exec "$TP_NS_PANTRY" "$@"; }

transparent_setup() {
  local dir=$WORK/clients/transparent-skopeo
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
    ROW_SETUP_ERROR="transparent mode needs root, ip and nft (network namespaces, an nftables redirect)"
    return 1
  fi
  ip netns add "$TP_NS_PANTRY" && ip netns add "$TP_NS_CLIENT" \
    && ip -n "$TP_NS_CLIENT" link add veth-c type veth peer name veth-p netns "$TP_NS_PANTRY" \
    && ip -n "$TP_NS_CLIENT" addr add 10.79.0.2/24 dev veth-c \
    && ip -n "$TP_NS_PANTRY" addr add "$TP_SERVER_IP/24" dev veth-p \
    && ip -n "$TP_NS_CLIENT" link set veth-c up && ip -n "$TP_NS_PANTRY" link set veth-p up \
    && ip -n "$TP_NS_CLIENT" link set lo up && ip -n "$TP_NS_PANTRY" link set lo up \
    || { ROW_SETUP_ERROR="could not create the network namespaces"; return 1; }
  mkdir -p "/etc/netns/$TP_NS_CLIENT" "$dir/trust" "$dir/cache" "$dir/certs"
  echo '{}' >"$dir/auth.json"
  echo "$TP_SERVER_IP $REG_HOST" >"/etc/netns/$TP_NS_CLIENT/hosts"

  # the anonymous registry's storage, served inside pantry's namespace
  registry_config transparent "$PORT_ANON" "$WORK/storage/anon"
  spawn registry-transparent "$WORK/logs/registry-transparent.app.log" \
    ip netns exec "$TP_NS_PANTRY" bash -c 'exec docker-registry serve "$1" >>"$2"' _ \
    "$WORK/conf/registry-transparent.yml" "$WORK/logs/registry-transparent.access.log"
  wait_for 20 "registry in pantry's namespace" tp_in_registry_up \
    || { ROW_SETUP_ERROR="the registry in pantry's namespace did not start"; return 1; }

  spawn pantry-transparent "$WORK/logs/pantry-transparent.log" env RUST_LOG=info \
    ip netns exec "$TP_NS_PANTRY" "$PANTRY_BIN" --listen 127.0.0.1:3128 --transparent "$TP_SERVER_IP:3129" \
    --intercept "$REG_HOST:$PORT_ANON" --resolve "$REG_HOST:$PORT_ANON:127.0.0.1" \
    --upstream-ca "$CERTS/testca.pem" --allow-clients 10.79.0.0/24,127.0.0.0/8 \
    --cache-dir "$dir/cache" --certs-dir "$dir/certs"
  wait_for 30 "pantry in its namespace" tp_in curl -sf -o /dev/null http://127.0.0.1:3128/healthz \
    || { ROW_SETUP_ERROR="pantry in its namespace did not start: $(tail_msg "$WORK/logs/pantry-transparent.log" 2)"; return 1; }
  cp "$dir/certs/ca.pem" "$dir/trust/ca.crt"

  local out
  out=$(LAN_IF=veth-p PORTS="$PORT_ANON" PORT=3129 tp_in sh "$REPO_ROOT/examples/transparent/nftables.sh" up 2>&1) \
    || { ROW_SETUP_ERROR="examples/transparent/nftables.sh up failed: $out"; return 1; }
  log "transparent: $out (namespace $TP_NS_PANTRY)"
}

tp_in_registry_up() {
  local c
  c=$(tp_in curl -s --cacert "$CERTS/testca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT_ANON/v2/")
  [ "$c" = 200 ]
}

transparent_teardown() {
  stop_named pantry-transparent
  stop_named registry-transparent
  ip netns del "$TP_NS_CLIENT" 2>/dev/null
  ip netns del "$TP_NS_PANTRY" 2>/dev/null
  rm -rf "/etc/netns/$TP_NS_CLIENT"
  return 0
}

transparent-skopeo_pull() { # KIND TRUST CREDS OUT LOG
  ip netns exec "$TP_NS_CLIENT" env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy \
    -u ALL_PROXY -u all_proxy REGISTRY_AUTH_FILE="$WORK/clients/transparent-skopeo/auth.json" timeout "$ROW_TIMEOUT" \
    skopeo --debug copy --retry-times 0 --policy "$WORK/conf/policy.json" \
    --src-cert-dir "$WORK/clients/transparent-skopeo/trust" --src-no-creds \
    "docker://$(image_of "$1" transparent-skopeo)" "dir:$4/image" >"$5" 2>&1
}

transparent-skopeo_content() {
  echo "blobs $(present_of "$(fixture "$1" transparent-skopeo blobs)" "$(digests_of_dir "$2/image")")"
}
