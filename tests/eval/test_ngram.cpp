#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "core/errors.h"
#include "eval/ngram.h"
#include "test_util.h"

namespace tern {
namespace {

Sentences split(const std::vector<std::string>& lines) {
  Sentences out;
  for (const auto& l : lines) {
    auto& s = out.emplace_back();
    std::istringstream in(l);
    std::string w;
    while (in >> w) s.push_back(w);
  }
  return out;
}

// Text built like language: sentences of 1-4 fragments drawn Zipf-like from 800 fragments of 1-4 words, themselves
// drawn Zipf-like from 1000 words. Its n-grams repeat with falling counts of counts, as Kneser-Ney's discounts need.
Sentences zipf_text(int n, int seed) {
  std::mt19937 rng(seed);
  auto zipf = [](int size) {
    std::vector<double> w;
    for (int i = 1; i <= size; ++i) w.push_back(1.0 / i);
    return std::discrete_distribution<int>(w.begin(), w.end());
  };
  auto word = zipf(1000), fragment = zipf(800);
  std::uniform_int_distribution<int> count(1, 4);
  std::vector<std::vector<std::string>> fragments(800);
  for (auto& f : fragments)
    for (int k = count(rng); k > 0; --k) f.push_back("w" + std::to_string(word(rng)));
  Sentences out(n);
  for (auto& s : out)
    for (int k = count(rng); k > 0; --k) {
      const auto& f = fragments[fragment(rng)];
      s.insert(s.end(), f.begin(), f.end());
    }
  return out;
}

// p(. | history) summed over every word that can follow (all ids but <s>).
double total_probability(const NgramModel& m, const std::vector<int32_t>& history) {
  double sum = 0;
  for (int32_t w = 0; w < m.vocab_size(); ++w)
    if (w != NgramModel::kBos) sum += std::pow(10.0, m.log10_prob(history, w));
  return sum;
}

}  // namespace

TEST(Ngram, LaplaceBigramByHand) {
  NgramOptions o;
  o.order = 2;
  o.smoothing = "laplace";
  auto m = NgramModel::train(split({"a b", "a a b"}), o);
  // Vocabulary without <s>: <unk> </s> a b (4). c(<s> a) = 2 of c(<s> .) = 2; c(a b) = 2 of c(a .) = 3.
  const int32_t a = m.word_id("a"), b = m.word_id("b");
  EXPECT_NEAR(std::pow(10.0, m.log10_prob({NgramModel::kBos}, a)), 3.0 / 6.0, 1e-12);
  EXPECT_NEAR(std::pow(10.0, m.log10_prob({NgramModel::kBos, a}, b)), 3.0 / 7.0, 1e-12);
  EXPECT_NEAR(std::pow(10.0, m.log10_prob({b}, b)), 1.0 / 6.0, 1e-12);  // c(b .) = 2, c(b b) = 0
  EXPECT_EQ(m.word_id("zebra"), NgramModel::kUnk);
}

TEST(Ngram, EverySmoothingSumsToOne) {
  Sentences text = zipf_text(400, 1);
  for (std::string smoothing : {"laplace", "add-k", "interpolated", "katz", "kneser-ney"})
    for (int order = 1; order <= 4; ++order) {
      NgramOptions o;
      o.order = order;
      o.smoothing = smoothing;
      auto m = NgramModel::train(text, o);
      const int32_t w0 = m.word_id("w0"), w1 = m.word_id("w1"), w7 = m.word_id("w7");
      for (const auto& h : std::vector<std::vector<int32_t>>{
               {NgramModel::kBos}, {NgramModel::kBos, w0}, {w0, w1, w7}, {w7, NgramModel::kUnk}, {w1, w1, w1, w1}})
        EXPECT_NEAR(total_probability(m, h), 1.0, 1e-6) << smoothing << " order " << order;
    }
}

// Character models: words become characters with "▁" between them (pieces are only split), and every smoothing still
// gives a distribution over the characters that sums to 1.
TEST(Ngram, CharacterModelsSumToOne) {
  const Sentences chars = to_characters(split({"ab c", "c"}));
  EXPECT_EQ(chars, (Sentences{{"a", "b", "\xe2\x96\x81", "c"}, {"c"}}));
  EXPECT_EQ(to_characters({{"\xe2\x96\x81"
                            "d\xc3\xa9",
                            "f"}},
                          /*pieces=*/true),
            (Sentences{{"\xe2\x96\x81", "d", "\xc3\xa9", "f"}}));
  // Words of letters drawn Zipf-like from 300 (a-z, then U+011A...), so that rare letters have few contexts.
  std::mt19937 rng(2);
  std::vector<double> weights;
  for (int i = 1; i <= 300; ++i) weights.push_back(1.0 / i);
  std::discrete_distribution<int> letter(weights.begin(), weights.end());
  Sentences words(400);
  for (auto& s : words)
    for (int k = 2 + static_cast<int>(rng() % 6); k > 0; --k) {
      std::string w;
      for (int c = 1 + static_cast<int>(rng() % 6); c > 0; --c) {
        const int l = letter(rng);
        const int cp = 0x100 + l;  // two UTF-8 bytes
        w += l < 26 ? std::string(1, static_cast<char>('a' + l))
                    : std::string{static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
      }
      s.push_back(w);
    }
  const Sentences text = to_characters(words);
  for (std::string smoothing : {"add-k", "interpolated", "katz", "kneser-ney"})
    for (int order = 1; order <= 5; ++order) {
      NgramOptions o;
      o.order = order;
      o.smoothing = smoothing;
      auto m = NgramModel::train(text, o);
      const int32_t a = m.word_id("a"), sp = m.word_id("\xe2\x96\x81"), rare = m.word_id("\xc4\x9a");  // U+011A
      ASSERT_NE(rare, NgramModel::kUnk);
      for (const auto& h : std::vector<std::vector<int32_t>>{
               {NgramModel::kBos}, {NgramModel::kBos, a}, {a, rare, sp}, {a, a, a, a}, {sp, NgramModel::kUnk}})
        EXPECT_NEAR(total_probability(m, h), 1.0, 1e-6) << smoothing << " order " << order;
    }
}

// Without singletons or doubletons the closed-form Kneser-Ney discounts do not exist: an error that says what to do,
// or, with discount_fallback, KenLM's 0.5, 1, 1.5 for that order and still a distribution.
TEST(Ngram, KneserNeyDiscountFallback) {
  const Sentences text = split({"a b a b", "a b a b", "b a b a", "a a b b"});
  NgramOptions o;
  o.order = 2;
  EXPECT_NE(test::error_of([&] { NgramModel::train(text, o); }).find("pass --discount-fallback"), std::string::npos);
  o.discount_fallback = true;
  auto m = NgramModel::train(text, o);
  EXPECT_EQ(m.discounts()[0], (std::array<double, 4>{0, 0.5, 1.0, 1.5}));
  for (const auto& h : std::vector<std::vector<int32_t>>{{NgramModel::kBos}, {m.word_id("a")}, {m.word_id("b")}})
    EXPECT_NEAR(total_probability(m, h), 1.0, 1e-6);
}

TEST(Ngram, PerplexityConventions) {
  NgramOptions o;
  o.order = 2;
  auto m = NgramModel::train(zipf_text(400, 2), o);
  std::vector<double> per_sentence;
  auto r = m.evaluate(split({"w0 w1 unseenword", "w2"}), &per_sentence);
  EXPECT_EQ(r.sentences, 2);
  EXPECT_EQ(r.tokens, 4 + 2);  // words + one </s> each
  EXPECT_EQ(r.oovs, 1);
  ASSERT_EQ(per_sentence.size(), 2u);
  EXPECT_NEAR(per_sentence[0] + per_sentence[1], r.log10_prob, 1e-9);
  EXPECT_LT(r.log10_prob_oov, 0);
  EXPECT_NEAR(r.ppl(), std::pow(2.0, r.bits_per_token()), 1e-9 * r.ppl());
  EXPECT_LT(r.ppl_excluding_oov(), r.ppl());  // the OOV is the least likely token here
}

TEST(Ngram, InterpolatedWeightsAreTunedProbabilities) {
  NgramOptions o;
  o.order = 3;
  o.smoothing = "interpolated";
  auto m = NgramModel::train(zipf_text(500, 3), o, zipf_text(100, 4));
  ASSERT_EQ(m.lambdas().size(), 3u);
  for (double l : m.lambdas()) {
    EXPECT_GT(l, 0.0);
    EXPECT_LT(l, 1.0);
  }
  // Tuned weights beat fixed ones on the held-out text they were tuned on.
  auto tuned = m.evaluate(zipf_text(100, 4)).ppl();
  o.em_iterations = 1;
  auto rough = NgramModel::train(zipf_text(500, 3), o, zipf_text(100, 4)).evaluate(zipf_text(100, 4)).ppl();
  EXPECT_LT(tuned, rough);
}

TEST(Ngram, KneserNeyDiscountsFromCountsOfCounts) {
  NgramOptions o;
  o.order = 2;
  auto m = NgramModel::train(zipf_text(400, 5), o);
  for (const auto& d : m.discounts()) {
    EXPECT_EQ(d[0], 0.0);
    for (int j = 1; j <= 3; ++j) {
      EXPECT_GT(d[j], 0.0);
      EXPECT_LE(d[j], j);
    }
  }
  // Too little text for counts of counts is an error that says what to do.
  std::string msg = test::error_of([&] { NgramModel::train(split({"a b c"}), o); });
  EXPECT_NE(msg.find("cannot estimate Kneser-Ney discounts for 1-grams"), std::string::npos) << msg;
}

TEST(Ngram, ArpaFormAndItsLimits) {
  NgramOptions o;
  o.order = 2;
  auto kn = NgramModel::train(zipf_text(300, 6), o);
  std::string arpa = kn.arpa();
  EXPECT_EQ(arpa.rfind("\\data\\\nngram 1=", 0), 0u);
  EXPECT_NE(arpa.find("\n0\t<s>\t"), std::string::npos);  // KenLM writes p(<s>) = 1
  EXPECT_NE(arpa.find("\\2-grams:"), std::string::npos);
  EXPECT_NE(arpa.find("\\end\\"), std::string::npos);
  o.smoothing = "add-k";
  auto addk = NgramModel::train(zipf_text(300, 6), o);
  std::string msg = test::error_of([&] { addk.arpa(); });
  EXPECT_NE(msg.find("ARPA cannot represent add-k smoothing above order 1"), std::string::npos) << msg;
  o.order = 1;
  EXPECT_NO_THROW(NgramModel::train(zipf_text(300, 6), o).arpa());
}

// Katz: the Good-Turing coefficients come from the counts of counts of each order by SRILM's formula, a seen n-gram
// gets d_c c / c(h), and the rest of a context's mass is backed off so that it still sums to one.
TEST(Ngram, KatzGoodTuringByHand) {
  const Sentences text = zipf_text(600, 3);
  NgramOptions o;
  o.order = 2;
  o.smoothing = "katz";
  auto m = NgramModel::train(text, o);
  std::map<std::pair<std::string, std::string>, int64_t> bigrams;
  std::map<std::string, int64_t> context;
  for (const auto& s : text) {
    std::vector<std::string> w = {"<s>"};
    w.insert(w.end(), s.begin(), s.end());
    w.push_back("</s>");
    for (size_t i = 1; i < w.size(); ++i) ++bigrams[{w[i - 1], w[i]}], ++context[w[i - 1]];
  }
  std::vector<double> n(10, 0);
  for (const auto& [g, c] : bigrams)
    if (c < 10) ++n[c];
  const int k = o.katz_max_count;
  const double common = (k + 1) * n[k + 1] / n[1];
  for (int r = 1; r <= k; ++r) {
    const double c0 = (r + 1) * n[r + 1] / (r * n[r]);
    double d = (c0 - common) / (1 - common);
    if (!(d > 1e-10 && d <= 1 && c0 <= 1)) d = 1;
    EXPECT_NEAR(m.katz_discounts()[1][r], d, 1e-12) << "r = " << r;
  }
  int checked = 0;
  for (const auto& [g, c] : bigrams) {
    if (g.first == "<s>" || g.second == "</s>" || (c != 1 && c != 3 && c != 20)) continue;
    const double expect = (c <= k ? m.katz_discounts()[1][c] : 1.0) * c / context[g.first];
    EXPECT_NEAR(std::pow(10.0, m.log10_prob({m.word_id(g.first)}, m.word_id(g.second))), expect, 1e-9);
    ++checked;
  }
  EXPECT_GT(checked, 20);
  EXPECT_NEAR(total_probability(m, {m.word_id("w3")}), 1.0, 1e-9);
}

// Count cutoffs keep an n-gram of the highest order only when it was seen often enough; lower orders also keep what
// longer n-grams need (prefixes and suffixes). Pruning by relative entropy removes more as the threshold rises and
// costs little perplexity. Every model still sums to one in every context.
TEST(Ngram, CutoffsAndPruningKeepDistributions) {
  const Sentences text = zipf_text(800, 4), test = zipf_text(200, 5);
  std::map<std::vector<std::string>, int64_t> trigrams;
  for (const auto& s : text) {
    std::vector<std::string> w = {"<s>"};
    w.insert(w.end(), s.begin(), s.end());
    w.push_back("</s>");
    for (size_t i = 2; i < w.size(); ++i) ++trigrams[{w[i - 2], w[i - 1], w[i]}];
  }
  int64_t at_least_3 = 0;
  for (const auto& [g, c] : trigrams) at_least_3 += c >= 3;
  for (std::string smoothing : {"interpolated", "katz", "kneser-ney"}) {
    NgramOptions o;
    o.order = 3;
    o.smoothing = smoothing;
    const auto full = NgramModel::train(text, o);
    o.cutoffs = {1, 2, 3};
    const auto cut = NgramModel::train(text, o);
    EXPECT_EQ(cut.ngram_counts()[2], at_least_3) << smoothing;
    EXPECT_LT(cut.ngram_counts()[1], full.ngram_counts()[1]) << smoothing;
    EXPECT_EQ(cut.pruned(),
              full.ngram_counts()[1] + full.ngram_counts()[2] - cut.ngram_counts()[1] - cut.ngram_counts()[2]);
    o.cutoffs.clear();
    int64_t last = full.ngram_counts()[1] + full.ngram_counts()[2];
    double last_ppl = full.evaluate(text).ppl();  // pruning trades training-set perplexity for size
    for (double threshold : {1e-6, 1e-5, 1e-4}) {
      o.prune = threshold;
      const auto pruned = NgramModel::train(text, o);
      const int64_t kept = pruned.ngram_counts()[1] + pruned.ngram_counts()[2];
      const double ppl = pruned.evaluate(text).ppl();
      EXPECT_LE(kept, last) << smoothing << " prune " << threshold;
      EXPECT_GE(ppl, last_ppl * 0.999) << smoothing << " prune " << threshold;
      EXPECT_LT(pruned.evaluate(test).ppl(), full.evaluate(test).ppl() * 1.1) << smoothing << " prune " << threshold;
      last = kept, last_ppl = ppl;
      const int32_t w0 = pruned.word_id("w0"), w1 = pruned.word_id("w1");
      for (const auto& model : {&cut, &pruned})
        for (const auto& h : std::vector<std::vector<int32_t>>{{NgramModel::kBos}, {NgramModel::kBos, w0}, {w0, w1}})
          EXPECT_NEAR(total_probability(*model, h), 1.0, 1e-6) << smoothing << " prune " << threshold;
    }
    EXPECT_LT(last, (full.ngram_counts()[1] + full.ngram_counts()[2]) * 3 / 4) << smoothing;
  }
}

TEST(Ngram, OptionsAreValidated) {
  NgramOptions o;
  o.order = 6;
  EXPECT_EQ(test::error_of([&] { o.validate(); }), "ngram order must be between 1 and 5 (got 6)");
  o.order = 3;
  o.smoothing = "witten-bell";
  EXPECT_NE(test::error_of([&] { o.validate(); }).find("(got witten-bell)"), std::string::npos);
  o.smoothing = "add-k";
  o.add_k = 0;
  EXPECT_EQ(test::error_of([&] { o.validate(); }), "ngram add-k constant must be > 0 (got 0)");
  EXPECT_NE(test::error_of([] { NgramModel::train({}, NgramOptions{}); }).find("no sentences"), std::string::npos);
  o = NgramOptions{};
  o.cutoffs = {2, 2};
  EXPECT_NE(test::error_of([&] { o.validate(); }).find("the unigram minimum must be 1 (got 2)"), std::string::npos);
  o.cutoffs = {1, 0};
  EXPECT_NE(test::error_of([&] { o.validate(); }).find("order 2 must be >= 1 (got 0)"), std::string::npos);
  o.cutoffs = {1, 1, 1, 1, 1, 1};
  EXPECT_NE(test::error_of([&] { o.validate(); }).find("gives 6 minimum counts"), std::string::npos);
  o.cutoffs = {1, 2};
  o.smoothing = "add-k";
  EXPECT_NE(test::error_of([&] { o.validate(); }).find("need a backoff model"), std::string::npos);
  o = NgramOptions{};
  o.prune = -1;
  EXPECT_NE(test::error_of([&] { o.validate(); }).find("--prune threshold must be in [0, 1] (got -1"),
            std::string::npos);
  EXPECT_EQ(parse_cutoffs("1,1,2"), (std::vector<int64_t>{1, 1, 2}));
  for (const char* bad : {"", "1,,2", "1,x", "1,2,", "1.5"})
    EXPECT_NE(test::error_of([&] { parse_cutoffs(bad); }).find("is not a whole number"), std::string::npos) << bad;
}

}  // namespace tern
