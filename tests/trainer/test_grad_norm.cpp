#include <gtest/gtest.h>

#include <limits>

#include "trainer/grad_norm.h"

namespace tern {
namespace {

// Three parameters with gradients (one without): the device-side clipping against LibTorch's clip_grad_norm_.
std::vector<torch::Tensor> params_with_grads(double grad_scale) {
  torch::manual_seed(7);
  std::vector<torch::Tensor> ps;
  for (auto shape : {std::vector<int64_t>{5, 3}, std::vector<int64_t>{7}, std::vector<int64_t>{2, 2, 2}}) {
    auto p = torch::randn(shape).requires_grad_();
    p.mutable_grad() = torch::randn(shape) * grad_scale;
    ps.push_back(p);
  }
  ps.push_back(torch::randn({4}).requires_grad_());  // no gradient: skipped
  return ps;
}

TEST(GradNorm, MatchesLibTorchWhenClipping) {
  for (double max_norm : {0.5, 1e9}) {  // clips, and leaves the gradients alone
    auto mine = params_with_grads(3.0), ref = params_with_grads(3.0);
    const double norm = clip_grad_norm(mine, max_norm).item<double>();
    const double ref_norm = torch::nn::utils::clip_grad_norm_(ref, max_norm);
    EXPECT_NEAR(norm, ref_norm, 1e-5 * ref_norm) << "max_norm " << max_norm;
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::allclose(mine[i].grad(), ref[i].grad(), 1e-6, 1e-7));
    EXPECT_FALSE(mine[3].grad().defined());
  }
  auto clipped = params_with_grads(3.0);
  clip_grad_norm(clipped, 0.5);
  EXPECT_NEAR(clip_grad_norm(clipped, std::numeric_limits<double>::infinity()).item<double>(), 0.5, 1e-5);
}

TEST(GradNorm, InfinityOnlyMeasures) {
  auto ps = params_with_grads(2.0);
  auto before = ps[0].grad().clone();
  auto norm = clip_grad_norm(ps, std::numeric_limits<double>::infinity());
  EXPECT_EQ(norm.dim(), 0);
  EXPECT_EQ(norm.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(ps[0].grad(), before));
}

TEST(GradNorm, NonFiniteGradientGivesNonFiniteNorm) {
  auto ps = params_with_grads(1.0);
  ps[1].mutable_grad()[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(clip_grad_norm(ps, 1.0).item<double>()));
  ps = params_with_grads(1.0);
  ps[2].mutable_grad()[0][1][1] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(std::isfinite(clip_grad_norm(ps, 1.0).item<double>()));
}

TEST(GradNorm, NoGradientsIsZero) {
  std::vector<torch::Tensor> ps{torch::randn({3}).requires_grad_()};
  EXPECT_EQ(clip_grad_norm(ps, 1.0).item<double>(), 0.0);
}

}  // namespace
}  // namespace tern
