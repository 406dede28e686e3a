// Translation of one split of an HDF5 corpus (a rank's shard of it): what `tern evaluate`, validation by BLEU/chrF
// during training and `tern bench translate` share. Batches are sorted by source length; results come back in corpus
// order, detokenized, with the detokenized corpus targets as references.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/tokenizer.h"
#include "models/model.h"
#include "models/precision.h"
#include "translation/decode.h"

namespace tern {

struct CorpusTranslateOptions {
  DecodeOptions decode;
  int64_t batch_sentences = 64;  // sentences decoded together (>= 1)
  int64_t limit = 0;             // the first `limit` sentences of the shard (0: all)
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFp32;
  bool progress = false;  // a bar (terminal) or periodic log lines
  int64_t workers = 0;    // CPU: batches decoded side by side, one thread each (0: the intra-op thread count); GPU: 1
  // Asked before each batch: when it returns true, the batches not begun are skipped and the result is `stopped`
  // (training stops a validation this way when a pre-emption signal comes).
  std::function<bool()> stop;
  // Called with each batch's hypotheses (decode.nbest a sentence, rows as the batch's) before the best of each is
  // taken, from the decoding thread: reranking (evaluate --rescore) puts the one to keep first.
  std::function<void(std::vector<std::vector<Hypothesis>>&, const Batch&)> rerank;
};

struct CorpusTranslation {
  std::vector<std::string> hypotheses;  // the best hypothesis of each sentence, detokenized, in corpus order
  std::vector<std::string> references;  // each sentence's target, detokenized
  int64_t source_tokens = 0;            // subword tokens decoded from...
  int64_t hypothesis_tokens = 0;        // ...and produced (eos excluded)
  double seconds = 0;                   // wall time of the decoding (detokenization included)
  bool stopped = false;                 // CorpusTranslateOptions::stop ended it early: some sentences are left out
};

// Batches decoded side by side: on a CPU `requested` (0: the intra-op thread count), on a GPU 1.
int64_t decode_workers(const torch::Device& device, int64_t requested);
// Runs decode_batch(i) for every i in [0, n) on `workers` threads, each with one intra-op thread (a decoding step's
// small matrices keep one core busy better than two cores share them; Marian decodes on CPUs the same way), grad mode
// as in the caller; 1 worker runs them in order in this thread. The first exception is rethrown here.
void run_batches(int64_t n, int64_t workers, const std::function<void(int64_t)>& decode_batch);

CorpusTranslation translate_corpus(SequenceModelImpl& model, const ShardData& data, const Tokenizer& tgt,
                                   const CorpusTranslateOptions& opt);

}  // namespace tern
