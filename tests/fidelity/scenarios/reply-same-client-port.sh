# Replies when one client port has entries in two services that share a real server
# (spec §2.8; found by the fidelity suite's scheduler runs): the client's UDP port 5353 talks
# to VIP:53 and then to VIP:54, both served by rs1:53.  A reply from rs1:53 to the client's
# 5353 matches both entries; the kernel takes the newest (new entries go to the head of
# their hash chain), so the second flow's replies come from VIP:54.
# Needs the udpflow helper in the working folder (run.sh -f).  Knobs: N (datagrams per flow).
N=${N:-4}
UDPFLOW=${UDPFLOW:-$PWD/udpflow}
section "reply-same-client-port: n=$N"
topo_up 1 "rp-" ns
rs_start 1 53
lbx ipvsadm -A -u "$VIP:53" -s rr
lbx ipvsadm -a -u "$VIP:53" -r "$(rs_ip 1):53" -m -w 1
lbx ipvsadm -A -u "$VIP:54" -s rr
lbx ipvsadm -a -u "$VIP:54" -r "$(rs_ip 1):53" -m -w 1
section "flow 1: 10.0.1.2:5353 -> $VIP:53"
clix "$UDPFLOW" -d "$VIP" -p 53 -s 5353 -n "$N" -i 100 -t 500 -l first | grep -E '^(summary|dist)'
section "flow 2: 10.0.1.2:5353 -> $VIP:54"
clix "$UDPFLOW" -d "$VIP" -p 54 -s 5353 -n "$N" -i 100 -t 500 -l second | grep -E '^(summary|dist)'
section "flow 1 again"
clix "$UDPFLOW" -d "$VIP" -p 53 -s 5353 -n "$N" -i 100 -t 500 -l third | grep -E '^(summary|dist)'
emit rp-Lnc.txt lbx ipvsadm -Lnc
topo_down
