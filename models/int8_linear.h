// An int8 matrix product for CPU decoding (translate --int8): weights quantized once per output row (symmetric,
// scale = max |w| / 127), activations quantized per call to 7-bit unsigned values (LibTorch's dynamic quantized
// linear, fbgemm or oneDNN kernels, with int32 accumulation), output in fp32. Logits move by about 1e-2 against the
// fp32 product; Marian's and CTranslate2's int8 CPU decoding work the same way.
#pragma once
#include <torch/torch.h>

#include <memory>

namespace tern {

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
