// `tern bench allreduce`: algorithm and bus bandwidth of the active backend's all-reduce per message size (nccl-tests
// definitions: algbw = bytes / time, busbw = algbw * 2 (n - 1) / n), next to a plain blocking MPI_Allreduce of the
// same buffer, measured in the same run.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "distributed/communicator.h"

namespace tern {

struct AllreduceBenchOptions {
  std::vector<int64_t> sizes_bytes = {4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
  int64_t warmup = 3;
  int64_t iterations = 20;
  bool cuda = false;      // buffers on the GPU (backend nccl) instead of the CPU
  void validate() const;  // sizes in [4, 2^33] bytes, iterations in [1, 10^6]
};

// Runs on every rank (collective); returns one row per size (identical on all ranks).
nlohmann::json bench_allreduce(Communicator& comm, const AllreduceBenchOptions& opt);
// The rows as the table `tern bench allreduce` prints.
std::string allreduce_table(const nlohmann::json& rows, int world, const std::string& backend);

}  // namespace tern
