#include <gtest/gtest.h>

#include "core/errors.h"
#include "data/tokenizer.h"
#include "models/model.h"
#include "translation/decode.h"

namespace tern {

TEST(DecodeOptions, Validation) {
  DecodeOptions o;
  o.beam = 0;
  EXPECT_THROW(o.validate(), std::exception);
  o.beam = 2, o.nbest = 3;
  EXPECT_THROW(o.validate(), std::exception);
}

TEST(Decode, NbestIsSortedAndBounded) {
  torch::manual_seed(0);
  ModelConfig c;
  c.embedding = c.hidden = 8, c.src_vocab = c.tgt_vocab = 12, c.dropout = 0;
  auto m = build_model(c);
  m->eval();
  DecodeOptions o;
  o.beam = 4, o.nbest = 3, o.max_len_ratio = 1.0, o.max_len_extra = 2;
  auto res = decode(*m, torch::tensor({{4, 5, 6}, {7, 0, 0}}), torch::tensor({3, 1}), o);
  ASSERT_EQ(res.size(), 2u);
  for (int b = 0; b < 2; ++b) {
    ASSERT_EQ(res[b].size(), 3u);
    EXPECT_GE(res[b][0].score, res[b][1].score);
    EXPECT_GE(res[b][1].score, res[b][2].score);
    for (const auto& h : res[b]) EXPECT_LE(static_cast<int64_t>(h.tokens.size()), b == 0 ? 5 : 3);
  }
}

namespace {
// The tiny seq2seq of the decode tests, built after seeding the generator (same weights every time).
ModelConfig tiny_seq2seq() {
  torch::manual_seed(0);
  ModelConfig c;
  c.embedding = c.hidden = 8, c.src_vocab = c.tgt_vocab = 12, c.dropout = 0;
  return c;
}
}  // namespace

// --no-unk: a model that prefers <unk> everywhere emits it, and never with no_unk.
TEST(Decode, NoUnkNeverEmitsUnk) {
  ModelConfig c = tiny_seq2seq();
  auto m = build_model(c);
  m->eval();
  {
    torch::NoGradGuard ng;
    m->named_parameters()["out.bias"][kUnkId].fill_(100.0);
  }
  DecodeOptions o;
  o.beam = 3, o.max_len_ratio = 1.0, o.max_len_extra = 3;
  auto src = torch::tensor({{4, 5, 6}, {7, 8, 0}});
  auto len = torch::tensor({3, 2});
  auto with = decode(*m, src, len, o);
  EXPECT_EQ(with[0][0].tokens.front(), kUnkId);
  o.no_unk = true;
  for (const auto& hyps : decode(*m, src, len, o))
    for (const auto& h : hyps)
      for (int32_t tok : h.tokens) EXPECT_NE(tok, kUnkId);
}

// An ensemble of one model, or of a model with itself, decodes exactly as that model.
TEST(Decode, EnsembleOfOneEqualsTheModel) {
  ModelConfig c = tiny_seq2seq();
  auto m = build_model(c);
  m->eval();
  DecodeOptions o;
  o.beam = 3, o.nbest = 2, o.max_len_ratio = 1.0, o.max_len_extra = 3;
  auto src = torch::tensor({{4, 5, 6}, {7, 8, 0}});
  auto len = torch::tensor({3, 2});
  auto alone = decode(*m, src, len, o);
  for (size_t n : {1, 2}) {
    EnsembleImpl e(std::vector<SequenceModel>(n, m));
    auto together = decode(e, src, len, o);
    for (size_t b = 0; b < alone.size(); ++b)
      for (size_t k = 0; k < alone[b].size(); ++k) {
        EXPECT_EQ(together[b][k].tokens, alone[b][k].tokens);
        EXPECT_EQ(together[b][k].score, alone[b][k].score);
      }
  }
  torch::manual_seed(1);
  EnsembleImpl pair({m, build_model(c)});
  EXPECT_THROW(pair.forward(src, len, src), ConfigError);
}

}  // namespace tern
