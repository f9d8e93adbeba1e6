# incident-port-reuse.sh — a client that reuses its source ports meets a real server that is
# being terminated, under each combination of net.ipv4.vs.conn_reuse_mode (MODES),
# net.ipv4.vs.expire_nodest_conn (NODESTS) and way of dying (DEATHS).
#
# Every configuration gets fresh namespaces, the director included, so IPVS, conntrack and
# the sysctls start from their defaults.  The director runs a NAT service VIP:80 (SCHED, rr)
# over NRS real servers of weight 1, with net.ipv4.vs.conntrack=CONNTRACK,
# expire_quiescent_template=1 and (KUBE_IPTABLES=1) kube-proxy's iptables rules, as on a
# kube-proxy node.  The client has ip_local_port_range=PORTS and tcp_tw_reuse=1, and makes
# short connections one after the other, INTERVAL_MS apart (connect within TIMEOUT_MS, read
# the server's name, close first), so every port is reused about a second after it was last
# used, while the director still has an entry for it.
#
#   warm     WARM_S seconds, every server healthy;
#   event    rs2 set to weight 0 (it stays listed, as kube-proxy's graceful termination
#            leaves it) and rs2 dies:
#              kill      its processes are killed: its kernel resets SYNs (refused);
#              drop      iptables in rs2 drops everything: SYNs go unanswered (timeout);
#              linkdown  its link goes down: the director's ARP fails and the client
#                        gets host-unreachable after 1-3 s (unreach);
#   main     MAIN_S seconds, `ipvsadm -Lnc` printed half-way;
#   removed  rs2 deleted (ipvsadm -d), REMOVED_S seconds (0: no such phase).
#
# Per phase a RESULT line (crates/rvs-fidelity reads them; keep their fields), and per
# configuration the main phase's connections as files/cN-main-conns.txt.  At the end all the
# RESULT lines again and a Markdown table of them.
MODES=${MODES:-"0 1"}
NODESTS=${NODESTS:-"0 1"}
DEATHS=${DEATHS:-"kill drop linkdown"}
NRS=${NRS:-3}
PORTS=${PORTS:-"40000 40009"}
WARM_S=${WARM_S:-5}
MAIN_S=${MAIN_S:-30}
REMOVED_S=${REMOVED_S:-15}
INTERVAL_MS=${INTERVAL_MS:-50}
TIMEOUT_MS=${TIMEOUT_MS:-2000}
KUBE_IPTABLES=${KUBE_IPTABLES:-1}
CONNTRACK=${CONNTRACK:-1}
SCHED=${SCHED:-rr}

RESULTS=/tmp/incident-results.txt
: >"$RESULTS"

section "incident-port-reuse: modes=[$MODES] nodest=[$NODESTS] deaths=[$DEATHS] nrs=$NRS ports=[$PORTS]"
echo "warm=${WARM_S}s main=${MAIN_S}s removed=${REMOVED_S}s interval=${INTERVAL_MS}ms connect_timeout=${TIMEOUT_MS}ms kube_iptables=$KUBE_IPTABLES conntrack=$CONNTRACK sched=$SCHED"
uname -r

# client SECONDS LABEL FILE: the client's connections for SECONDS, into FILE.
client() {
	clix tcpclient -d "$VIP" -n 1000000 -D $(($1 * 1000)) -i "$INTERVAL_MS" -t "$TIMEOUT_MS" -l "$2" >"$3"
}

# report FILE: the summary lines, then failures per 5 s and, per client port, outcomes.
per_time() {
	awk '$1 == "conn" {
		for (i = 2; i <= NF; i++) { eq = index($i, "="); v[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
		b = int(v["t_ms"] / 5000); if (b > last) last = b
		n[b]++; r[b, v["result"]]++
	} END {
		for (b = 0; b <= last; b++)
			printf "  %3ds-%3ds attempts=%-4d ok=%-4d refused=%-4d timeout=%-4d unreach=%-4d other=%d\n",
				b * 5, b * 5 + 5, n[b], r[b, "ok"], r[b, "refused"], r[b, "timeout"], r[b, "unreach"],
				r[b, "reset"] + r[b, "other"]
	}' "$1"
}
per_port() {
	awk '$1 == "conn" {
		for (i = 2; i <= NF; i++) { eq = index($i, "="); v[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
		p = v["lport"]; n[p]++; r[p, v["result"]]++
		if (v["result"] == "ok") { by[p] = by[p] " " v["rs"] }
	} END {
		for (p in n) {
			line = sprintf("  lport=%s attempts=%d ok=%d refused=%d timeout=%d unreach=%d served_by:", p, n[p], r[p, "ok"], r[p, "refused"], r[p, "timeout"], r[p, "unreach"])
			split(by[p], s, " "); delete c
			for (j in s) c[s[j]]++
			for (k = 1; k <= 9; k++) if (("rs" k) in c) line = line " rs" k "=" c["rs" k]
			print line
		}
	}' "$1" | sort
}

# rs2_inpkts: packets IPVS forwarded to rs2 so far (InPkts of `ipvsadm --stats`; the kernel
# updates it on its 2 s estimator tick, so callers wait 2.5 s first).
rs2_inpkts() {
	lbx ipvsadm -Ln --stats --exact | awk -v d="$(rs_ip 2):80" '$1 == "->" && $2 == d { p = $4 } END { print p + 0 }'
}

# result TAG FILE [PKTS_TO_RS2]: the RESULT line of one phase, from the client's summary.
result() {
	awk -v tag="$1" -v p2="${3:--}" '$1 == "summary" {
		for (i = 2; i <= NF; i++) { eq = index($i, "="); v[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
		printf "RESULT %s attempted=%d ok=%d refused=%d timeout=%d unreach=%d other=%d eaddrnotavail=%d pkts_to_rs2=%s", tag, v["attempted"], v["ok"], v["refused"], v["timeout"], v["unreach"], v["reset"] + v["other"], v["eaddrnotavail"], p2
		printf " ok_p50_ms=%.1f ok_p90_ms=%.1f ok_p99_ms=%.1f ok_max_ms=%.1f all_p99_ms=%.1f all_max_ms=%.1f\n", v["ok_p50_us"] / 1000, v["ok_p90_us"] / 1000, v["ok_p99_us"] / 1000, v["ok_max_us"] / 1000, v["all_p99_us"] / 1000, v["all_max_us"] / 1000
	}' "$2" | tee -a "$RESULTS"
}

cfg=0
for death in $DEATHS; do
	for mode in $MODES; do
		for nodest in $NODESTS; do
			cfg=$((cfg + 1))
			tag="reuse=$mode nodest=$nodest death=$death"
			f=/tmp/c$cfg
			section "config $cfg: $tag"
			topo_up "$NRS" "c$cfg-" ns
			if [ "$KUBE_IPTABLES" = 1 ]; then kube_iptables; fi
			lbx sysctl -qw "net.ipv4.vs.conntrack=$CONNTRACK"
			lbx sysctl -qw "net.ipv4.vs.conn_reuse_mode=$mode"
			lbx sysctl -qw "net.ipv4.vs.expire_nodest_conn=$nodest"
			lbx sysctl -qw net.ipv4.vs.expire_quiescent_template=1
			clix sh -c "echo '$PORTS' >/proc/sys/net/ipv4/ip_local_port_range && echo 1 >/proc/sys/net/ipv4/tcp_tw_reuse"
			echo "director: $(ipvs_sysctls)"
			echo "client: ip_local_port_range=$(clix cat /proc/sys/net/ipv4/ip_local_port_range | tr '\t' ' ') tcp_tw_reuse=$(clix cat /proc/sys/net/ipv4/tcp_tw_reuse)"
			n=1
			while [ "$n" -le "$NRS" ]; do rs_start "$n"; n=$((n + 1)); done
			lbx ipvsadm -A -t "$VIP:80" -s "$SCHED"
			n=1
			while [ "$n" -le "$NRS" ]; do
				lbx ipvsadm -a -t "$VIP:80" -r "$(rs_ip "$n"):80" -m -w 1
				n=$((n + 1))
			done

			log "phase warm (${WARM_S}s)"
			client "$WARM_S" warm "$f-warm.txt"
			grep -E '^(summary|hist|dist) ' "$f-warm.txt"
			result "cfg=$cfg $tag phase=warm" "$f-warm.txt"
			echo "ipvsadm -Lnc by state/dest after warm:"
			lnc_summary

			log "event: rs2 weight 0 + $death"
			lbx ipvsadm -e -t "$VIP:80" -r "$(rs_ip 2):80" -m -w 0
			case $death in
			kill) rs_kill 2 ;;
			drop) rsx 2 iptables -I INPUT -j DROP && rsx 2 iptables -I OUTPUT -j DROP ;;
			linkdown) rs_blackhole 2 ;;
			*) echo "unknown death mode: $death" >&2; exit 2 ;;
			esac
			lbx ipvsadm -Ln
			sleep 2.5
			before=$(rs2_inpkts)

			log "phase main (${MAIN_S}s)"
			(
				sleep $((MAIN_S / 2))
				echo "--- snapshot ipvsadm -Lnc at main+$((MAIN_S / 2))s:"
				lbx ipvsadm -Lnc
				echo "--- conntrack entries in director: $(ct_count)"
			) &
			snapshot=$!
			client "$MAIN_S" main "$f-main.txt"
			wait "$snapshot"
			sleep 2.5
			after=$(rs2_inpkts)
			grep -E '^(summary|hist|dist) ' "$f-main.txt"
			echo "timeline (5 s buckets):"
			per_time "$f-main.txt"
			echo "by client port:"
			per_port "$f-main.txt"
			echo "first failures:"
			grep -E 'result=(refused|timeout|unreach|reset|other)' "$f-main.txt" | head -n 5
			echo "ipvsadm -Ln --stats after main:"
			lbx ipvsadm -Ln --stats
			echo "ipvsadm -Ln after main (rs2 InActConn>0 means kube-proxy would keep it):"
			lbx ipvsadm -Ln
			echo "ipvsadm -Lnc by state/dest after main:"
			lnc_summary
			result "cfg=$cfg $tag phase=main" "$f-main.txt" $((after - before))

			if [ "$REMOVED_S" -gt 0 ]; then
				log "event: rs2 deleted from the service"
				lbx ipvsadm -d -t "$VIP:80" -r "$(rs_ip 2):80"
				log "phase removed (${REMOVED_S}s)"
				client "$REMOVED_S" removed "$f-removed.txt"
				grep -E '^(summary|hist|dist) ' "$f-removed.txt"
				echo "timeline (5 s buckets):"
				per_time "$f-removed.txt"
				echo "ipvsadm -Lnc by state/dest after removed:"
				lnc_summary
				result "cfg=$cfg $tag phase=removed" "$f-removed.txt" "n/a(deleted)"
			fi
			emit "c$cfg-main-conns.txt" cat "$f-main.txt"
			topo_down
			rm -f "$f"-*.txt
		done
	done
done

section "all results"
cat "$RESULTS"
section "table (main = rs2 at weight 0 but still listed; removed = rs2 deleted)"
awk '
	{ delete v; for (i = 2; i <= NF; i++) { eq = index($i, "="); v[substr($i, 1, eq - 1)] = substr($i, eq + 1) } }
	{ row = v["death"] " | " v["reuse"] " | " v["nodest"] }
	v["phase"] == "main" {
		rows[++nrows] = row
		main[row] = v["attempted"] " | " v["ok"] " | " v["refused"] " | " v["timeout"] " | " v["unreach"] " | " v["pkts_to_rs2"] " | " v["eaddrnotavail"] " | " v["ok_p50_ms"] " / " v["ok_p99_ms"] " / " v["all_max_ms"]
	}
	v["phase"] == "removed" { gone[row] = v["attempted"] " | " v["ok"] " | " (v["attempted"] - v["ok"]) }
	END {
		print "| death | conn_reuse_mode | expire_nodest_conn | main: attempted | ok | refused | timeout | unreach | pkts to rs2 | eaddrnotavail | connect ms p50 / p99 ok / max all | removed: attempted | ok | failed |"
		print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		for (i = 1; i <= nrows; i++) print "| " rows[i] " | " main[rows[i]] " | " ((rows[i] in gone) ? gone[rows[i]] : "- | - | -") " |"
	}' "$RESULTS"
