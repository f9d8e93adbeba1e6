# smoke.sh — a quick check that the VM works: two real servers behind an rr NAT service,
# six connections, the listings.  The client must get three answers from each server.
log "smoke: $(uname -r)"
topo_up 2
rs_start 1
rs_start 2
ipvsadm -A -t "$VIP:80" -s rr
ipvsadm -a -t "$VIP:80" -r "$(rs_ip 1):80" -m -w 1
ipvsadm -a -t "$VIP:80" -r "$(rs_ip 2):80" -m -w 1
ipvsadm -Ln
clix tcpclient -d "$VIP" -n 6 -l smoke | tee /tmp/smoke.txt
emit lnc.txt ipvsadm -Lnc
if grep -q '^summary label=smoke attempted=6 ok=6 ' /tmp/smoke.txt &&
	grep -q '^dist label=smoke .*rs1=3' /tmp/smoke.txt && grep -q '^dist label=smoke .*rs2=3' /tmp/smoke.txt; then
	log "smoke: ok"
else
	log "smoke: FAILED"
	exit 1
fi
