#!/usr/bin/env bash
# What each Envoy knob does to the cost of an SSE connection through Envoy: renders a
# variant of envoy/envoy.yaml per knob, runs sse-bench's Envoy scenarios against it
# (idle streams: Envoy's RSS per downstream connection; then the connect rate) and prints
# one table. The results and what they mean are in envoy/README.md ("What a connection
# costs").
#
# Run with: tests/bench/envoy-knobs.sh [--idle N] [--connects M]   (defaults 5000, 3000)
# Needs Envoy (see README). About a minute per variant; run it alone (2 cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sse-edge/target}
ulimit -n "$(ulimit -Hn)"
idle=5000 connects=3000
while [ $# -gt 0 ]; do
  case $1 in
    --idle) idle=$2; shift 2 ;;
    --connects) connects=$2; shift 2 ;;
    *) echo "usage: $0 [--idle N] [--connects M]" >&2; exit 2 ;;
  esac
done
cargo build --release -q -p sse-host -p sse-tests
SSE_FILTER_WASM=$(plugin/build.sh)
export SSE_FILTER_WASM
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shipped=envoy/envoy.yaml

# Each variant: a name, a sed script applied to the shipped file, the host's edge.
variant() {
  local name=$1 script=$2 edge=$3
  local file="$work/$name.yaml"
  sed -e "$script" "$shipped" >"$file"
  if [ -n "$script" ] && cmp -s "$file" "$shipped"; then
    echo "envoy-knobs: variant $name changed nothing (envoy.yaml moved on?)" >&2
    exit 1
  fi
  local out
  out=$(SSE_ENVOY_YAML=$file "$CARGO_TARGET_DIR/release/sse-bench" --skip nchan,floor,wasm,native,redis,tls,envoy-h2 \
    --envoy-host-edge "$edge" --idle "$idle" --connects "$connects" 2>&1) || {
    echo "$out" >&2
    exit 1
  }
  local rss setups
  rss=$(sed -n 's/^  idle  .*proxy \([0-9.]*\) KiB\/stream.*/\1/p' <<<"$out" | head -1)
  setups=$(sed -n 's/^  connects .* streams: \([0-9]*\) setups\/s.*/\1/p' <<<"$out" | head -1)
  if [ -z "$rss" ] || [ -z "$setups" ]; then
    echo "envoy-knobs: no figures for $name in sse-bench's output:" >&2
    echo "$out" >&2
    exit 1
  fi
  printf '| %s | %s KiB | %s/s |\n' "$name" "$rss" "$setups"
}

echo "| variant | Envoy RSS per downstream SSE connection | setups/s through Envoy |"
echo "|---|---|---|"
variant shipped '' envoy
# The filter's share: no wasm filter, the host checks tokens itself.
variant no-filter '/^          - name: envoy.filters.http.wasm$/,/^          - name: envoy.filters.http.router$/{/envoy.filters.http.router/!d}' native
variant buffers-8k 's/per_connection_buffer_limit_bytes: 32768/per_connection_buffer_limit_bytes: 8192/;/^    connect_timeout: 2s$/a\    per_connection_buffer_limit_bytes: 8192' envoy
variant no-request-id '/^          stat_prefix: sse$/a\          generate_request_id: false' envoy
variant upstream-windows-64k '/explicit_http_config:/,/^            max_concurrent_streams: 1000$/{/^            max_concurrent_streams/a\            initial_stream_window_size: 65536\n            initial_connection_window_size: 1048576
}' envoy
variant request-headers-8kb 's/max_request_headers_kb: 32/max_request_headers_kb: 8/' envoy
