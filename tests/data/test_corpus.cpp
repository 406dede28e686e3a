#include <gtest/gtest.h>
#include <hdf5.h>

#include <fstream>
#include <map>
#include <random>

#include "core/hash.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "test_util.h"

namespace tern {

namespace {
// A real SentencePiece model of exactly `size` pieces (the reader checks the model against vocab_size).
const std::string& small_model(int64_t size) {
  static std::map<int64_t, std::string> models;
  auto it = models.find(size);
  if (it != models.end()) return it->second;
  TokenizerTrainOptions o;
  o.vocab_size = static_cast<int>(size);
  std::mt19937 rng(7);
  int64_t lines = 0;
  std::string proto = Tokenizer::train(o, [&](std::string& line) {
    if (++lines > 3000) return false;
    line.clear();
    for (int w = 0; w < 8; ++w) {
      for (int c = 0; c < 2 + static_cast<int>(rng() % 6); ++c) line += static_cast<char>('a' + rng() % 26);
      line += ' ';
    }
    return true;
  });
  EXPECT_EQ(Tokenizer(proto, "test").vocab_size(), size);
  return models.emplace(size, proto).first->second;
}

VocabInfo fake_vocab(const std::string& side, int64_t size) {
  VocabInfo v{side, size, "", small_model(size)};
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
  EXPECT_NE(test::error_of([&] { CorpusWriter w(d.file("c.h5"), "parallel"); }).find("cannot create"),
            std::string::npos);
  EXPECT_NO_THROW(CorpusReader(d.file("c.h5")));
}

TEST(Corpus, TokenIdOutsideVocabularyIsNamed) {
  test::TempDir d;
  write_small(d.file("c.h5"), 100, /*max_id=*/60);
  CorpusReader r(d.file("c.h5"));
  std::string e = test::error_of([&] { r.read("train", "tgt", 0, r.num_sentences("train")); });
  EXPECT_NE(e.find("token id"), std::string::npos) << e;
  EXPECT_NE(e.find("outside the vocabulary [0, 50)"), std::string::npos) << e;
  EXPECT_NE(e.find("at /train/tgt/tokens["), std::string::npos) << e;
}

TEST(Corpus, MissingFileNotHdf5AndTruncated) {
  test::TempDir d;
  EXPECT_NE(test::error_of([&] { CorpusReader r(d.file("nope.h5")); }).find("does not exist"), std::string::npos);
  test::write_lines(d.file("text.h5"), {"hello"});
  EXPECT_NE(test::error_of([&] { CorpusReader r(d.file("text.h5")); }).find("not an HDF5 corpus: it is a text file"),
            std::string::npos);
  {
    std::ofstream(d.file("binary.h5"), std::ios::binary) << std::string("\x01\x00\xff\xfe junk", 9);
    std::ofstream(d.file("ckpt.h5"), std::ios::binary) << std::string("TERNCKPT\x01\x00", 10);
  }
  EXPECT_NE(
      test::error_of([&] { CorpusReader r(d.file("binary.h5")); }).find("not an HDF5 file (truncated or corrupted"),
      std::string::npos);
  EXPECT_NE(test::error_of([&] { CorpusReader r(d.file("ckpt.h5")); }).find("it is a tern checkpoint"),
            std::string::npos);
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

namespace {
// Replaces dataset `name` by a copy of its values stored another way: `chunk` elements a chunk (0: contiguous), with
// or without the Fletcher-32 filter.
void restore_tokens(const std::string& path, const std::string& name, const std::vector<int32_t>& values, hsize_t chunk,
                    bool fletcher) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Ldelete(f, name.c_str(), H5P_DEFAULT);
  hsize_t n = values.size(), max = chunk ? H5S_UNLIMITED : n;
  hid_t space = H5Screate_simple(1, &n, &max), plist = H5Pcreate(H5P_DATASET_CREATE);
  if (chunk) H5Pset_chunk(plist, 1, &chunk);
  if (fletcher) H5Pset_fletcher32(plist);
  hid_t d = H5Dcreate2(f, name.c_str(), H5T_STD_I32LE, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  ASSERT_GE(d, 0);
  ASSERT_GE(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(d), H5Pclose(plist), H5Sclose(space), H5Fclose(f);
}

// The tokens of `n` random sentences of /train/src, read with gather.
std::vector<int32_t> random_sentences(const CorpusReader& r, int n) {
  const auto off = r.offsets("train", "src", 0, r.num_sentences("train"));
  std::mt19937_64 g(5);
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(g() % (off.size() - 1));
    ranges.emplace_back(off[k], off[k + 1]);
  }
  return r.gather("train", "src", ranges);
}
}  // namespace

// The reader takes checked chunks straight from the file; tokens stored another way (the 65,536-token chunks of older
// corpora, no checksum, no chunks) read through HDF5 and give the same sentences.
TEST(Corpus, TokensStoredOtherwiseReadTheSame) {
  test::TempDir d;
  write_small(d.file("c.h5"), 60000);
  std::vector<int32_t> all, sample;
  {
    CorpusReader r(d.file("c.h5"));
    all = r.read("train", "src", 0, r.num_sentences("train")).tokens;
    sample = random_sentences(r, 3000);
  }
  ASSERT_GT(all.size(), size_t{4096 * 20});
  for (auto [chunk, fletcher] : {std::pair<hsize_t, bool>{65536, true}, {100, false}, {0, false}, {333, true}}) {
    restore_tokens(d.file("c.h5"), "train/src/tokens", all, chunk, fletcher);
    CorpusReader r(d.file("c.h5"));
    EXPECT_EQ(r.read("train", "src", 0, r.num_sentences("train")).tokens, all) << chunk << " " << fletcher;
    EXPECT_EQ(random_sentences(r, 3000), sample) << chunk << " " << fletcher;
  }
}

// A flipped byte in one token chunk is caught by the checksum and named; the other chunks still read.
TEST(Corpus, CorruptedTokenChunkIsNamed) {
  test::TempDir d;
  write_small(d.file("c.h5"), 60000);
  haddr_t address = 0;
  {
    hid_t f = H5Fopen(d.file("c.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "train/src/tokens", H5P_DEFAULT);
    hsize_t at = 3 * 4096, size = 0;
    unsigned mask = 0;
    ASSERT_GE(H5Dget_chunk_info_by_coord(ds, &at, &mask, &address, &size), 0);
    H5Dclose(ds), H5Fclose(f);
  }
  {
    std::fstream f(d.file("c.h5"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(address + 1000));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(static_cast<std::streamoff>(address + 1000));
    f.write(&c, 1);
  }
  CorpusReader r(d.file("c.h5"));
  EXPECT_EQ(r.gather("train", "src", {{0, 4096}, {4 * 4096, 5 * 4096}}).size(), size_t{8192});
  const std::string e = test::error_of([&] { r.gather("train", "src", {{3 * 4096 + 10, 3 * 4096 + 20}}); });
  EXPECT_NE(e.find("/train/src/tokens (Fletcher-32 checksum mismatch in chunk 3 (elements [12288, 16384)))"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("corrupted"), std::string::npos) << e;
}

// Words of all ones are the checksum's extreme case (HDF5's running sum wraps): every chunk of -1s passes the check,
// and the ids are then refused as outside the vocabulary.
TEST(Corpus, ChecksumOfExtremeWordsMatchesHdf5) {
  test::TempDir d;
  write_small(d.file("c.h5"), 60000);
  std::vector<int32_t> ones;
  {
    CorpusReader r(d.file("c.h5"));
    ones.assign(r.read("train", "src", 0, r.num_sentences("train")).tokens.size(), -1);
  }
  restore_tokens(d.file("c.h5"), "train/src/tokens", ones, 4096, true);
  CorpusReader r(d.file("c.h5"));
  for (int64_t k = 0; k < static_cast<int64_t>(ones.size()) / 4096; ++k) {
    const std::string e = test::error_of([&] { r.gather("train", "src", {{k * 4096, k * 4096 + 1}}); });
    EXPECT_NE(e.find("token id -1 at /train/src/tokens"), std::string::npos) << e;
  }
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
  EXPECT_NE(test::error_of([&] { CorpusReader r(d.file("c.h5")); }).find("version 99 is not supported"),
            std::string::npos);
  write_small(d.file("m.h5"), 10);
  {
    hid_t f = H5Fopen(d.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "train/tgt/tokens", H5P_DEFAULT);
    H5Fclose(f);
  }
  std::string e = test::error_of([&] { CorpusReader r(d.file("m.h5")); });
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
  // 100 floats where num_tokens says otherwise: refused on open; with the count right, refused on open too.
  std::string e = test::error_of([&] { CorpusReader r(d.file("c.h5")); });
  EXPECT_NE(e.find("/train/src/tokens has 100 entries but its num_tokens attribute is"), std::string::npos) << e;
  write_small(d.file("l.h5"), 10);
  {
    hid_t f = H5Fopen(d.file("l.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t old = H5Dopen2(f, "train/lines", H5P_DEFAULT), old_space = H5Dget_space(old);
    hsize_t n = static_cast<hsize_t>(H5Sget_simple_extent_npoints(old_space));  // the right count, floats
    H5Sclose(old_space);
    H5Dclose(old);
    H5Ldelete(f, "train/lines", H5P_DEFAULT);
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t ds = H5Dcreate2(f, "train/lines", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
  }
  e = test::error_of([&] { CorpusReader r(d.file("l.h5")); });
  EXPECT_NE(e.find("dataset /train/lines has the wrong dtype (expected 8-byte integers)"), std::string::npos) << e;
}

namespace {
void set_i64_attr(const std::string& file, const std::string& obj, const std::string& name, int64_t v) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t o = H5Oopen(f, obj.c_str(), H5P_DEFAULT);
  hid_t a = H5Aopen(o, name.c_str(), H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a);
  H5Oclose(o);
  H5Fclose(f);
}
void set_first_offset(const std::string& file, int64_t v) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "train/src/offsets", H5P_DEFAULT);
  hid_t fs = H5Dget_space(d);
  hsize_t at = 0, one = 1;
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, nullptr, &one, nullptr);
  hid_t ms = H5Screate_simple(1, &one, nullptr);
  H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &v);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(d);
  H5Fclose(f);
}
std::string open_error(const std::string& file) {
  return test::error_of([&] { CorpusReader r(file); });
}
}  // namespace

// Counts that disagree with the datasets are refused on open, naming the record.
TEST(Corpus, InconsistentCountsAreRefusedOnOpen) {
  test::TempDir d;
  write_small(d.file("a.h5"), 50);
  set_i64_attr(d.file("a.h5"), "train", "num_sentences", 3);
  EXPECT_NE(open_error(d.file("a.h5")).find("/train/lines has 40 entries but num_sentences is 3"), std::string::npos)
      << open_error(d.file("a.h5"));
  write_small(d.file("b.h5"), 50);
  set_i64_attr(d.file("b.h5"), "train/tgt", "num_tokens", 7);
  EXPECT_NE(open_error(d.file("b.h5")).find("/train/tgt/tokens has"), std::string::npos) << open_error(d.file("b.h5"));
  EXPECT_NE(open_error(d.file("b.h5")).find("num_tokens attribute is 7"), std::string::npos);
  write_small(d.file("c.h5"), 50);
  set_first_offset(d.file("c.h5"), 2);
  EXPECT_NE(open_error(d.file("c.h5")).find("/train/src/offsets[0] must be 0 (got 2)"), std::string::npos)
      << open_error(d.file("c.h5"));
}

TEST(Corpus, VocabularyMustBeASentencePieceModelOfItsSize) {
  test::TempDir d;
  write_small(d.file("a.h5"), 20);
  set_i64_attr(d.file("a.h5"), "vocab/src", "vocab_size", 1000000000000);
  EXPECT_NE(open_error(d.file("a.h5"))
                .find("/vocab/src attribute vocab_size is 1000000000000 but its SentencePiece "
                      "model has 50 pieces"),
            std::string::npos)
      << open_error(d.file("a.h5"));
  CorpusWriter w(d.file("b.h5"), "parallel");
  for (const char* side : {"src", "tgt"}) {
    VocabInfo v{side, 50, "", "not a sentencepiece model"};
    v.hash = hex64(hash_string(v.model_proto));
    w.set_vocab(v);
  }
  w.append("train", {{5, 6}, {7}});
  w.close();
  EXPECT_NE(open_error(d.file("b.h5")).find("/vocab/src: not a valid SentencePiece model"), std::string::npos)
      << open_error(d.file("b.h5"));
}

// Each sentence keeps its input line number, so references align after dropped lines.
TEST(Corpus, LineNumbersRoundTrip) {
  test::TempDir d;
  {
    CorpusWriter w(d.file("c.h5"), "parallel");
    w.set_vocab(fake_vocab("src", 50));
    w.set_vocab(fake_vocab("tgt", 50));
    for (int64_t line : {2, 3, 7, 8}) w.append("test", {{5}, {6}}, line);
    w.set_source_lines("test", 9);
    w.append("train", {{5}, {6}});
    w.append("train", {{5}, {6}});
    EXPECT_NE(test::error_of([&] {
                w.append("test", {{5}, {6}}, 8);
              }).find("must increase (8 after 8)"),
              std::string::npos);
    w.close();
  }
  {
    CorpusReader r(d.file("c.h5"));
    EXPECT_EQ(r.line_numbers("test"), (std::vector<int64_t>{2, 3, 7, 8}));
    EXPECT_EQ(r.source_lines("test"), 9);
    EXPECT_EQ(r.line_numbers("train"), (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(r.source_lines("train"), 2);
  }
  set_i64_attr(d.file("c.h5"), "test", "source_lines", 5);
  CorpusReader r2(d.file("c.h5"));
  EXPECT_NE(test::error_of([&] { r2.line_numbers("test"); }).find("/test/lines[2] is 7"), std::string::npos);
}

// Word alignments (side kAlignSide): stored as flat (source, target) token pairs, read back as Batch::align rows
// that spread 1 over each target token's linked source tokens (zero for unlinked tokens, </s> and padding); a link
// past a sentence's tokens is a data error naming the sentence; a part without alignments does not join one with.
TEST(Corpus, AlignmentsBecomeReferenceAttentionRows) {
  test::TempDir d;
  auto write = [&](const std::string& path, const std::vector<int32_t>& bad_links) {
    CorpusWriter w(path, "parallel", /*alignments=*/true);
    w.set_vocab(fake_vocab("src", 50));
    w.set_vocab(fake_vocab("tgt", 50));
    w.append("train", {{5, 6, 7}, {8, 9}, {0, 0, 2, 0, 1, 1}});  // target 0 <- sources 0 and 2; target 1 <- source 1
    w.append("train", {{5, 6}, {8, 9, 10}, bad_links});
    w.close();
  };
  write(d.file("a.h5"), {1, 2});  // target 2 <- source 1
  CorpusReader r(d.file("a.h5"));
  ASSERT_TRUE(r.has_alignments());
  EXPECT_EQ(r.sides(), (std::vector<std::string>{"src", "tgt"}));
  EXPECT_EQ(r.num_tokens("train", kAlignSide), 8);
  Batch b = ShardData(r, "train", 0, 1, {}, /*alignments=*/true).collate({0, 1});
  ASSERT_EQ(b.align.sizes(), (std::vector<int64_t>{2, 4, 3}));  // (B, T = 3 targets + </s>, S)
  const torch::Tensor want = torch::tensor({0.5f, 0.0f, 0.5f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,  //
                                            0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f})
                                 .view({2, 4, 3});
  EXPECT_TRUE(torch::equal(b.align, want)) << b.align;
  EXPECT_FALSE(ShardData(r, "train").collate({0}).align.defined());

  write(d.file("bad.h5"), {0, 3});  // target token 3 of a sentence of 3
  CorpusReader bad(d.file("bad.h5"));
  EXPECT_NE(test::error_of([&] {
              ShardData(bad, "train", 0, 1, {}, true).collate({1});
            }).find("of sentence 1 links source token 0 to target token 3, past its 2 source and 3 target tokens"),
            std::string::npos);
  write_small(d.file("plain.h5"), 20);
  CorpusReader plain(d.file("plain.h5"));
  EXPECT_NE(test::error_of([&] { ShardData(plain, "train", 0, 1, {}, true); }).find("has no word alignments"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              CorpusReader({d.file("a.h5"), d.file("plain.h5")});
            }).find("parts of one corpus must all have them"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { plain.read("train", kAlignSide, 0, 1); })
                .find("corpus has no side 'align' (it is parallel; HINT: tern prepare --train-align stores word "
                      "alignments)"),
            std::string::npos);
  EXPECT_NE(
      test::error_of([&] { plain.read("train", "text", 0, 1); }).find("corpus has no side 'text' (it is parallel)"),
      std::string::npos);
  // Damaged: links that are not pairs, an alignments attribute of another value; a monolingual corpus has none.
  write(d.file("odd.h5"), {0, 1, 2});
  CorpusReader odd(d.file("odd.h5"));
  EXPECT_NE(test::error_of([&] {
              ShardData(odd, "train", 0, 1, {}, true).collate({1});
            }).find("/train/align of sentence 1 holds 3 numbers: links are pairs"),
            std::string::npos);
  write(d.file("attr.h5"), {1, 2});
  set_i64_attr(d.file("attr.h5"), "/", "alignments", 2);
  EXPECT_NE(test::error_of([&] {
              CorpusReader r2(d.file("attr.h5"));
            }).find("attribute 'alignments' is 2 (1 is the only value, in a parallel corpus)"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              CorpusWriter w(d.file("mono.h5"), "monolingual", true);
            }).find("word alignments need a parallel corpus"),
            std::string::npos);
}

}  // namespace tern
