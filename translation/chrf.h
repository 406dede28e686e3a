// chrF and chrF++ exactly as sacreBLEU 2.x computes them (Popović 2015, 2017): character n-grams (default 6) and,
// for chrF++, word n-grams (2), F-beta (beta 2) with effective-order averaging, the best reference per segment.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tern {

struct ChrfOptions {
  int char_order = 6;          // Character n-gram order (>= 1).
  int word_order = 0;          // Word n-gram order; 2 gives chrF++ (>= 0).
  int beta = 2;                // Weight of recall against precision (>= 1).
  bool lowercase = false;      // Case-insensitive.
  bool whitespace = false;     // Keep whitespace inside character n-grams.
  bool eps_smoothing = false;  // chrF++.py/Moses/NLTK epsilon smoothing instead of the effective order.
  void validate() const;       // throws ConfigError stating the rule
};

struct ChrfScore {
  double score = 0;            // 0..100
  std::string name;            // chrF2, chrF2++
  std::string signature;       // nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0
  std::vector<int64_t> stats;  // (hyp, ref, match) per order, character orders first
};

// references[r][i]: reference r of segment i (every stream has as many lines as hypotheses).
ChrfScore corpus_chrf(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references, const ChrfOptions& opt = {});

}  // namespace tern
