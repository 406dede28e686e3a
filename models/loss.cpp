#include "models/loss.h"

namespace tern {

LossSums sequence_loss(const torch::Tensor& logits, const torch::Tensor& target, double eps) {
  torch::Tensor lp = torch::log_softmax(logits.to(torch::kFloat32), -1);  // (B, T, V)
  torch::Tensor mask = target.ne(0).to(torch::kFloat32);                  // (B, T)
  torch::Tensor nll = -lp.gather(-1, target.unsqueeze(-1)).squeeze(-1);   // (B, T)
  torch::Tensor per_token = nll;
  if (eps > 0) per_token = (1.0 - eps) * nll - eps * lp.mean(-1);
  return {(per_token * mask).sum(), (nll * mask).sum().detach()};
}

}  // namespace tern
