# shellcheck shell=bash
# Fixture images, built from random local data and pushed with skopeo straight to the registries
# on 127.0.0.1 before pantry is involved. Each client gets its own repositories, so each client's
# first pull is a cold-cache pull:
#   registry.test:5000/interop/CLIENT:v1  multi-arch OCI index (amd64, arm64); amd64 has layers of
#                                          1 KiB, 1 MiB, 20 MiB (shared by both arches) + 4 KiB own
#   registry.test:5001/private/CLIENT:v1  basic auth; Docker schema 2 manifest, 1 KiB + 256 KiB
#   registry.test:5002/private/CLIENT:v1  token auth; OCI manifest, 1 KiB + 256 KiB
# What the registry then really serves is read back (regclient.py describe) into
# $WORK/fixtures/{anon,basic,token}-CLIENT.json: the reference for every content check.

FIXTURE_BIG_SIZES=${FIXTURE_BIG_SIZES:-1024,1048576,20971520}

fixture() { # fixture KIND CLIENT FIELD [ARCH] : print a recorded value (space separated list)
  "$PY" - "$WORK/fixtures/$1-$2.json" "$3" "${4:-amd64}" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
field, arch = sys.argv[2], sys.argv[3]
if field == "top":
    print(d["top"])
else:
    p = d["platforms"][arch]
    if field == "blobs":
        v = p["layers"] + [p["config"]]
    elif field == "idcfg":
        v = p["diff_ids"] + [p["config"]]
    else:
        v = p[field]
    print(" ".join(v) if isinstance(v, list) else v)
EOF
}

push_one() { # push_one LAYOUT DEST_REF [skopeo args...]
  local layout=$1 dest=$2; shift 2
  skopeo copy --all --retry-times 2 --policy "$WORK/conf/policy.json" --dest-cert-dir "$CERTS/pushcerts" \
    "$@" "oci:$layout:v1" "docker://$dest" >>"$WORK/logs/push.log" 2>&1 \
    || die "push to $dest failed: $(tail_msg "$WORK/logs/push.log" 2)"
}

record_one() { # record_one KIND CLIENT REGISTRY REPO [USER PASS]
  local args=(describe --registry "$3" --repo "$4" --ca "$CERTS/testca.pem")
  [ -n "${5:-}" ] && args+=(--user "$5" --password "$6")
  "$PY" "$INTEROP_DIR/regclient.py" "${args[@]}" >"$WORK/fixtures/$1-$2.json" 2>>"$WORK/logs/push.log" \
    || die "cannot read back $3/$4: $(tail_msg "$WORK/logs/push.log" 2)"
}

make_fixtures() { # make_fixtures CLIENT...
  local c
  mkdir -p "$WORK/fixtures" "$WORK/layouts"
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/conf/policy.json"
  for c in "$@"; do
    log "fixtures for $c"
    "$PY" "$INTEROP_DIR/make_oci.py" "$WORK/layouts/anon-$c" --sizes "$FIXTURE_BIG_SIZES" \
      --platforms amd64,arm64 >"$WORK/layouts/anon-$c.json" || die "make_oci failed"
    "$PY" "$INTEROP_DIR/make_oci.py" "$WORK/layouts/basic-$c" --sizes 1024,262144 >/dev/null || die "make_oci failed"
    "$PY" "$INTEROP_DIR/make_oci.py" "$WORK/layouts/token-$c" --sizes 1024,262144 >/dev/null || die "make_oci failed"
    push_one "$WORK/layouts/anon-$c" "127.0.0.1:$PORT_ANON_BACKEND/interop/$c:v1"
    push_one "$WORK/layouts/basic-$c" "127.0.0.1:$PORT_BASIC/private/$c:v1" --format v2s2 \
      --dest-creds "$REG_USER:$REG_PASS"
    push_one "$WORK/layouts/token-$c" "127.0.0.1:$PORT_TOKEN_ADMIN/private/$c:v1"
    record_one anon "$c" "127.0.0.1:$PORT_ANON_BACKEND" "interop/$c"
    record_one basic "$c" "127.0.0.1:$PORT_BASIC" "private/$c" "$REG_USER" "$REG_PASS"
    record_one token "$c" "127.0.0.1:$PORT_TOKEN_ADMIN" "private/$c"
    # the index must have arrived unchanged (skopeo --all keeps OCI manifests as they are)
    [ "$(fixture anon "$c" top)" = "$("$PY" -c 'import json,sys;print(json.load(open(sys.argv[1]))["top"])' \
      "$WORK/layouts/anon-$c.json")" ] || die "registry holds a different index for interop/$c than built"
  done
}
