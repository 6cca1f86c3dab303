# shellcheck shell=bash
# Registry-mirror row: clients configured with pantry as a mirror (dockerd "registry-mirrors",
# containerd hosts.toml, registries.conf [[registry.mirror]]) talk to it as if it were a registry,
# e.g. `GET http://127.0.0.1:PORT/v2/`. pantry has no such mode yet; this row checks whether the
# proxy port answers like a registry and stays red until it does.

client_mirror() {
  local hdr code
  hdr=$(curl -s -o /dev/null -D - -w '%{http_code}' "http://$PANTRY_ADDR/v2/" 2>&1)
  code=${hdr##*$'\n'}
  if grep -qi '^docker-distribution-api-version:' <<<"$hdr" && { [ "$code" = 200 ] || [ "$code" = 401 ]; }; then
    fail mirror pull "GET /v2/ on pantry answers like a registry (HTTP $code), but this suite has no mirror-mode pull yet: add one"
  else
    fail mirror pull "pantry has no mirror mode yet (GET http://$PANTRY_ADDR/v2/ answered HTTP ${code:-nothing}, not a registry API)"
  fi
}
