# shellcheck shell=bash
# image: pantry's container image, as a user runs it. examples/container/build-image.sh builds it
# from the suite's binary (buildah, from scratch, no registry); the private dockerd loads it and
# runs it with a named volume for the cache and the suite's CA (copied, owned by the image's
# user), on the host's network (the suite's dockerd has no bridge) at ports of its own; that same
# dockerd then pulls through the container. Checks: image-build (built, loaded, under 40 MiB),
# image-user (configured and running as a non-root user), image-health (its HEALTHCHECK reports
# healthy), image-pull and image-repull (the second pull into an emptied image store costs the
# registry no blob GET), image-stop (`docker stop` ends it cleanly within the grace period).

PORT_IMAGE=${PORT_IMAGE:-13129}        # the container's proxy port
PORT_IMAGE_ADMIN=${PORT_IMAGE_ADMIN:-13190}
IMAGE_MAX_BYTES=$((40 * 1024 * 1024))
IMAGE_STOP_GRACE=20

client_image() {
  local r=image dir=$WORK/clients/image suite_addr=$PANTRY_ADDR
  mkdir -p "$dir"
  local t0=$SECONDS
  if ! "$REPO_ROOT/examples/container/build-image.sh" --binary "$PANTRY_BIN" --out "$dir/pantry.tar" \
    >"$dir/build.log" 2>&1; then
    fail_rest "$r" "build-image.sh failed: $(tail_msg "$dir/build.log" 3)"
    return
  fi
  log "image built in $((SECONDS - t0)) s: $(tail -1 "$dir/build.log")"
  # the container's copy of the suite's CA (so the suite's trust files hold), owned by its user
  rm -rf "$dir/certs" && cp -a "$WORK/pantry-certs" "$dir/certs" && chown -R 65532:65532 "$dir/certs"
  install -m 0644 "$CERTS/testca.pem" "$dir/testca.pem"
  PANTRY_ADDR=127.0.0.1:$PORT_IMAGE   # the dockerd below pulls through the container
  DOCKER_N=0
  if ! docker_start pantry; then
    PANTRY_ADDR=$suite_addr
    fail_rest "$r" "${ROW_SETUP_ERROR:-dockerd did not start}"
    return
  fi
  image_checks "$r" "$dir"
  docker_cli rm -f pantry >/dev/null 2>&1
  docker_stop
  PANTRY_ADDR=$suite_addr
}

image_checks() { # image_checks ROW DIR
  local r=$1 dir=$2 size user uid state
  if ! docker_cli timeout 120 load -i "$dir/pantry.tar" >"$dir/load.log" 2>&1; then
    fail_rest "$r" "docker load failed: $(tail_msg "$dir/load.log" 2)"
    return
  fi
  size=$(docker_cli image inspect --format '{{.Size}}' pantry:latest 2>/dev/null)
  if [ -n "$size" ] && [ "$size" -lt "$IMAGE_MAX_BYTES" ]; then
    pass "$r" image-build "built from scratch and loaded: $((size / 1024 / 1024)) MiB ($size bytes)"
  else
    fail "$r" image-build "image size ${size:-unknown} bytes is not under $IMAGE_MAX_BYTES"
  fi
  local args=(run -d --name pantry --network host --health-interval 1s --health-start-period 30s
    -v pantry-cache:/var/cache/pantry -v "$dir/certs:/var/lib/pantry/certs"
    -v "$dir/testca.pem:/etc/pantry/testca.pem:ro"
    -e "PANTRY_LISTEN=127.0.0.1:$PORT_IMAGE" -e "PANTRY_ADMIN_LISTEN=127.0.0.1:$PORT_IMAGE_ADMIN"
    -e PANTRY_UPSTREAM_CA=/etc/pantry/testca.pem)
  # the anonymous registry and the CDN its blob GETs are redirected to
  args+=(-e "PANTRY_INTERCEPT=$REG_HOST:$PORT_ANON,$CDN_HOST:$PORT_CDN"
    -e "PANTRY_RESOLVE=$REG_HOST:$PORT_ANON:127.0.0.1,$CDN_HOST:$PORT_CDN:127.0.0.1" pantry:latest)
  if ! docker_cli timeout 60 "${args[@]}" >"$dir/run.log" 2>&1; then
    fail_rest "$r" "docker run failed: $(tail_msg "$dir/run.log" 2)"
    return
  fi
  local end=$((SECONDS + 60))
  state=$(docker_cli inspect --format '{{.State.Health.Status}}' pantry 2>/dev/null)
  while [ "$state" != healthy ] && [ "$SECONDS" -lt "$end" ]; do
    sleep 0.2
    state=$(docker_cli inspect --format '{{.State.Health.Status}} {{.State.Status}}' pantry 2>/dev/null)
    case $state in *exited*|*dead*) break ;; esac
    state=${state%% *}
  done
  docker_cli logs pantry >"$dir/pantry.log" 2>&1
  if [ "$state" = healthy ]; then
    pass "$r" image-health "docker reports the container healthy (HEALTHCHECK: pantry healthcheck)"
  else
    fail "$r" image-health "health ${state:-unknown} after 60 s: $(tail_msg "$dir/pantry.log" 3)"
  fi
  user=$(docker_cli image inspect --format '{{.Config.User}}' pantry:latest 2>/dev/null)
  uid=$(awk '/^Uid:/ { print $2 }' "/proc/$(docker_cli inspect --format '{{.State.Pid}}' pantry 2>/dev/null)/status" 2>/dev/null)
  if [ "$user" = 65532:65532 ] && [ "$uid" = 65532 ]; then
    pass "$r" image-user "configured user $user; the running process has uid $uid"
  else
    fail "$r" image-user "configured user '${user}', running uid '${uid:-unknown}' (want 65532)"
  fi
  local image
  image=$(image_of anon docker)
  row_pull docker anon pantry none
  pull_matches "$r" image-pull docker anon "docker pulled through pantry running in its container"
  docker_cli rmi -f "$image" >/dev/null 2>&1
  docker_cli image prune -f >/dev/null 2>&1
  if docker_cli image inspect "$image" >/dev/null 2>&1; then
    fail "$r" image-repull "could not remove $image before the second pull"
  else
    repull_costs_no_blob "$r" image-repull docker anon "served from the container's volume"
  fi
  local t0=$SECONDS code
  docker_cli timeout 60 stop -t "$IMAGE_STOP_GRACE" pantry >"$dir/stop.log" 2>&1
  code=$(docker_cli inspect --format '{{.State.ExitCode}}' pantry 2>/dev/null)
  docker_cli logs pantry >"$dir/pantry.log" 2>&1
  if [ "$code" = 0 ] && [ $((SECONDS - t0)) -lt "$IMAGE_STOP_GRACE" ]; then
    pass "$r" image-stop "docker stop: exited 0 after $((SECONDS - t0)) s (SIGTERM handled, grace $IMAGE_STOP_GRACE s)"
  else
    fail "$r" image-stop "docker stop took $((SECONDS - t0)) s, exit code ${code:-unknown}: $(tail_msg "$dir/pantry.log" 2)"
  fi
}
