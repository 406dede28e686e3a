#include <gtest/gtest.h>

#include "translation/bleu.h"

namespace tern {

// Expected strings produced by sacrebleu 2.6.0's Tokenizer13a.
TEST(Tokenize13a, MatchesSacreBleu) {
  EXPECT_EQ(tokenize_13a("Hello, world!"), "Hello , world !");
  EXPECT_EQ(tokenize_13a("It costs $3.14, or 1,000 pesos."), "It costs $ 3.14 , or 1,000 pesos .");
  EXPECT_EQ(tokenize_13a("pages 5-6 and well-known"), "pages 5 - 6 and well-known");
  EXPECT_EQ(tokenize_13a("&quot;quoted&quot; &amp; <skipped>"), "\" quoted \" &");
  EXPECT_EQ(tokenize_13a("¡CÓMO está sentada!"), "¡CÓMO está sentada !");
  EXPECT_EQ(tokenize_13a(""), "");
}

TEST(Bleu, PerfectAndEmpty) {
  auto b = corpus_bleu({"the cat sat on the mat ."}, {{"the cat sat on the mat ."}});
  EXPECT_NEAR(b.score, 100.0, 1e-9);
  EXPECT_EQ(b.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  auto e = corpus_bleu({""}, {{"something"}});
  EXPECT_EQ(e.score, 0.0);
  EXPECT_EQ(e.sys_len, 0);
}

TEST(Bleu, MismatchedReferenceCountIsAnError) { EXPECT_THROW(corpus_bleu({"a", "b"}, {{"a"}}), std::exception); }

}  // namespace tern
