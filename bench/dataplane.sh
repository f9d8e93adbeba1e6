#!/usr/bin/env bash
# Data-plane benchmark: small-UDP packets per second and new TCP connections per second
# through (a) plain kernel IPv4 forwarding (the ceiling), (b) nftables DNAT (what kube-proxy's
# nftables mode does), (c) rvs (TUN data plane, NAT), on one namespace topology, in one run.
#
#   gen (client) ── lb (forwarder / nft DNAT / rvs daemon) ── be (real server)
#
# Usage (as root):  bench/dataplane.sh [SECONDS]        (default 5 s per measurement)
#   RVS_OUTPUT=MODE  dataplane.output of rvs: packet (the bench's default), raw or tun
#   BENCH_PERF=FILE  perf record of the daemon while it forwards UDP
# Needs: iproute2, nftables, apache2-utils (ab), nginx-light, and the rvs binary
# (target/release/rvs, built if missing; or RVS=/path/to/rvs).
#
# UDP: `rvs lab udpflood` sends 18-byte payloads (46-byte IP packets) over 64 flows with
# sendmmsg from `gen`; they are counted on arrival at `be`'s interface (rx_packets) and
# dropped there cheaply: they are addressed to 10.2.1.99, a static neighbour entry on `lb`
# that resolves to `be`'s MAC address, and `be` does not forward. Every path is measured with
# the same generator on the same two cores, so the numbers include the generator's CPU.
# TCP: ApacheBench (`ab`, HTTP/1.0, one request per connection, concurrency 32) against
# nginx on `be`; connections per second = ab's requests per second. Each path uses its own
# server port (80, 81, 82), so no phase meets the TIME_WAIT sockets of another on `be`.
set -euo pipefail
SECS=${1:-5}
cd "$(dirname "$0")/.."
RVS=${RVS:-target/release/rvs}
if [ ! -x "$RVS" ]; then cargo build --release -q -p rvs; fi
RVS=$(readlink -f "$RVS")
for t in ip nft ab nginx; do command -v $t >/dev/null || { echo "missing: $t" >&2; exit 2; }; done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

P=rvsb$$
GEN=$P-gen LB=$P-lb BE=$P-be
DIR=$(mktemp -d /tmp/rvs-bench.XXXXXX)
DAEMON=""
NGINX=""
cleanup() {
	if [ -n "$DAEMON" ]; then kill -TERM "$DAEMON" 2>/dev/null || true; sleep 0.5; fi
	if [ -n "$NGINX" ]; then kill -TERM "$NGINX" 2>/dev/null || true; fi
	for n in $GEN $LB $BE; do ip netns del $n 2>/dev/null || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT
x() { ip netns exec "$@"; }

for n in $GEN $LB $BE; do ip netns add $n; ip -n $n link set lo up; done
ip -n $GEN link add g0 type veth peer name l0 netns $LB
ip -n $LB link add l1 type veth peer name e0 netns $BE
ip -n $GEN addr add 10.1.0.2/24 dev g0; ip -n $GEN link set g0 up
ip -n $GEN route add default via 10.1.0.1
ip -n $LB addr add 10.1.0.1/24 dev l0; ip -n $LB link set l0 up
ip -n $LB addr add 10.2.1.1/24 dev l1; ip -n $LB link set l1 up
ip -n $BE addr add 10.2.1.2/24 dev e0; ip -n $BE link set e0 up
ip -n $BE route add default via 10.2.1.1
x $LB sysctl -qw net.ipv4.ip_forward=1
x $BE sysctl -qw net.ipv4.ip_forward=0
x $GEN sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
x $BE sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
BE_MAC=$(ip -n $BE -o link show e0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip -n $LB neigh add 10.2.1.99 lladdr "$BE_MAC" dev l1 nud permanent

# nginx on be: one worker, answers every request with a short body.
cat >"$DIR/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $DIR/nginx.pid;
error_log $DIR/nginx.err; worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http { access_log off; keepalive_timeout 0;
  server { listen 80 backlog=4096 reuseport; listen 81 backlog=4096 reuseport;
    listen 82 backlog=4096 reuseport; location / { return 200 "be\n"; } } }
EOF
ip netns exec $BE nginx -c "$DIR/nginx.conf" -p "$DIR" &
NGINX=$!
sleep 0.5

rx() { x $BE cat /sys/class/net/e0/statistics/rx_packets; }
udp_pps() { # $1 = destination ip
	local a b out
	a=$(rx)
	out=$(x $GEN "$RVS" lab udpflood --dst "$1:9" --flows 64 --seconds "$SECS")
	sleep 0.2
	b=$(rx)
	echo "  udpflood: $out" >&2
	echo $(((b - a) * 1000 / (SECS * 1000)))
}
tcp_cps() { # $1 = destination ip:port
	local out
	out=$(x $GEN ab -q -r -s 5 -t "$SECS" -n 10000000 -c 32 "http://$1/" 2>&1 || true)
	echo "$out" | awk '/Requests per second/ {printf "%d\n", $4}' | grep . || { echo "$out" | tail -5 >&2; echo 0; }
}

echo "== (a) kernel forwarding (no NAT)" >&2
FWD_PPS=$(udp_pps 10.2.1.99)
FWD_CPS=$(tcp_cps 10.2.1.2:80)

echo "== (c) rvs (TUN, NAT)" >&2
cat >"$DIR/rvs.toml" <<EOF
[engine]
profile = "safe"
conn_max = 1048576
[dataplane]
admin_socket = "$DIR/rvs.sock"
http_listen = "127.0.0.1:9180"
tun_addrs = ["10.255.255.1/24"]
output = "${RVS_OUTPUT:-packet}"
[[service]]
proto = "udp"
vip = "10.0.0.100"
port = 9
scheduler = "rr"
[[service.real_server]]
addr = "10.2.1.99"
forward = "masq"
[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 81
scheduler = "rr"
[[service.real_server]]
addr = "10.2.1.2"
forward = "masq"
EOF
ip netns exec $LB "$RVS" daemon --config "$DIR/rvs.toml" 2>"$DIR/rvs.log" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$DIR/rvs.sock" ] && break; sleep 0.05; done
sleep 0.3
PERF=""
if [ -n "${BENCH_PERF:-}" ]; then # a profile of the daemon while it forwards UDP
	(sleep 1; perf record -g -o "${BENCH_PERF}" -p "$DAEMON" -- sleep 2 >/dev/null 2>&1) &
	PERF=$!
fi
RVS_PPS=$(udp_pps 10.0.0.100)
[ -n "$PERF" ] && wait "$PERF"
if command -v curl >/dev/null; then
	x $LB curl -s http://127.0.0.1:9180/metrics | grep -E '^rvs_dataplane_(received_packets|read_batches|sent_packets|sent_frames|dropped_packets_total\{reason="write)' >&2 || true
fi
RVS_CPS=$(tcp_cps 10.0.0.100:81)
RVS_SOCKET="$DIR/rvs.sock" "$RVS" adm -L -n --stats >&2 || true
kill -TERM $DAEMON; wait $DAEMON 2>/dev/null || true; DAEMON=""; [ -n "${BENCH_LOG:-}" ] && cp "$DIR/rvs.log" "$BENCH_LOG"

echo "== (b) nftables DNAT (conntrack)" >&2
x $LB nft -f - <<EOF
table ip bench {
  chain pre { type nat hook prerouting priority dstnat;
    ip daddr 10.0.0.200 udp dport 9 dnat to 10.2.1.99
    ip daddr 10.0.0.200 tcp dport 82 dnat to 10.2.1.2
  }
}
EOF
ip -n $GEN route add 10.0.0.200/32 via 10.1.0.1 2>/dev/null || true
NFT_PPS=$(udp_pps 10.0.0.200)
NFT_CPS=$(tcp_cps 10.0.0.200:82)
x $LB nft delete table ip bench

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\n%-28s %14s %16s\n' "path" "UDP pkts/s" "new TCP conns/s"
printf '%-28s %14s %16s\n' "(a) kernel forwarding" "$FWD_PPS" "$FWD_CPS"
printf '%-28s %14s %16s\n' "(b) nftables DNAT" "$NFT_PPS" "$NFT_CPS"
printf '%-28s %14s %16s\n' "(c) rvs (TUN, NAT)" "$RVS_PPS" "$RVS_CPS"
printf '%-28s %14s %16s\n' "rvs / nft" "$(ratio "$RVS_PPS" "$NFT_PPS")" "$(ratio "$RVS_CPS" "$NFT_CPS")"
printf '%-28s %14s %16s\n' "nft / fwd" "$(ratio "$NFT_PPS" "$FWD_PPS")" "$(ratio "$NFT_CPS" "$FWD_CPS")"
