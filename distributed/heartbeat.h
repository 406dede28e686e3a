// Heartbeat files for hang diagnosis. While a job runs, each rank's watchdog writes DIR/rank-R.json about once a
// second: what the rank is doing (step, phase, the collective it waits in and for how long). When a collective times
// out, the waiting rank reads every rank's file and says which rank stopped (no fresh heartbeat), which one is busy
// elsewhere (another phase) and which ones wait with it.
#pragma once
#include <cstdint>
#include <string>

namespace tern {

struct Heartbeat {
  int rank = 0;
  std::string host;
  int64_t pid = 0;
  int64_t step = 0;
  std::string phase;       // what the trainer said last: "forward", "backward", "validation", ...
  std::string waiting_in;  // the collective or wait in progress ("" when none), e.g. "all-reduce"
  int64_t call = 0;        // how many collectives this rank has entered
  double waiting_s = 0;    // for how long it has waited in `waiting_in`
  double time = 0;         // when written: seconds since the Unix epoch
};

// Writes `hb` as DIR/rank-R.json (to a temporary name, then renamed, so readers never see half a file). Returns
// false when it cannot (diagnosis must never stop the job).
bool write_heartbeat(const std::string& dir, const Heartbeat& hb);
// One line per rank 0..world-1 from the files in `dir`, as seen at `now` (seconds since the epoch); a heartbeat
// older than `stale_s` means the rank is stopped, killed or unreachable. A last line gives the verdict: the ranks that
// stopped, else those busy elsewhere, else (every rank alive and waiting) the hosts that `self`, the rank describing,
// cannot reach: on several hosts that is the network.
std::string describe_ranks(const std::string& dir, int world, double now, double stale_s, int self = -1);

}  // namespace tern
