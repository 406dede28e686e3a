#include <gtest/gtest.h>

#include "data/text.h"

namespace tern {

TEST(Text, ValidUtf8IsAccepted) {
  EXPECT_EQ(invalid_utf8_at("plain ascii"), -1);
  EXPECT_EQ(invalid_utf8_at("¡CÓMO está! 日本語 😀"), -1);
}

TEST(Text, InvalidUtf8IsLocated) {
  EXPECT_EQ(invalid_utf8_at(std::string("ab\xff", 3)), 2);
  EXPECT_EQ(invalid_utf8_at(std::string("a\xc3", 2)), 1);          // truncated sequence
  EXPECT_EQ(invalid_utf8_at(std::string("\xc0\xaf", 2)), 0);       // overlong '/'
  EXPECT_EQ(invalid_utf8_at(std::string("x\xed\xa0\x80", 4)), 1);  // surrogate
}

TEST(Text, DecodeEncodeRoundTrip) {
  std::string s = "Génesis 1:1 — ¿qué? 😀";
  EXPECT_EQ(utf8_encode(utf8_decode(s)), s);
  EXPECT_EQ(utf8_decode("é").size(), 1u);
}

TEST(Text, SqueezeSpaces) {
  EXPECT_EQ(squeeze_spaces("  a \t b  c \r"), "a b c");
  EXPECT_EQ(squeeze_spaces("   "), "");
}

}  // namespace tern
