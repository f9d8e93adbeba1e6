#!/usr/bin/env bash
# Prints what the tests could leave behind on this machine, one sorted line per object:
# network namespaces, links (TUN devices, veths), policy rules, routes of every table,
# processes of the project's programs, files and mounts below /run, /tmp and /var/tmp with
# the project's names. .ci/run takes it before and after the test runs and fails on any
# difference, so a run that leaks a namespace, a TUN device, a rule or a daemon is caught.
set -uo pipefail
{
	ip netns list 2>/dev/null | awk '{print "netns " $1}'
	ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}'
	ip rule show 2>/dev/null | sed 's/^/rule4 /'
	ip -6 rule show 2>/dev/null | sed 's/^/rule6 /'
	ip -4 route show table all 2>/dev/null | grep -v '^local\|^broadcast\|^multicast' | sed 's/^/route4 /'
	ip -6 route show table all 2>/dev/null | grep -v '^local\|^multicast\|^anycast' | sed 's/^/route6 /'
	for p in rvs rvsadm qemu-system-x86 tcpserver tcpclient udpflow nginx wrk ab; do
		pgrep -x "$p" >/dev/null 2>&1 && pgrep -a -x "$p" | sed "s/^[0-9]* /process $p: /"
	done
	find /run /tmp /var/tmp -maxdepth 2 \( -iname '*rvs*' -o -iname '*fid*' -o -iname 'lab-*' \) \
		-not -path '/tmp/rvs-ci.*' 2>/dev/null | sed 's/^/file /'
	awk '$2 ~ /^\/(run|tmp|var\/tmp)/ {print "mount " $2}' /proc/self/mounts
} | sort
