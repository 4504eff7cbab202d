#!/usr/bin/env bash
# Fuzz every decoder of network or disk bytes (cargo-fuzz, libFuzzer, nightly toolchain).
#   scripts/fuzz.sh                      # each target for 10,000,000 executions
#   scripts/fuzz.sh --runs 1000000 car   # chosen targets, a set number of executions
#   scripts/fuzz.sh --time 600           # each target for 10 minutes
#   scripts/fuzz.sh --jobs 2             # two targets at once
# Each target starts from its committed seeds (fuzz/corpus/<target>) and grows a working
# corpus under fuzz/target/work/<target>. A crash stops that target and leaves its input in
# fuzz/artifacts/<target>/: fix the bug, copy the input to fuzz/regressions/<target>/ (the test
# suite replays every file there), rerun. The execution counts go to fuzz/target/report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=10000000
time=""
jobs=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --time) time="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd fuzz
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
# No sanitizer: the code under test is safe Rust, so the speed goes to executions; debug
# assertions on, so arithmetic overflow is a crash.
cargo +nightly fuzz build -s none -a
mkdir -p target/logs
limit="-runs=$runs"
[ -z "$time" ] || limit="-max_total_time=$time"
export limit
run_one() {
  local t="$1"
  mkdir -p "target/work/$t"
  if cargo +nightly fuzz run -s none -a "$t" "target/work/$t" "corpus/$t" -- "$limit" -print_final_stats=1 \
      > "target/logs/$t.log" 2>&1; then
    echo "$t: ok"
  else
    echo "$t: FAILED (see fuzz/target/logs/$t.log and fuzz/artifacts/$t/)"
  fi
}
export -f run_one
status=0
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {} || status=1
# The table: executions and time per target, from libFuzzer's final stats.
echo "[" > target/report.json
first=1
printf '%-18s %14s %10s %s\n' target executions seconds result
for t in "${targets[@]}"; do
  log="target/logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $5}')
  result=$(grep -q 'panicked\|deadly signal\|ERROR: libFuzzer' "$log" && echo crash || echo ok)
  [ "$result" = ok ] || status=1
  printf '%-18s %14s %10s %s\n' "$t" "${execs:-0}" "${secs:-?}" "$result"
  [ $first = 1 ] || echo "," >> target/report.json
  first=0
  printf '  {"target": "%s", "executions": %s, "seconds": "%s", "result": "%s"}' "$t" "${execs:-0}" "${secs:-}" "$result" >> target/report.json
done
printf '\n]\n' >> target/report.json
exit $status
