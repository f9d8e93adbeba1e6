# UDP flows to a removed real server (spec §2.5, P4, P7; Kubernetes #71514):
# one UDP flow with a fixed source port (a resolver) keeps its entry; its real
# server is deleted; with expire_nodest_conn=0 the flow's datagrams are dropped
# until the entry expires (UDP timeout, here --set udp UDPT), with 1 the entry is
# expired and the flow is rescheduled at once.
# Needs the udpflow helper (tests/fidelity/src/udpflow.c) in the working folder (run.sh -f).
# Knobs: NODESTS ("0 1"), UDPT (UDP timeout for the run, s), N (datagrams before the
# removal), N_AFTER (datagrams after it; 500 ms apart when unanswered, so 16 cover 8 s).
NODESTS=${NODESTS:-"0 1"}
UDPT=${UDPT:-5}
N=${N:-10}
N_AFTER=${N_AFTER:-16}
UDPFLOW=${UDPFLOW:-$PWD/udpflow}   # -f udpflow puts it in the working folder (/scenario in the VM)
section "udp-removed: nodest=[$NODESTS] udp timeout=${UDPT}s n=$N"
for nodest in $NODESTS; do
	section "expire_nodest_conn=$nodest"
	topo_up 2 "ur$nodest-" ns
	lbx sysctl -qw net.ipv4.vs.expire_nodest_conn=$nodest
	lbx ipvsadm --set 0 0 "$UDPT"
	rs_start 1 53
	rs_start 2 53
	lbx ipvsadm -A -u "$VIP:53" -s rr
	lbx ipvsadm -a -u "$VIP:53" -r "$(rs_ip 1):53" -m -w 1
	lbx ipvsadm -a -u "$VIP:53" -r "$(rs_ip 2):53" -m -w 1
	clix "$UDPFLOW" -d "$VIP" -p 53 -s 5353 -n "$N" -i 100 -t 500 -l "nodest=$nodest-before" | grep -E '^(summary|dist)' | tee /tmp/ur-before.txt
	served=$(awk '/^dist/ { split($3, kv, "="); print kv[1] }' /tmp/ur-before.txt)
	n=${served#rs}
	echo "served_by=$served"
	lbx ipvsadm -d -u "$VIP:53" -r "$(rs_ip "$n"):53"
	clix "$UDPFLOW" -d "$VIP" -p 53 -s 5353 -n "$N_AFTER" -i 100 -t 500 -l "nodest=$nodest-after" >/tmp/ur-after.txt
	grep -E '^(summary|dist)' /tmp/ur-after.txt
	echo "first_ok_ms=$(awk '/^udp / && /result=ok/ { split($3, kv, "="); print kv[2]; exit }' /tmp/ur-after.txt)"
	emit "ur-nodest$nodest-Lnc.txt" lbx ipvsadm -Lnc
	topo_down
done
