# shellcheck shell=bash
# Installs the suite's tools from Debian 12's archive (root, no prompts: CI runs it with stdin
# closed on a fresh machine). Skips apt when all are present.

INTEROP_PKGS=(docker-registry skopeo nginx-light podman containerd docker.io apache2-utils openssl curl
  ca-certificates python3 python3-jwt python3-cryptography iproute2 uidmap util-linux coreutils nftables
  buildah chromium)

OWN_POLICY_RC=   # set while /usr/sbin/policy-rc.d is ours; run.sh's exit trap removes it
remove_policy_rc() {
  [ -n "$OWN_POLICY_RC" ] && rm -f /usr/sbin/policy-rc.d
  OWN_POLICY_RC=
  return 0
}

# playwright-core (npm, pinned by browser/package-lock.json) drives chromium for the status-page row
install_browser_driver() {
  local dir=$INTEROP_DIR/browser
  [ -d "$dir/node_modules/playwright-core" ] && return 0
  if ! command -v npm >/dev/null; then   # Node.js drives chromium for the status-page row
    [ "$(id -u)" = 0 ] || die "npm is missing; run as root so the suite can apt-get nodejs and npm"
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y nodejs npm \
      </dev/null >>"$WORK/apt.log" 2>&1 || die "apt-get install npm failed: $(tail_msg "$WORK/apt.log" 3)"
  fi
  log "installing playwright-core with npm ci; output in $WORK/npm.log"
  (cd "$dir" && npm ci --no-audit --no-fund) </dev/null >"$WORK/npm.log" 2>&1 \
    || die "npm ci failed: $(tail_msg "$WORK/npm.log" 3)"
}

install_deps() {
  local missing=() cmd
  for cmd in docker-registry skopeo nginx podman containerd ctr dockerd docker htpasswd openssl curl \
    setsid timeout nft buildah chromium; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  "$PY" -c 'import jwt, cryptography' 2>/dev/null || missing+=(python3-jwt)
  [ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  if [ "${#missing[@]}" -eq 0 ]; then
    log "tools present"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root so the suite can apt-get install them"
  command -v apt-get >/dev/null || die "missing ${missing[*]}, and no apt-get to install them (the suite expects Debian 12)"
  log "installing with apt-get (missing: ${missing[*]}); output in $WORK/apt.log"
  # Package scripts must not start system services (dockerd, containerd, nginx): the suite runs
  # its own private instances. A policy-rc.d that says 101 prevents that; ours is removed afterwards.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && OWN_POLICY_RC=1
  fi
  # never ask: no debconf questions, keep existing config files, wait (not fail) for a dpkg lock
  # that e.g. unattended-upgrades holds on a machine that has just booted
  local apt=(apt-get -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)
  { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update \
    && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "${INTEROP_PKGS[@]}"; } </dev/null >"$WORK/apt.log" 2>&1
  local rc=$?
  remove_policy_rc
  [ $rc -eq 0 ] || die "apt-get failed: $(tail_msg "$WORK/apt.log" 5)"
  "$PY" -c 'import jwt, cryptography' || die "python3-jwt/python3-cryptography not importable by $PY"
}
