#!/usr/bin/env bash
# Data-parallel training on one node: one rank per GPU (or per group of CPU cores on a CPU-only machine).
# Usage: launch/mpirun_one_node.sh RANKS CONFIG [tern train options...]
set -euo pipefail
RANKS=${1:?number of ranks}; CONFIG=${2:?config}; shift 2
exec mpirun -np "$RANKS" --bind-to none -x OMP_NUM_THREADS -x PATH -x LD_LIBRARY_PATH \
  build/cli/tern train "$CONFIG" --resume auto "$@"
