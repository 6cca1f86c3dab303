# shellcheck shell=bash
# curl by hand: `curl --proxy http://pantry --http2 --cacert BUNDLE` walking the registry API:
# ping /v2/, answer the 401 challenge (Basic, or Bearer from the token realm, fetched through the
# proxy too), manifest by tag (index), manifest by digest (amd64), config and layers (-L follows
# the CDN redirect; curl drops Authorization when the host changes). The HTTP version spoken with
# pantry and the Cache-Status headers seen are noted in the row.
# Without valid credentials it also asks for the private layers straight by digest, the request
# a cache is most likely to answer from its store without asking upstream.

client_curl() { run_row curl; curl_egress_cache; }

# egress-cache: a package download over plain HTTP through pantry (RFC 9111 caching), twice; the
# origin (python's http.server on 127.0.0.1:$PORT_PKG, named pkg.test through pantry's --resolve:
# pantry never dials loopback by address; a file last modified 30 days ago, so heuristically fresh
# for 3 days) must see one download, and the second answer come from the store.
curl_egress_cache() {
  local dir=$WORK/clients/curl/egress url code status n
  mkdir -p "$dir/site"
  head -c 3000000 /dev/urandom >"$dir/site/tool-1.0.tar.gz"
  touch -d '30 days ago' "$dir/site/tool-1.0.tar.gz"
  spawn pkg-origin "$WORK/logs/pkg-origin.log" "$PY" -m http.server --bind 127.0.0.1 --directory "$dir/site" "$PORT_PKG"
  if ! wait_for 20 "package origin" curl -sf -o /dev/null "http://127.0.0.1:$PORT_PKG/"; then
    fail curl egress-cache "the package origin did not start: $(tail_msg "$WORK/logs/pkg-origin.log" 2)"
    return
  fi
  url=http://$PKG_HOST:$PORT_PKG/tool-1.0.tar.gz
  for n in 1 2; do
    code=$(curl -sS --proxy "http://$PANTRY_ADDR" -D "$dir/head$n" -o "$dir/get$n" -w '%{http_code}' "$url" 2>>"$dir/curl.log")
    status=$(grep -i '^cache-status:' "$dir/head$n" | cut -d: -f2- | tr -d '\r' | xargs)
    echo "GET $n -> $code ($status)" >>"$dir/curl.log"
  done
  local downloads
  downloads=$(grep -c '"GET /tool-1.0.tar.gz HTTP/1.1" 200' "$WORK/logs/pkg-origin.log")
  if [ "$code" != 200 ] || ! cmp -s "$dir/get2" "$dir/site/tool-1.0.tar.gz"; then
    fail curl egress-cache "second download failed or differs (HTTP $code): $(tail_msg "$dir/curl.log" 2)"
  elif [ "$downloads" != 1 ] || [ "$status" != "pantry; hit" ]; then
    fail curl egress-cache "the origin served $downloads downloads; second Cache-Status: $status"
  else
    pass curl egress-cache "3 MB package downloaded once from the origin; second request: Cache-Status $status"
  fi
  stop_named pkg-origin
}

curl_reset() { :; }   # curl keeps nothing between runs

# curl_get URL OUTFILE [extra curl args] : prints "HTTP_CODE HTTP_VERSION"; response headers go
# to $CURL_DIR/hdr/(basename OUTFILE)
curl_get() {
  local url=$1 outf=$2; shift 2
  mkdir -p "$CURL_DIR/hdr"
  curl -sS --proxy "http://$PANTRY_ADDR" --http2 --cacert "$CURL_TRUST" --max-time 120 -L \
    -D "$CURL_DIR/hdr/${outf##*/}" -o "$outf" -w '%{http_code} %{http_version}\n' "${CURL_AUTH[@]}" \
    "$@" "$url" 2>>"$CURL_LOG"
}

curl_authenticate() { # curl_authenticate HEADERFILE REPO CREDS : sets CURL_AUTH from a 401 challenge
  local challenge realm service code
  challenge=$(grep -i '^www-authenticate:' "$1" | tail -1 | tr -d '\r')
  CURL_AUTH=()
  case ${challenge,,} in
    *bearer*)
      realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$challenge")
      service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$challenge")
      local targs=()
      [ "$3" != none ] && targs=(-u "$REG_USER:$(password_of "$3")")
      read -r code _ < <(curl_get "$realm?service=$service&scope=repository:$2:pull" "$CURL_DIR/token.json" "${targs[@]}")
      echo "token endpoint: $code" >>"$CURL_LOG"
      [ "$code" = 200 ] || return 1
      CURL_AUTH=(-H "Authorization: Bearer $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("token") or d["access_token"])' "$CURL_DIR/token.json")")
      ;;
    *basic*) [ "$3" != none ] && CURL_AUTH=(-u "$REG_USER:$(password_of "$3")") ;;
  esac
  return 0
}

curl_pull() { # KIND TRUST CREDS OUT LOG
  local kind=$1 trust=$2 creds=$3 out=$4
  CURL_LOG=$5 CURL_DIR=$out CURL_AUTH=()
  CURL_TRUST=$(trust_file "$trust")
  local reg repo base code ver digest d got=0
  reg=$(registry_of "$kind"); repo=$(repo_of "$kind" curl); base="https://$reg/v2"
  mkdir -p "$out/blobs"
  read -r code ver < <(curl_get "$base/" "$out/ping")
  echo "GET /v2/ -> $code (HTTP/$ver with pantry)" >>"$CURL_LOG"
  [ -n "$code" ] && [ "$code" != 000 ] || return 1
  echo "$ver" >"$out/http_version"
  if [ "$code" = 401 ]; then curl_authenticate "$out/hdr/ping" "$repo" "$creds" || true; fi
  local accept="application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json"
  accept+=",application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
  read -r code _ < <(curl_get "$base/$repo/manifests/v1" "$out/top.json" -H "Accept: $accept")
  echo "GET manifest by tag -> $code" >>"$CURL_LOG"
  if [ "$code" = 200 ]; then
    digest=$("$PY" - "$out/top.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for m in d.get("manifests", []):
    if m.get("platform", {}).get("architecture") == "amd64":
        print(m["digest"])
EOF
)
    if [ -n "$digest" ]; then
      read -r code _ < <(curl_get "$base/$repo/manifests/$digest" "$out/manifest.json" -H "Accept: $accept")
      echo "GET manifest $digest -> $code" >>"$CURL_LOG"
    else
      cp "$out/top.json" "$out/manifest.json"
    fi
    if [ "$code" = 200 ]; then
      for d in $("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["config"]["digest"], *[l["digest"] for l in m["layers"]])' "$out/manifest.json"); do
        read -r code _ < <(curl_get "$base/$repo/blobs/$d" "$out/blobs/${d#sha256:}")
        echo "GET blob $d -> $code $(grep -i '^cache-status:' "$out/hdr/${d#sha256:}" | tr -d '\r')" >>"$CURL_LOG"
        [ "$code" = 200 ] && got=$((got + 1))
      done
    fi
  fi
  if [ "$kind" != anon ] && [ "$creds" != good ]; then
    # the private layers by digest, without valid credentials (the cache-leak probe)
    for d in $(fixture "$kind" curl layers); do
      read -r code _ < <(curl_get "$base/$repo/blobs/$d" "$out/blobs/${d#sha256:}")
      echo "probe GET blob $d without valid credentials -> $code" >>"$CURL_LOG"
      [ "$code" = 200 ] && got=$((got + 1))
    done
    [ "$got" -gt 0 ]; return   # "success" here means private content leaked
  fi
  [ "$code" = 200 ] && [ "$got" -gt 0 ]
}

curl_content() {
  echo "blobs $(present_of "$(fixture "$1" curl blobs)" "$(digests_of_dir "$2/blobs")")"
  local redirects
  redirects=$(cat "$2"/hdr/[0-9a-f]* 2>/dev/null | grep -cE '^HTTP/[0-9.]+ 30[1-8]')
  echo "HTTP/$(cat "$2/http_version" 2>/dev/null) with pantry; ${redirects:-0} blob redirects reached curl; \
blob Cache-Status:$(cat "$2"/hdr/[0-9a-f]* 2>/dev/null | grep -i '^cache-status:' | cut -d: -f2- | tr -d '\r' \
    | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
}
