// When training validates, saves and stops, and the learning rate at each step: the loop asks, the schedule decides.
// Its state (best validation score, plateau multiplier, early-stopping count) is saved in checkpoints. The score is
// train.valid_metric's: a loss (lower is better) or BLEU / chrF (higher is better).
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "trainer/config.h"

namespace tern {

class TrainingSchedule {
 public:
  // loop.valid_metric must be resolved (not auto).
  TrainingSchedule(const OptimConfig& optim, const TrainLoopConfig& loop);

  // Learning rate of optimizer step `step` (counted from 1): linear warmup, then the configured decay, times the
  // plateau multiplier, never below optim.min_lr.
  double lr(int64_t step) const;

  struct Actions {
    bool validate = false, save = false, stop = false;
  };
  // What follows optimizer step `step` after `minutes` of wall time (identical on every rank when they pass the same
  // values). A stop always validates.
  Actions after_step(int64_t step, double minutes) const;

  // Records a validation score; returns whether it is the best so far. Drives the plateau decay and early stopping.
  bool record_validation(double score);
  // The final validation of a run that ended between scheduled validations: updates only the best score (no plateau
  // decay or early-stopping count), returns whether it is the best.
  bool record_final_validation(double score) {
    if (!better(score)) return false;
    best_ = score;
    return true;
  }
  // Early stopping: train.early_stopping validations in a row without improvement (0 disables).
  bool should_stop_early() const {
    return t_.early_stopping > 0 && validations_without_improvement_ >= t_.early_stopping;
  }
  int64_t validations_without_improvement() const { return validations_without_improvement_; }
  bool higher_is_better() const { return t_.valid_metric != ValidMetric::kLoss; }
  std::optional<double> best_score() const;  // none before any validation

  // Checkpoint metadata keys valid_metric, best_valid_score, validations_without_improvement, plateau_scale,
  // bad_validations. A checkpoint of tern before valid_metric (best_valid_loss, -1 for none) loads as metric loss.
  // Resuming with another metric starts the best score and the early-stopping count over (returns false then).
  void save(nlohmann::json& meta) const;
  bool load(const nlohmann::json& meta);

 private:
  bool better(double score) const { return higher_is_better() ? score > best_ : score < best_; }
  const OptimConfig& o_;
  const TrainLoopConfig& t_;
  double best_;  // -inf or +inf (the worst possible) before any validation
  int64_t validations_without_improvement_ = 0;
  double plateau_scale_ = 1.0;
  int64_t bad_validations_ = 0;  // since the last plateau decay
};

}  // namespace tern
