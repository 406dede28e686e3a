#include "eval/rescore.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/errors.h"

namespace tern {

void RescoreOptions::validate(const DecodeOptions& decode) const {
  if (!weights.empty() && checkpoints.empty())
    throw ConfigError("--rescore-weights weighs the models of --rescore: give --rescore CHECKPOINT...");
  if (!weights.empty() && weights.size() != checkpoints.size() + 1)
    throw ConfigError(fmt::format(
        "--rescore-weights needs one weight a model, the searching model's first, then each --rescore checkpoint's: "
        "{} for {} model(s)",
        weights.size(), checkpoints.size() + 1));
  for (const double w : weights)
    if (!std::isfinite(w) || std::fabs(w) > 1e6)
      throw ConfigError(fmt::format("--rescore-weights must be finite, in [-1e6, 1e6] (got {})", w));
  if (enabled() && (decode.beam < 2 || decode.sampling))
    throw ConfigError(fmt::format("--rescore reranks the hypotheses of a beam search: {}",
                                  decode.sampling ? "--sampling draws one" : "it needs --beam 2 or more (got 1)"));
}

Reranker::Reranker(const RescoreOptions& opt, const Tokenizer& searcher_tgt, const DecodeOptions& decode,
                   DeviceRequest device, std::optional<Precision> precision, bool use_ema, int64_t cap, int64_t batch)
    : weights_(opt.weights),
      searcher_tgt_(searcher_tgt),
      length_penalty_(decode.length_penalty),
      nbest_(decode.nbest),
      cap_(cap),
      batch_(batch) {
  for (const auto& path : opt.checkpoints) models_.push_back(load_inference_model(path, device, precision, use_ema));
}

void Reranker::rerank(std::vector<std::vector<Hypothesis>>& hyps, const std::vector<std::string>& sources) const {
  std::vector<std::pair<size_t, size_t>> at;  // (line, hypothesis) of each row scored, shorter hypotheses first
  for (size_t i = 0; i < hyps.size(); ++i)
    for (size_t k = 0; k < hyps[i].size(); ++k) {
      Hypothesis& h = hyps[i][k];
      h.features = {h.score};
      h.score *= weight(0);
      at.emplace_back(i, k);
    }
  std::stable_sort(at.begin(), at.end(), [&](const auto& a, const auto& b) {
    return hyps[a.first][a.second].tokens.size() < hyps[b.first][b.second].tokens.size();
  });
  std::vector<std::string> outputs;  // per row: the hypothesis's text
  for (const auto& [i, k] : at) outputs.push_back(searcher_tgt_.decode(hyps[i][k].tokens));
  for (size_t m = 0; m < models_.size(); ++m) {
    const InferenceModel& r = models_[m];
    std::vector<std::vector<int32_t>> line_src;  // per line: its source in this model's vocabulary, cut at cap_
    if (r.src)                                   // (a language model scores the hypothesis alone)
      for (const std::string& text : sources) {
        line_src.push_back(r.src->encode(text));
        if (static_cast<int64_t>(line_src.back().size()) > cap_) line_src.back().resize(static_cast<size_t>(cap_));
      }
    std::vector<std::vector<int32_t>> src, tgt;  // per row
    for (size_t j = 0; j < at.size(); ++j) {
      tgt.push_back(r.tgt->encode(outputs[j]));
      if (r.src) src.push_back(line_src[at[j].first]);
    }
    const std::vector<double> lp = sentence_logprobs(r, tgt, src, batch_);
    for (size_t j = 0; j < at.size(); ++j) {
      Hypothesis& h = hyps[at[j].first][at[j].second];
      h.features.push_back(length_normalised(lp[j], tgt[j].size() + 1, length_penalty_));
      h.score += weight(m + 1) * h.features.back();
    }
  }
  for (auto& h : hyps) keep_best(h, nbest_);
}

}  // namespace tern
