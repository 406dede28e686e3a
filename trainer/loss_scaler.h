// Dynamic loss scaling for fp16 (the familiar semantics): the loss is multiplied by `scale` before backward; the
// gradients are divided by it after the all-reduce; an overflow (a non-finite loss or gradient norm, the same on
// every rank after the all-reduce) skips the step and halves the scale; `window` clean steps in a row double it.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace tern {

struct LossScalerOptions {
  bool enabled = false;
  double init_scale = 65536;  // 2^16
  int64_t window = 2000;      // overflow-free steps before the scale doubles
  double min_scale = 1e-4;    // an overflow that would go below this stops training
};

class LossScaler {
 public:
  explicit LossScaler(LossScalerOptions opt = {});
  bool enabled() const { return opt_.enabled; }
  double scale() const { return opt_.enabled ? scale_ : 1.0; }
  int64_t skipped_steps() const { return skipped_; }
  // Records whether this step's unscaled gradients (and loss) were finite; returns whether the optimizer may step.
  // Throws TrainingError naming `step` when halving would take the scale below the minimum.
  bool update(bool finite, int64_t step);
  nlohmann::json state() const;  // scale, clean steps, skipped steps: saved in checkpoints
  void load(const nlohmann::json& state);

 private:
  LossScalerOptions opt_;
  double scale_;
  int64_t clean_ = 0, skipped_ = 0;
};

}  // namespace tern
