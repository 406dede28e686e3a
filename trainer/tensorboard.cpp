#include "trainer/tensorboard.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/errors.h"
#include "core/files.h"
#include "core/log.h"

namespace fs = std::filesystem;

namespace tern {

namespace {
constexpr std::array<uint32_t, 256> crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0x82F63B78u ^ (c >> 1) : c >> 1;  // reflected Castagnoli polynomial
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = crc_table();

// Protocol buffer wire format: varints, and fields as (number << 3 | wire type) keys.
void varint(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out += static_cast<char>(v | 0x80);
  out += static_cast<char>(v);
}
template <typename T>
void fixed(std::string& out, T v) {  // little-endian, as on every machine tern builds for
  char b[sizeof v];
  std::memcpy(b, &v, sizeof v);
  out.append(b, sizeof v);
}
void bytes_field(std::string& out, int number, const std::string& v) {
  varint(out, static_cast<uint64_t>(number) << 3 | 2);
  varint(out, v.size());
  out += v;
}

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event { double wall_time = 1; int64 step = 2; oneof { string file_version = 3; Summary summary = 5;
// SessionLog session_log = 7; } }: the head of every event.
std::string event_head(int64_t step) {
  std::string e;
  varint(e, 1 << 3 | 1), fixed(e, wall_time());
  varint(e, 2 << 3 | 0), varint(e, static_cast<uint64_t>(step));
  return e;
}
}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

EventWriter::EventWriter(const std::string& dir, int64_t first_step) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  // TensorBoard reads a directory's files in name order: the seconds, then the count of files before this one (jobs
  // of one run directory never overlap: it is locked), so a job that starts within the second of the last still
  // comes after it.
  int64_t earlier = 0;
  for (const auto& e : fs::directory_iterator(dir, ec))
    earlier += e.path().filename().string().find("tfevents") != std::string::npos;
  const auto seconds = static_cast<int64_t>(wall_time());
  path_ =
      (fs::path(dir) / fmt::format("events.out.tfevents.{}.{:06d}.{}.{}.tern", seconds, earlier, host_name(), getpid()))
          .string();
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_)
    throw IoError(
        fmt::format("{}: cannot create the TensorBoard event file ({}); HINT: check train.run_dir is "
                    "writable, or set train.tensorboard: false",
                    path_, std::strerror(errno)));
  std::string version = event_head(first_step);
  bytes_field(version, 3, "brain.Event:2");
  write_event(version);
  std::string start = event_head(first_step), session_log;
  varint(session_log, 1 << 3 | 0), varint(session_log, 1);  // SessionLog { status = START }
  bytes_field(start, 7, session_log);
  write_event(start);
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::scalar(const std::string& tag, int64_t step, double value) {
  std::string v;  // Summary.Value { string tag = 1; float simple_value = 2; }
  bytes_field(v, 1, tag);
  varint(v, 2 << 3 | 5), fixed(v, static_cast<float>(value));
  std::string summary;  // Summary { repeated Value value = 1; }
  bytes_field(summary, 1, v);
  std::string e = event_head(step);
  bytes_field(e, 5, summary);
  write_event(e);
}

void EventWriter::write_event(const std::string& event) {
  std::string record;
  const uint64_t len = event.size();
  fixed(record, len);
  fixed(record, masked_crc32c(record.data(), sizeof len));
  record += event;
  fixed(record, masked_crc32c(event.data(), event.size()));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw IoError(fmt::format("{}: cannot write the TensorBoard event file ({})", path_, std::strerror(errno)));
}

void EventWriter::flush() {
  if (std::fflush(file_) != 0)
    throw IoError(fmt::format("{}: cannot write the TensorBoard event file ({})", path_, std::strerror(errno)));
}

}  // namespace tern
