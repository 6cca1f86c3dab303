# shellcheck shell=bash
# Debian's nginx as a Docker-Hub-like front plus CDN stand-in:
#   registry.test:$PORT_ANON  every request proxied to the anonymous distribution, except
#                             `GET /v2/NAME/blobs/sha256:HEX`, answered `307 Location:
#                             https://cdn.test:$PORT_CDN/blobs/sha256/HEX/data?expires=...`
#   cdn.test:$PORT_CDN        serves that path straight from the anonymous registry's storage dir
# Access logs: logs/nginx-front.access.log and logs/nginx-cdn.access.log, one request a line:
#   ADDR [TIME] "METHOD URI PROTO" STATUS BYTES auth=yes|no ua="..."
# CDN_LIMIT_RATE (e.g. 2m) throttles the CDN per connection.

start_nginx() {
  local prefix=$WORK/nginx storage=$WORK/storage/anon/docker/registry/v2/blobs/sha256
  mkdir -p "$prefix/tmp" "$storage"
  cat >"$WORK/conf/nginx.conf" <<EOF
user root root;
worker_processes 1;
pid $prefix/nginx.pid;
error_log $WORK/logs/nginx.error.log warn;
events { worker_connections 512; }
http {
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  map \$http_authorization \$auth_present { "" no; default yes; }
  log_format interop '\$remote_addr [\$time_iso8601] "\$request_method \$request_uri \$server_protocol" '
                     '\$status \$body_bytes_sent auth=\$auth_present ua="\$http_user_agent"';
  ssl_certificate $CERTS/server-chain.pem;
  ssl_certificate_key $CERTS/server.key;
  server {
    listen 127.0.0.1:$PORT_ANON ssl http2;
    server_name $REG_HOST;
    access_log $WORK/logs/nginx-front.access.log interop;
    client_max_body_size 0;
    # the status-page row's throttled fetch: any blob of the storage, slowly, via the CDN's /slow/
    location ~ "^/v2/slow/.+/blobs/sha256:([0-9a-f]{64})\$" {
      return 307 https://$CDN_HOST:$PORT_CDN/slow/blobs/sha256/\$1/data;
    }
    location ~ "^/v2/.+/blobs/sha256:([0-9a-f]{64})\$" {
      set \$hex \$1;
      if (\$request_method = GET) {
        return 307 https://$CDN_HOST:$PORT_CDN/blobs/sha256/\$hex/data?expires=4102444800&sig=interop;
      }
      proxy_pass https://127.0.0.1:$PORT_ANON_BACKEND;
      proxy_set_header Host \$http_host;
      proxy_ssl_trusted_certificate $CERTS/testca.pem;
    }
    location / {
      proxy_pass https://127.0.0.1:$PORT_ANON_BACKEND;
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-Proto https;
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
  server {
    listen 127.0.0.1:$PORT_CDN ssl http2;
    server_name $CDN_HOST;
    access_log $WORK/logs/nginx-cdn.access.log interop;
    default_type application/octet-stream;
    location ~ "^/blobs/sha256/([0-9a-f]{2})([0-9a-f]{62})/data\$" {
      alias $storage/\$1/\$1\$2/data;
      limit_rate ${CDN_LIMIT_RATE:-0};
    }
    location ~ "^/slow/blobs/sha256/([0-9a-f]{2})([0-9a-f]{62})/data\$" {
      alias $storage/\$1/\$1\$2/data;
      limit_rate 256k;
    }
    location / { return 404; }
  }
}
EOF
  nginx -t -e "$WORK/logs/nginx.error.log" -c "$WORK/conf/nginx.conf" >"$WORK/logs/nginx.test.log" 2>&1 \
    || die "nginx config: $(tail_msg "$WORK/logs/nginx.test.log" 3)"
  spawn nginx "$WORK/logs/nginx.stdout.log" \
    nginx -e "$WORK/logs/nginx.error.log" -c "$WORK/conf/nginx.conf" -g 'daemon off;'
  wait_for 20 "nginx on :$PORT_ANON" \
    curl -sf --cacert "$CERTS/testca.pem" --resolve "$REG_HOST:$PORT_ANON:127.0.0.1" \
    "https://$REG_HOST:$PORT_ANON/v2/" || die "nginx did not start: $(tail_msg "$WORK/logs/nginx.error.log" 3)"
}
