# host-lib.sh: the helper API of tests/kernel-vm/guest/lib.sh, on this machine, with the rvs
# data plane as the director.  Sourced by host-run.sh before a scenario, which then runs
# unchanged under bash.  Only host-run.sh should source it: it expects
#   RVS_BIN          the rvs binary
#   FID_RUN          this run's private folder (configs, sockets, daemon logs)
#   FID_ID           a token unique to this run, put in front of every namespace name
#   FID_PROFILE      the rvs behaviour profile (linux-5.16)
#   FID_SOCKETS      where the daemons' admin sockets go (short: a socket path has at most
#                    107 bytes; default FID_RUN)
# and it runs inside host-run.sh's private mount and PID namespaces, where /tmp and
# /run/netns are private tmpfs mounts (so the scenarios' fixed /tmp paths and namespace
# names cannot collide with anything else on this machine, and everything dies with the run).
#
# Topology (the same addresses as the VM's, all inside namespaces this run made):
#
#   [client ns]  eth0 10.0.1.2/24 --veth-- to-cli 10.0.1.1/24     [director ns: rvs daemon]
#                                                                  VIP 10.0.0.100 routed
#   [rsN ns]     eth0 10.0.(10+N).2/24 --veth-- to-rsN 10.0.(10+N).1/24      into its TUN
#
# Differences from guest/lib.sh, all on the director's side (nothing the client or real
# servers see):
#   - the director is always a namespace of its own: topo_up's third argument is accepted
#     and ignored (the VM's root-namespace director would be this machine's root namespace);
#   - no kube-ipvs0 dummy device with the VIP: the daemon routes each service's VIP into its
#     TUN (a local VIP address would take the packets away from the TUN);
#   - kube_iptables does not install iptables rules in the director: rvs does not run
#     through netfilter conntrack; it models a conntrack-tracking node with its engine
#     setting [engine] netfilter_conntrack, which kube_iptables switches on (config reload);
#   - `ipvsadm` is `rvs adm` on the topology's daemon socket and `sysctl ... net.ipv4.vs.*`
#     is `rvs sysctl` (PATH wrappers made by host-run.sh); other sysctls are the real ones;
#   - ct_count prints "n/a" (there is no conntrack table in an rvs director).

ip() { command ip "$@"; }

VIP=${VIP:-10.0.0.100}
CLIENT_IP=10.0.1.2

# ---- output helpers (identical to guest/lib.sh) ------------------------------------------
emit() {
	_name=$1
	shift
	echo "@@FILE-BEGIN $_name"
	"$@" 2>&1
	echo "@@FILE-END $_name"
}
section() { echo; echo "### $*"; }
log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }

# ---- namespace runners -------------------------------------------------------------------
lbx() { ip netns exec "$LB" "$@"; }
clix() { ip netns exec "$CLI" "$@"; }
rsx() { _n=$1; shift; ip netns exec "${PFX}rs$_n" "$@"; }
rs_ip() { echo "10.0.$((10 + $1)).2"; }

# _daemon_config FILE NETFILTER_CONNTRACK
_daemon_config() {
	cat >"$1" <<EOF
# rvs daemon of the fidelity suite's director namespace $LB (written by host-lib.sh)
[engine]
profile = "$FID_PROFILE"
netfilter_conntrack = $2

[dataplane]
tun_name = "rvs0"
admin_socket = "$RVS_SOCKET"
http_listen = "${FID_HTTP:-}"
EOF
}

_daemon_start() {
	_daemon_config "$FID_RUN/$LB.toml" false
	ip netns exec "$LB" setsid "$RVS_BIN" daemon --config "$FID_RUN/$LB.toml" --profile "$FID_PROFILE" \
		</dev/null >>"$FID_RUN/$LB.daemon.log" 2>&1 &
	_DAEMON_PID=$!
	_t=0
	while [ $_t -lt 100 ]; do
		if "$RVS_BIN" sysctl -a >"$FID_RUN/$LB.sysctl-start.txt" 2>/dev/null; then return 0; fi
		if ! kill -0 "$_DAEMON_PID" 2>/dev/null; then break; fi
		sleep 0.05
		_t=$((_t + 1))
	done
	echo "host-lib: the rvs daemon in $LB did not start; its log:" >&2
	cat "$FID_RUN/$LB.daemon.log" >&2
	exit 3
}

_daemon_stop() {
	[ -n "${_DAEMON_PID:-}" ] || return 0
	kill -TERM "$_DAEMON_PID" 2>/dev/null
	_t=0
	while kill -0 "$_DAEMON_PID" 2>/dev/null && [ $_t -lt 60 ]; do sleep 0.05; _t=$((_t + 1)); done
	kill -KILL "$_DAEMON_PID" 2>/dev/null
	wait "$_DAEMON_PID" 2>/dev/null
	_DAEMON_PID=""
}

# topo_up NRS [PREFIX] [ns]  (see guest/lib.sh; the director is always a namespace here)
topo_up() {
	NRS=$1
	PFX="$FID_ID${2:-}"
	CLI=${PFX}cli
	LB=${PFX}lb
	ip netns add "$LB"
	lbx ip link set lo up
	lbx sysctl -qw net.ipv4.ip_forward=1

	ip netns add "$CLI"
	ip -n "$LB" link add to-cli type veth peer name eth0 netns "$CLI"
	ip -n "$CLI" link set lo up
	ip -n "$CLI" addr add "$CLIENT_IP/24" dev eth0
	ip -n "$CLI" link set eth0 up
	ip -n "$CLI" route add default via 10.0.1.1
	ip -n "$LB" addr add 10.0.1.1/24 dev to-cli
	ip -n "$LB" link set to-cli up

	_i=1
	while [ "$_i" -le "$NRS" ]; do
		_ns=${PFX}rs$_i
		ip netns add "$_ns"
		ip -n "$LB" link add "to-rs$_i" type veth peer name eth0 netns "$_ns"
		ip -n "$_ns" link set lo up
		ip -n "$_ns" addr add "10.0.$((10 + _i)).2/24" dev eth0
		ip -n "$_ns" link set eth0 up
		ip -n "$_ns" route add default via "10.0.$((10 + _i)).1"
		ip -n "$LB" addr add "10.0.$((10 + _i)).1/24" dev "to-rs$_i"
		ip -n "$LB" link set "to-rs$_i" up
		_i=$((_i + 1))
	done
	export RVS_SOCKET="${FID_SOCKETS:-$FID_RUN}/$LB.sock"
	_daemon_start
}

# topo_down: stop the daemon, kill every process of the topology, delete its namespaces.
topo_down() {
	_daemon_stop
	for _ns in "$CLI" $(_i=1; while [ "$_i" -le "$NRS" ]; do echo "${PFX}rs$_i"; _i=$((_i + 1)); done) $LB; do
		[ -n "$_ns" ] || continue
		for _p in $(ip netns pids "$_ns" 2>/dev/null); do kill -9 "$_p" 2>/dev/null; done
		ip netns del "$_ns" 2>/dev/null
	done
}

# rs_start N [PORT]: tcpserver (banner "rsN") in rsN, TCP and UDP.
rs_start() {
	rsx "$1" setsid tcpserver -p "${2:-80}" -n "rs$1" -u </dev/null >/dev/null 2>&1 &
	_t=0
	while [ $_t -lt 50 ]; do
		rsx "$1" ss -Hltn "sport = :${2:-80}" 2>/dev/null | grep -q LISTEN && return 0
		sleep 0.1
		_t=$((_t + 1))
	done
	echo "rs_start $1: server did not come up" >&2
	return 1
}

rs_kill() {
	for _p in $(ip netns pids "${PFX}rs$1"); do kill -9 "$_p" 2>/dev/null; done
}

rs_blackhole() { ip -n "${PFX}rs$1" link set eth0 down; }

# kube_iptables: on a kernel director these rules make netfilter conntrack track the
# director's flows.  The rvs equivalent is the engine's netfilter_conntrack model: the
# daemon's config gets `netfilter_conntrack = true` and is reloaded.  A reload sets the
# services, sysctls and timeouts to the file's, so this must come before any of them are
# changed (as in the scenarios, right after topo_up): it refuses otherwise.
kube_iptables() {
	if [ -n "$("$RVS_BIN" adm -S -n)" ]; then
		echo "host-lib: kube_iptables after services were added is not supported" >&2
		exit 3
	fi
	if [ "$("$RVS_BIN" sysctl -a)" != "$(cat "$FID_RUN/$LB.sysctl-start.txt")" ]; then
		echo "host-lib: kube_iptables after sysctls were changed is not supported" >&2
		exit 3
	fi
	_daemon_config "$FID_RUN/$LB.toml" true
	"$RVS_BIN" adm --reload >/dev/null || { echo "host-lib: reload failed" >&2; exit 3; }
	echo "host-lib: kube_iptables -> rvs [engine] netfilter_conntrack = true" >&2
}

ipvs_sysctls() {
	for _k in conntrack conn_reuse_mode expire_nodest_conn expire_quiescent_template sloppy_tcp; do
		printf '%s=%s ' "$_k" "$(lbx sysctl -n net.ipv4.vs.$_k)"
	done
	echo
}

lnc_summary() {
	lbx ipvsadm -Lnc | awk 'NR>2 {n[$3" -> "$6]++; t++} END {for (k in n) print "  " n[k], k; print "  total", t+0}' | sort -k2
}

ct_count() { echo "n/a"; }

# Whatever happens, leave nothing behind (the PID namespace kills the processes anyway).
_fid_cleanup() {
	_daemon_stop
	for _ns in $(ip netns list 2>/dev/null | awk -v p="$FID_ID" 'index($1, p) == 1 { print $1 }'); do
		for _p in $(ip netns pids "$_ns" 2>/dev/null); do kill -9 "$_p" 2>/dev/null; done
		ip netns del "$_ns" 2>/dev/null
	done
}
trap _fid_cleanup EXIT
