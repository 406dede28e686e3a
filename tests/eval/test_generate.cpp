#include <gtest/gtest.h>

#include <set>

#include "core/errors.h"
#include "data/tokenizer.h"
#include "eval/generate.h"
#include "models/language_model.h"
#include "test_util.h"

namespace tern {
namespace {

SequenceModel tiny_lm(const char* cell, bool residual = false, bool layer_norm = false) {
  torch::manual_seed(11);
  ModelConfig c;
  c.type = "lm", c.cell = cell, c.layers = 2, c.embedding = 12, c.hidden = 16, c.tgt_vocab = 40, c.dropout = 0;
  c.residual = residual, c.layer_norm = layer_norm;
  auto m = build_model(c);
  m->eval();
  return m;
}

// Log-probability of `tokens` (then </s> when `ended`) after <s> and `prompt`, from one teacher-forced forward.
double forward_logprob(SequenceModelImpl& m, const std::vector<int32_t>& prompt, const Generated& g) {
  std::vector<int64_t> seq = {kBosId};
  for (int32_t t : prompt) seq.push_back(t);
  const size_t start = seq.size();
  for (int32_t t : g.tokens) seq.push_back(t);
  if (g.ended) seq.push_back(kEosId);
  torch::NoGradGuard ng;
  const auto in = torch::tensor(std::vector<int64_t>(seq.begin(), seq.end() - 1)).unsqueeze(0);  // (1, T)
  const auto lp = torch::log_softmax(m.forward({}, {}, in), -1)[0];                              // (T, V)
  double sum = 0;
  for (size_t i = start; i < seq.size(); ++i) sum += lp[static_cast<int64_t>(i - 1)][seq[i]].item<double>();
  return sum;
}

GenerateOptions options(int64_t beam, int64_t num = 1) {
  GenerateOptions o;
  o.beam = beam, o.num = num, o.max_len = 12;
  return o;
}

}  // namespace

// step() one token at a time gives the log-probabilities of forward() (LSTM and GRU, 2 layers, residual or not,
// layer-normalized or not), on the CPU's fast path and through the modules (with autograd on).
TEST(Generate, StepEqualsForward) {
  for (const char* cell : {"lstm", "gru"})
    for (bool residual : {false, true})
      for (bool modules : {false, true})
        for (bool norm : {false, true}) {
          auto m = tiny_lm(cell, residual, norm);
          torch::NoGradGuard ng;
          torch::AutoGradMode grad(modules);
          const auto seq = torch::randint(4, 40, {3, 9}, torch::kLong);
          const auto full = torch::log_softmax(m->forward({}, {}, seq), -1);  // (3, 9, V)
          DecoderState s;
          for (int64_t t = 0; t < 9; ++t)
            EXPECT_LT((m->step(seq.select(1, t), s) - full.select(1, t)).abs().max().item<double>(), 1e-5)
                << cell << residual << modules << norm << t;
          EXPECT_EQ(s.weights != nullptr, !modules);
        }
}

// Every generated sequence's reported log-probability is its log-probability under forward(); sampling is
// reproducible by seed and changes with it; top-k 1 and a tiny top-p are greedy.
TEST(Generate, SamplingIsReproducibleAndScored) {
  auto m = tiny_lm("lstm");
  const std::vector<int32_t> prompt = {7, 9};
  GenerateOptions o = options(0, 6);
  o.seed = 3;
  const auto a = generate_ids(*m, prompt, o, torch::kCPU), b = generate_ids(*m, prompt, o, torch::kCPU);
  o.seed = 4;
  const auto c = generate_ids(*m, prompt, o, torch::kCPU);
  ASSERT_EQ(a.size(), 6u);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens);
    EXPECT_NEAR(a[i].logprob, forward_logprob(*m, prompt, a[i]), 1e-4);
    differs |= a[i].tokens != c[i].tokens;
    for (int32_t t : a[i].tokens) EXPECT_TRUE(t != kPadId && t != kBosId && t != kEosId) << t;
  }
  EXPECT_TRUE(differs) << "another seed gives other samples";
  const auto greedy = generate_ids(*m, prompt, options(1), torch::kCPU);
  GenerateOptions k1 = options(0), p0 = options(0);
  k1.top_k = 1, p0.top_p = 1e-6;
  EXPECT_EQ(generate_ids(*m, prompt, k1, torch::kCPU)[0].tokens, greedy[0].tokens);
  EXPECT_EQ(generate_ids(*m, prompt, p0, torch::kCPU)[0].tokens, greedy[0].tokens);
  EXPECT_NEAR(greedy[0].logprob, forward_logprob(*m, prompt, greedy[0]), 1e-4);
}

// top-k and top-p sample only inside their sets (the first token of 300 samples, against the step's distribution):
// top-3 hits exactly its 3 tokens, top-p 0.5 only tokens of the nucleus.
TEST(Generate, TopKAndTopPStayInTheirSets) {
  auto m = tiny_lm("lstm");
  DecoderState s;
  torch::Tensor lp;
  {
    torch::NoGradGuard ng;
    lp = m->step(torch::full({1}, int64_t{kBosId}), s)[0];  // (V)
  }
  lp.index_fill_(0, torch::tensor({int64_t{kPadId}, int64_t{kBosId}}), -std::numeric_limits<float>::infinity());
  lp = torch::log_softmax(lp, 0);  // the distribution sampled from: <pad> and <s> are never generated
  auto [sorted, order] = lp.sort(0, /*descending=*/true);
  std::set<int64_t> top3, nucleus;
  double mass = 0;
  for (int64_t i = 0; i < lp.size(0); ++i) {
    if (i < 3) top3.insert(order[i].item<int64_t>());
    if (mass < 0.5) nucleus.insert(order[i].item<int64_t>());
    mass += std::exp(sorted[i].item<double>());
  }
  GenerateOptions k = options(0, 300), p = options(0, 300);
  k.top_k = 3, k.max_len = 1, p.top_p = 0.5, p.max_len = 1;
  std::set<int64_t> seen_k, seen_p;
  for (const auto& g : generate_ids(*m, {}, k, torch::kCPU)) seen_k.insert(g.tokens.empty() ? kEosId : g.tokens[0]);
  for (const auto& g : generate_ids(*m, {}, p, torch::kCPU)) seen_p.insert(g.tokens.empty() ? kEosId : g.tokens[0]);
  EXPECT_EQ(seen_k, top3);
  EXPECT_GT(seen_p.size(), 3u);
  for (int64_t t : seen_p) EXPECT_TRUE(nucleus.count(t)) << t << " is outside the nucleus of " << nucleus.size();
}

// Beam search returns `num` sequences, best first, scored by their forward() log-probabilities, and its best is at
// least as likely as greedy's when both end.
TEST(Generate, BeamSearchIsScoredAndOrdered) {
  auto m = tiny_lm("gru");
  const std::vector<int32_t> prompt = {5};
  const auto beam = generate_ids(*m, prompt, options(6, 3), torch::kCPU);
  ASSERT_EQ(beam.size(), 3u);
  for (size_t i = 0; i < beam.size(); ++i) {
    EXPECT_NEAR(beam[i].logprob, forward_logprob(*m, prompt, beam[i]), 1e-4);
    if (i > 0 && beam[i].ended == beam[i - 1].ended) {
      EXPECT_LE(beam[i].logprob, beam[i - 1].logprob);
    }
  }
  const auto greedy = generate_ids(*m, prompt, options(1), torch::kCPU);
  if (beam[0].ended && greedy[0].ended) {
    EXPECT_GE(beam[0].logprob, greedy[0].logprob - 1e-9);
  }
}

TEST(Generate, BadOptionsAreConfigErrors) {
  auto bad = [](auto edit) {
    GenerateOptions o;
    edit(o);
    return test::error_of([&] { o.validate(); });
  };
  EXPECT_NE(bad([](auto& o) { o.temperature = 0; }).find("--temperature must be a finite number above 0 (got 0)"),
            std::string::npos);
  EXPECT_NE(bad([](auto& o) { o.top_p = 0; }).find("--top-p must be in (0, 1] (got 0)"), std::string::npos);
  EXPECT_NE(bad([](auto& o) { o.num = 0; }).find("--num must be in [1, 100000] (got 0)"), std::string::npos);
  EXPECT_NE(bad([](auto& o) { o.num = 1000000000; }).find("--num must be in [1, 100000]"), std::string::npos);
  EXPECT_NE(bad([](auto& o) { o.beam = 5000; }).find("a width up to 1000 (got 5000)"), std::string::npos);
  EXPECT_NE(bad([](auto& o) { o.beam = 2, o.num = 3; }).find("--num 3 is more than --beam 2"), std::string::npos);
  EXPECT_NE(bad([](auto& o) { o.max_len = 0; }).find("--max-len must be in [1, 100000] (got 0)"), std::string::npos);
}

}  // namespace tern
