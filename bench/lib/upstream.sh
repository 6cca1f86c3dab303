# shellcheck shell=bash
# The upstream side: a test CA, the blobs, and Debian's nginx serving them over TLS as registry.test.
#   $CERTS/testca.pem            the upstream CA (trusted by every system and by the direct clients)
#   $CERTS/server-chain.pem/.key leaf for registry.test, *.hs.test, localhost and 127.0.0.1
#   $WORK/blobs/sha256:HEX       the blobs; BLOB_HEX[MiB] is the digest of the random blob of that size
#   $WORK/hosts                  an /etc/hosts for with_hosts: registry.test (workloads add names)
#   nginx at 127.0.0.1:$PORT_UP: GET /v2/ -> 200 {}, GET|HEAD /v2/REPO/blobs/sha256:HEX -> the file,
#   limited to $RATE per connection for REPO "throttled", unthrottled otherwise. Workloads add
#   locations to this server in $WORK/conf/nginx.d/*.locations and servers in *.servers.
#   Each request is logged to $UP_LOG as
#   METHOD URI STATUS BODY_BYTES REQUEST_TIME CONNECTION PROTOCOL "USER_AGENT" HOST

make_certs() {
  CERTS=$WORK/certs
  mkdir -p "$CERTS"
  (
    set -e
    cd "$CERTS"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -keyout testca.key -out testca.pem \
      -subj "/CN=pantry bench upstream CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr -subj "/CN=$UP_HOST"
    printf '%s\n' "subjectAltName=DNS:$UP_HOST,DNS:*.hs.test,DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA testca.pem -CAkey testca.key -CAcreateserial -days 2 \
      -sha256 -extfile server.ext -out server.pem
    cat server.pem testca.pem >server-chain.pem
    chmod 644 ./*.pem ./*.key   # squid and distribution read them as other users; test keys only
  ) >"$WORK/logs/certs.log" 2>&1 || die "openssl failed: $(tail_msg "$WORK/logs/certs.log" 5)"
}

UP_HTTP2=${UP_HTTP2-on}
declare -A BLOB_HEX=()
make_blob() { # make_blob MIB : random content of MIB MiB, stored under its digest
  local mib=$1 tmp=$WORK/blobs/new.$1 hex
  mkdir -p "$WORK/blobs"
  head -c "$((mib * 1024 * 1024))" /dev/urandom >"$tmp" || die "could not write a $mib MiB blob"
  hex=$(sha256sum "$tmp" | cut -d' ' -f1)
  mv "$tmp" "$WORK/blobs/sha256:$hex"
  BLOB_HEX[$mib]=$hex
  log "blob of $mib MiB: sha256:$hex"
}
blob_path() { # blob_path MIB [REPO] : the registry path of the random blob of MIB MiB
  echo "/v2/${2:-bench}/blobs/sha256:${BLOB_HEX[$1]}"
}

write_hosts() { printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$UP_HOST" >"$WORK/hosts"; }

# with_hosts CMD... : run CMD in a mount namespace of its own whose /etc/hosts is $WORK/hosts, so
# programs that only ask the system resolver (Go, Python) find the test names; /etc is untouched
# (WITH_HOSTS is the same as a command prefix, for spawn)
with_hosts() { "${WITH_HOSTS[@]}" "$@"; }
WITH_HOSTS=(unshare --mount --propagation private -- sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$WORK/hosts")

backdate_fixtures() { # a just-written file's Last-Modified makes squid revalidate; fixtures are old
  find "$WORK/blobs" "$WORK/image" -type f -exec touch -d '3 days ago' {} + 2>/dev/null
  return 0
}

start_nginx() {
  local prefix=$WORK/nginx
  UP_LOG=$WORK/logs/upstream.access.log
  mkdir -p "$prefix/tmp"
  cat >"$WORK/conf/nginx.conf" <<NGINX
user root root;
worker_processes auto;
pid $prefix/nginx.pid;
error_log $WORK/logs/nginx.error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  log_format bench '\$request_method \$uri \$status \$body_bytes_sent \$request_time \$connection \$server_protocol "\$http_user_agent" \$host';
  access_log $UP_LOG bench;
  map \$uri \$bench_rate { ~^/v2/throttled/ $RATE; default 0; }
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$PORT_UP ssl${UP_HTTP2:+ http2};   # UP_HTTP2= (empty) serves HTTP/1.1 only
    server_name $UP_HOST;
    ssl_certificate $CERTS/server-chain.pem;
    ssl_certificate_key $CERTS/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 10000;
    add_header Docker-Distribution-Api-Version registry/2.0 always;
    location = /v2/ {
      default_type application/json;
      return 200 '{}';
    }
    # workloads' own locations first: their regex locations win over the generic blob one below
    include $WORK/conf/nginx.d/*.locations;
    location ~ "^/v2/[a-z0-9/]+/blobs/(sha256:[0-9a-f]{64})\$" {
      alias $WORK/blobs/\$1;
      add_header Docker-Distribution-Api-Version registry/2.0 always;
      add_header Docker-Content-Digest \$1 always;
      limit_rate \$bench_rate;
    }
    location / { return 404; }
  }
  include $WORK/conf/nginx.d/*.servers;
}
NGINX
  nginx -t -e "$WORK/logs/nginx.error.log" -c "$WORK/conf/nginx.conf" >"$WORK/logs/nginx.test.log" 2>&1 \
    || die "nginx config: $(tail_msg "$WORK/logs/nginx.test.log" 3)"
  spawn nginx "$WORK/logs/nginx.stdout.log" \
    nginx -e "$WORK/logs/nginx.error.log" -c "$WORK/conf/nginx.conf" -g 'daemon off;'
  wait_for 20 "nginx on :$PORT_UP" curl -sf --noproxy '*' --cacert "$CERTS/testca.pem" \
    --resolve "$UP_HOST:$PORT_UP:127.0.0.1" "https://$UP_HOST:$PORT_UP/v2/" \
    || die "nginx did not start: $(tail_msg "$WORK/logs/nginx.error.log" 3)"
}

upstream_lines() { wc -l <"$UP_LOG" 2>/dev/null || echo 0; }

# upstream_flush : asks nginx for a marker path and waits until its access log shows it. nginx
# logs a request when it ends, so every request before the marker is in the log once the marker
# is (instead of sleeping and hoping); the counts below skip marker lines. Fails the measurement
# when nginx does not log the marker within 10 s.
upstream_flush() {
  local id="pantry-marker-$$-$RANDOM$RANDOM" end=$((SECONDS + 10))
  curl -s -o /dev/null --noproxy '*' --max-time 5 --cacert "$CERTS/testca.pem" \
    --resolve "$UP_HOST:$PORT_UP:127.0.0.1" "https://$UP_HOST:$PORT_UP/v2/$id/tags/list"
  until grep -q "$id" "$UP_LOG" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do sleep 0.05; done
  grep -q "$id" "$UP_LOG" 2>/dev/null && return 0
  failed upstream "nginx did not log the marker request within 10 s: upstream counts may lag"
  return 1
}

# upstream_since LINE : "BLOB_GETS BODY_BYTES SLOWEST OTHER" for the log lines after LINE: blob GETs,
# body bytes sent, the longest blob GET in seconds, and the other requests as METHOD-path-status=N,...
upstream_since() {
  tail -n +"$(($1 + 1))" "$UP_LOG" | awk '
    $2 ~ /pantry-marker-/ { next }
    $1 == "GET" && $2 ~ /\/blobs\/sha256:/ { gets++; if ($5 > slowest) slowest = $5 }
    { bytes += $4 }
    !($1 == "GET" && $2 ~ /\/blobs\/sha256:/) {
      k = $1 ($2 ~ /\/blobs\// ? "-blob" : ($2 == "/v2/" ? "-/v2/" : "-other")) "-" $3; other[k]++ }
    END {
      s = ""; for (k in other) s = s (s == "" ? "" : ",") k "=" other[k]
      printf "%d %.0f %.3f %s\n", gets, bytes, slowest, (s == "" ? "-" : s) }'
}

# upstream_requests_since LINE : "REQUESTS BODY_BYTES KINDS": every request logged after LINE, the
# body bytes sent and METHOD-kind-status=N,... (kind: blob, manifest, /v2/ or other)
upstream_requests_since() {
  tail -n +"$(($1 + 1))" "$UP_LOG" | awk '
    $2 ~ /pantry-marker-/ { next }
    { n++; bytes += $4
      k = $1 ($2 ~ /\/blobs\// ? "-blob" : ($2 ~ /\/manifests\// ? "-manifest" : ($2 == "/v2/" ? "-/v2/" : "-other"))) "-" $3
      kinds[k]++ }
    END {
      s = ""; for (k in kinds) s = s (s == "" ? "" : ",") k "=" kinds[k]
      printf "%d %.0f %s\n", n, bytes, (s == "" ? "-" : s) }'
}
