# shellcheck shell=bash
# skopeo (containers/image, Go): `skopeo copy docker://registry.test:5000/... dir:OUT` with
# HTTPS_PROXY=pantry. Trust via --src-cert-dir (a directory whose ca.crt is added to the system
# roots); credentials via --src-creds / --src-no-creds and an empty REGISTRY_AUTH_FILE.

client_skopeo() { run_row skopeo; }

skopeo_setup() {
  mkdir -p "$WORK/clients/skopeo/trust-pantry" "$WORK/clients/skopeo/trust-upstream"
  cp "$PANTRY_CA" "$WORK/clients/skopeo/trust-pantry/ca.crt"
  cp "$CERTS/testca.pem" "$WORK/clients/skopeo/trust-upstream/ca.crt"
  echo '{}' >"$WORK/clients/skopeo/auth.json"
}

skopeo_pull() { # KIND TRUST CREDS OUT LOG
  local kind=$1 trust=$2 creds=$3 out=$4 logf=$5
  local args=(--src-cert-dir "$WORK/clients/skopeo/trust-$trust")
  case $creds in
    none) args+=(--src-no-creds) ;;
    *) args+=(--src-creds "$REG_USER:$(password_of "$creds")") ;;
  esac
  REGISTRY_AUTH_FILE=$WORK/clients/skopeo/auth.json proxy_env timeout "$ROW_TIMEOUT" \
    skopeo --debug copy --retry-times 0 --policy "$WORK/conf/policy.json" "${args[@]}" \
    "docker://$(image_of "$kind" skopeo)" "dir:$out/image" >"$logf" 2>&1
}

skopeo_reset() { :; }   # every pull writes to a new directory

skopeo_content() { echo "blobs $(present_of "$(fixture "$1" skopeo blobs)" "$(digests_of_dir "$2/image")")"; }
