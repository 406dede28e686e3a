#include <gtest/gtest.h>
#include <hdf5.h>

#include <fstream>

#include "core/hash.h"
#include "data/corpus.h"
#include "test_util.h"

namespace tern {

namespace {
VocabInfo fake_vocab(const std::string& side, int64_t size) {
  VocabInfo v{side, size, "", "model-bytes-" + side};
  v.hash = hex64(hash_string(v.model_proto));
  return v;
}

void write_small(const std::string& path, int n, int32_t max_id = 49) {
  CorpusWriter w(path, "parallel");
  w.set_vocab(fake_vocab("src", 50));
  w.set_vocab(fake_vocab("tgt", 50));
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> s, t;
    for (int k = 0; k <= i % 7; ++k) s.push_back(4 + (i + k) % 40), t.push_back(i == 77 ? max_id : 4 + i % 45);
    w.append(i % 5 == 0 ? "valid" : "train", {s, t});
  }
  w.close();
}
}  // namespace

TEST(Corpus, RoundTripAndRanges) {
  test::TempDir d;
  write_small(d.file("c.h5"), 200000);  // several chunks and flushes
  CorpusReader r(d.file("c.h5"));
  EXPECT_EQ(r.kind(), "parallel");
  EXPECT_EQ(r.num_sentences("train") + r.num_sentences("valid"), 200000);
  EXPECT_EQ(r.vocab("src").size, 50);
  // Sentence i of train is the i-th sentence with i % 5 != 0.
  TokenBlock b = r.read("train", "src", 1000, 1010);
  ASSERT_EQ(b.size(), 10u);
  int orig = 0, seen = -1;
  for (; orig < 200000; ++orig)
    if (orig % 5 != 0 && ++seen == 1000) break;
  EXPECT_EQ(b.length(0), orig % 7 + 1);
  EXPECT_EQ(b.sentence(0)[0], 4 + orig % 40);
  EXPECT_EQ(b.first_sentence, 1000);
  EXPECT_NE(test::error_of([&] { r.read("train", "src", 5, 3); }).find("outside split"), std::string::npos);
}

TEST(Corpus, RefusesToOverwrite) {
  test::TempDir d;
  write_small(d.file("c.h5"), 10);
  EXPECT_NE(test::error_of([&] { CorpusWriter w(d.file("c.h5"), "parallel"); }).find("cannot create"), std::string::npos);
  EXPECT_NO_THROW(CorpusReader(d.file("c.h5")));
}

TEST(Corpus, TokenIdOutsideVocabularyIsNamed) {
  test::TempDir d;
  write_small(d.file("c.h5"), 100, /*max_id=*/60);
  CorpusReader r(d.file("c.h5"));
  std::string e = test::error_of([&] { r.read("train", "tgt", 0, r.num_sentences("train")); });
  EXPECT_NE(e.find("token id"), std::string::npos) << e;
  EXPECT_NE(e.find("outside the vocabulary [0, 50)"), std::string::npos) << e;
  EXPECT_NE(e.find("at sentence"), std::string::npos) << e;
}

TEST(Corpus, MissingFileNotHdf5AndTruncated) {
  test::TempDir d;
  EXPECT_NE(test::error_of([&] { CorpusReader r(d.file("nope.h5")); }).find("does not exist"), std::string::npos);
  test::write_lines(d.file("text.h5"), {"hello"});
  EXPECT_NE(test::error_of([&] { CorpusReader r(d.file("text.h5")); }).find("not an HDF5 file"), std::string::npos);
  write_small(d.file("c.h5"), 20000);
  auto size = std::filesystem::file_size(d.file("c.h5"));
  std::filesystem::resize_file(d.file("c.h5"), size / 2);
  std::string e = test::error_of([&] {
    CorpusReader r(d.file("c.h5"));
    r.read("train", "src", 0, r.num_sentences("train"));
  });
  EXPECT_FALSE(e.empty());
}

TEST(Corpus, CorruptedChunkFailsChecksum) {
  test::TempDir d;
  write_small(d.file("c.h5"), 30000);
  // Flip bytes in the middle of the file, where token chunks live.
  {
    std::fstream f(d.file("c.h5"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(d.file("c.h5")) / 2));
    const char junk[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    f.write(junk, sizeof junk);
  }
  std::string e = test::error_of([&] {
    CorpusReader r(d.file("c.h5"));
    for (const char* split : {"train", "valid"})
      for (const char* side : {"src", "tgt"}) r.read(split, side, 0, r.num_sentences(split));
  });
  EXPECT_NE(e.find("corrupted"), std::string::npos) << e;
}

TEST(Corpus, WrongFormatVersionAndMissingDataset) {
  test::TempDir d;
  write_small(d.file("c.h5"), 10);
  {
    hid_t f = H5Fopen(d.file("c.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int64_t v = 99;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Fclose(f);
  }
  EXPECT_NE(test::error_of([&] { CorpusReader r(d.file("c.h5")); }).find("version 99 is not supported"), std::string::npos);
  write_small(d.file("m.h5"), 10);
  {
    hid_t f = H5Fopen(d.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "train/tgt/tokens", H5P_DEFAULT);
    H5Fclose(f);
  }
  CorpusReader r(d.file("m.h5"));
  std::string e = test::error_of([&] { r.read("train", "tgt", 0, 2); });
  EXPECT_NE(e.find("/train/tgt/tokens is missing"), std::string::npos) << e;
}

TEST(Corpus, WrongDtypeIsRefused) {
  test::TempDir d;
  write_small(d.file("c.h5"), 10);
  {
    hid_t f = H5Fopen(d.file("c.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "train/src/tokens", H5P_DEFAULT);
    hsize_t n = 100;
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t ds = H5Dcreate2(f, "train/src/tokens", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
  }
  CorpusReader r(d.file("c.h5"));
  EXPECT_NE(test::error_of([&] { r.read("train", "src", 0, 2); }).find("wrong dtype"), std::string::npos);
}

}  // namespace tern
