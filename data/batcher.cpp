#include "data/batcher.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <tuple>

#include <fmt/format.h>

#include "core/errors.h"
#include "data/tokenizer.h"

namespace tern {

std::pair<int64_t, int64_t> shard_range(int64_t n, int64_t shard, int64_t num_shards) {
  return {n * shard / num_shards, n * (shard + 1) / num_shards};
}

ShardData::ShardData(const CorpusReader& corpus, const std::string& split, int64_t shard, int64_t num_shards,
                     const std::vector<int64_t>& part_weights, bool alignments)
    : corpus_(corpus), split_(split) {
  if (alignments && !corpus.has_alignments())
    throw DataError(
        fmt::format("{}: the corpus has no word alignments; HINT: prepare it with --train-align", corpus.path()));
  // The split as segments [first, first + n) of real sentences, in the order of the (weighted) sequence.
  std::vector<std::pair<int64_t, int64_t>> sequence;  // (first sentence, count)
  if (part_weights.empty()) {
    sequence.emplace_back(0, corpus.num_sentences(split));
  } else {
    const std::vector<int64_t> counts = corpus.part_sentences(split);
    if (part_weights.size() != counts.size())
      throw ConfigError(fmt::format("data.weights has {} entries for the {} parts of data.corpus ({})",
                                    part_weights.size(), counts.size(), corpus.path()));
    int64_t first = 0;
    for (size_t k = 0; k < counts.size(); ++k) {
      for (int64_t w = 0; w < part_weights[k] && counts[k] > 0; ++w) sequence.emplace_back(first, counts[k]);
      first += counts[k];
    }
  }
  int64_t total = 0;
  for (const auto& s : sequence) total += s.second;
  auto [b, e] = shard_range(total, shard, num_shards);
  if (e <= b)
    throw DataError(fmt::format("{}: shard {} of {} of split '{}' is empty ({} sentences in the split)", corpus.path(),
                                shard, num_shards, split, total));
  int64_t at = 0;                                 // where segment `s` starts in the sequence
  std::vector<std::pair<int64_t, int64_t>> held;  // each segment's [begin, end) in the split
  for (const auto& [first, n] : sequence) {
    const int64_t lo = std::max(b, at), hi = std::min(e, at + n);
    if (lo < hi) {
      const int64_t begin = first + lo - at, end = first + hi - at;
      // The same range as an earlier segment (a whole part repeated): its offsets are read and held once.
      const size_t same = std::find(held.begin(), held.end(), std::make_pair(begin, end)) - held.begin();
      held.emplace_back(begin, end);
      seg_local_.push_back(size_);
      seg_first_.push_back(begin);
      size_ += end - begin;
      if (same < seg_offsets_.size()) {
        seg_offsets_.push_back(seg_offsets_[same]);
      } else {
        seg_offsets_.push_back(static_cast<int64_t>(tgt_.size()));
        auto append = [&](std::vector<int64_t>& to, const char* side) {
          const std::vector<int64_t> o = corpus.offsets(split, side, begin, end);
          to.insert(to.end(), o.begin(), o.end());
        };
        if (corpus.kind() == "parallel") {
          append(src_, "src");
          append(tgt_, "tgt");
          if (alignments) append(align_, kAlignSide);
        } else {
          append(tgt_, "text");
        }
      }
    }
    at += n;
  }
}

std::vector<std::pair<int64_t, int64_t>> ShardData::ranges() const {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (size_t s = 0; s < seg_local_.size(); ++s) {
    const int64_t n = (s + 1 < seg_local_.size() ? seg_local_[s + 1] : size_) - seg_local_[s];
    out.emplace_back(seg_first_[s], seg_first_[s] + n);
  }
  return out;
}

size_t ShardData::segment(int64_t i) const {
  if (seg_local_.size() == 1) return 0;
  return static_cast<size_t>(std::upper_bound(seg_local_.begin(), seg_local_.end(), i) - seg_local_.begin()) - 1;
}

std::vector<int32_t> ShardData::read(const std::string& side, const std::vector<int64_t>& offsets,
                                     const std::vector<int64_t>& ids) const {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  ranges.reserve(ids.size());
  for (int64_t i : ids) {
    if (i < 0 || i >= size())
      throw DataError(fmt::format("{}: sentence {} is outside the shard of {} sentences", corpus_.path(), i, size()));
    const size_t k = at(i);
    ranges.emplace_back(offsets[k], offsets[k + 1]);
  }
  return corpus_.gather(split_, side, ranges);
}

std::vector<std::vector<int64_t>> ShardData::make_batches(const BatchingOptions& opt, int64_t epoch) const {
  const int64_t n = size();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(opt.seed * 1000003ULL + static_cast<uint64_t>(epoch));
  if (opt.shuffle) std::shuffle(order.begin(), order.end(), rng);
  const bool parallel = this->parallel();
  auto cost = [&](int64_t i) {
    int64_t t = length(tgt_, i) + 1;
    return parallel ? std::max<int64_t>(length(src_, i), t) : t;
  };
  // Average cost estimates how many sentences a pool of `pool_batches` batches holds.
  double avg = 0;
  for (int64_t i = 0; i < n; ++i) avg += cost(i);
  avg = std::max(1.0, avg / std::max<int64_t>(1, n));
  int64_t pool =
      opt.shuffle ? std::max<int64_t>(1, static_cast<int64_t>(opt.pool_batches * opt.batch_tokens / avg)) : n;

  std::vector<std::vector<int64_t>> batches;
  for (int64_t p0 = 0; p0 < n; p0 += pool) {
    auto first = order.begin() + p0, last = order.begin() + std::min(n, p0 + pool);
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return cost(a) < cost(b); });
    std::vector<int64_t> cur;
    int64_t cur_max = 0;
    for (auto it = first; it != last; ++it) {
      int64_t c = cost(*it), m = std::max(cur_max, c);
      bool full = !cur.empty() && (m * static_cast<int64_t>(cur.size() + 1) > opt.batch_tokens ||
                                   (opt.max_sentences > 0 && static_cast<int64_t>(cur.size()) >= opt.max_sentences));
      if (full) {
        batches.push_back(std::move(cur));
        cur.clear();
        m = c;
      }
      cur.push_back(*it);
      cur_max = m;
    }
    if (!cur.empty()) batches.push_back(std::move(cur));
  }
  if (opt.shuffle) std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

StreamLayout ShardData::stream_layout(int64_t streams, int64_t bptt) const {
  StreamLayout l;
  l.bptt = bptt;
  const int64_t total = position(size());
  streams = std::clamp<int64_t>(streams, 1, total);
  int64_t longest = 0;
  for (int64_t b = 0; b <= streams; ++b) {
    l.begin.push_back(shard_range(total, b, streams).first);
    if (b > 0) longest = std::max(longest, l.begin[b] - l.begin[b - 1]);
  }
  l.windows = (longest + bptt - 1) / bptt;
  return l;
}

Batch ShardData::collate_window(const StreamLayout& l, int64_t k) const {
  Batch b;
  b.stream = true;
  b.stream_start = k == 0;
  const int64_t B = l.streams(), W = l.bptt;
  b.tgt_in = torch::full({B, W}, kPadId, torch::kInt64);   // (B, W)
  b.tgt_out = torch::full({B, W}, kPadId, torch::kInt64);  // (B, W)
  auto tin = b.tgt_in.accessor<int64_t, 2>(), tout = b.tgt_out.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const int64_t from = l.begin[r] + k * W, to = std::min(l.begin[r + 1], l.begin[r] + (k + 1) * W);
    // The sentences that hold positions [from, to): the last one starting at or before `from`, onwards.
    int64_t lo = 0, hi = size();  // -> lo: the first sentence that starts after `from`
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (position(mid) <= from)
        lo = mid + 1;
      else
        hi = mid;
    }
    const int64_t i = std::max<int64_t>(lo - 1, 0);
    b.sentence_ids.push_back(sentence_id(i));
    if (from >= to) continue;
    std::vector<int64_t> ids;
    for (int64_t j = i; j < size() && position(j) < to; ++j) ids.push_back(j);
    const std::vector<int32_t> tokens = read(target_side(), tgt_, ids);
    size_t at = 0;  // start of sentence ids[s] in `tokens`
    for (int64_t s : ids) {
      const int64_t n = length(tgt_, s), p0 = position(s);
      for (int64_t p = std::max(from, p0); p < std::min(to, p0 + n + 1); ++p) {
        const int64_t j = p - p0, t = p - from;  // j: index within the sentence's n + 1 positions
        tin[r][t] = j == 0 ? kBosId : tokens[at + static_cast<size_t>(j) - 1];
        tout[r][t] = j < n ? tokens[at + static_cast<size_t>(j)] : kEosId;
        ++b.target_tokens;
      }
      at += static_cast<size_t>(n);
    }
  }
  return b;
}

namespace {

using Rows = torch::TensorAccessor<int64_t, 2>;

// tgt_in / tgt_out of `B` rows of at most `T` - 1 target tokens, padded with kPadId.
std::pair<torch::Tensor, torch::Tensor> target_tensors(int64_t B, int64_t T) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  return {torch::full({B, T}, kPadId, opts), torch::full({B, T}, kPadId, opts)};  // (B, T), (B, T)
}

// Row r: <s> y[0..n) into tgt_in, y[0..n) </s> into tgt_out.
void put_target(Rows& tin, Rows& tout, int64_t r, const int32_t* y, int64_t n) {
  tin[r][0] = kBosId;
  for (int64_t t = 0; t < n; ++t) tin[r][t + 1] = tout[r][t] = y[t];
  tout[r][n] = kEosId;
}

}  // namespace

Batch target_batch(const std::vector<std::vector<int32_t>>& rows) {
  Batch b;
  const auto B = static_cast<int64_t>(rows.size());
  int64_t T = 1;
  for (const auto& r : rows) T = std::max<int64_t>(T, static_cast<int64_t>(r.size()) + 1);
  std::tie(b.tgt_in, b.tgt_out) = target_tensors(B, T);
  auto tin = b.tgt_in.accessor<int64_t, 2>(), tout = b.tgt_out.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const auto& y = rows[static_cast<size_t>(r)];
    put_target(tin, tout, r, y.data(), static_cast<int64_t>(y.size()));
    b.target_tokens += static_cast<int64_t>(y.size()) + 1;
  }
  return b;
}

std::pair<torch::Tensor, torch::Tensor> pad_rows(const std::vector<std::vector<int32_t>>& rows) {
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t S = 1;
  for (const auto& r : rows) S = std::max<int64_t>(S, static_cast<int64_t>(r.size()));
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor x = torch::full({B, S}, kPadId, opts), len = torch::zeros({B}, opts);  // (B, S), (B)
  auto xa = x.accessor<int64_t, 2>();
  auto la = len.accessor<int64_t, 1>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = rows[static_cast<size_t>(b)];
    for (size_t s = 0; s < r.size(); ++s) xa[b][static_cast<int64_t>(s)] = r[s];
    la[b] = static_cast<int64_t>(r.size());
  }
  return {x, len};
}

void ShardData::put_alignments(Batch& b, const std::vector<int64_t>& ids) const {
  const std::vector<int32_t> links = read(kAlignSide, align_, ids);
  b.align = torch::zeros({b.src.size(0), b.tgt_out.size(1), b.src.size(1)});  // (B, T, S)
  auto a = b.align.accessor<float, 3>();
  const int32_t* l = links.data();
  for (size_t r = 0; r < ids.size(); ++r) {
    const int64_t i = ids[r], n = length(align_, i), m = length(src_, i), t_len = length(tgt_, i);
    if (n % 2 != 0)
      throw DataError(
          fmt::format("{}: /{}/{} of sentence {} holds {} numbers: links are pairs; HINT: recreate it with "
                      "`tern prepare`",
                      corpus_.path(), split_, kAlignSide, sentence_id(i), n));
    for (int64_t k = 0; k < n; k += 2, l += 2) {
      if (l[0] >= m || l[1] >= t_len)
        throw DataError(fmt::format(
            "{}: /{}/{} of sentence {} links source token {} to target token {}, past its {} source and {} target "
            "tokens; HINT: recreate it with `tern prepare`",
            corpus_.path(), split_, kAlignSide, sentence_id(i), l[0], l[1], m, t_len));
      a[static_cast<int64_t>(r)][l[1]][l[0]] = 1.0f;
    }
  }
  const torch::Tensor sums = b.align.sum(-1, /*keepdim=*/true);  // (B, T, 1)
  b.align.div_(sums.clamp_min(1.0f));
}

Batch ShardData::collate(const std::vector<int64_t>& ids) const {
  Batch b;
  const bool parallel = this->parallel();
  const std::vector<int32_t> ys = read(target_side(), tgt_, ids);
  const std::vector<int32_t> xs = parallel ? read("src", src_, ids) : std::vector<int32_t>{};
  const int64_t B = static_cast<int64_t>(ids.size());
  int64_t S = 0, T = 0;
  for (int64_t i : ids) {
    T = std::max(T, length(tgt_, i) + 1);
    if (parallel) S = std::max(S, length(src_, i));
  }
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  std::tie(b.tgt_in, b.tgt_out) = target_tensors(B, T);  // (B, T), (B, T)
  b.src_len = torch::zeros({B}, opts);                   // (B)
  auto tin = b.tgt_in.accessor<int64_t, 2>(), tout = b.tgt_out.accessor<int64_t, 2>();
  auto slen = b.src_len.accessor<int64_t, 1>();
  if (parallel) b.src = torch::full({B, std::max<int64_t>(S, 1)}, kPadId, opts);  // (B, S)
  if (!align_.empty()) put_alignments(b, ids);
  const int32_t* y = ys.data();
  const int32_t* x = xs.data();
  for (int64_t r = 0; r < B; ++r) {
    const int64_t i = ids[static_cast<size_t>(r)];
    const int64_t n = length(tgt_, i);
    put_target(tin, tout, r, y, n);
    y += n;
    b.target_tokens += n + 1;
    if (parallel) {
      auto src = b.src.accessor<int64_t, 2>();
      const int64_t m = length(src_, i);
      for (int64_t s = 0; s < m; ++s) src[r][s] = x[s];
      x += m;
      slen[r] = m;
      b.source_tokens += m;
    }
    b.sentence_ids.push_back(sentence_id(i));
  }
  return b;
}

}  // namespace tern
