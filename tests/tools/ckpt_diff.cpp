// Test helper: prints the largest absolute difference between the model parameters of two checkpoints.
#include <cstdio>
#include <sstream>

#include "trainer/checkpoint.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: tern_ckpt_diff A.tern B.tern\n");
    return 2;
  }
  auto load = [](const char* path) {
    auto d = tern::read_checkpoint(path);
    torch::serialize::InputArchive ar, model;
    std::istringstream in(d.archive);
    ar.load_from(in);
    ar.read("model", model);
    std::map<std::string, torch::Tensor> out;
    for (const auto& key : model.keys()) {
      torch::Tensor t;
      if (model.try_read(key, t)) out[key] = t;
    }
    return out;
  };
  auto a = load(argv[1]), b = load(argv[2]);
  if (a.size() != b.size() || a.empty()) {
    std::fprintf(stderr, "different parameter sets (%zu vs %zu)\n", a.size(), b.size());
    return 1;
  }
  double worst = 0;
  for (const auto& [k, t] : a) worst = std::max(worst, (t - b.at(k)).abs().max().item<double>());
  std::printf("%.17g\n", worst);
  return 0;
}
