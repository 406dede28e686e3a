#include "core/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

namespace tern {
namespace {
int g_rank = 0, g_world = 1;
std::FILE* g_file = nullptr;
}  // namespace

void set_log_file(const std::string& path) {
  if (g_file) std::fclose(g_file);
  g_file = path.empty() ? nullptr : std::fopen(path.c_str(), "a");
}

void set_log_rank(int rank, int world) { g_rank = rank, g_world = world; }

std::string rank_prefix() { return g_world > 1 ? fmt::format("[rank {}/{}] ", g_rank, g_world) : std::string(); }

void log_line(const std::string& line) {
  std::time_t t = std::time(nullptr);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "%s %s%s\n", ts, rank_prefix().c_str(), line.c_str());
  std::fflush(stderr);
  if (g_file) {
    std::fprintf(g_file, "%s %s%s\n", ts, rank_prefix().c_str(), line.c_str());
    std::fflush(g_file);
  }
}

std::string host_name() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return host;
}

double resident_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 6, "VmRSS:") == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0;
}

double process_seconds() {
  std::ifstream stat("/proc/self/stat"), up("/proc/uptime");
  std::string text;
  std::getline(stat, text);
  double uptime = 0;
  up >> uptime;
  // Field 22 (starttime, in clock ticks since boot) counts from the field after the command's closing ')'.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return field.empty() || ticks <= 0 ? 0 : uptime - std::atof(field.c_str()) / ticks;
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return when;
}

}  // namespace tern
