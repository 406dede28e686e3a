// `tern bench translate`: decoding speed of a trained seq2seq checkpoint on a split of its corpus, per beam size and
// batch size: sentences/s, source and output tokens/s, and the BLEU of the output (so that a faster setting is seen
// to translate as well). One untimed warm-up batch precedes each setting.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/config.h"
#include "translation/decode.h"

namespace tern {

struct TranslateBenchOptions {
  std::string checkpoint, split = "test";
  std::vector<std::string> corpus;  // the .h5 file or its parts
  std::vector<int64_t> beams{1, 5};
  std::vector<int64_t> batches{16, 64};
  int64_t limit = 0;  // the first N sentences of the split (0: all)
  DeviceRequest device = DeviceRequest::kAuto;
  std::optional<Precision> precision;  // none: the checkpoint's
  DecodeOptions decode;                // its beam is replaced by each of `beams`
  void validate() const;               // throws ConfigError stating the rule
};

// One row per (beam, batch): beam, batch, sentences, seconds, sentences_per_s, source_tokens_per_s,
// output_tokens_per_s, bleu, device, precision, threads.
nlohmann::json bench_translate(const TranslateBenchOptions& opt);
std::string translate_bench_table(const nlohmann::json& rows, const TranslateBenchOptions& opt);

}  // namespace tern
