# shellcheck shell=bash
# Installs the suite's tools from Debian 12's archive (root). Skips apt when all are present.

INTEROP_PKGS=(docker-registry skopeo nginx-light podman containerd docker.io apache2-utils openssl curl
  python3 python3-jwt python3-cryptography iproute2 uidmap)

install_deps() {
  local missing=() cmd
  for cmd in docker-registry skopeo nginx podman containerd ctr dockerd htpasswd openssl curl; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  "$PY" -c 'import jwt, cryptography' 2>/dev/null || missing+=(python3-jwt)
  if [ "${#missing[@]}" -eq 0 ]; then
    log "tools present"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root so the suite can apt-get install them"
  log "installing (missing: ${missing[*]})"
  # Package scripts must not start system services (dockerd, containerd, nginx): the suite runs
  # its own private instances. A policy-rc.d that says 101 prevents that; ours is removed afterwards.
  local own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q "${INTEROP_PKGS[@]}"; } \
    >"$WORK/apt.log" 2>&1
  local rc=$?
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || die "apt-get failed: $(tail_msg "$WORK/apt.log" 5)"
  "$PY" -c 'import jwt, cryptography' || die "python3-jwt/python3-cryptography not importable by $PY"
}
