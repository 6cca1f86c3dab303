# shellcheck shell=bash
# containerd 1.6 `ctr images pull` against a private containerd (own root, state, sockets, config;
# CRI and unneeded snapshotters disabled; native snapshotter). ctr itself does the registry
# traffic, so it gets HTTPS_PROXY=pantry; trust via --tlscacert BUNDLE; credentials via --user.
# An empty local store = containerd restarted on a new root. Its sockets live in a short
# /tmp/pantry-interop-containerd.* dir: unix socket paths are limited to 108 bytes, and a CI
# clone's work dir can be deep.

client_containerd() { run_row containerd; }

containerd_start() {
  local d=$WORK/clients/containerd
  CTRD_N=$((CTRD_N + 1))
  CTRD_SOCK=$CTRD_RUN/containerd.sock
  mkdir -p "$d/root$CTRD_N" "$d/state$CTRD_N"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root$CTRD_N"
state = "$d/state$CTRD_N"
plugin_dir = "$d/plugins"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = "$CTRD_RUN/debug.sock"
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
  spawn containerd "$d/containerd$CTRD_N.log" containerd --config "$d/config.toml"
  wait_for 30 "containerd" ctr --address "$CTRD_SOCK" version \
    || { ROW_SETUP_ERROR="containerd did not start: $(tail_msg "$d/containerd$CTRD_N.log" 3)"; return 1; }
}

containerd_setup() {
  # roots are numbered from 1 again: an earlier row's (with its content) must not be reused
  stop_named containerd
  rm -rf "$WORK/clients/containerd"/root* "$WORK/clients/containerd"/state*
  CTRD_N=0
  CTRD_RUN=$(mktemp -d /tmp/pantry-interop-containerd.XXXXXX)
  echo "$CTRD_RUN" >>"$WORK/tmpdirs"
  containerd_start
}

containerd_reset() {
  stop_named containerd
  rm -rf "$WORK/clients/containerd/root$CTRD_N" "$WORK/clients/containerd/state$CTRD_N"
  containerd_start || { log "$ROW_SETUP_ERROR"; return 1; }
  [ -z "$(ctr --address "$CTRD_SOCK" content ls -q 2>/dev/null)" ]
}

containerd_teardown() { stop_named containerd; }

containerd_pull() { # KIND TRUST CREDS OUT LOG
  local kind=$1 trust=$2 creds=$3 logf=$5
  local args=(--platform linux/amd64 --snapshotter native --tlscacert "$(trust_file "$trust")")
  [ "$creds" != none ] && args+=(--user "$REG_USER:$(password_of "$creds")")
  proxy_env timeout "$ROW_TIMEOUT" ctr --address "$CTRD_SOCK" --debug images pull "${args[@]}" \
    "$(image_of "$kind" containerd)" >"$logf" 2>&1
}

containerd_content() {
  echo "blobs $(present_of "$(fixture "$1" containerd blobs)" \
    "$(ctr --address "$CTRD_SOCK" content ls -q 2>/dev/null | tr '\n' ' ')")"
}
