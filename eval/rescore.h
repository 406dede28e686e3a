// n-best reranking (translate and evaluate --rescore; Sennrich et al. 2016's right-to-left reranking, Marian's n-best
// rescoring): the search keeps its whole beam, other checkpoints score each hypothesis's text by teacher forcing, and
// the hypotheses are ranked again by a weighted sum (RescoreOptions, in eval/evaluate.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "eval/evaluate.h"
#include "translation/decode.h"

namespace tern {

class Reranker {
 public:
  // Loads opt.checkpoints like the searching model (device, precision, weight average). `searcher_tgt`: the searching
  // model's target vocabulary (it must outlive this); decode: the search's (its length penalty and nbest); sources
  // longer than `cap` tokens are cut; `batch`: hypotheses scored together.
  Reranker(const RescoreOptions& opt, const Tokenizer& searcher_tgt, const DecodeOptions& decode, DeviceRequest device,
           std::optional<Precision> precision, bool use_ema, int64_t cap, int64_t batch);
  // hyps[i]: line i's hypotheses (the search's, decode.nbest = beam), sources[i] its source text -> ranked by the
  // sum above, which becomes their score, the best decode.nbest kept. Safe to call from several threads at once.
  void rerank(std::vector<std::vector<Hypothesis>>& hyps, const std::vector<std::string>& sources) const;

 private:
  double weight(size_t m) const { return weights_.empty() ? 1.0 : weights_[m]; }
  std::vector<InferenceModel> models_;
  std::vector<double> weights_;
  const Tokenizer& searcher_tgt_;
  double length_penalty_;
  int64_t nbest_, cap_, batch_;
};

}  // namespace tern
