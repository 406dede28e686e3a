#include "distributed/reducer.h"

namespace tern {

GradientReducer::GradientReducer(Communicator& comm, std::vector<torch::Tensor> params, int64_t bucket_mb)
    : comm_(comm), params_(std::move(params)) {
  // Gradients become ready roughly in reverse order of registration during backward.
  const int64_t cap = bucket_mb << 20, first_cap = std::min<int64_t>(cap, 1 << 20);
  std::vector<size_t> cur;
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    int64_t b = params_[k].numel() * params_[k].element_size();
    int64_t limit = buckets_.empty() ? first_cap : cap;
    if (!cur.empty() && (bytes + b > limit || params_[k].scalar_type() != params_[cur[0]].scalar_type() ||
                         params_[k].device() != params_[cur[0]].device())) {
      buckets_.push_back(std::move(cur));
      cur.clear();
      bytes = 0;
    }
    cur.push_back(k);
    bytes += b;
  }
  if (!cur.empty()) buckets_.push_back(std::move(cur));
}

void GradientReducer::reduce(double scale) {
  for (const auto& bucket : buckets_) {
    std::vector<torch::Tensor> grads;
    for (size_t k : bucket) {
      auto& p = params_[k];
      if (!p.mutable_grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad().reshape(-1));
    }
    torch::Tensor flat = torch::cat(grads);
    comm_.allreduce_sum(flat);
    if (scale != 1.0) flat.mul_(scale);
    int64_t off = 0;
    for (size_t k : bucket) {
      auto& g = params_[k].mutable_grad();
      g.copy_(flat.narrow(0, off, g.numel()).view_as(g));
      off += g.numel();
    }
  }
}

void GradientReducer::broadcast_parameters() {
  if (comm_.world() == 1) return;
  torch::NoGradGuard ng;
  for (auto& p : params_) {
    torch::Tensor t = p.detach().contiguous();
    comm_.broadcast(t, 0);
    p.detach().copy_(t);
  }
}

double GradientReducer::max_divergence() {
  if (comm_.world() == 1) return 0.0;
  torch::NoGradGuard ng;
  double worst = 0;
  for (auto& p : params_) {
    torch::Tensor ref = p.detach().clone().contiguous();
    comm_.broadcast(ref, 0);
    worst = std::max(worst, (p.detach() - ref).abs().max().item<double>());
  }
  return comm_.allreduce_max(worst);
}

}  // namespace tern
