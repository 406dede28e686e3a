#include "models/cpu_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <string_view>

#include "core/errors.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace tern {

namespace {

bool intel_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d) == 0) return false;
  return b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;  // "Genu" "ineI" "ntel"
#else
  return false;
#endif
}

bool x86_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  return true;
#else
  return false;
#endif
}

using ReorderFn = at::Tensor(const at::Tensor&, std::optional<int64_t>);
using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, std::string_view,
                            c10::List<std::optional<at::Scalar>>, std::optional<std::string_view>);
using LinearAddFn = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                               const std::optional<at::Tensor>&, std::string_view);

// LibTorch's oneDNN operators (registered by libtorch_cpu; no C++ header declares them).
const c10::TypedOperatorHandle<ReorderFn>& onednn_reorder() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_reorder_linear_weight", "").typed<ReorderFn>();
  return op;
}
const c10::TypedOperatorHandle<LinearFn>& onednn_linear() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "").typed<LinearFn>();
  return op;
}
const c10::TypedOperatorHandle<LinearAddFn>& onednn_linear_add() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "binary").typed<LinearAddFn>();
  return op;
}

}  // namespace

CpuGemm resolve_cpu_gemm(CpuGemm requested) {
  const bool onednn = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  if (requested == CpuGemm::kOnednn && !onednn)
    throw ConfigError("--cpu-gemm onednn: this LibTorch has no oneDNN (or it is disabled); use --cpu-gemm blas");
  if (requested != CpuGemm::kAuto) return requested;
  static const CpuGemm automatic = onednn && x86_cpu() && !intel_cpu() ? CpuGemm::kOnednn : CpuGemm::kBlas;
  return automatic;
}

DenseLinear::DenseLinear(const torch::Tensor& weight, const torch::Tensor& bias, CpuGemm gemm)
    : gemm_(resolve_cpu_gemm(gemm)) {
  torch::NoGradGuard ng;
  weight_ = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();  // (Out, In)
  if (bias.defined()) bias_ = bias.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  packed_ = gemm_ == CpuGemm::kOnednn ? onednn_reorder().call(weight_, std::nullopt) : weight_.t().contiguous();
}

torch::Tensor DenseLinear::operator()(const torch::Tensor& x, const torch::Tensor& add) const {
  const std::optional<at::Tensor> bias = bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt;
  if (gemm_ == CpuGemm::kOnednn) {
    if (add.defined()) return onednn_linear_add().call(x, add.contiguous(), packed_, bias, "add");
    return onednn_linear().call(x, packed_, bias, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
  }
  if (add.defined()) return torch::addmm(bias_.defined() ? add + bias_ : add, x, packed_);
  return bias_.defined() ? torch::addmm(bias_, x, packed_) : torch::mm(x, packed_);
}

DenseLinear DenseLinear::rows(const torch::Tensor& ids) const {
  return {weight_.index_select(0, ids), bias_.defined() ? bias_.index_select(0, ids) : torch::Tensor(), gemm_};
}

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
