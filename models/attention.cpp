#include "models/attention.h"

#include <cmath>
#include <limits>

#include "models/loss.h"

namespace tern {

AttentionImpl::AttentionImpl(const ModelConfig& cfg)
    : kind_(cfg.attention.value()), window_(cfg.attention_window), heads_(cfg.attention_heads) {
  const int64_t H = cfg.hidden;
  auto linear = [&](const char* name, int64_t in, int64_t out) {
    return register_module(name, torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)));
  };
  if (kind_ != AttentionKind::kDot) w_key_ = linear("w_key", H, kind_ == AttentionKind::kMultihead ? 2 * H : H);
  if (kind_ == AttentionKind::kAdditive || kind_ == AttentionKind::kLocal || kind_ == AttentionKind::kMultihead)
    w_query_ = linear("w_query", H, H);
  if (kind_ == AttentionKind::kAdditive || kind_ == AttentionKind::kLocal) v_ = linear("v", H, 1);
  if (kind_ == AttentionKind::kMultihead) w_out_ = linear("w_out", H, H);
}

torch::Tensor AttentionImpl::keys(const torch::Tensor& memory) {
  return kind_ == AttentionKind::kDot ? memory : w_key_(memory);
}

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& keys,
                                                               const torch::Tensor& memory, const torch::Tensor& mask) {
  const int64_t N = query.size(0), T = query.size(1), B = keys.size(0), S = keys.size(1), H = query.size(2);
  TORCH_CHECK(N % B == 0, "attention: ", N, " query rows for ", B, " sources");
  const int64_t GT = N / B * T;
  torch::Tensor q = query.reshape({B, GT, H});  // (B, G*T, H)
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (kind_ == AttentionKind::kMultihead) {
    const int64_t K = heads_, d = H / K;
    auto split = [&](const torch::Tensor& t) { return t.reshape({B, t.size(1), K, d}).transpose(1, 2); };  // (B,K,.,d)
    torch::Tensor qh = split(w_query_(q)), kh = split(keys.narrow(2, 0, H)), vh = split(keys.narrow(2, H, H));
    torch::Tensor scores = at_least_fp32(torch::matmul(qh, kh.transpose(2, 3))) / std::sqrt(static_cast<double>(d));
    scores = scores.masked_fill(~mask.view({B, 1, 1, S}), -kInf);               // (B, K, G*T, S)
    torch::Tensor weights = torch::softmax(scores, -1);                         // (B, K, G*T, S)
    torch::Tensor heads = torch::matmul(weights.to(vh.scalar_type()), vh);      // (B, K, G*T, d)
    torch::Tensor context = w_out_(heads.transpose(1, 2).reshape({B, GT, H}));  // (B, G*T, H)
    return {context.view({N, T, H}), weights.mean(1).view({N, T, S})};
  }
  torch::Tensor scores;  // (B, G*T, S)
  if (kind_ == AttentionKind::kAdditive) {
    // (B, G*T, 1, H) + (B, 1, S, H) -> tanh -> v -> (B, G*T, S)
    scores = v_(torch::tanh(w_query_(q).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1);
  } else {
    scores = torch::bmm(q, keys.transpose(1, 2));
  }
  // Softmax in fp32 (or wider) whatever the compute precision.
  scores = at_least_fp32(scores);
  torch::Tensor keep = mask.unsqueeze(1);  // (B, 1, S)
  torch::Tensor gauss;                     // local: (B, G*T, S)
  if (kind_ == AttentionKind::kLocal) {
    // p_t = S_b sigmoid(v_p^T tanh(W_p h_t)) in [0, S_b]; positions within D of it; weights times
    // exp(-(s - p_t)^2 / (2 sigma^2)), sigma = D / 2.
    torch::Tensor len = mask.sum(1).to(scores.scalar_type()).view({B, 1, 1});             // (B, 1, 1)
    torch::Tensor p = len * torch::sigmoid(at_least_fp32(v_(torch::tanh(w_query_(q)))));  // (B, G*T, 1)
    torch::Tensor dist = torch::arange(S, scores.options()).view({1, 1, S}) - p;          // (B, G*T, S)
    const double sigma = static_cast<double>(window_) / 2.0;
    keep = keep & (dist.abs() <= static_cast<double>(window_));
    gauss = torch::exp(-dist.square() / (2.0 * sigma * sigma));
  }
  torch::Tensor weights = torch::softmax(scores.masked_fill(~keep, -kInf), -1);  // (B, G*T, S)
  if (gauss.defined()) weights = weights * gauss;
  torch::Tensor context = torch::bmm(weights.to(memory.scalar_type()), memory);  // (B, G*T, H)
  return {context.view({N, T, -1}), weights.view({N, T, S})};
}

}  // namespace tern
