// The matrix products of decoding steps on the CPU, their weights prepared once when decoding starts:
// - DenseLinear: fp32, through LibTorch's BLAS (MKL on x86: addmm with the weight stored transposed) or oneDNN (its
//   inner product with the weight reordered once into oneDNN's blocked layout). Both accumulate in fp32; results
//   differ in rounding only (about 1e-6 relative). MKL takes a generic path on CPUs that are not Intel's: on an AMD
//   EPYC (Zen 4) a decoding step's products ran 1.3-3x faster through oneDNN and the beam search 1.10x, so `auto`
//   picks oneDNN there (docs/benchmarks.md).
// - Int8Linear (translate --int8): weights quantized once per output row (symmetric, scale = max |w| / 127),
//   activations quantized per call to 7-bit unsigned values (LibTorch's dynamic quantized linear, fbgemm or oneDNN
//   kernels, with int32 accumulation), output in fp32. Logits move by about 1e-2 against the fp32 product; Marian's
//   and CTranslate2's int8 CPU decoding work the same way.
#pragma once
#include <torch/torch.h>

#include <array>
#include <memory>

#include "core/choice.h"

namespace tern {

// Which library takes the fp32 products of CPU decoding (translate|evaluate|bench translate --cpu-gemm).
enum class CpuGemm { kAuto, kBlas, kOnednn };
template <>
struct ChoiceNames<CpuGemm> {
  static constexpr std::array<const char*, 3> kNames{"auto", "blas", "onednn"};
};
// auto -> onednn on an x86 CPU that is not Intel's when LibTorch has oneDNN, else blas; blas and onednn stay (onednn
// throws ConfigError, naming --cpu-gemm, when LibTorch has no oneDNN).
CpuGemm resolve_cpu_gemm(CpuGemm requested);

// How a model's decoding steps on the CPU take their products (SequenceModelImpl::set_cpu_kernels).
struct CpuKernels {
  CpuGemm gemm = resolve_cpu_gemm(CpuGemm::kAuto);  // never kAuto
  bool int8 = false;                                // the output layer in int8 (the other products: `gemm`)
  bool operator==(const CpuKernels& o) const { return gemm == o.gemm && int8 == o.int8; }
};

class DenseLinear {
 public:
  DenseLinear() = default;
  // weight (Out, In), bias (Out) or undefined; fp32 on the CPU. gemm: blas or onednn (resolved).
  DenseLinear(const torch::Tensor& weight, const torch::Tensor& bias, CpuGemm gemm);
  // x (N, In) -> (N, Out): x W^T + b, plus `add` (N, Out) when defined (fused into the product).
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& add = {}) const;
  // The layer cut to the output rows `ids` (Out'), the same products as the whole layer's rows.
  DenseLinear rows(const torch::Tensor& ids) const;
  bool defined() const { return packed_.defined(); }

 private:
  CpuGemm gemm_ = CpuGemm::kBlas;
  torch::Tensor weight_;  // (Out, In) as given (a parameter's storage, not a copy), for rows()
  torch::Tensor packed_;  // blas: (In, Out) the weight transposed, contiguous; onednn: oneDNN's layout of (Out, In)
  torch::Tensor bias_;    // (Out) or undefined
};

class Int8Linear {
 public:
  // weight (Out, In), bias (Out) fp32 on the CPU. Throws ConfigError when this CPU has no int8 kernels.
  Int8Linear(const torch::Tensor& weight, const torch::Tensor& bias);
  torch::Tensor operator()(const torch::Tensor& x) const;  // (N, In) fp32 -> (N, Out) fp32

 private:
  struct Packed;  // LibTorch's packed int8 weights and bias
  std::shared_ptr<const Packed> packed_;
};

// Whether LibTorch has int8 kernels for this CPU (fbgemm needs AVX2; oneDNN's engine is the alternative).
bool cpu_supports_int8();
// Throws ConfigError, naming --int8, when it has none.
void require_int8_kernels();

}  // namespace tern
