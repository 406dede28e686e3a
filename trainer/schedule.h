// When training validates, saves and stops, and the learning rate at each step: the loop asks, the schedule decides.
// Its state (best validation loss, plateau multiplier, early-stopping count) is saved in checkpoints.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "trainer/config.h"

namespace tern {

class TrainingSchedule {
 public:
  TrainingSchedule(const OptimConfig& optim, const TrainLoopConfig& loop) : o_(optim), t_(loop) {}

  // Learning rate of optimizer step `step` (counted from 1): linear warmup, then the configured decay, times the
  // plateau multiplier, never below optim.min_lr.
  double lr(int64_t step) const;

  struct Actions {
    bool validate = false, save = false, stop = false;
  };
  // What follows optimizer step `step` after `minutes` of wall time (identical on every rank when they pass the same
  // values). A stop always validates.
  Actions after_step(int64_t step, double minutes) const;

  // Records a validation loss (nats per token); returns whether it is the best so far. Drives the plateau decay and
  // early stopping.
  bool record_validation(double loss);
  // The final validation of a run that ended between scheduled validations: updates only the best loss (no plateau
  // decay or early-stopping count), returns whether it is the best.
  bool record_final_validation(double loss) {
    if (!(loss < best_)) return false;
    best_ = loss;
    return true;
  }
  // Early stopping: train.early_stopping validations in a row without improvement (0 disables).
  bool should_stop_early() const {
    return t_.early_stopping > 0 && validations_without_improvement_ >= t_.early_stopping;
  }
  int64_t validations_without_improvement() const { return validations_without_improvement_; }
  double best_loss() const { return best_; }  // +inf before any validation

  // Checkpoint metadata keys best_valid_loss, validations_without_improvement, plateau_scale, bad_validations.
  void save(nlohmann::json& meta) const;
  void load(const nlohmann::json& meta);

 private:
  const OptimConfig& o_;
  const TrainLoopConfig& t_;
  double best_ = std::numeric_limits<double>::infinity();
  int64_t validations_without_improvement_ = 0;
  double plateau_scale_ = 1.0;
  int64_t bad_validations_ = 0;  // since the last plateau decay
};

}  // namespace tern
