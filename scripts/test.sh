#!/usr/bin/env bash
# Run every cairn test: installs what the tests need, checks formatting and lints (clippy with
# warnings as errors, which also enforces clippy.toml's ban on unbounded channels), builds,
# then runs the whole suite (unit, property, CLI, crash, full disk, interop and the benchmark
# smoke run). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# A clean build gains nothing from incremental caches, which take gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
