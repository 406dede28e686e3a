// `tern score`: sacreBLEU's command line (BLEU, chrF, chrF++, TER; corpus or sentence level; text, JSON or LaTeX
// tables; statistical tests) on local files, printing what sacreBLEU 2.x prints.
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
  // json | text | latex: one system prints json or text (latex: text), several a table (json, fancy_grid text or
  // LaTeX booktabs); sentence level is always text, as in sacreBLEU.
  std::string format = "json";
  bool score_only = false;       // just the scores (sacreBLEU -b)
  bool short_signature = false;  // abbreviated signature keys (sacreBLEU --short; never in one system's JSON)
  // Each line of the one reference file holds this many tab-separated references (sacreBLEU --num-refs).
  int num_refs = 1;
  bool force = false;  // BLEU: no warning when 100 or more hypotheses end in a tokenized period (" .")
  bool quiet = false;  // no notes on stderr (warnings are still given, as sacreBLEU -q)
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

// sacreBLEU's --language-pair SRC-TGT (on local files only the target matters): BLEU's default tokenizer becomes zh for
// a zh target, ja-mecab / ko-mecab for ja / ko (which tern refuses: no MeCab); a tokenizer given explicitly is kept,
// with sacreBLEU's warning when it is not the language's. ConfigError for a pair not of that form.
void set_language_pair(ScoreOptions& opt, const std::string& pair, bool tokenize_given);

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

// `tern score REF... [-i HYP...]`: reads the hypotheses (several files: several systems; one file, "-" or none: `in`,
// named stdin, whose tab-separated fields are systems, as sacreBLEU reads stdin) and each reference file (UTF-8, one
// line per hypothesis: a DataError names the file that differs; --num-refs: tab-separated references) and scores
// them. Lines lose trailing whitespace (Python's str.rstrip(), as sacreBLEU reads them).
std::string score_files(const std::vector<std::string>& hypothesis_files,
                        const std::vector<std::string>& reference_files, const ScoreOptions& opt, std::istream& in);

}  // namespace tern
