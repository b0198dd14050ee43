#!/usr/bin/env bash
# Builds the proxy-wasm filter and copies it to plugin/dist/sse_filter.wasm (the one
# path Envoy's config, the host's embedded edge and the tests read).
#
# Run with: plugin/build.sh
#
# 1. rustup's wasm32-unknown-unknown target (added if missing, with a timeout and one
#    retry: the download has been seen to hang);
# 2. otherwise Debian's rustc-web toolchain with build-std (no download from rustup),
#    in its own target dir so the two compilers never rebuild each other's artifacts.
# SSE_FILTER_TOOLCHAIN=debian forces the second path (to check it still works).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=plugin/dist/sse_filter.wasm
mkdir -p plugin/dist

have_rustup_target() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && return 0
  for attempt in 1 2; do
    echo "build.sh: adding rustup target wasm32-unknown-unknown (attempt $attempt)" >&2
    timeout 120 rustup target add wasm32-unknown-unknown >&2 && return 0
  done
  return 1
}

if [ "${SSE_FILTER_TOOLCHAIN:-}" != debian ] && have_rustup_target; then
  cargo build --profile wasm-release --target wasm32-unknown-unknown -p sse-filter --target-dir "$target_dir" >&2
  built=$target_dir/wasm32-unknown-unknown/wasm-release/sse_filter.wasm
else
  echo "build.sh: rustup target unavailable; using Debian's rustc-web with build-std" >&2
  if ! command -v wasm-ld-16 >/dev/null 2>&1 || [ ! -x /usr/bin/rustc ]; then
    apt-get install -y rustc-web cargo-web rust-web-src lld-16 >&2
  fi
  src_root=$(ls -d /usr/src/rustc-*/library | sort -V | tail -1)
  debian_target=${target_dir}-debian
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-16 \
    __CARGO_TESTS_ONLY_SRC_ROOT="$src_root" /usr/bin/cargo build --profile wasm-release \
    --target wasm32-unknown-unknown -p sse-filter -Zbuild-std=std,panic_abort --target-dir "$debian_target" >&2
  built=$debian_target/wasm32-unknown-unknown/wasm-release/sse_filter.wasm
fi

cp "$built" "$out.tmp" && mv "$out.tmp" "$out"
echo "build.sh: $out ($(stat -c %s "$out") bytes)" >&2
echo "$root/$out"
