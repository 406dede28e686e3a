#include "eval/chrf.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "core/errors.h"
#include "data/text.h"
#include "eval/bleu.h"

namespace tern {
namespace {

using Counts = std::unordered_map<std::u32string, int64_t>;

// string.punctuation, which sacreBLEU's chrF++ word splitter peels off word ends.
bool ascii_punct(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// CHRF._remove_punctuation: a trailing, else a leading, punctuation mark becomes its own word.
std::vector<std::u32string> chrf_words(const std::u32string& s) {
  std::vector<std::u32string> out;
  for (auto& w : py_split(s)) {
    if (w.size() > 1 && ascii_punct(w.back())) {
      out.push_back(w.substr(0, w.size() - 1));
      out.push_back(w.substr(w.size() - 1));
    } else if (w.size() > 1 && ascii_punct(w.front())) {
      out.push_back(w.substr(0, 1));
      out.push_back(w.substr(1));
    } else {
      out.push_back(w);
    }
  }
  return out;
}

// One Counts per order: character orders 1..char_order, then word orders 1..word_order.
std::vector<Counts> ngrams(const std::u32string& sentence, const ChrfOptions& opt) {
  std::vector<Counts> out;
  std::u32string line = sentence;
  if (!opt.whitespace) {
    line.clear();
    for (const auto& w : py_split(sentence)) line += w;
  }
  for (int n = 1; n <= opt.char_order; ++n) {
    Counts& c = out.emplace_back();
    for (size_t i = 0; i + n <= line.size(); ++i) ++c[line.substr(i, n)];
  }
  if (opt.word_order > 0) {
    auto words = chrf_words(sentence);
    for (int n = 1; n <= opt.word_order; ++n) {
      Counts& c = out.emplace_back();
      for (size_t i = 0; i + n <= words.size(); ++i) {
        std::u32string key = words[i];
        for (int k = 1; k < n; ++k) key += U' ' + words[i + k];
        ++c[key];
      }
    }
  }
  return out;
}

// CHRF._compute_f_score.
double f_score(const std::vector<int64_t>& st, const ChrfOptions& opt) {
  const double eps = 1e-16, factor = static_cast<double>(opt.beta) * opt.beta;
  const int order = opt.char_order + opt.word_order;
  double score = 0, avg_prec = 0, avg_rec = 0;
  int effective = 0;
  for (int i = 0; i < order; ++i) {
    const int64_t n_hyp = st[3 * i], n_ref = st[3 * i + 1], n_match = st[3 * i + 2];
    double prec = n_hyp > 0 ? static_cast<double>(n_match) / n_hyp : eps;
    double rec = n_ref > 0 ? static_cast<double>(n_match) / n_ref : eps;
    double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
    if (n_hyp > 0 && n_ref > 0) avg_prec += prec, avg_rec += rec, ++effective;
  }
  if (opt.eps_smoothing) return 100 * score / order;
  if (effective == 0) {
    avg_prec = avg_rec = 0;
  } else {
    avg_prec /= effective;
    avg_rec /= effective;
  }
  if (avg_prec + avg_rec == 0) return 0.0;
  return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
}

}  // namespace

void ChrfOptions::validate() const {
  if (char_order < 1) throw ConfigError(fmt::format("chrF character order must be >= 1 (got {})", char_order));
  if (word_order < 0) throw ConfigError(fmt::format("chrF word order must be >= 0 (got {})", word_order));
  if (beta < 1) throw ConfigError(fmt::format("chrF beta must be >= 1 (got {})", beta));
}

ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const ChrfOptions& opt) {
  opt.validate();
  if (refs.empty()) throw DataError("chrF needs at least one reference stream");
  for (size_t r = 0; r < refs.size(); ++r)
    if (refs[r].size() != hyps.size())
      throw DataError(fmt::format("reference stream {} has {} lines but there are {} hypotheses", r + 1, refs[r].size(),
                                  hyps.size()));
  const int order = opt.char_order + opt.word_order;
  auto prep = [&](const std::string& s) {
    std::u32string u = utf8_decode(s);
    return opt.lowercase ? py_lower(u) : u;
  };
  ChrfScore out;
  out.stats.assign(3 * order, 0);
  std::vector<int64_t> st(3 * order);
  for (size_t i = 0; i < hyps.size(); ++i) {
    auto h = ngrams(prep(hyps[i]), opt);
    std::vector<int64_t> best;
    double best_f = -1;
    for (const auto& stream : refs) {
      auto r = ngrams(prep(stream[i]), opt);
      for (int n = 0; n < order; ++n) {
        int64_t hyp_count = 0, ref_count = 0, match = 0;
        for (const auto& [g, c] : h[n]) {
          hyp_count += c;
          auto it = r[n].find(g);
          if (it != r[n].end()) match += std::min(c, it->second);
        }
        for (const auto& [g, c] : r[n]) ref_count += c;
        st[3 * n] = r[n].empty() ? 0 : hyp_count;  // no hits count without a reference n-gram
        st[3 * n + 1] = ref_count;
        st[3 * n + 2] = match;
      }
      double f = f_score(st, opt);
      if (f > best_f) best_f = f, best = st;
    }
    for (int k = 0; k < 3 * order; ++k) out.stats[k] += best[k];
  }
  out.score = f_score(out.stats, opt);
  out.name = fmt::format("chrF{}{}", opt.beta, std::string(opt.word_order, '+'));
  out.signature = fmt::format("nrefs:{}|case:{}|eff:{}|nc:{}|nw:{}|space:{}|version:{}", refs.size(),
                              opt.lowercase ? "lc" : "mixed", opt.eps_smoothing ? "no" : "yes", opt.char_order,
                              opt.word_order, opt.whitespace ? "yes" : "no", kSacreBleuVersion);
  return out;
}

}  // namespace tern
