#!/usr/bin/env bash
# host-run.sh: run a scenario of the kernel VM harness (tests/kernel-vm) on this machine with
# the rvs data plane as the director: the rvs side of the fidelity suite (tests/kernel-vm/run.sh
# is the kernel side).
#
#   tests/fidelity/host-run.sh [options] SCENARIO.sh
#     -e KEY=VAL     environment variable for the scenario (repeatable)
#     -f FILE        extra file copied to the scenario's working folder (repeatable)
#     -o DIR         output folder (default /var/tmp/rvs-fidelity/runs/<time>-<pid>-<name>)
#     -t SECS        kill the run after SECS (default 1800); exit status is then 124
#     -q             do not stream the scenario's output while it runs
#     --rvs BIN      the rvs binary (default: $RVS_BIN, else target/release/rvs)
#     --profile P    rvs behaviour profile (default linux-5.16)
#
# Same contract as run.sh: DIR/output.txt has the scenario's stdout+stderr verbatim,
# DIR/files/NAME each `emit NAME cmd...` section, DIR/run-info.txt the wall time and exit
# code; the exit status is the scenario's.  DIR/rvs/ keeps the daemons' configs and logs.
#
# How: the helpers (tcpclient, tcpserver from tests/kernel-vm/src, udpflow from
# tests/fidelity/src) are built with gcc into DIR/bin, which goes first on PATH with two
# wrappers: `ipvsadm` = `rvs adm` (on the socket of the topology's daemon) and `sysctl`
# (net.ipv4.vs.* keys go to `rvs sysctl`, others to the real sysctl).  The scenario then
# runs unchanged under bash, after host-lib.sh (guest/lib.sh's API, for this machine), in
# private mount and PID namespaces: /tmp and /run/netns are private tmpfs mounts, and when
# the run ends (or is killed) the kernel kills every process it started and its network
# namespaces disappear with them.  Needs root, unshare (util-linux), iproute2, gcc.
#
# The checkout and DIR may be anywhere, /tmp included, and their paths may contain spaces:
# everything the run needs inside the namespaces (the rvs binary, this script, host-lib.sh,
# the helpers, the scenario) is first put into DIR, and DIR is held open across the private
# /tmp mount and bound back at its own path when that mount hid it.
set -euo pipefail

if [ "${1:-}" = --inner ]; then
	# ---- inside the private mount + PID namespaces (PID 1); this is DIR/lib's copy ----
	OUT=$2
	exec 7<"$OUT"
	mount -t tmpfs -o mode=1777 fid-tmp /tmp
	mkdir -p /run/netns
	mount -t tmpfs -o mode=755 fid-netns /run/netns
	if ! [ "$OUT" -ef /proc/self/fd/7 ]; then
		# DIR was under /tmp (or /run/netns): put the real one back where it was.  mount must
		# not resolve the fd's link itself: it would find the path, now the tmpfs's.
		mkdir -p "$OUT"
		mount --no-canonicalize --bind /proc/self/fd/7 "$OUT"
		[ "$OUT" -ef /proc/self/fd/7 ] || { echo "host-run.sh: cannot bind $OUT back" >&2; exit 3; }
	fi
	exec 7<&-
	export PATH="$OUT/bin:$PATH" LC_ALL=C
	# Admin sockets in the private /tmp: DIR's path may be too long for a socket's.
	export FID_RUN="$OUT/rvs" FID_SOCKETS=/tmp/.rvs-sockets RVS_BIN="$OUT/bin/rvs" FID_ID FID_PROFILE
	mkdir -p "$FID_RUN" "$FID_SOCKETS"
	cd "$OUT/scenario"
	set +eu
	set -a
	. "$OUT/scenario/env"
	set +a
	FID_LIB="$OUT/lib/host-lib.sh" FID_SCEN="$OUT/scenario/run.sh" bash -c '. "$FID_LIB"; . "$FID_SCEN"' </dev/null
	rc=$?
	echo "@@RVS scenario-exit rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
	exit $rc
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KVM=${KIPVS_DIR:-$ROOT/tests/kernel-vm}

ENVS=() FILES=() OUTDIR="" TIMEOUT=1800 QUIET=0 PROFILE=linux-5.16 SCEN=""
RVS_BIN=${RVS_BIN:-$ROOT/target/release/rvs}
while [ $# -gt 0 ]; do
	case "$1" in
	-e) ENVS+=("$2"); shift 2 ;;
	-f) FILES+=("$2"); shift 2 ;;
	-o) OUTDIR=$2; shift 2 ;;
	-t) TIMEOUT=$2; shift 2 ;;
	-q) QUIET=1; shift ;;
	--rvs) RVS_BIN=$2; shift 2 ;;
	--profile) PROFILE=$2; shift 2 ;;
	-h|--help) sed -n '2,32p' "$0"; exit 0 ;;
	-*) echo "unknown option $1" >&2; exit 2 ;;
	*) SCEN=$1; shift ;;
	esac
done
say() { echo "[host-run] $*" >&2; }
[ -n "$SCEN" ] || { echo "usage: $0 [options] SCENARIO.sh   (see --help)" >&2; exit 2; }
[ -f "$SCEN" ] || { echo "no such scenario: $SCEN" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "host-run.sh needs root (network namespaces, TUN)" >&2; exit 2; }
for t in unshare ip ss gcc; do
	command -v "$t" >/dev/null || { echo "host-run.sh needs $t" >&2; exit 2; }
done
[ -x "$RVS_BIN" ] || { echo "no rvs binary at $RVS_BIN (cargo build --release -p rvs, or --rvs BIN)" >&2; exit 2; }
RVS_BIN=$(cd "$(dirname "$RVS_BIN")" && pwd)/$(basename "$RVS_BIN")

name=$(basename "$SCEN" .sh)
[ -n "$OUTDIR" ] || OUTDIR=/var/tmp/rvs-fidelity/runs/$(date +%Y%m%d-%H%M%S)-$$-$name
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
rm -rf "$OUTDIR/bin" "$OUTDIR/lib" "$OUTDIR/scenario" "$OUTDIR/files" "$OUTDIR/rvs"
mkdir -p "$OUTDIR/bin" "$OUTDIR/lib" "$OUTDIR/scenario"

# What the inner side runs, from DIR (a hard link of rvs when it can be, removed at the end).
ln "$RVS_BIN" "$OUTDIR/bin/rvs" 2>/dev/null || cp "$RVS_BIN" "$OUTDIR/bin/rvs"
cp "$HERE/host-lib.sh" "$HERE/host-run.sh" "$OUTDIR/lib/"

# helpers, built for this machine
gcc -O2 -Wall -o "$OUTDIR/bin/tcpclient" "$KVM/src/tcpclient.c"
gcc -O2 -Wall -o "$OUTDIR/bin/tcpserver" "$KVM/src/tcpserver.c"
gcc -O2 -Wall -o "$OUTDIR/bin/udpflow" "$HERE/src/udpflow.c"
cat >"$OUTDIR/bin/ipvsadm" <<'EOF'
#!/bin/sh
# ipvsadm -> rvs adm, on the daemon of the current topology ($RVS_SOCKET, set by topo_up)
exec "$RVS_BIN" adm "$@"
EOF
cat >"$OUTDIR/bin/sysctl" <<'EOF'
#!/usr/bin/env bash
# sysctl: net.ipv4.vs.* keys -> rvs sysctl (the daemon of the current topology); any other
# key -> the real sysctl.  Flags understood: -q -n -w -e (combined too, as -qw).
real=/usr/sbin/sysctl
[ -x "$real" ] || real=/sbin/sysctl
q=0 n=0 vs=() other=0
for a in "$@"; do
	case $a in
	-*) f=${a#-}
		while [ -n "$f" ]; do
			case ${f:0:1} in q) q=1 ;; n) n=1 ;; w|e) ;; *) exec "$real" "$@" ;; esac
			f=${f:1}
		done ;;
	net.ipv4.vs.*|net/ipv4/vs/*) vs+=("${a//\//.}") ;;
	*) other=1 ;;
	esac
done
if [ "$other" = 1 ] || [ ${#vs[@]} = 0 ]; then
	[ ${#vs[@]} = 0 ] || { echo "sysctl wrapper: mixing net.ipv4.vs.* and other keys is not supported" >&2; exit 2; }
	exec "$real" "$@"
fi
args=()
[ "$n" = 1 ] && args+=(-n)
if [ "$q" = 1 ]; then
	"$RVS_BIN" sysctl "${args[@]}" "${vs[@]}" >/dev/null
else
	exec "$RVS_BIN" sysctl "${args[@]}" "${vs[@]}"
fi
EOF
chmod 755 "$OUTDIR/bin/ipvsadm" "$OUTDIR/bin/sysctl"

cp "$SCEN" "$OUTDIR/scenario/run.sh"
for f in "${FILES[@]+"${FILES[@]}"}"; do cp "$f" "$OUTDIR/scenario/"; done
: >"$OUTDIR/scenario/env"
for e in "${ENVS[@]+"${ENVS[@]}"}"; do
	k=${e%%=*} v=${e#*=}
	printf "%s='%s'\n" "$k" "$(printf '%s' "$v" | sed "s/'/'\\\\''/g")" >>"$OUTDIR/scenario/env"
done

# A token unique to this run, in front of every namespace name.
FID_ID="fid$$x$(date +%s | tail -c 5)-"
FID_PROFILE=$PROFILE
export RVS_BIN FID_ID FID_PROFILE
say "rvs ($("$RVS_BIN" --version 2>/dev/null || echo '?'), profile $PROFILE), scenario $SCEN, output in $OUTDIR"
: >"$OUTDIR/output.txt"
t0=$(date +%s.%N)
set +e
timeout -k 5 "$TIMEOUT" unshare --mount --pid --fork --kill-child --mount-proc --propagation private \
	bash "$OUTDIR/lib/host-run.sh" --inner "$OUTDIR" >"$OUTDIR/output.txt" 2>&1 &
upid=$!
if [ "$QUIET" = 0 ]; then
	tail -n +1 -f --pid="$upid" "$OUTDIR/output.txt" &
	tpid=$!
fi
wait "$upid"
urc=$?
[ "$QUIET" = 0 ] && wait "$tpid" 2>/dev/null
set -e
t1=$(date +%s.%N)
rm -f "$OUTDIR/bin/rvs"

mkdir -p "$OUTDIR/files"
awk -v dir="$OUTDIR/files" '
	/^@@FILE-BEGIN / { f = dir "/" $2; printf "" > f; on = 1; next }
	/^@@FILE-END /   { close(f); on = 0; next }
	on { print > f }
' "$OUTDIR/output.txt"
rc=$(awk '/^@@RVS scenario-exit/ { sub("rc=", "", $3); print $3 }' "$OUTDIR/output.txt")
if [ "$urc" = 124 ] || [ "$urc" = 137 ]; then
	say "run timed out after ${TIMEOUT}s"
	rc=124
fi
printf 'director=rvs profile=%s wall_s=%.1f unshare_rc=%s scenario_rc=%s\n' \
	"$PROFILE" "$(awk "BEGIN{print $t1-$t0}")" "$urc" "${rc:-?}" >"$OUTDIR/run-info.txt"
say "$(cat "$OUTDIR/run-info.txt")"
say "output: $OUTDIR/output.txt"
exit "${rc:-1}"
