// Helpers shared by the unit tests: temporary directories and small synthetic corpora.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

namespace tern::test {

// A fresh directory removed at destruction.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_lines(const std::string& path, const std::vector<std::string>& lines);
std::vector<std::string> read_lines(const std::string& path);
// `n` sentences of words from a small synthetic lexicon, deterministic in `seed`.
std::vector<std::string> synthetic_sentences(int n, int seed, int min_words = 3, int max_words = 9);
// A word-by-word "translation" of synthetic_sentences (each word mapped to another form).
std::vector<std::string> synthetic_translation(const std::vector<std::string>& src);
// `d`/c.h5: a parallel corpus of synthetic_sentences(n, seed) (`d`/a.en) and their synthetic_translation (`d`/a.es),
// SentencePiece models of at most `vocab` pieces, everything in train.
std::string make_synthetic_corpus(const TempDir& d, int n, int seed, int64_t vocab);
// Runs `what` and returns the message of the tern::Error it throws ("" when none).
template <typename F>
std::string error_of(F&& what) {
  try {
    what();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Central finite differences (double precision) on `n` random coordinates of every parameter; returns the worst
// relative error.
template <typename F>
double gradient_error(torch::nn::Module& m, F loss_fn, int n = 6) {
  torch::manual_seed(5);
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
  loss_fn().backward();
  double worst = 0;
  torch::NoGradGuard ng;
  for (auto& p : m.parameters()) {
    auto flat = p.view(-1);
    auto g = p.grad().view(-1);
    for (int k = 0; k < n; ++k) {
      int64_t i = torch::randint(flat.numel(), {1}).item<int64_t>();
      double orig = flat[i].template item<double>(), eps = 1e-6;
      flat[i] = orig + eps;
      double up = loss_fn().template item<double>();
      flat[i] = orig - eps;
      double down = loss_fn().template item<double>();
      flat[i] = orig;
      double num = (up - down) / (2 * eps), ana = g[i].template item<double>();
      // Relative error, floored for tiny components where finite differences are all rounding noise.
      worst = std::max(worst, std::abs(num - ana) / (1e-3 + std::abs(num) + std::abs(ana)));
    }
  }
  return worst;
}

}  // namespace tern::test
