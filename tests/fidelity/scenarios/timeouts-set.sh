# Timeouts after ipvsadm --set (spec §1.7, §3, §8.7): ESTABLISHED, FIN_WAIT and UDP
# entries carry the new timeouts; TIME_WAIT (fixed 120 s) does not change.
section "timeouts-set"
topo_up 1 "ts-" ns
rs_start 1 80
rs_start 1 53
lbx ipvsadm -A -t "$VIP:80" -s rr
lbx ipvsadm -a -t "$VIP:80" -r "$(rs_ip 1):80" -m -w 1
lbx ipvsadm -A -u "$VIP:53" -s rr
lbx ipvsadm -a -u "$VIP:53" -r "$(rs_ip 1):53" -m -w 1
lbx ipvsadm --set 40 30 20
emit ts-timeout.txt lbx ipvsadm -L --timeout
clix tcpclient -d "$VIP" -n 1 -H 3000 -q -l held >/dev/null &
held=$!
clix tcpclient -d "$VIP" -n 1 -q -l closed >/dev/null
clix tcpclient -u -d "$VIP" -p 53 -n 1 -q -l udp >/dev/null
sleep 1
emit ts-Lnc.txt lbx ipvsadm -Lnc
wait $held
topo_down
