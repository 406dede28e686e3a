#include "models/precision.h"

#include <ATen/autocast_mode.h>

#include "core/errors.h"

namespace tern {

Precision parse_precision(const std::string& name, const std::string& key) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "fp16") return Precision::kFp16;
  if (name == "bf16") return Precision::kBf16;
  throw ConfigError(key + " must be fp32, fp16 or bf16 (got " + name + ")");
}

std::string precision_name(Precision p) {
  return p == Precision::kFp16 ? "fp16" : p == Precision::kBf16 ? "bf16" : "fp32";
}

void check_precision(Precision p, const torch::Device& device, const std::string& key) {
  if (p == Precision::kFp16 && !device.is_cuda())
    throw ConfigError(key + " fp16 needs a CUDA device: LibTorch's CPU LSTM/GRU kernels (oneDNN) have no fp16 path; "
                      "use bf16 or fp32 on CPU");
}

AutocastScope::AutocastScope(Precision p, const torch::Device& device) {
  if (p == Precision::kFp32) return;
  active_ = true;
  type_ = device.type();
  prev_enabled_ = at::autocast::is_autocast_enabled(type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, p == Precision::kFp16 ? at::kHalf : at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Casts of the weights are cached for the outermost scope (once per step), then dropped.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
}

}  // namespace tern
