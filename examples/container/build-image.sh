#!/usr/bin/env bash
# Builds pantry's container image with no registry access: buildah assembles it from `scratch`
# with the release binary, the shared libraries it links (as ldd lists them), the system's CA
# roots and an unprivileged user, and writes it as a docker-archive that `docker load` and
# `podman load` read.
#
# usage: examples/container/build-image.sh [--binary PATH] [--out FILE] [--tag NAME]
#
#   --binary  the pantry binary to put in (default: `cargo build --release --locked`, then
#             target/release/pantry)
#   --out     where to write the archive (default: target/pantry-image.tar)
#   --tag     the image's name in the archive (default: pantry:latest)
#
# Needs buildah (Debian: apt-get install buildah) and root (or a user with subordinate ids: the
# script then runs itself under `buildah unshare`); it keeps buildah's storage in a temporary
# directory of its own and removes it afterwards.
#
# The image: user 65532:65532, entrypoint /usr/local/bin/pantry, proxy on 0.0.0.0:3128, admin
# port on 127.0.0.1:9090 (inside the container: the health check asks it; set PANTRY_ADMIN_LISTEN
# and admin_token_file to reach the status page from outside), cache in /var/cache/pantry and the
# CA in /var/lib/pantry/certs (volumes), health check `pantry healthcheck`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BINARY="" OUT=$ROOT/target/pantry-image.tar TAG=pantry:latest
while [ $# -gt 0 ]; do
  case $1 in
    --binary) BINARY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v buildah >/dev/null || { echo "buildah is missing: apt-get install buildah" >&2; exit 1; }
# Files owned by pantry's user need root, or a user namespace that maps it (rootless buildah).
if [ "$(id -u)" != 0 ] && [ -z "${BUILDAH_ISOLATION_DONE:-}" ]; then
  BUILDAH_ISOLATION_DONE=1 exec buildah unshare bash "$0" "$@"
fi
if [ -z "$BINARY" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin pantry)
  BINARY=$ROOT/target/release/pantry
fi
[ -x "$BINARY" ] || { echo "$BINARY is not an executable" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pantry-image.XXXXXX")
export BUILDAH_FORMAT=docker   # the docker format keeps HEALTHCHECK (OCI has none)
B=(buildah --root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
CTR=""
cleanup() {
  [ -n "$CTR" ] && "${B[@]}" rm "$CTR" >/dev/null 2>&1
  "${B[@]}" rmi -af >/dev/null 2>&1
  rm -rf "$WORK" 2>/dev/null || { chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; }
}
trap cleanup EXIT

# The root file system: the binary, what it links, CA roots, users, name lookup.
FS=$WORK/rootfs
install -D -m 0755 "$BINARY" "$FS/usr/local/bin/pantry"
strip "$FS/usr/local/bin/pantry" 2>/dev/null || true
ldd "$BINARY" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r lib; do
  install -D -m 0755 "$(readlink -f "$lib")" "$FS$lib"
done
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$FS/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$FS/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\npantry:x:65532:65532:pantry:/var/lib/pantry:/sbin/nologin\n' >"$FS/etc/passwd"
printf 'root:x:0:\npantry:x:65532:\n' >"$FS/etc/group"
printf 'hosts: files dns\n' >"$FS/etc/nsswitch.conf"
install -d -m 1777 "$FS/tmp"
install -d -m 0755 "$FS/etc/pantry" "$FS/var/cache" "$FS/var/lib/pantry"
# The two directories pantry writes to (the volumes), private to its user; their parents stay root's.
install -d -m 0700 "$FS/var/cache/pantry" "$FS/var/lib/pantry/certs"

chown 65532:65532 "$FS/var/cache/pantry" "$FS/var/lib/pantry/certs"

CTR=$("${B[@]}" from scratch)
MNT=$("${B[@]}" mount "$CTR")
cp -a "$FS/." "$MNT/"
"${B[@]}" umount "$CTR" >/dev/null
VERSION=$("$BINARY" --version | awk '{ print $2 }')
"${B[@]}" config \
  --user 65532:65532 \
  --workingdir /var/lib/pantry \
  --entrypoint '["/usr/local/bin/pantry"]' \
  --cmd run \
  --env PANTRY_LISTEN=0.0.0.0:3128 \
  --env PANTRY_ADMIN_LISTEN=127.0.0.1:9090 \
  --env PANTRY_CACHE_DIR=/var/cache/pantry \
  --env PANTRY_CERTS_DIR=/var/lib/pantry/certs \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --port 3128 \
  --volume /var/cache/pantry \
  --volume /var/lib/pantry/certs \
  --stop-signal SIGTERM \
  --healthcheck 'CMD /usr/local/bin/pantry healthcheck' \
  --healthcheck-interval 30s --healthcheck-timeout 6s --healthcheck-retries 3 \
  --label org.opencontainers.image.title=pantry \
  --label "org.opencontainers.image.version=$VERSION" \
  --label org.opencontainers.image.description="a forward HTTPS proxy that caches container images" \
  "$CTR"
"${B[@]}" commit --quiet --format docker --rm "$CTR" "$TAG" >/dev/null
CTR=""
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
"${B[@]}" push --quiet "$TAG" "docker-archive:$OUT:$TAG"
echo "wrote $OUT ($TAG, pantry $VERSION, $(du -h "$OUT" | cut -f1))"
