#!/usr/bin/env bash
# Builds tern with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and runs the unit and end-to-end
# tests under them. LibTorch itself is not instrumented; its allocations are still checked at our boundaries.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ASAN_BUILD:-build-asan}
# Instrumented code runs several times slower: longer time limits for ctest and for each command a test runs.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_SANITIZE=ON -DTERN_TEST_TIMEOUT=3600 >/dev/null
export TERN_TEST_TIMEOUT_SCALE=8
cmake --build "$BUILD" -j "$(nproc)"
export ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:protect_shadow_gap=0:alloc_dealloc_mismatch=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$BUILD" --output-on-failure -j2 -E "fuzz_loaders|mpi_|preemption|resume_exact|slurm_job" "$@"
