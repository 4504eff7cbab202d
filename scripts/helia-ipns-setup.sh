#!/usr/bin/env bash
# Prepare a copy of tests/helia-ipns (the Helia IPNS peer) with its npm packages under
# target/helia-ipns. Reused while package-lock.json is unchanged. Prints the copy's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/helia-ipns"
dst="$root/target/helia-ipns"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "helia-ipns-setup: installing nodejs and npm" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
copy() {
  (cd "$src" && tar --exclude=node_modules -cf - .) | (cd "$dst" && tar -xf -)
}
if [ -f "$dst/.ready" ] && cmp -s "$src/package-lock.json" "$dst/package-lock.json"; then
  copy
  echo "$dst"
  exit 0
fi
rm -rf "$dst"
mkdir -p "$dst"
copy
(cd "$dst" && npm ci --no-audit --no-fund --loglevel=error >&2)
touch "$dst/.ready"
echo "$dst"
