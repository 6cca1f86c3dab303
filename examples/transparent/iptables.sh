#!/bin/sh
# Transparent mode with iptables and ip6tables: TCP from clients on LAN_IF to the ports in PORTS
# is redirected to pantry's --transparent port on this machine (see nftables.sh for the same with
# nftables, and what pantry does with the connections).
#
#   LAN_IF=eth1 PORT=3129 sh iptables.sh up      # set up
#   sh iptables.sh down                          # tear down
#
# Only traffic arriving on LAN_IF is redirected, so pantry's own upstream connections are never
# sent back to it; a redirect that loops anyway is refused and logged.
set -eu
LAN_IF=${LAN_IF:-eth1}
PORT=${PORT:-3129}
PORTS=${PORTS:-80,443}
CHAIN=PANTRY_TRANSPARENT

tables() {
    command -v ip6tables >/dev/null && echo iptables ip6tables || echo iptables
}

case "${1:-}" in
up)
    for t in $(tables); do
        $t -t nat -N "$CHAIN"
        $t -t nat -A "$CHAIN" -p tcp -m multiport --dports "$PORTS" -j REDIRECT --to-ports "$PORT"
        $t -t nat -A PREROUTING -i "$LAN_IF" -j "$CHAIN"
    done
    echo "redirecting TCP ports $PORTS from $LAN_IF to :$PORT"
    ;;
down)
    for t in $(tables); do
        $t -t nat -D PREROUTING -i "$LAN_IF" -j "$CHAIN" || true
        $t -t nat -F "$CHAIN" || true
        $t -t nat -X "$CHAIN" || true
    done
    echo "removed chain $CHAIN"
    ;;
*)
    echo "usage: [LAN_IF=eth1] [PORT=3129] [PORTS=80,443] $0 up|down" >&2
    exit 2
    ;;
esac
