// Gradient averaging across ranks: gradients are packed into buckets of `bucket_mb` (the first one small, so
// communication starts early), all-reduced in the same order on every rank, and scaled.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "distributed/communicator.h"

namespace tern {

class GradientReducer {
 public:
  GradientReducer(Communicator& comm, std::vector<torch::Tensor> params, int64_t bucket_mb);
  // Sums every parameter's .grad over ranks and multiplies by `scale` (e.g. 1 / global target tokens).
  // Parameters without a gradient on this rank contribute zeros, so every rank sends the same buckets.
  void reduce(double scale);
  // Copies rank 0's parameters to every rank (start of training).
  void broadcast_parameters();
  // Max absolute difference of parameters between this rank and rank 0, over all ranks.
  double max_divergence();
  const std::vector<std::vector<size_t>>& buckets() const { return buckets_; }

 private:
  Communicator& comm_;
  std::vector<torch::Tensor> params_;
  std::vector<std::vector<size_t>> buckets_;  // parameter indices, in reverse registration order
};

}  // namespace tern
