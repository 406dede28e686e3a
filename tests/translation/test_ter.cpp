#include <gtest/gtest.h>

#include "data/text.h"
#include "translation/ter.h"

namespace tern {

using Edits = std::pair<int64_t, int64_t>;

// Expected values from sacreBLEU 2.6.0 (sacrebleu.metrics.TER, lib_ter.translation_edit_rate).
TEST(Ter, EditsWithShifts) {
  // words as ids: "a b c d" against "c d a b": one shift of the block "c d" (or "a b"), nothing else
  EXPECT_EQ(translation_edit_rate({1, 2, 3, 4}, {3, 4, 1, 2}), Edits(1, 4));
  EXPECT_EQ(translation_edit_rate({1, 2, 3, 4}, {1, 2, 3, 4}), Edits(0, 4));
  EXPECT_EQ(translation_edit_rate({}, {1, 2}), Edits(2, 2));
  EXPECT_EQ(translation_edit_rate({1, 2}, {}), Edits(2, 0));
  // "p o n ... a" against "a b c ... p" (16 words reversed): sacreBLEU counts 15 edits
  std::vector<uint32_t> fwd, rev;
  for (uint32_t i = 1; i <= 16; ++i) fwd.push_back(i), rev.insert(rev.begin(), i);
  EXPECT_EQ(translation_edit_rate(rev, fwd).first, 15);
}

TEST(Ter, CorpusScoreAndSignature) {
  // sacrebleu.metrics.TER().corpus_score(["the cat sat on the mat", "a b c d"], [["The cat sat on a mat .", "c d a
  // b"]])
  auto t = corpus_ter({"the cat sat on the mat", "a b c d"}, {{"The cat sat on a mat .", "c d a b"}});
  EXPECT_NEAR(t.score, 100.0 * 3 / 11, 1e-12);  // 2 edits of 7 words, 1 of 4
  EXPECT_EQ(t.signature, "nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0");
  TerOptions cs;
  cs.case_sensitive = true;
  EXPECT_NEAR(corpus_ter({"the cat sat on the mat", "a b c d"}, {{"The cat sat on a mat .", "c d a b"}}, cs).score,
              100.0 * 4 / 11, 1e-12);
}

TEST(Ter, TercomTokenizer) {
  auto tok = [](const std::string& s, TerOptions o) { return utf8_encode(tercom_tokenize(utf8_decode(s), o)); };
  TerOptions norm;
  norm.normalized = true;
  EXPECT_EQ(tok("John's book, Mr. Smith's 3.5-4.", {}), "john's book, mr. smith's 3.5-4.");
  EXPECT_EQ(tok("John's book, Mr. Smith's 3.5-4.", norm), "john 's book , mr . smith 's 3.5 - 4 .");
  TerOptions punct;
  punct.no_punct = true;
  EXPECT_EQ(tok("Hello, (world)!  \"x\"", punct), "hello world x");
  TerOptions asian = norm;
  asian.asian_support = true;
  EXPECT_EQ(tok("日本語のテキスト。", asian), "日 本 語 のテキスト 。");
}

}  // namespace tern
