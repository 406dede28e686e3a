// `tern generate`: text from a language model checkpoint, continuing an optional prompt: sampling (temperature,
// top-k, nucleus top-p) reproducible by seed, greedy, or beam search.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "models/config.h"
#include "models/model.h"

namespace tern {

struct GenerateOptions {
  std::string checkpoint;
  std::string prompt;        // text the generated tokens continue ("" : from the start of a sentence)
  int64_t num = 1;           // sequences generated (>= 1; with --beam, the best `num`, <= beam)
  int64_t max_len = 100;     // generated tokens at most, after the prompt (>= 1)
  double temperature = 1.0;  // log-probabilities divided by this before sampling (> 0)
  int64_t top_k = 0;         // sample among the k most likely tokens (0: all)
  double top_p = 1.0;        // sample among the fewest most likely tokens whose probability reaches p (0 < p <= 1)
  uint64_t seed = 1;         // the same seed, checkpoint and options give the same text
  int64_t beam = 0;          // 0: sample; 1: greedy; K > 1: beam search of width K
  DeviceRequest device = DeviceRequest::kAuto;
  std::optional<Precision> precision;
  bool use_ema = true;
  void validate() const;  // throws ConfigError naming the option and value
};

struct Generated {
  std::vector<int32_t> tokens;  // generated tokens, after the prompt, without </s>
  double logprob = 0;           // their log-probability under the model (untempered), </s> included when reached
  bool ended = false;           // reached </s> (else stopped at max_len)
};

// `prompt` (token ids, no <s>) continued by a language model whose step() gives next-token log-probabilities.
std::vector<Generated> generate_ids(SequenceModelImpl& lm, const std::vector<int32_t>& prompt,
                                    const GenerateOptions& opt, torch::Device device);

// `tern generate`: loads opt.checkpoint (a language model), writes one text a line (the prompt and its continuation)
// to `out` and a line per sequence with its token count and log-probability to `log`.
void generate_text(const GenerateOptions& opt, std::ostream& out, std::ostream& log);

}  // namespace tern
