// `tern translate`: a text stream through a seq2seq checkpoint. Lines are decoded in batches sorted by length and
// written back in input order; sources longer than the cap are truncated, and each truncation is reported.
#pragma once
#include <array>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "core/choice.h"
#include "eval/evaluate.h"
#include "models/config.h"
#include "translation/decode.h"

namespace tern {

// How --nbest lists are written: tabs (a line an input line: hypothesis, score, hypothesis, score, ...) or marian (a
// line a hypothesis, Marian's and Moses': "i ||| translation ||| F0= search F1= rescorer ... ||| total", i the input
// line from 0; --alignment's and --word-scores' fields after the translation).
enum class NbestFormat { kTabs, kMarian };
template <>
struct ChoiceNames<NbestFormat> {
  static constexpr std::array<const char*, 2> kNames{"tabs", "marian"};
};

struct TranslateOptions {
  std::vector<std::string> checkpoints;  // one, or several (an ensemble: the mean of their log-probabilities)
  std::vector<double> weights;           // an ensemble's: one > 0 a checkpoint, a weighted mean (empty: the mean)
  DeviceRequest device = DeviceRequest::kAuto;
  std::optional<Precision> precision;  // none: the checkpoint's train.precision
  bool use_ema = true;                 // the averaged weights of a train.ema_decay checkpoint (--no-ema: the weights)
  DecodeOptions decode;
  // A file of target prefixes, line-aligned with the input (fairseq --prefix-size, OpenNMT-py -tgt_prefix, Marian
  // --force-decode): each translation starts with its line's prefix, encoded as whole target pieces, and goes on from
  // there; an empty line is no prefix. "": none.
  std::string prefix;
  // Given translations, line-aligned with the input, scored instead of searched (forced decoding: fairseq
  // --score-reference, marian-scorer): each output line is the translation's log-probability under the model (or the
  // ensemble, with --lm fused), </s> included, then with decode.alignment / token_scores " ||| " and those of the given
  // translation. One path, so decode.beam does not apply; nbest and sampling are refused. "": none.
  std::string score_target;
  RescoreOptions rescore;  // --rescore: the beam's hypotheses reranked by other checkpoints
  Choice<NbestFormat> nbest_format = NbestFormat::kTabs;
  int64_t batch = 32;          // Lines decoded together (>= 1).
  bool overwrite = false;      // Replace an existing -o file (else refused before any work).
  int64_t max_src_tokens = 0;  // Longer sources are truncated to this many subword tokens (0: the training corpus's
                               // --max-tokens as recorded in the checkpoint, else kDefaultMaxSrcTokens).
  bool progress = true;        // Lines translated so far on stderr: a bar on a terminal, a log line every 10 s else.
  void validate() const;       // throws ConfigError
};

constexpr int64_t kDefaultMaxSrcTokens = 256;

struct TranslateStats {
  int64_t lines = 0, truncated = 0;
};

// Reads UTF-8 lines from `in` (named `in_name` in messages), writes translations to `out` (`out_name`; n-best:
// tab-separated with scores; decode.alignment: each translation followed by " ||| " and "i-j" links of source and
// translation words, as Python's split() splits them; decode.token_scores: then " ||| " and each such word's
// log-probability, </s>'s last) and one warning per truncated line to `log`. With opt.prefix, each translation starts
// with the prefix file's line. Lines are gathered into batches; with
// `wait_fd` (the descriptor `in` reads), the lines gathered are translated as soon as the input pauses (nothing
// buffered, nothing to read), so that a program that writes a line and waits for its translation gets it.
TranslateStats translate_stream(const TranslateOptions& opt, std::istream& in, const std::string& in_name,
                                std::ostream& out, const std::string& out_name, std::ostream& log, int wait_fd = -1);
// `tern translate -i INPUT -o OUTPUT`: INPUT "" or "-" reads standard input (answering each pause, as above); OUTPUT
// "" writes to `out`, else the translations stream into a temporary file that replaces OUTPUT once every line is
// translated (a failure leaves any previous file intact; memory stays bounded by a chunk of lines).
TranslateStats translate_files(const TranslateOptions& opt, const std::string& input, const std::string& output,
                               std::ostream& out, std::ostream& log);

}  // namespace tern
