// Test helper: prints the largest absolute difference between the model parameters of two checkpoints, or with
// --mean, between AVG and the mean of the others (tern average); with --param, one parameter of a checkpoint (its
// sizes on the first line, then a line a row, each value as %.9g: float32 exactly).
#include <cstdio>
#include <cstring>

#include "eval/evaluate.h"

int print_parameter(const char* path, const std::string& name) {
  auto m = tern::load_inference_model(path, tern::DeviceRequest::kCpu);
  auto params = m.model->named_parameters();
  if (!params.contains(name)) {
    std::fprintf(stderr, "%s: no parameter %s\n", path, name.c_str());
    return 1;
  }
  torch::Tensor t = params[name].detach().to(torch::kFloat32).contiguous();
  t = t.dim() == 1 ? t.unsqueeze(0) : t.reshape({t.size(0), -1});  // (rows, values)
  std::printf("%ld %ld\n", static_cast<long>(t.size(0)), static_cast<long>(t.size(1)));
  const float* v = t.data_ptr<float>();
  for (int64_t r = 0; r < t.size(0); ++r)
    for (int64_t k = 0; k < t.size(1); ++k) std::printf(k + 1 < t.size(1) ? "%.9g " : "%.9g\n", v[r * t.size(1) + k]);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--param") == 0) {
    try {
      return print_parameter(argv[2], argv[3]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  }
  const bool mean = argc >= 2 && std::strcmp(argv[1], "--mean") == 0;
  if ((!mean && argc != 3) || (mean && argc < 5)) {
    std::fprintf(stderr,
                 "usage: tern_ckpt_diff A.tern B.tern | tern_ckpt_diff --mean AVG.tern A.tern B.tern... | "
                 "tern_ckpt_diff --param CKPT.tern NAME\n");
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
