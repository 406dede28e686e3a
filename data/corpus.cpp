#include "data/corpus.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "data/text.h"
#include "data/tokenizer.h"

namespace tern {
namespace {

constexpr hsize_t kChunk = 1 << 12;       // elements per HDF5 chunk (16-32 KiB: a random sentence reads one)
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
  // A failed system call comes as "file write failed: time = ..., filename = ..., errno = 28, error message = 'No
  // space left on device', buf = ...": keep its first words and the system's message.
  const std::string marker = "error message = '";
  if (const size_t at = msg.find(marker); at != std::string::npos) {
    const size_t begin = at + marker.size();
    const size_t end = msg.find('\'', begin);
    return msg.substr(0, msg.find(':')) + " (" + msg.substr(begin, end == std::string::npos ? end : end - begin) + ")";
  }
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

CorpusWriter::CorpusWriter(const std::string& path, const std::string& kind, bool alignments)
    : impl_(std::make_unique<Impl>()), sides_(sides_of(kind)) {
  if (alignments) {
    if (kind != "parallel") throw DataError("word alignments need a parallel corpus");
    sides_.emplace_back(kAlignSide);
  }
  impl_->path = path;
  impl_->file = H(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (impl_->file < 0) throw IoError(path + ": cannot create corpus file (" + h5_error() + ")");
  write_str_attr(impl_->file, "format", kCorpusFormat);
  write_i64_attr(impl_->file, "format_version", kCorpusFormatVersion);
  write_str_attr(impl_->file, "kind", kind);
  write_str_attr(impl_->file, "producer", std::string("tern ") + TERN_VERSION);
  if (alignments) write_i64_attr(impl_->file, "alignments", 1);
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
  std::vector<TokenSpan> spans;
  for (const auto& v : per_side) spans.push_back({v.data(), v.size()});
  append(split, spans, line);
}

void CorpusWriter::append(const std::string& split, const std::vector<TokenSpan>& per_side, int64_t line) {
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
    ss.tok_buf.insert(ss.tok_buf.end(), per_side[k].data, per_side[k].data + per_side[k].size);
    ss.total += static_cast<int64_t>(per_side[k].size);
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

namespace {

constexpr const char* kHint = "HINT: recreate it with `tern prepare`";
// Each open tokens dataset caches this many bytes of checked chunks (random batches touch one chunk a sentence).
constexpr size_t kChunkCacheBytes = size_t{8} << 20;

H open_dataset(hid_t parent, const std::string& name, hid_t access = H5P_DEFAULT) {
  return H(H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0 ? H5Dopen2(parent, name.c_str(), access) : -1, H5Dclose);
}

hsize_t extent(hid_t d) {
  H space(H5Dget_space(d), H5Sclose);
  return static_cast<hsize_t>(H5Sget_simple_extent_npoints(space));
}

// Whether a dataset holds integers of `size` bytes (checked once, on open).
bool integers_of(hid_t d, size_t size) {
  H type(H5Dget_type(d), H5Tclose);
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == size;
}

// Elements [begin, begin + count) of a 1-D integer dataset; false when HDF5 fails.
bool read_slab(hid_t d, hid_t memtype, hsize_t begin, hsize_t count, void* out) {
  if (count == 0) return true;
  H fspace(H5Dget_space(d), H5Sclose);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &begin, nullptr, &count, nullptr);
  H mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
  return H5Dread(d, memtype, mspace, fspace, H5P_DEFAULT, out) >= 0;
}

VocabInfo read_vocab(hid_t vocab_group, const std::string& path, const std::string& side) {
  VocabInfo v;
  v.side = side;
  H d = open_dataset(vocab_group, side);
  if (d < 0) throw DataError(fmt::format("{}: dataset /vocab/{} is missing; {}", path, side, kHint));
  v.model_proto.resize(static_cast<size_t>(extent(d)));
  if (H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.model_proto.data()) < 0)
    throw DataError(path + ": cannot read /vocab/" + side + " (" + h5_error() + ")");
  if (!read_i64_attr(d, "vocab_size", v.size) || v.size <= 4)
    throw DataError(fmt::format("{}: /vocab/{} attribute vocab_size must be > 4 (got {})", path, side, v.size));
  read_str_attr(d, "hash", v.hash);
  std::string actual = hex64(hash_string(v.model_proto));
  if (v.hash != actual)
    throw DataError(fmt::format("{}: /vocab/{} checksum mismatch (stored {}, computed {}): the file is corrupted; {}",
                                path, side, v.hash, actual, kHint));
  const int64_t pieces = Tokenizer(v.model_proto, path + ": /vocab/" + side).vocab_size();
  if (pieces != v.size)
    throw DataError(
        fmt::format("{}: /vocab/{} attribute vocab_size is {} but its SentencePiece model has {} pieces; {}", path,
                    side, v.size, pieces, kHint));
  return v;
}

// One block of n 16-bit big-endian words w_i of HDF5's Fletcher-32 in closed form: S = sum w_i, T = sum (n - i) w_i
// (both fit 32 bits for n <= 360). A constant n makes it a loop the compiler vectorises.
template <uint32_t N>
void fletcher_block(const uint8_t* data, uint32_t& S, uint32_t& T) {
  for (uint32_t i = 0; i < N; ++i) {
    uint16_t v;
    std::memcpy(&v, data + 2 * i, 2);
    const uint32_t w = static_cast<uint16_t>(v << 8 | v >> 8);  // little-endian host: big-endian word
    S += w;
    T += (N - i) * w;
  }
}

// HDF5's Fletcher-32 (H5_checksum_fletcher32: both sums folded after every 360 words), bit for bit: over a block,
// sum1 gains S and sum2 gains n * sum1 + T (wrapping modulo 2^32 as HDF5's running sum does). Twice as fast.
uint32_t fletcher32(const uint8_t* data, size_t bytes) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the chunk reader assumes a little-endian host");
  uint32_t sum1 = 0, sum2 = 0;
  for (size_t words = bytes / 2; words > 0;) {
    const auto n = static_cast<uint32_t>(std::min<size_t>(words, 360));
    words -= n;
    uint32_t S = 0, T = 0;
    if (n == 360) {
      fletcher_block<360>(data, S, T);
    } else {
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t w = static_cast<uint32_t>(data[2 * i]) << 8 | data[2 * i + 1];
        S += w;
        T += (n - i) * w;
      }
    }
    data += 2 * n;
    sum2 = static_cast<uint32_t>(sum2 + uint64_t{n} * sum1 + T);
    sum1 += S;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  if (bytes % 2) {
    sum1 += static_cast<uint32_t>(*data) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return sum2 << 16 | sum1;
}

// A tokens dataset, read a chunk at a time: H5Dread_chunk, the Fletcher-32 check HDF5's filter makes (it accepts the
// stored sum in either byte order), and an LRU of checked chunks. For batches of sentences scattered over a large
// file (one chunk a sentence) this is 3-4x faster than H5Dread, which in HDF5 1.10 spends most of such a read
// managing its own chunk cache. A dataset stored any other way (no chunks, other filters, another integer layout, an
// oversized chunk) is read through H5Dread.
class TokenDataset {
 public:
  explicit TokenDataset(H d) : d_(std::move(d)) {
    H create(H5Dget_create_plist(d_), H5Pclose);
    H type(H5Dget_type(d_), H5Tclose);
    hsize_t chunk = 0;
    unsigned flags = 0, config = 0;
    size_t nvalues = 0;
    if (create < 0 || H5Pget_layout(create) != H5D_CHUNKED || H5Pget_chunk(create, 1, &chunk) != 1 ||
        H5Tequal(type, H5T_NATIVE_INT32) <= 0 || H5Pget_nfilters(create) != 1 ||
        H5Pget_filter2(create, 0, &flags, &nvalues, nullptr, 0, nullptr, &config) != H5Z_FILTER_FLETCHER32)
      return;
    if (chunk == 0 || chunk > (hsize_t{1} << 24)) return;
    chunk_ = chunk;
    // 8 MiB of tokens, and at most 4,096 chunks: tiny chunks would otherwise make millions of entries.
    capacity_ = std::clamp<size_t>(kChunkCacheBytes / (chunk * sizeof(int32_t)), 2, 4096);
  }

  // Elements [begin, begin + count) into `out`; an empty string, or what is wrong with the file.
  std::string read(hsize_t begin, hsize_t count, int32_t* out) const {
    if (count == 0) return {};
    if (chunk_ == 0) return read_slab(d_, H5T_NATIVE_INT32, begin, count, out) ? std::string() : h5_error();
    for (hsize_t at = begin, end = begin + count; at < end;) {
      const hsize_t k = at / chunk_, from = at - k * chunk_, n = std::min(end - at, chunk_ - from);
      std::string error;
      if (const int32_t* c = chunk(k, error)) {
        std::memcpy(out + (at - begin), c + from, n * sizeof(int32_t));
      } else if (!error.empty()) {
        return error;
      } else if (!read_slab(d_, H5T_NATIVE_INT32, at, n, out + (at - begin))) {  // a chunk stored otherwise
        return h5_error();
      }
      at += n;
    }
    return {};
  }

 private:
  // Chunk k's tokens, checked; nullptr with `error` set when it is corrupt, with `error` empty when it must be read
  // through H5Dread. The pointer is valid until the next call.
  const int32_t* chunk(hsize_t k, std::string& error) const {
    if (auto it = where_.find(k); it != where_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return lru_.front().second.data();
    }
    hsize_t offset = k * chunk_, stored = 0;
    const size_t bytes = chunk_ * sizeof(int32_t);
    uint32_t mask = 0;
    // The stored size is checked before the read (H5Dread_chunk writes as many bytes as the file says); a chunk of
    // another size (an edge chunk left unfiltered, a chunk never written) goes through H5Dread, which checks it.
    if (H5Dget_chunk_storage_size(d_, &offset, &stored) < 0 || stored != bytes + 4) return nullptr;
    // The chunk's tokens and, after them, its stored checksum; the least recently used buffer is reused.
    std::vector<int32_t> raw;
    if (lru_.size() >= capacity_) {
      raw = std::move(lru_.back().second);
      where_.erase(lru_.back().first);
      lru_.pop_back();
    }
    raw.resize(chunk_ + 1);
    auto* bytes_at = reinterpret_cast<uint8_t*>(raw.data());
    if (H5Dread_chunk(d_, H5P_DEFAULT, &offset, &mask, bytes_at) < 0) {
      error = fmt::format("chunk {} cannot be read ({})", k, h5_error());
      return nullptr;
    }
    if (mask != 0) return nullptr;        // its checksum filter was skipped: H5Dread reads it as it is
    const uint8_t* s = bytes_at + bytes;  // stored little-endian, as HDF5's UINT32DECODE reads it
    const uint32_t stored_sum =
        s[0] | s[1] << 8 | static_cast<uint32_t>(s[2]) << 16 | static_cast<uint32_t>(s[3]) << 24;
    const uint32_t sum = fletcher32(bytes_at, bytes);
    const uint32_t reversed = (sum & 0xff00ff00u) >> 8 | (sum & 0x00ff00ffu) << 8;
    if (stored_sum != sum && stored_sum != reversed) {
      error =
          fmt::format("Fletcher-32 checksum mismatch in chunk {} (elements [{}, {}))", k, k * chunk_, (k + 1) * chunk_);
      return nullptr;
    }
    lru_.emplace_front(k, std::move(raw));
    where_[k] = lru_.begin();
    return lru_.front().second.data();
  }

  H d_;
  hsize_t chunk_ = 0;  // elements a chunk; 0: read through H5Dread
  size_t capacity_ = 0;
  mutable std::list<std::pair<hsize_t, std::vector<int32_t>>> lru_;  // (chunk, its tokens), most recent first
  mutable std::unordered_map<hsize_t, std::list<std::pair<hsize_t, std::vector<int32_t>>>::iterator> where_;
};

}  // namespace

// One file of the corpus: its open datasets and each split's counts (read and checked once, on open).
struct CorpusPart {
  struct Split {
    int64_t sentences = 0, source_lines = 0;
    H lines;
    std::map<std::string, TokenDataset> tokens;  // per side
    std::map<std::string, H> offsets;
    std::map<std::string, int64_t> num_tokens;
  };
  std::string path;
  H file;
  std::map<std::string, Split> splits;
  std::map<std::string, std::string> inputs;  // "split side xxh64" -> the text file prepare read into that split
};

struct CorpusReader::Piece {
  const CorpusPart* part = nullptr;
  const CorpusPart::Split* split = nullptr;
  int64_t first_sentence = 0, first_token = 0, first_line = 0;  // the parts' before it
};

struct CorpusReader::Impl {
  std::vector<CorpusPart> parts;
  std::mutex mutex;  // one HDF5 call at a time: the background loader reads while the trainer validates
};

CorpusReader::CorpusReader(const std::string& path) : CorpusReader(std::vector<std::string>{path}) {}

CorpusReader::CorpusReader(const std::vector<std::string>& paths) : impl_(std::make_unique<Impl>()), paths_(paths) {
  if (paths.empty()) throw DataError("a corpus needs at least one .h5 file");
  path_ = fmt::format("{}", fmt::join(paths, ","));
  if (const auto twice = repeated_file(paths))
    throw DataError(
        fmt::format("{}: listed twice as a part of the corpus (parts {} and {}): its sentences would be read twice",
                    paths[twice->second], twice->first + 1, twice->second + 1));
  for (const auto& p : paths) open_part(p);
}

namespace {
// Opens a split's datasets. Counts, extents and the first and last offsets agree (metadata and two values per side:
// cheap on open).
CorpusPart::Split open_split(const CorpusPart& part, const std::string& split, const std::vector<std::string>& sides) {
  const std::string& path = part.path;
  auto fail = [&](const std::string& what) { throw DataError(fmt::format("{}: {}; {}", path, what, kHint)); };
  CorpusPart::Split s;
  H g = open_group(part.file, split, false);
  if (!read_i64_attr(g, "num_sentences", s.sentences) || s.sentences < 0)
    fail("/" + split + " attribute num_sentences is missing or negative");
  if (!read_i64_attr(g, "source_lines", s.source_lines) || s.source_lines < 0)
    fail("/" + split + " attribute source_lines is missing or negative");
  const int64_t n = s.sentences;
  s.lines = open_dataset(part.file, split + "/lines");
  if (s.lines < 0) fail("dataset /" + split + "/lines is missing");
  if (static_cast<int64_t>(extent(s.lines)) != n)
    fail(fmt::format("/{}/lines has {} entries but num_sentences is {}", split, extent(s.lines), n));
  auto need_integers = [&](hid_t d, const std::string& name, size_t size) {
    if (!integers_of(d, size))
      fail(fmt::format("dataset /{} has the wrong dtype (expected {}-byte integers)", name, size));
  };
  need_integers(s.lines, split + "/lines", 8);
  H access(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
  H5Pset_chunk_cache(access, 10007, kChunkCacheBytes, 1.0);
  for (const auto& side : sides) {
    const std::string base = split + "/" + side;
    H sg(H5Lexists(part.file, base.c_str(), H5P_DEFAULT) > 0 ? H5Gopen2(part.file, base.c_str(), H5P_DEFAULT) : -1,
         H5Gclose);
    int64_t nt = -1;
    if (sg < 0 || !read_i64_attr(sg, "num_tokens", nt)) fail("/" + base + " is missing");
    H offsets = open_dataset(part.file, base + "/offsets"), tokens = open_dataset(part.file, base + "/tokens", access);
    if (offsets < 0 || tokens < 0) fail("dataset /" + base + "/offsets or /" + base + "/tokens is missing");
    if (static_cast<int64_t>(extent(offsets)) != n + 1)
      fail(fmt::format("/{}/offsets has {} entries but num_sentences of /{} is {} (needs num_sentences + 1)", base,
                       extent(offsets), split, n));
    if (nt < 0 || static_cast<int64_t>(extent(tokens)) != nt)
      fail(fmt::format("/{}/tokens has {} entries but its num_tokens attribute is {}", base, extent(tokens), nt));
    need_integers(offsets, base + "/offsets", 8);
    need_integers(tokens, base + "/tokens", 4);
    int64_t ends[2] = {-1, -1};
    if (!read_slab(offsets, H5T_NATIVE_INT64, 0, 1, &ends[0]) ||
        !read_slab(offsets, H5T_NATIVE_INT64, static_cast<hsize_t>(n), 1, &ends[1]))
      fail("cannot read /" + base + "/offsets (" + h5_error() + "): the file is corrupted or truncated");
    if (ends[0] != 0) fail(fmt::format("/{}/offsets[0] must be 0 (got {})", base, ends[0]));
    if (ends[1] != nt)
      fail(fmt::format("/{}/offsets[{}] (the end of the last sentence) is {} but num_tokens is {}", base, n, ends[1],
                       nt));
    s.tokens.emplace(side, TokenDataset(std::move(tokens)));
    s.offsets[side] = std::move(offsets);
    s.num_tokens[side] = nt;
  }
  return s;
}
}  // namespace

namespace {

// The text files a corpus was prepared from, as prepare records them (attribute `inputs`: side, split, path and
// xxh64 of each); none for a file without that record (it is a check, not a requirement).
std::map<std::string, std::string> prepared_inputs(hid_t file) {
  std::map<std::string, std::string> out;
  std::string text;
  if (!read_str_attr(file, "inputs", text)) return out;
  const nlohmann::json inputs = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!inputs.is_array()) return out;
  for (const auto& in : inputs) {
    auto field = [&](const char* key) {
      return in.is_object() && in.contains(key) && in[key].is_string() ? in[key].get<std::string>() : std::string();
    };
    if (!field("split").empty() && !field("side").empty() && !field("xxh64").empty())
      out[field("split") + " " + field("side") + " " + field("xxh64")] = field("path");
  }
  return out;
}

}  // namespace

// Opens `path` and checks the format, version, kind and vocabularies (against the first part's) and every split.
void CorpusReader::open_part(const std::string& path) {
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw DataError(fmt::format("{}: is a directory, not an HDF5 corpus (give the .h5 file)", path));
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw DataError(path + ": corpus file does not exist or cannot be read");
    char head[4096];
    const size_t n = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
    // What it is instead, when that is plain: another tern file, or raw text that prepare turns into a corpus.
    const FileKind kind = file_kind(std::string(head, n));
    if (kind == FileKind::kCheckpoint)
      throw DataError(fmt::format("{}: not an HDF5 corpus: it is a tern checkpoint", path));
    if (kind == FileKind::kText)
      throw DataError(fmt::format(
          "{}: not an HDF5 corpus: it is a text file; HINT: make a corpus of it with `tern prepare`", path));
    throw DataError(fmt::format("{}: not an HDF5 file (truncated or corrupted?); {}", path, kHint));
  }
  CorpusPart part;
  part.path = path;
  part.file = H(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (part.file < 0) throw DataError(fmt::format("{}: cannot open corpus ({}); {}", path, h5_error(), kHint));
  std::string format, kind;
  int64_t version = 0;
  if (!read_str_attr(part.file, "format", format) || format != kCorpusFormat)
    throw DataError(path + ": not a tern corpus (attribute 'format' is '" + format + "', expected 'tern-corpus')");
  if (!read_i64_attr(part.file, "format_version", version) || version != kCorpusFormatVersion)
    throw DataError(fmt::format("{}: corpus format version {} is not supported (this tern reads version {}{}); {}",
                                path, version, kCorpusFormatVersion,
                                version == 1 ? ": version 1 does not record the input line of each sentence, which "
                                               "evaluate --ref needs to align references"
                                             : "",
                                kHint));
  if (!read_str_attr(part.file, "kind", kind)) throw DataError(path + ": attribute 'kind' is missing");
  const bool first = impl_->parts.empty();
  if (first) {
    kind_ = kind;
    try {
      sides_ = sides_of(kind_);
    } catch (const DataError& e) {
      throw DataError(path + ": " + e.what());
    }
  } else if (kind != kind_) {
    throw DataError(
        fmt::format("{}: this part of the corpus is {} but {} is {}: parts of one corpus must be of one kind", path,
                    kind, impl_->parts[0].path, kind_));
  }
  int64_t alignments = 0;
  read_i64_attr(part.file, "alignments", alignments);
  if (alignments != 0 && (kind != "parallel" || alignments != 1))
    throw DataError(fmt::format("{}: attribute 'alignments' is {} (1 is the only value, in a parallel corpus); {}",
                                path, alignments, kHint));
  if (first) {
    alignments_ = alignments == 1;
  } else if (alignments_ != (alignments == 1)) {
    throw DataError(fmt::format(
        "{}: this part of the corpus {} word alignments but {} {}: parts of one corpus must all have them (tern "
        "prepare --train-align) or none",
        path, alignments ? "has" : "has no", impl_->parts[0].path, alignments_ ? "has" : "has none"));
  }
  H vg = open_group(part.file, "vocab", false);
  if (vg < 0) throw DataError(fmt::format("{}: group /vocab is missing; {}", path, kHint));
  for (size_t k = 0; k < sides_.size(); ++k) {
    VocabInfo v = read_vocab(vg, path, sides_[k]);
    if (first) {
      vocabs_.push_back(std::move(v));
    } else if (v.hash != vocabs_[k].hash) {
      throw DataError(fmt::format(
          "{}: its {} vocabulary (hash {}) differs from that of {} (hash {}): parts of one corpus must share their "
          "SentencePiece models; HINT: prepare every part with --spm-src/--spm-tgt (or --spm-model) of the first",
          path, sides_[k], v.hash, impl_->parts[0].path, vocabs_[k].hash));
    }
  }
  // A part prepared from a text of an earlier one (a copy of a part, prepare run twice on one input, every part of a
  // job array given the same --valid-src) would have those sentences read twice.
  part.inputs = prepared_inputs(part.file);
  for (const auto& earlier : impl_->parts)
    for (const auto& [key, file] : part.inputs)
      if (const auto it = earlier.inputs.find(key); it != earlier.inputs.end()) {
        const size_t a = key.find(' '), b = key.find(' ', a + 1);
        throw DataError(fmt::format(
            "{}: was prepared from the same {} text of the {} split as {} ({} and {}, xxh64 {}): its sentences would "
            "be read twice; list each part once, and give each part its own text (a copy of a part, or prepare run "
            "twice on one text?)",
            path, key.substr(a + 1, b - a - 1), key.substr(0, a), earlier.path, it->second, file, key.substr(b + 1)));
      }
  std::vector<std::string> stored = sides_;
  if (alignments_) stored.emplace_back(kAlignSide);
  for (const char* split : {"train", "valid", "test"})
    if (H5Lexists(part.file, split, H5P_DEFAULT) > 0) part.splits[split] = open_split(part, split, stored);
  impl_->parts.push_back(std::move(part));
}

CorpusReader::~CorpusReader() = default;

std::vector<std::string> CorpusReader::splits() const {
  std::vector<std::string> out;
  for (const char* s : {"train", "valid", "test"})
    if (has_split(s)) out.emplace_back(s);
  return out;
}

bool CorpusReader::has_split(const std::string& split) const {
  for (const auto& p : impl_->parts)
    if (p.splits.count(split)) return true;
  return false;
}

const VocabInfo& CorpusReader::vocab(const std::string& side) const {
  for (const auto& v : vocabs_)
    if (v.side == side) return v;
  throw DataError(path_ + ": corpus has no side '" + side + "' (it is " + kind_ + ")");
}

std::string CorpusReader::attr(const std::string& name) const { return part_attrs(name)[0]; }

std::vector<std::string> CorpusReader::part_attrs(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<std::string> out;
  for (const auto& p : impl_->parts) read_str_attr(p.file, name, out.emplace_back());
  return out;
}

// The parts that hold `split`, in order, with the sentences, tokens of `side` ("" for none) and input lines before
// each.
std::vector<CorpusReader::Piece> CorpusReader::pieces(const std::string& split, const std::string& side) const {
  // Before the parts' token counts are looked up by side.
  if (!side.empty() && std::find(sides_.begin(), sides_.end(), side) == sides_.end() &&
      !(alignments_ && side == kAlignSide))
    throw DataError(path_ + ": corpus has no side '" + side + "' (it is " + kind_ +
                    (side == kAlignSide ? "; HINT: tern prepare --train-align stores word alignments)" : ")"));
  std::vector<Piece> out;
  Piece next;
  for (const auto& p : impl_->parts) {
    auto it = p.splits.find(split);
    if (it == p.splits.end()) continue;
    next.part = &p;
    next.split = &it->second;
    out.push_back(next);
    next.first_sentence += it->second.sentences;
    next.first_line += it->second.source_lines;
    if (!side.empty()) next.first_token += it->second.num_tokens.at(side);
  }
  if (out.empty())
    throw DataError(fmt::format(
        "{}: split '{}' is missing (has: {}){}", path_, split, fmt::join(splits(), ", "),
        split == "valid" || split == "test"
            ? fmt::format("; HINT: tern prepare makes it from --{0}-src/--{0}-tgt (or --{0}-text) files, or holds out "
                          "--{0}-fraction of the training lines",
                          split)
            : ""));
  return out;
}

int64_t CorpusReader::num_sentences(const std::string& split) const {
  int64_t n = 0;
  for (const auto& p : pieces(split)) n += p.split->sentences;
  return n;
}

std::vector<int64_t> CorpusReader::part_sentences(const std::string& split) const {
  std::vector<int64_t> n;
  for (const auto& p : impl_->parts) {
    auto it = p.splits.find(split);
    n.push_back(it == p.splits.end() ? 0 : it->second.sentences);
  }
  return n;
}

int64_t CorpusReader::num_tokens(const std::string& split, const std::string& side) const {
  int64_t n = 0;
  for (const auto& p : pieces(split, side)) n += p.split->num_tokens.at(side);
  return n;
}

int64_t CorpusReader::source_lines(const std::string& split) const {
  int64_t n = 0;
  for (const auto& p : pieces(split)) n += p.split->source_lines;
  return n;
}

std::vector<int64_t> CorpusReader::line_numbers(const std::string& split) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<int64_t> out;
  for (const auto& p : pieces(split)) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(p.split->sentences));
    if (!read_slab(p.split->lines, H5T_NATIVE_INT64, 0, static_cast<hsize_t>(p.split->sentences), out.data() + at))
      throw DataError(p.part->path + ": cannot read /" + split + "/lines (" + h5_error() +
                      "): the file is corrupted or truncated");
    int64_t prev = 0;
    for (size_t i = at; i < out.size(); ++i) {
      if (out[i] <= prev || out[i] > p.split->source_lines)
        throw DataError(
            fmt::format("{}: /{}/lines[{}] is {}: line numbers must increase and lie in [1, {}] (the "
                        "input's line count); {}",
                        p.part->path, split, i - at, out[i], p.split->source_lines, kHint));
      prev = out[i];
      out[i] += p.first_line;  // the parts' inputs read as one file, in order
    }
  }
  return out;
}

std::vector<int64_t> CorpusReader::offsets(const std::string& split, const std::string& side, int64_t begin,
                                           int64_t end) const {
  const int64_t n = num_sentences(split);
  if (begin < 0 || end < begin || end > n)
    throw DataError(
        fmt::format("{}: sentence range [{}, {}) outside split '{}' of {} sentences", path_, begin, end, split, n));
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<int64_t> out;
  for (const auto& p : pieces(split, side)) {
    // This part's sentences of the range (an empty range reads the one offset where it starts).
    const int64_t pb = p.first_sentence, pe = pb + p.split->sentences;
    const int64_t b = std::max(begin, pb), e = std::min(end, pe);
    if (e < b || (e == b && (begin != end || !out.empty()))) continue;
    const auto count = static_cast<hsize_t>(e - b) + 1;
    std::vector<int64_t> part(count);
    if (!read_slab(p.split->offsets.at(side), H5T_NATIVE_INT64, static_cast<hsize_t>(b - pb), count, part.data()))
      throw DataError(fmt::format("{}: cannot read /{}/{}/offsets ({}): the file is corrupted or truncated",
                                  p.part->path, split, side, h5_error()));
    const int64_t nt = p.split->num_tokens.at(side);
    for (size_t i = 0; i < part.size(); ++i)
      if (part[i] < 0 || part[i] > nt || (i > 0 && part[i] < part[i - 1]))
        throw DataError(fmt::format("{}: /{}/{}/offsets[{}] is {}: offsets must not decrease and lie in [0, {}]; {}",
                                    p.part->path, split, side, b - pb + static_cast<int64_t>(i), part[i], nt, kHint));
    // The first offset of a part repeats the last of the part before (both are where this part's tokens start).
    for (size_t i = out.empty() ? 0 : 1; i < part.size(); ++i) out.push_back(part[i] + p.first_token);
  }
  return out;
}

std::vector<int32_t> CorpusReader::gather(const std::string& split, const std::string& side,
                                          const std::vector<std::pair<int64_t, int64_t>>& ranges) const {
  const std::vector<Piece> parts = pieces(split, side);
  const int64_t total = parts.back().first_token + parts.back().split->num_tokens.at(side);
  // Output position of each range, in the order given.
  std::vector<int64_t> at(ranges.size() + 1, 0);
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto [a, b] = ranges[i];
    if (a < 0 || b < a || b > total)
      throw DataError(
          fmt::format("{}: token range [{}, {}) outside /{}/{} of {} tokens", path_, a, b, split, side, total));
    at[i + 1] = at[i] + (b - a);
  }
  std::vector<size_t> order(ranges.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return ranges[x] < ranges[y]; });
  std::vector<int32_t> out(static_cast<size_t>(at.back()));
  // Token ids lie in the vocabulary; alignment positions are not negative (the batcher checks them against the
  // sentence lengths).
  const int64_t vocab_size = side == kAlignSide ? std::numeric_limits<int32_t>::max() : vocab(side).size;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  size_t k = 0;
  for (const auto& p : parts) {
    const int64_t end = p.first_token + p.split->num_tokens.at(side);
    // This part's ranges in file order, each read straight to its place in the output (one read a range: HDF5 1.10
    // projects a union of hyperslabs onto every chunk it touches, which costs more than the reads themselves for a
    // batch of sentences scattered over the file); a range equal to the one before it is copied, not read again.
    for (size_t last = order.size(); k < order.size() && ranges[order[k]].first < end; ++k) {
      const size_t r = order[k];
      const auto [a, b] = ranges[r];
      if (b > end) throw DataError(fmt::format("{}: token range [{}, {}) crosses two parts", path_, a, b));
      if (b == a) continue;
      int32_t* to = out.data() + at[r];
      if (last < order.size() && ranges[last] == ranges[r]) {
        std::copy_n(out.data() + at[last], b - a, to);
        continue;
      }
      if (last < order.size() && a < ranges[last].second)
        throw DataError(fmt::format("{}: token ranges [{}, {}) and [{}, {}) overlap", path_, ranges[last].first,
                                    ranges[last].second, a, b));
      const std::string error =
          p.split->tokens.at(side).read(static_cast<hsize_t>(a - p.first_token), static_cast<hsize_t>(b - a), to);
      if (!error.empty())
        throw DataError(fmt::format("{}: cannot read /{}/{}/tokens ({}): the file is corrupted or truncated; {}",
                                    p.part->path, split, side, error, kHint));
      for (int64_t i = 0; i < b - a; ++i)
        if (to[i] < 0 || to[i] >= vocab_size)
          throw DataError(
              side == kAlignSide
                  ? fmt::format("{}: alignment position {} at /{}/{}/tokens[{}] is negative; {}", p.part->path, to[i],
                                split, side, a - p.first_token + i, kHint)
                  : fmt::format("{}: token id {} at /{}/{}/tokens[{}] is outside the vocabulary [0, {}); {}",
                                p.part->path, to[i], split, side, a - p.first_token + i, vocab_size, kHint));
      last = r;
    }
  }
  return out;
}

TokenBlock CorpusReader::read(const std::string& split, const std::string& side, int64_t begin, int64_t end) const {
  TokenBlock b;
  b.first_sentence = begin;
  b.offsets = offsets(split, side, begin, end);
  const int64_t t0 = b.offsets.front(), t1 = b.offsets.back();
  std::vector<std::pair<int64_t, int64_t>> ranges;  // [t0, t1) cut where parts end
  for (const auto& p : pieces(split, side)) {
    const int64_t a = std::max(t0, p.first_token), e = std::min(t1, p.first_token + p.split->num_tokens.at(side));
    if (a < e) ranges.emplace_back(a, e);
  }
  b.tokens = gather(split, side, ranges);
  for (auto& o : b.offsets) o -= t0;
  return b;
}

std::string CorpusReader::identity() const {
  std::string id = kind_;
  for (const auto& v : vocabs_) id += "|" + v.side + ":" + v.hash;
  if (alignments_) id += std::string("|") + kAlignSide;
  for (const auto& s : splits()) id += fmt::format("|{}:{}", s, num_sentences(s));
  return id;
}

std::string CorpusReader::identity_sizes(const std::string& identity) {
  std::vector<std::string> out;  // "kind|src:HASH|tgt:HASH|train:N|valid:N" -> "train N, valid N"
  std::istringstream fields(identity);
  for (std::string f; std::getline(fields, f, '|');)
    for (const char* split : {"train", "valid", "test"})
      if (f.rfind(std::string(split) + ":", 0) == 0) out.push_back(split + (" " + f.substr(std::strlen(split) + 1)));
  return fmt::format("{}", fmt::join(out, ", "));
}

}  // namespace tern
