#!/usr/bin/env bash
# Builds rvs and runs `rvs demo`: the rolling-update incident and its fix with real packets
# through real kernel TCP stacks in network namespaces (needs root). Extra arguments go to
# `rvs demo` (e.g. --profile safe, --json, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p rvs
exec ./target/release/rvs demo "$@"
