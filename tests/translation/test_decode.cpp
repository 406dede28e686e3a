#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "core/errors.h"
#include "data/tokenizer.h"
#include "models/model.h"
#include "test_util.h"
#include "translation/decode.h"

namespace tern {

TEST(DecodeOptions, Validation) {
  DecodeOptions o;
  o.beam = 0;
  EXPECT_THROW(o.validate(), std::exception);
  o.beam = 2, o.nbest = 3;
  EXPECT_THROW(o.validate(), std::exception);
}

// The CPU's one-pass selection equals topk over lp + score, -inf rows and entries included.
TEST(Decode, BestContinuationsEqualTopk) {
  torch::manual_seed(1);
  const int64_t A = 3, R = 4, V = 50, n = 8;
  torch::Tensor lp = torch::log_softmax(torch::randn({A * R, V}) * 3, -1);
  lp.index_put_({torch::tensor({0, 5}), torch::tensor({7, 9})}, -std::numeric_limits<float>::infinity());
  std::vector<double> scores{-1.0, -2.5, -0.5, -std::numeric_limits<double>::infinity(), -3, -1, -2, -4, 0, -1, -1, -2};
  torch::Tensor total = lp + torch::tensor(scores, torch::kFloat64).to(torch::kFloat32).unsqueeze(1);
  auto [ref_val, ref_idx] = total.view({A, R * V}).topk(n, 1);
  auto [val, idx] = best_continuations(lp, scores, R, n);
  EXPECT_TRUE(torch::equal(val, ref_val));
  EXPECT_TRUE(torch::equal(idx, ref_idx));
  // Fewer finite continuations than asked: the rest is -inf.
  torch::Tensor few = torch::full({2, 3}, -std::numeric_limits<float>::infinity());
  few[0][1] = -1.0f;
  auto [fv, fi] = best_continuations(few, {0.0, -std::numeric_limits<double>::infinity()}, 2, 4);
  EXPECT_EQ(fv[0][0].item<float>(), -1.0f);
  EXPECT_EQ(fi[0][0].item<int64_t>(), 1);
  EXPECT_TRUE(std::isinf(fv[0][1].item<float>()));
  // A NaN never enters, nor hides a larger value of its block of 16 (values 16..31 of the row) from the choice.
  torch::Tensor nan = torch::full({1, 40}, -5.0f);
  nan[0][17] = std::numeric_limits<float>::quiet_NaN(), nan[0][20] = -1.0f, nan[0][39] = -2.0f;
  auto [nv, ni] = best_continuations(nan, {0.0}, 1, 2);
  EXPECT_EQ(ni[0][0].item<int64_t>(), 20);
  EXPECT_EQ(ni[0][1].item<int64_t>(), 39);
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

// The tiny seq2seq in eval mode, its output bias raised by `bias[token]` (a model that prefers those tokens).
SequenceModel biased_seq2seq(const std::map<int64_t, float>& bias) {
  auto m = build_model(tiny_seq2seq());
  m->eval();
  torch::NoGradGuard ng;
  for (const auto& [token, value] : bias) m->named_parameters()["out.bias"][token].fill_(value);
  return m;
}

// Stepping `model` alone along sentence b's hypothesis `h` (then </s> when `ended`): each step's log-probability of
// the token taken (N) and the attention of the step (N, S_b).
struct Walk {
  std::vector<double> lp;
  torch::Tensor attn;
};
Walk walk(SequenceModelImpl& model, const torch::Tensor& src, const torch::Tensor& len, int64_t b, const Hypothesis& h,
          bool ended) {
  torch::NoGradGuard ng;
  DecoderState s = model.encode(src.narrow(0, b, 1).narrow(1, 0, len[b].item<int64_t>()), len.narrow(0, b, 1));
  Walk w;
  std::vector<torch::Tensor> attn;
  int64_t prev = kBosId;
  for (size_t i = 0; i < h.tokens.size() + (ended ? 1 : 0); ++i) {
    const int64_t tok = i < h.tokens.size() ? h.tokens[i] : kEosId;
    w.lp.push_back(model.step(torch::tensor({prev}), s)[0][tok].item<double>());
    attn.push_back(s.attn[0].to(torch::kFloat64));
    prev = tok;
  }
  w.attn = attn.empty() ? torch::zeros({0, len[b].item<int64_t>()}, torch::kFloat64) : torch::stack(attn);
  return w;
}
}  // namespace

// --early-stop ends a sentence when its best continuation is </s>: a subset of the full search's steps, so its best
// hypothesis is one the full search also finds or beats, and never more tokens than allowed.
TEST(Decode, EarlyStopIsANarrowerSearch) {
  ModelConfig c = tiny_seq2seq();
  auto m = build_model(c);
  m->eval();
  DecodeOptions full;
  full.beam = 4, full.max_len_ratio = 2.0, full.max_len_extra = 4;
  DecodeOptions early = full;
  early.early_stop = true;
  const std::vector<std::vector<int64_t>> sources{{4, 5, 6}, {7, 8}, {9, 10, 11, 4}, {5}};
  int64_t differ = 0;
  for (const auto& ids : sources) {  // one sentence a batch: the same rows at every step
    auto src = torch::tensor(ids).unsqueeze(0);
    auto len = torch::tensor({static_cast<int64_t>(ids.size())});
    auto f = decode(*m, src, len, full), e = decode(*m, src, len, early);
    ASSERT_EQ(e[0].size(), 1u);
    EXPECT_GE(f[0][0].score, e[0][0].score - 1e-9);
    EXPECT_LE(e[0][0].tokens.size(), 2 * ids.size() + 4);
    differ += f[0][0].tokens != e[0][0].tokens;
  }
  EXPECT_LT(differ, static_cast<int64_t>(sources.size())) << "most sentences agree";
}

// --no-unk: a model that prefers <unk> everywhere emits it, and never with no_unk.
TEST(Decode, NoUnkNeverEmitsUnk) {
  auto m = biased_seq2seq({{kUnkId, 100.0f}});
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

// --no-repeat-ngram-size N: a model that prefers one token everywhere repeats it; with N no hypothesis holds an
// n-gram of N tokens twice, for beam search and greedy alike.
TEST(Decode, NoRepeatNgramSizeBlocksRepeats) {
  auto m = biased_seq2seq({{5, 20.0f}, {6, 18.0f}});
  DecodeOptions o;
  o.beam = 3, o.nbest = 3, o.max_len_ratio = 3.0, o.max_len_extra = 4;
  auto src = torch::tensor({{4, 5, 6}, {7, 8, 0}});
  auto len = torch::tensor({3, 2});
  const auto repeats = [](const std::vector<int32_t>& t, size_t n) {
    std::set<std::vector<int32_t>> seen;
    for (size_t i = 0; i + n <= t.size(); ++i)
      if (!seen.insert(std::vector<int32_t>(t.begin() + i, t.begin() + i + n)).second) return true;
    return false;
  };
  EXPECT_TRUE(repeats(decode(*m, src, len, o)[0][0].tokens, 2)) << "the model repeats without the option";
  for (int64_t beam : {1, 3})
    for (size_t n : {1, 2, 3}) {
      o.beam = beam, o.nbest = beam, o.no_repeat_ngram_size = static_cast<int64_t>(n);
      for (const auto& hyps : decode(*m, src, len, o))
        for (const auto& h : hyps) {
          EXPECT_FALSE(repeats(h.tokens, n)) << "beam " << beam << ", n " << n;
          EXPECT_FALSE(h.tokens.empty());
        }
    }
}

// --min-len N: a model that prefers </s> at once ends at once; with N every hypothesis has at least N tokens.
TEST(Decode, MinLenDelaysTheEnd) {
  auto m = biased_seq2seq({{kEosId, 20.0f}});
  DecodeOptions o;
  o.beam = 3, o.nbest = 2, o.max_len_ratio = 3.0, o.max_len_extra = 4;
  auto src = torch::tensor({{4, 5, 6}, {7, 8, 0}});
  auto len = torch::tensor({3, 2});
  EXPECT_TRUE(decode(*m, src, len, o)[0][0].tokens.empty());
  o.min_len = 4;
  for (const auto& hyps : decode(*m, src, len, o))
    for (const auto& h : hyps) EXPECT_EQ(h.tokens.size(), 4u) << "ends as soon as it may";
  // A vocabulary used up before --min-len (12 tokens, none twice): each hypothesis ends when nothing else is left,
  // for beam search, greedy search and sampling alike (sampling used to fail on a row of -inf).
  o.min_len = 50, o.no_repeat_ngram_size = 1, o.max_len_ratio = 30.0;
  for (const bool sampling : {false, true})
    for (int64_t beam : {1, 3}) {
      if (sampling && beam > 1) continue;
      o.sampling = sampling, o.beam = beam, o.nbest = 1;
      for (const auto& hyps : decode(*m, src, len, o)) {
        EXPECT_FALSE(hyps[0].tokens.empty());
        EXPECT_LE(hyps[0].tokens.size(), 12u);
        EXPECT_TRUE(std::isfinite(hyps[0].score));
      }
    }
  o = DecodeOptions{};
  o.min_len = -1;
  EXPECT_THROW(o.validate(), ConfigError);
  o.min_len = 0, o.no_repeat_ngram_size = -1;
  EXPECT_THROW(o.validate(), ConfigError);
}

// The sampler draws by the probabilities, within top-k and top-p.
TEST(Decode, SampleTokensFollowsTheDistribution) {
  const int64_t n = 20000;
  torch::Tensor lp = torch::tensor({0.5f, 0.3f, 0.2f}).log().unsqueeze(0).expand({n, 3}).contiguous();
  auto gen = at::detail::createCPUGenerator(7);
  const auto freq = [&](const torch::Tensor& tokens) { return torch::bincount(tokens, {}, 3).to(torch::kDouble) / n; };
  torch::Tensor f = freq(sample_tokens(lp, 1.0, 0, 1.0, gen));
  EXPECT_NEAR(f[0].item<double>(), 0.5, 0.02);
  EXPECT_NEAR(f[1].item<double>(), 0.3, 0.02);
  EXPECT_NEAR(f[2].item<double>(), 0.2, 0.02);
  f = freq(sample_tokens(lp, 1.0, 2, 1.0, gen));  // top-2: 0.5 and 0.3 renormalised
  EXPECT_EQ(f[2].item<double>(), 0.0);
  EXPECT_NEAR(f[0].item<double>(), 0.625, 0.02);
  f = freq(sample_tokens(lp, 1.0, 0, 0.6, gen));  // the fewest holding 0.6: tokens 0 and 1
  EXPECT_EQ(f[2].item<double>(), 0.0);
  f = freq(sample_tokens(lp, 0.01, 0, 1.0, gen));  // a low temperature is nearly argmax
  EXPECT_EQ(f[0].item<double>(), 1.0);
}

// --sampling: top-k 1 is greedy search; one seed gives one output, another seed another, whatever the batch; it needs
// beam 1.
TEST(Decode, SamplingIsReproducibleAndTopkOneIsGreedy) {
  ModelConfig c = tiny_seq2seq();
  auto m = build_model(c);
  m->eval();
  auto src = torch::tensor({{4, 5, 6}, {7, 8, 0}, {9, 10, 11}});
  auto len = torch::tensor({3, 2, 3});
  DecodeOptions greedy;
  greedy.beam = 1, greedy.max_len_ratio = 3.0, greedy.max_len_extra = 6;
  DecodeOptions s = greedy;
  s.sampling = true, s.sampling_topk = 1;
  const auto tokens = [&](const DecodeOptions& o) {
    std::vector<std::vector<int32_t>> out;
    for (const auto& hyps : decode(*m, src, len, o)) out.push_back(hyps[0].tokens);
    return out;
  };
  EXPECT_EQ(tokens(s), tokens(greedy));
  s.sampling_topk = 0, s.temperature = 5.0, s.seed = 1;
  const auto first = tokens(s);
  EXPECT_EQ(tokens(s), first);
  s.seed = 2;
  EXPECT_NE(tokens(s), first);
  // A sentence draws the same translation alone as in a batch (its generator is its own).
  s.seed = 1;
  const auto alone = decode(*m, torch::tensor({{7, 8}}), torch::tensor({2}), s);
  EXPECT_EQ(alone[0][0].tokens, first[1]);
  s.beam = 2;
  EXPECT_THROW(s.validate(), ConfigError);
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

// alignment: each token's source position is the argmax of the attention that chose it, as stepping the model along
// the hypothesis alone shows, through beam reordering, finished sentences leaving the batch, n-best and ensembles.
TEST(Decode, AlignmentIsTheAttentionArgmaxOfEachToken) {
  ModelConfig c = tiny_seq2seq();
  c.attention = AttentionKind::kGeneral;
  auto m = build_model(c);
  m->eval();
  torch::manual_seed(3);
  auto other = build_model(c);
  other->eval();
  auto src = torch::tensor({{4, 5, 6, 7, 8}, {9, 10, 0, 0, 0}, {11, 4, 9, 5, 0}});
  auto len = torch::tensor({5, 2, 4});
  DecodeOptions o;
  o.beam = 3, o.nbest = 2, o.max_len_ratio = 2.0, o.max_len_extra = 3, o.alignment = true;
  EnsembleImpl pair({m, other});
  for (SequenceModelImpl* model : {static_cast<SequenceModelImpl*>(m.get()), static_cast<SequenceModelImpl*>(&pair)}) {
    const auto res = decode(*model, src, len, o);
    torch::NoGradGuard ng;
    for (int64_t b = 0; b < 3; ++b)
      for (const auto& h : res[static_cast<size_t>(b)]) {
        ASSERT_EQ(h.alignment.size(), h.tokens.size());
        const torch::Tensor attended = walk(*model, src, len, b, h, /*ended=*/false).attn.argmax(1);  // (N)
        for (size_t i = 0; i < h.tokens.size(); ++i) {
          EXPECT_EQ(h.alignment[i], attended[static_cast<int64_t>(i)].item<int64_t>())
              << "sentence " << b << " token " << i;
          EXPECT_LT(h.alignment[i], len[b].item<int64_t>());
        }
      }
  }
  o.alignment = false;
  EXPECT_TRUE(decode(*m, src, len, o)[0][0].alignment.empty());
}

// --coverage-penalty: each ended hypothesis's score is its length-normalised logprob plus beta times the sum over its
// real source tokens of log(min(coverage, 1)), coverage floored at kCoverageFloor and summed from the attention of
// each of its steps (</s> included) as stepping the model (or an ensemble) along it alone gives, through beam
// reordering and sentences leaving the batch; the n best are sorted by it; a large beta changes some choices; 0 is the
// search without it.
TEST(Decode, CoveragePenaltyRanksByTheAttentionsSum) {
  auto m = biased_seq2seq({{kEosId, 1.5F}});  // some hypotheses end early, leaving source tokens unattended
  torch::manual_seed(5);
  auto other = build_model(tiny_seq2seq());
  other->eval();
  auto src = torch::tensor({{4, 5, 6, 7, 8, 9}, {9, 10, 0, 0, 0, 0}, {11, 4, 9, 5, 0, 0}, {6, 0, 0, 0, 0, 0}});
  auto len = torch::tensor({6, 2, 4, 1});
  DecodeOptions o;
  o.beam = 3, o.nbest = 3, o.max_len_ratio = 0.5, o.max_len_extra = 2, o.length_penalty = 0.6;
  o.coverage_penalty = 0.4;
  EnsembleImpl pair({m, other});
  int64_t penalised = 0;  // hypotheses that left some source token under 1
  for (SequenceModelImpl* model : {static_cast<SequenceModelImpl*>(m.get()), static_cast<SequenceModelImpl*>(&pair)}) {
    const auto res = decode(*model, src, len, o);
    torch::NoGradGuard ng;
    for (int64_t b = 0; b < 4; ++b) {
      const int64_t S = len[b].item<int64_t>();
      const auto& hyps = res[static_cast<size_t>(b)];
      for (size_t k = 0; k + 1 < hyps.size(); ++k) EXPECT_GE(hyps[k].score, hyps[k + 1].score);
      for (const auto& h : hyps) {
        const torch::Tensor cover =
            walk(*model, src, len, b, h, static_cast<int64_t>(h.tokens.size()) < S / 2 + 2).attn.sum(0);  // (S)
        const double lp = std::pow((5.0 + static_cast<double>(h.tokens.size() + 1)) / 6.0, 0.6);
        const double cp = 0.4 * cover.clamp(kCoverageFloor, 1.0).log().sum().item<double>();
        penalised += cp < 0;
        EXPECT_NEAR(h.score, h.logprob / lp + cp, 1e-4) << "sentence " << b;
      }
    }
  }
  EXPECT_GT(penalised, 4);
  DecodeOptions none = o;
  none.coverage_penalty = 0;
  const auto plain = decode(*m, src, len, none);
  DecodeOptions strong = o;
  strong.coverage_penalty = 20;
  const auto covered = decode(*m, src, len, strong);
  int64_t changed = 0;
  for (size_t b = 0; b < 4; ++b) {
    for (const auto& h : plain[b]) EXPECT_NEAR(h.score, h.logprob / std::pow((6.0 + h.tokens.size()) / 6.0, 0.6), 1e-9);
    changed += plain[b][0].tokens != covered[b][0].tokens;
  }
  EXPECT_GT(changed, 0) << "a large beta re-ranks some sentence's hypotheses";
  DecodeOptions bad = o;
  bad.coverage_penalty = -1;
  EXPECT_NE(test::error_of([&] { bad.validate(); }).find("--coverage-penalty must be in [0, 100] (got -1)"),
            std::string::npos);
  bad.coverage_penalty = 0.2, bad.sampling = true, bad.beam = 1, bad.nbest = 1;
  EXPECT_NE(test::error_of([&] { bad.validate(); }).find("--coverage-penalty re-ranks a beam's ended hypotheses"),
            std::string::npos);
}

// Prefixes (translate --prefix): every hypothesis starts with its sentence's prefix, each forced token taking its
// log-probability (the scores are those of stepping the model along the hypothesis alone); a prefix that is the start
// of the greedy translation continues into that translation; an empty prefix changes nothing; a prefix is forced past
// --no-repeat-ngram-size (the rule still holds after it) and --no-unk; a prefix longer than the length limit fits.
TEST(Decode, PrefixStartsEveryHypothesis) {
  auto m = build_model(tiny_seq2seq());
  m->eval();
  auto src = torch::tensor({{4, 5, 6, 7}, {9, 10, 0, 0}, {11, 4, 9, 0}});
  auto len = torch::tensor({4, 2, 3});
  DecodeOptions greedy;
  greedy.beam = 1, greedy.max_len_ratio = 1.0, greedy.max_len_extra = 3, greedy.length_penalty = 0;
  const auto free = decode(*m, src, len, greedy);
  ASSERT_GE(free[0][0].tokens.size(), 2U);
  const std::vector<int32_t> start(free[0][0].tokens.begin(), free[0][0].tokens.begin() + 2);
  const std::vector<int32_t> forced{5, 5, kUnkId, 7, 8, 9, 10, 11, 4, 5};  // longer than 1.0 * 3 + 3 tokens
  const std::vector<std::vector<int32_t>> prefixes{start, {}, forced};
  const auto cont = decode(*m, src, len, greedy, prefixes);
  EXPECT_EQ(cont[0][0].tokens, free[0][0].tokens) << "the greedy translation's start continues into it";
  EXPECT_EQ(cont[1][0].tokens, free[1][0].tokens) << "no prefix";
  DecodeOptions o;
  o.beam = 3, o.nbest = 3, o.max_len_ratio = 1.0, o.max_len_extra = 3, o.length_penalty = 0, o.token_scores = true;
  o.no_repeat_ngram_size = 1, o.no_unk = true;
  const auto res = decode(*m, src, len, o, prefixes);
  torch::NoGradGuard ng;
  for (int64_t b = 0; b < 3; ++b) {
    const auto& p = prefixes[static_cast<size_t>(b)];
    for (const auto& h : res[static_cast<size_t>(b)]) {
      ASSERT_GE(h.tokens.size(), p.size());
      EXPECT_TRUE(std::equal(p.begin(), p.end(), h.tokens.begin())) << "sentence " << b;
      EXPECT_LE(h.tokens.size(), p.size() + 3 + (b == 2 ? 0 : 4));
      std::set<int32_t> after(h.tokens.begin() + static_cast<int64_t>(p.size()), h.tokens.end());
      EXPECT_EQ(after.size(), h.tokens.size() - p.size()) << "no token twice after the prefix";
      for (int32_t t : p) EXPECT_EQ(after.count(t), 0U) << "nor one of the prefix again";
      const Walk w = walk(*m, src, len, b, h, h.token_scores.size() > h.tokens.size());
      ASSERT_EQ(w.lp.size(), h.token_scores.size());
      for (size_t i = 0; i < w.lp.size(); ++i)
        EXPECT_NEAR(h.token_scores[i], w.lp[i], 1e-4) << "sentence " << b << " token " << i;
      EXPECT_NEAR(h.logprob, std::accumulate(w.lp.begin(), w.lp.end(), 0.0), 1e-4);
    }
  }
  // Whole given translations (prefix_ends: forced decoding): each hypothesis is its prefix and </s>, scored and
  // aligned as stepping the model along it gives.
  DecodeOptions whole = greedy;
  whole.prefix_ends = true, whole.alignment = true, whole.min_len = 30;  // </s> forced past --min-len too
  const auto scored = decode(*m, src, len, whole, prefixes);
  for (int64_t b = 0; b < 3; ++b) {
    const auto& h = scored[static_cast<size_t>(b)][0];
    EXPECT_EQ(h.tokens, prefixes[static_cast<size_t>(b)]) << "sentence " << b;
    const Walk w = walk(*m, src, len, b, h, /*ended=*/true);
    EXPECT_NEAR(h.logprob, std::accumulate(w.lp.begin(), w.lp.end(), 0.0), 1e-4) << "sentence " << b;
    const torch::Tensor attended = w.attn.argmax(1);
    for (size_t i = 0; i < h.alignment.size(); ++i)
      EXPECT_EQ(h.alignment[i], attended[static_cast<int64_t>(i)].item<int64_t>());
  }
  whole.beam = 2;
  EXPECT_NE(test::error_of([&] { whole.validate(); }).find("forced decoding (given translations) takes one path"),
            std::string::npos);
  EXPECT_THROW(decode(*m, src, len, o, {{5}, {}}), std::invalid_argument) << "one prefix a sentence";
  EXPECT_THROW(decode(*m, src, len, o, {{5}, {kEosId}, {}}), std::invalid_argument) << "no </s> inside";
}

// token_scores: each token's log-probability, </s> included when the hypothesis ended with it, as stepping the model
// (or an ensemble, or the model fused with a language model) along the hypothesis alone gives; they sum to logprob;
// alignments stay one a token beside them.
TEST(Decode, TokenScoresAreEachTokensLogProbability) {
  auto m = build_model(tiny_seq2seq());
  m->eval();
  torch::manual_seed(5);
  auto other = build_model(tiny_seq2seq());
  other->eval();
  ModelConfig lc = tiny_seq2seq();
  lc.type = ModelType::kLm;
  auto lm = build_model(lc);
  lm->eval();
  auto src = torch::tensor({{4, 5, 6, 7}, {9, 10, 0, 0}, {11, 4, 9, 0}});
  auto len = torch::tensor({4, 2, 3});
  DecodeOptions o;
  o.beam = 3, o.nbest = 3, o.max_len_ratio = 1.0, o.max_len_extra = 3, o.token_scores = true, o.alignment = true;
  EnsembleImpl pair({m, other});
  for (int variant = 0; variant < 3; ++variant) {
    SequenceModelImpl& model = variant == 1 ? static_cast<SequenceModelImpl&>(pair) : *m;
    o.lm_model = variant == 2 ? lm : nullptr, o.lm_weight = 0.5;
    const auto res = decode(model, src, len, o);
    torch::NoGradGuard ng;
    for (int64_t b = 0; b < 3; ++b)
      for (const auto& h : res[static_cast<size_t>(b)]) {
        const bool ended = static_cast<int64_t>(h.tokens.size()) < len[b].item<int64_t>() + 3;
        ASSERT_EQ(h.token_scores.size(), h.tokens.size() + (ended ? 1 : 0)) << "variant " << variant;
        ASSERT_EQ(h.alignment.size(), h.tokens.size());
        DecoderState s = model.encode(src.narrow(0, b, 1).narrow(1, 0, len[b].item<int64_t>()), len.narrow(0, b, 1));
        DecoderState ls;
        int64_t prev = kBosId;
        double sum = 0;
        for (size_t i = 0; i < h.token_scores.size(); ++i) {
          const int64_t tok = i < h.tokens.size() ? h.tokens[i] : kEosId;
          const torch::Tensor p = torch::tensor({prev});
          double want = model.step(p, s)[0][tok].item<double>();
          if (variant == 2) want += 0.5 * lm->step(p, ls)[0][tok].item<double>();
          EXPECT_NEAR(h.token_scores[i], want, 1e-4) << "variant " << variant << " sentence " << b << " token " << i;
          sum += h.token_scores[i];
          prev = tok;
        }
        EXPECT_NEAR(sum, h.logprob, 1e-4);
      }
  }
  o.token_scores = false;
  EXPECT_TRUE(decode(*m, src, len, o)[0][0].token_scores.empty());
}

// model.right_left: the search steps from the end and returns hypotheses in reading order, each the reverse of the
// same weights' left-to-right search (tokens, alignment, token scores with </s>'s last; the same logprob and score);
// a given translation (prefix_ends) scores as teacher forcing does; prefixes and a language model are refused.
TEST(Decode, RightLeftSearchesFromTheEnd) {
  auto l2r = build_model(tiny_seq2seq());
  ModelConfig c = tiny_seq2seq();
  c.right_left = true;
  auto r2l = build_model(c);
  l2r->eval(), r2l->eval();
  auto src = torch::tensor({{4, 5, 6, 7}, {9, 10, 0, 0}, {11, 4, 9, 0}});
  auto len = torch::tensor({4, 2, 3});
  DecodeOptions o;
  o.beam = 3, o.nbest = 3, o.max_len_ratio = 1.0, o.max_len_extra = 3, o.token_scores = true, o.alignment = true;
  const auto want = decode(*l2r, src, len, o), got = decode(*r2l, src, len, o);
  for (size_t b = 0; b < 3; ++b) {
    ASSERT_EQ(got[b].size(), want[b].size());
    for (size_t k = 0; k < got[b].size(); ++k) {
      Hypothesis w = want[b][k];
      const size_t n = w.tokens.size();
      std::reverse(w.tokens.begin(), w.tokens.end()), std::reverse(w.alignment.begin(), w.alignment.end());
      std::reverse(w.token_scores.begin(), w.token_scores.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_EQ(got[b][k].tokens, w.tokens) << "sentence " << b << " hypothesis " << k;
      EXPECT_EQ(got[b][k].alignment, w.alignment);
      EXPECT_EQ(got[b][k].token_scores, w.token_scores);
      EXPECT_EQ(got[b][k].logprob, w.logprob);
      EXPECT_EQ(got[b][k].score, w.score);
    }
  }
  // Forced decoding of given translations in reading order: teacher forcing's log-probabilities.
  const std::vector<std::vector<int32_t>> given = {{4, 5, 6}, {7}, {8, 9, 10, 11}};
  DecodeOptions forced;
  forced.beam = 1, forced.prefix_ends = true;
  const auto scored = decode(*r2l, src, len, forced, given);
  auto tin = torch::tensor({{2, 4, 5, 6, 0}, {2, 7, 0, 0, 0}, {2, 8, 9, 10, 11}});
  auto tout = torch::tensor({{4, 5, 6, 3, 0}, {7, 3, 0, 0, 0}, {8, 9, 10, 11, 3}});
  torch::NoGradGuard ng;
  const auto lp = torch::log_softmax(r2l->forward(src, len, tin), -1).gather(2, tout.unsqueeze(2)).squeeze(2);
  for (size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(scored[b][0].tokens, given[b]);
    EXPECT_NEAR(scored[b][0].logprob,
                lp[static_cast<int64_t>(b)].masked_fill(tout[static_cast<int64_t>(b)] == 0, 0).sum().item<double>(),
                1e-4);
  }
  EXPECT_NE(test::error_of([&] { decode(*r2l, src, len, DecodeOptions{}, given); }).find("model.right_left"),
            std::string::npos);
  ModelConfig lc = tiny_seq2seq();
  lc.type = ModelType::kLm;
  DecodeOptions fused;
  fused.lm_model = build_model(lc), fused.lm_weight = 0.5, fused.lm = "lm.tern";
  EXPECT_NE(test::error_of([&] { decode(*r2l, src, len, fused); }).find("--lm lm.tern: a language model reads left"),
            std::string::npos);
}

// Shallow fusion (--lm): every hypothesis's logprob is the sum over its tokens (</s> included) of the translation
// model's log-probability plus lm_weight times the language model's, as stepping both along it alone gives, through
// beam reordering and finished sentences leaving the batch, for recurrent and feed-forward language models; weight 0
// decodes as the model alone; a language model that prefers a token brings it into the translations.
TEST(Decode, LmFusionAddsTheWeightedLanguageModel) {
  auto m = build_model(tiny_seq2seq());
  m->eval();
  auto src = torch::tensor({{4, 5, 6, 7}, {9, 10, 0, 0}, {11, 4, 9, 0}});
  auto len = torch::tensor({4, 2, 3});
  DecodeOptions o;
  o.beam = 3, o.nbest = 3, o.max_len_ratio = 1.0, o.max_len_extra = 3;
  const auto plain = decode(*m, src, len, o);
  for (ModelType type : {ModelType::kLm, ModelType::kFfnnLm}) {
    ModelConfig lc = tiny_seq2seq();
    lc.type = type, lc.context = 2;
    auto lm = build_model(lc);
    lm->eval();
    o.lm_model = lm, o.lm_weight = 0;
    const auto zero = decode(*m, src, len, o);
    for (size_t b = 0; b < plain.size(); ++b)
      for (size_t k = 0; k < plain[b].size(); ++k) {
        EXPECT_EQ(zero[b][k].tokens, plain[b][k].tokens);
        EXPECT_EQ(zero[b][k].score, plain[b][k].score);
      }
    o.lm_weight = 0.7;
    const auto fused = decode(*m, src, len, o);
    torch::NoGradGuard ng;
    for (int64_t b = 0; b < 3; ++b)
      for (const auto& h : fused[static_cast<size_t>(b)]) {
        DecoderState s = m->encode(src.narrow(0, b, 1).narrow(1, 0, len[b].item<int64_t>()), len.narrow(0, b, 1));
        DecoderState ls;
        int64_t prev = kBosId;
        double total = 0;
        std::vector<int64_t> next(h.tokens.begin(), h.tokens.end());
        if (static_cast<int64_t>(next.size()) < len[b].item<int64_t>() + 3) next.push_back(kEosId);
        for (int64_t tok : next) {
          const torch::Tensor p = torch::tensor({prev});
          total += m->step(p, s)[0][tok].item<double>() + 0.7 * lm->step(p, ls)[0][tok].item<double>();
          prev = tok;
        }
        EXPECT_NEAR(h.logprob, total, 1e-4) << "sentence " << b;
      }
    // A language model that prefers token 7 everywhere pulls it into the translations.
    const auto count7 = [](const std::vector<std::vector<Hypothesis>>& res) {
      int64_t n = 0;
      for (const auto& hyps : res) n += std::count(hyps[0].tokens.begin(), hyps[0].tokens.end(), 7);
      return n;
    };
    lm->named_parameters()["out.bias"][7].fill_(20.0f);
    o.lm_weight = 1;
    EXPECT_GT(count7(decode(*m, src, len, o)), count7(plain));
    o.lm_weight = 11;
    EXPECT_THROW(o.validate(), ConfigError);
    o.lm_weight = -0.1;
    EXPECT_THROW(o.validate(), ConfigError);
  }
}

// A recurrent language model's steps on the CPU (the DecodeWeights path, as the seq2seq decoder's) give the
// log-probabilities of its teacher-forced forward, for LSTM and GRU stacks of two layers.
TEST(Decode, LanguageModelStepsEqualItsForward) {
  for (Cell cell : {Cell::kLstm, Cell::kGru}) {
    ModelConfig lc = tiny_seq2seq();
    lc.type = ModelType::kLm, lc.cell = cell, lc.layers = 2;
    auto lm = build_model(lc);
    lm->eval();
    torch::NoGradGuard ng;
    const torch::Tensor tgt_in = torch::tensor({{2, 5, 7, 9, 4}, {2, 11, 3, 6, 8}});  // (B, T), <s> first
    const torch::Tensor want = torch::log_softmax(lm->forward({}, {}, tgt_in), -1);   // (B, T, V)
    DecoderState s;
    for (int64_t t = 0; t < tgt_in.size(1); ++t) {
      const torch::Tensor got = lm->step(tgt_in.select(1, t), s);  // (B, V)
      EXPECT_TRUE(s.weights != nullptr) << "the fast path";
      EXPECT_TRUE(torch::allclose(got, want.select(1, t), 1e-5, 1e-5))
          << "cell " << static_cast<int>(cell) << " t " << t;
    }
  }
}

// A language model restricted to a shortlist's ids gives their log-probabilities normalised over those ids.
TEST(Decode, LanguageModelRestrictedToIds) {
  ModelConfig lc = tiny_seq2seq();
  lc.type = ModelType::kLm;
  auto lm = build_model(lc);
  lm->eval();
  torch::NoGradGuard ng;
  const torch::Tensor ids = torch::tensor({0, 1, 2, 3, 5, 8, 11});
  DecoderState full, cut;
  lm->restrict_output(cut, ids);
  const torch::Tensor prev = torch::tensor({2, 5});
  torch::Tensor a = lm->step(prev, full), r = lm->step(prev, cut);  // (2, 12), (2, 7)
  ASSERT_EQ(r.size(1), 7);
  EXPECT_TRUE(torch::allclose(r, torch::log_softmax(a.index_select(1, ids), 1), 1e-5, 1e-6));
}

}  // namespace tern
