#!/usr/bin/env bash
# Runs every test of sse-edge: lint, the wasm filter build, and all Rust tests
# (policy units and properties, host units, integration tests on real sockets).
#
# Run with: tests/run.sh
# Prerequisites: a Rust toolchain (rustup). plugin/build.sh adds the wasm32 target
# itself. Build output goes to $CARGO_TARGET_DIR (default ~/.cache/sse-edge/target),
# outside the checkout, so fresh clones reuse earlier builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sse-edge/target}
export CARGO_TERM_COLOR=never

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "format"
cargo fmt --all -- --check

step "build the wasm filter"
SSE_FILTER_WASM=$(plugin/build.sh)
export SSE_FILTER_WASM

step "clippy (native and wasm32)"
cargo clippy --workspace --exclude sse-filter --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p sse-filter -p sse-policy -- -D warnings

step "tests"
cargo test --workspace --exclude sse-filter

step "all tests passed"
