#!/usr/bin/env bash
# tests/kernel-vm/run.sh — run a scenario on the real Linux 6.1 IPVS: Debian's stock kernel
# booted under QEMU with its own IPVS modules, ipvsadm 1.31 and iproute2, everything as root
# on this machine, every packet inside the VM.  The kernel side of the fidelity suite
# (crates/rvs-fidelity); see README.md next to this file.
#
#   tests/kernel-vm/run.sh [options] SCENARIO.sh
#   tests/kernel-vm/run.sh --setup        prepare only (packages, kernel, initramfs)
#
#   -e KEY=VAL   a variable for the scenario (repeatable)
#   -f FILE      a file copied into the scenario's folder, /scenario (repeatable)
#   -o DIR       output folder (default $RVS_VM_WORK/runs/<time>-<pid>-<scenario>)
#   -t SECS      stop the VM after SECS seconds (default 1800); the exit status is then 124
#   -m MEM       guest memory (default 1024M)
#   -c N         guest CPUs (default 2)
#   -a ACCEL     kvm, tcg or auto (default: auto, KVM when a probe boot works, else TCG)
#   -q           quiet: do not copy the scenario's output to stdout as it comes
#   -n TAP       give the VM a virtio NIC (eth0) on tap device TAP, which must exist in
#                the network namespace run.sh runs in
#   --rebuild    rebuild the initramfs even when its inputs did not change
#   --setup      prepare, then exit
#
# Output folder: output.txt (the scenario's stdout and stderr, byte for byte), files/NAME
# (each `emit NAME cmd...` of the scenario), console.log (the kernel's console),
# run-info.txt (accelerator, boot time, wall time, exit codes).  Exit status: the
# scenario's; 124 when the VM ran out of time; 2 for a usage error.
#
# Environment:
#   RVS_VM_WORK        work folder (default /var/tmp/rvs-kernel-vm): the kernel extract, the
#                      initramfs, the accelerator probe and the default run folders
#   RVS_VM_KERNEL_PKG  the Debian kernel package to boot (default
#                      linux-image-6.1.0-56-amd64-unsigned, the one the suite was checked
#                      with; "latest" = what linux-image-amd64 depends on, unsigned)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${RVS_VM_WORK:-/var/tmp/rvs-kernel-vm}
PINNED_KERNEL=linux-image-6.1.0-56-amd64-unsigned
WANT_KERNEL=${RVS_VM_KERNEL_PKG:-$PINNED_KERNEL}

# The Debian packages this needs on the host.
HOST_PKGS=(qemu-system-x86 busybox-static ipvsadm iproute2 iptables conntrack cpio kmod gcc libc6-dev)

# Modules loaded at boot (their dependencies are added): IPVS with every 6.1 scheduler,
# conntrack and NAT, the iptables pieces kube-proxy's rules use, veth and dummy for the
# topology, the socket diagnostics behind `ss`, and virtio for -n.
MODULES=(
	ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sed ip_vs_nq ip_vs_sh ip_vs_dh
	ip_vs_mh ip_vs_lblc ip_vs_lblcr ip_vs_fo ip_vs_ovf ip_vs_ftp
	nf_conntrack nf_nat nf_conntrack_netlink nfnetlink crc32c_generic
	x_tables ip_tables iptable_filter iptable_nat iptable_mangle
	xt_MASQUERADE xt_mark xt_conntrack xt_comment xt_addrtype xt_multiport xt_tcpudp
	veth dummy inet_diag tcp_diag udp_diag virtio_pci virtio_net
)

say() { printf '[kernel-vm] %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 2
}
usage() { # usage STATUS: the option summary at the top of this file
	sed -n '/^#   tests/,/^#   --setup  /p' "$0" | sed 's/^# \{0,1\}//'
	exit "$1"
}

ENVS=() FILES=()
SCENARIO="" OUT="" TIMEOUT=1800 MEM=1024M CPUS=2 ACCEL=auto QUIET=0 TAP="" REBUILD=0 SETUP=0
need_arg() { [ "$2" -ge 2 ] || die "option $1 needs a value"; }
while [ $# -gt 0 ]; do
	case $1 in
	-e) need_arg "$1" $#; ENVS+=("$2"); shift 2 ;;
	-f) need_arg "$1" $#; FILES+=("$2"); shift 2 ;;
	-o) need_arg "$1" $#; OUT=$2; shift 2 ;;
	-t) need_arg "$1" $#; TIMEOUT=$2; shift 2 ;;
	-m) need_arg "$1" $#; MEM=$2; shift 2 ;;
	-c) need_arg "$1" $#; CPUS=$2; shift 2 ;;
	-a) need_arg "$1" $#; ACCEL=$2; shift 2 ;;
	-n) need_arg "$1" $#; TAP=$2; shift 2 ;;
	-q) QUIET=1; shift ;;
	--rebuild) REBUILD=1; shift ;;
	--setup) SETUP=1; shift ;;
	-h|--help) usage 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) [ -z "$SCENARIO" ] || die "one scenario only (got $SCENARIO and $1)"; SCENARIO=$1; shift ;;
	esac
done
[ "$SETUP" = 1 ] || [ -n "$SCENARIO" ] || usage 2 >&2
case $TIMEOUT in '' | *[!0-9]*) die "-t wants whole seconds, not $TIMEOUT" ;; esac
case $ACCEL in kvm | tcg | auto) ;; *) die "-a wants kvm, tcg or auto, not $ACCEL" ;; esac
for e in "${ENVS[@]+"${ENVS[@]}"}"; do
	case ${e%%=*} in
	'' | [0-9]* | *[!A-Za-z0-9_]*) die "-e wants KEY=VALUE with KEY a shell name: $e" ;;
	esac
	[ "$e" != "${e#*=}" ] || die "-e wants KEY=VALUE: $e"
done
if [ -n "$SCENARIO" ]; then
	[ -f "$SCENARIO" ] || die "no such scenario: $SCENARIO"
fi
for f in "${FILES[@]+"${FILES[@]}"}"; do
	[ -f "$f" ] || die "no such file (-f): $f"
done
[ "$(id -u)" = 0 ] || die "needs root (it installs packages and builds the VM image)"
mkdir -p "$WORK"

# ---- preparation, one process at a time (runs may overlap once it is done) -----------
install_packages() {
	local missing=() p
	for p in "${HOST_PKGS[@]}"; do
		[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Sets KPKG: the kernel package to use.
choose_kernel() {
	KPKG=$WANT_KERNEL
	# The pinned kernel was found gone from the archive before: use what replaced it.
	if [ -z "${RVS_VM_KERNEL_PKG:-}" ] && [ "$KPKG" = "$PINNED_KERNEL" ] &&
		[ -f "$WORK/kernel/$PINNED_KERNEL.replaced-by" ]; then
		KPKG=$(cat "$WORK/kernel/$PINNED_KERNEL.replaced-by")
	fi
	if [ "$KPKG" = latest ]; then
		KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2 "-unsigned"; exit }')
		[ -n "$KPKG" ] || die "apt-cache does not know linux-image-amd64 (apt-get update?)"
	fi
}

# The kernel and the module folders that matter, from the .deb, in $WORK/kernel/$KPKG.
# Sets KDIR, KVER, VMLINUZ.
fetch_kernel() {
	KDIR=$WORK/kernel/$KPKG
	if [ ! -f "$KDIR/.complete" ]; then
		local dl=$WORK/download
		rm -rf "$dl" "$KDIR"
		mkdir -p "$dl" "$KDIR"
		say "downloading $KPKG (apt-get download)"
		if ! (cd "$dl" && apt-get download "$KPKG" >/dev/null 2>"$dl/apt.err"); then
			apt-get update -qq
			if ! (cd "$dl" && apt-get download "$KPKG" >/dev/null 2>"$dl/apt.err"); then
				cat "$dl/apt.err" >&2
				# Debian keeps only the newest kernel of a release in its archive. When the
				# pinned one is gone, and nobody asked for it by name, take the current 6.1
				# kernel (the IPVS code the suite compares with does not change within 6.1's
				# stable updates), and say so.
				[ -z "${RVS_VM_KERNEL_PKG:-}" ] ||
					die "cannot download $KPKG (set RVS_VM_KERNEL_PKG=latest for the current 6.1 kernel)"
				WANT_KERNEL=latest
				choose_kernel
				say "the pinned $PINNED_KERNEL is no longer in the archive: using $KPKG instead"
				KDIR=$WORK/kernel/$KPKG
				rm -rf "$KDIR"
				mkdir -p "$KDIR"
				(cd "$dl" && apt-get download "$KPKG" >/dev/null 2>"$dl/apt.err") || {
					cat "$dl/apt.err" >&2
					die "cannot download $KPKG either"
				}
				echo "$KPKG" >"$WORK/kernel/$PINNED_KERNEL.replaced-by"
			fi
		fi
		local deb
		deb=$(find "$dl" -maxdepth 1 -name '*.deb' | head -n 1)
		[ -n "$deb" ] || die "apt-get download left no .deb in $dl"
		# About 60 MB of the package's 400: the kernel, the module metadata, and the
		# module folders the list above draws from.
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR" --wildcards \
			'./boot/vmlinuz-*' \
			'./lib/modules/*/modules.builtin' './lib/modules/*/modules.builtin.modinfo' \
			'./lib/modules/*/modules.order' \
			'./lib/modules/*/kernel/net/*' './lib/modules/*/kernel/lib/*' \
			'./lib/modules/*/kernel/crypto/*' './lib/modules/*/kernel/arch/*' \
			'./lib/modules/*/kernel/drivers/net/*' './lib/modules/*/kernel/drivers/virtio/*'
		local ver
		ver=$(ls "$KDIR/lib/modules")
		depmod -b "$KDIR" "$ver"
		rm -rf "$dl"
		touch "$KDIR/.complete"
	fi
	KVER=$(ls "$KDIR/lib/modules")
	VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-*)
}

# The modules to load, dependencies first, as paths under lib/modules/$KVER/ (kmod's own
# resolver, on the extracted tree).
module_order() {
	local m line seen=" "
	for m in "${MODULES[@]}"; do
		modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" >"$WORK/.deps" 2>&1 ||
			die "module $m: $(cat "$WORK/.deps")"
		while read -r line; do
			case $line in
			insmod\ *) ;;
			*) continue ;; # builtin ones
			esac
			line=${line#insmod }
			line=${line%% *}
			line=${line#"$KDIR/lib/modules/$KVER/"}
			case $seen in *" $line "*) continue ;; esac
			seen="$seen$line "
			echo "$line"
		done <"$WORK/.deps"
	done
	rm -f "$WORK/.deps"
}

# The base initramfs: busybox, the tools with their libraries, the helpers, the modules,
# guest/. Named after a hash of everything that goes in, so a change rebuilds it.
# Sets BASE.
build_base() {
	local key
	key=$({
		echo "$KPKG ${MODULES[*]} ${HOST_PKGS[*]}"
		cat "$HERE/run.sh" "$HERE/guest/init" "$HERE/guest/lib.sh" "$HERE/src/tcpclient.c" "$HERE/src/tcpserver.c"
		dpkg-query -W busybox-static ipvsadm iproute2 iptables conntrack libc6
	} | sha256sum | cut -c1-16)
	BASE=$WORK/initramfs-$key.cpio.gz
	if [ "$REBUILD" = 0 ] && [ -s "$BASE" ]; then
		return 0
	fi
	say "building the initramfs ($KVER)"
	local R=$WORK/rootfs
	rm -rf "$R"
	mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib64,etc/rvs-vm,etc/kipvs,proc,sys,dev,run,tmp,root,scenario}

	# Tools from this machine's packages, and every library they load (xtables extensions
	# are loaded at run time, so all of them come along).
	local tools=(/usr/sbin/ipvsadm /usr/sbin/ip /usr/bin/ss /usr/sbin/xtables-legacy-multi /usr/sbin/conntrack)
	local t lib
	for t in "${tools[@]}"; do
		cp "$t" "$R/usr/sbin/"
	done
	mkdir -p "$R/usr/lib/x86_64-linux-gnu"
	cp -a /usr/lib/x86_64-linux-gnu/xtables "$R/usr/lib/x86_64-linux-gnu/"
	for lib in $(ldd "${tools[@]}" /usr/lib/x86_64-linux-gnu/xtables/*.so 2>/dev/null |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(0x/ { print $1 }' | sort -u); do
		mkdir -p "$R$(dirname "$lib")"
		cp -L "$lib" "$R$lib"
	done
	[ -e "$R/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
	for t in iptables iptables-save iptables-restore iptables-legacy iptables-legacy-save iptables-legacy-restore; do
		ln -s xtables-legacy-multi "$R/usr/sbin/$t"
	done

	# busybox for everything else (an applet never shadows a tool copied above).
	cp /bin/busybox "$R/bin/busybox"
	local a
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] && continue
		[ -e "$R/usr/sbin/$a" ] && continue
		ln -s busybox "$R/bin/$a"
	done

	# The helpers, static.
	gcc -static -O2 -Wall -o "$R/usr/local/bin/tcpclient" "$HERE/src/tcpclient.c"
	gcc -static -O2 -Wall -o "$R/usr/local/bin/tcpserver" "$HERE/src/tcpserver.c"

	# Modules, in load order.
	local mroot=$KDIR/lib/modules/$KVER m
	module_order >"$R/etc/rvs-vm/modules"
	while read -r m; do
		mkdir -p "$R/lib/modules/$KVER/$(dirname "$m")"
		cp "$mroot/$m" "$R/lib/modules/$KVER/$m"
	done <"$R/etc/rvs-vm/modules"
	cp "$mroot"/modules.{dep,dep.bin,alias,alias.bin,symbols,symbols.bin,builtin,builtin.bin,softdep} \
		"$R/lib/modules/$KVER/" 2>/dev/null || true

	install -m 755 "$HERE/guest/init" "$R/init"
	install -m 644 "$HERE/guest/lib.sh" "$R/etc/rvs-vm/lib.sh"
	ln -s ../rvs-vm/lib.sh "$R/etc/kipvs/lib.sh" # the older harness's path, for old scenarios
	echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
	echo 'root:x:0:' >"$R/etc/group"
	printf 'icmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\nsctp 132 SCTP\n' >"$R/etc/protocols"
	# Only http: `ipvsadm -L` then names port 80 and leaves the others numeric, as in the
	# captured golden outputs.
	printf 'http 80/tcp\n' >"$R/etc/services"

	(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -1) >"$BASE.part"
	mv "$BASE.part" "$BASE"
	local nmod
	nmod=$(grep -c . "$R/etc/rvs-vm/modules")
	rm -rf "$R"
	find "$WORK" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -path "$BASE" -delete
	say "initramfs $(du -h "$BASE" | cut -f1), $nmod modules"
}

# Sets ACC: the accelerator to use.  auto: KVM only if a kernel really boots under it
# (a /dev/kvm can exist and still never run a guest); the answer is kept per host kernel.
pick_accel() {
	ACC=$ACCEL
	[ "$ACC" = auto ] || return 0
	local cache=$WORK/accel-$(uname -r)
	if [ -s "$cache" ]; then
		ACC=$(cat "$cache")
		return 0
	fi
	ACC=tcg
	if [ -c /dev/kvm ] && [ -w /dev/kvm ]; then
		local probe=$WORK/kvm-probe.log
		: >"$probe"
		# No initramfs: a working kernel panics for want of a root file system.
		timeout 20 qemu-system-x86_64 -accel kvm -cpu host -machine pc -m 256M -nodefaults \
			-display none -no-reboot -kernel "$VMLINUZ" \
			-append "console=ttyS0 panic=-1 rdinit=/none" -serial "file:$probe" \
			>/dev/null 2>&1 || true
		grep -q 'Kernel panic' "$probe" && ACC=kvm
	fi
	echo "$ACC" >"$cache"
}

exec 8>"$WORK/.prepare.lock"
flock 8
install_packages
choose_kernel
fetch_kernel
build_base
pick_accel
flock -u 8
exec 8>&-
if [ "$SETUP" = 1 ]; then
	say "ready: $KPKG ($KVER), $BASE, accelerator $ACC"
	exit 0
fi

# ---- one run ----------------------------------------------------------------------------
name=$(basename "$SCENARIO" .sh)
[ -n "$OUT" ] || OUT=$WORK/runs/$(date +%Y%m%d-%H%M%S)-$$-$name
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/files" "$OUT/.scenario"
mkdir -p "$OUT/.scenario/scenario"

# The run's own archive, appended to the base one (the kernel unpacks both).
cp "$SCENARIO" "$OUT/.scenario/scenario/run.sh"
for f in "${FILES[@]+"${FILES[@]}"}"; do
	cp "$f" "$OUT/.scenario/scenario/"
done
squote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
for e in "${ENVS[@]+"${ENVS[@]}"}"; do
	printf '%s=%s\n' "${e%%=*}" "$(squote "${e#*=}")"
done >"$OUT/.scenario/scenario/env"
(cd "$OUT/.scenario" && find scenario -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$OUT/.scenario.cpio.gz"
cat "$BASE" "$OUT/.scenario.cpio.gz" >"$OUT/initrd.img"
rm -rf "$OUT/.scenario" "$OUT/.scenario.cpio.gz"

cpu=max
[ "$ACC" = kvm ] && cpu=host
net=()
[ -z "$TAP" ] || net=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no"
	-device "virtio-net-pci,netdev=n0,mac=52:54:00:72:76:73")
: >"$OUT/output.txt"
: >"$OUT/console.log"
say "booting $KVER ($ACC, $CPUS CPUs, $MEM): $SCENARIO -> $OUT"
start=$(date +%s.%N)
set +e
timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 \
	-accel "$ACC" -cpu "$cpu" -machine pc -smp "$CPUS" -m "$MEM" \
	-nodefaults -no-user-config -display none -no-reboot \
	-kernel "$VMLINUZ" -initrd "$OUT/initrd.img" \
	-append "console=ttyS0,115200 rdinit=/init panic=-1 oops=panic loglevel=4 mitigations=off tsc=reliable" \
	-serial "file:$OUT/console.log" -serial "file:$OUT/output.txt" \
	"${net[@]+"${net[@]}"}" >"$OUT/qemu.log" 2>&1 &
qemu=$!
follower=""
if [ "$QUIET" = 0 ]; then
	tail -n +1 -f --pid="$qemu" "$OUT/output.txt" &
	follower=$!
fi
wait "$qemu"
qrc=$?
[ -z "$follower" ] || wait "$follower" 2>/dev/null
set -e
end=$(date +%s.%N)
rm -f "$OUT/initrd.img"

# files/NAME from the emit markers; the scenario's status from the exit marker.
mkdir -p "$OUT/files"
awk -v dir="$OUT/files" '
	$1 == "@@FILE-BEGIN" { path = dir "/" $2; printf "" > path; inside = 1; next }
	$1 == "@@FILE-END" { close(path); inside = 0; next }
	inside { print > path }
' "$OUT/output.txt"
marker() { # marker NAME FIELD: FIELD=value of the last "@@KIPVS NAME" line
	awk -v n="$1" -v f="$2=" '$1 == "@@KIPVS" && $2 == n {
		for (i = 3; i <= NF; i++) if (index($i, f) == 1) v = substr($i, length(f) + 1)
	} END { print v }' "$OUT/output.txt"
}
boot=$(marker scenario-start uptime)
rc=$(marker scenario-exit rc)
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	say "the VM ran out of time (${TIMEOUT} s)"
	rc=124
fi
printf 'accel=%s guest_boot_to_scenario_s=%s wall_s=%s qemu_rc=%s scenario_rc=%s kernel=%s\n' \
	"$ACC" "${boot:-?}" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" \
	"$qrc" "${rc:-?}" "$KVER" >"$OUT/run-info.txt"
say "$(cat "$OUT/run-info.txt")"
say "output: $OUT/output.txt"
exit "${rc:-1}"
