#!/usr/bin/env bash
# A first look at cairn on a fresh machine: builds the `cairn` binary, creates two throwaway
# nodes (repos) under target/demo, adds a generated 32 MiB file and a small site on the first,
# moves the site as a CAR to the second, and reads everything back, checking the bytes.
# Nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release -p cairn
cairn="$PWD/target/release/cairn"
demo="$PWD/target/demo"
rm -rf "$demo"
mkdir -p "$demo/site/img"
a="$demo/node-a" b="$demo/node-b"

step() { printf '\n== %s\n' "$*"; }

step "two nodes"
"$cairn" --repo "$a" init --profile local
"$cairn" --repo "$b" init --profile local

step "add a 32 MiB file on node A (chunked, hashed, stored durably, pinned)"
head -c $((32 << 20)) /dev/urandom > "$demo/video.bin"
cid=$("$cairn" --repo "$a" add -Q "$demo/video.bin")
echo "file CID: $cid"
"$cairn" --repo "$a" cat "$cid" | cmp - "$demo/video.bin" && echo "cat: bytes match"
"$cairn" --repo "$a" cat "$cid" --offset 1000000 --length 16 | od -An -tx1

step "add a small site on node A"
printf '<!doctype html><title>cairn</title><h1>Hello from cairn</h1><img src="img/dot.svg">\n' > "$demo/site/index.html"
printf '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><circle cx="4" cy="4" r="4"/></svg>\n' > "$demo/site/img/dot.svg"
site=$("$cairn" --repo "$a" add -r -Q "$demo/site")
echo "site CID: $site"
"$cairn" --repo "$a" ls "$site"

step "export the site from A as a CAR, import it on B, read it there"
"$cairn" --repo "$a" dag export "$site" -o "$demo/site.car"
"$cairn" --repo "$b" dag import "$demo/site.car"
"$cairn" --repo "$b" cat "$site/index.html"
"$cairn" --repo "$b" get "$site" -o "$demo/site-copy"
diff -r "$demo/site" "$demo/site-copy" && echo "get: tree matches"

step "repo health on A"
"$cairn" --repo "$a" repo stat
"$cairn" --repo "$a" repo verify
"$cairn" --repo "$a" pin ls --type recursive
echo
echo "demo OK: repos are in $demo (try: $cairn --repo $a --help)"
