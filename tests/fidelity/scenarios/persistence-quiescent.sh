# Persistence with a weight-0 real server (spec §5.3, §5.6; Kubernetes #71809):
# a client pinned by a template to one real server; that server goes to weight 0;
# with expire_quiescent_template=0 the client's new connections still go there,
# with 1 the template is invalid and they are scheduled elsewhere.
# Knobs: EQTS ("0 1"), N (connections per phase).
EQTS=${EQTS:-"0 1"}
N=${N:-6}
section "persistence-quiescent: eqt=[$EQTS] n=$N"
for eqt in $EQTS; do
	section "expire_quiescent_template=$eqt"
	topo_up 2 "pq$eqt-" ns
	lbx sysctl -qw net.ipv4.vs.expire_quiescent_template=$eqt
	rs_start 1
	rs_start 2
	lbx ipvsadm -A -t "$VIP:80" -s rr -p 60
	lbx ipvsadm -a -t "$VIP:80" -r "$(rs_ip 1):80" -m -w 1
	lbx ipvsadm -a -t "$VIP:80" -r "$(rs_ip 2):80" -m -w 1
	clix tcpclient -d "$VIP" -n "$N" -i 20 -q -l "eqt=$eqt-before" | grep -E '^(summary|dist)' | tee /tmp/pq-before.txt
	pinned=$(awk '/^dist/ { for (i = 3; i <= NF; i++) { split($i, kv, "="); print kv[1] } }' /tmp/pq-before.txt | head -1)
	n=${pinned#rs}
	echo "pinned=$pinned"
	lbx ipvsadm -e -t "$VIP:80" -r "$(rs_ip "$n"):80" -m -w 0
	clix tcpclient -d "$VIP" -n "$N" -i 20 -q -l "eqt=$eqt-after" | grep -E '^(summary|dist)'
	emit "pq-eqt$eqt-Lnc.txt" lbx ipvsadm -Lnc
	emit "pq-eqt$eqt-Ln.txt" lbx ipvsadm -Ln --persistent-conn
	topo_down
done
