# shellcheck shell=bash
# upstream-credentials: pantry holds the token registry's credentials for private/* (a config
# file with [[upstream_credentials]] and a password_file), and clients pull with none of their
# own. skopeo (--src-no-creds) and docker (no `docker login`) do the token dance anonymously and
# get pantry's stand-in token: cred-skopeo and cred-docker check the pulled content; cred-repull
# pulls again into an empty docker store and must cost the registry no blob GET; cred-other asks
# for a repository outside the entry's globs and must get the registry's own refusal.

client_upstream-credentials() {
  local r=upstream-credentials dir=$WORK/clients/upstream-credentials
  mkdir -p "$dir"
  printf '%s\n' "$REG_PASS" >"$dir/password"
  chmod 600 "$dir/password"
  cat >"$dir/pantry.toml" <<TOML
[[upstream_credentials]]
registry = "$REG_HOST:$PORT_TOKEN"
repositories = ["private/*"]
username = "$REG_USER"
password_file = "$dir/password"
TOML
  chmod 600 "$dir/pantry.toml"
  PANTRY_EXTRA_ARGS=(--config "$dir/pantry.toml")
  stop_named pantry
  if ! start_pantry; then
    fail_rest "$r" "pantry did not start with upstream credentials: $PANTRY_ERROR"
    PANTRY_EXTRA_ARGS=()
    return
  fi
  skopeo_setup
  row_pull skopeo token pantry none
  pull_matches "$r" cred-skopeo skopeo token "skopeo with no credentials of its own; pantry held them"

  # outside the entry: the registry's own 401, not pantry's credentials
  local image=$REG_HOST:$PORT_TOKEN/other/skopeo:v1 log=$dir/other.log
  REGISTRY_AUTH_FILE=$WORK/clients/skopeo/auth.json proxy_env timeout "$ROW_TIMEOUT" \
    skopeo --debug inspect --retry-times 0 --no-creds --cert-dir "$WORK/clients/skopeo/trust-pantry" \
    "docker://$image" >"$log" 2>&1
  if [ $? -ne 0 ] && is_auth_error "$log"; then
    pass "$r" cred-other "other/skopeo (no entry covers it) was refused by the registry: $(failure_msg "$log" | cut -c1-120)"
  else
    fail "$r" cred-other "other/skopeo was not refused as unauthorized: $(failure_msg "$log")"
  fi

  DOCKER_N=0
  if ! docker_start pantry; then
    fail "$r" cred-docker "${ROW_SETUP_ERROR:-dockerd did not start}"
    fail "$r" cred-repull "${ROW_SETUP_ERROR:-dockerd did not start}"
  else
    docker_reset
    row_pull docker token pantry none
    pull_matches "$r" cred-docker docker token "docker with no credentials of its own; pantry held them"
    if docker_reset; then
      repull_costs_no_blob "$r" cred-repull docker token "anonymous, with pantry's credentials"
    else
      fail "$r" cred-repull "could not empty dockerd's image store before the second pull"
    fi
    docker_stop
  fi
  PANTRY_EXTRA_ARGS=()
  stop_named pantry
  start_pantry || log "pantry did not restart without the credentials: $PANTRY_ERROR"
}
