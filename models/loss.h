// Token-level cross-entropy over padded targets, with label smoothing, summed (callers divide by token counts so
// that sums over ranks and micro-batches stay exact).
#pragma once
#include <torch/torch.h>

namespace tern {

struct LossSums {
  torch::Tensor loss;  // scalar: label-smoothed loss summed over non-pad targets (what is minimised)
  torch::Tensor nll;   // scalar, detached: negative log-likelihood in nats summed over non-pad targets
};

// Reduced-precision tensors (fp16, bf16) as fp32; fp32 and fp64 unchanged.
torch::Tensor at_least_fp32(const torch::Tensor& t);

// logits (B, T, V), target (B, T) with pad id 0. The softmax runs in fp32.
// loss = (1 - eps) * nll + eps * mean_v(-log p_v), the definition torch's CrossEntropyLoss uses.
LossSums sequence_loss(const torch::Tensor& logits, const torch::Tensor& target, double label_smoothing);

}  // namespace tern
