// The part of a training step that touches the model: forward and backward of a rank's batches, the gradient
// all-reduce and clipping, and the optimizer. `tern train` and `tern bench train` both run it, so the benchmark times
// the real step.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <vector>

#include "data/batcher.h"
#include "distributed/communicator.h"
#include "distributed/reducer.h"
#include "models/model.h"
#include "models/precision.h"
#include "trainer/config.h"
#include "trainer/metrics.h"
#include "trainer/shard_rng.h"

namespace tern {

// Step-time breakdown (CPU work is synchronous; on a GPU these are launch times unless `sync_device`, which waits
// for the device at each lap so that time goes to the phase that spent it).
struct PhaseTimes {
  enum Phase { kData, kForward, kBackward, kCommunication, kOptimizer };
  double seconds[5] = {0, 0, 0, 0, 0};
  std::chrono::steady_clock::time_point mark = std::chrono::steady_clock::now();
  bool sync_device = false;
  void start() { mark = std::chrono::steady_clock::now(); }
  void lap(Phase p);  // the time since the last lap goes to `p`
  StepBreakdown per_step_ms(int64_t steps) const;
};

// The optimizer optim.optimizer names, with its hyper-parameters.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimConfig& o, const std::vector<torch::Tensor>& params);

// Stream mode evaluation: the summed NLL (fp64, on `device`) and the target tokens of every window of `layout` over
// `shard`, in order, the state carried across windows from zeros. Call under NoGradGuard with the model in eval mode.
std::pair<torch::Tensor, double> stream_nll(SequenceModelImpl& model, const ShardData& shard,
                                            const StreamLayout& layout, torch::Device device, Precision precision);

struct StepParts {
  SequenceModel model;
  torch::optim::Optimizer* optimizer = nullptr;
  GradientReducer* reducer = nullptr;
  Communicator* comm = nullptr;
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFp32;
  double label_smoothing = 0;
  double clip_norm = 0;  // 0: the norm is measured, nothing is clipped
  // Guided alignment (train.guided_alignment_weight; 0: off): batches carry Batch::align.
  double align_weight = 0;
  AlignmentCost align_cost = AlignmentCost::kCe;
};

class StepRunner {
 public:
  explicit StepRunner(StepParts parts);
  struct Sums {
    double nll = 0;        // this rank's summed token NLL
    double grad_norm = 0;  // the global gradient norm before clipping (the same on every rank)
    double align = 0;      // this rank's summed alignment cost (unweighted; 0 without guided alignment)
  };
  // Forward and backward of each batch (one per shard of this rank; losses and gradients summed over tokens), the
  // gradient all-reduce divided by `global_tokens` * `loss_scale`, and clipping. Both sums are read from the device
  // together: the step's one host synchronisation. `step` (the step being taken) labels the watchdog's activity.
  Sums forward_backward(std::vector<Batch>& batches, double global_tokens, double loss_scale, int64_t step,
                        PhaseTimes& times);
  // The optimizer update at learning rate `lr`.
  void update(double lr);
  // Drops the gradients of a skipped step.
  void skip() { parts_.optimizer->zero_grad(); }
  // The forward of batch k draws from stream k / batches_per_shard of `rng` (batches come shard by shard).
  void use_shard_rng(ShardRng* rng, int64_t batches_per_shard) { rng_ = rng, batches_per_shard_ = batches_per_shard; }
  // Stream mode: the recurrent state each of this rank's shards carries into its next window (h, c undefined before
  // the first); a batch with stream_start resets it. Checkpoints save it for an exact resume.
  std::vector<DecoderState>& carried() { return carried_; }

 private:
  StepParts parts_;
  ShardRng* rng_ = nullptr;
  int64_t batches_per_shard_ = 1;
  std::vector<torch::Tensor> params_;
  std::vector<DecoderState> carried_;
};

}  // namespace tern
