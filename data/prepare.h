// `tern prepare`: raw text (parallel or monolingual) to a tokenized HDF5 corpus, streaming with bounded memory.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "core/choice.h"
#include "data/tokenizer.h"

namespace tern {

enum class LongPolicy { kDrop, kTruncate, kError };
enum class EmptyPolicy { kDrop, kError };
template <>
struct ChoiceNames<LongPolicy> {
  static constexpr std::array<const char*, 3> kNames{"drop", "truncate", "error"};
};
template <>
struct ChoiceNames<EmptyPolicy> {
  static constexpr std::array<const char*, 2> kNames{"drop", "error"};
};

struct PrepareOptions {
  // Parallel corpora give *_src and *_tgt; monolingual (language model) corpora give *_text.
  std::string train_src, train_tgt, train_text;
  std::string valid_src, valid_tgt, valid_text;
  std::string test_src, test_tgt, test_text;
  // Without valid/test files, this share of training lines goes to each split, chosen by `seed` (0 disables).
  double valid_fraction = 0.0;
  double test_fraction = 0.0;
  uint64_t seed = 1;
  TokenizerTrainOptions tokenizer;
  // One vocabulary for both sides (parallel only).
  bool joint_vocab = false;
  // Reuse SentencePiece models instead of training: spm_src/spm_tgt, or spm_model for joint/monolingual.
  std::string spm_src, spm_tgt, spm_model;
  // Sentences with more subword tokens than this on either side follow long_policy.
  int64_t max_tokens = 128;
  Choice<LongPolicy> long_policy = LongPolicy::kDrop;     // drop | truncate | error
  Choice<EmptyPolicy> empty_policy = EmptyPolicy::kDrop;  // drop | error (a line empty after trimming, either side)
  std::string out;                                        // output .h5; an existing file is an error unless overwrite
  bool overwrite = false;
  bool progress = true;

  bool parallel() const { return train_text.empty(); }
  void validate() const;  // throws ConfigError
};

struct SplitStats {
  int64_t lines = 0, kept = 0, dropped_empty = 0, dropped_long = 0, truncated = 0;
  int64_t tokens_src = 0, tokens_tgt = 0;
};

struct PrepareResult {
  std::map<std::string, SplitStats> splits;
  double seconds = 0;
  int64_t input_bytes = 0;
};

PrepareResult prepare_corpus(const PrepareOptions& opt);

}  // namespace tern
