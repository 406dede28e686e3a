// Files that outlive the process: atomic writes (temporary name, fsync, rename), clean-up of the temporaries an
// interrupted write leaves, and bounded reads that refuse what is not a regular file of a sane size.
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

namespace tern {

// A file written as a stream and replaced atomically: bytes go to PATH.tmp-PID (through a symbolic link, next to the
// file it names), and commit() fsyncs it and renames it over PATH. Until then any previous file at PATH is intact;
// destroyed without commit() (an exception), the temporary is removed. A device or pipe (/dev/stdout, /dev/null) is
// written in place. Write errors are kept and thrown by commit() as IoError naming PATH.
class AtomicFile : public std::streambuf {
 public:
  explicit AtomicFile(const std::string& path);  // throws IoError when the temporary cannot be created
  ~AtomicFile() override;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void commit();
  const std::string& temporary() const { return tmp_; }  // "" for a device or pipe (written in place)

 protected:
  int_type overflow(int_type c) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  bool drain();  // writes the buffer out; false after a failed write (its errno kept in error_)
  std::string path_, target_, tmp_, kept_;
  int fd_ = -1;
  int error_ = 0;
  bool committed_ = false;
  char buf_[1 << 16];
};
// While alive, a terminating signal (SIGINT, SIGTERM, SIGHUP) removes `path` before the process dies of it (the
// default action, raised again), so that a long write (tern prepare's output, translate -o's temporary) leaves no
// partial file behind (a signal the process ignores, as under nohup, stays ignored); the signals' previous handlers
// come back when the last guard goes. At most 4 at a time (more are not guarded). Not for a process that handles
// these signals itself (training's pre-emption).
class RemoveOnSignal {
 public:
  explicit RemoveOnSignal(const std::string& path);
  ~RemoveOnSignal();
  RemoveOnSignal(const RemoveOnSignal&) = delete;
  RemoveOnSignal& operator=(const RemoveOnSignal&) = delete;

 private:
  int slot_ = -1;
};
// Writes `content` to `path` atomically (an AtomicFile). On failure throws IoError naming the file; any previous file
// at `path` is intact.
void write_file_atomic(const std::string& path, const std::string& content);
// Removes the temporary files that interrupted write_file_atomic calls left in `dir`; returns their paths.
std::vector<std::string> remove_stale_temporaries(const std::string& dir);
// The temporary name write_file_atomic uses for `path` in this process.
std::string temporary_name(const std::string& path);
// Whether `name` is a temporary written for `target` (TARGET.tmp-PID) by a process that no longer runs.
bool is_orphaned_temporary(const std::string& name, const std::string& target);

// Reads a whole regular file of at most `max_bytes`; throws IoError naming `what` and the file otherwise (a device
// such as /dev/zero or a directory is refused before reading).
std::string read_file_bounded(const std::string& path, uint64_t max_bytes, const std::string& what);
// The first `n` bytes of a regular file (fewer when it is shorter); throws IoError like read_file_bounded.
std::string read_file_head(const std::string& path, size_t n, const std::string& what);
// Throws IoError unless `path` names a regular file that can be opened for reading; returns its size in bytes.
uint64_t regular_file_size(const std::string& path, const std::string& what);

// Whether two paths name the same file: an existing one by inode (links, relative paths), one yet to be written by
// its normalised absolute path.
bool same_file(const std::string& a, const std::string& b);
// The positions (earlier, later) of the first path that names the same file as an earlier one, if any.
std::optional<std::pair<size_t, size_t>> repeated_file(const std::vector<std::string>& paths);

// A read-only stream buffer over a file descriptor (stdin): its in_avail() counts exactly the bytes read and not yet
// consumed, so that with fd_readable a reader can tell when its input pauses (a caller waiting for an answer).
class FdStreambuf : public std::streambuf {
 public:
  explicit FdStreambuf(int fd) : fd_(fd) {}

 protected:
  int_type underflow() override;

 private:
  int fd_;
  char buf_[1 << 16];
};
// Whether reading `fd` would return at once (data, or the end of the input, is waiting).
bool fd_readable(int fd);

// Flushes `out` and throws IoError naming `what` ("standard output") when anything written to it was lost (a full
// disk, a closed descriptor): without the check a command's output could vanish while it exits 0.
void flush_checked(std::ostream& out, const std::string& what);

// Whether a command's input or output path means its standard stream: "" (not given) or "-".
inline bool is_standard_stream(const std::string& path) { return path.empty() || path == "-"; }

// A file a command reads or writes, with the option that named it (for messages).
struct NamedPath {
  std::string option;  // "--hyp-out", "-i", ...
  std::string path;    // "" or "-": none (stdin/stdout)
};
// Checked before any work, so that a typo costs nothing: each output's directory exists and is writable, the output
// is not a directory, not one of the inputs (the same file by any name: writing it would destroy that input) and
// not another output of the same command (one would silently replace the other), and, unless `overwrite`
// (--overwrite), not an existing file. Throws IoError naming the option(s).
void check_outputs(const std::vector<NamedPath>& outputs, const std::vector<NamedPath>& inputs, bool overwrite);

}  // namespace tern
