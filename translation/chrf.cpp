#include "translation/chrf.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "core/errors.h"
#include "data/text.h"
#include "translation/bleu.h"
#include "translation/gram_counts.h"

namespace tern {
namespace {

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

// Character n-grams (orders 1..char_order, code points as ids) and, for chrF++, word n-grams (orders char_order+1
// .. char_order+word_order, interned words), counted.
GramCounts ngrams(const std::u32string& sentence, const ChrfOptions& opt, WordIds& words) {
  std::vector<uint32_t> chars;
  if (opt.whitespace) {
    chars.assign(sentence.begin(), sentence.end());
  } else {
    for (const auto& w : py_split(sentence)) chars.insert(chars.end(), w.begin(), w.end());
  }
  std::vector<Gram> grams;
  add_grams(chars, opt.char_order, grams);
  if (opt.word_order > 0) {
    std::vector<Gram> word_grams;
    add_grams(words(chrf_words(sentence)), opt.word_order, word_grams);
    for (auto& g : word_grams) {  // orders after the character ones
      g.w[0] += static_cast<uint32_t>(opt.char_order);
      g.h = ~g.h;
    }
    grams.insert(grams.end(), word_grams.begin(), word_grams.end());
  }
  return count_grams(grams);
}

// CHRF._compute_f_score, step by step (float32 statistics give a float32 score, as in sacreBLEU's resampling).
NpFloat f_score(const std::vector<NpFloat>& st, const ChrfOptions& opt) {
  const NpFloat eps(1e-16);
  const NpFloat factor(static_cast<int64_t>(opt.beta) * opt.beta);  // a Python int
  const int order = opt.char_order + opt.word_order;
  NpFloat score(0.0), avg_prec(0.0), avg_rec(0.0);
  int effective = 0;
  for (int i = 0; i < order; ++i) {
    const NpFloat n_hyp = st[3 * i], n_ref = st[3 * i + 1], n_match = st[3 * i + 2];
    NpFloat prec = n_hyp.v > 0 ? n_match / n_hyp : eps;
    NpFloat rec = n_ref.v > 0 ? n_match / n_ref : eps;
    NpFloat denom = factor * prec + rec;
    score += denom.v > 0 ? (NpFloat(1) + factor) * prec * rec / denom : eps;
    if (n_hyp.v > 0 && n_ref.v > 0) avg_prec += prec, avg_rec += rec, ++effective;
  }
  if (opt.eps_smoothing) return NpFloat(100) * score / NpFloat(order);
  if (effective == 0) {
    avg_prec = avg_rec = NpFloat(0.0);
  } else {
    avg_prec /= NpFloat(effective);
    avg_rec /= NpFloat(effective);
  }
  if ((avg_prec + avg_rec).v == 0) return NpFloat(0.0);
  NpFloat s = (NpFloat(1) + factor) * avg_prec * avg_rec;
  s /= factor * avg_prec + avg_rec;
  return NpFloat(100) * s;
}

std::vector<NpFloat> as_numbers(const std::vector<int64_t>& st) { return {st.begin(), st.end()}; }

}  // namespace

std::string ChrfOptions::name() const { return fmt::format("chrF{}{}", beta, std::string(word_order, '+')); }

void ChrfOptions::validate() const {
  if (char_order < 1 || char_order > kMaxGram)
    throw ConfigError(fmt::format("chrF character order must be between 1 and {} (got {})", kMaxGram, char_order));
  if (word_order < 0 || word_order > kMaxGram)
    throw ConfigError(fmt::format("chrF word order must be between 0 and {} (got {})", kMaxGram, word_order));
  if (beta < 1) throw ConfigError(fmt::format("chrF beta must be >= 1 (got {})", beta));
}

std::vector<std::vector<int64_t>> chrf_statistics(const std::vector<std::string>& hyps,
                                                  const std::vector<std::vector<std::string>>& refs,
                                                  const ChrfOptions& opt) {
  opt.validate();
  check_reference_streams(hyps.size(), refs, "chrF");
  const int order = opt.char_order + opt.word_order;
  auto prep = [&](const std::string& s) {
    std::u32string u = utf8_decode(s);
    return opt.lowercase ? py_lower(u) : u;
  };
  std::vector<std::vector<int64_t>> out;
  out.reserve(hyps.size());
  std::vector<int64_t> st(3 * order);
  WordIds words;
  for (size_t i = 0; i < hyps.size(); ++i) {
    GramCounts h = ngrams(prep(hyps[i]), opt, words);
    std::vector<int64_t> hyp_total(order, 0);
    for (const auto& [g, c] : h.items()) hyp_total[g.order() - 1] += c;
    std::vector<int64_t> best;
    double best_f = -1;
    for (const auto& stream : refs) {
      GramCounts r = ngrams(prep(stream[i]), opt, words);
      std::fill(st.begin(), st.end(), 0);
      for (const auto& [g, c] : r.items()) st[3 * (g.order() - 1) + 1] += c;
      match_counts(h, r, [&](int n, int64_t, int64_t m) { st[3 * (n - 1) + 2] += m; });
      for (int n = 0; n < order; ++n) st[3 * n] = st[3 * n + 1] > 0 ? hyp_total[n] : 0;  // no reference n-gram: no hits
      double f = f_score(as_numbers(st), opt).v;
      if (f > best_f) best_f = f, best = st;
    }
    out.push_back(std::move(best));
  }
  return out;
}

ChrfScore chrf_from_statistics(const std::vector<NpFloat>& stats, size_t nrefs, const ChrfOptions& opt) {
  opt.validate();
  const int order = opt.char_order + opt.word_order;
  if (stats.size() != 3 * static_cast<size_t>(order))
    throw std::logic_error(fmt::format("chrF statistics: {} values for order {}", stats.size(), order));
  ChrfScore out;
  for (const auto& s : stats) out.stats.push_back(static_cast<int64_t>(s.v));
  out.score = f_score(stats, opt).v;
  out.name = opt.name();
  out.signature = fmt::format("nrefs:{}|case:{}|eff:{}|nc:{}|nw:{}|space:{}|version:{}", nrefs,
                              opt.lowercase ? "lc" : "mixed", opt.eps_smoothing ? "no" : "yes", opt.char_order,
                              opt.word_order, opt.whitespace ? "yes" : "no", kSacreBleuVersion);
  return out;
}

NpFloat chrf_score_of(const std::vector<NpFloat>& stats, const ChrfOptions& opt) {
  if (stats.size() != 3 * static_cast<size_t>(opt.char_order + opt.word_order))
    throw std::logic_error(fmt::format("chrF statistics: {} values", stats.size()));
  return f_score(stats, opt);
}

ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const ChrfOptions& opt) {
  auto segments = chrf_statistics(hyps, refs, opt);
  std::vector<int64_t> total(3 * static_cast<size_t>(opt.char_order + opt.word_order), 0);
  for (const auto& s : segments)
    for (size_t k = 0; k < s.size(); ++k) total[k] += s[k];
  return chrf_from_statistics(as_numbers(total), refs.size(), opt);
}

}  // namespace tern
