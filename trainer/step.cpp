#include "trainer/step.h"

#include <limits>
#include <optional>

#include "models/loss.h"
#include "trainer/grad_norm.h"

namespace tern {

void PhaseTimes::lap(Phase p) {
  if (sync_device && torch::cuda::is_available()) torch::cuda::synchronize();
  const auto now = std::chrono::steady_clock::now();
  seconds[p] += std::chrono::duration<double>(now - mark).count();
  mark = now;
}

StepBreakdown PhaseTimes::per_step_ms(int64_t steps) const {
  const double k = 1e3 / static_cast<double>(std::max<int64_t>(1, steps));
  return {k * seconds[kData], k * seconds[kForward], k * seconds[kBackward], k * seconds[kCommunication],
          k * seconds[kOptimizer]};
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimConfig& o,
                                                        const std::vector<torch::Tensor>& params) {
  switch (o.optimizer.value()) {
    case OptimizerKind::kAdam:
      return std::make_unique<torch::optim::Adam>(
          params, torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
    case OptimizerKind::kAdamw:
      return std::make_unique<torch::optim::AdamW>(
          params, torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
    case OptimizerKind::kSgd:
      return std::make_unique<torch::optim::SGD>(
          params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  }
  throw ConfigError("optim.optimizer: unknown optimizer");
}

std::pair<torch::Tensor, double> stream_nll(SequenceModelImpl& model, const ShardData& shard,
                                            const StreamLayout& layout, torch::Device device, Precision precision) {
  torch::Tensor nll = torch::zeros({}, torch::dtype(torch::kFloat64).device(device));
  double tokens = 0;
  DecoderState state;
  for (int64_t w = 0; w < layout.windows; ++w) {
    Batch b = shard.collate_window(layout, w);
    AutocastScope autocast(precision, device);
    auto logits = model.forward_stream(b.tgt_in.to(device), state);  // (B, W, V)
    nll += sequence_loss(logits, b.tgt_out.to(device), 0.0).nll.to(torch::kFloat64);
    tokens += static_cast<double>(b.target_tokens);
  }
  return {nll, tokens};
}

StepRunner::StepRunner(StepParts parts) : parts_(std::move(parts)), params_(parts_.model->parameters()) {}

StepRunner::Sums StepRunner::forward_backward(std::vector<Batch>& batches, double global_tokens, double loss_scale,
                                              int64_t step, PhaseTimes& times) {
  const torch::Device dev = parts_.device;
  Communicator& comm = *parts_.comm;
  auto zero = [&] { return torch::zeros({}, torch::dtype(torch::kFloat64).device(dev)); };
  torch::Tensor nll = zero(), align = zero();  // summed on the device
  for (size_t k = 0; k < batches.size(); ++k) {
    auto& b = batches[k];
    LossSums ls;
    torch::Tensor guided;  // the alignment cost (guided alignment)
    comm.set_activity(step, "forward");
    {
      std::optional<ShardRng::Scope> stream;
      if (rng_) stream.emplace(*rng_, k / static_cast<size_t>(batches_per_shard_));
      AutocastScope autocast(parts_.precision, dev);
      torch::Tensor logits;  // (B, T, V)
      if (b.stream) {
        const size_t shard = k / static_cast<size_t>(batches_per_shard_);
        if (carried_.size() <= shard) carried_.resize(shard + 1);
        if (b.stream_start) carried_[shard] = DecoderState{};
        logits = parts_.model->forward_stream(b.tgt_in.to(dev, /*non_blocking=*/true), carried_[shard]);
      } else if (parts_.align_weight > 0) {
        torch::Tensor attention;  // (B, T, S)
        std::tie(logits, attention) = parts_.model->forward_attention(b.src.to(dev, /*non_blocking=*/true), b.src_len,
                                                                      b.tgt_in.to(dev, /*non_blocking=*/true));
        guided = alignment_loss(attention, b.align.to(dev, /*non_blocking=*/true), parts_.align_cost);
      } else {
        logits = parts_.model->forward(b.src.defined() ? b.src.to(dev, /*non_blocking=*/true) : b.src, b.src_len,
                                       b.tgt_in.to(dev, /*non_blocking=*/true));
      }
      ls = sequence_loss(logits, b.tgt_out.to(dev, /*non_blocking=*/true), parts_.label_smoothing);
      if (guided.defined()) ls.loss = ls.loss + parts_.align_weight * guided;
    }
    times.lap(PhaseTimes::kForward);
    comm.set_activity(step, "backward");
    if (k + 1 == batches.size()) parts_.reducer->prepare_for_backward();  // its buckets start during this backward
    (loss_scale != 1.0 ? ls.loss * loss_scale : ls.loss).backward();
    nll += ls.nll.to(torch::kFloat64);
    if (guided.defined()) align += guided.detach().to(torch::kFloat64);
    times.lap(PhaseTimes::kBackward);
  }
  comm.set_activity(step, "gradient all-reduce");
  parts_.reducer->reduce(1.0 / (global_tokens * loss_scale));
  // The norm is the same on every rank (after the all-reduce).
  torch::Tensor norm =
      clip_grad_norm(params_, parts_.clip_norm > 0 ? parts_.clip_norm : std::numeric_limits<double>::infinity());
  // The skip decision needs both on the host. On a GPU this waits for the all-reduce too, so the watchdog times it
  // out like a collective.
  auto wait = comm.waiting("device wait for the gradient all-reduce");
  const auto read = torch::stack({nll, norm.to(dev, torch::kFloat64), align}).to(torch::kCPU);  // (3)
  return {read[0].item<double>(), read[1].item<double>(), read[2].item<double>()};
}

void StepRunner::update(double lr) {
  for (auto& g : parts_.optimizer->param_groups()) g.options().set_lr(lr);
  parts_.optimizer->step();
}

}  // namespace tern
