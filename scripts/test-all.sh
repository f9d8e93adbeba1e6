#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, golden and (as root) the end-to-end
# tests with network namespaces and the fidelity subset against Linux 6.1 in a VM. This is
# the README's test command and what CI runs.
#
# Tests that need root, namespaces or the VM fail with a message saying so, unless
# RVS_SKIP_NETNS=1 (or RVS_SKIP_VM=1 for the fidelity subset) asks to skip them. A skipped
# test passes as far as the test harness knows, so each one writes a line to $RVS_SKIP_LOG,
# and the summary at the end counts and names them.
set -euo pipefail
cd "$(dirname "$0")/.."
skips=$(mktemp "${TMPDIR:-/tmp}/rvs-skips.XXXXXX")
trap 'rm -f "$skips"' EXIT
export RVS_SKIP_LOG=$skips
status=0
cargo test --workspace --release --locked "$@" || status=$?
n=$(grep -c . "$skips" || true)
echo
if [ "$n" -gt 0 ]; then
	echo "== $n test(s) SKIPPED on request (they checked nothing):"
	sed 's/^/   /' "$skips"
else
	echo "== no test skipped"
fi
exit "$status"
