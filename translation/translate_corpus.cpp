#include "translation/translate_corpus.h"

#include <chrono>

#include "core/errors.h"
#include "core/progress.h"

namespace tern {

CorpusTranslation translate_corpus(SequenceModelImpl& model, const ShardData& data, const Tokenizer& tgt,
                                   const CorpusTranslateOptions& opt) {
  opt.decode.validate();
  if (opt.batch_sentences < 1 || opt.batch_sentences > 100000)
    throw ConfigError(fmt::format("--batch must be in [1, 100000] (got {})", opt.batch_sentences));
  const auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard ng;
  const int64_t n = opt.limit > 0 ? std::min(opt.limit, data.size()) : data.size();
  CorpusTranslation out;
  out.hypotheses.resize(static_cast<size_t>(n));
  out.references.resize(static_cast<size_t>(n));
  BatchingOptions by_length;
  by_length.shuffle = false;
  by_length.batch_tokens = 1 << 30;
  by_length.max_sentences = opt.batch_sentences;
  Progress bar("translate", static_cast<uint64_t>(n), "sentences", 10.0, opt.progress);
  int64_t done = 0;
  for (const auto& ids : data.make_batches(by_length, 0)) {
    std::vector<int64_t> keep;
    for (int64_t i : ids)
      if (i < n) keep.push_back(i);
    if (keep.empty()) continue;
    Batch b = data.collate(keep);
    AutocastScope autocast(opt.precision, opt.device);
    auto res = decode(model, b.src.to(opt.device), b.src_len, opt.decode);
    auto tout = b.tgt_out.accessor<int64_t, 2>();  // (B, T)
    for (size_t r = 0; r < keep.size(); ++r) {
      const auto i = static_cast<size_t>(keep[r]);
      out.hypotheses[i] = tgt.decode(res[r][0].tokens);
      out.hypothesis_tokens += static_cast<int64_t>(res[r][0].tokens.size());
      std::vector<int32_t> y;
      for (int64_t t = 0; t < b.tgt_out.size(1) && tout[static_cast<int64_t>(r)][t] != kEosId; ++t)
        y.push_back(static_cast<int32_t>(tout[static_cast<int64_t>(r)][t]));
      out.references[i] = tgt.decode(y);
    }
    out.source_tokens += b.source_tokens;
    done += static_cast<int64_t>(keep.size());
    bar.update(static_cast<uint64_t>(done));
  }
  bar.finish();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace tern
