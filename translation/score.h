// `tern score`: sacreBLEU's command line (BLEU, chrF, chrF++; corpus or sentence level; text or JSON) on lines
// already read, printing what sacreBLEU 2.x prints.
#pragma once
#include <string>
#include <vector>

#include "translation/bleu.h"
#include "translation/chrf.h"

namespace tern {

struct ScoreOptions {
  std::vector<std::string> metrics{"bleu"};  // bleu | chrf, each at most once
  BleuOptions bleu;
  ChrfOptions chrf;
  bool sentence_level = false;  // one line per segment (one metric only; BLEU uses the effective order)
  int width = 1;                // decimals of the scores
  std::string format = "json";  // json | text (sentence level is always text, as in sacreBLEU)
  void validate() const;        // throws ConfigError stating the rule
};

// references[r][i]: reference r of segment i. Returns the whole output, newline-terminated.
std::string score_report(const std::vector<std::string>& hypotheses,
                         const std::vector<std::vector<std::string>>& references, const ScoreOptions& opt);

// `tern score REF... [-i HYP]`: reads the hypotheses (`hypotheses_file`; "" or "-": `in`, named stdin) and each
// reference file (UTF-8, one line per hypothesis: a DataError names the file that differs) and scores them.
std::string score_files(const std::string& hypotheses_file, const std::vector<std::string>& reference_files,
                        const ScoreOptions& opt, std::istream& in);

}  // namespace tern
