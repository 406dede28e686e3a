// The run directory of `tern train`: an exclusive lock while a job uses it, where a resume starts from, which step
// checkpoints are kept, and metrics.jsonl (cut back to the resumed step so no step appears twice).
// Only rank 0 touches it; other ranks learn its decisions through the communicator.
#pragma once
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trainer/metrics.h"

namespace tern {

class RunDirectory {
 public:
  // Creates `path` if needed; throws IoError when it cannot be created or written (`key` names the config key).
  RunDirectory(const std::string& path, const std::string& key);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::string& path() const { return path_; }
  // Takes an exclusive lock (flock on `lock`, held until this object or the process dies) and records pid and host
  // in it; throws IoError naming the holder when another process has it.
  void lock();
  // The checkpoint to resume from. `requested` is "" (fresh start: refused when the directory holds checkpoints),
  // "auto" (what `latest` names; without `latest`, the newest step checkpoint that reads back intact) or a path.
  // Returns "" for a fresh start; `note` says how an automatic choice was made ("" when `latest` decided).
  std::string resume_target(const std::string& requested, std::string& note) const;
  // Before a fresh run writes here, throws IoError when it would replace a file that is not a run's: `config_file`
  // (the YAML file given) is config.yaml, where a run writes its resolved config, and says something else
  // (comments, other keys); or a directory no run has used (no lock file before this job) holds a file a run writes
  // (valid.ref beside a corpus, metrics.jsonl, ...). Releases and removes the lock it took in such a directory first.
  void check_fresh_start(const std::string& config_file, const std::string& resolved_yaml);
  // Keeps `newest` (the one just written, which `latest` names), the keep_last - 1 other step checkpoints of the
  // highest steps and those of the steps `kept` (train.keep_best's); removes the rest.
  void prune(int64_t keep_last, const std::string& newest, const std::vector<int64_t>& kept = {}) const;
  // Opens metrics.jsonl for appending after dropping the rows of steps after `resumed_step` and a cut last line
  // (a killed job's); returns how many lines were dropped.
  int64_t open_metrics(int64_t resumed_step);
  void append_metrics(const MetricsRow& row);

 private:
  std::string path_;
  bool used_before_ = false;  // the lock file existed when this job came: a directory of earlier runs
  int lock_fd_ = -1;
  std::ofstream metrics_;
};

}  // namespace tern
