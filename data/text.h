// Text helpers shared by corpus preparation and evaluation: UTF-8 checks, whitespace trimming, line reading.
#pragma once
#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/files.h"

namespace tern {

// Byte offset of the first invalid UTF-8 sequence, or -1 when `s` is valid.
int64_t invalid_utf8_at(const std::string& s);
// What the first bytes of a file say it is, to name a file given in another's place (a corpus where a checkpoint
// belongs, ...): a tern checkpoint (its magic), an HDF5 file (its signature), text (no NUL, valid UTF-8 but for a
// character cut by the end of `head`), or none of these.
enum class FileKind { kCheckpoint, kHdf5, kText, kOther };
// The first 8 bytes of every tern checkpoint (trainer/checkpoint.cpp writes them; docs/checkpoint_format.md).
inline constexpr std::string_view kCheckpointMagic = "TERNCKPT";
FileKind file_kind(const std::string& head);
// Decodes valid UTF-8 into code points (call invalid_utf8_at first for untrusted text).
std::u32string utf8_decode(const std::string& s);
// The bytes of the UTF-8 sequence that starts with `lead` (as utf8_decode reads it: 1 to 4).
size_t utf8_sequence_length(unsigned char lead);
// Python's str.isspace() code points, which str.split() and str.rstrip() use.
bool py_space(char32_t c);
std::string utf8_encode(const std::u32string& s);
// ASCII whitespace trim and collapse of inner runs to one space.
std::string squeeze_spaces(const std::string& s);
// The words of `s` separated by that ASCII whitespace (as an istream's >> reads them).
int64_t count_words(const std::string& s);
// getline that also strips a trailing '\r'. A line over kMaxLineBytes is a DataError naming `name` (a binary file
// or a device such as /dev/zero would otherwise grow one line without bound).
constexpr size_t kMaxLineBytes = size_t{64} << 20;
bool read_line(std::istream& in, std::string& line, const std::string& name = "input");
// A text input opened for reading, gzip-compressed or not (zlib reads other files as they are, so a .gz name is not
// needed and a plain file named .gz reads as plain). A corrupt or truncated gzip stream is a DataError naming the
// file when the read reaches it, never a silently shorter text.
class TextFile : public std::istream {
 public:
  TextFile(const std::string& path, const std::string& what);
  ~TextFile() override;
  TextFile(const TextFile&) = delete;
  TextFile& operator=(const TextFile&) = delete;

 private:
  class GzBuffer;
  std::unique_ptr<GzBuffer> buf_;
};
// Opens a text input for reading; a missing, unreadable or directory path is a DataError naming `what` and the file.
// Pipes and devices are allowed (read_line bounds each line).
std::unique_ptr<TextFile> open_text_file(const std::string& path, const std::string& what);
// `text` gzip-compressed (deflate level 6; no name or time in the header, so the same text gives the same bytes),
// fed to zlib `chunk` bytes at a time (at most 1 GiB: zlib counts in 32 bits).
std::string gzip_compress(const std::string& text, size_t chunk = size_t{1} << 30);
// A text output written as a stream and replaced atomically (core's AtomicFile): nothing is at `path` (or the previous
// file stays) until commit(); gzip-compressed as gzip_compress does when `path` ends in ".gz" (as Marian writes such
// outputs), so that zcat and other tools read what the name says. Destroyed without commit(), nothing is written.
class TextWriter : public std::ostream {
 public:
  explicit TextWriter(const std::string& path);  // throws IoError when the file cannot be created
  ~TextWriter() override;
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;
  void commit();  // throws IoError naming the file (a full disk, ...)
  const std::string& temporary() const { return file_->temporary(); }  // AtomicFile's

 private:
  class GzSink;
  std::unique_ptr<AtomicFile> file_;
  std::unique_ptr<GzSink> gz_;
};
// Writes a whole text output at once (a TextWriter).
void write_text_file(const std::string& path, const std::string& text);
// Every line of the text file `path` (open_text_file, then read_utf8_lines).
std::vector<std::string> read_utf8_file(const std::string& path, const std::string& what);
// Every line of `in`; invalid UTF-8 is a DataError "NAME:LINE: invalid UTF-8 at byte B".
std::vector<std::string> read_utf8_lines(std::istream& in, const std::string& name);

}  // namespace tern
