# shellcheck shell=bash
# `pantry prefetch` (pantry's own registry client) against the real registries: the image's index,
# the linux/amd64 manifest and its blobs pulled into a cache directory of its own, answering
# distribution's Basic and token challenges with --user. Trust: the suite's upstream CA
# (--upstream-ca) or, for the untrusted-ca check, only the system roots. The "second pull with an
# empty local store" is a second prefetch into the same cache: it must find everything stored and
# cost no upstream GET.

client_prefetch() { run_row prefetch; }

prefetch_setup() { mkdir -p "$WORK/clients/prefetch/cache"; }

prefetch_pull() { # KIND TRUST CREDS OUT LOG
  local kind=$1 trust=$2 creds=$3 out=$4 logf=$5 p
  local args=(prefetch --platform linux/amd64 --cache-dir "$WORK/clients/prefetch/cache")
  [ "$creds" != none ] && args+=(--user "$REG_USER:$(password_of "$creds")")
  for p in "$PORT_ANON" "$PORT_BASIC" "$PORT_TOKEN" "$PORT_AUTH"; do
    args+=(--resolve "$REG_HOST:$p:127.0.0.1")
  done
  args+=(--resolve "$CDN_HOST:$PORT_CDN:127.0.0.1")
  # TRUST=pantry means "the normal set-up" here: pantry trusts the upstream CA. TRUST=upstream is the
  # negative case: pantry trusts only the system roots and must refuse the test CA's certificate.
  [ "$trust" = pantry ] && args+=(--upstream-ca "$CERTS/testca.pem")
  env -u PANTRY_CONFIG -u PANTRY_CACHE_DIR timeout "$ROW_TIMEOUT" "$PANTRY_BIN" "${args[@]}" \
    "$(image_of "$kind" prefetch)" >"$logf" 2>&1
}

prefetch_reset() { :; }   # the cache is what prefetch fills: a second run must find it all there

prefetch_content() {
  local have
  have=$("$PANTRY_BIN" cache ls --cache-dir "$WORK/clients/prefetch/cache" 2>/dev/null | awk 'NR > 1 {print $1}')
  echo "blobs $(present_of "$(fixture "$1" prefetch blobs)" "$have")"
  tail -n 2 "$2.log" 2>/dev/null | grep -m1 'fetched' || true
}
