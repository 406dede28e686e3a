#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each: first over the kept regression inputs in
# fuzz/regressions/<target>/, then for FUZZ_SECONDS of new fuzzing. A crash fails the script; libFuzzer leaves the
# crashing input in the current directory: copy it to fuzz/regressions/<target>/ once fixed. An input that takes
# over 30 s (-timeout) fails too, so a hang is reported with its input rather than killed by ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD:-build-fuzz}
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S fuzz -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1
for t in corpus checkpoint config; do
  reg="fuzz/regressions/$t"
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    "$BUILD/fuzz_$t" "$reg"/* >/dev/null 2>&1 || { echo "fuzz_$t: a regression input fails"; exit 1; }
  fi
  work=$(mktemp -d)
  [ -d "fuzz/seeds/$t" ] && cp fuzz/seeds/$t/* "$work"/ 2>/dev/null || true
  "$BUILD/fuzz_$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 "$work" 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY" | sed "s/^/fuzz_$t: /"
  status=${PIPESTATUS[0]}
  rm -rf "$work"
  [ "$status" -eq 0 ] || { echo "fuzz_$t: crashed (exit $status)"; exit 1; }
done
echo "fuzz: 3 targets, ${SECONDS_EACH} s each, no crash"
