// Exact n-gram counting for BLEU and chrF without string keys: an n-gram is its order and up to kMaxGram ids
// (interned words, or code points) with a 64-bit hash; counts live in a small open-addressing table per segment.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tern {

constexpr int kMaxGram = 10;  // longest n-gram any metric counts

struct Gram {
  uint64_t h = 0;                          // hash of w (equal n-grams, equal hashes)
  std::array<uint32_t, kMaxGram + 1> w{};  // w[0] = order n, then n ids, zeros after
  bool operator==(const Gram& o) const { return h == o.h && w == o.w; }
  int order() const { return static_cast<int>(w[0]); }
};

// Appends the n-grams of orders [1, max_order] of `ids`.
inline void add_grams(const std::vector<uint32_t>& ids, int max_order, std::vector<Gram>& out) {
  for (int n = 1; n <= max_order; ++n)
    for (size_t i = 0; i + n <= ids.size(); ++i) {
      Gram g;
      g.w[0] = static_cast<uint32_t>(n);
      uint64_t h = 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(n);
      for (int k = 0; k < n; ++k) {
        g.w[k + 1] = ids[i + k];
        h = (h ^ ids[i + k]) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
      }
      g.h = h;
      out.push_back(g);
    }
}

// Counts of distinct n-grams with lookup: open addressing on the 64-bit hash, exact comparison of the n-gram.
class GramCounts {
 public:
  GramCounts() = default;
  explicit GramCounts(const std::vector<Gram>& grams) {
    reserve(grams.size());
    for (const auto& g : grams) add(g, 1, /*take_max=*/false);
  }
  // Adds c to g's count, or (take_max) raises it to c.
  void add(const Gram& g, int64_t c, bool take_max) {
    if (2 * (items_.size() + 1) > slots_.size()) reserve(2 * items_.size() + 8);
    size_t i = find(g);
    if (slots_[i] < 0) {
      slots_[i] = static_cast<int32_t>(items_.size());
      items_.emplace_back(g, c);
    } else {
      int64_t& have = items_[static_cast<size_t>(slots_[i])].second;
      have = take_max ? std::max(have, c) : have + c;
    }
  }
  int64_t get(const Gram& g) const {
    if (slots_.empty()) return 0;
    int32_t k = slots_[find(g)];
    return k < 0 ? 0 : items_[static_cast<size_t>(k)].second;
  }
  const std::vector<std::pair<Gram, int64_t>>& items() const { return items_; }

 private:
  size_t find(const Gram& g) const {
    const size_t mask = slots_.size() - 1;
    size_t i = static_cast<size_t>(g.h) & mask;
    while (slots_[i] >= 0 && !(items_[static_cast<size_t>(slots_[i])].first == g)) i = (i + 1) & mask;
    return i;
  }
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (cap <= slots_.size()) return;
    slots_.assign(cap, -1);
    for (size_t k = 0; k < items_.size(); ++k) slots_[find(items_[k].first)] = static_cast<int32_t>(k);
  }
  std::vector<std::pair<Gram, int64_t>> items_;
  std::vector<int32_t> slots_;  // index into items_, -1 when empty; a power of two long
};

inline GramCounts count_grams(const std::vector<Gram>& grams) { return GramCounts(grams); }

// Element-wise maximum of two count sets (BLEU's clipping over several references).
inline GramCounts max_counts(GramCounts a, const GramCounts& b) {
  for (const auto& [g, c] : b.items()) a.add(g, c, /*take_max=*/true);
  return a;
}

// Calls f(order, hyp_count, clipped_match) for every distinct hypothesis n-gram.
template <typename F>
void match_counts(const GramCounts& hyp, const GramCounts& ref, F&& f) {
  for (const auto& [g, c] : hyp.items()) f(g.order(), c, std::min(c, ref.get(g)));
}

// Word ids shared by every segment of one scoring run.
class WordIds {
 public:
  std::vector<uint32_t> operator()(const std::vector<std::u32string>& words) {
    std::vector<uint32_t> out;
    out.reserve(words.size());
    for (const auto& w : words) out.push_back(ids_.emplace(w, static_cast<uint32_t>(ids_.size() + 1)).first->second);
    return out;
  }

 private:
  std::unordered_map<std::u32string, uint32_t> ids_;
};

}  // namespace tern
