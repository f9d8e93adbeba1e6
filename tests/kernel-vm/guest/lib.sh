# lib.sh — what a scenario of the rvs kernel VM can call.  guest/init sources it (as
# /etc/rvs-vm/lib.sh) before the scenario; tests/fidelity/host-lib.sh offers the same
# functions on the host, with the rvs daemon as the director, so one scenario runs on
# both sides of the fidelity suite.  Change the two together.
#
# The topology that topo_up builds (every address lives inside the VM):
#
#   client ns ${PFX}cli     eth0 10.0.1.2/24  ── veth ──  to-cli 10.0.1.1/24        director
#   real server ${PFX}rsN   eth0 10.0.(10+N).2/24 ── veth ── to-rsN 10.0.(10+N).1/24
#                                                 VIP 10.0.0.100/32 on dummy kube-ipvs0
#
# The director is the VM's own namespace, or the namespace ${PFX}lb when topo_up is given
# "ns" as third argument: then IPVS, conntrack, iptables and the sysctls start from their
# defaults, so one boot can try several configurations one after the other.  The client
# and the real servers route through the director (IPVS masquerading, -m).

# Busybox's sh would run its own `ip` applet (no netns support) before any `ip` on PATH.
ip() { /usr/sbin/ip "$@"; }

VIP=${VIP:-10.0.0.100}
CLIENT_IP=10.0.1.2

# ---- printing ------------------------------------------------------------------------
# emit NAME CMD...: CMD's output (stdout and stderr) between two marker lines; run.sh
# saves it as files/NAME.  NAME must not contain "/".
emit() {
	_e_name=$1
	shift
	echo "@@FILE-BEGIN $_e_name"
	"$@" 2>&1
	echo "@@FILE-END $_e_name"
}
# section TITLE: a blank line, then "### TITLE" (the fidelity suite splits output there).
section() { printf '\n### %s\n' "$*"; }
# log MESSAGE: "[uptime] MESSAGE".
log() {
	read -r _l_up _l_rest </proc/uptime
	echo "[$_l_up] $*"
}

# ---- running commands in the topology -----------------------------------------------
lbx() {
	if [ -n "$LB" ]; then ip netns exec "$LB" "$@"; else "$@"; fi
}
clix() { ip netns exec "$CLI" "$@"; }
rsx() {
	_x_n=$1
	shift
	ip netns exec "${PFX}rs$_x_n" "$@"
}
# rs_ip N: the address of real server N.
rs_ip() { echo "10.0.$((10 + $1)).2"; }

# _link NS_FAR DEV_NEAR FAR_ADDR NEAR_ADDR: a veth from the director (DEV_NEAR) to eth0 of
# namespace NS_FAR, addressed, up, with the far end's default route via the director.
_link() {
	if [ -n "$LB" ]; then
		ip -n "$LB" link add "$2" type veth peer name eth0 netns "$1"
	else
		ip link add "$2" type veth peer name eth0 netns "$1"
	fi
	ip -n "$1" link set lo up
	ip -n "$1" addr add "$3/24" dev eth0
	ip -n "$1" link set eth0 up
	ip -n "$1" route add default via "$4"
	lbx ip addr add "$4/24" dev "$2"
	lbx ip link set "$2" up
}

# topo_up NRS [PREFIX] [ns]: the topology above with NRS real servers (1..9), namespace
# names starting with PREFIX.  Sets NRS, PFX, CLI, LB.
topo_up() {
	NRS=$1
	PFX=${2:-}
	CLI=${PFX}cli
	LB=
	if [ "${3:-}" = ns ]; then
		LB=${PFX}lb
		ip netns add "$LB"
	fi
	lbx ip link set lo up
	lbx sysctl -qw net.ipv4.ip_forward=1
	lbx ip link add kube-ipvs0 type dummy
	lbx ip addr add "$VIP/32" dev kube-ipvs0
	lbx ip link set kube-ipvs0 up
	ip netns add "$CLI"
	_link "$CLI" to-cli "$CLIENT_IP" 10.0.1.1
	_t_i=1
	while [ "$_t_i" -le "$NRS" ]; do
		ip netns add "${PFX}rs$_t_i"
		_link "${PFX}rs$_t_i" "to-rs$_t_i" "$(rs_ip "$_t_i")" "10.0.$((10 + _t_i)).1"
		_t_i=$((_t_i + 1))
	done
}

# _kill_ns NS: kill every process in NS.
_kill_ns() {
	for _k_p in $(ip netns pids "$1" 2>/dev/null); do kill -9 "$_k_p" 2>/dev/null; done
}

# topo_down: undo topo_up (processes killed, namespaces deleted; a root-namespace
# director also loses kube-ipvs0 and its IPVS table).
topo_down() {
	_d_i=1
	while [ "$_d_i" -le "$NRS" ]; do
		_kill_ns "${PFX}rs$_d_i"
		ip netns del "${PFX}rs$_d_i" 2>/dev/null
		_d_i=$((_d_i + 1))
	done
	_kill_ns "$CLI"
	ip netns del "$CLI" 2>/dev/null
	if [ -n "$LB" ]; then
		_kill_ns "$LB"
		ip netns del "$LB" 2>/dev/null
	else
		ip link del kube-ipvs0 2>/dev/null
		ipvsadm -C
	fi
}

# ---- real servers ----------------------------------------------------------------------
# rs_start N [PORT]: tcpserver named rsN on PORT (80), TCP and UDP, in rsN; returns once it
# listens (5 s at most).
rs_start() {
	_s_port=${2:-80}
	rsx "$1" setsid tcpserver -p "$_s_port" -n "rs$1" -u </dev/null >/dev/null 2>&1 &
	_s_try=0
	while [ "$_s_try" -lt 50 ]; do
		if rsx "$1" ss -Hltn "sport = :$_s_port" 2>/dev/null | grep -q .; then
			return 0
		fi
		sleep 0.1
		_s_try=$((_s_try + 1))
	done
	echo "rs_start $1: nothing listens on port $_s_port after 5 s" >&2
	return 1
}
# rs_kill N: the server's processes die; its network stays (a SYN gets a reset).
rs_kill() { _kill_ns "${PFX}rs$1"; }
# rs_blackhole N: the server's link goes down (its packets vanish; the director's ARP
# fails, so the client gets host-unreachable after a while).
rs_blackhole() { ip -n "${PFX}rs$1" link set eth0 down; }

# ---- director -------------------------------------------------------------------------
# kube_iptables: the two rules of kube-proxy's IPVS mode that matter here (its
# MASQUERADE rule in nat POSTROUTING and its drop of conntrack-INVALID packets in filter
# FORWARD).  They also make netfilter conntrack track the director's traffic: Linux 6.1's
# IPVS registers conntrack's hooks by itself only for FTP services, so without such a rule
# net.ipv4.vs.conntrack=1 has no conntrack entries to act on.
kube_iptables() {
	lbx iptables-restore --noflush <<'RULES'
*nat
:KUBE-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
COMMIT
*filter
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
RULES
}

# ipvs_sysctls: the director's IPVS knobs that matter here, as "key=value " on one line.
ipvs_sysctls() {
	_v_line=
	for _v_k in conntrack conn_reuse_mode expire_nodest_conn expire_quiescent_template sloppy_tcp; do
		_v_line="$_v_line$_v_k=$(lbx sysctl -n "net.ipv4.vs.$_v_k") "
	done
	echo "$_v_line"
}

# lnc_summary: the director's connection entries counted by state and real server,
# "  COUNT STATE -> SERVER" lines and "  total COUNT".
lnc_summary() {
	lbx ipvsadm -Lnc | awk '
		NR <= 2 { next }
		{ by[$3 " -> " $6]++; all++ }
		END { for (k in by) print "  " by[k], k; print "  total", all + 0 }' | sort -k2
}

# ct_count: how many conntrack entries the director's namespace holds.
ct_count() {
	lbx cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0
}
