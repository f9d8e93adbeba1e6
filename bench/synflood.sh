#!/usr/bin/env bash
# SYN-flood benchmark (issue 17): new TCP connections per second through a bounded table,
# unflooded, during a spoofed SYN flood that fills the table, and in the first second after it,
# for (b) nftables DNAT (conntrack, nf_conntrack_max = BOUND) and (c) rvs (`safe`,
# conn_max = BOUND), on one namespace topology, in one run.
#
#   gen (client, flood) ── lb (nft DNAT / rvs daemon) ── be (nginx)
#
# Usage (as root):  bench/synflood.sh [SECONDS]   (default 5 s per measurement; about 1.5 min)
#   BOUND=N   table bound of both (default 262144)    RATE=N   flood SYNs/s (default 40000)
#   RVS_OUTPUT=MODE  dataplane.output of rvs (default packet)
# Needs: iproute2, nftables, apache2-utils (ab), nginx-light, and the rvs binary
# (target/release/rvs, built if missing; or RVS=/path/to/rvs).
#
# The flood is `rvs lab synflood` in `gen`: SYNs from random addresses of 10.200.0.0/16 and
# random ports, paced at RATE, to the service. Nothing leaves the lab: `lb` routes
# 10.200.0.0/16 back to `gen`, which does not forward, so the answers die there. The flood
# runs for FILL = BOUND / RATE + 1 s before the measurement (the table is full by then) and
# stops one second after it; then one more second is measured (recovery).
# nf_conntrack_max is global: it is set to BOUND for the run and restored after.
set -euo pipefail
SECS=${1:-5}
BOUND=${BOUND:-262144}
RATE=${RATE:-40000}
cd "$(dirname "$0")/.."
RVS=${RVS:-target/release/rvs}
if [ ! -x "$RVS" ]; then cargo build --release -q -p rvs; fi
RVS=$(readlink -f "$RVS")
for t in ip nft ab nginx; do command -v $t >/dev/null || { echo "missing: $t" >&2; exit 2; }; done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
FILL=$((BOUND / RATE + 1))
FLOOD_SECS=$((FILL + SECS + 1))

P=rvss$$
GEN=$P-gen LB=$P-lb BE=$P-be
DIR=$(mktemp -d /tmp/rvs-synbench.XXXXXX)
DAEMON="" NGINX="" FLOOD="" CT_MAX_OLD=""
cleanup() {
	if [ -n "$FLOOD" ]; then kill -TERM "$FLOOD" 2>/dev/null || true; fi
	if [ -n "$DAEMON" ]; then kill -TERM "$DAEMON" 2>/dev/null || true; sleep 0.5; fi
	if [ -n "$NGINX" ]; then kill -TERM "$NGINX" 2>/dev/null || true; fi
	for n in $GEN $LB $BE; do ip netns del $n 2>/dev/null || true; done
	if [ -n "$CT_MAX_OLD" ]; then sysctl -qw net.netfilter.nf_conntrack_max="$CT_MAX_OLD" || true; fi
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
# The spoofed sources' answers go back to gen and die there (gen does not forward).
ip -n $LB route add 10.200.0.0/16 via 10.1.0.2 dev l0
x $LB sysctl -qw net.ipv4.ip_forward=1
x $GEN sysctl -qw net.ipv4.ip_forward=0
x $BE sysctl -qw net.ipv4.ip_forward=0
x $GEN sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
x $BE sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096 net.ipv4.tcp_syncookies=1

cat >"$DIR/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $DIR/nginx.pid;
error_log $DIR/nginx.err; worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http { access_log off; keepalive_timeout 0;
  server { listen 81 backlog=4096 reuseport; listen 82 backlog=4096 reuseport;
    location / { return 200 "be\n"; } } }
EOF
ip netns exec $BE nginx -c "$DIR/nginx.conf" -p "$DIR" &
NGINX=$!
sleep 0.5

tcp_cps() { # $1 = destination ip:port, $2 = seconds; prints "cps failed"
	local out
	out=$(x $GEN ab -q -r -s 5 -t "$2" -n 10000000 -c 32 "http://$1/" 2>&1 || true)
	echo "$out" | awk '/Requests per second/ {r=$4} /Failed requests/ {f=$3} /Non-2xx/ {f+=$3}
		END { printf "%d %d\n", r, f }'
}
flood_start() { # $1 = destination ip:port
	x $GEN "$RVS" lab synflood --dst "$1" --src-prefix 10.200.0.0/16 --rate "$RATE" \
		--seconds "$FLOOD_SECS" >"$DIR/flood.out" 2>&1 &
	FLOOD=$!
}
flood_wait() { wait "$FLOOD" 2>/dev/null || true; FLOOD=""; echo "  flood: $(cat "$DIR/flood.out")" >&2; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Three measurements against one target: unflooded, flooded (table full), first second after.
measure() { # $1 = ip:port; sets U F A (cps) and UF FF AF (failed)
	read -r U UF < <(tcp_cps "$1" "$SECS")
	flood_start "$1"
	sleep "$FILL"
	[ -n "${ON_FULL:-}" ] && $ON_FULL
	read -r F FF < <(tcp_cps "$1" "$SECS")
	[ -n "${ON_FLOOD:-}" ] && $ON_FLOOD
	flood_wait
	read -r A AF < <(tcp_cps "$1" 1)
}

echo "== (c) rvs (safe, conn_max = $BOUND)" >&2
cat >"$DIR/rvs.toml" <<EOF
[engine]
profile = "safe"
conn_max = $BOUND
[dataplane]
admin_socket = "$DIR/rvs.sock"
http_listen = "127.0.0.1:9180"
tun_addrs = ["10.255.255.1/24"]
output = "${RVS_OUTPUT:-packet}"
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
RSS0=$(rss $DAEMON) RSS_MAX=0
rvs_full() { echo "  table full: $(RVS_SOCKET="$DIR/rvs.sock" "$RVS" adm --table | head -1)" >&2; }
rvs_flood() {
	RSS_MAX=$(rss $DAEMON)
	echo "  TUN queue drops (rvs0 tx_dropped): $(x $LB cat /sys/class/net/rvs0/statistics/tx_dropped)" >&2
	echo "  daemon CPU (utime+stime ticks): $(awk '{print $14+$15}' /proc/$DAEMON/stat)" >&2
	RVS_SOCKET="$DIR/rvs.sock" "$RVS" adm --table | sed 's/^/  /' >&2
}
ON_FULL=rvs_full ON_FLOOD=rvs_flood measure 10.0.0.100:81
RVS_U=$U RVS_F=$F RVS_A=$A RVS_FAIL="$UF/$FF/$AF"
x $LB curl -s http://127.0.0.1:9180/metrics | grep -E '^rvs_(evictions_total|drops_total\{reason="table_full"|connection_table_full_total|half_open_expired)' | sed 's/^/  /' >&2 || true
kill -TERM $DAEMON; wait $DAEMON 2>/dev/null || true; DAEMON=""

echo "== (b) nftables DNAT (conntrack, nf_conntrack_max = $BOUND)" >&2
CT_MAX_OLD=$(sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null || echo "")
x $LB nft -f - <<EOF
table ip bench {
  chain pre { type nat hook prerouting priority dstnat;
    ip daddr 10.0.0.200 tcp dport 82 dnat to 10.2.1.2
  }
}
EOF
[ -n "$CT_MAX_OLD" ] && sysctl -qw net.netfilter.nf_conntrack_max="$BOUND"
ip -n $GEN route add 10.0.0.200/32 via 10.1.0.1 2>/dev/null || true
nft_full() { echo "  conntrack entries: $(x $LB cat /proc/sys/net/netfilter/nf_conntrack_count)" >&2; }
ON_FULL=nft_full ON_FLOOD=nft_full measure 10.0.0.200:82
NFT_U=$U NFT_F=$F NFT_A=$A NFT_FAIL="$UF/$FF/$AF"
x $LB nft delete table ip bench

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\nnew TCP connections/s, table bound %d, spoofed SYN flood %d/s (ab -c 32, %d s; after: 1 s)\n' "$BOUND" "$RATE" "$SECS"
printf '%-34s %10s %10s %10s %10s %10s %14s\n' "path" "unflooded" "flooded" "after" "flood/un" "after/un" "failed u/f/a"
printf '%-34s %10s %10s %10s %10s %10s %14s\n' "(b) nftables DNAT (conntrack)" "$NFT_U" "$NFT_F" "$NFT_A" "$(ratio "$NFT_F" "$NFT_U")" "$(ratio "$NFT_A" "$NFT_U")" "$NFT_FAIL"
printf '%-34s %10s %10s %10s %10s %10s %14s\n' "(c) rvs (safe)" "$RVS_U" "$RVS_F" "$RVS_A" "$(ratio "$RVS_F" "$RVS_U")" "$(ratio "$RVS_A" "$RVS_U")" "$RVS_FAIL"
printf 'rvs daemon RSS: %d KiB idle, %d KiB with the table full (bound: conn_max x 64 B = %d KiB of IPv4 entries)\n' \
	"$RSS0" "$RSS_MAX" $((BOUND * 64 / 1024))
