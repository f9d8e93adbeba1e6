# sched-distribution.sh — which real server each scheduler picks, connection by connection.
#
# One NAT service per scheduler, on VIP:8001, VIP:8002, ... in the order of SCHEDS, each
# with rs1, rs2, rs3 (port 80) added in that order with the weights W.  Per service: N
# sequential connections from the client's first address, then N / NCLIENTS from each of
# NCLIENTS client addresses (10.0.1.2 upwards; this is what the hashing schedulers need),
# then, after the 2 s statistics tick, `ipvsadm -Ln --stats` and `ipvsadm -Ln` of the
# service.  Each connection is closed by the client before the next one starts (held HOLD_MS
# first, so that lc, wlc, sed and nq can see active connections when it is not 0).
#
# Knobs (-e): SCHEDS (every 6.1 scheduler), W ("1 2 3"), N (60), NCLIENTS (12), HOLD_MS (0).
# crates/rvs-fidelity and crates/rvs-core/tests/sched_kernel_replay.rs read this output:
# keep the section titles and the line shapes.
SCHEDS=${SCHEDS:-"rr wrr lc wlc sed nq sh dh mh lblc lblcr fo ovf"}
W=${W:-"1 2 3"}
N=${N:-60}
NCLIENTS=${NCLIENTS:-12}
HOLD_MS=${HOLD_MS:-0}

# picks: the rs= names of tcpclient's conn lines (stdin), on one line, each followed by a space.
picks() {
	awk '$1 == "conn" { for (i = 2; i <= NF; i++) if (substr($i, 1, 3) == "rs=") printf "%s ", substr($i, 4) }
		END { print "" }'
}

topo_up 3
for n in 1 2 3; do rs_start "$n"; done
last=$((NCLIENTS + 1))
a=3
while [ "$a" -le "$last" ]; do
	ip -n "$CLI" addr add "10.0.1.$a/24" dev eth0
	a=$((a + 1))
done

port=8000
for s in $SCHEDS; do
	port=$((port + 1))
	svc=$VIP:$port
	section "scheduler $s  (VIP $svc, weights $W)"
	ipvsadm -A -t "$svc" -s "$s"
	n=0
	for w in $W; do
		n=$((n + 1))
		ipvsadm -a -t "$svc" -r "$(rs_ip "$n"):80" -m -w "$w"
	done

	echo "one client, $N connections, in order:"
	clix tcpclient -d "$VIP" -p "$port" -n "$N" -H "$HOLD_MS" -l "$s-1client" >/tmp/one-client.txt
	picks </tmp/one-client.txt
	grep -E '^(summary|dist) ' /tmp/one-client.txt | cut -d' ' -f1-8

	each=$((N / NCLIENTS))
	echo "$NCLIENTS clients x $each connections (client -> servers):"
	a=2
	while [ "$a" -le "$last" ]; do
		printf '  10.0.1.%s: ' "$a"
		clix tcpclient -d "$VIP" -p "$port" -s "10.0.1.$a" -n "$each" -H "$HOLD_MS" -l x | picks
		a=$((a + 1))
	done

	sleep 2.2 # the --stats counters move on the kernel's 2 s estimator tick
	ipvsadm -Ln -t "$svc" --stats
	ipvsadm -Ln -t "$svc"
done
