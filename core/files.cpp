#include "core/files.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/errors.h"

namespace fs = std::filesystem;

namespace tern {
namespace {

constexpr const char* kTempMarker = ".tmp-";  // temporary names: PATH.tmp-PID

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string temporary_name(const std::string& path) { return path + kTempMarker + std::to_string(::getpid()); }

bool is_orphaned_temporary(const std::string& name, const std::string& target) {
  const std::string prefix = target + kTempMarker;
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return false;
  const std::string pid = name.substr(prefix.size());
  if (pid.find_first_not_of("0123456789") != std::string::npos || pid.size() > 9) return false;
  const long p = std::stol(pid);
  return p != ::getpid() && ::kill(static_cast<pid_t>(p), 0) != 0 && errno == ESRCH;
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(kTempMarker) != std::string::npos) {
      std::error_code ec;
      if (fs::remove(e.path(), ec)) removed.push_back(e.path().string());
    }
  return removed;
}

namespace {

// Writes all `size` bytes of `data` to `fd`; returns 0 or the errno of the failed write.
int write_all(int fd, const char* data, size_t size) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fd, data + off, size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    off += static_cast<size_t>(n);
  }
  return 0;
}

// An existing path that is neither a regular file nor a directory (after links): a device or a pipe (/dev/stdout,
// /dev/null, a shell's >(...)), written in place since it cannot be replaced.
bool is_special(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  setp(buf_, buf_ + sizeof(buf_));
  if (is_special(path)) {
    fd_ = ::open(path.c_str(), O_WRONLY);
    if (fd_ < 0) throw IoError(path + ": cannot write (" + std::strerror(errno) + ")");
    return;
  }
  // Through a symbolic link the file it names is replaced and the link stays.
  std::error_code link_ec;
  fs::path p = fs::is_symlink(path, link_ec) ? fs::weakly_canonical(path, link_ec) : fs::path(path);
  if (link_ec || p.empty()) p = path;
  target_ = p.string(), tmp_ = temporary_name(target_);
  kept_ = fs::exists(p, link_ec) ? "; the previous file is intact" : "; nothing was written";
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd_ < 0) throw IoError(path + ": cannot write (" + std::strerror(errno) + ")" + kept_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

bool AtomicFile::drain() {
  if (error_ == 0 && pptr() > pbase()) error_ = write_all(fd_, pbase(), static_cast<size_t>(pptr() - pbase()));
  setp(buf_, buf_ + sizeof(buf_));
  return error_ == 0;
}

AtomicFile::int_type AtomicFile::overflow(int_type c) {
  if (!drain()) return traits_type::eof();
  if (!traits_type::eq_int_type(c, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(c);
    pbump(1);
  }
  return traits_type::not_eof(c);
}

std::streamsize AtomicFile::xsputn(const char* s, std::streamsize n) {
  if (n <= epptr() - pptr()) {
    std::memcpy(pptr(), s, static_cast<size_t>(n));
    pbump(static_cast<int>(n));
    return n;
  }
  if (!drain()) return 0;
  error_ = write_all(fd_, s, static_cast<size_t>(n));
  return error_ == 0 ? n : 0;
}

int AtomicFile::sync() { return drain() ? 0 : -1; }

void AtomicFile::commit() {
  drain();
  if (error_ != 0) throw IoError(path_ + ": write failed (" + std::strerror(error_) + ")" + kept_);
  if (tmp_.empty()) {  // a device or pipe: written in place
    committed_ = true;
    return;
  }
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    throw IoError(path_ + ": flush failed (" + std::strerror(errno) + ")" + kept_);
  }
  fd_ = -1;
  std::error_code ec;
  fs::rename(tmp_, target_, ec);
  if (ec) throw IoError(path_ + ": cannot replace it (" + ec.message() + ")" + kept_);
  committed_ = true;
  const fs::path dir = fs::path(target_).parent_path();
  fsync_dir(dir.empty() ? fs::path(".") : dir);
}

namespace {
constexpr int kGuardSlots = 4;
char g_guarded[kGuardSlots][4096];                     // the paths to remove, written before their slot is marked used
volatile std::sig_atomic_t g_guard_used[kGuardSlots];  // NOLINT: read by the signal handler
constexpr std::array<int, 3> kTerminating{SIGINT, SIGTERM, SIGHUP};
std::array<void (*)(int), 3> g_previous{};

extern "C" void remove_guarded_and_die(int sig) {
  for (int i = 0; i < kGuardSlots; ++i)
    if (g_guard_used[i]) ::unlink(g_guarded[i]);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

int guards_in_use() {
  int n = 0;
  for (int i = 0; i < kGuardSlots; ++i) n += g_guard_used[i] ? 1 : 0;
  return n;
}
}  // namespace

RemoveOnSignal::RemoveOnSignal(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(g_guarded[0])) return;
  for (int i = 0; i < kGuardSlots && slot_ < 0; ++i)
    if (!g_guard_used[i]) slot_ = i;
  if (slot_ < 0) return;
  std::snprintf(g_guarded[slot_], sizeof(g_guarded[slot_]), "%s", path.c_str());
  if (guards_in_use() == 0)
    for (size_t k = 0; k < kTerminating.size(); ++k) {
      g_previous[k] = std::signal(kTerminating[k], remove_guarded_and_die);
      if (g_previous[k] == SIG_IGN) std::signal(kTerminating[k], SIG_IGN);  // ignored (nohup, a background job): stays
    }
  g_guard_used[slot_] = 1;
}

RemoveOnSignal::~RemoveOnSignal() {
  if (slot_ < 0) return;
  g_guard_used[slot_] = 0;
  if (guards_in_use() == 0)
    for (size_t k = 0; k < kTerminating.size(); ++k) std::signal(kTerminating[k], g_previous[k]);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile file(path);
  file.sputn(content.data(), static_cast<std::streamsize>(content.size()));
  file.commit();
}

uint64_t regular_file_size(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw IoError(fmt::format("{}: cannot open {} ({})", path, what, std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    throw IoError(fmt::format("{}: {} must be a regular file (this is a {})", path, what,
                              S_ISDIR(st.st_mode) ? "directory" : "device, pipe or socket"));
  if (::access(path.c_str(), R_OK) != 0)
    throw IoError(fmt::format("{}: cannot open {} ({})", path, what, std::strerror(errno)));
  return static_cast<uint64_t>(st.st_size);
}

namespace {

bool named(const NamedPath& p) { return !is_standard_stream(p.path); }

}  // namespace

FdStreambuf::int_type FdStreambuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  ssize_t n = 0;
  do {
    n = ::read(fd_, buf_, sizeof buf_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw IoError(fmt::format("standard input: read failed ({})", std::strerror(errno)));
  if (n == 0) return traits_type::eof();
  setg(buf_, buf_, buf_ + n);
  return traits_type::to_int_type(*gptr());
}

bool fd_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  return r != 0;  // an error counts as readable: the read then says what it is
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec) && !ec;
  const fs::path ca = fs::weakly_canonical(fs::absolute(a, ec), ec), cb = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return !ec && ca == cb;
}

std::optional<std::pair<size_t, size_t>> repeated_file(const std::vector<std::string>& paths) {
  for (size_t i = 0; i < paths.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (same_file(paths[j], paths[i])) return std::make_pair(j, i);
  return std::nullopt;
}

void check_outputs(const std::vector<NamedPath>& outputs, const std::vector<NamedPath>& inputs, bool overwrite) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedPath& out = outputs[i];
    if (!named(out)) continue;
    if (is_special(out.path)) {  // a device or a pipe: written in place, nothing to destroy
      if (::access(out.path.c_str(), W_OK) != 0)
        throw IoError(fmt::format("{}: {}: cannot write ({}) (nothing was computed)", out.path, out.option,
                                  std::strerror(errno)));
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(out.path, ec))
      throw IoError(
          fmt::format("{}: {} is a directory; give a file name (nothing was computed)", out.path, out.option));
    fs::path dir = fs::path(out.path).parent_path();
    if (dir.empty()) dir = ".";
    if (!fs::is_directory(dir, ec))
      throw IoError(fmt::format("{}: {}: directory {} does not exist (nothing was computed)", out.path, out.option,
                                dir.string()));
    if (::access(dir.c_str(), W_OK) != 0)
      throw IoError(fmt::format("{}: {}: cannot write in directory {} ({}) (nothing was computed)", out.path,
                                out.option, dir.string(), std::strerror(errno)));
    for (const NamedPath& in : inputs)
      if (named(in) && same_file(out.path, in.path))
        throw IoError(
            fmt::format("{}: {} is also the input of {} ({}); writing it would destroy that input (nothing "
                        "was computed)",
                        out.path, out.option, in.option, in.path));
    for (size_t j = 0; j < i; ++j)
      if (named(outputs[j]) && same_file(out.path, outputs[j].path))
        throw IoError(
            fmt::format("{}: {} and {} name the same file; one would replace the other (nothing was "
                        "computed)",
                        out.path, outputs[j].option, out.option));
    if (!overwrite && fs::exists(out.path, ec))
      throw IoError(fmt::format("{}: {}: output exists; pass --overwrite to replace it (nothing was computed)",
                                out.path, out.option));
  }
}

std::string read_file_head(const std::string& path, size_t n, const std::string& what) {
  regular_file_size(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open " + what);
  std::string buf(n, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(n));
  buf.resize(static_cast<size_t>(in.gcount()));
  return buf;
}

std::string read_file_bounded(const std::string& path, uint64_t max_bytes, const std::string& what) {
  const uint64_t size = regular_file_size(path, what);
  if (size > max_bytes)
    throw IoError(
        fmt::format("{}: {} is {} bytes, more than the {} bytes such a file can have", path, what, size, max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open " + what);
  std::string buf(size, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) throw IoError(path + ": cannot read " + what + " (short read)");
  return buf;
}

void flush_checked(std::ostream& out, const std::string& what) {
  out.flush();
  // std::cout writes through C's stdout (synchronised with stdio): its buffer is flushed and checked too.
  const bool c_failed = &out == &std::cout && (std::fflush(stdout) != 0 || std::ferror(stdout) != 0);
  if (!out || c_failed) {
    // errno still holds the failed write's error unless a later call replaced it (then: a full disk is likeliest).
    const int err = errno;
    throw IoError(what + ": write failed (" +
                  (err == ENOSPC || err == EBADF || err == EIO || err == EFBIG || err == EDQUOT || err == EPIPE
                       ? std::strerror(err)
                       : "a full disk or a closed output?") +
                  "); the output is incomplete");
  }
}

}  // namespace tern
