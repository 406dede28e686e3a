#include <gtest/gtest.h>

#include <set>

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
  o.train_src = d.file("a.en");
  o.train_tgt = d.file("a.es");
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

}  // namespace tern
