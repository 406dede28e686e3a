#include "trainer/grad_norm.h"

#include <cmath>

namespace tern {

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({}, torch::kFloat);
  auto norms = at::_foreach_norm(grads, 2);                                    // one 0-dim tensor per gradient
  auto total = at::linalg_vector_norm(at::stack(norms), 2).to(torch::kFloat);  // ()
  if (std::isfinite(max_norm)) at::_foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_max(1.0));
  return total;
}

}  // namespace tern
