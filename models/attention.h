// Global attention over encoder states: Luong dot / general, Bahdanau additive. Padding positions get zero weight.
#pragma once
#include <torch/torch.h>

#include <string>

#include "models/config.h"

namespace tern {

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(Choice<AttentionKind> kind, int64_t hidden);
  // Projects encoder states once per sentence. memory (B, S, H) -> keys (B, S, H)
  torch::Tensor keys(const torch::Tensor& memory);
  // query (N, T, H), keys (B, S, H), memory (B, S, H), mask (B, S) true on real tokens -> context (N, T, H),
  // weights (N, T, S). N = G*B: G query rows per source, grouped (beam search: rows b*G .. b*G+G-1 attend to source
  // b), so the encoder states are never copied per hypothesis.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& query, const torch::Tensor& keys,
                                                  const torch::Tensor& memory, const torch::Tensor& mask);

  AttentionKind kind_;
  torch::nn::Linear w_key_{nullptr};    // general: W_a; additive: W_1        (H, H)
  torch::nn::Linear w_query_{nullptr};  // additive: W_2                      (H, H)
  torch::nn::Linear v_{nullptr};        // additive: v                        (1, H)
};
TORCH_MODULE(Attention);

}  // namespace tern
