#include "models/attention.h"

#include "models/loss.h"

namespace tern {

AttentionImpl::AttentionImpl(Choice<AttentionKind> kind, int64_t hidden) : kind_(kind.value()) {
  if (kind_ != AttentionKind::kDot)
    w_key_ = register_module("w_key", torch::nn::Linear(torch::nn::LinearOptions(hidden, hidden).bias(false)));
  if (kind_ == AttentionKind::kAdditive) {
    w_query_ = register_module("w_query", torch::nn::Linear(torch::nn::LinearOptions(hidden, hidden).bias(false)));
    v_ = register_module("v", torch::nn::Linear(torch::nn::LinearOptions(hidden, 1).bias(false)));
  }
}

torch::Tensor AttentionImpl::keys(const torch::Tensor& memory) {
  return kind_ == AttentionKind::kDot ? memory : w_key_(memory);
}

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& keys,
                                                               const torch::Tensor& memory, const torch::Tensor& mask) {
  const int64_t N = query.size(0), T = query.size(1), B = keys.size(0), S = keys.size(1);
  TORCH_CHECK(N % B == 0, "attention: ", N, " query rows for ", B, " sources");
  torch::Tensor q = query.reshape({B, N / B * T, query.size(2)});  // (B, G*T, H)
  torch::Tensor scores;                                            // (B, G*T, S)
  if (kind_ == AttentionKind::kAdditive) {
    // (B, G*T, 1, H) + (B, 1, S, H) -> tanh -> v -> (B, G*T, S)
    scores = v_(torch::tanh(w_query_(q).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1);
  } else {
    scores = torch::bmm(q, keys.transpose(1, 2));
  }
  // Softmax in fp32 (or wider) whatever the compute precision.
  scores = at_least_fp32(scores).masked_fill(~mask.unsqueeze(1), -std::numeric_limits<float>::infinity());
  torch::Tensor weights = torch::softmax(scores, -1);                            // (B, G*T, S)
  torch::Tensor context = torch::bmm(weights.to(memory.scalar_type()), memory);  // (B, G*T, H)
  return {context.view({N, T, -1}), weights.view({N, T, S})};
}

}  // namespace tern
