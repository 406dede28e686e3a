#include "bench/translate_bench.h"

#include <fmt/ranges.h>

#include "core/errors.h"
#include "data/corpus.h"
#include "eval/evaluate.h"
#include "translation/bleu.h"
#include "translation/translate_corpus.h"

namespace tern {

void TranslateBenchOptions::validate() const {
  if (checkpoint.empty() || corpus.empty()) throw ConfigError("bench translate: --checkpoint and --data are required");
  if (beams.empty() || batches.empty()) throw ConfigError("bench translate: --beams and --batches need a value each");
  for (int64_t b : beams)
    if (b < 1 || b > 1024) throw ConfigError(fmt::format("--beams: each must be in [1, 1024] (got {})", b));
  for (int64_t b : batches)
    if (b < 1 || b > 100000) throw ConfigError(fmt::format("--batches: each must be in [1, 100000] (got {})", b));
  if (limit < 0) throw ConfigError(fmt::format("--limit must be >= 0 (0: every sentence; got {})", limit));
}

nlohmann::json bench_translate(const TranslateBenchOptions& opt) {
  opt.validate();
  InferenceModel im = load_inference_model(opt.checkpoint, opt.device, opt.precision);
  if (!im.src) throw ConfigError(opt.checkpoint + " is a language model; bench translate needs a seq2seq checkpoint");
  const DecodeOptions search = prepare_decoding(im, opt.decode, opt.checkpoint);
  CorpusReader corpus(opt.corpus);
  if (corpus.vocab("src").hash != im.src->hash() || corpus.vocab("tgt").hash != im.tgt->hash())
    throw DataError(corpus.path() + ": its vocabularies differ from those " + opt.checkpoint + " was trained with");
  ShardData data(corpus, opt.split);
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t beam : opt.beams) {
    for (int64_t batch : opt.batches) {
      CorpusTranslateOptions to;
      to.decode = search, to.decode.beam = beam, to.decode.nbest = 1;
      to.batch_sentences = batch, to.device = im.device, to.precision = im.precision;
      to.limit = std::min<int64_t>(batch, data.size());
      translate_corpus(*im.model, data, *im.tgt, to);  // warm-up: allocator, kernels, caches
      to.limit = opt.limit;
      const CorpusTranslation tr = translate_corpus(*im.model, data, *im.tgt, to);
      const auto n = static_cast<double>(tr.hypotheses.size());
      nlohmann::json row = search_settings_json(search);
      row.update({{"beam", beam},
                  {"batch", batch},
                  {"sentences", tr.hypotheses.size()},
                  {"seconds", tr.seconds},
                  {"sentences_per_s", n / tr.seconds},
                  {"source_tokens_per_s", static_cast<double>(tr.source_tokens) / tr.seconds},
                  {"output_tokens_per_s", static_cast<double>(tr.hypothesis_tokens) / tr.seconds},
                  {"bleu", corpus_bleu(tr.hypotheses, {tr.references}).score},
                  {"device", im.device.str()},
                  {"precision", std::string(choice_name(im.precision))},
                  {"threads", torch::get_num_threads()}});
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

std::string translate_bench_table(const nlohmann::json& rows, const TranslateBenchOptions& opt) {
  std::string out = fmt::format(
      "{} on {} ({} split, {} sentences), {} {}, {} thread(s){}{}{}{}{}\n", opt.checkpoint, fmt::join(opt.corpus, ","),
      opt.split, rows[0]["sentences"].get<int64_t>(), rows[0]["device"].get<std::string>(),
      rows[0]["precision"].get<std::string>(), rows[0]["threads"].get<int>(),
      rows[0]["cpu_gemm"].is_string() ? ", " + rows[0]["cpu_gemm"].get<std::string>() + " products" : "",
      opt.decode.early_stop ? ", --early-stop" : "", opt.decode.int8 ? ", --int8" : "",
      opt.decode.shortlist.empty() ? "" : ", --shortlist " + opt.decode.shortlist,
      opt.decode.lm.empty() ? "" : fmt::format(", --lm {} --lm-weight {}", opt.decode.lm, opt.decode.lm_weight));
  out += fmt::format("{:>5} {:>6} {:>12} {:>13} {:>13} {:>7}\n", "beam", "batch", "sentences/s", "src tok/s",
                     "out tok/s", "BLEU");
  for (const auto& r : rows)
    out += fmt::format("{:>5} {:>6} {:>12.1f} {:>13.0f} {:>13.0f} {:>7.2f}\n", r["beam"].get<int64_t>(),
                       r["batch"].get<int64_t>(), r["sentences_per_s"].get<double>(),
                       r["source_tokens_per_s"].get<double>(), r["output_tokens_per_s"].get<double>(),
                       r["bleu"].get<double>());
  return out;
}

}  // namespace tern
