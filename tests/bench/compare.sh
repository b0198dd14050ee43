#!/usr/bin/env bash
# The performance comparison in one command: builds the release host, the bench and the
# wasm filter, then runs sse-bench (our host vs nginx+nchan, same client, same run) and
# writes the table to stdout and the figures to bench-results.json.
#
# Needs: nginx + nchan (`apt-get install -y nginx libnginx-mod-nchan`), Envoy, redis-server.
# Extra arguments go to sse-bench (e.g. `--idle 5000 --skip envoy,redis`); see
# tests/bench/main.rs. Bounded: every scenario has a fixed count and a 60 s delivery cap.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sse-edge/target}
ulimit -n "$(ulimit -Hn)" # 15,000 idle streams need as many descriptors in the client
cargo build --release -q -p sse-host -p sse-tests
SSE_FILTER_WASM=$(plugin/build.sh)
export SSE_FILTER_WASM
exec "$CARGO_TARGET_DIR/release/sse-bench" --json "${SSE_BENCH_JSON:-bench-results.json}" "$@"
