#include "trainer/loss_scaler.h"

#include <fmt/format.h>

#include "core/errors.h"

namespace tern {

LossScaler::LossScaler(LossScalerOptions opt) : opt_(opt), scale_(opt.init_scale) {}

bool LossScaler::update(bool finite, int64_t step) {
  if (!opt_.enabled) return finite;
  if (finite) {
    if (++clean_ >= opt_.window) scale_ *= 2, clean_ = 0;
    return true;
  }
  ++skipped_;
  clean_ = 0;
  if (scale_ / 2 < opt_.min_scale)
    throw TrainingError(fmt::format(
        "fp16 gradients overflow at step {} even with loss scale {} (train.min_loss_scale = {}; {} step(s) skipped so "
        "far): the model is diverging, not just overflowing; HINT: lower optim.lr, enable optim.clip_norm, or train "
        "in bf16 or fp32",
        step, scale_, opt_.min_scale, skipped_));
  scale_ /= 2;
  return false;
}

nlohmann::json LossScaler::state() const {
  return {{"scale", scale_}, {"clean_steps", clean_}, {"skipped_steps", skipped_}};
}

void LossScaler::load(const nlohmann::json& s) {
  scale_ = s.at("scale").get<double>();
  clean_ = s.at("clean_steps").get<int64_t>();
  skipped_ = s.at("skipped_steps").get<int64_t>();
}

}  // namespace tern
