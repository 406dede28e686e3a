#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "data/batcher.h"
#include "data/prepare.h"
#include "test_util.h"

namespace tern {

namespace {
std::string make_corpus(const test::TempDir& d, int n) { return test::make_synthetic_corpus(d, n, 3, 60); }
}  // namespace

// Stream mode: over an epoch's windows, each stream's non-pad positions are consecutive, the streams follow one
// another, and together they are every sentence's <s> y / y </s> pairs in corpus order: each token and one </s> a
// sentence predicted exactly once. Checked for several stream counts and window lengths, on a shard that does not
// start at sentence 0.
TEST(Batcher, StreamWindowsCoverEveryTokenOnce) {
  test::TempDir d;
  const std::string path = make_corpus(d, 200);
  CorpusReader c(path);
  ShardData shard(c, "train", 1, 2);
  std::vector<int64_t> want_in, want_out;
  for (int64_t i = 0; i < shard.size(); ++i) {
    Batch b = shard.collate({i});
    const auto tin = b.tgt_in[0], tout = b.tgt_out[0];
    for (int64_t t = 0; t < b.target_tokens; ++t)
      want_in.push_back(tin[t].item<int64_t>()), want_out.push_back(tout[t].item<int64_t>());
  }
  for (auto [streams, bptt] : std::vector<std::pair<int64_t, int64_t>>{{1, 7}, {3, 5}, {8, 13}, {5, 1000}}) {
    const StreamLayout l = shard.stream_layout(streams, bptt);
    ASSERT_EQ(l.streams(), streams);
    EXPECT_EQ(l.begin.back(), static_cast<int64_t>(want_out.size()));
    std::vector<std::vector<int64_t>> in(streams), out(streams);
    int64_t tokens = 0;
    for (int64_t k = 0; k <= l.windows; ++k) {  // one past the end: all padding
      Batch b = shard.collate_window(l, k);
      EXPECT_EQ(b.tgt_in.sizes(), (std::vector<int64_t>{streams, bptt}));
      EXPECT_EQ(b.stream_start, k == 0);
      if (k == l.windows) {
        EXPECT_EQ(b.target_tokens, 0);
      }
      tokens += b.target_tokens;
      for (int64_t r = 0; r < streams; ++r)
        for (int64_t t = 0; t < bptt; ++t) {
          const int64_t y = b.tgt_out[r][t].item<int64_t>();
          EXPECT_EQ(y == kPadId, b.tgt_in[r][t].item<int64_t>() == kPadId);
          if (y == kPadId) continue;
          EXPECT_EQ(static_cast<int64_t>(out[r].size()), k * bptt + t) << "a gap inside stream " << r;
          in[r].push_back(b.tgt_in[r][t].item<int64_t>()), out[r].push_back(y);
        }
    }
    std::vector<int64_t> all_in, all_out;
    for (int64_t r = 0; r < streams; ++r) {
      EXPECT_EQ(static_cast<int64_t>(out[r].size()), l.begin[r + 1] - l.begin[r]);
      all_in.insert(all_in.end(), in[r].begin(), in[r].end());
      all_out.insert(all_out.end(), out[r].begin(), out[r].end());
    }
    EXPECT_EQ(all_in, want_in) << streams << " streams, bptt " << bptt;
    EXPECT_EQ(all_out, want_out) << streams << " streams, bptt " << bptt;
    EXPECT_EQ(tokens, static_cast<int64_t>(want_out.size()));
  }
  EXPECT_EQ(shard.stream_layout(1000000, 4).streams(), static_cast<int64_t>(want_out.size()));  // at most 1 a position
}

TEST(Batcher, BatchesRespectTokenBudgetAndCoverShard) {
  test::TempDir d;
  CorpusReader c(make_corpus(d, 300));
  ShardData s(c, "train");
  BatchingOptions o;
  o.batch_tokens = 200;
  auto batches = s.make_batches(o, 0);
  std::set<int64_t> seen;
  for (const auto& ids : batches) {
    Batch b = s.collate(ids);
    EXPECT_LE(b.size() * std::max(b.src.size(1), b.tgt_in.size(1)), 200);
    EXPECT_EQ(b.tgt_in.index({torch::indexing::Slice(), 0}).eq(kBosId).all().item<bool>(), true);
    EXPECT_EQ(b.tgt_out.ne(kPadId).sum().item<int64_t>(), b.target_tokens);
    for (int64_t i : ids) EXPECT_TRUE(seen.insert(i).second);
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), s.size());
  // Deterministic per (seed, epoch); different across epochs.
  EXPECT_EQ(s.make_batches(o, 0), batches);
  EXPECT_NE(s.make_batches(o, 1), batches);
}

TEST(Batcher, ShardsAreDisjointAndCoverTheSplit) {
  test::TempDir d;
  CorpusReader c(make_corpus(d, 301));
  int64_t total = 0, next = 0;
  for (int k = 0; k < 3; ++k) {
    auto [b, e] = shard_range(c.num_sentences("train"), k, 3);
    EXPECT_EQ(b, next);
    next = e;
    ShardData s(c, "train", k, 3);
    EXPECT_EQ(s.ranges(), (std::vector<std::pair<int64_t, int64_t>>{{b, e}}));
    total += s.size();
  }
  EXPECT_EQ(total, c.num_sentences("train"));
}

TEST(Batcher, CorpusInPartsReadsAsOneFile) {
  // One corpus prepared whole, and again in two parts with the whole's SentencePiece models.
  test::TempDir d;
  auto src = test::synthetic_sentences(700, 5);
  auto tgt = test::synthetic_translation(src);
  test::write_lines(d.file("a.en"), src);
  test::write_lines(d.file("a.es"), tgt);
  PrepareOptions o;
  o.train_src = {d.file("a.en")}, o.train_tgt = {d.file("a.es")};
  o.tokenizer.vocab_size = 60;
  o.out = d.file("whole.h5");
  o.progress = false;
  prepare_corpus(o);
  CorpusReader whole(o.out);
  for (const char* side : {"src", "tgt"}) {
    std::ofstream(d.file(std::string(side) + ".model"), std::ios::binary) << whole.vocab(side).model_proto;
  }
  for (int k = 0; k < 2; ++k) {
    const auto b = k == 0 ? 0 : 300, e = k == 0 ? 300 : 700;
    test::write_lines(d.file(fmt::format("{}.en", k)), {src.begin() + b, src.begin() + e});
    test::write_lines(d.file(fmt::format("{}.es", k)), {tgt.begin() + b, tgt.begin() + e});
    PrepareOptions p = o;
    p.train_src = {d.file(fmt::format("{}.en", k))}, p.train_tgt = {d.file(fmt::format("{}.es", k))};
    p.spm_src = d.file("src.model"), p.spm_tgt = d.file("tgt.model");
    p.out = d.file(fmt::format("part{}.h5", k));
    prepare_corpus(p);
  }
  CorpusReader parts({d.file("part0.h5"), d.file("part1.h5")});
  EXPECT_EQ(parts.identity(), whole.identity());
  EXPECT_EQ(parts.num_sentences("train"), 700);
  EXPECT_EQ(parts.num_tokens("train", "tgt"), whole.num_tokens("train", "tgt"));
  EXPECT_EQ(parts.line_numbers("train"), whole.line_numbers("train"));
  EXPECT_EQ(parts.source_lines("train"), 700);
  for (const char* side : {"src", "tgt"}) {
    EXPECT_EQ(parts.read("train", side, 250, 350).tokens, whole.read("train", side, 250, 350).tokens);
    EXPECT_EQ(parts.offsets("train", side, 290, 310), whole.offsets("train", side, 290, 310));
    EXPECT_EQ(parts.offsets("train", side, 300, 300), whole.offsets("train", side, 300, 300));
  }
  // Shards that straddle the parts collate the same batches.
  BatchingOptions bo;
  bo.batch_tokens = 150;
  for (int k = 0; k < 3; ++k) {
    ShardData a(whole, "train", k, 3), b(parts, "train", k, 3);
    ASSERT_EQ(a.make_batches(bo, 1), b.make_batches(bo, 1));
    for (const auto& ids : a.make_batches(bo, 1)) {
      Batch x = a.collate(ids), y = b.collate(ids);
      EXPECT_TRUE(x.src.equal(y.src) && x.tgt_in.equal(y.tgt_in) && x.tgt_out.equal(y.tgt_out));
      EXPECT_EQ(x.sentence_ids, y.sentence_ids);
    }
  }
  // data.weights {3, 1}: part 0's sentences three times, part 1's once, in near-equal shards of the weighted
  // sequence (1,300 sentences), each row the sentence the whole corpus holds under that id.
  // One shard of it holds part 0 three times (its offsets once, shared by the repeats), three shards a third each.
  std::map<int64_t, int> times;
  int64_t weighted = 0;
  for (int k = 0; k < 4; ++k) {
    const int shards = k < 3 ? 3 : 1;
    ShardData w(parts, "train", k % 3, shards, {3, 1});
    EXPECT_NEAR(static_cast<double>(w.size()), 1300.0 / shards, 1.0);
    weighted += w.size();
    for (const auto& ids : w.make_batches(bo, 2)) {
      Batch y = w.collate(ids);
      std::vector<int64_t> same;  // the same sentences read from the whole corpus, in the same order
      for (int64_t id : y.sentence_ids) {
        ++times[id];
        same.push_back(id);
      }
      Batch x = ShardData(whole, "train").collate(same);
      EXPECT_TRUE(x.src.equal(y.src) && x.tgt_in.equal(y.tgt_in) && x.tgt_out.equal(y.tgt_out));
    }
  }
  EXPECT_EQ(weighted, 2600);
  ASSERT_EQ(times.size(), 700u);
  for (const auto& [id, n] : times) EXPECT_EQ(n, id < 300 ? 6 : 2) << "sentence " << id;
  EXPECT_EQ(ShardData(parts, "train", 0, 1, {1, 1}).ranges(),
            (std::vector<std::pair<int64_t, int64_t>>{{0, 300}, {300, 700}}));
  std::string wrong = test::error_of([&] { ShardData(parts, "train", 0, 1, {2}); });
  EXPECT_NE(wrong.find("data.weights has 1 entries for the 2 parts"), std::string::npos) << wrong;

  // A part with other vocabularies, or of another kind, is refused naming it.
  PrepareOptions other = o;
  other.tokenizer.vocab_size = 50;
  other.out = d.file("other.h5");
  prepare_corpus(other);
  std::string e = test::error_of([&] { CorpusReader r({d.file("part0.h5"), d.file("other.h5")}); });
  EXPECT_NE(e.find("other.h5: its "), std::string::npos) << e;
  EXPECT_NE(e.find("must share their SentencePiece models"), std::string::npos) << e;
  PrepareOptions mono = o;
  mono.train_src.clear(), mono.train_tgt.clear();
  mono.train_text = {d.file("a.en")};
  mono.out = d.file("mono.h5");
  prepare_corpus(mono);
  e = test::error_of([&] { CorpusReader r({d.file("part0.h5"), d.file("mono.h5")}); });
  EXPECT_NE(e.find("mono.h5: this part of the corpus is monolingual"), std::string::npos) << e;
}

}  // namespace tern
