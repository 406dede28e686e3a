// `tern prepare`: raw text (parallel or monolingual) to a tokenized HDF5 corpus, streaming with bounded memory.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

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
  // Parallel corpora give *_src and *_tgt; monolingual (language model) corpora give *_text. A split may come in
  // several files a side, read one after the other (file k of src pairs with file k of tgt).
  std::vector<std::string> train_src, train_tgt, train_text;
  std::vector<std::string> valid_src, valid_tgt, valid_text;
  std::vector<std::string> test_src, test_tgt, test_text;
  // Word alignments of the training pairs (parallel only), a file for each --train-src file, line by line: Pharaoh
  // links "i-j" (source word i, target word j, from 0; words as str.split() splits the lines), as fast_align and
  // eflomal write them. Each word link links every subword token of the two words; the corpus stores them for
  // guided alignment (train.guided_alignment_weight).
  std::vector<std::string> train_align;
  // Without valid/test files, this share of training lines goes to each split, chosen by `seed` (0 disables).
  double valid_fraction = 0.0;
  double test_fraction = 0.0;
  uint64_t seed = 1;
  TokenizerTrainOptions tokenizer;
  // One vocabulary for both sides (parallel only).
  bool joint_vocab = false;
  // Reuse SentencePiece models instead of training: spm_src/spm_tgt, or spm_model for joint/monolingual.
  std::string spm_src, spm_tgt, spm_model;
  // Or reuse the SentencePiece models of this tern corpus (of the same kind): new data, e.g. in-domain text for
  // fine-tuning a model trained on that corpus (train.init_from), gets the vocabularies the model knows.
  std::string vocab_from;
  // A monolingual corpus whose vocab_from is a parallel one takes this side's model: tgt (text for a language model
  // of the target language, e.g. translate --lm) or src.
  std::string vocab_side = "tgt";
  // Sentences with more subword tokens than this on either side follow long_policy.
  int64_t max_tokens = 128;
  Choice<LongPolicy> long_policy = LongPolicy::kDrop;  // drop | truncate | error
  // Parallel training pairs whose subword lengths differ by more than this factor (longer / shorter) are dropped, as
  // Moses clean-corpus-n.perl -ratio does (0: keep all). Misaligned pairs of crawled data look like this; held-out
  // splits are never filtered by it (their scores must cover every pair).
  double max_ratio = 0;
  Choice<EmptyPolicy> empty_policy = EmptyPolicy::kDrop;  // drop | error (a line empty after trimming, either side)
  std::string out;                                        // output .h5; an existing file is an error unless overwrite
  bool overwrite = false;
  bool progress = true;
  // Threads that check and encode the input (0: every core). The output is the same for any number.
  int threads = 0;

  bool parallel() const { return train_text.empty(); }
  void validate() const;  // throws ConfigError
};

struct SplitStats {
  int64_t lines = 0, kept = 0, dropped_empty = 0, dropped_long = 0, dropped_ratio = 0, truncated = 0;
  int64_t tokens_src = 0, tokens_tgt = 0;
  // --train-align: the kept pairs' subword links, and the kept pairs without any
  int64_t links = 0, unlinked = 0;
  // valid and test: kept sentences whose source (the text of a monolingual corpus) is also a training sentence's, and
  // those whose pair is also a training pair (the overlap that makes held-out scores optimistic).
  int64_t in_train_src = 0, in_train_pair = 0;
  SplitStats& operator+=(const SplitStats& o) {
    lines += o.lines, kept += o.kept, dropped_empty += o.dropped_empty, dropped_long += o.dropped_long;
    dropped_ratio += o.dropped_ratio;
    truncated += o.truncated, tokens_src += o.tokens_src, tokens_tgt += o.tokens_tgt;
    links += o.links, unlinked += o.unlinked;
    in_train_src += o.in_train_src, in_train_pair += o.in_train_pair;
    return *this;
  }
};

struct PrepareResult {
  std::map<std::string, SplitStats> splits;
  double seconds = 0;
  int64_t input_bytes = 0;
};

PrepareResult prepare_corpus(const PrepareOptions& opt);

}  // namespace tern
