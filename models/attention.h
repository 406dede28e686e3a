// Attention over encoder states: global (Luong dot / general, Bahdanau additive), Luong's local-p (a window around a
// predicted source position, Gaussian-weighted) and multi-head scaled dot-product. Padding positions get zero weight.
#pragma once
#include <torch/torch.h>

#include <string>

#include "models/config.h"

namespace tern {

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& cfg);
  // Projects encoder states once per sentence. memory (B, S, H) -> keys (B, S, H); multihead: keys and values side by
  // side, (B, S, 2H)
  torch::Tensor keys(const torch::Tensor& memory);
  // query (N, T, H), keys (B, S, H), memory (B, S, H), mask (B, S) true on real tokens -> context (N, T, H),
  // weights (N, T, S). N = G*B: G query rows per source, grouped (beam search: rows b*G .. b*G+G-1 attend to source
  // b), so the encoder states are never copied per hypothesis. Multihead weights are the heads' mean; local weights
  // are the window's softmax times the Gaussian (they sum to at most 1, as in Luong et al. 2015).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& query, const torch::Tensor& keys,
                                                  const torch::Tensor& memory, const torch::Tensor& mask);

  AttentionKind kind_;
  int64_t window_ = 10, heads_ = 1;
  torch::nn::Linear w_key_{nullptr};    // general, local: W_a; additive: W_1; multihead: W_k and W_v (2H, H)
  torch::nn::Linear w_query_{nullptr};  // additive: W_2; local: W_p; multihead: W_q          (H, H)
  torch::nn::Linear v_{nullptr};        // additive: v; local: v_p                            (1, H)
  torch::nn::Linear w_out_{nullptr};    // multihead: W_o                                     (H, H)
};
TORCH_MODULE(Attention);

}  // namespace tern
