#!/usr/bin/env bash
# Run every cairn test: installs what the tests need, builds, then runs the whole suite
# (unit, property, CLI, crash, interop and the benchmark smoke run). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
