# shellcheck shell=bash
# Builds (if needed) and starts pantry with the suite's command line; fetches its CA.
#   PANTRY_BIN      binary to use (default: target/release/pantry, built with cargo if missing)
#   PANTRY_ADDR     127.0.0.1:$PORT_PANTRY, exported for the client rows
#   PANTRY_CA       pantry's CA certificate (PEM) as fetched from /ca.pem or the certs dir
#   PANTRY_ERROR    set when pantry could not be built or started; every row then says so

pantry_healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$PANTRY_ADDR/healthz")" = 200 ]; }

start_pantry() {
  PANTRY_ADDR=127.0.0.1:$PORT_PANTRY
  PANTRY_BIN=${PANTRY_BIN:-$REPO_ROOT/target/release/pantry}
  PANTRY_ERROR=
  PANTRY_CA=$WORK/pantry-ca.pem
  if [ ! -x "$PANTRY_BIN" ] || [ -n "${BUILD:-}" ]; then
    log "building pantry (cargo build --release)"
    if ! (cd "$REPO_ROOT" && cargo build --release) >"$WORK/logs/cargo-build.log" 2>&1 || [ ! -x "$PANTRY_BIN" ]; then
      PANTRY_ERROR="cargo build --release failed: $(grep -m1 -E '^error' \
        "$WORK/logs/cargo-build.log" || tail_msg "$WORK/logs/cargo-build.log" 2)"
      return 1
    fi
  fi
  port_free "$PORT_PANTRY" || { PANTRY_ERROR="port $PORT_PANTRY is already in use"; return 1; }
  mkdir -p "$WORK/pantry-cache" "$WORK/pantry-certs"
  local args=(--listen "$PANTRY_ADDR" --cache-dir "$WORK/pantry-cache" --certs-dir "$WORK/pantry-certs"
    --upstream-ca "$CERTS/testca.pem")
  local p
  for p in "$PORT_ANON" "$PORT_BASIC" "$PORT_TOKEN" "$PORT_AUTH"; do
    args+=(--intercept "$REG_HOST:$p" --resolve "$REG_HOST:$p:127.0.0.1")
  done
  args+=(--intercept "$CDN_HOST:$PORT_CDN" --resolve "$CDN_HOST:$PORT_CDN:127.0.0.1")
  echo "$PANTRY_BIN ${args[*]}" >"$WORK/logs/pantry.cmdline"
  RUST_LOG=${RUST_LOG:-info} spawn pantry "$WORK/logs/pantry.log" "$PANTRY_BIN" "${args[@]}"
  PANTRY_PID=$SPAWNED
  local end=$((SECONDS + 30))
  until pantry_healthy; do
    if ! kill -0 "$PANTRY_PID" 2>/dev/null; then
      wait "$PANTRY_PID" 2>/dev/null
      PANTRY_ERROR="pantry exited at start (status $?): $(tail_msg "$WORK/logs/pantry.log" 3)"
      return 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      PANTRY_ERROR="pantry not healthy after 30 s (GET /healthz): $(tail_msg "$WORK/logs/pantry.log" 3)"
      return 1
    fi
    sleep 0.2
  done
  if ! curl -sf -o "$PANTRY_CA" "http://$PANTRY_ADDR/ca.pem" || ! grep -q 'BEGIN CERTIFICATE' "$PANTRY_CA"; then
    log "GET /ca.pem failed; using $WORK/pantry-certs/ca.pem"
    cp "$WORK/pantry-certs/ca.pem" "$PANTRY_CA" 2>/dev/null \
      || { PANTRY_ERROR="no CA: neither http://$PANTRY_ADDR/ca.pem nor certs-dir/ca.pem"; return 1; }
  fi
  if [ -f "$WORK/pantry-certs/ca.pem" ] && ! cmp -s "$PANTRY_CA" "$WORK/pantry-certs/ca.pem"; then
    log "note: /ca.pem differs from certs-dir/ca.pem"
  fi
  # bundles: the system's roots + pantry's CA, and a "wrong" trust store that has the upstream test
  # CA but not pantry's (a client trusting it succeeds only if pantry silently tunnels)
  cat /etc/ssl/certs/ca-certificates.crt "$PANTRY_CA" >"$WORK/trust-pantry.pem" 2>/dev/null \
    || cp "$PANTRY_CA" "$WORK/trust-pantry.pem"
  cp "$CERTS/testca.pem" "$WORK/trust-upstream-only.pem"
  export PANTRY_ADDR PANTRY_CA
  log "pantry up at $PANTRY_ADDR (pid $PANTRY_PID)"
}
