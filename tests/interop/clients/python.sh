# shellcheck shell=bash
# A Python registry client (regclient.py, standard library only) that opens every tunnel with
# `CONNECT host:port HTTP/1.0` and no Host header, as Python 3.11's http.client set_tunnel does
# (python-dxf/requests would send HTTP/1.1). It pings, answers Basic/Bearer challenges, follows
# the CDN redirect without Authorization and verifies each blob's digest. Without valid
# credentials it also asks for the private layers by digest (the cache-leak probe).

client_python() { run_row python; }

python_reset() { :; }

python_pull() { # KIND TRUST CREDS OUT LOG
  local kind=$1 trust=$2 creds=$3 out=$4 logf=$5 rc d leaked=0
  local common=(--registry "$(registry_of "$kind")" --repo "$(repo_of "$kind" python)"
    --ca "$(trust_file "$trust")" --proxy "$PANTRY_ADDR")
  [ "$creds" != none ] && common+=(--user "$REG_USER" --password "$(password_of "$creds")")
  timeout "$ROW_TIMEOUT" "$PY" "$INTEROP_DIR/regclient.py" pull "${common[@]}" --out "$out/blobs" \
    --trace "$out/trace" >"$out/result.json" 2>"$out/stderr"
  rc=$?
  cat "$out/trace" "$out/stderr" >"$logf" 2>/dev/null
  if [ "$kind" != anon ] && [ "$creds" != good ]; then
    for d in $(fixture "$kind" python layers); do
      if timeout 60 "$PY" "$INTEROP_DIR/regclient.py" get-blob "${common[@]}" --digest "$d" \
        --out "$out/probe" --trace "$out/trace" >"$out/stderr" 2>&1; then
        leaked=1; echo "probe GET blob $d without valid credentials SUCCEEDED" >>"$out/stderr"
      fi
      cat "$out/trace" "$out/stderr" >>"$logf" 2>/dev/null
    done
    [ "$leaked" = 1 ] && return 0
  fi
  return $rc
}

python_content() {
  echo "blobs $(present_of "$(fixture "$1" python blobs)" "$(digests_of_dir "$2/blobs")")"
  echo "tunnels opened with $(grep -m1 -o 'CONNECT [^ ]* HTTP/1.0 -> [^ ]* [0-9]*' "$2/trace" 2>/dev/null)"
}
