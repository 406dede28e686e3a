#include "models/int8_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include "core/errors.h"

namespace tern {

struct Int8Linear::Packed {
  c10::intrusive_ptr<LinearPackedParamsBase> params;
};

bool cpu_supports_int8() {
  const auto engines = at::globalContext().supportedQEngines();
  return std::find(engines.begin(), engines.end(), at::QEngine::X86) != engines.end() ||
         std::find(engines.begin(), engines.end(), at::QEngine::FBGEMM) != engines.end();
}

void require_int8_kernels() {
  if (!cpu_supports_int8())
    throw ConfigError("--int8: LibTorch has no int8 kernels for this CPU (fbgemm needs AVX2); decode without --int8");
}

Int8Linear::Int8Linear(const torch::Tensor& weight, const torch::Tensor& bias) {
  require_int8_kernels();
  torch::NoGradGuard ng;
  torch::Tensor w = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();  // (Out, In)
  torch::Tensor scale = (w.abs().amax(1).to(torch::kDouble) / 127.0).clamp_min(1e-12);
  torch::Tensor wq = torch::quantize_per_channel(w, scale, torch::zeros({w.size(0)}, torch::kLong), 0, torch::kQInt8);
  static const auto prepack =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("quantized::linear_prepack", "")
          .typed<c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor, std::optional<at::Tensor>)>();
  packed_ = std::make_shared<const Packed>(
      Packed{prepack.call(wq, bias.detach().to(torch::kCPU, torch::kFloat32).contiguous())});
}

torch::Tensor Int8Linear::operator()(const torch::Tensor& x) const {
  // reduce_range: 7-bit activations, so that AVX2's 16-bit pair sums cannot saturate on any machine.
  return packed_->params->apply_dynamic(x.contiguous(), /*reduce_range=*/true);
}

}  // namespace tern
