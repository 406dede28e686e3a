#!/usr/bin/env bash
# Data-parallel training across nodes with Open MPI: HOSTS like "node1:8,node2:8" (slots = GPUs per node).
# Every node needs the same tern build, config and corpus path (a shared file system or identical copies).
# Usage: launch/mpirun_multi_node.sh HOSTS CONFIG [tern train options...]
set -euo pipefail
HOSTS=${1:?hosts, e.g. node1:8,node2:8}; CONFIG=${2:?config}; shift 2
RANKS=$(echo "$HOSTS" | tr ',' '\n' | awk -F: '{s += ($2 == "" ? 1 : $2)} END {print s}')
exec mpirun -np "$RANKS" -H "$HOSTS" --bind-to none --map-by slot -x NCCL_DEBUG=WARN -x PATH -x LD_LIBRARY_PATH \
  "$(pwd)/build/cli/tern" train "$CONFIG" --resume auto "$@"
