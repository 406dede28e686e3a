#include <gtest/gtest.h>

#include "distributed/communicator.h"
#include "distributed/reducer.h"

namespace tern {

TEST(Reducer, SingleProcessScalesAndBuckets) {
  DistributedConfig cfg;
  cfg.backend = "single";
  auto comm = make_communicator(cfg, false);
  EXPECT_EQ(comm->world(), 1);
  std::vector<torch::Tensor> params;
  for (int i = 0; i < 5; ++i) params.push_back(torch::ones({300, 1000}, torch::requires_grad()));
  for (auto& p : params) p.mutable_grad() = torch::full_like(p, 4.0);
  params[2].mutable_grad() = torch::Tensor();  // unused parameter: reduced as zeros
  GradientReducer r(*comm, params, /*bucket_mb=*/2);
  // 1.2 MB per parameter: the first bucket is capped at 1 MiB, then 2 MiB buckets.
  EXPECT_GE(r.buckets().size(), 4u);
  EXPECT_EQ(r.buckets()[0], std::vector<size_t>{4});
  r.reduce(0.25);
  EXPECT_EQ(params[0].grad().max().item<float>(), 1.0f);
  EXPECT_EQ(params[2].grad().abs().max().item<float>(), 0.0f);
  EXPECT_EQ(r.max_divergence(), 0.0);
}

TEST(DistributedConfig, Validation) {
  DistributedConfig c;
  c.backend = "gloo";
  EXPECT_THROW(c.validate(), std::exception);
}

}  // namespace tern
