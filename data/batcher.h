// Token-count batching with length bucketing over one shard of one split, and collation into padded tensors. A shard
// keeps only its sentence index in memory (16 bytes a sentence of a parallel corpus); collate reads the tokens of a
// batch from the corpus file.
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
  torch::Tensor src;      // (B, S) int64, parallel corpora only
  torch::Tensor src_len;  // (B) int64
  torch::Tensor tgt_in;   // (B, T) int64: bos y1 .. yn
  torch::Tensor tgt_out;  // (B, T) int64: y1 .. yn eos
  // ShardData with alignments: the reference attention, (B, T, S) fp32: row (b, t) spreads 1 evenly over the source
  // tokens linked to target token t (the token tgt_out[b][t]); zero where none is (padding, </s>, unaligned tokens).
  torch::Tensor align;
  int64_t target_tokens = 0;  // non-pad entries of tgt_out (the loss is averaged over these)
  int64_t source_tokens = 0;
  std::vector<int64_t> sentence_ids;  // index of each row in the split (stream mode: of its first sentence)
  bool stream = false;                // a window of parallel streams (language models, data.lm_mode stream)
  bool stream_start = false;          // the streams' first window: the carried state starts from zeros
  int64_t size() const { return static_cast<int64_t>(sentence_ids.size()); }
};

// Stream mode: a shard's sentences, in corpus order, joined into one sequence of teacher-forcing positions (each
// sentence gives <s> y1 .. yn as inputs and y1 .. yn </s> as targets, so every token and one </s> a sentence is
// predicted once), cut into `streams` contiguous parallel streams of near-equal length and read in windows of
// `bptt` positions: window k of stream b covers positions begin[b] + k*bptt .. + bptt (the streams' last windows are
// padded where a stream is shorter).
struct StreamLayout {
  int64_t bptt = 35;
  std::vector<int64_t> begin;  // (streams + 1): where each stream starts in the shard's positions; back() = all
  int64_t windows = 0;         // windows per epoch: ceil(longest stream / bptt)
  int64_t streams() const { return static_cast<int64_t>(begin.size()) - 1; }
};

class ShardData {
 public:
  // The index of shard `shard` of `num_shards` (contiguous, near-equal sentence ranges) of `split`. `corpus` must
  // outlive the shard. With `part_weights` (data.weights: one whole number >= 1 a corpus part), the split is the
  // parts' sentences each repeated its part's weight times (part 1 w1 times, then part 2 w2 times, ...), and the
  // shards are contiguous near-equal ranges of that sequence: a shard may hold a sentence several times. With
  // `alignments` (a corpus that has them), collate fills Batch::align.
  ShardData(const CorpusReader& corpus, const std::string& split, int64_t shard = 0, int64_t num_shards = 1,
            const std::vector<int64_t>& part_weights = {}, bool alignments = false);
  int64_t size() const { return size_; }
  // The sentence ranges [begin, end) of the split this shard reads, in order (one unless weighted).
  std::vector<std::pair<int64_t, int64_t>> ranges() const;
  bool parallel() const { return !src_.empty(); }
  // Batches of local indices for `epoch`; deterministic in (options.seed, epoch).
  std::vector<std::vector<int64_t>> make_batches(const BatchingOptions& opt, int64_t epoch) const;
  // Reads the sentences (one read a side) and pads them; safe to call from another thread.
  Batch collate(const std::vector<int64_t>& local_ids) const;
  // Stream mode: the layout of `streams` streams (fewer when the shard has fewer positions) in windows of `bptt`, and
  // window k of it, (streams, bptt) ids; a window at or past layout.windows is all padding. Safe from another thread.
  StreamLayout stream_layout(int64_t streams, int64_t bptt) const;
  Batch collate_window(const StreamLayout& layout, int64_t k) const;

 private:
  const char* target_side() const { return parallel() ? "tgt" : "text"; }  // the corpus side a model predicts
  // Stream position of local sentence i's first input (<s>): the tokens before it plus one </s> a sentence (an
  // unweighted shard: one segment).
  int64_t position(int64_t i) const { return tgt_[static_cast<size_t>(i)] - tgt_[0] + i; }
  // The segment holding local sentence i, and where its offsets start in src_ / tgt_.
  size_t segment(int64_t i) const;
  size_t at(int64_t i) const {
    const size_t s = segment(i);
    return static_cast<size_t>(seg_offsets_[s] + i - seg_local_[s]);
  }
  int64_t length(const std::vector<int64_t>& offsets, int64_t i) const {
    const size_t k = at(i);
    return offsets[k + 1] - offsets[k];
  }
  int64_t sentence_id(int64_t i) const {  // local sentence i's index in the split
    const size_t s = segment(i);
    return seg_first_[s] + i - seg_local_[s];
  }
  // Batch::align of the sentences `ids` (b.src and b.tgt_out shaped); links are checked against the lengths.
  void put_alignments(Batch& b, const std::vector<int64_t>& ids) const;
  // The tokens of the sentences `ids`, one after the other.
  std::vector<int32_t> read(const std::string& side, const std::vector<int64_t>& offsets,
                            const std::vector<int64_t>& ids) const;
  const CorpusReader& corpus_;
  std::string split_;
  int64_t size_ = 0;
  // Segments: contiguous sentence ranges of the split; segment s starts at local index seg_local_[s] and split index
  // seg_first_[s], and its n_s + 1 offsets in the split's token stream start at src_ / tgt_[seg_offsets_[s]]. A
  // range repeated by data.weights shares the offsets of its first segment; src_ empty: a language model; align_
  // empty: no alignments read.
  std::vector<int64_t> seg_local_, seg_first_, seg_offsets_;
  std::vector<int64_t> src_, tgt_, align_;
};

// A language model's batch of token rows: tgt_in (<s> y), tgt_out (y </s>) and target_tokens (src undefined).
Batch target_batch(const std::vector<std::vector<int32_t>>& rows);

// Token rows padded on the right with kPadId: (B, max(1, longest)) int64, and their lengths (B) int64.
std::pair<torch::Tensor, torch::Tensor> pad_rows(const std::vector<std::vector<int32_t>>& rows);

// The sentence range [begin, end) of shard `shard` of `num_shards` over `n` sentences.
std::pair<int64_t, int64_t> shard_range(int64_t n, int64_t shard, int64_t num_shards);

}  // namespace tern
