#!/bin/sh
# Transparent mode with nftables: TCP from clients on LAN_IF to the ports in PORTS is redirected to
# pantry's --transparent port on this machine. pantry then reads the original destination
# (SO_ORIGINAL_DST), intercepts the hosts in its intercept list and tunnels the rest untouched.
#
#   LAN_IF=eth1 PORT=3129 sh nftables.sh up      # set up
#   sh nftables.sh down                          # tear down
#
# Run pantry with `--transparent 0.0.0.0:3129` (and `--allow-clients` for the LAN's range), and
# install its CA (`curl http://PANTRY:3128/ca.pem`) on the clients for the intercepted hosts.
# Only traffic arriving on LAN_IF is redirected, so pantry's own upstream connections (which leave
# through the uplink) are never sent back to it; a redirect that loops anyway is refused and logged.
set -eu
LAN_IF=${LAN_IF:-eth1}
PORT=${PORT:-3129}
PORTS=${PORTS:-80, 443}
TABLE=redirect_to_pantry

case "${1:-}" in
up)
    nft -f - <<RULES
table inet $TABLE {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "$LAN_IF" tcp dport { $PORTS } redirect to :$PORT
    }
}
RULES
    echo "redirecting TCP ports { $PORTS } from $LAN_IF to :$PORT"
    ;;
down)
    nft delete table inet "$TABLE"
    echo "removed table inet $TABLE"
    ;;
*)
    echo "usage: [LAN_IF=eth1] [PORT=3129] [PORTS='80, 443'] $0 up|down" >&2
    exit 2
    ;;
esac
