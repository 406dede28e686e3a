// TER (translation edit rate, Snover et al. 2006) exactly as sacreBLEU 2.x computes it: the tercom tokenizer, then
// per segment the fewest edits (insertions, deletions, substitutions and shifts of word blocks, found greedily as
// tercom does) over the closest reference, divided by the average reference length.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "translation/np_float.h"

namespace tern {

struct TerOptions {
  bool normalized = false;      // tercom's normalization (entities, punctuation spaced; with asian_support CJK too)
  bool no_punct = false;        // remove punctuation (with asian_support CJK punctuation too)
  bool asian_support = false;   // CJK handling for normalized / no_punct
  bool case_sensitive = false;  // TER lowercases unless this is set
};

struct TerScore {
  double score = 0;       // 0..100+ (edits per reference word, percent; lower is better)
  double num_edits = 0;   // summed over segments
  double ref_length = 0;  // summed average reference lengths
  std::string signature;  // nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0
};

// TercomTokenizer: the line as the words TER compares, joined by single spaces.
std::u32string tercom_tokenize(const std::u32string& line, const TerOptions& opt);

// lib_ter.translation_edit_rate on word ids: (edits, reference length).
std::pair<int64_t, int64_t> translation_edit_rate(const std::vector<uint32_t>& hyp, const std::vector<uint32_t>& ref);

// Per segment: the fewest edits over the references, and their average length (TER._compute_segment_statistics).
std::vector<std::vector<double>> ter_statistics(const std::vector<std::string>& hypotheses,
                                                const std::vector<std::vector<std::string>>& references,
                                                const TerOptions& opt);
// The score of summed statistics (float32 sums, as sacreBLEU's resampling holds them, give a float32 score).
NpFloat ter_score_of(const std::vector<NpFloat>& stats);
TerScore ter_from_statistics(const std::vector<NpFloat>& stats, size_t nrefs, const TerOptions& opt);
// references[r][i]: reference r of segment i.
TerScore corpus_ter(const std::vector<std::string>& hypotheses, const std::vector<std::vector<std::string>>& references,
                    const TerOptions& opt = {});

}  // namespace tern
