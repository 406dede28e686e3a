#include "eval/ngram.h"

#include <sys/resource.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <unordered_set>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/corpus.h"
#include "data/text.h"
#include "data/tokenizer.h"

namespace tern {
namespace {

using Key = NgramModel::Key;

// The n ids ending at `last` (inclusive).
Key key_of(const int32_t* last, int n) {
  Key k;
  k.w.fill(-1);
  std::copy(last - n + 1, last + 1, k.w.begin());
  return k;
}

Key drop_first(const Key& k, int n) {
  Key s;
  s.w.fill(-1);
  std::copy(k.w.begin() + 1, k.w.begin() + n, s.w.begin());
  return s;
}

Key drop_last(const Key& k, int n) {
  Key s = k;
  s.w[n - 1] = -1;
  return s;
}

constexpr double kLog10Zero = -99.0;  // ARPA's stand-in for log10(0)

// A tern corpus (its sentences are SentencePiece pieces), not a text file.
bool is_corpus(const std::string& path) { return path.size() > 3 && path.compare(path.size() - 3, 3, ".h5") == 0; }

}  // namespace

Sentences load_ngram_text(const std::string& path, const std::string& split, const std::string& side,
                          std::pair<std::string, std::string>* piece_vocab) {
  Sentences out;
  if (piece_vocab) *piece_vocab = {};
  if (is_corpus(path)) {
    CorpusReader corpus(path);
    const std::string sd = side.empty() ? (corpus.kind() == "parallel" ? "tgt" : "text") : side;
    if (!corpus.has_split(split)) throw DataError(fmt::format("{}: has no split '{}'", path, split));
    const VocabInfo& v = corpus.vocab(sd);
    if (piece_vocab) *piece_vocab = {sd, v.hash};
    Tokenizer tok(v.model_proto, path + " (" + sd + " vocabulary)");
    TokenBlock b = corpus.read(split, sd, 0, corpus.num_sentences(split));
    for (size_t i = 0; i < b.size(); ++i) {
      auto& s = out.emplace_back();
      for (int64_t k = 0; k < b.length(i); ++k) s.push_back(tok.piece(b.data(i)[k]));
    }
    if (out.empty()) throw DataError(fmt::format("{}: split '{}' has no sentences", path, split));
    return out;
  }
  auto in = open_text_file(path, "text file");
  if (in->peek() == std::istream::traits_type::eof())
    throw DataError(path + ": the text file is empty (an n-gram model needs at least one sentence to train or score)");
  for (const auto& line : read_utf8_lines(*in, path)) {
    auto& s = out.emplace_back();
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j > i) s.push_back(line.substr(i, j - i));
      i = j;
    }
  }
  if (std::all_of(out.begin(), out.end(), [](const auto& s) { return s.empty(); }))
    throw DataError(
        fmt::format("{}: its {} line(s) are blank (an n-gram model needs words to train or score)", path, out.size()));
  return out;
}

size_t NgramModel::KeyHash::operator()(const Key& k) const { return hash_bytes(k.w.data(), sizeof(k.w)); }

void NgramOptions::validate() const {
  if (order < 1 || order > NgramModel::kMaxOrder)
    throw ConfigError(fmt::format("ngram order must be between 1 and {} (got {})", NgramModel::kMaxOrder, order));
  if (smoothing != "laplace" && smoothing != "add-k" && smoothing != "interpolated" && smoothing != "katz" &&
      smoothing != "kneser-ney")
    throw ConfigError("ngram smoothing must be laplace, add-k, interpolated, katz or kneser-ney (got " + smoothing +
                      ")");
  if (katz_max_count < 1 || katz_max_count > 100)
    throw ConfigError(
        fmt::format("ngram Good-Turing maximum count (--gt-max) must be between 1 and 100 (got {})", katz_max_count));
  if (cutoffs.size() > static_cast<size_t>(NgramModel::kMaxOrder))
    throw ConfigError(fmt::format("ngram --cutoff gives {} minimum counts; at most one per order, {} orders",
                                  cutoffs.size(), NgramModel::kMaxOrder));
  for (size_t i = 0; i < cutoffs.size(); ++i)
    if (cutoffs[i] < 1)
      throw ConfigError(
          fmt::format("ngram --cutoff: the minimum count of order {} must be >= 1 (got {})", i + 1, cutoffs[i]));
  if (!cutoffs.empty() && cutoffs[0] != 1)
    throw ConfigError(fmt::format(
        "ngram --cutoff: the unigram minimum must be 1 (got {}): every training word stays in the vocabulary, as "
        "KenLM and SRILM require; rare words can be mapped to <unk> in the text instead",
        cutoffs[0]));
  if (!(prune >= 0 && prune <= 1))
    throw ConfigError(fmt::format("ngram --prune threshold must be in [0, 1] (got {}; 1e-8 to 1e-6 are usual)", prune));
  const bool reduces = prune > 0 || std::any_of(cutoffs.begin(), cutoffs.end(), [](int64_t c) { return c > 1; });
  if (reduces && order > 1 && (smoothing == "laplace" || smoothing == "add-k"))
    throw ConfigError(
        fmt::format("ngram --cutoff and --prune need a backoff model (katz, kneser-ney or "
                    "interpolated); {} smoothing has no backoff weights to take the removed mass",
                    smoothing));
  if (!(add_k > 0)) throw ConfigError(fmt::format("ngram add-k constant must be > 0 (got {})", add_k));
  if (!(add_k <= 1e6)) throw ConfigError(fmt::format("ngram add-k constant must be <= 1e6 (got {})", add_k));
  if (!(heldout_fraction > 0 && heldout_fraction <= 0.5))
    throw ConfigError(fmt::format("ngram held-out fraction must be in (0, 0.5] (got {})", heldout_fraction));
  if (em_iterations < 1) throw ConfigError(fmt::format("ngram EM iterations must be >= 1 (got {})", em_iterations));
}

std::vector<int64_t> parse_cutoffs(const std::string& text) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (true) {
    const size_t j = std::min(text.find(',', i), text.size());
    const std::string item = text.substr(i, j - i);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size())
      throw ConfigError(
          fmt::format("ngram --cutoff '{}': item {} ('{}') is not a whole number (below 2^63); give one minimum "
                      "count per order separated by commas, e.g. 1,1,2",
                      text, out.size() + 1, item));
    out.push_back(v);
    if (j == text.size()) return out;
    i = j + 1;
  }
}

int64_t NgramOptions::cutoff(int n) const {
  if (cutoffs.empty()) return 1;
  return cutoffs[std::min<size_t>(static_cast<size_t>(n), cutoffs.size()) - 1];
}

double PerplexityResult::ppl() const { return tokens ? std::pow(10.0, -log10_prob / tokens) : 0.0; }
double PerplexityResult::ppl_excluding_oov() const {
  return tokens > oovs ? std::pow(10.0, -(log10_prob - log10_prob_oov) / (tokens - oovs)) : 0.0;
}
double PerplexityResult::bits_per_token() const { return tokens ? -log10_prob / tokens * std::log2(10.0) : 0.0; }

int32_t NgramModel::word_id(const std::string& w) const {
  auto it = index_.find(w);
  return it == index_.end() ? kUnk : it->second;
}

std::vector<int32_t> NgramModel::ids(const std::vector<std::string>& sentence, int64_t* oovs) const {
  std::vector<int32_t> out;
  out.reserve(sentence.size() + 2);
  out.push_back(kBos);
  for (const auto& w : sentence) {
    auto it = index_.find(w);
    if (it == index_.end() || it->second == kBos || it->second == kEos) {
      out.push_back(kUnk);
      if (oovs) ++*oovs;
    } else {
      out.push_back(it->second);
    }
  }
  out.push_back(kEos);
  return out;
}

NgramModel NgramModel::train(const Sentences& text, const NgramOptions& opt, const Sentences& heldout) {
  opt.validate();
  if (text.empty()) throw DataError("ngram: the training text has no sentences");
  NgramModel m;
  m.opt_ = opt;
  const int N = opt.order;
  for (const char* w : {"<unk>", "<s>", "</s>"}) {
    m.index_.emplace(w, static_cast<int32_t>(m.words_.size()));
    m.words_.push_back(w);
  }
  m.grams_.resize(N);
  m.context_total_.resize(N);
  std::vector<int32_t> s;
  for (const auto& sentence : text) {
    s.assign(1, kBos);
    for (const auto& w : sentence) {
      auto [it, added] = m.index_.emplace(w, static_cast<int32_t>(m.words_.size()));
      if (added) m.words_.push_back(w);
      s.push_back(it->second);
    }
    s.push_back(kEos);
    // Raw counts of every n-gram that predicts a word: <s> w1 .. wk </s>, one <s> of padding.
    for (size_t i = 1; i < s.size(); ++i)
      for (int n = 1; n <= N && static_cast<size_t>(n) <= i + 1; ++n) {
        auto& e = m.grams_[n - 1][key_of(&s[i], n)];
        ++e.count;
        ++e.raw;
        Key ctx;
        ctx.w.fill(-1);
        if (n > 1) ctx = key_of(&s[i - 1], n - 1);
        ++m.context_total_[n - 1][ctx];
      }
  }
  m.grams_[0][key_of(&kUnk, 1)];  // in the vocabulary with count 0
  m.grams_[0][key_of(&kBos, 1)];

  if (opt.smoothing == "kneser-ney") {
    m.estimate_kneser_ney();
  } else if (opt.smoothing == "interpolated") {
    std::vector<double> lambdas;
    if (!heldout.empty()) {
      lambdas = m.tune_lambdas(heldout);
    } else {
      // Tune on every k-th training sentence with counts from the rest, then estimate from all of it.
      const size_t every = static_cast<size_t>(std::llround(1.0 / opt.heldout_fraction));
      Sentences rest, tune;
      for (size_t i = 0; i < text.size(); ++i) (i % every == every - 1 ? tune : rest).push_back(text[i]);
      if (tune.empty() || rest.empty())
        throw DataError(
            fmt::format("ngram interpolated smoothing needs held-out text: {} training sentences are too "
                        "few to hold out every {}th (give --heldout)",
                        text.size(), every));
      NgramOptions whole = opt;  // the weights come from the full model, before any cutoff or pruning
      whole.cutoffs.clear();
      whole.prune = 0;
      lambdas = train(rest, whole, tune).lambdas_;
    }
    m.estimate_interpolated(lambdas);
  } else if (opt.smoothing == "katz") {
    m.estimate_katz();
  } else if (N == 1) {  // add-k unigrams are a plain table
    const double k = opt.smoothing == "laplace" ? 1.0 : opt.add_k;
    const double V = static_cast<double>(m.words_.size() - 1),
                 T = static_cast<double>(m.context_total_[0].begin()->second);
    for (auto& [key, e] : m.grams_[0]) e.log10_prob = key.w[0] == kBos ? 0.0 : std::log10((e.count + k) / (T + k * V));
    m.arpa_form_ = true;
  }
  if (m.arpa_form_) m.cut_and_prune();
  return m;
}

// Katz backoff (Katz 1987) as SRILM's ngram-count estimates it: an n-gram seen c times gets d_c c / c(h), with the
// Good-Turing coefficient d_c = ((c+1) n_{c+1} / (c n_c) - (k+1) n_{k+1} / n_1) / (1 - (k+1) n_{k+1} / n_1) for
// c <= k and 1 above (a coefficient outside (0, 1] is 1, as SRILM does); the mass left in a context goes to the lower
// order through the backoff weight. Unigrams are discounted too (SRILM's default -gt1max 1 leaves them undiscounted,
// which gives <unk> no probability); their left-over mass goes to the words never seen (<unk>), or to every word
// when there are none.
void NgramModel::estimate_katz() {
  const int N = opt_.order, k = opt_.katz_max_count;
  katz_.assign(N, std::vector<double>(k + 1, 1.0));
  for (int n = 1; n <= N; ++n) {
    std::vector<int64_t> coc(k + 2, 0);
    for (const auto& [key, e] : grams_[n - 1])
      if (e.count >= 1 && e.count <= k + 1) ++coc[e.count];
    if (coc[1] == 0) continue;
    const double common = (k + 1.0) * static_cast<double>(coc[k + 1]) / static_cast<double>(coc[1]);
    for (int r = 1; r <= k; ++r) {
      if (coc[r] == 0) continue;
      const double c0 = (r + 1.0) * static_cast<double>(coc[r + 1]) / (r * static_cast<double>(coc[r]));
      const double c = (c0 - common) / (1.0 - common);
      katz_[n - 1][r] = std::isfinite(c) && c > 1e-10 && c <= 1.0 && c0 <= 1.0 ? c : 1.0;
    }
  }
  double left = 1;
  int64_t unseen = 0;
  for (int n = 1; n <= N; ++n) {
    const auto& d = katz_[n - 1];
    for (auto& [key, e] : grams_[n - 1]) {
      if (n == 1 && (key.w[0] == kBos || e.count == 0)) {
        e.log10_prob = kLog10Zero;
        if (key.w[0] != kBos) ++unseen;
        continue;
      }
      const double c = static_cast<double>(e.count);
      const double p = (e.count <= k ? d[e.count] : 1.0) * c / context_total_[n - 1].at(drop_last(key, n));
      e.log10_prob = std::log10(p);
      if (n == 1) left -= p;
    }
  }
  left = std::max(left, 0.0);
  const double V = static_cast<double>(words_.size() - 1);  // <s> is never predicted
  for (auto& [key, e] : grams_[0]) {
    if (key.w[0] == kBos) {
      e.log10_prob = 0;
    } else if (unseen > 0 && e.count == 0) {
      e.log10_prob = left > 0 ? std::log10(left / static_cast<double>(unseen)) : kLog10Zero;
    } else if (unseen == 0) {
      e.log10_prob = std::log10(std::pow(10.0, e.log10_prob) + left / V);
    }
  }
  arpa_form_ = true;
  for (int n = 2; n <= N; ++n) recompute_backoffs(n);
}

double NgramModel::lower_prob(const Key& g, int n) const {
  std::vector<int32_t> h(g.w.begin() + 1, g.w.begin() + n - 1);
  return std::pow(10.0, log10_prob(h, g.w[n - 1]));
}

// Per context h of the order-n n-grams h w: (sum of p(w|h), sum of p(w|h')) over its kept extensions; `lower`, when
// given, receives each n-gram's p(w|h') in the map's iteration order.
std::unordered_map<NgramModel::Key, std::pair<double, double>, NgramModel::KeyHash> NgramModel::context_sums(
    int n, std::vector<double>* lower) const {
  std::unordered_map<Key, std::pair<double, double>, KeyHash> sums;
  for (const auto& [key, e] : grams_[n - 1]) {
    auto& s = sums[drop_last(key, n)];
    const double q = lower_prob(key, n);
    s.first += std::pow(10.0, e.log10_prob);
    s.second += q;
    if (lower) lower->push_back(q);
  }
  return sums;
}

// The weight of context h: (1 - sum of p(w|h) over its kept extensions) / (1 - sum of p(w|h') over the same words).
void NgramModel::recompute_backoffs(int n) {
  const auto sums = context_sums(n);
  for (auto& [key, e] : grams_[n - 2]) {
    auto it = sums.find(key);
    if (it == sums.end()) {
      e.log10_bow = 0;
      continue;
    }
    const double num = 1 - it->second.first, den = std::max(1 - it->second.second, 1e-12);
    e.log10_bow = num > 1e-12 ? std::log10(num / den) : kLog10Zero;
  }
}

// Count cutoffs, then entropy-based pruning (Stolcke 1998, as SRILM's -prune), from the highest order down. An n-gram
// that is the prefix (a context) or the suffix of a kept longer n-gram is kept, so that the ARPA file stays complete.
// Pruning h w costs D = -p(h) [p(w|h) (log p'(w|h) - log p(w|h)) + L (log a' - log a)], where p' is the backed-off
// probability a' p(w|h'), L the mass h leaves to the lower order and a, a' the backoff weights before and after; all
// n-grams of an order are judged against the model before that order is pruned; h w goes when 10^D - 1 < threshold
// (the relative rise of perplexity). Judging order n uses only orders below it, which are not cut yet, so backoff
// weights are recomputed once, for every order, at the end.
void NgramModel::cut_and_prune() {
  const int N = opt_.order;
  const bool cut = std::any_of(opt_.cutoffs.begin(), opt_.cutoffs.end(), [](int64_t c) { return c > 1; });
  if (!cut && opt_.prune <= 0) return;
  for (int n = N; n >= 2; --n) {
    std::unordered_set<Key, KeyHash> keep;
    if (n < N)
      for (const auto& [key, e] : grams_[n]) keep.insert(drop_last(key, n + 1)), keep.insert(drop_first(key, n + 1));
    auto& grams = grams_[n - 1];
    std::vector<Key> drop;
    for (const auto& [key, e] : grams)
      if (e.raw < opt_.cutoff(n) && !keep.count(key)) drop.push_back(key);
    for (const auto& key : drop) grams.erase(key);
    pruned_ += static_cast<int64_t>(drop.size());
    if (opt_.prune <= 0) continue;
    std::vector<double> lower;  // p(w|h') of each n-gram, in the order `grams` iterates
    const auto sums = context_sums(n, &lower);
    std::unordered_map<Key, double, KeyHash> context_prob;  // p(h) by the chain rule, <s> given
    drop.clear();
    size_t i = 0;
    for (const auto& [key, e] : grams) {
      const double q = lower[i++];
      if (keep.count(key)) continue;
      const Key h = drop_last(key, n);
      auto [cp, added] = context_prob.emplace(h, 0.0);
      if (added) {
        std::vector<int32_t> hist;
        double lp = 0;
        for (int k = 0; k < n - 1; ++k) {
          if (!(k == 0 && h.w[0] == kBos)) lp += log10_prob(hist, h.w[k]);
          hist.push_back(h.w[k]);
        }
        cp->second = std::pow(10.0, lp);
      }
      const auto& s = sums.at(h);
      const double p = std::pow(10.0, e.log10_prob);
      const double left = std::max(1 - s.first, 0.0), den = std::max(1 - s.second, 1e-12);
      const double new_bow = std::log10(left + p) - std::log10(den + q);
      double d = p * (new_bow + std::log10(q) - e.log10_prob);
      if (left > 1e-12) d += left * (new_bow - std::log10(left / den));
      if (std::pow(10.0, -cp->second * d) - 1 < opt_.prune) drop.push_back(key);
    }
    for (const auto& key : drop) grams.erase(key);
    pruned_ += static_cast<int64_t>(drop.size());
  }
  for (int n = 2; n <= N; ++n) recompute_backoffs(n);
}

// Interpolated modified Kneser-Ney as in KenLM's lmplz (Chen & Goodman; Heafield et al. 2013): adjusted counts below
// the highest order (distinct left extensions; raw counts for n-grams that start with <s>), three discounts per order
// from counts of counts, unigrams interpolated with the uniform distribution over the vocabulary without <s>.
void NgramModel::estimate_kneser_ney() {
  const int N = opt_.order;
  for (int n = N - 1; n >= 1; --n) {
    auto& lower = grams_[n - 1];
    for (auto& [key, e] : lower)
      if (key.w[0] != kBos) e.count = 0;
    for (const auto& [key, e] : grams_[n]) ++lower[drop_first(key, n + 1)].count;
  }
  discounts_.assign(N, {0, 0, 0, 0});
  for (int n = 1; n <= N; ++n) {
    int64_t coc[5] = {0, 0, 0, 0, 0};
    for (const auto& [key, e] : grams_[n - 1])
      if (e.count > 0 && e.count < 5) ++coc[e.count];
    std::string problem;
    for (int j = 1; j <= 3 && problem.empty(); ++j)
      if (coc[j] == 0) problem = fmt::format("no {}-gram has adjusted count {}", n, j);
    // Chen & Goodman (26), in single precision like lmplz.
    const float y = problem.empty() ? static_cast<float>(coc[1]) / static_cast<float>(coc[1] + 2.0 * coc[2]) : 0;
    for (int j = 1; j <= 3 && problem.empty(); ++j) {
      float d = static_cast<float>(j) -
                static_cast<float>(j + 1) * y * static_cast<float>(coc[j + 1]) / static_cast<float>(coc[j]);
      if (d < 0 || d > j) problem = fmt::format("the discount for count {} is out of range: {}", j, d);
      discounts_[n - 1][j] = d;
    }
    if (!problem.empty()) {
      if (!opt_.discount_fallback)
        throw DataError(
            fmt::format("cannot estimate Kneser-Ney discounts for {}-grams: {} (the training text is too small or "
                        "artificial, or made of characters; pass --discount-fallback for discounts 0.5, 1, 1.5 as "
                        "KenLM's --discount_fallback, lower --order, or use --smoothing interpolated)",
                        n, problem));
      discounts_[n - 1] = {0, 0.5, 1.0, 1.5};
    }
  }
  // Per context: the sum of its extensions' counts and the interpolation weight gamma.
  std::vector<std::unordered_map<Key, std::pair<double, double>, KeyHash>> ctx(N);  // (denominator, gamma)
  for (int n = 1; n <= N; ++n) {
    const auto& D = discounts_[n - 1];
    for (const auto& [key, e] : grams_[n - 1]) {
      auto& c = ctx[n - 1][drop_last(key, n)];
      c.first += static_cast<double>(e.count);
      if (e.count > 0) c.second += D[std::min<int64_t>(e.count, 3)];
    }
    for (auto& [key, c] : ctx[n - 1]) c.second /= c.first;
  }
  // Interpolate order by order; probabilities of the order below are complete when an order starts.
  const double uniform = 1.0 / static_cast<double>(words_.size() - 1);
  std::vector<std::unordered_map<Key, double, KeyHash>> prob(N);
  for (int n = 1; n <= N; ++n) {
    const auto& D = discounts_[n - 1];
    for (auto& [key, e] : grams_[n - 1]) {
      const auto& c = ctx[n - 1].at(drop_last(key, n));
      double lower = n == 1 ? uniform : prob[n - 2].at(drop_first(key, n));
      double p = (static_cast<double>(e.count) - D[std::min<int64_t>(e.count, 3)]) / c.first + c.second * lower;
      prob[n - 1][key] = p;
      e.log10_prob = n == 1 && key.w[0] == kBos ? 0.0 : std::log10(p);
      if (n < N) {
        auto it = ctx[n].find(key);
        e.log10_bow = it == ctx[n].end() ? 0.0 : std::log10(it->second.second);
      }
    }
  }
  arpa_form_ = true;
}

// Jelinek-Mercer: p(w|h) = l_n c(hw)/c(h) + (1 - l_n) p(w|h'), where an unseen context h passes straight to h'; the
// base is l_1 c(w)/T + (1 - l_1)/|V|. In backoff form the weight of a seen context is 1 - l_{n+1}.
void NgramModel::estimate_interpolated(const std::vector<double>& lambdas) {
  const int N = opt_.order;
  lambdas_ = lambdas;
  const double uniform = 1.0 / static_cast<double>(words_.size() - 1);
  std::vector<std::unordered_map<Key, double, KeyHash>> prob(N);
  for (int n = 1; n <= N; ++n) {
    const double l = lambdas[n - 1];
    for (auto& [key, e] : grams_[n - 1]) {
      auto it = context_total_[n - 1].find(drop_last(key, n));
      double ml = it == context_total_[n - 1].end() ? 0.0 : static_cast<double>(e.count) / it->second;
      double lower = n == 1 ? uniform : prob[n - 2].at(drop_first(key, n));
      double p = l * ml + (1 - l) * lower;
      prob[n - 1][key] = p;
      e.log10_prob = n == 1 && key.w[0] == kBos ? 0.0 : std::log10(p);
      if (n < N) e.log10_bow = context_total_[n].count(key) ? std::log10(1 - lambdas[n]) : 0.0;
    }
  }
  arpa_form_ = true;
}

// EM for the per-order weights on held-out text, with the counts of this (training) model: each token is a mixture
// of the orders whose context was seen, nested from the highest down to the uniform distribution.
std::vector<double> NgramModel::tune_lambdas(const Sentences& heldout) const {
  const int N = opt_.order;
  const double uniform = 1.0 / static_cast<double>(words_.size() - 1);
  std::vector<double> lambda(N, 0.5);
  std::vector<std::vector<int32_t>> data;
  for (const auto& s : heldout) data.push_back(ids(s, nullptr));
  std::vector<double> ml(N), term(N);
  std::vector<char> active(N);
  for (int it = 0; it < opt_.em_iterations; ++it) {
    std::vector<double> stop(N, 0.0), reach(N, 0.0);
    for (const auto& s : data)
      for (size_t i = 1; i < s.size(); ++i) {
        for (int n = 1; n <= N; ++n) {
          active[n - 1] = 0;
          if (static_cast<size_t>(n) > i + 1) continue;
          Key ctx;
          ctx.w.fill(-1);
          if (n > 1) ctx = key_of(&s[i - 1], n - 1);
          auto c = context_total_[n - 1].find(ctx);
          if (c == context_total_[n - 1].end()) continue;
          auto g = grams_[n - 1].find(key_of(&s[i], n));
          ml[n - 1] = g == grams_[n - 1].end() ? 0.0 : static_cast<double>(g->second.count) / c->second;
          active[n - 1] = 1;
        }
        double weight = 1, p = 0;
        for (int n = N; n >= 1; --n)
          if (active[n - 1])
            term[n - 1] = weight * lambda[n - 1] * ml[n - 1], p += term[n - 1], weight *= 1 - lambda[n - 1];
        p += weight * uniform;
        double below = weight * uniform / p;  // posterior mass under the current order
        for (int n = 1; n <= N; ++n)
          if (active[n - 1]) {
            double post = term[n - 1] / p;
            stop[n - 1] += post;
            reach[n - 1] += post + below;
            below += post;
          }
      }
    double change = 0;
    for (int n = 0; n < N; ++n) {
      double l = reach[n] > 0 ? stop[n] / reach[n] : lambda[n];
      l = std::clamp(l, 1e-6, 1 - 1e-6);
      change = std::max(change, std::abs(l - lambda[n]));
      lambda[n] = l;
    }
    if (change < 1e-7) break;
  }
  return lambda;
}

double NgramModel::log10_prob(const std::vector<int32_t>& h, int32_t w) const {
  const int N = opt_.order;
  const int L = std::min<int>(static_cast<int>(h.size()), N - 1);
  if (!arpa_form_) {  // add-k / Laplace above order 1, straight from the counts
    const double k = opt_.smoothing == "laplace" ? 1.0 : opt_.add_k;
    const double V = static_cast<double>(words_.size() - 1);
    Key ctx;
    ctx.w.fill(-1);
    std::copy(h.end() - L, h.end(), ctx.w.begin());
    Key g = ctx;
    g.w[L] = w;
    auto c = context_total_[L].find(ctx);
    auto e = grams_[L].find(g);
    double num = (e == grams_[L].end() ? 0.0 : static_cast<double>(e->second.count)) + k;
    double den = (c == context_total_[L].end() ? 0.0 : static_cast<double>(c->second)) + k * V;
    return std::log10(num / den);
  }
  double backoff = 0;
  for (int len = L; len >= 0; --len) {
    Key g;
    g.w.fill(-1);
    std::copy(h.end() - len, h.end(), g.w.begin());
    g.w[len] = w;
    auto it = grams_[len].find(g);
    if (it != grams_[len].end()) return backoff + it->second.log10_prob;
    if (len > 0) {
      auto c = grams_[len - 1].find(drop_last(g, len + 1));
      if (c != grams_[len - 1].end()) backoff += c->second.log10_bow;
    }
  }
  return kLog10Zero;  // unreachable: every vocabulary id is a unigram
}

PerplexityResult NgramModel::evaluate(const Sentences& test, std::vector<double>* per_sentence) const {
  PerplexityResult r;
  std::vector<int32_t> h;
  for (const auto& sentence : test) {
    auto s = ids(sentence, &r.oovs);
    double total = 0;
    h.assign(1, kBos);
    for (size_t i = 1; i < s.size(); ++i) {
      double lp = log10_prob(h, s[i]);
      total += lp;
      if (s[i] == kUnk) r.log10_prob_oov += lp;
      h.push_back(s[i]);
    }
    r.log10_prob += total;
    r.tokens += static_cast<int64_t>(s.size()) - 1;
    ++r.sentences;
    if (per_sentence) per_sentence->push_back(total);
  }
  return r;
}

std::vector<int64_t> NgramModel::ngram_counts() const {
  std::vector<int64_t> out;
  for (const auto& g : grams_) out.push_back(static_cast<int64_t>(g.size()));
  return out;
}

std::string NgramModel::arpa() const {
  if (!arpa_form_)
    throw ConfigError(
        fmt::format("ARPA cannot represent {} smoothing above order 1 without listing every n-gram of the "
                    "vocabulary; use --smoothing kneser-ney or interpolated, or --order 1",
                    opt_.smoothing));
  const int N = opt_.order;
  std::string out = "\\data\\\n";
  for (int n = 1; n <= N; ++n) out += fmt::format("ngram {}={}\n", n, grams_[n - 1].size());
  for (int n = 1; n <= N; ++n) {
    out += fmt::format("\n\\{}-grams:\n", n);
    std::vector<std::pair<Key, const Entry*>> rows;
    rows.reserve(grams_[n - 1].size());
    for (const auto& [k, e] : grams_[n - 1]) rows.emplace_back(k, &e);
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first.w < b.first.w; });
    for (const auto& [k, e] : rows) {
      out += fmt::format("{}\t", static_cast<float>(e->log10_prob));
      for (int i = 0; i < n; ++i) (out += i ? " " : "") += words_[k.w[i]];
      if (n < N) out += fmt::format("\t{}", static_cast<float>(e->log10_bow));
      out += '\n';
    }
  }
  out += "\n\\end\\\n";
  return out;
}

Sentences to_characters(const Sentences& sentences, bool pieces) {
  static const std::string kSpace = "\xe2\x96\x81";  // U+2581
  Sentences out;
  out.reserve(sentences.size());
  for (const auto& words : sentences) {
    auto& chars = out.emplace_back();
    for (size_t i = 0; i < words.size(); ++i) {
      if (i > 0 && !pieces) chars.push_back(kSpace);
      const std::string& w = words[i];
      for (size_t c = 0; c < w.size();) {
        size_t e = c + 1;
        while (e < w.size() && (static_cast<unsigned char>(w[e]) & 0xC0) == 0x80) ++e;  // UTF-8 continuation bytes
        chars.push_back(w.substr(c, e - c));
        c = e;
      }
    }
  }
  return out;
}

void NgramRunOptions::validate() const {
  if (format != "text" && format != "json") throw ConfigError("--format must be text or json (got " + format + ")");
  if (unit != "word" && unit != "char") throw ConfigError("--unit must be word or char (got " + unit + ")");
  ngram.validate();
}

std::string run_ngram(const NgramRunOptions& o) {
  o.validate();
  check_outputs({{"--arpa", o.arpa}, {"--sentence-scores", o.sentence_scores}},
                {{"--train", o.train}, {"--test", o.test}, {"--heldout", o.heldout}}, o.overwrite);
  auto t0 = std::chrono::steady_clock::now();
  // The units must agree: a corpus's SentencePiece pieces scored against another model's pieces (or against
  // whitespace words) would give a perplexity with no meaning.
  std::string piece_model;  // "" until a corpus is read: its vocabulary hash
  std::vector<std::string> texts;
  const auto load = [&](const char* flag, const std::string& path, const std::string& split) {
    std::pair<std::string, std::string> vocab;  // side, hash
    Sentences s = load_ngram_text(path, split, o.side, &vocab);
    const auto& [side, hash] = vocab;
    if (hash.empty()) texts.push_back(path);
    if (!hash.empty() && !piece_model.empty() && hash != piece_model)
      throw DataError(fmt::format(
          "{} {}: its {} vocabulary (SentencePiece model {}) is not that of --train {} ({}): the pieces are other "
          "units, so a perplexity across them means nothing; HINT: score a corpus prepared with the same models "
          "(tern prepare --spm-src/--spm-tgt) or raw text with --unit char",
          flag, path, side, hash, o.train, piece_model));
    if (piece_model.empty()) piece_model = hash;
    return o.unit == "char" ? to_characters(s, is_corpus(path)) : s;
  };
  Sentences train = load("--train", o.train, o.train_split);
  Sentences heldout = o.heldout.empty() ? Sentences{} : load("--heldout", o.heldout, o.heldout_split);
  Sentences test = load("--test", o.test, o.test_split);
  if (!piece_model.empty() && !texts.empty() && o.unit == "word")
    logf(
        "note: {} is read as whitespace-separated words, while the corpus holds SentencePiece pieces: words the "
        "model never saw count as OOVs",
        texts.front());
  NgramModel m = NgramModel::train(train, o.ngram, heldout);
  const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> per_sentence;
  PerplexityResult r = m.evaluate(test, &per_sentence);
  if (!o.arpa.empty()) write_text_file(o.arpa, m.arpa());
  if (!o.sentence_scores.empty()) {
    std::string text;
    for (double lp : per_sentence) text += fmt::format("{:.6f}\n", lp);
    write_text_file(o.sentence_scores, text);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json j = {{"order", o.ngram.order},
                      {"unit", o.unit},
                      {"smoothing", o.ngram.smoothing},
                      {"train", o.train},
                      {"test", o.test},
                      {"vocab_size", m.vocab_size()},
                      {"ngrams", m.ngram_counts()},
                      {"sentences", r.sentences},
                      {"tokens", r.tokens},
                      {"oovs", r.oovs},
                      {"log10_prob", r.log10_prob},
                      {"ppl", r.ppl()},
                      {"ppl_excluding_oov", r.ppl_excluding_oov()},
                      {"bits_per_token", r.bits_per_token()},
                      {"convention", "per token, one </s> per sentence counted, OOVs scored as <unk>; PPL = 2^H"},
                      {"build_seconds", build_s},
                      {"peak_rss_mib", ru.ru_maxrss / 1024.0}};
  if (o.ngram.smoothing == "kneser-ney") j["discounts"] = m.discounts();
  if (o.ngram.smoothing == "interpolated") j["lambdas"] = m.lambdas();
  if (o.ngram.smoothing == "katz") j["good_turing_discounts"] = m.katz_discounts();
  if (!o.ngram.cutoffs.empty()) j["cutoffs"] = o.ngram.cutoffs;
  if (o.ngram.prune > 0) j["prune"] = o.ngram.prune;
  j["pruned_ngrams"] = m.pruned();
  if (o.ngram.smoothing == "add-k" || o.ngram.smoothing == "laplace")
    j["k"] = o.ngram.smoothing == "laplace" ? 1.0 : o.ngram.add_k;
  if (o.format == "json") return j.dump(2) + "\n";
  return fmt::format("{}-gram {} model{}: vocabulary {}, n-grams {}{}; built in {:.2f} s, peak memory {:.0f} MiB\n",
                     o.ngram.order, o.ngram.smoothing, o.unit == "char" ? " of characters" : "", m.vocab_size(),
                     fmt::join(m.ngram_counts(), "/"),
                     m.pruned() ? fmt::format(" ({} removed by cutoffs and pruning)", m.pruned()) : "", build_s,
                     ru.ru_maxrss / 1024.0) +
         fmt::format(
             "Perplexity including OOVs:\t{:.6f}\nPerplexity excluding OOVs:\t{:.6f}\nOOVs:\t{}\n"
             "Tokens:\t{}\nCross-entropy:\t{:.6f} bits/token\n",
             r.ppl(), r.ppl_excluding_oov(), r.oovs, r.tokens, r.bits_per_token());
}

}  // namespace tern
