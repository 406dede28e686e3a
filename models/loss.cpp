#include "models/loss.h"

namespace tern {

torch::Tensor at_least_fp32(const torch::Tensor& t) {
  auto s = t.scalar_type();
  return s == torch::kHalf || s == torch::kBFloat16 ? t.to(torch::kFloat32) : t;
}

LossSums sequence_loss(const torch::Tensor& logits, const torch::Tensor& target, double eps) {
  torch::Tensor lp = torch::log_softmax(at_least_fp32(logits), -1);      // (B, T, V)
  torch::Tensor mask = target.ne(0).to(lp.scalar_type());                // (B, T)
  torch::Tensor nll = -lp.gather(-1, target.unsqueeze(-1)).squeeze(-1);  // (B, T)
  torch::Tensor per_token = nll;
  if (eps > 0) per_token = (1.0 - eps) * nll - eps * lp.mean(-1);
  return {(per_token * mask).sum(), (nll * mask).sum().detach()};
}

torch::Tensor alignment_loss(const torch::Tensor& attention, const torch::Tensor& reference, AlignmentCost cost) {
  const torch::Tensor att = at_least_fp32(attention);  // (B, T, S)
  if (cost == AlignmentCost::kCe) return -(reference * torch::log(att + 1e-6)).sum();
  const torch::Tensor linked = reference.sum(-1, /*keepdim=*/true).gt(0).to(att.scalar_type());  // (B, T, 1)
  return 0.5 * ((att - reference).square() * linked).sum();
}

}  // namespace tern
