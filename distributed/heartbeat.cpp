#include "distributed/heartbeat.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

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

std::string describe_ranks(const std::string& dir, int world, double now, double stale_s, int self) {
  std::string out;
  std::vector<int> stopped, busy;
  std::map<std::string, std::vector<int>> hosts;  // host -> its ranks (those with a heartbeat)
  std::string self_host;
  for (int r = 0; r < world; ++r) {
    std::ifstream f(path_of(dir, r));
    nlohmann::json j;
    if (f) j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      out += fmt::format("  rank {}: no heartbeat in {} (it never started, or cannot write there)\n", r, dir);
      stopped.push_back(r);
      continue;
    }
    const std::string host = j.value("host", "?");
    hosts[host].push_back(r);
    if (r == self) self_host = host;
    const double age = now - j.value("time", 0.0);
    const std::string where = fmt::format("rank {} ({} pid {}): step {}, phase {}", r, host, j.value("pid", 0),
                                          j.value("step", 0), j.value("phase", "?"));
    const std::string waiting_in = j.value("waiting_in", "");
    std::string state;
    if (age > stale_s) {
      state = fmt::format("STOPPED: last heartbeat {:.0f} s ago (killed, stopped, or its node is unreachable)", age);
      stopped.push_back(r);
    } else if (!waiting_in.empty()) {
      state = fmt::format("waiting in {} #{} for {:.0f} s", waiting_in, j.value("call", 0), j.value("waiting_s", 0.0));
    } else {
      state = fmt::format("BUSY outside collectives (after {} collectives)", j.value("call", 0));
      busy.push_back(r);
    }
    out += fmt::format("  {}: {}\n", where, state);
  }
  // The verdict: who to look at first.
  const auto ranks = [](const std::vector<int>& v) { return fmt::format("{}", fmt::join(v, ", ")); };
  if (!stopped.empty()) {
    out += fmt::format("  => rank(s) {} stopped answering: look at their host's log, memory and state first\n",
                       ranks(stopped));
  } else if (!busy.empty()) {
    out += fmt::format(
        "  => rank(s) {} are alive but outside collectives: slow, stuck in computation, or issuing "
        "a different collective\n",
        ranks(busy));
  } else if (hosts.size() > 1) {
    std::vector<std::string> away;  // the other hosts and their ranks, as this rank sees them
    for (const auto& [host, rs] : hosts)
      if (host != self_host) away.push_back(fmt::format("host {} (ranks {})", host, ranks(rs)));
    out += fmt::format(
        "  => every rank is alive and waits in a collective: the network between the hosts stopped carrying data (a "
        "cut or failed link, a switch, a firewall); from rank {} on host {}, {} stopped answering\n",
        self, self_host, fmt::format("{}", fmt::join(away, " and ")));
  } else {
    out += "  => every rank is alive and waits in a collective on one host: the transport between them stalled\n";
  }
  return out;
}

}  // namespace tern
