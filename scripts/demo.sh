#!/usr/bin/env bash
# A first look at cairn on a fresh machine: builds the `cairn` binary, starts two nodes on this
# machine (repos under target/demo, loopback only), adds a generated 32 MiB file and a small
# site on node A, and has node B fetch both over the network (Kademlia DHT + Bitswap), checking
# every byte. Then it moves the site as a CAR file and stops both daemons. Nothing leaves this
# machine: `--profile local` nodes listen on 127.0.0.1 and know no public peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release -p cairn
cairn="$PWD/target/release/cairn"
demo="$PWD/target/demo"
a="$demo/node-a" b="$demo/node-b"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$demo"
mkdir -p "$demo/site/img"

step() { printf '\n== %s\n' "$*"; }
ready() { # wait for a daemon's "Daemon is ready" line
  for _ in $(seq 1 300); do grep -q "Daemon is ready" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "daemon did not start; see $1" >&2; exit 1
}

step "two nodes, each with its own repo and identity"
"$cairn" --repo "$a" init --profile local
"$cairn" --repo "$b" init --profile local
"$cairn" --repo "$a" daemon > "$demo/a.log" 2>&1 & pids+=($!)
ready "$demo/a.log"
addr_a=$("$cairn" --repo "$a" id --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(next(a for a in d["Addresses"] if "/tcp/" in a))')
# B knows A only as its DHT bootstrap peer.
sed -i "s|^bootstrap = \[\]|bootstrap = [\"$addr_a\"]|" "$b/config.toml"
"$cairn" --repo "$b" daemon > "$demo/b.log" 2>&1 & pids+=($!)
ready "$demo/b.log"
echo "node A: $addr_a"
echo "node B: $("$cairn" --repo "$b" id)"

step "add a 32 MiB file and a small site on node A (chunked, hashed, stored durably, pinned, announced)"
head -c $((32 << 20)) /dev/urandom > "$demo/video.bin"
cid=$("$cairn" --repo "$a" add -Q "$demo/video.bin")
printf '<!doctype html><title>cairn</title><h1>Hello from cairn</h1><img src="img/dot.svg">\n' > "$demo/site/index.html"
printf '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><circle cx="4" cy="4" r="4"/></svg>\n' > "$demo/site/img/dot.svg"
site=$("$cairn" --repo "$a" add -r -Q "$demo/site")
echo "file CID: $cid"
echo "site CID: $site"

step "node B fetches both over the network, verifying every block"
"$cairn" --repo "$b" cat "$cid" | cmp - "$demo/video.bin" && echo "cat on B: 32 MiB, bytes match"
"$cairn" --repo "$b" cat "$cid" --offset 1000000 --length 16 | od -An -tx1
"$cairn" --repo "$b" get "$site" -o "$demo/site-copy"
diff -r "$demo/site" "$demo/site-copy" && echo "get on B: site tree matches"
"$cairn" --repo "$b" pin add "$site" >/dev/null && echo "B pinned the site: it now serves it too"
"$cairn" --repo "$b" bitswap stat

step "node B's HTTP gateway serves the site to browsers, with node A stopped"
"$cairn" --repo "$a" shutdown
gw_b=$(cat "$b/gateway")
curl -sS "$gw_b/ipfs/$site/" | cmp - "$demo/site/index.html" && echo "GET $gw_b/ipfs/$site/ -> index.html, bytes match"
curl -sS -o /dev/null -w 'Range request: HTTP %{http_code}, %{size_download} bytes\n' -H 'Range: bytes=1000000-1000015' "$gw_b/ipfs/$cid"
echo "open in a browser: http://$site.ipfs.localhost:${gw_b##*:}/"
"$cairn" --repo "$a" daemon > "$demo/a.log" 2>&1 & pids+=($!)
ready "$demo/a.log"

step "move the site as a CAR file (for offline transfer)"
"$cairn" --repo "$a" dag export "$site" -o "$demo/site.car"
ls -l "$demo/site.car"

step "stop both daemons"
"$cairn" --repo "$b" shutdown
"$cairn" --repo "$a" shutdown
"$cairn" --repo "$a" repo verify
echo
echo "demo OK: repos and logs are in $demo (try: $cairn --repo $a --help)"
