# shellcheck shell=bash
# The check sequence every client row goes through. A client file clients/NAME.sh provides:
#   NAME_setup                    start what the client needs (optional); non-zero = row fails
#   NAME_pull KIND TRUST CREDS OUT LOG
#        KIND  anon (registry.test:5000, via the CDN) | basic (:5001) | token (:5002)
#        TRUST pantry (system roots + pantry CA) | upstream (only the upstream test CA)
#        CREDS good | none | wrong
#        OUT   a fresh directory the client may use; LOG gets the client's output
#   NAME_reset                    make the client's local image store empty; non-zero if it is not
#   NAME_content KIND OUT         print "FIELD DIGEST..." — FIELD is blobs (layers + config) or
#                                 idcfg (diff_ids + config), compared with the recorded fixture —
#                                 and optionally a second line: a note for the report
#   NAME_teardown                 stop what NAME_setup started (optional)

ROW_TIMEOUT=${ROW_TIMEOUT:-180}   # seconds for one pull
SUITE_BUDGET=${SUITE_BUDGET:-1080} # seconds after which no new pull starts (the suite must end < 20 min)

# row_pull CLIENT ARGS... : run one pull in a fresh directory; sets ROW_OUT ROW_LOG ROW_RC
ROW_N=0
row_pull() {
  local client=$1; shift
  ROW_N=$((ROW_N + 1))
  ROW_OUT=$WORK/clients/$client/run$ROW_N-$1-$2-$3
  ROW_LOG=$ROW_OUT.log
  mkdir -p "$ROW_OUT"
  if [ "$SECONDS" -ge "$SUITE_BUDGET" ]; then
    echo "not run: the suite's time budget (SUITE_BUDGET=$SUITE_BUDGET s) is used up" >"$ROW_LOG"
    ROW_RC=124
    return $ROW_RC
  fi
  "${client}_pull" "$@" "$ROW_OUT" "$ROW_LOG"
  ROW_RC=$?
  [ "$ROW_RC" = 124 ] && echo "timed out after $ROW_TIMEOUT s" >>"$ROW_LOG"
  echo "rc=$ROW_RC" >>"$ROW_LOG"
  return $ROW_RC
}

# row_content CLIENT CHECK KIND [NOTE] : content check of the last pull
row_content() {
  local client=$1 check=$2 kind=$3 note=${4:-} field got want cnote=""
  if [ "$ROW_RC" -ne 0 ]; then
    fail "$client" "$check" "pull failed (rc $ROW_RC): $(failure_msg "$ROW_LOG")"
    return 1
  fi
  { read -r field got; read -r cnote; } < <("${client}_content" "$kind" "$ROW_OUT")
  note=${note:-}${cnote:+${note:+; }$cnote}
  want=$(fixture "$kind" "$client" "$field")
  compare_content "$client" "$check" "$field" "$want" "$got" "$note"
}

run_row() { # run_row CLIENT
  local c=$1 ok_basic="" ok_token="" problems="" p
  mkdir -p "$WORK/clients/$c"
  if declare -F "${c}_setup" >/dev/null && ! "${c}_setup"; then
    fail_rest "$c" "${ROW_SETUP_ERROR:-setup failed}"
    return
  fi

  # 1. a client that trusts only the upstream CA (not pantry's) must fail with a TLS error
  row_pull "$c" anon upstream none
  if [ "$ROW_RC" -eq 0 ]; then
    fail "$c" untrusted-ca "pull SUCCEEDED without trusting pantry's CA: pantry tunnelled instead of intercepting"
  elif is_tls_error "$ROW_LOG"; then
    pass "$c" untrusted-ca "refused: $(tls_error_text "$ROW_LOG")"
  else
    fail "$c" untrusted-ca "failed, but not with a TLS error: $(failure_msg "$ROW_LOG")"
  fi

  # 2. first pull (cold cache), 3. second pull with an empty local store
  "${c}_reset"
  row_pull "$c" anon pantry none
  row_content "$c" pull anon
  if ! "${c}_reset"; then
    fail "$c" repull "could not empty the client's local store before the second pull"
    fail "$c" zero-upstream "could not empty the client's local store before the second pull"
  else
    upstream_mark "$c-repull"
    row_pull "$c" anon pantry none
    if row_content "$c" repull anon; then
      check_zero_upstream "$c" "$c-repull"
    else
      fail "$c" zero-upstream "second pull did not complete, so there is nothing to count"
    fi
  fi

  # 4./5. authorised pulls of the private images
  "${c}_reset"
  row_pull "$c" basic pantry good
  row_content "$c" basic-auth basic && ok_basic=1
  row_pull "$c" token pantry good
  row_content "$c" token-auth token && ok_token=1

  # 6. nobody without valid credentials gets what the authorised pulls just cached
  if [ -z "$ok_basic$ok_token" ]; then
    fail "$c" deny "no authorised pull succeeded, so nothing private was cached to protect"
  else
    "${c}_reset"
    for kind in ${ok_basic:+basic} ${ok_token:+token}; do
      row_pull "$c" "$kind" pantry none
      p=$(denied_problem "$kind anonymous" "$ROW_LOG" "$ROW_RC"); problems+=${p:+$p; }
      row_pull "$c" "$kind" pantry wrong
      p=$(denied_problem "$kind wrong password" "$ROW_LOG" "$ROW_RC"); problems+=${p:+$p; }
    done
    if [ -z "$problems" ]; then
      pass "$c" deny "anonymous and wrong-password pulls refused for the private images on${ok_basic:+ basic-auth}${ok_token:+ token-auth}"
    else
      fail "$c" deny "$problems"
    fi
  fi
  declare -F "${c}_teardown" >/dev/null && "${c}_teardown"
  return 0
}

# helpers for the client files
registry_of() { # registry_of KIND : host:port the clients use
  case $1 in anon) echo "$REG_HOST:$PORT_ANON" ;; basic) echo "$REG_HOST:$PORT_BASIC" ;;
    token) echo "$REG_HOST:$PORT_TOKEN" ;; esac
}
repo_of() { [ "$1" = anon ] && echo "interop/$2" || echo "private/$2"; }   # repo_of KIND CLIENT
image_of() { echo "$(registry_of "$1")/$(repo_of "$1" "$2"):v1"; }          # image_of KIND CLIENT
password_of() { case $1 in good) echo "$REG_PASS" ;; wrong) echo "$REG_WRONG_PASS" ;; esac; }
trust_file() { [ "$1" = pantry ] && echo "$WORK/trust-pantry.pem" || echo "$WORK/trust-upstream-only.pem"; }
proxy_env() { # proxy_env CMD... : run CMD with pantry as HTTP(S) proxy and no bypass list
  env -u NO_PROXY -u no_proxy HTTPS_PROXY="http://$PANTRY_ADDR" https_proxy="http://$PANTRY_ADDR" \
    HTTP_PROXY="http://$PANTRY_ADDR" http_proxy="http://$PANTRY_ADDR" "$@"
}
