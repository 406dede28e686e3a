// Gradient averaging across ranks: gradients are packed into buckets of `bucket_mb` (the first one small, so
// communication starts early) and all-reduced in the same order on every rank, then scaled. With overlap, each
// bucket's all-reduce starts during backward, as soon as its last gradient is computed (autograd hooks), so
// communication runs behind the rest of backward; only the last micro-batch of a step communicates.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "distributed/communicator.h"

namespace tern {

class GradientReducer {
 public:
  // overlap: start bucket all-reduces from autograd hooks (only meaningful with several ranks). Parameters that take
  // no gradient (requires_grad false: frozen) are broadcast and compared, never reduced.
  GradientReducer(Communicator& comm, std::vector<torch::Tensor> params, int64_t bucket_mb, bool overlap = false);
  // Call just before the backward of a step's last micro-batch: its gradient hooks then launch the buckets.
  void prepare_for_backward();
  // Sums every parameter's .grad over ranks and multiplies by `scale` (e.g. 1 / global target tokens). Waits for
  // what backward started and reduces the rest. Parameters without a gradient on this rank contribute zeros, so
  // every rank sends the same buckets.
  void reduce(double scale);
  // Copies rank 0's parameters to every rank (start of training).
  void broadcast_parameters();
  // Max absolute difference of parameters between this rank and rank 0, over all ranks.
  double max_divergence();
  const std::vector<std::vector<size_t>>& buckets() const { return buckets_; }
  bool overlapping() const { return overlap_; }
  // Seconds the last reduce() spent waiting on communication that backward had not hidden.
  double last_exposed_s() const { return exposed_s_; }
  // Buckets whose all-reduce the last backward started (the rest started in reduce()).
  int64_t last_launched_in_backward() const { return launched_in_backward_; }

 private:
  void reset_step();
  void on_gradient(size_t k, const torch::Tensor& grad);
  void fill(size_t k, const torch::Tensor* incoming);  // writes this rank's gradient of k into its bucket slice
  void launch_ready();

  Communicator& comm_;
  std::vector<torch::Tensor> all_;            // every parameter (broadcast, divergence)
  std::vector<torch::Tensor> params_;         // those that take a gradient
  std::vector<std::vector<size_t>> buckets_;  // parameter indices, in reverse registration order
  bool overlap_;
  // Overlap state of the current backward.
  bool armed_ = false;
  std::vector<size_t> bucket_of_;
  std::vector<int64_t> offset_;      // element offset of each parameter in its bucket
  std::vector<torch::Tensor> flat_;  // (numel of bucket) per bucket
  std::vector<char> filled_;         // per parameter
  std::vector<size_t> pending_;      // parameters still missing per bucket
  std::vector<std::unique_ptr<Work>> work_;
  size_t next_launch_ = 0;
  double exposed_s_ = 0;
  int64_t launched_in_backward_ = 0;
};

}  // namespace tern
