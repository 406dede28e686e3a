#include "data/text.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "core/errors.h"
#include "core/files.h"

namespace tern {

int64_t invalid_utf8_at(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return static_cast<int64_t>(i);
    }
    if (i + len > n) return static_cast<int64_t>(i);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return static_cast<int64_t>(i);
    i += len;
  }
  return -1;
}

FileKind file_kind(const std::string& head) {
  if (head.rfind(kCheckpointMagic, 0) == 0) return FileKind::kCheckpoint;
  if (head.rfind("\x89HDF\r\n\x1a\n", 0) == 0) return FileKind::kHdf5;
  const int64_t bad = invalid_utf8_at(head);
  const bool text =
      !head.empty() && head.find('\0') == std::string::npos && (bad < 0 || bad + 4 > static_cast<int64_t>(head.size()));
  return text ? FileKind::kText : FileKind::kOther;
}

size_t utf8_sequence_length(unsigned char lead) {
  return lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : 4;
}

bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = p[i];
    size_t len = utf8_sequence_length(c);
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

namespace {
bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
}  // namespace

std::string squeeze_spaces(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (ascii_space(c)) {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  return out;
}

int64_t count_words(const std::string& s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    n += !ascii_space(c) && !in_word;
    in_word = !ascii_space(c);
  }
  return n;
}

class TextFile::GzBuffer : public std::streambuf {
 public:
  GzBuffer(gzFile f, std::string path) : f_(f), path_(std::move(path)) {}
  ~GzBuffer() override { gzclose(f_); }
  GzBuffer(const GzBuffer&) = delete;
  GzBuffer& operator=(const GzBuffer&) = delete;

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    const int n = gzread(f_, buf_.data(), static_cast<unsigned>(buf_.size()));
    int err = Z_OK;
    std::string msg = gzerror(f_, &err);
    if (msg.rfind(path_ + ": ", 0) == 0) msg.erase(0, path_.size() + 2);  // zlib names the file too
    // Z_BUF_ERROR at the end: the file ended inside a gzip stream (truncated).
    if (n < 0 || (err != Z_OK && (n == 0 || err != Z_BUF_ERROR)))
      throw DataError(fmt::format("{}: the gzip data is {} ({}): the text cannot be read whole", path_,
                                  err == Z_BUF_ERROR ? "truncated" : "corrupt", msg));
    if (n == 0) return traits_type::eof();
    setg(buf_.data(), buf_.data(), buf_.data() + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  gzFile f_;
  std::string path_;
  std::array<char, 1 << 16> buf_{};
};

TextFile::TextFile(const std::string& path, const std::string& what) : std::istream(nullptr) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw DataError(path + ": " + what + " is a directory, not a text file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw DataError(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
  gzbuffer(f, 1 << 17);
  buf_ = std::make_unique<GzBuffer>(f, path);
  rdbuf(buf_.get());
  exceptions(std::ios::badbit);  // a gzip error inside peek() & co. reaches the caller, as from read_line
}

TextFile::~TextFile() = default;

std::unique_ptr<TextFile> open_text_file(const std::string& path, const std::string& what) {
  return std::make_unique<TextFile>(path, what);
}

namespace {

// Starts a gzip stream in `z` (deflate level 6, no name or time in the header, so the same text gives the same bytes).
// In place: zlib's state points back at its z_stream, so an initialised stream must not be copied or moved.
void start_gzip(z_stream& z) {
  z = z_stream{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)  // 16 +: a gzip wrapper
    throw std::runtime_error("zlib: deflateInit2 failed");
}

// Compresses `n` bytes (at most 1 GiB: zlib counts in 32 bits) through `z`, Z_FINISH when `last`, passing the output
// to `sink` as it comes.
template <typename Sink>
void deflate_chunk(z_stream& z, const char* data, size_t n, bool last, Sink&& sink) {
  std::array<char, size_t{1} << 16> buf{};
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  z.avail_in = static_cast<uInt>(n);
  int rc = Z_OK;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    rc = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
      throw std::runtime_error(fmt::format("zlib: deflate failed ({})", rc));
    sink(buf.data(), buf.size() - z.avail_out);
  } while (last ? rc != Z_STREAM_END : (z.avail_in > 0 || z.avail_out == 0));
}

}  // namespace

std::string gzip_compress(const std::string& text, size_t chunk) {
  z_stream z;
  start_gzip(z);
  const size_t kChunk = std::clamp<size_t>(chunk, 1, size_t{1} << 30);  // texts over 4 GiB (an ARPA model) whole
  std::string out;
  const auto append = [&](const char* p, size_t n) { out.append(p, n); };
  try {
    size_t done = 0;
    do {
      const size_t n = std::min(kChunk, text.size() - done);
      deflate_chunk(z, text.data() + done, n, done + n == text.size(), append);
      done += n;
    } while (done < text.size());
  } catch (...) {
    deflateEnd(&z);
    throw;
  }
  deflateEnd(&z);
  return out;
}

// The gzip stream of a TextWriter: text gathered 1 MiB at a time, compressed into the file.
class TextWriter::GzSink : public std::streambuf {
 public:
  explicit GzSink(AtomicFile& file) : file_(file), in_(size_t{1} << 20) {
    start_gzip(z_);
    setp(in_.data(), in_.data() + in_.size());
  }
  ~GzSink() override { deflateEnd(&z_); }
  GzSink(const GzSink&) = delete;
  GzSink& operator=(const GzSink&) = delete;
  void finish() { compress(true); }

 protected:
  int_type overflow(int_type c) override {
    compress(false);
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }

 private:
  void compress(bool last) {
    deflate_chunk(z_, pbase(), static_cast<size_t>(pptr() - pbase()), last,
                  [&](const char* p, size_t n) { file_.sputn(p, static_cast<std::streamsize>(n)); });
    setp(in_.data(), in_.data() + in_.size());
  }
  AtomicFile& file_;
  z_stream z_{};
  std::vector<char> in_;
};

TextWriter::TextWriter(const std::string& path) : std::ostream(nullptr), file_(std::make_unique<AtomicFile>(path)) {
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) gz_ = std::make_unique<GzSink>(*file_);
  rdbuf(gz_ ? static_cast<std::streambuf*>(gz_.get()) : file_.get());
}

TextWriter::~TextWriter() = default;

void TextWriter::commit() {
  if (gz_) gz_->finish();
  file_->commit();
}

void write_text_file(const std::string& path, const std::string& text) {
  TextWriter out(path);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.commit();
}

std::vector<std::string> read_utf8_file(const std::string& path, const std::string& what) {
  return read_utf8_lines(*open_text_file(path, what), path);
}

bool read_line(std::istream& in, std::string& line, const std::string& name) {
  line.clear();
  std::streambuf* buf = in.rdbuf();
  if (!in.good() || buf == nullptr) return false;
  bool any = false;
  for (;;) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      if (!any) in.setstate(std::ios::failbit);
      break;
    }
    any = true;
    if (c == '\n') break;
    line.push_back(static_cast<char>(c));
    if (line.size() > kMaxLineBytes)
      throw DataError(fmt::format("{}: a line is longer than {} MiB: is this a text file?", name, kMaxLineBytes >> 20));
  }
  if (!any) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

std::vector<std::string> read_utf8_lines(std::istream& in, const std::string& name) {
  std::vector<std::string> out;
  std::string line;
  while (read_line(in, line, name)) {
    int64_t bad = invalid_utf8_at(line);
    if (bad >= 0) throw DataError(fmt::format("{}:{}: invalid UTF-8 at byte {}", name, out.size() + 1, bad + 1));
    out.push_back(line);
  }
  return out;
}

}  // namespace tern
