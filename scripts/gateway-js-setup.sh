#!/usr/bin/env bash
# Prepare the gateway's JavaScript clients (tests/gateway: playwright-core for headless
# Chromium, @helia/verified-fetch) with their npm packages under target/gateway-js. The
# packages are reused while package-lock.json is unchanged; the scripts are copied every time.
# Prints the directory's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/gateway"
dst="$root/target/gateway-js"
# Tests run in parallel: one setup at a time.
mkdir -p "$root/target"
exec 9>"$root/target/gateway-js.lock"
flock 9
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "gateway-js-setup: installing nodejs and npm" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if ! command -v chromium >/dev/null; then
  echo "gateway-js-setup: installing chromium" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f "$dst/.ready" ] || ! cmp -s "$src/package-lock.json" "$dst/package-lock.json"; then
  rm -rf "$dst"
  mkdir -p "$dst"
  cp -f "$src/package.json" "$src/package-lock.json" "$dst/"
  (cd "$dst" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$dst/.ready"
fi
cp -f "$src"/*.mjs "$dst/"
echo "$dst"
