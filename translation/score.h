// `tern score`: sacreBLEU's command line (BLEU, chrF, chrF++; corpus or sentence level; text or JSON) on lines
// already read, printing what sacreBLEU 2.x prints.
#pragma once
#include <string>
#include <vector>

#include "translation/bleu.h"
#include "translation/chrf.h"
#include "translation/significance.h"
#include "translation/ter.h"

namespace tern {

struct ScoreOptions {
  std::vector<std::string> metrics{"bleu"};  // bleu | chrf | ter, each at most once
  BleuOptions bleu;
  ChrfOptions chrf;
  TerOptions ter;
  bool sentence_level = false;  // one line per segment (one metric only; BLEU uses the effective order)
  int width = 1;                // decimals of the scores
  std::string format = "json";  // json | text (sentence level is always text, as in sacreBLEU)
  // One system: a 95% confidence interval from `confidence_n` bootstrap resamples (sacreBLEU --confidence).
  bool confidence = false;
  int64_t confidence_n = 1000;
  // Several systems: a table of their scores; with a paired test, each compared to the first (the baseline):
  // "bs" paired bootstrap resampling (paired_bs_n resamples, sacreBLEU --paired-bs), "ar" approximate
  // randomization (paired_ar_n trials, --paired-ar), "" none.
  std::string paired;
  int64_t paired_bs_n = 1000, paired_ar_n = 10000;
  int64_t seed = 12345;   // of the resampling (sacreBLEU's SACREBLEU_SEED, default 12345)
  void validate() const;  // throws ConfigError stating the rule
};

// One system's output: its name in tables (the file name, as sacreBLEU) and its lines.
struct ScoredSystem {
  std::string name;
  std::vector<std::string> lines;
};

// references[r][i]: reference r of segment i. Returns the whole output, newline-terminated, as sacreBLEU prints it
// for these options and this many systems.
std::string score_report(const std::vector<ScoredSystem>& systems,
                         const std::vector<std::vector<std::string>>& references, const ScoreOptions& opt);

// One metric ("bleu", "chrf" or "ter", with opt's settings) of one system: its statistics per segment and its scoring
// of summed statistics, for the resampling tests.
MetricStatistics metric_statistics(const std::string& metric, const std::vector<std::string>& hypotheses,
                                   const std::vector<std::vector<std::string>>& references, const ScoreOptions& opt);

// `tern score REF... [-i HYP...]`: reads the hypotheses (one file, "-" or none: `in`, named stdin; several files:
// several systems) and each reference file (UTF-8, one line per hypothesis: a DataError names the file that
// differs) and scores them.
std::string score_files(const std::vector<std::string>& hypothesis_files,
                        const std::vector<std::string>& reference_files, const ScoreOptions& opt, std::istream& in);

}  // namespace tern
