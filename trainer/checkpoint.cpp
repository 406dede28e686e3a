#include "trainer/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "core/hash.h"

namespace fs = std::filesystem;

namespace tern {
namespace {

constexpr char kMagic[8] = {'T', 'E', 'R', 'N', 'C', 'K', 'P', 'T'};
constexpr const char* kTempMarker = ".tmp-";  // write_file_atomic's temporary names: PATH.tmp-PID

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(kTempMarker) != std::string::npos) {
      std::error_code ec;
      if (fs::remove(e.path(), ec)) removed.push_back(e.path().string());
    }
  return removed;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  fs::path p(path);
  std::string tmp = path + kTempMarker + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw CheckpointError(path + ": cannot write (" + std::strerror(errno) + "); the previous file is intact");
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw CheckpointError(path + ": write failed (" + std::strerror(err) + "); the previous file is intact");
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw CheckpointError(path + ": flush failed (" + std::strerror(err) + "); the previous file is intact");
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    throw CheckpointError(path + ": rename failed (" + ec.message() + "); the previous file is intact");
  }
  fsync_dir(p.parent_path().empty() ? fs::path(".") : p.parent_path());
}

void write_checkpoint(const std::string& path, const CheckpointData& data) {
  std::string meta = data.meta.dump();
  std::string out;
  out.reserve(data.archive.size() + meta.size() + 64);
  out.append(kMagic, sizeof kMagic);
  put<uint32_t>(out, kCheckpointVersion);
  put<uint64_t>(out, meta.size());
  out += meta;
  put<uint64_t>(out, data.archive.size());
  out += data.archive;
  put<uint64_t>(out, hash_bytes(out.data(), out.size()));
  write_file_atomic(path, out);
}

CheckpointData read_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(path + ": cannot open checkpoint");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string buf = ss.str();
  const std::string hint = "; HINT: resume from an older checkpoint in the same directory (see its `latest` file)";
  auto fail = [&](const std::string& what) { throw CheckpointError(path + ": " + what + hint); };
  if (buf.size() < sizeof kMagic + 4 + 8 + 8 + 8 || std::memcmp(buf.data(), kMagic, sizeof kMagic) != 0)
    fail("not a tern checkpoint (bad magic number or too short)");
  size_t pos = sizeof kMagic;
  auto get = [&](auto& v) {
    if (pos + sizeof v > buf.size()) fail("truncated checkpoint");
    std::memcpy(&v, buf.data() + pos, sizeof v);
    pos += sizeof v;
  };
  uint32_t version = 0;
  uint64_t meta_len = 0, blob_len = 0, stored = 0;
  get(version);
  if (version != kCheckpointVersion)
    throw CheckpointError(fmt::format("{}: checkpoint format version {} is not supported (this tern reads version {})",
                                      path, version, kCheckpointVersion));
  get(meta_len);
  if (meta_len > buf.size() - pos) fail("truncated checkpoint (metadata cut short)");
  std::string meta = buf.substr(pos, meta_len);
  pos += meta_len;
  get(blob_len);
  if (blob_len > buf.size() - pos || buf.size() - pos - blob_len != 8)
    fail(fmt::format("truncated or padded checkpoint ({} bytes, expected {})", buf.size(), pos + blob_len + 8));
  CheckpointData d;
  d.archive = buf.substr(pos, blob_len);
  pos += blob_len;
  size_t body = pos;
  get(stored);
  uint64_t actual = hash_bytes(buf.data(), body);
  if (stored != actual)
    fail("checksum mismatch (stored " + hex64(stored) + ", computed " + hex64(actual) + "): the file is corrupted");
  try {
    d.meta = nlohmann::json::parse(meta);
  } catch (const std::exception& e) {
    fail(std::string("metadata is not valid JSON: ") + e.what());
  }
  return d;
}

void write_latest(const std::string& dir, const std::string& file_name) {
  write_file_atomic((fs::path(dir) / "latest").string(), file_name + "\n");
}

std::string latest_checkpoint(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "latest");
  std::string name;
  if (!in || !std::getline(in, name) || name.empty()) return "";
  return (fs::path(dir) / name).string();
}

}  // namespace tern
