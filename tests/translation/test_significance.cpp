#include <gtest/gtest.h>

#include "translation/bleu.h"
#include "translation/chrf.h"
#include "translation/score.h"
#include "translation/significance.h"

namespace tern {

// Expected values printed by NumPy 2.4.6.
TEST(NumpyRng, DrawsAsNumpyDefaultRng) {
  NumpyRng raw(12345);  // np.random.default_rng(12345).bit_generator.random_raw(3)
  EXPECT_EQ(raw.next64(), 0x3a32b18db2ffc19dULL);
  EXPECT_EQ(raw.next64(), 0x51171315c9e4c4deULL);
  EXPECT_EQ(raw.next64(), 0xcc2024823444efd9ULL);

  auto row = NumpyRng(12345).choice(470, 1);  // default_rng(12345).choice(470, size=(1, 470))[0, :12]
  ASSERT_EQ(row.size(), 470U);
  EXPECT_EQ(std::vector<uint32_t>(row.begin(), row.begin() + 12),
            std::vector<uint32_t>({328, 106, 370, 148, 95, 374, 302, 317, 464, 183, 394, 156}));

  // default_rng(7).integers(2, size=40, dtype=bool), then .choice(3, size=(1, 3)) from the same generator: the
  // coins take 32 a draw, and the half-used 64-bit draw carries over to the next call.
  NumpyRng g(7);
  auto coins = g.coins(40);
  EXPECT_EQ(std::vector<int>(coins.begin(), coins.end()),
            std::vector<int>({1, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0,
                              0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 1}));
  EXPECT_EQ(g.choice(3, 1), std::vector<uint32_t>({2, 2, 1}));
}

TEST(NumpyRng, WideSeed) {
  auto first = NumpyRng((1ULL << 40) + 3).choice(100000, 1);  // default_rng(2**40 + 3).choice(100000, size=(1, 6))
  EXPECT_EQ(std::vector<uint32_t>(first.begin(), first.begin() + 6),
            std::vector<uint32_t>({73316, 77365, 44467, 99585, 38064, 47317}));
}

TEST(NumpySum, PairwiseInTheArraysPrecision) {
  // np.sum(np.arange(1, 301, dtype=np.float32) / np.float32(7)) is 6450.0 in float32, 6450.000000074506 in float64.
  std::vector<NpFloat> f32, f64;
  for (int i = 1; i <= 300; ++i) {
    float v = static_cast<float>(i) / 7.0F;
    f32.emplace_back(v, true);
    f64.emplace_back(static_cast<double>(v));
  }
  EXPECT_EQ(numpy_sum(f32).v, 6450.0);
  EXPECT_TRUE(numpy_sum(f32).f32);
  EXPECT_EQ(numpy_sum(f64).v, 6450.000000074506);
}

TEST(NpFloat, PythonNumbersJoinFloat32AsFloat32) {
  NpFloat third = NpFloat(1.0, true) / NpFloat(3);  // np.float32(1) / 3
  EXPECT_TRUE(third.f32);
  EXPECT_EQ(third.v, static_cast<double>(1.0F / 3.0F));
  EXPECT_EQ((NpFloat(1.0) / NpFloat(3)).v, 1.0 / 3.0);  // Python floats stay float64
}

TEST(Significance, StatisticsSumToTheCorpusScores) {
  std::vector<std::string> hyps{"the cat sat on a mat", "a dog", "", "hello world"};
  std::vector<std::vector<std::string>> refs{{"the cat sat on the mat", "the dog", "nothing", "hello world !"}};
  auto segments = bleu_statistics(hyps, refs, {});
  ASSERT_EQ(segments.size(), 4U);
  std::vector<int64_t> sum(segments[0].size(), 0);
  for (const auto& s : segments)
    for (size_t j = 0; j < s.size(); ++j) sum[j] += s[j];
  std::vector<NpFloat> as_np(sum.begin(), sum.end());
  EXPECT_EQ(bleu_score_of(as_np, {}), corpus_bleu(hyps, refs).score);
  auto chrf = chrf_statistics(hyps, refs, {});
  std::vector<int64_t> csum(chrf[0].size(), 0);
  for (const auto& s : chrf)
    for (size_t j = 0; j < s.size(); ++j) csum[j] += s[j];
  EXPECT_EQ(chrf_score_of({csum.begin(), csum.end()}, {}).v, corpus_chrf(hyps, refs).score);
}

MetricStatistics bleu_of(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs) {
  return metric_statistics("bleu", hyps, refs, {});
}

TEST(Significance, PairedTests) {
  std::vector<std::vector<std::string>> refs{{"the cat sat on the mat", "the dog barks", "x y", "hello world !",
                                              "one two three four", "a b c d e", "red green blue", "up and down"}};
  std::vector<std::string> base{"the cat sat on a mat", "a dog barks", "x y z",     "hello world",
                                "one two three",        "a b c d",     "red green", "up down"};
  std::vector<std::string> close = base, far = base;
  close[1] = "the dog barks";  // one line better (sacreBLEU 2.6.0 -pbsn 200: p = 0.1692; -parn 200: p = 0.0050)
  for (auto& l : far) l = "nothing of the sort";
  for (auto test : {PairedTest::kBootstrap, PairedTest::kRandomization}) {
    auto r = paired_test({{bleu_of(base, refs)}, {bleu_of(close, refs)}, {bleu_of(far, refs)}, {bleu_of(base, refs)}},
                         test, 200, 12345);
    ASSERT_EQ(r.size(), 4U);
    EXPECT_FALSE(r[0][0].p_value.has_value());
    if (test == PairedTest::kBootstrap) {
      EXPECT_GT(*r[1][0].p_value, 0.05) << "one line of eight is no significant difference";
    } else {
      // With one line differing, every trial's |a - b| equals the real difference, and none exceeds it.
      EXPECT_EQ(*r[1][0].p_value, 1.0 / 201);
    }
    EXPECT_LT(*r[2][0].p_value, 0.05);
    // sacreBLEU's rule, reproduced: no resample of an identical system differs, so none exceeds the real difference
    // (0) and p = 1 / (trials + 1), reported as significant (score_report warns about it).
    EXPECT_EQ(*r[3][0].p_value, 1.0 / 201);
    EXPECT_EQ(r[3][0].score, r[0][0].score);
    EXPECT_EQ(r[1][0].mean.has_value(), test == PairedTest::kBootstrap);
  }
  auto c = bootstrap_confidence(bleu_of(base, refs), 100, 12345);
  EXPECT_GT(c.mean.v, 0);
  EXPECT_GT(c.half_width.v, 0);
}

}  // namespace tern
