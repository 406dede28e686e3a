// Token-level cross-entropy over padded targets, with label smoothing, summed (callers divide by token counts so
// that sums over ranks and micro-batches stay exact).
#pragma once
#include <torch/torch.h>

#include "models/config.h"

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

// Guided alignment (Garg et al. 2019; Marian --guided-alignment): attention (B, T, S) against the reference rows
// `reference` (B, T, S), each summing to 1 over the source tokens linked to target token t, or all 0 (no link: the
// row is left out), summed over the rows with links. ce: -sum_s ref * log(att + 1e-6); mse: sum_s (att - ref)^2 / 2.
// In fp32; a scalar.
torch::Tensor alignment_loss(const torch::Tensor& attention, const torch::Tensor& reference, AlignmentCost cost);

}  // namespace tern
