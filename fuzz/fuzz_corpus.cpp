// Fuzzes the corpus reader's validation with structurally valid HDF5 files whose contents come from the input:
// attributes (format, version, kind), vocabulary sizes and hashes, offsets, token ids, dtypes and missing datasets.
// (Byte-level corruption of the HDF5 container is covered by the Fletcher-32 chunk checksums and unit tests; the
// HDF5 library's own parser is not the code under test here.)
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/hash.h"
#include "data/corpus.h"
#include "data/tokenizer.h"

namespace {

struct Input {
  const uint8_t* p;
  size_t n, i = 0;
  uint8_t byte() { return i < n ? p[i++] : 0; }
  int64_t i64() {
    int64_t v = 0;
    for (int k = 0; k < 8; ++k) v = (v << 8) | byte();
    return v;
  }
  int64_t small(int64_t mod) { return static_cast<int64_t>(byte()) % mod; }
};

void str_attr(hid_t obj, const char* name, const std::string& v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, v.empty() ? 1 : v.size());
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  std::string padded = v.empty() ? std::string(1, '\0') : v;
  H5Awrite(a, t, padded.data());
  H5Aclose(a), H5Sclose(s), H5Tclose(t);
}

void i64_attr(hid_t obj, const char* name, int64_t v) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a), H5Sclose(s);
}

template <typename T>
void dataset(hid_t parent, const char* name, hid_t file_type, hid_t mem_type, const std::vector<T>& v) {
  hsize_t n = v.size();
  hid_t s = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(parent, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (n) H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d), H5Sclose(s);
}

// A real SentencePiece model (the reader checks that each vocabulary is one, of vocab_size pieces), trained once.
const std::string& real_model() {
  static const std::string proto = [] {
    tern::TokenizerTrainOptions o;
    o.vocab_size = 48;
    int64_t n = 0;
    return tern::Tokenizer::train(o, [&](std::string& line) {
      if (++n > 400) return false;
      line.clear();
      for (int w = 0; w < 6; ++w) line += std::string(1, static_cast<char>('a' + (n * 7 + w * 3) % 26)) + "bc ";
      return true;
    });
  }();
  return proto;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  static const std::string path = "/tmp/tern_fuzz_corpus_" + std::to_string(getpid()) + ".h5";
  Input in{data, size};
  std::remove(path.c_str());
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  uint8_t flags = in.byte();
  str_attr(f, "format", flags & 1 ? "tern-corpus" : "other");
  i64_attr(f, "format_version", flags & 2 ? tern::kCorpusFormatVersion : in.small(4));
  str_attr(f, "kind", flags & 4 ? "parallel" : (flags & 8 ? "monolingual" : "weird"));
  if (flags & 16) i64_attr(f, "alignments", flags & 32 ? 1 : in.small(4) - 1);  // word alignments (side "align")
  const char* sides[2] = {"src", "tgt"};
  hid_t vg = H5Gcreate2(f, "vocab", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (const char* side : {"src", "tgt", "text"}) {
    if (in.byte() % 8 == 0) continue;  // missing vocabulary
    const bool real = in.byte() % 4 != 0;
    std::vector<uint8_t> proto(static_cast<size_t>(in.small(16)), 'm');
    if (real) proto.assign(real_model().begin(), real_model().end());
    dataset(vg, side, H5T_STD_U8LE, H5T_NATIVE_UINT8, proto);
    hid_t d = H5Dopen2(vg, side, H5P_DEFAULT);
    const int64_t pieces = tern::Tokenizer(real_model(), "fuzz").vocab_size();
    i64_attr(d, "vocab_size", real && in.byte() % 4 ? pieces : in.small(64) - 2);
    std::string h = tern::hex64(tern::hash_bytes(proto.data(), proto.size()));
    str_attr(d, "hash", in.byte() % 8 ? h : "0000");
    H5Dclose(d);
  }
  H5Gclose(vg);
  hid_t g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int64_t n = in.small(8) - 1;
  if (in.byte() % 8) i64_attr(g, "num_sentences", n);
  if (in.byte() % 8) i64_attr(g, "source_lines", in.small(16) - 1);
  if (in.byte() % 8) {  // input line numbers: usually increasing, sometimes not
    std::vector<int64_t> lines(static_cast<size_t>(in.byte() % 4 ? std::max<int64_t>(n, 0) : in.small(10)));
    int64_t at = 0;
    for (auto& l : lines) l = at += in.small(3) - (in.byte() % 16 == 0 ? 2 : 0);
    dataset(g, "lines", H5T_STD_I64LE, H5T_NATIVE_INT64, lines);
  }
  for (const char* side : {"src", "tgt", "text", tern::kAlignSide}) {
    hid_t sg = H5Gcreate2(g, side, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<int64_t> off(static_cast<size_t>(in.small(10)));
    for (auto& o : off) o = in.small(12) - 1;
    std::vector<int32_t> tok(static_cast<size_t>(in.small(12)));
    for (auto& t : tok) t = static_cast<int32_t>(in.small(80) - 4);
    uint8_t shape = in.byte();
    if (shape % 5) dataset(sg, "offsets", shape % 7 ? H5T_STD_I64LE : H5T_IEEE_F64LE, H5T_NATIVE_INT64, off);
    if (shape % 3) dataset(sg, "tokens", shape % 11 ? H5T_STD_I32LE : H5T_STD_I16LE, H5T_NATIVE_INT32, tok);
    H5Gclose(sg);
  }
  (void)sides;
  H5Gclose(g);
  H5Fclose(f);
  try {
    tern::CorpusReader r(path);
    for (const auto& side : r.sides()) {
      int64_t total = r.num_sentences("train");
      int64_t b = in.small(4), e = in.small(8);
      r.read("train", side, std::min(b, total), std::min(e, total));
      r.read("train", side, 0, total);
    }
    if (r.has_alignments()) r.read("train", tern::kAlignSide, 0, r.num_sentences("train"));
    r.line_numbers("train");
  } catch (const tern::Error&) {
  }
  return 0;
}
