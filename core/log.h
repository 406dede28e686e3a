// Logging to stderr with an optional "[rank r/W]" prefix; rank 0 alone prints progress by convention.
#pragma once
#include <fmt/format.h>

#include <string>

namespace tern {

// Set once at start-up by the distributed layer; world <= 1 prints no prefix.
void set_log_rank(int rank, int world);
std::string rank_prefix();               // "[rank 3/8] " or ""
void log_line(const std::string& line);  // timestamped, to stderr (and the log file, if set)
// Also append log lines to `path` ("" stops).
void set_log_file(const std::string& path);
// This machine's host name, and the current time as 2026-11-27T21:41:09Z: what records of a job name.
std::string host_name();
std::string utc_timestamp();
// This process's resident memory now (VmRSS), in MiB; 0 where /proc is missing.
double resident_mib();
// Seconds since this process started (its start time in /proc/self/stat).
double process_seconds();

template <typename... Args>
void logf(fmt::format_string<Args...> f, Args&&... args) {
  log_line(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tern
