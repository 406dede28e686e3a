// A lexical shortlist (Marian's --shortlist): the target tokens worth scoring for a batch of sources. Built from a
// corpus's training pairs by IBM Model 1 (p(target piece | source piece), a few EM iterations over the subword ids);
// a batch's candidates are the special tokens, the `first` most frequent target tokens and the `best` most likely
// translations of every source token in it. The beam search then computes the output layer and its softmax over
// those rows only. File format: docs/shortlist_format.md (versioned, checksummed, validated on load).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/corpus.h"

namespace tern {

constexpr uint32_t kShortlistFormatVersion = 1;

struct ShortlistOptions {
  int64_t first = 100;              // the most frequent target tokens, always candidates (>= 0)
  int64_t best = 100;               // translations kept per source token, most likely first (>= 1)
  int64_t iterations = 5;           // EM iterations of IBM Model 1 (>= 1)
  int64_t max_sentences = 1000000;  // training pairs read, evenly spread over the split when it holds more (>= 1)
  std::string split = "train";
  int64_t threads = 0;    // threads of the EM iterations (0: every usable core); the same shortlist from any number
  bool progress = false;  // a bar (terminal) or periodic log lines
  void validate() const;  // throws ConfigError naming the option
};

struct Shortlist {
  int64_t src_vocab = 0, tgt_vocab = 0;
  std::string src_hash, tgt_hash;  // the corpus's vocabularies (hex XXH64 of the SentencePiece models)
  int64_t first = 0, best = 0, iterations = 0, sentences = 0;  // how it was built
  std::vector<int32_t> frequent;                               // (<= first) target ids, most frequent first
  // Per source id: (target id, p(target | source)), most likely first, at most `best`.
  std::vector<std::vector<std::pair<int32_t, float>>> translations;

  // src (B, S) source ids (any device; padding and special ids carry no translations) -> the sorted candidate target
  // ids (V') as an int64 CPU tensor. Ids 0..3 (pad, unk, bos, eos) are always in it, so they keep their positions.
  torch::Tensor candidates(const torch::Tensor& src) const;
  // Throws DataError naming the file when the vocabularies (hashes and sizes) are not those of `checkpoint`'s model.
  void check_vocab(const std::string& src_vocab_hash, int64_t src_size, const std::string& tgt_vocab_hash,
                   int64_t tgt_size, const std::string& path, const std::string& checkpoint) const;
};

// IBM Model 1 over the split's subword ids (parallel corpora only; DataError otherwise).
Shortlist build_shortlist(const CorpusReader& corpus, const ShortlistOptions& opt);
// The file, written atomically (an existing file is replaced: the caller checks --out first).
void save_shortlist(const Shortlist& s, const std::string& path);
// Reads and validates a file written by save_shortlist: DataError naming the file and the rule broken (magic,
// version, checksum, sizes, ids outside the vocabularies, probabilities outside [0, 1]).
Shortlist load_shortlist(const std::string& path);

}  // namespace tern
