// Test helper: prints the largest absolute difference between the model parameters of two checkpoints, or with
// --mean, between AVG and the mean of the others (tern average).
#include <cstdio>
#include <cstring>

#include "eval/evaluate.h"

int main(int argc, char** argv) {
  const bool mean = argc >= 2 && std::strcmp(argv[1], "--mean") == 0;
  if ((!mean && argc != 3) || (mean && argc < 5)) {
    std::fprintf(stderr, "usage: tern_ckpt_diff A.tern B.tern | tern_ckpt_diff --mean AVG.tern A.tern B.tern...\n");
    return 2;
  }
  try {
    const int first = mean ? 2 : 1;
    auto a = tern::load_inference_model(argv[first], tern::DeviceRequest::kCpu);
    auto pa = a.model->named_parameters();
    std::vector<torch::OrderedDict<std::string, torch::Tensor>> others;
    std::vector<tern::InferenceModel> keep;
    for (int i = first + 1; i < argc; ++i) {
      keep.push_back(tern::load_inference_model(argv[i], tern::DeviceRequest::kCpu));
      others.push_back(keep.back().model->named_parameters());
      if (others.back().size() != pa.size() || pa.size() == 0) {
        std::fprintf(stderr, "different parameter sets (%zu vs %zu)\n", pa.size(), others.back().size());
        return 1;
      }
    }
    double worst = 0;
    for (const auto& p : pa) {
      torch::Tensor ref = torch::zeros_like(p.value(), torch::kFloat64);
      for (auto& o : others) ref += o[p.key()].to(torch::kFloat64);
      ref /= static_cast<double>(others.size());
      worst = std::max(worst, (p.value().to(torch::kFloat64) - ref).abs().max().item<double>());
    }
    std::printf("%.17g\n", worst);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
