# shellcheck shell=bash
# Debian's docker-registry (distribution 2.8), all TLS with the test CA's server certificate:
#   anon     127.0.0.1:$PORT_ANON_BACKEND  no auth; reached by clients through the nginx front (cdn.sh)
#   basic    127.0.0.1:$PORT_BASIC         htpasswd ($REG_USER / $REG_PASS)
#   token    127.0.0.1:$PORT_TOKEN         bearer tokens from token_server.py on $PORT_AUTH
#   tokenadm 127.0.0.1:$PORT_TOKEN_ADMIN   no auth, same storage as "token"; only for pushing fixtures
# Access logs (combined log format, one request a line) go to $WORK/logs/registry-NAME.access.log;
# the application log (logfmt) to registry-NAME.app.log.

registry_config() { # registry_config NAME PORT STORAGE [AUTH_YAML]
  local name=$1 port=$2 storage=$3 auth=${4:-}
  mkdir -p "$storage"
  cat >"$WORK/conf/registry-$name.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: interop-secret-$name
  tls:
    certificate: $CERTS/server-chain.pem
    key: $CERTS/server.key
  headers:
    X-Content-Type-Options: [nosniff]
$auth
EOF
}

registry_up() { # 200 (anonymous) or 401 (auth) on /v2/
  local c
  c=$(curl -s --cacert "$CERTS/testca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$1/v2/")
  [ "$c" = 200 ] || [ "$c" = 401 ]
}

start_registry() { # start_registry NAME PORT
  local name=$1 port=$2
  # stdout = access log, stderr = app log: split with a small wrapper so both stay parseable
  spawn "registry-$name" "$WORK/logs/registry-$name.app.log" \
    bash -c 'exec docker-registry serve "$1" >>"$2"' _ "$WORK/conf/registry-$name.yml" \
    "$WORK/logs/registry-$name.access.log"
  wait_for 20 "registry $name on :$port" registry_up "$port" \
    || die "registry $name did not start: $(grep -m1 -E 'level=(fatal|panic|error)' \
      "$WORK/logs/registry-$name.app.log" || tail_msg "$WORK/logs/registry-$name.app.log" 2)"
}

start_token_server() {
  spawn token-server "$WORK/logs/token-server.log" \
    "$PY" "$INTEROP_DIR/token_server.py" --listen "127.0.0.1:$PORT_AUTH" \
    --cert "$CERTS/server-chain.pem" --key "$CERTS/server.key" \
    --signing-key "$CERTS/token-signer.key" --signing-cert "$CERTS/token-signer.pem" \
    --issuer pantry-interop-issuer --service "$REG_HOST:$PORT_TOKEN" \
    --user "$REG_USER" --password "$REG_PASS"
  wait_for 20 "token server on :$PORT_AUTH" \
    curl -sf --cacert "$CERTS/testca.pem" "https://127.0.0.1:$PORT_AUTH/healthz" \
    || die "token server did not start: $(tail_msg "$WORK/logs/token-server.log" 5)"
}

start_registries() {
  htpasswd -Bbn "$REG_USER" "$REG_PASS" >"$WORK/conf/htpasswd" 2>/dev/null || die "htpasswd failed"
  registry_config anon "$PORT_ANON_BACKEND" "$WORK/storage/anon"
  registry_config basic "$PORT_BASIC" "$WORK/storage/basic" "auth:
  htpasswd:
    realm: pantry-interop
    path: $WORK/conf/htpasswd"
  registry_config token "$PORT_TOKEN" "$WORK/storage/token" "auth:
  token:
    realm: https://$REG_HOST:$PORT_AUTH/token
    service: $REG_HOST:$PORT_TOKEN
    issuer: pantry-interop-issuer
    rootcertbundle: $CERTS/token-signer.pem"
  registry_config tokenadm "$PORT_TOKEN_ADMIN" "$WORK/storage/token"
  start_token_server
  start_registry anon "$PORT_ANON_BACKEND"
  start_registry basic "$PORT_BASIC"
  start_registry token "$PORT_TOKEN"
  start_registry tokenadm "$PORT_TOKEN_ADMIN"
}
