#include <gtest/gtest.h>

#include <fstream>

#include "core/errors.h"
#include "data/embeddings.h"
#include "data/text.h"
#include "test_util.h"

namespace tern {
namespace {

const std::vector<std::string> kPieces = {"<pad>", "<unk>", "<s>", "</s>", "▁the", "▁king", "s", "."};

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

PretrainedVectors read(const std::string& path, int64_t dim = 2) {
  return read_pretrained_vectors(path, "train.src_embeddings", kPieces, dim, "the source vocabulary of c.h5");
}

// The DataError message reading `text` throws ("" when it reads).
std::string refusal(const test::TempDir& d, const std::string& text, int64_t dim = 2) {
  write_text(d.file("v.vec"), text);
  try {
    read(d.file("v.vec"), dim);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PretrainedVectors, ReadsWord2vecTextWithItsHeader) {
  test::TempDir d;
  // word2vec writes a space after the last value; tokens outside the vocabulary are skipped.
  write_text(d.file("v.vec"), "3 2\n▁the 0.5 -1.25 \nqueen 9 9\n. 1e-3 2\n");
  const PretrainedVectors v = read(d.file("v.vec"));
  EXPECT_EQ(v.vectors, 3);
  EXPECT_EQ(v.found_count, 2);
  EXPECT_EQ(v.first_line, 2);
  ASSERT_EQ(v.values.size(), kPieces.size() * 2);
  EXPECT_EQ(v.found, (std::vector<uint8_t>{0, 0, 0, 0, 1, 0, 0, 1}));
  EXPECT_FLOAT_EQ(v.values[4 * 2], 0.5F);
  EXPECT_FLOAT_EQ(v.values[4 * 2 + 1], -1.25F);
  EXPECT_FLOAT_EQ(v.values[7 * 2], 1e-3F);
  EXPECT_EQ(v.values[5 * 2], 0.0F);  // not in the file: zeros (the caller keeps its own start there)
}

TEST(PretrainedVectors, ReadsGloveWithoutHeaderAndGzip) {
  test::TempDir d;
  const std::string text = "▁king 1 2\n\ns\t3\t4\r\n<pad> 7 7\n";  // blank lines, tabs and CRLF; padding never set
  write_text(d.file("v.txt"), text);
  write_text(d.file("v.txt.gz"), gzip_compress(text));
  for (const auto& name : {"v.txt", "v.txt.gz"}) {
    const PretrainedVectors v = read(d.file(name));
    EXPECT_EQ(v.vectors, 3) << name;
    EXPECT_EQ(v.found_count, 2) << name;
    EXPECT_EQ(v.first_line, 1) << name;
    EXPECT_EQ(v.found[0], 0) << name;
    EXPECT_EQ(v.values[0], 0.0F) << name;
    EXPECT_FLOAT_EQ(v.values[6 * 2 + 1], 4.0F) << name;
  }
}

TEST(PretrainedVectors, RefusesWhatItCannotUseNamingFileLineAndToken) {
  test::TempDir d;
  const std::string f = d.file("v.vec");
  struct Case {
    std::string text, needle;
    int64_t dim = 2;
  };
  const std::vector<Case> cases = {
      {"3 4\n▁the 1 2\n", f + ": its header says vectors of 4 values, but model.embedding is 2"},
      {"▁the 1 2\n▁king 1 2 3\n", f + ":2: token '▁king' has 3 values, but model.embedding is 2"},
      {"▁the 1\n", f + ":1: token '▁the' has 1 values"},
      {"▁the 1 nan\n", f + ":1: value 2 of token '▁the' is not a finite number: 'nan'"},
      {"▁the inf 1\n", "value 1 of token '▁the' is not a finite number: 'inf'"},
      {"▁the 1 2x\n", "is not a finite number: '2x'"},
      {"▁the 1e99 1\n", "is not a finite number: '1e99'"},  // beyond float
      {"▁the 1 2\ns 0 0\n▁the 3 4\n", f + ":3: piece '▁the' has a vector already, at line 1"},
      {"5 2\n▁the 1 2\n. 3 4\n", f + ": its header says 5 vectors, but it has 2 (a truncated file?)"},
      {"", f + ": has no vectors"},
      {"\n\n", f + ": has no vectors"},
      {"2 2\n", f + ": its header says 2 vectors, but it has 0"},
      {"the 1 2\nking 3 4\n",
       f + ": none of its 2 tokens is a piece of the source vocabulary of c.h5 (its first token is 'the'"},
      {std::string("2 2\n\x00\x00\x80?", 9), f + ":2: is not text (word2vec's binary format?)"},
      {"▁the 1 2\n\xff 1 2\n", f + ":2: is not text"},
  };
  for (const auto& c : cases) {
    const std::string msg = refusal(d, c.text, c.dim);
    EXPECT_NE(msg.find(c.needle), std::string::npos) << "input " << c.text << "\nmessage: " << msg;
    EXPECT_NE(msg.find("train.src_embeddings"), std::string::npos) << msg;
  }
  EXPECT_EQ(refusal(d, "▁the 1 2\n"), "");
  EXPECT_EQ(refusal(d, "▁the 1 2\nqueen 1 1\nqueen 2 2\n"), "");  // a repeated token of no piece does not matter
  // A missing file is a DataError naming the key and the path.
  const std::string missing = test::error_of([&] { read(d.file("none.vec")); });
  EXPECT_NE(missing.find("none.vec"), std::string::npos) << missing;
  EXPECT_THROW(read(d.file("none.vec")), DataError);
}

}  // namespace tern
