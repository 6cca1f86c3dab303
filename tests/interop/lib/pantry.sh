# shellcheck shell=bash
# Builds and starts pantry with the suite's command line; fetches its CA.
#   PANTRY_BIN      binary to use as it is (no build); default: what `cargo build --release` builds
#   NO_BUILD        (--no-build) skip cargo and use the binary in the target dir as it is
#   PANTRY_ADDR     127.0.0.1:$PORT_PANTRY, exported for the client rows
#   PANTRY_CA       pantry's CA certificate (PEM) as fetched from /ca.pem or the certs dir
#   PANTRY_ERROR    set when pantry could not be built or started; every row then says so

pantry_healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$PANTRY_ADDR/healthz")" = 200 ]; }

# build_pantry : sets PANTRY_BIN, or PANTRY_ERROR. The suite must never test a stale pantry, so it
# always runs cargo (a no-op when nothing changed) and takes the binary's path from cargo itself
# (CARGO_TARGET_DIR and .cargo/config are honoured).
build_pantry() {
  if [ -n "${PANTRY_BIN:-}" ]; then
    log "using PANTRY_BIN=$PANTRY_BIN as it is (not built by the suite)"
  elif [ -n "${NO_BUILD:-}" ]; then
    local target
    target=$(cd "$REPO_ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null \
      | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') \
      || target=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
    PANTRY_BIN=$target/release/pantry
    log "--no-build: using $PANTRY_BIN as it is ($(date -r "$PANTRY_BIN" '+built %F %T' 2>/dev/null || echo missing))"
  else
    log "building pantry (cargo build --release; output in logs/cargo-build.log)"
    local t0=$SECONDS
    if ! (cd "$REPO_ROOT" && cargo build --release --message-format=json-render-diagnostics) \
      </dev/null >"$WORK/logs/cargo-build.json" 2>"$WORK/logs/cargo-build.log"; then
      PANTRY_ERROR="cargo build --release failed: $(grep -m1 -E '^error' \
        "$WORK/logs/cargo-build.log" || tail_msg "$WORK/logs/cargo-build.log" 2)"
      return 1
    fi
    PANTRY_BIN=$("$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line) if line.startswith("{") else {}
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and t.get("name") == "pantry" and "bin" in t.get("kind", []):
        print(m["executable"])
' "$WORK/logs/cargo-build.json" | tail -1)
    log "cargo build --release done in $((SECONDS - t0)) s: $PANTRY_BIN"
  fi
  [ -n "$PANTRY_BIN" ] && [ -x "$PANTRY_BIN" ] \
    || { PANTRY_ERROR="no pantry binary (${PANTRY_BIN:-cargo named none}; see logs/cargo-build.log)"; return 1; }
}

# pantry_upstream_args : sets PANTRY_UPSTREAM_ARGS, the flags every pantry of the suite has: the
# upstream test CA, and the registries and the CDN intercepted and resolved to loopback
pantry_upstream_args() {
  PANTRY_UPSTREAM_ARGS=(--upstream-ca "$CERTS/testca.pem")
  local p
  for p in "$PORT_ANON" "$PORT_BASIC" "$PORT_TOKEN" "$PORT_AUTH"; do
    PANTRY_UPSTREAM_ARGS+=(--intercept "$REG_HOST:$p" --resolve "$REG_HOST:$p:127.0.0.1")
  done
  PANTRY_UPSTREAM_ARGS+=(--intercept "$CDN_HOST:$PORT_CDN" --resolve "$CDN_HOST:$PORT_CDN:127.0.0.1")
  PANTRY_UPSTREAM_ARGS+=(--resolve "$PKG_HOST:$PORT_PKG:127.0.0.1") # curl's egress-cache origin (plain HTTP)
}

PANTRY_EXTRA_ARGS=()   # more flags for the next start_pantry (the restart-offline row's --offline)

start_pantry() {
  PANTRY_ADDR=127.0.0.1:$PORT_PANTRY
  PANTRY_ERROR=
  PANTRY_CA=$WORK/pantry-ca.pem
  build_pantry || return 1
  port_free "$PORT_PANTRY" || { PANTRY_ERROR="port $PORT_PANTRY is already in use"; return 1; }
  mkdir -p -m 700 "$WORK/pantry-cache" "$WORK/pantry-certs"   # pantry warns about a store others can read
  local args=(--listen "$PANTRY_ADDR" --cache-dir "$WORK/pantry-cache" --certs-dir "$WORK/pantry-certs")
  pantry_upstream_args; args+=("${PANTRY_UPSTREAM_ARGS[@]}")
  port_free "$PORT_MIRROR" || { PANTRY_ERROR="port $PORT_MIRROR (mirror) is already in use"; return 1; }
  args+=(--mirror-listen "127.0.0.1:$PORT_MIRROR" --mirror-default "$REG_HOST:$PORT_ANON")
  args+=("${PANTRY_EXTRA_ARGS[@]}")
  echo "$PANTRY_BIN ${args[*]}" >"$WORK/logs/pantry.cmdline"
  # pantry reads PANTRY_* variables (clap `env`) too: none of the caller's may change this command line
  local unset_env=() v
  for v in $(compgen -e); do [[ $v == PANTRY_* ]] && unset_env+=(-u "$v"); done
  RUST_LOG=${RUST_LOG:-info} spawn pantry "$WORK/logs/pantry.log" env "${unset_env[@]}" "$PANTRY_BIN" "${args[@]}"
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
