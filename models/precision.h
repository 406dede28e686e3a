// Mixed precision through LibTorch's autocast: matrix products and recurrent cells run in fp16 or bf16 while the
// parameters (and optimizer state) stay fp32; softmax and losses are computed in fp32 (models/loss.cpp).
#pragma once
#include <torch/torch.h>

#include <string>

#include "models/config.h"

namespace tern {

// "fp32" | "fp16" | "bf16"; throws ConfigError naming `key` otherwise.
Precision parse_precision(const std::string& name, const std::string& key = "precision");
std::string precision_name(Precision p);
// Throws ConfigError (naming `key`) when `device` has no kernels for `p`: LibTorch's CPU recurrent kernels (oneDNN)
// have no fp16 path, so fp16 needs a CUDA device; bf16 and fp32 run everywhere.
void check_precision(Precision p, const torch::Device& device, const std::string& key);
// Whether this CPU runs LibTorch's bf16 LSTM/GRU kernels (oneDNN has none for some instruction sets, e.g. AVX only).
bool cpu_supports_bf16_rnn();

// Autocast on `device` for the lifetime of the object (fp32: does nothing). Nestable; restores the previous state.
class AutocastScope {
 public:
  AutocastScope(Precision p, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

}  // namespace tern
