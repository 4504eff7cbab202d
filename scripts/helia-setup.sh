#!/usr/bin/env bash
# Prepare a private copy of ../shared/helia-peer (read-only there) with its npm packages,
# under target/helia-peer. Reused while package-lock.json is unchanged. Prints the copy's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${CAIRN_SHARED:-$root/../shared}"
src="$shared/helia-peer"
dst="$root/target/helia-peer"
if [ ! -f "$src/package-lock.json" ]; then
  echo "helia-setup: $src/package-lock.json not found (is ../shared beside the repo?)" >&2
  exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "helia-setup: installing nodejs and npm" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ -f "$dst/.ready" ] && cmp -s "$src/package-lock.json" "$dst/package-lock.json"; then
  # Refresh the scripts (cheap) but keep node_modules.
  (cd "$src" && find . -path ./node_modules -prune -o -type f -print | while read -r f; do
     mkdir -p "$dst/$(dirname "$f")"; cp -f "$f" "$dst/$f"; done)
  cp -f "$root"/tests/js/*.mjs "$dst/"
  echo "$dst"
  exit 0
fi
rm -rf "$dst"
mkdir -p "$dst"
(cd "$src" && tar --exclude=node_modules -cf - .) | (cd "$dst" && tar -xf -)
chmod -R u+w "$dst"
(cd "$dst" && npm ci --no-audit --no-fund --loglevel=error >&2)
cp -f "$root"/tests/js/*.mjs "$dst/"
touch "$dst/.ready"
echo "$dst"
