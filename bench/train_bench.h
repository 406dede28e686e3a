// `tern bench train`: training throughput of a model config on synthetic batches of one fixed shape (the shapes
// bench/eager_reference.py uses, so the two compare as a ratio from one run), per precision: tokens/s (source +
// target) per rank and in total, the step-time breakdown (data, forward, backward, exposed communication,
// optimizer), peak GPU memory; with several ranks also the share of the all-reduce hidden behind backward.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "models/config.h"

namespace tern {

struct TrainBenchOptions {
  ModelConfig model;  // vocabulary sizes are taken from src_vocab / tgt_vocab
  int64_t src_vocab = 16000, tgt_vocab = 16000;
  int64_t batch = 64;                  // sentences per rank and step
  int64_t src_len = 50, tgt_len = 50;  // tokens per sentence (every sentence full length)
  int64_t warmup = 3, steps = 10;      // untimed, then timed steps per precision
  std::vector<std::string> precisions{"fp32"};
  bool cuda = false;
  int64_t bucket_mb = 25;
  double lr = 1e-3;
  void validate() const;  // throws ConfigError stating the rule
};

// Collective: every rank runs it; rows are the same on every rank.
nlohmann::json bench_train(Communicator& comm, const TrainBenchOptions& opt);

// The rows as the table `tern bench train` prints (threads: this process's CPU threads).
std::string train_bench_table(const nlohmann::json& rows, const TrainBenchOptions& opt, int world,
                              const std::string& backend);

}  // namespace tern
