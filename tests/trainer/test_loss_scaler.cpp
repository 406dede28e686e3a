#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include "core/errors.h"
#include "distributed/communicator.h"
#include "distributed/reducer.h"
#include "models/loss.h"
#include "models/model.h"
#include "models/precision.h"
#include "test_util.h"
#include "trainer/loss_scaler.h"

namespace tern {
namespace {

LossScaler dynamic(double init, int64_t window, double min_scale = 1e-4) {
  LossScalerOptions o;
  o.enabled = true;
  o.init_scale = init;
  o.window = window;
  o.min_scale = min_scale;
  return LossScaler(o);
}

ModelConfig tiny_lm() {
  ModelConfig c;
  c.type = "lm";
  c.embedding = 8;
  c.hidden = 8;
  c.dropout = 0;
  c.tgt_vocab = 20;
  return c;
}

// One training step as the trainer does it: scaled loss, backward, all-reduce with unscaling, clip, scaler decision,
// optimizer step only when the scaler allows it.
bool train_step(SequenceModelImpl& model, torch::optim::Optimizer& optim, GradientReducer& reducer, LossScaler& s,
                std::vector<torch::Tensor>& params) {
  optim.zero_grad();
  auto tgt = torch::randint(4, 20, {3, 6});
  LossSums ls = sequence_loss(model.forward({}, {}, tgt), tgt, 0.0);
  (ls.loss * s.scale()).backward();
  reducer.reduce(1.0 / (18.0 * s.scale()));
  double norm = torch::nn::utils::clip_grad_norm_(params, 1.0);
  if (!s.update(std::isfinite(norm), 1)) return false;
  optim.step();
  return true;
}

}  // namespace

TEST(LossScaler, OverflowSkipsAndHalves) {
  auto s = dynamic(65536, 2000);
  EXPECT_FALSE(s.update(/*finite=*/false, 1));
  EXPECT_EQ(s.scale(), 32768);
  EXPECT_EQ(s.skipped_steps(), 1);
  EXPECT_TRUE(s.update(true, 2));
  EXPECT_EQ(s.scale(), 32768);
}

TEST(LossScaler, GrowsAfterTheWindowOfCleanSteps) {
  auto s = dynamic(4, 3);
  EXPECT_TRUE(s.update(true, 1));
  EXPECT_TRUE(s.update(true, 2));
  EXPECT_EQ(s.scale(), 4);
  EXPECT_TRUE(s.update(true, 3));
  EXPECT_EQ(s.scale(), 8);
  // An overflow restarts the window.
  EXPECT_TRUE(s.update(true, 4));
  EXPECT_FALSE(s.update(false, 5));
  EXPECT_EQ(s.scale(), 4);
  EXPECT_TRUE(s.update(true, 6));
  EXPECT_TRUE(s.update(true, 7));
  EXPECT_EQ(s.scale(), 4);
  EXPECT_TRUE(s.update(true, 8));
  EXPECT_EQ(s.scale(), 8);
}

TEST(LossScaler, MinimumScaleStopsWithAClearMessage) {
  auto s = dynamic(4, 10, /*min_scale=*/2);
  EXPECT_FALSE(s.update(false, 7));  // 4 -> 2
  std::string msg = test::error_of([&] { s.update(false, 8); });
  EXPECT_NE(msg.find("fp16 gradients overflow at step 8 even with loss scale 2 (train.min_loss_scale = 2"),
            std::string::npos)
      << msg;
}

TEST(LossScaler, DisabledIsTransparent) {
  LossScaler s;
  EXPECT_EQ(s.scale(), 1.0);
  EXPECT_TRUE(s.update(true, 1));
  EXPECT_FALSE(s.update(false, 2));  // the trainer's bad-step rule applies instead
  EXPECT_EQ(s.scale(), 1.0);
}

TEST(LossScaler, StateSurvivesSaveAndLoad) {
  auto a = dynamic(1024, 3);
  a.update(false, 1);
  a.update(true, 2);
  auto b = dynamic(65536, 3);
  b.load(nlohmann::json::parse(a.state().dump()));
  EXPECT_EQ(b.scale(), 512);
  EXPECT_EQ(b.skipped_steps(), 1);
  EXPECT_TRUE(b.update(true, 3));
  EXPECT_TRUE(b.update(true, 4));
  EXPECT_EQ(b.scale(), 1024);  // the clean-step count came along: 1 + 2 = window
}

TEST(LossScaler, OverflowLeavesParametersBitIdenticalAndFinite) {
  torch::manual_seed(3);
  DistributedConfig dc;
  dc.backend = "single";
  auto comm = make_communicator(dc, false);
  auto model = build_model(tiny_lm());
  auto params = model->parameters();
  torch::optim::Adam optim(params, torch::optim::AdamOptions(1e-2));
  GradientReducer reducer(*comm, params, 25);
  std::vector<torch::Tensor> before;
  for (auto& p : params) before.push_back(p.detach().clone());
  // 3e38 times a loss of tens of nats overflows fp32: every gradient is inf or nan.
  auto s = dynamic(3e38, 2000);
  EXPECT_FALSE(train_step(*model, optim, reducer, s, params));
  EXPECT_EQ(s.scale(), 1.5e38);
  for (size_t k = 0; k < params.size(); ++k) EXPECT_TRUE(torch::equal(params[k], before[k])) << "parameter " << k;
  // Backing off until the scaled loss fits, training then steps and the weights stay finite.
  int skipped = 1;
  while (!train_step(*model, optim, reducer, s, params)) ASSERT_LT(++skipped, 200);
  EXPECT_GT(skipped, 1);
  bool changed = false;
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_TRUE(torch::isfinite(params[k]).all().item<bool>());
    changed = changed || !torch::equal(params[k], before[k]);
  }
  EXPECT_TRUE(changed);
}

TEST(Precision, ParseAndDeviceRules) {
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_EQ(test::error_of([] { parse_precision("fp8", "train.precision"); }),
            "train.precision must be fp32, fp16 or bf16 (got fp8)");
  EXPECT_NE(test::error_of([] {
              check_precision(Precision::kFp16, torch::Device(torch::kCPU), "train.precision");
            }).find("fp16 needs a CUDA device"),
            std::string::npos);
  if (cpu_supports_bf16_rnn())
    EXPECT_NO_THROW(check_precision(Precision::kBf16, torch::Device(torch::kCPU), "train.precision"));
  else
    EXPECT_NE(test::error_of([] {
                check_precision(Precision::kBf16, torch::Device(torch::kCPU), "train.precision");
              }).find("bf16 is not available on this CPU"),
              std::string::npos);
}

TEST(Precision, Bf16AutocastOnCpuKeepsFp32WeightsAndLoss) {
  if (!cpu_supports_bf16_rnn())
    GTEST_SKIP() << "this CPU has no oneDNN bf16 LSTM kernel (e.g. AVX without AVX2); "
                    "tern refuses bf16 here with a config error";
  torch::manual_seed(4);
  auto model = build_model(tiny_lm());
  auto tgt = torch::randint(4, 20, {2, 5});
  torch::Tensor logits;
  {
    AutocastScope autocast(Precision::kBf16, torch::Device(torch::kCPU));
    logits = model->forward({}, {}, tgt);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(c10::DeviceType::CPU));
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(c10::DeviceType::CPU));
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);  // the output projection ran in bf16
  LossSums ls = sequence_loss(logits, tgt, 0.1);
  EXPECT_EQ(ls.loss.scalar_type(), torch::kFloat32);
  ls.loss.backward();
  for (auto& p : model->parameters()) EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
  // Close to the fp32 loss.
  torch::NoGradGuard ng;
  double fp32 = sequence_loss(model->forward({}, {}, tgt), tgt, 0.1).loss.item<double>();
  EXPECT_NEAR(ls.loss.item<double>(), fp32, 0.02 * fp32);
}

TEST(Precision, Fp16WithLossScalingOnCuda) {
  if (!torch::cuda::is_available())
    GTEST_SKIP() << "no CUDA device: fp16 autocast needs a GPU (LibTorch's CPU "
                    "LSTM has no fp16 kernel); runs on the GPU machine";
  torch::manual_seed(5);
  torch::Device cuda(torch::kCUDA);
  auto model = build_model(tiny_lm());
  model->to(cuda);
  auto tgt = torch::randint(4, 20, {4, 7}, torch::TensorOptions().device(cuda));
  auto s = dynamic(65536, 2000);
  LossSums ls;
  {
    AutocastScope autocast(Precision::kFp16, cuda);
    auto logits = model->forward({}, {}, tgt);
    EXPECT_EQ(logits.scalar_type(), torch::kHalf);
    ls = sequence_loss(logits, tgt, 0.0);
  }
  (ls.loss * s.scale()).backward();
  for (auto& p : model->parameters()) {
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
  }
}

// Guided alignment's costs on a hand-computed case: rows without links count for nothing; ce is the cross-entropy of
// the reference row against the attention, mse half the squared distance; gradients reach the attention.
TEST(AlignmentLoss, CeAndMseOfLinkedRowsOnly) {
  const torch::Tensor att = torch::tensor({0.5f, 0.25f, 0.25f, 0.1f, 0.8f, 0.1f}).view({1, 2, 3}).requires_grad_();
  const torch::Tensor ref = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({1, 2, 3});  // row 1: no link
  const torch::Tensor ce = alignment_loss(att, ref, AlignmentCost::kCe);
  EXPECT_NEAR(ce.item<double>(), -std::log(0.5 + 1e-6), 1e-6);
  EXPECT_NEAR(alignment_loss(att, ref, AlignmentCost::kMse).item<double>(), 0.5 * (0.25 + 0.0625 + 0.0625), 1e-6);
  ce.backward();
  EXPECT_NEAR(att.grad()[0][0][0].item<double>(), -1.0 / (0.5 + 1e-6), 1e-4);
  EXPECT_EQ(att.grad()[0][1].abs().sum().item<double>(), 0.0);
  // bf16 attention is scored in fp32.
  EXPECT_EQ(alignment_loss(att.detach().to(torch::kBFloat16), ref, AlignmentCost::kCe).scalar_type(), torch::kFloat32);
}

}  // namespace tern
