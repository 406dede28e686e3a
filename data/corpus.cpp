#include "data/corpus.h"

#include <hdf5.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include "core/errors.h"
#include "core/hash.h"
#include "data/tokenizer.h"

namespace tern {
namespace {

constexpr hsize_t kChunk = 1 << 16;       // elements per HDF5 chunk
constexpr size_t kFlushTokens = 1 << 20;  // buffered tokens before an append

// The innermost message of HDF5's error stack, e.g. "Fletcher32 checksum failed".
std::string h5_error() {
  std::string msg;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* out) -> herr_t {
        if (n == 0 && e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg.empty() ? "HDF5 error" : msg;
}

struct Quiet {
  Quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
const Quiet kQuiet;

// RAII for hid_t.
struct H {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H() = default;
  H(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  H(H&& o) noexcept : id(o.id), close(o.close) { o.id = -1; }
  H& operator=(H&& o) noexcept {
    std::swap(id, o.id);
    std::swap(close, o.close);
    return *this;
  }
  ~H() {
    if (id >= 0 && close) close(id);
  }
  operator hid_t() const { return id; }  // NOLINT(google-explicit-constructor): a handle reads as its id
};

void write_str_attr(hid_t obj, const std::string& name, const std::string& value) {
  H type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, std::max<size_t>(1, value.size()));
  H5Tset_cset(type, H5T_CSET_UTF8);
  H space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  if (a < 0 || H5Awrite(a, type, padded.data()) < 0)
    throw IoError("cannot write attribute " + name + ": " + h5_error());
}

void write_i64_attr(hid_t obj, const std::string& name, int64_t v) {
  H space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &v) < 0) throw IoError("cannot write attribute " + name);
}

bool read_str_attr(hid_t obj, const std::string& name, std::string& out) {
  if (H5Aexists(obj, name.c_str()) <= 0) return false;
  H a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  H type(H5Aget_type(a), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING) return false;
  if (H5Tis_variable_str(type) > 0) {
    char* s = nullptr;
    H mem(H5Tget_native_type(type, H5T_DIR_ASCEND), H5Tclose);
    if (H5Aread(a, mem, &s) < 0) return false;
    out = s ? s : "";
    H5free_memory(s);
    return true;
  }
  size_t n = H5Tget_size(type);
  std::string buf(n, '\0');
  if (H5Aread(a, type, buf.data()) < 0) return false;
  out = std::string(buf.c_str());
  return true;
}

bool read_i64_attr(hid_t obj, const std::string& name, int64_t& out) {
  if (H5Aexists(obj, name.c_str()) <= 0) return false;
  H a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  return H5Aread(a, H5T_NATIVE_INT64, &out) >= 0;
}

// 1-D extendible, chunked, Fletcher-32 checksummed dataset.
H create_extendible(hid_t parent, const std::string& name, hid_t type) {
  hsize_t dims = 0, maxdims = H5S_UNLIMITED;
  H space(H5Screate_simple(1, &dims, &maxdims), H5Sclose);
  H plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  hsize_t chunk = kChunk;
  H5Pset_chunk(plist, 1, &chunk);
  H5Pset_fletcher32(plist);
  H d(H5Dcreate2(parent, name.c_str(), type, space, H5P_DEFAULT, plist, H5P_DEFAULT), H5Dclose);
  if (d < 0) throw IoError("cannot create dataset " + name + ": " + h5_error());
  return d;
}

void append_1d(hid_t dset, hid_t memtype, const void* data, hsize_t n, hsize_t& size) {
  if (n == 0) return;
  hsize_t new_size = size + n;
  if (H5Dset_extent(dset, &new_size) < 0) throw IoError("cannot extend dataset: " + h5_error());
  H fspace(H5Dget_space(dset), H5Sclose);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &size, nullptr, &n, nullptr);
  H mspace(H5Screate_simple(1, &n, nullptr), H5Sclose);
  if (H5Dwrite(dset, memtype, mspace, fspace, H5P_DEFAULT, data) < 0)
    throw IoError("cannot write dataset (disk full?): " + h5_error());
  size = new_size;
}

H open_group(hid_t parent, const std::string& name, bool create) {
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0) return H(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose);
  if (!create) return H();
  return H(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
}

std::vector<std::string> sides_of(const std::string& kind) {
  if (kind == "parallel") return {"src", "tgt"};
  if (kind == "monolingual") return {"text"};
  throw DataError("corpus kind must be parallel or monolingual (got '" + kind + "')");
}

}  // namespace

// ---------------------------------------------------------------------------------------------- writer

struct CorpusWriter::Impl {
  struct SideState {
    H group, tokens, offsets;
    hsize_t ntok = 0, noff = 0;
    std::vector<int32_t> tok_buf;
    std::vector<int64_t> off_buf;
    int64_t total = 0;  // tokens written or buffered
  };
  struct SplitState {
    H group, lines;
    hsize_t nlines = 0;
    std::vector<int64_t> line_buf;
    int64_t last_line = 0;
    int64_t sentences = 0;
    std::map<std::string, SideState> sides;
  };
  std::string path;
  H file;
  std::map<std::string, SplitState> splits;
  std::map<std::string, int64_t> source_lines;  // set_source_lines
  bool closed = false;

  void flush(SideState& s) {
    append_1d(s.tokens, H5T_NATIVE_INT32, s.tok_buf.data(), s.tok_buf.size(), s.ntok);
    append_1d(s.offsets, H5T_NATIVE_INT64, s.off_buf.data(), s.off_buf.size(), s.noff);
    s.tok_buf.clear();
    s.off_buf.clear();
  }
};

CorpusWriter::CorpusWriter(const std::string& path, const std::string& kind)
    : impl_(std::make_unique<Impl>()), sides_(sides_of(kind)) {
  impl_->path = path;
  impl_->file = H(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (impl_->file < 0) throw IoError(path + ": cannot create corpus file (" + h5_error() + ")");
  write_str_attr(impl_->file, "format", kCorpusFormat);
  write_i64_attr(impl_->file, "format_version", kCorpusFormatVersion);
  write_str_attr(impl_->file, "kind", kind);
  write_str_attr(impl_->file, "producer", std::string("tern ") + TERN_VERSION);
}

CorpusWriter::~CorpusWriter() {
  try {
    close();
  } catch (...) {
  }
}

void CorpusWriter::set_vocab(const VocabInfo& v) {
  H g = open_group(impl_->file, "vocab", true);
  hsize_t n = v.model_proto.size();
  H space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H d(H5Dcreate2(g, v.side.c_str(), H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.model_proto.data()) < 0)
    throw IoError(impl_->path + ": cannot write vocabulary " + v.side + ": " + h5_error());
  write_i64_attr(d, "vocab_size", v.size);
  write_str_attr(d, "hash", v.hash);
}

void CorpusWriter::set_attr(const std::string& name, const std::string& value) {
  write_str_attr(impl_->file, name, value);
}

void CorpusWriter::set_source_lines(const std::string& split, int64_t lines) { impl_->source_lines[split] = lines; }

void CorpusWriter::append(const std::string& split, const std::vector<std::vector<int32_t>>& per_side, int64_t line) {
  if (per_side.size() != sides_.size())
    throw DataError(fmt::format("append: expected {} sides, got {}", sides_.size(), per_side.size()));
  auto it = impl_->splits.find(split);
  if (it == impl_->splits.end()) {
    Impl::SplitState st;
    st.group = open_group(impl_->file, split, true);
    st.lines = create_extendible(st.group, "lines", H5T_STD_I64LE);
    for (const auto& side : sides_) {
      Impl::SideState ss;
      ss.group = open_group(st.group, side, true);
      ss.tokens = create_extendible(ss.group, "tokens", H5T_STD_I32LE);
      ss.offsets = create_extendible(ss.group, "offsets", H5T_STD_I64LE);
      ss.off_buf.push_back(0);
      st.sides.emplace(side, std::move(ss));
    }
    it = impl_->splits.emplace(split, std::move(st)).first;
  }
  auto& st = it->second;
  if (line == 0) line = st.last_line + 1;
  if (line <= st.last_line)
    throw DataError(fmt::format("{}: line numbers of split '{}' must increase ({} after {})", impl_->path, split, line,
                                st.last_line));
  st.last_line = line;
  st.line_buf.push_back(line);
  if (st.line_buf.size() >= kFlushTokens / 8) {
    append_1d(st.lines, H5T_NATIVE_INT64, st.line_buf.data(), st.line_buf.size(), st.nlines);
    st.line_buf.clear();
  }
  for (size_t k = 0; k < sides_.size(); ++k) {
    auto& ss = st.sides.at(sides_[k]);
    ss.tok_buf.insert(ss.tok_buf.end(), per_side[k].begin(), per_side[k].end());
    ss.total += static_cast<int64_t>(per_side[k].size());
    ss.off_buf.push_back(ss.total);
    if (ss.tok_buf.size() >= kFlushTokens) impl_->flush(ss);
  }
  ++st.sentences;
}

void CorpusWriter::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  for (auto& [name, st] : impl_->splits) {
    write_i64_attr(st.group, "num_sentences", st.sentences);
    append_1d(st.lines, H5T_NATIVE_INT64, st.line_buf.data(), st.line_buf.size(), st.nlines);
    auto lines = impl_->source_lines.find(name);
    write_i64_attr(st.group, "source_lines", lines != impl_->source_lines.end() ? lines->second : st.last_line);
    for (auto& [side, ss] : st.sides) {
      impl_->flush(ss);
      write_i64_attr(ss.group, "num_tokens", ss.total);
    }
  }
  impl_->splits.clear();
  if (H5Fflush(impl_->file, H5F_SCOPE_GLOBAL) < 0) throw IoError(impl_->path + ": flush failed: " + h5_error());
  impl_->file = H();
}

// ---------------------------------------------------------------------------------------------- reader

struct CorpusReader::Impl {
  H file;
};

CorpusReader::CorpusReader(const std::string& path) : impl_(std::make_unique<Impl>()), path_(path) {
  const std::string hint = "HINT: recreate it with `tern prepare`";
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw DataError(path + ": corpus file does not exist or cannot be read");
    std::fclose(f);
    throw DataError(path + ": not an HDF5 file (truncated or corrupted?); " + hint);
  }
  impl_->file = H(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (impl_->file < 0) throw DataError(path + ": cannot open corpus (" + h5_error() + "); " + hint);
  std::string format;
  int64_t version = 0;
  if (!read_str_attr(impl_->file, "format", format) || format != kCorpusFormat)
    throw DataError(path + ": not a tern corpus (attribute 'format' is '" + format + "', expected 'tern-corpus')");
  if (!read_i64_attr(impl_->file, "format_version", version) || version != kCorpusFormatVersion)
    throw DataError(fmt::format("{}: corpus format version {} is not supported (this tern reads version {}{}); {}",
                                path, version, kCorpusFormatVersion,
                                version == 1 ? ": version 1 does not record the input line of each sentence, which "
                                               "evaluate --ref needs to align references"
                                             : "",
                                hint));
  if (!read_str_attr(impl_->file, "kind", kind_)) throw DataError(path + ": attribute 'kind' is missing");
  try {
    sides_ = sides_of(kind_);
  } catch (const DataError& e) {
    throw DataError(path + ": " + e.what());
  }
  H vg = open_group(impl_->file, "vocab", false);
  if (vg < 0) throw DataError(path + ": group /vocab is missing; " + hint);
  for (const auto& side : sides_) {
    VocabInfo v;
    v.side = side;
    H d(H5Lexists(vg, side.c_str(), H5P_DEFAULT) > 0 ? H5Dopen2(vg, side.c_str(), H5P_DEFAULT) : -1, H5Dclose);
    if (d < 0) throw DataError(path + ": dataset /vocab/" + side + " is missing; " + hint);
    H space(H5Dget_space(d), H5Sclose);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    v.model_proto.resize(static_cast<size_t>(std::max<hssize_t>(0, n)));
    if (H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.model_proto.data()) < 0)
      throw DataError(path + ": cannot read /vocab/" + side + " (" + h5_error() + ")");
    if (!read_i64_attr(d, "vocab_size", v.size) || v.size <= 4)
      throw DataError(fmt::format("{}: /vocab/{} attribute vocab_size must be > 4 (got {})", path, side, v.size));
    read_str_attr(d, "hash", v.hash);
    std::string actual = hex64(hash_string(v.model_proto));
    if (v.hash != actual)
      throw DataError(path + ": /vocab/" + side + " checksum mismatch (stored " + v.hash + ", computed " + actual +
                      "): the file is corrupted; " + hint);
    const int64_t pieces = Tokenizer(v.model_proto, path + ": /vocab/" + side).vocab_size();
    if (pieces != v.size)
      throw DataError(
          fmt::format("{}: /vocab/{} attribute vocab_size is {} but its SentencePiece model has {} pieces; {}", path,
                      side, v.size, pieces, hint));
    vocabs_.push_back(std::move(v));
  }
  for (const auto& split : splits()) validate_split(split);
}

namespace {
hsize_t extent(hid_t file, const std::string& name) {
  H d(H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0 ? H5Dopen2(file, name.c_str(), H5P_DEFAULT) : -1, H5Dclose);
  if (d < 0) return static_cast<hsize_t>(-1);
  H space(H5Dget_space(d), H5Sclose);
  return static_cast<hsize_t>(H5Sget_simple_extent_npoints(space));
}
}  // namespace

// Counts, extents and the first and last offsets agree (metadata and two values per side: cheap on open).
void CorpusReader::validate_split(const std::string& split) const {
  const std::string hint = "; HINT: recreate it with `tern prepare`";
  const int64_t n = num_sentences(split);
  auto fail = [&](const std::string& what) { throw DataError(path_ + ": " + what + hint); };
  const hsize_t nl = extent(impl_->file, split + "/lines");
  if (nl == static_cast<hsize_t>(-1)) fail("dataset /" + split + "/lines is missing");
  if (static_cast<int64_t>(nl) != n)
    fail(fmt::format("/{}/lines has {} entries but num_sentences is {}", split, nl, n));
  for (const auto& side : sides_) {
    const std::string base = split + "/" + side;
    const int64_t nt = num_tokens(split, side);
    const hsize_t no = extent(impl_->file, base + "/offsets"), ntok = extent(impl_->file, base + "/tokens");
    if (no == static_cast<hsize_t>(-1) || ntok == static_cast<hsize_t>(-1))
      fail("dataset /" + base + "/offsets or /" + base + "/tokens is missing");
    if (static_cast<int64_t>(no) != n + 1)
      fail(fmt::format("/{}/offsets has {} entries but num_sentences of /{} is {} (needs num_sentences + 1)", base, no,
                       split, n));
    if (nt < 0 || static_cast<int64_t>(ntok) != nt)
      fail(fmt::format("/{}/tokens has {} entries but its num_tokens attribute is {}", base, ntok, nt));
    H d(H5Dopen2(impl_->file, (base + "/offsets").c_str(), H5P_DEFAULT), H5Dclose);
    int64_t ends[2] = {-1, -1};
    for (int k = 0; k < 2; ++k) {
      hsize_t at = k == 0 ? 0 : static_cast<hsize_t>(n), one = 1;
      H fspace(H5Dget_space(d), H5Sclose);
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &at, nullptr, &one, nullptr);
      H mspace(H5Screate_simple(1, &one, nullptr), H5Sclose);
      if (H5Dread(d, H5T_NATIVE_INT64, mspace, fspace, H5P_DEFAULT, &ends[k]) < 0)
        fail("cannot read /" + base + "/offsets (" + h5_error() + "): the file is corrupted or truncated");
    }
    if (ends[0] != 0) fail(fmt::format("/{}/offsets[0] must be 0 (got {})", base, ends[0]));
    if (ends[1] != nt)
      fail(fmt::format("/{}/offsets[{}] (the end of the last sentence) is {} but num_tokens is {}", base, n, ends[1],
                       nt));
  }
}

std::vector<int64_t> CorpusReader::line_numbers(const std::string& split) const {
  const int64_t n = num_sentences(split), total = source_lines(split);
  H d(H5Dopen2(impl_->file, (split + "/lines").c_str(), H5P_DEFAULT), H5Dclose);
  std::vector<int64_t> out(static_cast<size_t>(n));
  if (d < 0 || (n > 0 && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0))
    throw DataError(path_ + ": cannot read /" + split + "/lines (" + h5_error() +
                    "): the file is corrupted or truncated");
  int64_t prev = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] <= prev || out[i] > total)
      throw DataError(
          fmt::format("{}: /{}/lines[{}] is {}: line numbers must increase and lie in [1, {}] (the input's "
                      "line count); HINT: recreate it with `tern prepare`",
                      path_, split, i, out[i], total));
    prev = out[i];
  }
  return out;
}

int64_t CorpusReader::source_lines(const std::string& split) const {
  H g = open_group(impl_->file, split, false);
  int64_t n = -1;
  if (g < 0 || !read_i64_attr(g, "source_lines", n) || n < 0)
    throw DataError(path_ + ": /" + split + " attribute source_lines is missing or negative");
  return n;
}

CorpusReader::~CorpusReader() = default;

std::vector<std::string> CorpusReader::splits() const {
  std::vector<std::string> out;
  for (const char* s : {"train", "valid", "test"})
    if (has_split(s)) out.emplace_back(s);
  return out;
}

bool CorpusReader::has_split(const std::string& split) const {
  return H5Lexists(impl_->file, split.c_str(), H5P_DEFAULT) > 0;
}

const VocabInfo& CorpusReader::vocab(const std::string& side) const {
  for (const auto& v : vocabs_)
    if (v.side == side) return v;
  throw DataError(path_ + ": corpus has no side '" + side + "' (it is " + kind_ + ")");
}

std::string CorpusReader::attr(const std::string& name) const {
  std::string v;
  read_str_attr(impl_->file, name, v);
  return v;
}

int64_t CorpusReader::num_sentences(const std::string& split) const {
  H g = open_group(impl_->file, split, false);
  if (g < 0)
    throw DataError(path_ + ": split '" + split + "' is missing (has: " + fmt::format("{}", fmt::join(splits(), ", ")) +
                    ")");
  int64_t n = -1;
  if (!read_i64_attr(g, "num_sentences", n) || n < 0)
    throw DataError(path_ + ": /" + split + " attribute num_sentences is missing or negative");
  return n;
}

int64_t CorpusReader::num_tokens(const std::string& split, const std::string& side) const {
  H g(H5Gopen2(impl_->file, (split + "/" + side).c_str(), H5P_DEFAULT), H5Gclose);
  int64_t n = -1;
  if (g < 0 || !read_i64_attr(g, "num_tokens", n)) throw DataError(path_ + ": /" + split + "/" + side + " is missing");
  return n;
}

namespace {
template <typename T>
std::vector<T> read_range(hid_t file, const std::string& path, const std::string& name, hid_t memtype, hid_t want_class,
                          size_t want_size, hsize_t begin, hsize_t count) {
  H d(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (d < 0) throw DataError(path + ": dataset /" + name + " is missing; HINT: recreate it with `tern prepare`");
  H type(H5Dget_type(d), H5Tclose);
  if (H5Tget_class(type) != want_class || H5Tget_size(type) != want_size)
    throw DataError(
        fmt::format("{}: dataset /{} has the wrong dtype (expected {}-byte integers)", path, name, want_size));
  H fspace(H5Dget_space(d), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(fspace);
  if (static_cast<hsize_t>(n) < begin + count)
    throw DataError(fmt::format("{}: dataset /{} has {} elements, need {} (truncated?)", path, name, n, begin + count));
  std::vector<T> out(count);
  if (count == 0) return out;
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &begin, nullptr, &count, nullptr);
  H mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
  if (H5Dread(d, memtype, mspace, fspace, H5P_DEFAULT, out.data()) < 0)
    throw DataError(path + ": cannot read /" + name + " (" + h5_error() + "): the file is corrupted or truncated");
  return out;
}
}  // namespace

TokenBlock CorpusReader::read(const std::string& split, const std::string& side, int64_t begin, int64_t end) const {
  int64_t n = num_sentences(split);
  if (begin < 0 || end < begin || end > n)
    throw DataError(
        fmt::format("{}: sentence range [{}, {}) outside split '{}' of {} sentences", path_, begin, end, split, n));
  const std::string base = split + "/" + side;
  TokenBlock b;
  b.first_sentence = begin;
  b.offsets = read_range<int64_t>(impl_->file, path_, base + "/offsets", H5T_NATIVE_INT64, H5T_INTEGER, 8,
                                  static_cast<hsize_t>(begin), static_cast<hsize_t>(end - begin) + 1);
  int64_t t0 = b.offsets.front();
  for (size_t i = 0; i + 1 < b.offsets.size(); ++i)
    if (b.offsets[i + 1] < b.offsets[i] || b.offsets[i] < 0)
      throw DataError(
          fmt::format("{}: /{}/offsets decrease at sentence {}", path_, base, begin + static_cast<int64_t>(i)));
  for (auto& o : b.offsets) o -= t0;
  b.tokens = read_range<int32_t>(impl_->file, path_, base + "/tokens", H5T_NATIVE_INT32, H5T_INTEGER, 4,
                                 static_cast<hsize_t>(t0), static_cast<hsize_t>(b.offsets.back()));
  const int64_t vs = vocab(side).size;
  for (size_t i = 0; i < b.size(); ++i)
    for (int64_t k = b.offsets[i]; k < b.offsets[i + 1]; ++k)
      if (b.tokens[k] < 0 || b.tokens[k] >= vs)
        throw DataError(fmt::format("{}: token id {} at sentence {} of /{} is outside the vocabulary [0, {})", path_,
                                    b.tokens[k], begin + static_cast<int64_t>(i), base, vs));
  return b;
}

std::string CorpusReader::identity() const {
  std::string id = kind_;
  for (const auto& v : vocabs_) id += "|" + v.side + ":" + v.hash;
  for (const auto& s : splits()) id += fmt::format("|{}:{}", s, num_sentences(s));
  return id;
}

}  // namespace tern
