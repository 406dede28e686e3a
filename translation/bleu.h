// Corpus and sentence BLEU exactly as sacreBLEU 2.x computes them (13a tokenizer, exp smoothing by default), with its
// signature; and the Python string semantics sacreBLEU's metrics rely on.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "translation/np_float.h"

namespace tern {

// Python's str.split(), str.rstrip() and (simple-mapping) str.lower() on code points (str.isspace(): data/text.h
// py_space).
std::vector<std::u32string> py_split(const std::u32string& s);
std::u32string join_words(const std::u32string& s);  // ' '.join(s.split())
std::u32string py_rstrip(std::u32string s);
std::u32string py_lower(std::u32string s);
// sacreBLEU's tokenizers: 13a (mteval-v13a), intl (mteval-v14 international, Unicode categories from ICU), char, zh
// (Chinese characters spaced out, then 13a's expressions), none.
std::u32string sacrebleu_tokenize(const std::u32string& line, const std::string& tokenizer);

// Throws ConfigError unless tern has the sacreBLEU tokenizer `name`, saying why for those it lacks (ja-mecab, ko-mecab,
// spm, flores101, flores200).
void check_bleu_tokenizer(const std::string& name);

struct BleuOptions {
  std::string tokenize = "13a";  // 13a | intl | char | zh | none
  bool lowercase = false;
  std::string smooth = "exp";  // exp | none | floor | add-k
  // floor: 0.1, add-k: 1 when unset (NaN: a given value is checked finite, so -1 is refused like any negative)
  double smooth_value = std::numeric_limits<double>::quiet_NaN();
  int max_order = 4;
  bool effective_order = false;  // sentence-level BLEU turns it on, as sacreBLEU's --sentence-level does
};

struct BleuScore {
  double score = 0;                     // 0..100
  std::vector<int64_t> counts, totals;  // matched and total n-grams, n = 1..max_order
  std::vector<double> precisions;       // percent
  double bp = 1;
  int64_t sys_len = 0, ref_len = 0;
  std::string signature;                    // nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0
  std::string format(int width = 2) const;  // "BLEU = 12.34 45.6/20.1/10.2/5.1 (BP = ...)"
};

// Throws DataError unless there is at least one reference stream and each has one line per hypothesis.
void check_reference_streams(size_t hypotheses, const std::vector<std::vector<std::string>>& references,
                             const std::string& metric);

// mteval's normalization of a line, shared by the 13a tokenizer and TER's tercom normalization: entities unescaped,
// the line padded with spaces, ASCII punctuation spaced out, '.' and ',' split off unless between digits, a digit's
// '-' split off; `tercom` also splits off "'s". Spaces are left as they fall (callers split).
std::u32string mteval_normalize(std::u32string line, bool tercom);

// mteval-v13a tokenization as sacreBLEU implements it.
std::string tokenize_13a(const std::string& line);
// sacreBLEU's sufficient statistics of each segment (BLEU._extract_corpus_statistics): hyp_len, ref_len (the closest
// reference's), matched n-grams n = 1..max_order, then total n-grams n = 1..max_order.
std::vector<std::vector<int64_t>> bleu_statistics(const std::vector<std::string>& hypotheses,
                                                  const std::vector<std::vector<std::string>>& references,
                                                  const BleuOptions& opt);
// BLEU.compute_bleu on statistics summed over segments (that layout), step by step as sacreBLEU computes it: sums it
// holds as float32 (its resampling tests) give float32 precisions. nrefs: for the signature.
BleuScore bleu_from_statistics(const std::vector<NpFloat>& stats, size_t nrefs, const BleuOptions& opt);
// Just its score (a Python float), without the signature and details: for the thousands of resamples of a test.
double bleu_score_of(const std::vector<NpFloat>& stats, const BleuOptions& opt);
// references[r][i]: reference r of segment i (every stream has as many lines as hypotheses).
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references, const BleuOptions& opt = {});

// The sacreBLEU version whose behaviour and signature this implementation reproduces.
constexpr const char* kSacreBleuVersion = "2.6.0";

}  // namespace tern
