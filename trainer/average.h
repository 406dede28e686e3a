// `tern average`: parameter averaging of checkpoints of one run (the mean of each parameter over the files). The
// result holds the averaged model and the vocabularies, so evaluate and translate load it like any checkpoint; it
// has no optimizer state, so it cannot be resumed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tern {

struct AverageOptions {
  std::vector<std::string> checkpoints;  // the files to average, or
  std::string run_dir;                   // with `last`: the newest `last` step checkpoints of this run directory;
  int64_t last = 0;                      // with `best`: the `best` best validated ones that train.keep_best kept
  int64_t best = 0;
  std::string out;  // the averaged checkpoint; an existing file is refused unless `overwrite`
  bool overwrite = false;
  void validate() const;  // throws ConfigError
};

struct AverageResult {
  std::vector<std::string> inputs;
  std::vector<double> scores;  // with `best`: each input's validation score (train.valid_metric's)
  std::string metric;          // and that metric's name
  int64_t step = 0;            // the newest input's step
};

// Throws CheckpointError naming the file whose model configuration or vocabulary differs from the first's.
AverageResult average_checkpoints(const AverageOptions& opt);

}  // namespace tern
