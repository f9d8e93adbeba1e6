#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, golden and (as root) the end-to-end
# tests with network namespaces. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release --locked "$@"
