#include "translation/shortlist.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "data/tokenizer.h"

namespace tern {

namespace {
constexpr char kMagic[8] = {'T', 'E', 'R', 'N', 'S', 'L', 'S', 'T'};
constexpr int32_t kFirstWord = kEosId + 1;      // ids below are special: always candidates, never in the lexicon
constexpr int64_t kReadBlock = 65536;           // sentences a corpus read
constexpr uint64_t kMaxFileBytes = 1ULL << 34;  // 16 GiB: far above any vocabulary's table

// (source id, target id) -> slot, open addressing with linear probing; grows at half full.
class PairTable {
 public:
  PairTable() { keys_.assign(1 << 16, kEmpty); }
  size_t size() const { return used_; }
  size_t capacity() const { return keys_.size(); }
  uint64_t key(size_t slot) const { return keys_[slot]; }
  static uint64_t pack(int64_t e, int32_t f) { return static_cast<uint64_t>(e) << 32 | static_cast<uint32_t>(f); }
  size_t insert(uint64_t k) {
    if (2 * (used_ + 1) > keys_.size()) grow();
    size_t i = home(k);
    while (keys_[i] != kEmpty && keys_[i] != k) i = (i + 1) & (keys_.size() - 1);
    if (keys_[i] == kEmpty) keys_[i] = k, ++used_;
    return i;
  }
  size_t find(uint64_t k) const {  // the key must be present
    size_t i = home(k);
    while (keys_[i] != k) i = (i + 1) & (keys_.size() - 1);
    return i;
  }
  static constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();

 private:
  size_t home(uint64_t k) const {
    k ^= k >> 31, k *= 0x9E3779B97F4A7C15ULL, k ^= k >> 29;
    return static_cast<size_t>(k) & (keys_.size() - 1);
  }
  void grow() {
    std::vector<uint64_t> old(keys_.size() * 2, kEmpty);
    old.swap(keys_);
    used_ = 0;
    for (uint64_t k : old)
      if (k != kEmpty) insert(k);
  }
  std::vector<uint64_t> keys_;
  size_t used_ = 0;
};

// Sentence pairs in memory: the word ids (special ids removed) of each side.
struct Pairs {
  std::vector<int32_t> src, tgt;
  std::vector<int64_t> src_off{0}, tgt_off{0};
  size_t size() const { return src_off.size() - 1; }
};

Pairs read_pairs(const CorpusReader& corpus, const ShortlistOptions& opt) {
  const int64_t n = corpus.num_sentences(opt.split), m = std::min(n, opt.max_sentences);
  Pairs p;
  Progress progress("shortlist: reading " + opt.split, static_cast<uint64_t>(n), "sentences", 10.0, opt.progress);
  for (int64_t begin = 0; begin < n; begin += kReadBlock) {
    const int64_t end = std::min(n, begin + kReadBlock);
    const TokenBlock s = corpus.read(opt.split, "src", begin, end), t = corpus.read(opt.split, "tgt", begin, end);
    for (int64_t i = begin; i < end; ++i) {
      if ((i + 1) * m / n == i * m / n) continue;  // m of the n sentences, evenly spread
      const auto k = static_cast<size_t>(i - begin);
      for (int64_t j = 0; j < s.length(k); ++j)
        if (s.data(k)[j] >= kFirstWord) p.src.push_back(s.data(k)[j]);
      for (int64_t j = 0; j < t.length(k); ++j)
        if (t.data(k)[j] >= kFirstWord) p.tgt.push_back(t.data(k)[j]);
      p.src_off.push_back(static_cast<int64_t>(p.src.size()));
      p.tgt_off.push_back(static_cast<int64_t>(p.tgt.size()));
    }
    progress.update(static_cast<uint64_t>(end));
  }
  progress.finish();
  return p;
}

// Little-endian fields in the order docs/shortlist_format.md gives them.
class Writer {
 public:
  template <typename T>
  void put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const std::string& bytes, size_t end, const std::string& path) : in_(bytes), end_(end), path_(path) {}
  template <typename T>
  T get(const char* what) {
    if (end_ - pos_ < sizeof(T)) throw DataError(fmt::format("{}: truncated at {} (byte {})", path_, what, pos_));
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string get_string(const char* what) {
    const auto n = get<uint32_t>(what);
    if (n > 64 || end_ - pos_ < n)
      throw DataError(fmt::format("{}: {} of {} bytes is not a vocabulary hash", path_, what, n));
    std::string s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  size_t left() const { return end_ - pos_; }

 private:
  const std::string& in_;
  size_t end_, pos_ = 0;
  const std::string& path_;
};
}  // namespace

void ShortlistOptions::validate() const {
  if (first < 0 || first > 10000000) throw ConfigError(fmt::format("--first must be in [0, 10000000] (got {})", first));
  if (best < 1 || best > 10000000) throw ConfigError(fmt::format("--best must be in [1, 10000000] (got {})", best));
  if (threads < 0 || threads > 4096)
    throw ConfigError(fmt::format("--threads must be in [0, 4096] (got {}; 0 is every core)", threads));
  if (iterations < 1 || iterations > 100)
    throw ConfigError(fmt::format("--iters must be in [1, 100] (got {})", iterations));
  if (max_sentences < 1) throw ConfigError(fmt::format("--max-sentences must be >= 1 (got {})", max_sentences));
}

Shortlist build_shortlist(const CorpusReader& corpus, const ShortlistOptions& opt) {
  opt.validate();
  if (corpus.kind() != "parallel")
    throw DataError(corpus.path() + ": a shortlist needs a parallel corpus (this one is " + corpus.kind() + ")");
  if (!corpus.has_split(opt.split) || corpus.num_sentences(opt.split) == 0)
    throw DataError(fmt::format("{}: no sentences in split '{}' to learn a shortlist from", corpus.path(), opt.split));
  Shortlist s;
  s.src_vocab = corpus.vocab("src").size, s.tgt_vocab = corpus.vocab("tgt").size;
  s.src_hash = corpus.vocab("src").hash, s.tgt_hash = corpus.vocab("tgt").hash;
  s.first = opt.first, s.best = opt.best, s.iterations = opt.iterations;
  const Pairs pairs = read_pairs(corpus, opt);
  s.sentences = static_cast<int64_t>(pairs.size());
  const int64_t null_word = s.src_vocab;  // IBM Model 1's empty source word

  // Every co-occurring pair gets a slot; t(f | e) starts uniform.
  PairTable table;
  std::vector<int64_t> target_count(static_cast<size_t>(s.tgt_vocab), 0);
  for (size_t i = 0; i < pairs.size(); ++i)
    for (int64_t j = pairs.tgt_off[i]; j < pairs.tgt_off[i + 1]; ++j) {
      const int32_t f = pairs.tgt[static_cast<size_t>(j)];
      ++target_count[static_cast<size_t>(f)];
      table.insert(PairTable::pack(null_word, f));
      for (int64_t k = pairs.src_off[i]; k < pairs.src_off[i + 1]; ++k)
        table.insert(PairTable::pack(pairs.src[static_cast<size_t>(k)], f));
    }
  std::vector<float> prob(table.capacity(), 1.0f);
  std::vector<double> count(table.capacity()), total(static_cast<size_t>(s.src_vocab + 1));
  // The E-step in threads without locks: target words are split into kBuckets by id, a thread takes whole buckets,
  // and each bucket sums its own totals t(. | e) in pair order, added up bucket by bucket. A slot (e, f) belongs to
  // f's bucket alone, so every count and total is summed in the same order whatever the number of threads: the same
  // shortlist from 1 thread or 16.
  constexpr int64_t kBuckets = 64;
  const int64_t threads = std::min<int64_t>(resolve_threads(static_cast<int>(opt.threads)), kBuckets);
  const auto row = static_cast<size_t>(s.src_vocab + 1);
  std::vector<double> bucket_total(static_cast<size_t>(kBuckets) * row);  // (kBuckets, V_src + 1)
  Progress progress("shortlist: IBM Model 1", static_cast<uint64_t>(opt.iterations) * pairs.size(), "pairs", 10.0,
                    opt.progress);
  for (int64_t it = 0; it < opt.iterations; ++it) {
    std::fill(count.begin(), count.end(), 0.0);
    std::fill(bucket_total.begin(), bucket_total.end(), 0.0);
    parallel_for(threads, threads, [&](int64_t t) {
      std::vector<size_t> slots;
      std::vector<int64_t> words;
      for (size_t i = 0; i < pairs.size(); ++i) {
        words.clear();  // the source words of pair i, the empty word first, read when a target word needs them
        for (int64_t j = pairs.tgt_off[i]; j < pairs.tgt_off[i + 1]; ++j) {
          const int32_t f = pairs.tgt[static_cast<size_t>(j)];
          if (f % kBuckets % threads != t) continue;
          if (words.empty()) {
            words.push_back(null_word);
            for (int64_t k = pairs.src_off[i]; k < pairs.src_off[i + 1]; ++k)
              words.push_back(pairs.src[static_cast<size_t>(k)]);
          }
          slots.clear();  // slots[k] is t(f | words[k])
          double denom = 0;
          for (int64_t e : words) {
            slots.push_back(table.find(PairTable::pack(e, f)));
            denom += prob[slots.back()];
          }
          if (!(denom > 0)) continue;  // every t(f | e) of the pair underflowed: nothing to share out
          double* totals = &bucket_total[static_cast<size_t>(f % kBuckets) * row];
          for (size_t k = 0; k < slots.size(); ++k) {
            const double c = prob[slots[k]] / denom;
            count[slots[k]] += c;
            totals[words[k]] += c;
          }
        }
        if (t == 0 && i % 4096 == 0) progress.update(static_cast<uint64_t>(it) * pairs.size() + i);
      }
    });
    std::fill(total.begin(), total.end(), 0.0);
    for (int64_t b = 0; b < kBuckets; ++b)
      for (size_t e = 0; e < row; ++e) total[e] += bucket_total[static_cast<size_t>(b) * row + e];
    for (size_t slot = 0; slot < table.capacity(); ++slot)
      if (const uint64_t k = table.key(slot); k != PairTable::kEmpty)
        prob[slot] = total[k >> 32] > 0 ? static_cast<float>(count[slot] / total[k >> 32]) : 0.0f;
  }
  progress.update(static_cast<uint64_t>(opt.iterations) * pairs.size());
  progress.finish(fmt::format("{} word pairs", table.size()));

  s.translations.resize(static_cast<size_t>(s.src_vocab));
  for (size_t slot = 0; slot < table.capacity(); ++slot)
    if (const uint64_t k = table.key(slot); k != PairTable::kEmpty && static_cast<int64_t>(k >> 32) != null_word)
      s.translations[k >> 32].emplace_back(static_cast<int32_t>(k & 0xffffffffU), prob[slot]);
  const auto more_likely = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  for (auto& list : s.translations) {
    const auto keep = std::min<size_t>(list.size(), static_cast<size_t>(opt.best));
    std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(keep), list.end(), more_likely);
    list.resize(keep);
    list.shrink_to_fit();
  }
  std::vector<std::pair<int32_t, int64_t>> freq;  // (target id, count)
  for (int32_t f = kFirstWord; f < s.tgt_vocab; ++f)
    if (target_count[static_cast<size_t>(f)] > 0) freq.emplace_back(f, target_count[static_cast<size_t>(f)]);
  const auto keep = std::min<size_t>(freq.size(), static_cast<size_t>(opt.first));
  std::partial_sort(freq.begin(), freq.begin() + static_cast<std::ptrdiff_t>(keep), freq.end(), more_likely);
  for (size_t i = 0; i < keep; ++i) s.frequent.push_back(freq[i].first);
  return s;
}

torch::Tensor Shortlist::candidates(const torch::Tensor& src) const {
  const torch::Tensor ids = src.to(torch::kCPU, torch::kInt64).contiguous();
  std::vector<char> in(static_cast<size_t>(tgt_vocab), 0);
  for (int32_t f = 0; f < kFirstWord && f < tgt_vocab; ++f) in[static_cast<size_t>(f)] = 1;
  for (int32_t f : frequent) in[static_cast<size_t>(f)] = 1;
  std::vector<char> seen(static_cast<size_t>(src_vocab), 0);
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const int64_t e = p[i];
    if (e < kFirstWord || e >= src_vocab || seen[static_cast<size_t>(e)]) continue;
    seen[static_cast<size_t>(e)] = 1;
    for (const auto& [f, prob] : translations[static_cast<size_t>(e)]) in[static_cast<size_t>(f)] = 1;
  }
  std::vector<int64_t> out;
  for (int64_t f = 0; f < tgt_vocab; ++f)
    if (in[static_cast<size_t>(f)]) out.push_back(f);
  return torch::tensor(out, torch::kInt64);
}

void Shortlist::check_vocab(const std::string& src_vocab_hash, int64_t src_size, const std::string& tgt_vocab_hash,
                            int64_t tgt_size, const std::string& path, const std::string& checkpoint) const {
  if (src_size != src_vocab || tgt_size != tgt_vocab)
    throw DataError(fmt::format("--shortlist {}: it lists {} source and {} target tokens, but {} has {} and {}", path,
                                src_vocab, tgt_vocab, checkpoint, src_size, tgt_size));
  if (src_vocab_hash != src_hash || tgt_vocab_hash != tgt_hash)
    throw DataError(fmt::format(
        "--shortlist {}: it was built for the vocabularies {} (source) and {} (target), but {} uses {} and {}; "
        "HINT: build it with `tern shortlist` from the corpus the model was trained on",
        path, src_hash, tgt_hash, checkpoint, src_vocab_hash, tgt_vocab_hash));
}

void save_shortlist(const Shortlist& s, const std::string& path) {
  Writer w;
  w.bytes().append(kMagic, sizeof kMagic);
  w.put<uint32_t>(kShortlistFormatVersion);
  w.put<int64_t>(s.src_vocab), w.put<int64_t>(s.tgt_vocab);
  w.put_string(s.src_hash), w.put_string(s.tgt_hash);
  w.put<int64_t>(s.first), w.put<int64_t>(s.best), w.put<int64_t>(s.iterations), w.put<int64_t>(s.sentences);
  w.put<int64_t>(static_cast<int64_t>(s.frequent.size()));
  for (int32_t f : s.frequent) w.put<int32_t>(f);
  for (const auto& list : s.translations) {
    w.put<int32_t>(static_cast<int32_t>(list.size()));
    for (const auto& [f, prob] : list) w.put<int32_t>(f), w.put<float>(prob);
  }
  w.put<uint64_t>(hash_bytes(w.bytes().data(), w.bytes().size()));
  write_file_atomic(path, w.bytes());
}

Shortlist load_shortlist(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file_bounded(path, kMaxFileBytes, "--shortlist");
  } catch (const IoError& e) {  // a missing or unreadable input, like a missing corpus: a data error
    throw DataError(e.what());
  }
  if (bytes.size() < sizeof kMagic + 8 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw DataError(path + ": not a tern shortlist (no TERNSLST header); HINT: build one with `tern shortlist`");
  const size_t body = bytes.size() - sizeof(uint64_t);
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + body, sizeof stored);
  Reader r(bytes, body, path);
  for (size_t i = 0; i < sizeof kMagic; ++i) r.get<char>("the header");
  const auto version = r.get<uint32_t>("the version");
  if (version != kShortlistFormatVersion)
    throw DataError(fmt::format("{}: shortlist format version {}, this tern reads version {}", path, version,
                                kShortlistFormatVersion));
  if (const uint64_t h = hash_bytes(bytes.data(), body); h != stored)
    throw DataError(
        fmt::format("{}: checksum mismatch (stored {:016x}, computed {:016x}): the file is corrupted or "
                    "truncated; build it again with `tern shortlist`",
                    path, stored, h));
  Shortlist s;
  s.src_vocab = r.get<int64_t>("the source vocabulary size"), s.tgt_vocab = r.get<int64_t>("the target one");
  const auto vocab_ok = [](int64_t v) { return v > kFirstWord && v <= std::numeric_limits<int32_t>::max(); };
  if (!vocab_ok(s.src_vocab) || !vocab_ok(s.tgt_vocab))
    throw DataError(fmt::format("{}: vocabulary sizes {} and {} must be in [{}, 2^31)", path, s.src_vocab, s.tgt_vocab,
                                kFirstWord + 1));
  s.src_hash = r.get_string("the source vocabulary hash"), s.tgt_hash = r.get_string("the target vocabulary hash");
  s.first = r.get<int64_t>("first"), s.best = r.get<int64_t>("best");
  s.iterations = r.get<int64_t>("iterations"), s.sentences = r.get<int64_t>("sentences");
  const auto nfreq = r.get<int64_t>("the frequent tokens' count");
  if (nfreq < 0 || nfreq > s.first || nfreq > s.tgt_vocab || static_cast<uint64_t>(nfreq) * 4 > r.left())
    throw DataError(fmt::format("{}: {} frequent tokens for first = {}", path, nfreq, s.first));
  const auto check_target = [&](int32_t f, const char* what) {
    if (f < kFirstWord || f >= s.tgt_vocab)
      throw DataError(fmt::format("{}: {} token id {} outside the target vocabulary's words [{}, {})", path, what, f,
                                  kFirstWord, s.tgt_vocab));
  };
  for (int64_t i = 0; i < nfreq; ++i) {
    s.frequent.push_back(r.get<int32_t>("the frequent tokens"));
    check_target(s.frequent.back(), "a frequent");
  }
  if (static_cast<uint64_t>(s.src_vocab) * 4 > r.left())  // a count for each source id
    throw DataError(fmt::format("{}: {} bytes cannot hold the lists of {} source tokens", path, r.left(), s.src_vocab));
  s.translations.resize(static_cast<size_t>(s.src_vocab));
  for (int64_t e = 0; e < s.src_vocab; ++e) {
    const auto n = r.get<int32_t>("a translation count");
    if (n < 0 || n > s.best || (e < kFirstWord && n > 0) || static_cast<uint64_t>(n) * 8 > r.left())
      throw DataError(fmt::format("{}: source token {} has {} translations (at most best = {}; none for special ids)",
                                  path, e, n, s.best));
    auto& list = s.translations[static_cast<size_t>(e)];
    for (int32_t k = 0; k < n; ++k) {
      const auto f = r.get<int32_t>("a translation");
      const auto prob = r.get<float>("a probability");
      check_target(f, "a translation's");
      if (!(prob >= 0 && prob <= 1))
        throw DataError(fmt::format("{}: p({} | {}) = {} is not a probability", path, f, e, prob));
      list.emplace_back(f, prob);
    }
  }
  if (r.left() != 0) throw DataError(fmt::format("{}: {} bytes after the last table", path, r.left()));
  return s;
}

}  // namespace tern
