// The training step on a GPU against the same step on the CPU (label cuda: skipped where no GPU is visible).
#include <gtest/gtest.h>

#include "distributed/communicator.h"
#include "models/model.h"
#include "trainer/step.h"

namespace tern {
namespace {

ModelConfig tiny_seq2seq() {
  ModelConfig c;
  c.cell = Cell::kLstm, c.attention = AttentionKind::kGeneral, c.input_feeding = true;
  c.layers = 2, c.embedding = 16, c.hidden = 16, c.dropout = 0.0;
  c.src_vocab = 40, c.tgt_vocab = 30;
  return c;
}

Batch fixed_batch() {
  torch::manual_seed(11);
  Batch b;
  b.src = torch::randint(4, 40, {3, 7});                                                      // (B, S)
  b.src_len = torch::tensor({7, 5, 2});                                                       // (B)
  auto tgt = torch::randint(4, 30, {3, 6});                                                   // (B, T + 1)
  b.tgt_in = tgt.narrow(1, 0, 5).contiguous(), b.tgt_out = tgt.narrow(1, 1, 5).contiguous();  // (B, T)
  b.target_tokens = 15, b.source_tokens = 14;
  return b;
}

// One Adam step of `precision` on `device` from the same initial parameters; returns the parameters after it.
std::vector<torch::Tensor> one_step(torch::Device device, Precision precision, double loss_scale, bool* applied) {
  torch::manual_seed(5);
  SequenceModel model = build_model(tiny_seq2seq());
  model->to(device);
  auto params = model->parameters();
  OptimConfig oc;
  auto optim = make_optimizer(oc, params);
  DistributedConfig dc;
  dc.backend = Backend::kSingle;
  auto comm = make_communicator(dc, false);
  GradientReducer reducer(*comm, params, 25, true);
  StepRunner runner(StepParts{model, optim.get(), &reducer, comm.get(), device, precision, 0.0, 1.0});
  std::vector<Batch> batches{fixed_batch()};
  PhaseTimes times;
  const auto sums = runner.forward_backward(batches, 15, loss_scale, 1, times);
  *applied = std::isfinite(sums.nll) && std::isfinite(sums.grad_norm);
  if (*applied) runner.update(1e-3);
  std::vector<torch::Tensor> out;
  for (auto& p : params) out.push_back(p.detach().to(torch::kCPU, torch::kFloat32));
  return out;
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

}  // namespace

class CudaStep : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible: runs on the GPU machine";
  }
};

// fp32 on the GPU equals the CPU step to float rounding; fp16 and bf16 stay within their rounding of it.
TEST_P(CudaStep, MatchesTheCpuStep) {
  bool ok_cpu = false, ok_gpu = false;
  auto cpu = one_step(torch::Device(torch::kCPU), Precision::kFp32, 1.0, &ok_cpu);
  auto gpu = one_step(torch::Device(torch::kCUDA), GetParam(), GetParam() == Precision::kFp16 ? 1024.0 : 1.0, &ok_gpu);
  ASSERT_TRUE(ok_cpu && ok_gpu);
  // Adam moves each parameter by about lr (1e-3) on the first step, so the bound separates "same step" from "no step".
  EXPECT_LT(max_diff(cpu, gpu), GetParam() == Precision::kFp32 ? 1e-5 : 2e-4);
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaStep, ::testing::Values(Precision::kFp32, Precision::kFp16, Precision::kBf16),
                         [](const auto& info) { return std::string(choice_name(info.param)); });

// An fp16 loss scale that overflows gives non-finite gradients: the step is reported so the scaler can skip it.
TEST(CudaFp16, OverflowIsDetected) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible: runs on the GPU machine";
  bool applied = true;
  one_step(torch::Device(torch::kCUDA), Precision::kFp16, 1e38, &applied);
  EXPECT_FALSE(applied);
}

}  // namespace tern
