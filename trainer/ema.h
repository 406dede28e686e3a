// train.ema_decay: an exponential moving average of the parameters, kept in fp32 beside them, updated after every
// applied step, saved in checkpoints (archive "ema") and restored exactly; validation and inference use it.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace tern {

class ParameterEma {
 public:
  // Starts at the current parameters.
  ParameterEma(std::vector<torch::Tensor> params, double decay);
  // ema = decay * ema + (1 - decay) * parameter
  void update();
  // Exchanges the parameters and the average: validation runs on the average, a second swap restores the weights.
  void swap();
  void save(torch::serialize::OutputArchive& ar) const;
  // Throws c10::Error when the archive holds no average or one of another shape.
  void load(torch::serialize::InputArchive& ar);

 private:
  std::vector<torch::Tensor> params_, ema_;  // ema_[i]: fp32, shape and device of params_[i]
  double decay_;
};

// Copies the average saved in `ar` into `params` (same order as at training); false when the checkpoint has none.
bool load_ema_into(torch::serialize::InputArchive& ar, const std::vector<torch::Tensor>& params);

}  // namespace tern
