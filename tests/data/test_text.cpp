#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/errors.h"

#include "data/text.h"
#include "test_util.h"

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

// The words squeeze_spaces keeps apart (ASCII whitespace only: a no-break space is part of a word), as an istream's
// >> reads them: evaluate's per-word perplexity and prepare --train-align's word numbers.
TEST(Text, CountWords) {
  EXPECT_EQ(count_words("  a \t b  c \r\n"), 3);
  EXPECT_EQ(count_words("   "), 0);
  EXPECT_EQ(count_words(""), 0);
  EXPECT_EQ(count_words("a\xc2\xa0"
                        "b c"),
            2);
  EXPECT_EQ(count_words(squeeze_spaces(" x\vy\fz ")), 3);
}

namespace {
std::string write_bytes(const test::TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}
}  // namespace

// Text inputs may be gzip-compressed: the same lines as the plain file; a damaged stream is an error, never less text.
TEST(Text, GzipInputsReadAsTheirText) {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "línea " + std::to_string(i) + " ¿qué?\n";  // beyond one 64 KiB buffer
  const std::string plain = write_bytes(dir, "tern_text_plain.txt", text);
  const std::string gz = write_bytes(dir, "tern_text_lines.gz", gzip_compress(text));
  const auto lines = read_utf8_file(plain, "test file");
  ASSERT_EQ(lines.size(), 20000u);
  EXPECT_EQ(read_utf8_file(gz, "test file"), lines);
  EXPECT_EQ(lines[12345], "línea 12345 ¿qué?");
  const std::string bytes = gzip_compress(text);
  const std::string cut = write_bytes(dir, "tern_text_cut.gz", bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(
      test::error_of([&] { read_utf8_file(cut, "test file"); }).find("tern_text_cut.gz: the gzip data is truncated"),
      std::string::npos);
  std::string bad = bytes;
  for (size_t i = 20; i < 40; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
  EXPECT_THROW(read_utf8_file(write_bytes(dir, "tern_text_bad.gz", bad), "test file"), DataError);
  // write_text_file compresses an output named .gz, the same bytes each time; it reads back as its text.
  write_text_file(dir.file("out.txt.gz"), text);
  EXPECT_EQ(read_utf8_file(dir.file("out.txt.gz"), "test file"), lines);
  EXPECT_LT(std::filesystem::file_size(dir.file("out.txt.gz")), text.size() / 4);
  EXPECT_EQ(gzip_compress(text), gzip_compress(text));
  // Fed in small pieces (as a text over zlib's 4 GiB counters is), the stream decompresses to the same text.
  EXPECT_EQ(read_utf8_file(write_bytes(dir, "chunks.gz", gzip_compress(text, 1000)), "test file"), lines);
  // TextWriter streams the same bytes as gzip_compress, written 1 MiB of text at a time (here ~30 times over).
  std::string many;
  for (int i = 0; i < 30; ++i) many += text;
  {
    TextWriter w(dir.file("stream.gz"));
    for (int i = 0; i < 30; ++i) w << text;
    EXPECT_FALSE(std::filesystem::exists(dir.file("stream.gz")));  // until commit()
    w.commit();
  }
  std::ifstream in(dir.file("stream.gz"), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), gzip_compress(many));
  write_text_file(dir.file("out.txt"), "a\n");
  EXPECT_EQ(std::filesystem::file_size(dir.file("out.txt")), 2u);
  // A plain file named .gz reads as plain text.
  EXPECT_EQ(read_utf8_file(write_bytes(dir, "tern_text_plain.gz", "a\nb\n"), "test file"),
            (std::vector<std::string>{"a", "b"}));
}

}  // namespace tern
