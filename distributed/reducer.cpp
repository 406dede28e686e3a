#include "distributed/reducer.h"

#include <chrono>

namespace tern {

GradientReducer::GradientReducer(Communicator& comm, std::vector<torch::Tensor> params, int64_t bucket_mb, bool overlap)
    : comm_(comm), all_(std::move(params)), overlap_(overlap && comm.world() > 1) {
  for (const auto& p : all_)
    if (p.requires_grad()) params_.push_back(p);
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

  bucket_of_.assign(params_.size(), 0);
  offset_.assign(params_.size(), 0);
  for (size_t i = 0; i < buckets_.size(); ++i) {
    int64_t off = 0;
    for (size_t k : buckets_[i]) bucket_of_[k] = i, offset_[k] = off, off += params_[k].numel();
    flat_.push_back(torch::empty({off}, params_[buckets_[i][0]].options()));
  }
  if (overlap_)
    for (size_t k = 0; k < params_.size(); ++k)
      params_[k].register_hook([this, k](const torch::Tensor& grad) { on_gradient(k, grad); });
}

// Nothing packed, nothing launched: every bucket waits for all of its parameters.
void GradientReducer::reset_step() {
  filled_.assign(params_.size(), 0);
  pending_.clear();
  for (const auto& b : buckets_) pending_.push_back(b.size());
  work_.clear();
  work_.resize(buckets_.size());
  next_launch_ = 0;
}

void GradientReducer::prepare_for_backward() {
  if (!overlap_) return;
  reset_step();
  armed_ = true;
}

// This rank's whole gradient of parameter k: what earlier micro-batches accumulated in .grad plus `incoming`, the
// gradient this backward is about to accumulate (hooks run before accumulation).
void GradientReducer::fill(size_t k, const torch::Tensor* incoming) {
  torch::NoGradGuard ng;
  torch::Tensor slice = flat_[bucket_of_[k]].narrow(0, offset_[k], params_[k].numel()).view_as(params_[k]);
  const torch::Tensor& acc = params_[k].grad();
  if (incoming && acc.defined())
    slice.copy_(acc + *incoming);
  else if (incoming)
    slice.copy_(*incoming);
  else if (acc.defined())
    slice.copy_(acc);
  else
    slice.zero_();
  filled_[k] = 1;
}

void GradientReducer::on_gradient(size_t k, const torch::Tensor& grad) {
  if (!armed_ || filled_[k]) return;
  fill(k, &grad);
  --pending_[bucket_of_[k]];
  launch_ready();
  for (size_t i = 0; i < next_launch_; ++i) work_[i]->poll();
}

// Buckets start strictly in order, so every rank issues the same sequence of collectives.
void GradientReducer::launch_ready() {
  while (next_launch_ < buckets_.size() && pending_[next_launch_] == 0) {
    work_[next_launch_] = comm_.allreduce_sum_async(flat_[next_launch_]);
    ++next_launch_;
  }
}

void GradientReducer::reduce(double scale) {
  const auto t0 = std::chrono::steady_clock::now();
  if (comm_.world() == 1) {  // nothing to exchange: scale in place
    torch::NoGradGuard ng;
    for (auto& p : params_) {
      auto& g = p.mutable_grad();
      if (!g.defined())
        g = torch::zeros_like(p);
      else if (scale != 1.0)
        g.mul_(scale);
    }
    exposed_s_ = 0;
    return;
  }
  if (!armed_) reset_step();  // no overlap: pack and reduce every bucket now
  launched_in_backward_ = static_cast<int64_t>(next_launch_);
  // Parameters that received no gradient in this backward (unused, or frozen) are packed now.
  for (size_t k = 0; k < params_.size(); ++k)
    if (!filled_[k]) fill(k, nullptr), --pending_[bucket_of_[k]];
  // Without overlap the same collectives start now: overlap changes when they run, never what they compute.
  if (armed_) {
    launch_ready();
  } else {
    for (size_t i = 0; i < buckets_.size(); ++i) work_[i] = comm_.allreduce_sum_async(flat_[i]);
  }
  for (auto& w : work_)
    if (w) w->wait();
  armed_ = false;
  torch::NoGradGuard ng;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (scale != 1.0) flat_[i].mul_(scale);
    for (size_t k : buckets_[i]) {
      auto& g = params_[k].mutable_grad();
      auto slice = flat_[i].narrow(0, offset_[k], params_[k].numel()).view_as(params_[k]);
      if (g.defined())
        g.copy_(slice);
      else
        g = slice.clone();
    }
  }
  exposed_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void GradientReducer::broadcast_parameters() {
  if (comm_.world() == 1) return;
  torch::NoGradGuard ng;
  for (auto& p : all_) {
    torch::Tensor t = p.detach().contiguous();
    comm_.broadcast(t, 0);
    p.detach().copy_(t);
  }
}

double GradientReducer::max_divergence() {
  if (comm_.world() == 1) return 0.0;
  torch::NoGradGuard ng;
  double worst = 0;
  for (auto& p : all_) {
    torch::Tensor ref = p.detach().clone().contiguous();
    comm_.broadcast(ref, 0);
    worst = std::max(worst, (p.detach() - ref).abs().max().item<double>());
  }
  return comm_.allreduce_max(worst);
}

}  // namespace tern
