// How sentences are grouped into batches; a plain struct (the YAML layer fills it as data.batch_tokens, ...) so that
// configs can hold it without including LibTorch.
#pragma once
#include <cstdint>

namespace tern {

// How a language model reads its text (data.lm_mode): sentence by sentence from a zero state, or as a continuous
// stream with the recurrent state carried from window to window (truncated backpropagation through time).
enum class LmMode { kSentence, kStream };

struct BatchingOptions {
  int64_t batch_tokens = 4096;  // Max padded tokens per batch: count * max(src_len, tgt_len + 1).
  int64_t max_sentences = 0;    // Max sentences per batch (0: no limit).
  int64_t pool_batches = 50;    // Sentences are sorted by length within pools of this many batches.
  bool shuffle = true;          // Shuffle sentences and batch order each epoch (seeded).
  uint64_t seed = 1;            // Set from train.seed.
};

}  // namespace tern
