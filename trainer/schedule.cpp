#include "trainer/schedule.h"

#include <algorithm>
#include <cmath>

namespace tern {

TrainingSchedule::TrainingSchedule(const OptimConfig& optim, const TrainLoopConfig& loop) : o_(optim), t_(loop) {
  if (t_.valid_metric == ValidMetric::kAuto) throw std::logic_error("TrainingSchedule: train.valid_metric unresolved");
  best_ = higher_is_better() ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

std::optional<double> TrainingSchedule::best_score() const {
  if (!std::isfinite(best_)) return std::nullopt;
  return best_;
}

double TrainingSchedule::lr(int64_t step) const {
  double base = o_.lr;
  if (o_.warmup_steps > 0 && step < o_.warmup_steps) base *= static_cast<double>(step) / o_.warmup_steps;
  if (o_.schedule == LrSchedule::kInverseSqrt && step >= o_.warmup_steps)
    base = o_.lr * std::sqrt(static_cast<double>(o_.warmup_steps) / static_cast<double>(step));
  if (o_.schedule == LrSchedule::kCosine && step >= o_.warmup_steps) {
    const double span = static_cast<double>(std::max<int64_t>(1, t_.max_steps - o_.warmup_steps));
    const double done = std::min(1.0, static_cast<double>(step - o_.warmup_steps) / span);
    base = o_.min_lr + (o_.lr - o_.min_lr) * 0.5 * (1.0 + std::cos(M_PI * done));
  }
  return std::max(o_.min_lr, base * plateau_scale_);
}

TrainingSchedule::Actions TrainingSchedule::after_step(int64_t step, double minutes) const {
  Actions a;
  a.stop = (t_.max_steps > 0 && step >= t_.max_steps) || (t_.max_minutes > 0 && minutes >= t_.max_minutes);
  a.validate = (t_.valid_every > 0 && step % t_.valid_every == 0) || a.stop;
  a.save = t_.save_every > 0 && step % t_.save_every == 0;
  return a;
}

bool TrainingSchedule::record_validation(double score) {
  if (better(score)) {
    best_ = score, validations_without_improvement_ = 0, bad_validations_ = 0;
    return true;
  }
  ++validations_without_improvement_;
  if (o_.schedule == LrSchedule::kPlateau && ++bad_validations_ >= o_.plateau_patience)
    plateau_scale_ *= o_.plateau_factor, bad_validations_ = 0;
  return false;
}

void TrainingSchedule::save(nlohmann::json& meta) const {
  meta["valid_metric"] = t_.valid_metric.name();
  meta["best_valid_score"] = std::isfinite(best_) ? nlohmann::json(best_) : nlohmann::json(nullptr);
  meta["validations_without_improvement"] = validations_without_improvement_;
  meta["plateau_scale"] = plateau_scale_;
  meta["bad_validations"] = bad_validations_;
}

bool TrainingSchedule::load(const nlohmann::json& meta) {
  plateau_scale_ = meta.at("plateau_scale").get<double>();
  bad_validations_ = meta.at("bad_validations").get<int64_t>();
  const bool legacy = !meta.contains("valid_metric");  // tern before train.valid_metric: the loss, -1 for none
  const std::string metric = legacy ? "loss" : meta.at("valid_metric").get<std::string>();
  best_ = higher_is_better() ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  validations_without_improvement_ = 0;
  if (metric != t_.valid_metric.name()) return false;  // best score and early-stopping count start over
  validations_without_improvement_ = meta.at("validations_without_improvement").get<int64_t>();
  if (legacy) {
    const double best = meta.at("best_valid_loss").get<double>();
    if (best >= 0) best_ = best;
  } else if (!meta.at("best_valid_score").is_null()) {
    best_ = meta.at("best_valid_score").get<double>();
  }
  return true;
}

}  // namespace tern
