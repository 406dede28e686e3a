// Test helper: prints the largest absolute difference between the model parameters of two checkpoints.
#include <cstdio>

#include "eval/evaluate.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: tern_ckpt_diff A.tern B.tern\n");
    return 2;
  }
  try {
    auto a = tern::load_inference_model(argv[1], tern::DeviceRequest::kCpu),
         b = tern::load_inference_model(argv[2], tern::DeviceRequest::kCpu);
    auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
    if (pa.size() != pb.size() || pa.size() == 0) {
      std::fprintf(stderr, "different parameter sets (%zu vs %zu)\n", pa.size(), pb.size());
      return 1;
    }
    double worst = 0;
    for (const auto& p : pa) worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<double>());
    std::printf("%.17g\n", worst);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
