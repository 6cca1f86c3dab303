# shellcheck shell=bash
# Workload "handshakes": new host names per second. One curl process (the load generator for every
# system) fetches GET /v2/ (200 "{}") from N distinct names rN-hI.hs.test, at most
# $HS_PARALLEL transfers at once; every name is new for the system (each measurement starts it
# anew and each repetition has its own names), so through a proxy every URL is a new CONNECT, a
# new leaf certificate (minted and signed, pantry with a fresh key), a TLS handshake with the client
# and a new upstream connection. "limit" is curl straight to nginx (a new TCP + TLS connection per
# name): curl's and nginx's own handshake cost, the most any proxy could reach. distribution is a
# mirror, not a proxy: it is asked directly under the same names (its certificate is the upstream's,
# *.hs.test) so each URL is a new TLS connection to it, without leaves or upstream connections.
# nginx answers the names in a server block of their own (2 s keep-alive, so the proxies' idle
# upstream connections do not pile up into the next measurement; an access log of its own).
# Rows: names/s (200s over the wall time of the batch), failures, the system's peak RSS and its CPU
# during the batch, curl's and nginx's CPU, the machine's idle share, the requests and distinct
# connections that reached nginx for the names, the leaves pantry minted (its /metrics) and whether
# two more new names got leaves with different public keys (openssl s_client through the proxy).

HS_SYSTEMS=(limit pantry squid mitmproxy distribution)
HS_PARALLEL=${HS_PARALLEL:-8}

hs_names() { # hs_names REP : the measured names of a repetition, one a line
  local i
  for ((i = 1; i <= HS_N; i++)); do echo "r$1-h$i.hs.test"; done
}
hs_extra_names() { # hs_extra_names REP : the warm-up name and two names for the leaf key check
  printf '%s\n' "r$1-warm.hs.test" "r$1-key1.hs.test" "r$1-key2.hs.test"
}

handshakes_install() {
  if wants mitmproxy; then mitmproxy_install; fi
}

handshakes_prepare() {
  HS_N=$([ -n "$QUICK" ] && echo 500 || echo 2000)
  # the names in the hosts file: squid's hosts_file, the resolver of mitmproxy and distribution
  # under with_hosts (each repetition puts its own there, see hs_hosts)
  hs_hosts 1
  # a server of their own for the names (registry.test's server would answer them too, as the
  # port's default server): idle keep-alive and h2 connections end after 2 s; its own access log,
  # to count the requests and connections that reached nginx
  HS_LOG=$WORK/logs/handshakes.access.log
  : >"$HS_LOG"
  cat >"$WORK/conf/nginx.d/handshakes.servers" <<NGINX
server {
  listen 127.0.0.1:$PORT_UP ssl;
  server_name *.hs.test;
  ssl_certificate $CERTS/server-chain.pem;
  ssl_certificate_key $CERTS/server.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  keepalive_timeout 2s;
  access_log $HS_LOG bench;
  location = /v2/ {
    default_type application/json;
    add_header Docker-Distribution-Api-Version registry/2.0 always;
    return 200 '{}';
  }
  location / { return 404; }
}
NGINX
}

# hs_hosts REP : $WORK/hosts with this repetition's names (and no other *.hs.test), rewritten in
# place (a bind mount of it stays valid). glibc reads the whole file for every lookup (about 50 µs
# per 1000 lines here), which would slow mitmproxy down: the file holds one repetition's names only.
hs_hosts() {
  local kept
  kept=$(grep -v '\.hs\.test$' "$WORK/hosts")
  { echo "$kept"; { hs_names "$1"; hs_extra_names "$1"; } | sed 's/^/127.0.0.1 /'; } >"$WORK/hosts.new"
  cat "$WORK/hosts.new" >"$WORK/hosts" && rm -f "$WORK/hosts.new"
}

# hs_curl_config REP PORT FILE : curl's config, one URL per measured name, bodies to /dev/null
hs_curl_config() {
  hs_names "$1" | awk -v port="$2" '{ printf "url = \"https://%s:%s/v2/\"\noutput = \"/dev/null\"\n", $1, port }' >"$3"
}

# hs_leaf_key NAME PORT : (a prefix of) the SHA-256 of the public key of the leaf the proxy shows
# for NAME:PORT
hs_leaf_key() {
  openssl s_client -proxy "${PROXY_URL#http://}" -connect "$1:$2" -servername "$1" </dev/null 2>/dev/null |
    openssl x509 -noout -pubkey 2>/dev/null | sha256sum | cut -c1-16
}

hs_nginx_cpu() { # CPU seconds (user + system) nginx's master and workers used so far
  local master
  master=$(awk '$2 == "nginx" { print $1; exit }' "$WORK/pids")
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v m="${master:-none}" -v hz="$(getconf CLK_TCK)" '
    { pid = $1; sub(/^.*\) /, ""); if (pid == m || $2 == m) t += $12 + $13 } END { printf "%.2f", t / hz }'
}

hs_cpu_ticks() { # "BUSY IDLE": the machine's CPU ticks so far (idle includes iowait)
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat
}

hs_minted() { # pantry's leaf_certificates_minted gauge, or empty
  curl -s --noproxy '*' "http://127.0.0.1:$PORT_PANTRY/metrics" 2>/dev/null |
    awk '$1 == "pantry_leaf_certificates_minted" { printf "%d", $2 }'
}

hs_measure() { # hs_measure SYSTEM REP
  local sys=$1 rep=$2 d port args=() warm real user sys_s ok failed cpu0=0 cpu load per_s idle
  local m0="" m1="" minted="" key1 key2 fresh="" http mark up_requests up_conns name none
  local ng0 ng1 nginx_cpu curl_cpu busy0 idle0 busy1 idle1
  d=$WORK/runs/handshakes-$sys-r$rep
  mkdir -p "$d"
  port=$([ "$sys" = distribution ] && echo "$PORT_MIRROR" || echo "$PORT_UP")
  hs_hosts "$rep"
  if [ "$sys" = pantry ]; then # intercept the names; --resolve takes no globs: one per name
    args=(--intercept "*.hs.test:$PORT_UP")
    while read -r name; do
      args+=(--resolve "$name:$PORT_UP:127.0.0.1")
    done < <(hs_names "$rep"; hs_extra_names "$rep")
  fi
  "sys_${sys}_start" "$d" "${args[@]}"
  # curl to nginx and to distribution must find the names: any host connects to 127.0.0.1
  [ -z "$PROXY_URL" ] && CLIENT_ARGS+=(--connect-to "::127.0.0.1:")
  # full handshakes only (no TLS session reuse), at most HS_PARALLEL transfers at once, each started
  # at once (no waiting to multiplex: no two URLs share a host)
  local curl_args=(-sS --no-progress-meter -A pantry-bench --max-time 60 --no-sessionid "${CLIENT_ARGS[@]}")
  hs_curl_config "$rep" "$port" "$d/curl.conf"
  # one request first, to a name not measured: the system's first-connection costs stay out
  warm=$(curl "${curl_args[@]}" -o /dev/null -w '%{http_code}' "https://r$rep-warm.hs.test:$port/v2/" 2>"$d/warm.err")
  [ "$warm" = 200 ] || log "handshakes $sys: warm-up request got $warm: $(tail_msg "$d/warm.err" 2)"
  sampler_start "$d"
  sleep 0.5
  [ -n "$SAMPLER" ] && read -r _ _ cpu0 <"$d/rss" 2>/dev/null
  [ "$sys" = pantry ] && m0=$(hs_minted)
  load=$(load_now) mark=$(wc -l <"$HS_LOG") ng0=$(hs_nginx_cpu)
  read -r busy0 idle0 < <(hs_cpu_ticks)
  local TIMEFORMAT='%R %U %S'
  { time timeout 900 curl "${curl_args[@]}" --parallel --parallel-max "$HS_PARALLEL" --parallel-immediate \
      -w '%{http_code} %{http_version}\n' -K "$d/curl.conf" >"$d/codes" 2>"$d/curl.err"; } 2>"$d/time"
  read -r busy1 idle1 < <(hs_cpu_ticks)
  read -r real user sys_s <"$d/time"
  ng1=$(hs_nginx_cpu)
  [ "$sys" = pantry ] && m1=$(hs_minted)
  sampler_stop "$d"
  if [ -n "$PROXY_URL" ]; then # two more new names: do their leaves have keys of their own?
    key1=$(hs_leaf_key "r$rep-key1.hs.test" "$port")
    key2=$(hs_leaf_key "r$rep-key2.hs.test" "$port")
    none=$(printf '' | sha256sum | cut -c1-16)   # no certificate seen
    fresh=$([ "$key1" != "$key2" ] && echo 1 || echo 0)
    { [ "$key1" = "$none" ] || [ "$key2" = "$none" ]; } && fresh="?"
  fi
  declare -F "sys_${sys}_after" >/dev/null && "sys_${sys}_after" "$d"
  "sys_${sys}_stop"
  ok=$(grep -c '^200 ' "$d/codes")
  # what reached nginx for the measured names: requests and distinct connections
  read -r up_requests up_conns < <(tail -n +"$((mark + 1))" "$HS_LOG" |
    awk -v p="r$rep-h" 'index($NF, p) == 1 { n++; if (!($6 in c)) { c[$6] = 1; k++ } } END { print n + 0, k + 0 }')
  failed=$((HS_N - ok))
  per_s=$(awk -v n="$ok" -v s="$real" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')
  cpu=$([ -n "$SYS_PID" ] && awk -v a="$cpu0" -v b="$CPU_S" 'BEGIN { printf "%.2f", b - a }' || echo "")
  curl_cpu=$(awk -v u="$user" -v s="$sys_s" 'BEGIN { printf "%.2f", u + s }')
  nginx_cpu=$(awk -v a="$ng0" -v b="$ng1" 'BEGIN { printf "%.2f", b - a }')
  idle=$(awk -v b="$((busy1 - busy0))" -v i="$((idle1 - idle0))" \
    'BEGIN { printf "%.0f", (b + i > 0 ? 100 * i / (b + i) : 0) }')
  [ -n "$m0" ] && [ -n "$m1" ] && minted=$((m1 - m0))
  http=$(awk '{ n[$2]++ } END { for (v in n) if (n[v] > best) { best = n[v]; top = v }; print top }' "$d/codes")
  tsv_row handshakes system="$sys" rep="$rep" names="$HS_N" parallel="$HS_PARALLEL" secs="$real" \
    per_s="$per_s" ok="$ok" failed="$failed" rss_kib="$RSS_KIB" cpu="$cpu" curl_cpu="$curl_cpu" \
    nginx_cpu="$nginx_cpu" load="$load" idle="$idle" minted="$minted" fresh_key="$fresh" http="$http" \
    up_requests="$up_requests" up_conns="$up_conns"
  local extra="${minted:+, $minted leaves minted}${fresh:+, fresh key per leaf: $fresh}"
  log "handshakes $sys (rep $rep): $ok/$HS_N names in $real s = ${per_s%.*}/s, HTTP/$http," \
    "$up_requests requests on $up_conns connections upstream, peak RSS $((RSS_KIB / 1024)) MiB${cpu:+, CPU $cpu s}," \
    "curl CPU $curl_cpu s, nginx CPU $nginx_cpu s, idle $idle %$extra"
  [ "$failed" -eq 0 ] || failed handshakes "$sys: $failed of $HS_N names failed:" \
    "$(grep -v '^200 ' "$d/codes" | sort | uniq -c | head -3 | tr '\n' ' ')" \
    "$(sort "$d/curl.err" | uniq -c | sort -rn | head -3 | tr '\n' ' ')"
}

handshakes_run() {
  local rep k systems=() s
  for s in "${HS_SYSTEMS[@]}"; do
    wants "$s" || continue
    if [ "$s" = mitmproxy ] && [ ! -x "$MITM_VENV/bin/mitmdump" ]; then
      log "handshakes: no mitmproxy in $MITM_VENV (run without --no-install to pip-install it); skipped"
      continue
    fi
    systems+=("$s")
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    # rotate the systems' order per repetition, so none always runs first or last
    for ((k = 0; k < ${#systems[@]}; k++)); do
      hs_measure "${systems[$(((k + rep - 1) % ${#systems[@]}))]}" "$rep"
    done
  done
}
