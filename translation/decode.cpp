#include "translation/decode.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "data/tokenizer.h"

namespace tern {

void DecodeOptions::validate() const {
  if (beam < 1 || beam > 1024) throw ConfigError(fmt::format("--beam must be in [1, 1024] (got {})", beam));
  if (nbest < 1 || nbest > beam)
    throw ConfigError(fmt::format("--nbest must be in [1, beam={}] (got {})", beam, nbest));
  if (!(length_penalty >= 0 && length_penalty <= 100))
    throw ConfigError(fmt::format("--length-penalty must be in [0, 100] (got {})", length_penalty));
  if (!(max_len_ratio > 0 && max_len_ratio <= 100))
    throw ConfigError(fmt::format("--max-len-ratio must be in (0, 100] (got {})", max_len_ratio));
  if (max_len_extra < 0 || max_len_extra > 100000)
    throw ConfigError(fmt::format("max_len_extra must be in [0, 100000] (got {})", max_len_extra));
}

namespace {
double normalise(double logprob, size_t len, double alpha) {
  return alpha > 0 ? logprob / std::pow((5.0 + static_cast<double>(len)) / 6.0, alpha) : logprob;
}
}  // namespace

std::vector<std::vector<Hypothesis>> decode(SequenceModelImpl& model, const torch::Tensor& src,
                                            const torch::Tensor& src_len, const DecodeOptions& opt) {
  opt.validate();
  torch::NoGradGuard ng;
  const int64_t B = src.size(0), K = opt.beam;
  auto lens = src_len.to(torch::kCPU);
  std::vector<int64_t> max_len(static_cast<size_t>(B));
  int64_t longest = 1;
  for (int64_t b = 0; b < B; ++b) {
    max_len[b] =
        static_cast<int64_t>(opt.max_len_ratio * static_cast<double>(lens[b].item<int64_t>())) + opt.max_len_extra;
    longest = std::max(longest, max_len[b]);
  }
  DecoderState state = model.encode(src, src_len);
  // Rows are (sentence, beam) pairs: row = b * K + k.
  auto dev = src.device();
  state = state.select(torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(dev)).repeat_interleave(K));
  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(B * K));
  std::vector<double> scores(static_cast<size_t>(B * K), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 1; k < K; ++k) scores[b * K + k] = -std::numeric_limits<double>::infinity();
  std::vector<std::vector<Hypothesis>> finished(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  torch::Tensor prev = torch::full({B * K}, kBosId, torch::TensorOptions().dtype(torch::kInt64).device(dev));

  for (int64_t t = 0; t < longest; ++t) {
    // The top 2K continuations of each sentence are chosen on the model's device; only they travel to the host.
    torch::Tensor lp = model.step(prev, state).to(torch::kFloat32);  // (B*K, V)
    if (opt.no_unk) lp.select(1, kUnkId).fill_(-std::numeric_limits<float>::infinity());
    const int64_t V = lp.size(1);
    torch::Tensor total = lp + torch::tensor(scores, torch::kFloat64).to(dev, torch::kFloat32).unsqueeze(1);
    auto [top_dev, top_idx_dev] = total.view({B, K * V}).topk(std::min<int64_t>(2 * K, K * V), 1);  // (B, 2K)
    torch::Tensor top_val = top_dev.to(torch::kCPU), top_idx = top_idx_dev.to(torch::kCPU);
    auto val = top_val.accessor<float, 2>();
    auto idx = top_idx.accessor<int64_t, 2>();
    std::vector<int64_t> origin(static_cast<size_t>(B * K));
    std::vector<int64_t> next_tok(static_cast<size_t>(B * K), kPadId);
    std::vector<std::vector<int32_t>> next_seqs(static_cast<size_t>(B * K));
    std::vector<double> next_scores(static_cast<size_t>(B * K), -std::numeric_limits<double>::infinity());
    for (int64_t b = 0; b < B; ++b) {
      int64_t alive = 0;
      if (!done[b]) {
        for (int64_t j = 0; j < top_idx.size(1) && alive < K; ++j) {
          double s = val[b][j];
          if (!std::isfinite(s)) break;
          int64_t from = b * K + idx[b][j] / V, tok = idx[b][j] % V;
          bool at_limit = t + 1 >= max_len[b];
          if (tok == kEosId || at_limit) {
            if (j < K) {
              Hypothesis h;
              h.tokens = seqs[from];
              if (tok != kEosId) h.tokens.push_back(static_cast<int32_t>(tok));
              h.logprob = s;
              h.score = normalise(s, h.tokens.size() + 1, opt.length_penalty);
              finished[b].push_back(std::move(h));
            }
            continue;
          }
          int64_t row = b * K + alive++;
          origin[row] = from, next_tok[row] = tok, next_scores[row] = s;
          next_seqs[row] = seqs[from];
          next_seqs[row].push_back(static_cast<int32_t>(tok));
        }
        if (static_cast<int64_t>(finished[b].size()) >= K || t + 1 >= max_len[b]) done[b] = true;
      }
      for (int64_t k = alive; k < K; ++k) origin[b * K + k] = b * K;  // dead rows: keep shapes
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    seqs = std::move(next_seqs), scores = std::move(next_scores);
    auto o = torch::tensor(origin, torch::kInt64).to(dev);
    state = state.select(o);
    prev = torch::tensor(next_tok, torch::kInt64).to(dev);
  }
  for (int64_t b = 0; b < B; ++b) {
    auto& f = finished[b];
    if (f.empty()) f.push_back(Hypothesis{});  // degenerate: nothing finished
    std::stable_sort(f.begin(), f.end(), [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
    if (static_cast<int64_t>(f.size()) > opt.nbest) f.resize(static_cast<size_t>(opt.nbest));
  }
  return finished;
}

}  // namespace tern
