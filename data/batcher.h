// Token-count batching with length bucketing over one shard of one split, held in memory (a rank holds only its
// shards), and collation into padded tensors.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/batch_options.h"
#include "data/corpus.h"

namespace tern {

// One batch; sentences are padded with kPadId on the right.
struct Batch {
  torch::Tensor src;          // (B, S) int64, parallel corpora only
  torch::Tensor src_len;      // (B) int64
  torch::Tensor tgt_in;       // (B, T) int64: bos y1 .. yn
  torch::Tensor tgt_out;      // (B, T) int64: y1 .. yn eos
  int64_t target_tokens = 0;  // non-pad entries of tgt_out (the loss is averaged over these)
  int64_t source_tokens = 0;
  std::vector<int64_t> sentence_ids;  // index of each row in the split
  int64_t size() const { return static_cast<int64_t>(sentence_ids.size()); }
};

class ShardData {
 public:
  // Reads shard `shard` of `num_shards` (contiguous, near-equal sentence ranges) of `split`.
  ShardData(const CorpusReader& corpus, const std::string& split, int64_t shard = 0, int64_t num_shards = 1);
  int64_t size() const { return static_cast<int64_t>(tgt_.size()); }
  int64_t first_sentence() const { return tgt_.first_sentence; }
  bool parallel() const { return parallel_; }
  // Batches of local indices for `epoch`; deterministic in (options.seed, epoch).
  std::vector<std::vector<int64_t>> make_batches(const BatchingOptions& opt, int64_t epoch) const;
  Batch collate(const std::vector<int64_t>& local_ids) const;

 private:
  bool parallel_;
  TokenBlock src_, tgt_;
};

// Token rows padded on the right with kPadId: (B, max(1, longest)) int64, and their lengths (B) int64.
std::pair<torch::Tensor, torch::Tensor> pad_rows(const std::vector<std::vector<int32_t>>& rows);

// The sentence range [begin, end) of shard `shard` of `num_shards` over `n` sentences.
std::pair<int64_t, int64_t> shard_range(int64_t n, int64_t shard, int64_t num_shards);

}  // namespace tern
