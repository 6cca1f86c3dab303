# shellcheck shell=bash
# Helpers the client rows share: upstream request counting and content comparison.

# Logs that see every request which reaches "upstream" (the backend behind nginx is left out,
# as nginx already logs what it forwards).
UPSTREAM_LOGS=(nginx-front.access.log nginx-cdn.access.log registry-basic.access.log
  registry-token.access.log registry-transparent.access.log)

# upstream_flush : asks every upstream that is up for a marker path and waits until its access
# log shows it, so that every request before it is logged too (instead of sleeping and hoping).
# A server that is down is not asked; the transparent row's registry is asked in its namespace.
# Returns 1 when a server that answered the marker did not log it within 10 s (counts would lag).
upstream_flush() {
  local id="pantry-marker-$$-$RANDOM$RANDOM" f host port end in rc=0
  for f in "${UPSTREAM_LOGS[@]}"; do
    in=()
    case $f in
      nginx-front.*) host=$REG_HOST port=$PORT_ANON ;;
      nginx-cdn.*) host=$CDN_HOST port=$PORT_CDN ;;
      registry-basic.*) host=$REG_HOST port=$PORT_BASIC ;;
      registry-token.*) host=$REG_HOST port=$PORT_TOKEN ;;
      registry-transparent.*)   # inside pantry's namespace of the transparent row, while it exists
        ip netns list 2>/dev/null | grep -qw "${TP_NS_PANTRY:-none}" || continue
        in=(ip netns exec "$TP_NS_PANTRY") host=$REG_HOST port=$PORT_ANON ;;
      *) continue ;;
    esac
    "${in[@]}" curl -s -o /dev/null --max-time 5 --cacert "$CERTS/testca.pem" --resolve "$host:$port:127.0.0.1" \
      "https://$host:$port/v2/$id/tags/list" || continue
    end=$((SECONDS + 10))
    until grep -q "$id" "$WORK/logs/$f" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do sleep 0.05; done
    grep -q "$id" "$WORK/logs/$f" 2>/dev/null || { log "upstream_flush: $f did not log the marker within 10 s"; rc=1; }
  done
  return "$rc"
}

upstream_mark() { # upstream_mark NAME : remember how long each upstream access log is now
  local f n
  : >"$WORK/marks/$1"
  for f in "${UPSTREAM_LOGS[@]}"; do
    n=$(wc -l 2>/dev/null <"$WORK/logs/$f" || echo 0)   # a registry not started yet has no log
    echo "$f $n" >>"$WORK/marks/$1"
  done
}

# upstream_since NAME : print "BLOBS MANIFESTS DETAIL": blob GETs and manifest-by-digest GETs that
# reached the registries, and GETs the CDN served, since the mark. A CDN GET is counted as a blob
# GET of its own (it is the same blob's bytes crossing the upstream link a second time).
upstream_since() {
  # counts from logs that may lag are no counts: "?" fails every check that wants a number
  upstream_flush || { echo "? ? an access log did not catch up with a marker request within 10 s"; return; }
  local f n blobs=0 mans=0 b m detail=""
  while read -r f n; do
    b=$(tail -n +"$((n + 1))" "$WORK/logs/$f" 2>/dev/null \
      | grep -cE '"GET (/v2/[^ ]+/blobs/sha256:|/blobs/sha256/)' || true)
    m=$(tail -n +"$((n + 1))" "$WORK/logs/$f" 2>/dev/null \
      | grep -cE '"GET /v2/[^ ]+/manifests/sha256:' || true)
    blobs=$((blobs + b)); mans=$((mans + m))
    case $f in
      nginx-cdn*) [ "$b" -gt 0 ] && detail+="CDN served $b blobs; " ;;
      *) [ $((b + m)) -gt 0 ] && detail+="${f%%.access.log}: $b blob GETs (307 to CDN if nginx-front), $m manifest-by-digest GETs; " ;;
    esac
  done <"$WORK/marks/$1"
  echo "$blobs $mans ${detail:-none}"
}

# repull_costs_no_blob ROW CHECK CLIENT KIND WHY : pulls KIND's image with CLIENT again (its local
# store already emptied) and passes when the pull worked and no blob GET reached the registries
repull_costs_no_blob() {
  local row=$1 check=$2 client=$3 kind=$4 why=$5 blobs mans detail
  upstream_mark "$check"
  row_pull "$client" "$kind" pantry none
  read -r blobs mans detail < <(upstream_since "$check")
  if [ "$ROW_RC" -ne 0 ]; then
    fail "$row" "$check" "second pull failed (rc $ROW_RC): $(failure_msg "$ROW_LOG")"
  elif [ "$blobs" = 0 ]; then
    pass "$row" "$check" "the second pull cost the registry no blob GET ($why)"
  else
    fail "$row" "$check" "the second pull reached the registry: $detail"
  fi
}

# check_zero_upstream CLIENT MARK : the zero-upstream check after a second pull
check_zero_upstream() {
  local client=$1 mark=$2 blobs mans detail
  read -r blobs mans detail < <(upstream_since "$mark")
  if [ "$blobs" = 0 ] && [ "$mans" = 0 ]; then
    pass "$client" zero-upstream "no blob or manifest-by-digest GET reached the registries or the CDN"
  else
    fail "$client" zero-upstream "second pull reached upstream: $detail"
  fi
}

# same_set "A B C" "C B A" : equal as sets of words
same_set() {
  [ "$(tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -u)" = "$(tr ' ' '\n' <<<"$2" | grep -v '^$' | sort -u)" ]
}

# compare_content CLIENT CHECK WHAT EXPECTED GOT [NOTE] : pass/fail CHECK on equal digest sets
compare_content() {
  local client=$1 check=$2 what=$3 want=$4 got=$5 note=${6:-}
  case $what in
    blobs) what="layer and config digests" ;;
    idcfg) what="image ID (config digest) and diff_ids" ;;
  esac
  if [ -n "$got" ] && same_set "$want" "$got"; then
    pass "$client" "$check" "$what match the pushed image${note:+; $note}"
  else
    fail "$client" "$check" "$what differ: want [$want] got [${got:-nothing}]${note:+; $note}"
  fi
}

# pull_matches ROW CHECK CLIENT KIND NOTE : the last row_pull of CLIENT (KIND's image) worked and
# has the pushed content; recorded as ROW's CHECK, NOTE said after the comparison
pull_matches() {
  local row=$1 check=$2 c=$3 kind=$4 why=$5 field got want note
  if [ "$ROW_RC" -ne 0 ]; then
    fail "$row" "$check" "pull failed (rc $ROW_RC): $(failure_msg "$ROW_LOG")"
    return 1
  fi
  { read -r field got; read -r note; } < <("${c}_content" "$kind" "$ROW_OUT")
  want=$(fixture "$kind" "$c" "$field")
  compare_content "$row" "$check" "$field" "$want" "$got" "$why${note:+; $note}"
}

# sha256 digests of every file in a directory tree (blob files), space separated
digests_of_dir() {
  find "$1" -type f -print0 2>/dev/null | xargs -0 -r sha256sum | awk '{print "sha256:" $1}' | sort -u | tr '\n' ' '
}

# keep only the words of $2 that are in $1 (which of the wanted digests are present)
present_of() {
  local w out=""
  for w in $1; do grep -qw -- "${w#sha256:}" <<<"$2" && out+="$w "; done
  echo "$out"
}

# expect_denied CLIENT LABEL OUTFILE RC : helper for the deny check; prints a problem or nothing
denied_problem() {
  local label=$1 out=$2 rc=$3
  if [ "$rc" -eq 0 ]; then
    echo "$label: pull SUCCEEDED (cached private content served without valid credentials)"
  elif ! is_auth_error "$out"; then
    echo "$label: failed, but not with an authorization error: $(failure_msg "$out")"
  fi
}
