#include "trainer/ema.h"

#include <string>

namespace tern {
namespace {
std::string key(size_t i) { return "p" + std::to_string(i); }
}  // namespace

ParameterEma::ParameterEma(std::vector<torch::Tensor> params, double decay)
    : params_(std::move(params)), decay_(decay) {
  torch::NoGradGuard ng;
  for (const auto& p : params_) ema_.push_back(p.detach().to(torch::kFloat32).clone());
}

void ParameterEma::update() {
  torch::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) ema_[i].mul_(decay_).add_(params_[i].detach(), 1.0 - decay_);
}

void ParameterEma::swap() {
  torch::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor weights = params_[i].detach().clone();
    params_[i].copy_(ema_[i]);
    ema_[i].copy_(weights);
  }
}

void ParameterEma::save(torch::serialize::OutputArchive& ar) const {
  torch::serialize::OutputArchive e;
  for (size_t i = 0; i < ema_.size(); ++i) e.write(key(i), ema_[i]);
  ar.write("ema", e);
}

void ParameterEma::load(torch::serialize::InputArchive& ar) {
  torch::serialize::InputArchive e;
  ar.read("ema", e);
  torch::NoGradGuard ng;
  for (size_t i = 0; i < ema_.size(); ++i) {
    torch::Tensor t;
    e.read(key(i), t);
    TORCH_CHECK(t.sizes() == ema_[i].sizes(), "ema tensor ", i, " has another shape");
    ema_[i].copy_(t);
  }
}

bool load_ema_into(torch::serialize::InputArchive& ar, const std::vector<torch::Tensor>& params) {
  torch::serialize::InputArchive e;
  if (!ar.try_read("ema", e)) return false;
  torch::NoGradGuard ng;
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor t;
    e.read(key(i), t);
    params[i].copy_(t);
  }
  return true;
}

}  // namespace tern
