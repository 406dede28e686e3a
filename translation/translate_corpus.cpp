#include "translation/translate_corpus.h"

#include <atomic>
#include <chrono>
#include <mutex>

#include "core/errors.h"
#include "core/parallel.h"
#include "core/progress.h"

namespace tern {

int64_t decode_workers(const torch::Device& device, int64_t requested) {
  return device.is_cuda() ? 1 : requested > 0 ? requested : torch::get_num_threads();
}

void run_batches(int64_t n, int64_t workers, const std::function<void(int64_t)>& decode_batch) {
  if (workers <= 1 || n <= 1) return parallel_for(n, 1, decode_batch);  // this thread, its thread count untouched
  const bool grad = torch::GradMode::is_enabled();
  parallel_for(n, workers, [&](int64_t i) {
    at::set_num_threads(1);  // this thread's OpenMP and MKL threads
    torch::AutoGradMode mode(grad);
    decode_batch(i);
  });
}

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
  std::vector<std::vector<int64_t>> batches;
  for (const auto& ids : data.make_batches(by_length, 0)) {
    std::vector<int64_t> keep;
    for (int64_t i : ids)
      if (i < n) keep.push_back(i);
    if (!keep.empty()) batches.push_back(std::move(keep));
  }
  Progress bar("translate", static_cast<uint64_t>(n), "sentences", 10.0, opt.progress);
  std::mutex mutex;  // guards the counts and the bar
  int64_t done = 0;
  std::atomic<bool> stopped{false};
  run_batches(static_cast<int64_t>(batches.size()), decode_workers(opt.device, opt.workers), [&](int64_t k) {
    if (stopped || (opt.stop && opt.stop())) {
      stopped = true;
      return;
    }
    const auto& keep = batches[static_cast<size_t>(k)];
    Batch b = data.collate(keep);
    std::vector<std::vector<Hypothesis>> res;
    {
      AutocastScope autocast(opt.precision, opt.device);
      res = decode(model, b.src.to(opt.device), b.src_len, opt.decode);
    }
    if (opt.rerank) opt.rerank(res, b);
    auto tout = b.tgt_out.accessor<int64_t, 2>();  // (B, T)
    int64_t hyp_tokens = 0;
    for (size_t r = 0; r < keep.size(); ++r) {
      const auto i = static_cast<size_t>(keep[r]);
      out.hypotheses[i] = tgt.decode(res[r][0].tokens);
      hyp_tokens += static_cast<int64_t>(res[r][0].tokens.size());
      std::vector<int32_t> y;
      for (int64_t t = 0; t < b.tgt_out.size(1) && tout[static_cast<int64_t>(r)][t] != kEosId; ++t)
        y.push_back(static_cast<int32_t>(tout[static_cast<int64_t>(r)][t]));
      out.references[i] = tgt.decode(y);
    }
    std::lock_guard<std::mutex> lock(mutex);
    out.hypothesis_tokens += hyp_tokens;
    out.source_tokens += b.source_tokens;
    done += static_cast<int64_t>(keep.size());
    bar.update(static_cast<uint64_t>(done));
  });
  bar.finish();
  out.stopped = stopped;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace tern
