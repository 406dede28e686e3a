// Distributed-training settings as a plain struct (no MPI or LibTorch types), validated once.
#pragma once
#include <cstdint>
#include <string>

#include "core/choice.h"

namespace tern {

enum class Backend { kAuto, kMpi, kNccl, kSingle };
template <>
struct ChoiceNames<Backend> {
  static constexpr std::array<const char*, 4> kNames{"auto", "mpi", "nccl", "single"};
};

struct DistributedConfig {
  Choice<Backend> backend =
      Backend::kAuto;      // auto (nccl for CUDA, mpi for CPU, single when alone) | mpi | nccl | single
  double timeout_s = 300;  // A collective that takes longer aborts the whole job (0 disables).
  int64_t bucket_mb = 25;  // Gradient all-reduce bucket size in MiB.
  bool overlap = true;     // Start each bucket's all-reduce during backward, as soon as it is complete.
  void validate() const;
};

}  // namespace tern
