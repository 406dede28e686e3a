#include "distributed/heartbeat.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace tern {

namespace {
std::string path_of(const std::string& dir, int rank) { return fmt::format("{}/rank-{}.json", dir, rank); }
}  // namespace

bool write_heartbeat(const std::string& dir, const Heartbeat& hb) {
  nlohmann::json j = {{"rank", hb.rank}, {"host", hb.host},           {"pid", hb.pid},
                      {"step", hb.step}, {"phase", hb.phase},         {"waiting_in", hb.waiting_in},
                      {"call", hb.call}, {"waiting_s", hb.waiting_s}, {"time", hb.time}};
  const std::string path = path_of(dir, hb.rank), tmp = fmt::format("{}.tmp-{}", path, hb.pid);
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!(f << j.dump() << "\n")) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string describe_ranks(const std::string& dir, int world, double now, double stale_s) {
  std::string out;
  for (int r = 0; r < world; ++r) {
    std::ifstream f(path_of(dir, r));
    nlohmann::json j;
    if (f) j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      out += fmt::format("  rank {}: no heartbeat in {} (it never started, or cannot write there)\n", r, dir);
      continue;
    }
    const double age = now - j.value("time", 0.0);
    const std::string where = fmt::format("rank {} ({} pid {}): step {}, phase {}", r, j.value("host", "?"),
                                          j.value("pid", 0), j.value("step", 0), j.value("phase", "?"));
    const std::string waiting = j.value("waiting_in", "");
    std::string state;
    if (age > stale_s)
      state = fmt::format("STOPPED: last heartbeat {:.0f} s ago (killed, stopped, or its node is unreachable)", age);
    else if (!waiting.empty())
      state = fmt::format("waiting in {} #{} for {:.0f} s", waiting, j.value("call", 0), j.value("waiting_s", 0.0));
    else
      state = fmt::format("BUSY outside collectives (after {} collectives)", j.value("call", 0));
    out += fmt::format("  {}: {}\n", where, state);
  }
  return out;
}

}  // namespace tern
