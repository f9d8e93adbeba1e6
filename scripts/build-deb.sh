#!/usr/bin/env bash
# Builds the Debian packages of a director into $CARGO_TARGET_DIR/debian (target/debian by
# default): rvs (the binary, the rvsadm link, the man pages, the systemd unit, the default
# config), its debug symbols rvs-dbgsym, and rvs-ipvsadm (only the ipvsadm link). See the
# README, "Install on a director (Debian package)".
#
# cargo-deb assembles them from [package.metadata.deb] in crates/rvs/Cargo.toml; install it
# with `cargo install cargo-deb --locked` (about 2 minutes on 2 cores). This script builds
# the release binary first and has that binary write the man pages, so that the pages in a
# package always describe the binary beside them; cargo-deb then only packs (--no-build).
#
# --no-build packs the binary already at $CARGO_TARGET_DIR/release/rvs instead of building
# it: crates/rvs/tests/deb_package.rs does that with the binary its `cargo test` run built,
# in a target folder of its own (a cargo inside `cargo test` would wait on the outer one's
# lock of its target folder).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null; then
	echo "build-deb.sh: cargo-deb is not installed; run: cargo install cargo-deb --locked" >&2
	exit 1
fi
target=${CARGO_TARGET_DIR:-target}
out="$target/debian"
man="$target/release/man"

case "${1:-}" in
"") cargo build --release --locked -p rvs ;;
--no-build) ;;
*)
	echo "usage: $0 [--no-build]" >&2
	exit 2
	;;
esac
if [ ! -x "$target/release/rvs" ]; then
	echo "build-deb.sh: no binary at $target/release/rvs to pack" >&2
	exit 1
fi

# The pages, gzipped as Debian policy wants them (cargo-deb leaves built files as they are).
rm -rf "$man"
"$target/release/rvs" man --out "$man" >/dev/null
gzip -9n "$man"/*

mkdir -p "$out"
rm -f "$out"/rvs_*.deb "$out"/rvs-dbgsym_*.ddeb "$out"/rvs-ipvsadm_*.deb
# The binary carries line tables (profile.release debug = 1): they go to rvs-dbgsym.
cargo deb --locked -p rvs --no-build --dbgsym -o "$out"
# (cargo-deb warns that this one has no maintainer scripts: it needs none.)
cargo deb --locked -p rvs --no-build --variant ipvsadm -o "$out"
ls -l "$out"/rvs_*.deb "$out"/rvs-dbgsym_*.ddeb "$out"/rvs-ipvsadm_*.deb
