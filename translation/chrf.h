// chrF and chrF++ exactly as sacreBLEU 2.x computes them (Popović 2015, 2017): character n-grams (default 6) and,
// for chrF++, word n-grams (2), F-beta (beta 2) with effective-order averaging, the best reference per segment.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "translation/np_float.h"

namespace tern {

struct ChrfOptions {
  int char_order = 6;          // Character n-gram order (>= 1).
  int word_order = 0;          // Word n-gram order; 2 gives chrF++ (>= 0).
  int beta = 2;                // Weight of recall against precision (>= 1).
  bool lowercase = false;      // Case-insensitive.
  bool whitespace = false;     // Keep whitespace inside character n-grams.
  bool eps_smoothing = false;  // chrF++.py/Moses/NLTK epsilon smoothing instead of the effective order.
  void validate() const;       // throws ConfigError stating the rule
  std::string name() const;    // chrF2, chrF2++ (beta, then a + per word order)
};

struct ChrfScore {
  double score = 0;            // 0..100
  std::string name;            // chrF2, chrF2++
  std::string signature;       // nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0
  std::vector<int64_t> stats;  // (hyp, ref, match) per order, character orders first
};

// sacreBLEU's sufficient statistics of each segment (CHRF._extract_corpus_statistics): (hyp, ref, match) counts per
// order, character orders first, of the reference with the best chrF.
std::vector<std::vector<int64_t>> chrf_statistics(const std::vector<std::string>& hypotheses,
                                                  const std::vector<std::vector<std::string>>& references,
                                                  const ChrfOptions& opt);
// The score of statistics summed over segments, step by step as sacreBLEU computes it (float32 sums, as its
// resampling tests hold them, give a float32 score). nrefs: for the signature.
ChrfScore chrf_from_statistics(const std::vector<NpFloat>& stats, size_t nrefs, const ChrfOptions& opt);
// Just its score, in the precision sacreBLEU computes it in (CHRF._compute_f_score).
NpFloat chrf_score_of(const std::vector<NpFloat>& stats, const ChrfOptions& opt);

// references[r][i]: reference r of segment i (every stream has as many lines as hypotheses).
ChrfScore corpus_chrf(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references, const ChrfOptions& opt = {});

}  // namespace tern
