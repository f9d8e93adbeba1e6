#!/usr/bin/env bash
# The differential fidelity suite: every scenario through the real Linux IPVS (a VM, via
# tests/kernel-vm/run.sh) and through rvs (this machine's namespaces, the rvs
# daemon as the director), compared. As root.
#
#   scripts/fidelity.sh            the whole suite (about 15 minutes on 2 cores)
#   scripts/fidelity.sh ci         the CI subset (what `cargo test -p rvs-fidelity` runs)
#   scripts/fidelity.sh list       the case names;  scripts/fidelity.sh CASE...  some cases
#   options: --out DIR (default target/fidelity/<unix time>), --sequential
#
# Prints the report and writes it to DIR/report.txt; exits 1 on any difference that
# tests/fidelity/known-differences.toml does not list (see tests/fidelity/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p rvs -p rvs-fidelity
export RVS_BIN=$PWD/target/release/rvs
if [ $# -eq 0 ]; then set -- all; fi
exec ./target/release/rvs-fidelity "$@"
