#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <fmt/format.h>

#include "data/batcher.h"
#include "data/prepare.h"
#include "test_util.h"

namespace tern {

namespace {
std::string make_corpus(const test::TempDir& d, int n) {
  auto src = test::synthetic_sentences(n, 3);
  test::write_lines(d.file("a.en"), src);
  test::write_lines(d.file("a.es"), test::synthetic_translation(src));
  PrepareOptions o;
  o.train_src = {d.file("a.en")};
  o.train_tgt = {d.file("a.es")};
  o.tokenizer.vocab_size = 60;
  o.out = d.file("c.h5");
  o.progress = false;
  prepare_corpus(o);
  return o.out;
}
}  // namespace

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
    EXPECT_EQ(s.first_sentence(), b);
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
