#include "models/precision.h"

#include <ATen/autocast_mode.h>

#include "core/errors.h"

namespace tern {

Precision parse_precision(const std::string& name, const std::string& key) {
  return parse_choice<Precision>(name, key);
}

std::string precision_name(Precision p) { return choice_name(p); }

// The oneDNN error when this CPU cannot run bf16 LSTM/GRU kernels (oneDNN has them only for some instruction sets,
// e.g. none on a CPU without AVX2), or "" when it can. Probed once with a tiny forward.
const std::string& cpu_bf16_rnn_problem() {
  static const std::string problem = [] {
    try {
      torch::NoGradGuard ng;
      AutocastScope autocast(Precision::kBf16, torch::Device(torch::kCPU));
      auto x = torch::randn({1, 2, 8});  // (B, T, E)
      torch::nn::LSTM(torch::nn::LSTMOptions(8, 8).batch_first(true))->forward(x);
      torch::nn::GRU(torch::nn::GRUOptions(8, 8).batch_first(true))->forward(x);
      return std::string();
    } catch (const std::exception& e) {  // dnnl::error, or c10::Error
      const std::string msg = e.what();
      return msg.substr(0, msg.find_first_of(".\n"));
    }
  }();
  return problem;
}

void check_precision(Precision p, const torch::Device& device, const std::string& key) {
  if (p == Precision::kFp16 && !device.is_cuda())
    throw ConfigError(key +
                      " fp16 needs a CUDA device: LibTorch's CPU LSTM/GRU kernels (oneDNN) have no fp16 path; "
                      "use bf16 or fp32 on CPU");
  if (p == Precision::kBf16 && !device.is_cuda() && !cpu_bf16_rnn_problem().empty())
    throw ConfigError(key +
                      " bf16 is not available on this CPU: LibTorch's oneDNN has no bf16 LSTM/GRU kernel for "
                      "its instruction set (" +
                      cpu_bf16_rnn_problem() +
                      "); use fp32 here, or bf16 on a GPU or a CPU "
                      "with AVX-512");
}

bool cpu_supports_bf16_rnn() { return cpu_bf16_rnn_problem().empty(); }

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
