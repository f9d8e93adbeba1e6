# examples-formats.sh — the golden outputs: a varied IPVS table in the VM's own namespace,
# some traffic through it, then every listing of ipvsadm and /proc, verbatim, as
# files/NAME.  tests/fixtures/kernel-6.1/ipvsadm-golden/ holds one such run; the tests of
# crates/rvs-adm (and others) compare rvs's output with it, so keep the table, the traffic
# and the file names as they are.
#
#   TCP 10.0.0.100:80    rr, NAT: rs1 w1, rs2 w2, rs3 w3; steady traffic and 3 connections
#                        held open (ESTABLISHED entries)
#   TCP 10.0.0.100:443   wlc, persistent 300 s, NAT: rs1, rs2 (templates)
#   UDP 10.0.0.100:53    wrr, NAT: rs1, rs2
#   TCP 10.0.0.101:8080  sh with sh-fallback,sh-port; rs1 direct routing with thresholds
#                        -x 100 -y 50, rs2 tunnel w2 (no traffic)
#   FWM 1                lc, NAT: rs3 (no traffic)
#   TCP 10.0.0.102:80    mh with mh-fallback,mh-port, NAT: rs1..rs3
#   UDP 10.0.0.103:5000  rr, one-packet scheduling, NAT rs1:5000 where nothing listens
#   TCP [fd00::100]:80   rr, NAT [fd00::11:2]:80 (configuration only)

topo_up 3
for n in 1 2 3; do rs_start "$n" 80; done
rs_start 1 443
rs_start 2 443
rs_start 1 53
rs_start 2 53

vip2=10.0.0.101 vip3=10.0.0.102 vip4=10.0.0.103 vip5=10.0.0.104
for a in $vip2 $vip3 $vip4; do ip addr add "$a/32" dev kube-ipvs0; done

ipvsadm -A -t "$VIP:80" -s rr
for n in 1 2 3; do ipvsadm -a -t "$VIP:80" -r "$(rs_ip "$n"):80" -m -w "$n"; done
ipvsadm -A -t "$VIP:443" -s wlc -p 300
for n in 1 2; do ipvsadm -a -t "$VIP:443" -r "$(rs_ip "$n"):443" -m -w 1; done
ipvsadm -A -u "$VIP:53" -s wrr
for n in 1 2; do ipvsadm -a -u "$VIP:53" -r "$(rs_ip "$n"):53" -m -w 1; done
ipvsadm -A -t "$vip2:8080" -s sh -b sh-fallback,sh-port
ipvsadm -a -t "$vip2:8080" -r "$(rs_ip 1):8080" -g -w 1 -x 100 -y 50
ipvsadm -a -t "$vip2:8080" -r "$(rs_ip 2):8080" -i -w 2
ipvsadm -A -f 1 -s lc
ipvsadm -a -f 1 -r "$(rs_ip 3):0" -m -w 1
ipvsadm -A -t "$vip3:80" -s mh -b mh-fallback,mh-port
for n in 1 2 3; do ipvsadm -a -t "$vip3:80" -r "$(rs_ip "$n"):80" -m -w 1; done
ipvsadm -A -u "$vip4:5000" -s rr -o
ipvsadm -a -u "$vip4:5000" -r "$(rs_ip 1):5000" -m
ipvsadm -A -t '[fd00::100]:80' -s rr
ipvsadm -a -t '[fd00::100]:80' -r '[fd00::11:2]:80' -m -w 1

section "configuration done; traffic"
for h in 1 2 3; do
	clix tcpclient -d "$VIP" -n 1 -H 30000 -q -l "hold$h" >"/tmp/hold$h.txt" &
done
clix tcpclient -d "$VIP" -n 1000 -D 12000 -i 100 -q -l bg80 >/tmp/bg80.txt &
background=$!
clix tcpclient -d "$VIP" -p 443 -n 8 -i 50 -q -l p443
clix tcpclient -d "$vip3" -n 9 -i 20 -q -l mh80
clix tcpclient -u -d "$VIP" -p 53 -n 6 -i 20 -q -l udp53
clix tcpclient -u -d "$vip4" -p 5000 -n 2 -t 500 -q -l udp5000-noserver
sleep 8 # long enough for the 2 s rate estimator to see the steady traffic

emit ipvsadm-Ln.txt ipvsadm -Ln
emit ipvsadm-Ln-stats.txt ipvsadm -Ln --stats
emit ipvsadm-Ln-rate.txt ipvsadm -Ln --rate
emit ipvsadm-Lnc.txt ipvsadm -Lnc
emit ipvsadm-S-n.txt ipvsadm -S -n
emit ipvsadm-Ln-stats-exact.txt ipvsadm -Ln --stats --exact
emit ipvsadm-Ln-rate-exact.txt ipvsadm -Ln --rate --exact
emit ipvsadm-Ln-thresholds.txt ipvsadm -Ln --thresholds
emit ipvsadm-Ln-persistent-conn.txt ipvsadm -Ln --persistent-conn
emit ipvsadm-Ln-one-service.txt ipvsadm -Ln -t "$VIP:80"
emit ipvsadm-Ln-fwmark.txt ipvsadm -Ln -f 1
emit ipvsadm-Lnc-persistent-conn.txt ipvsadm -Lnc --persistent-conn
emit ipvsadm-L-names.txt ipvsadm -L
emit ipvsadm-S.txt ipvsadm -S
emit ipvsadm-L-timeout.txt ipvsadm -L --timeout
emit ipvsadm-L-daemon.txt ipvsadm -L --daemon
emit ipvsadm-version.txt ipvsadm --version
for p in ip_vs ip_vs_conn ip_vs_conn_sync ip_vs_stats ip_vs_stats_percpu; do
	emit "proc-net-$p.txt" cat "/proc/net/$p"
done
# "net.ipv4.vs.NAME = VALUE" for each knob, tabs and newlines of a value as spaces.
vs_defaults() {
	for knob in /proc/sys/net/ipv4/vs/*; do
		value=$(tr '\t\n' '  ' <"$knob" 2>&1 | sed 's/ *$//')
		echo "net.ipv4.vs.${knob##*/} = $value"
	done
}
emit sysctl-net.ipv4.vs-defaults.txt vs_defaults

wait "$background"
grep -h '^summary' /tmp/bg80.txt /tmp/hold*.txt | cut -d' ' -f1-9

section "--set timeouts and -Z"
ipvsadm --set 600 60 120
emit ipvsadm-L-timeout-after-set.txt ipvsadm -L --timeout
clix tcpclient -d "$VIP" -n 3 -q -l afterset
emit ipvsadm-Lnc-after-set.txt ipvsadm -Lnc
ipvsadm -Z
emit ipvsadm-Ln-stats-after-Z.txt ipvsadm -Ln --stats
ipvsadm --set 900 120 300

section "errors"
# Each refused command: "$ ipvsadm ARGS", its message, "[exit N]".
refusals() {
	while read -r args; do
		echo "\$ ipvsadm $args"
		# shellcheck disable=SC2086 # the arguments are meant to split
		ipvsadm $args
		echo "[exit $?]"
	done <<LIST
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 10.0.11.2:80 -m
-d -t $VIP:80 -r 10.0.99.2:80
-D -t 10.9.9.9:80
-E -t 10.9.9.9:80 -s rr
-A -t $VIP:81 -s nosuchsched
-a -t 10.9.9.9:80 -r 10.0.11.2:80
-e -t $VIP:80 -r 10.0.99.2:80 -w 0
-a -t $VIP:80 -r 10.0.11.2:8080 -m -w 70000
-Ln -t 10.9.9.9:80
LIST
}
emit ipvsadm-errors.txt refusals

section "restore round trip"
ipvsadm -S -n >/tmp/rules
ipvsadm -C
emit ipvsadm-Ln-after-C.txt ipvsadm -Ln
ipvsadm -R </tmp/rules
emit ipvsadm-S-n-after-R.txt ipvsadm -S -n

section "stats refresh granularity"
# The --stats counters are copied from the per-CPU ones on the 2 s estimator tick: after
# one connection to a fresh service, sample them every 0.25 s for 4 s.
ip addr add "$vip5/32" dev kube-ipvs0
ipvsadm -A -t "$vip5:80" -s rr
ipvsadm -a -t "$vip5:80" -r "$(rs_ip 1):80" -m
lag() {
	clix tcpclient -d "$vip5" -n 1 -q -l lag | grep '^summary' | cut -d' ' -f1-4
	echo "uptime_s conns inpkts (ipvsadm -Ln --stats --exact -t $vip5:80)"
	sample=0
	while [ "$sample" -lt 16 ]; do
		read -r up _ </proc/uptime
		echo "$up $(ipvsadm -Ln --stats --exact -t "$vip5:80" | awk 'NR == 4 { print $3, $4 }')"
		sleep 0.25
		sample=$((sample + 1))
	done
}
emit stats-refresh-lag.txt lag
