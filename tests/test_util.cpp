#include "test_util.h"

#include <ftw.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "data/prepare.h"

namespace tern::test {

TempDir::TempDir() {
  static int counter = 0;
  path = std::filesystem::temp_directory_path() /
         ("tern_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::create_directories(path);
}

// nftw rather than std::filesystem::remove_all: libtorch.so exports a broken copy of that symbol.
TempDir::~TempDir() {
  nftw(
      path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary);
  for (const auto& l : lines) out << l << "\n";
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

static const std::vector<std::string> kWords = {
    "the",   "king",  "said",  "unto", "him",    "and",   "they", "went",  "into", "city",   "of",     "god",
    "light", "earth", "water", "land", "people", "house", "day",  "night", "son",  "father", "spirit", "word"};

std::vector<std::string> synthetic_sentences(int n, int seed, int min_words, int max_words) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    int len = min_words + static_cast<int>(rng() % static_cast<unsigned>(max_words - min_words + 1));
    std::string s;
    for (int k = 0; k < len; ++k) s += (k ? " " : "") + kWords[rng() % kWords.size()];
    out.push_back(s + ".");
  }
  return out;
}

std::vector<std::string> synthetic_translation(const std::vector<std::string>& src) {
  std::vector<std::string> out;
  for (const auto& s : src) {
    std::istringstream in(s);
    std::string w, t;
    while (in >> w) t += (t.empty() ? "" : " ") + (w == "." ? w : "el_" + w + "o");
    out.push_back(t);
  }
  return out;
}

std::string make_synthetic_corpus(const TempDir& d, int n, int seed, int64_t vocab) {
  auto src = synthetic_sentences(n, seed);
  write_lines(d.file("a.en"), src);
  write_lines(d.file("a.es"), synthetic_translation(src));
  PrepareOptions o;
  o.train_src = {d.file("a.en")};
  o.train_tgt = {d.file("a.es")};
  o.tokenizer.vocab_size = vocab;
  o.out = d.file("c.h5");
  o.progress = false;
  prepare_corpus(o);
  return o.out;
}

}  // namespace tern::test
