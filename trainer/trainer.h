// The training loop: sharded batches, forward/backward, gradient all-reduce, clipping, optimizer and LR schedule,
// validation, early stopping, checkpoints, metrics.jsonl. Works alone or as one rank of an MPI job.
#pragma once
#include <optional>
#include <string>

#include "distributed/communicator.h"
#include "models/device.h"
#include "models/precision.h"
#include "trainer/config.h"

namespace tern {

struct TrainResult {
  int64_t steps = 0;
  std::string valid_metric;                // train.valid_metric (resolved): loss, bleu or chrf
  std::optional<double> best_valid_score;  // of that metric (none when no validation ran)
  double last_valid_loss = 0;              // nats per target token (0 when no validation ran)
  std::string last_checkpoint, best_checkpoint;
  double seconds = 0;
  double tokens_per_s = 0;  // source + target tokens per second, all ranks
  bool preempted = false;   // stopped by a signal after saving
};

// train.device, train.precision and train.loss_scaling resolved once, before anything is written; every part of a
// run reads these, never the strings.
struct RunSettings {
  DeviceKind device = DeviceKind::kCpu;
  Precision precision = Precision::kFp32;
  bool loss_scaling = false;  // dynamic loss scaling (auto: on for fp16)
};
// Throws ConfigError naming the key: cuda without a GPU, fp16 on a CPU, bf16 on a CPU without bf16 RNN kernels.
RunSettings resolve_run_settings(const Config& cfg);

struct TrainOptions {
  RunSettings settings;     // from resolve_run_settings(cfg)
  std::string resume;       // "" (fresh), "auto" (run_dir/latest if present) or a checkpoint path
  std::string config_file;  // the YAML file given: a fresh run refuses to write its run_dir/config.yaml over it
  bool progress = true;
};

// Runs training; rank 0 writes run_dir (config.yaml, train.log, metrics.jsonl, checkpoints).
TrainResult train(const Config& cfg, Communicator& comm, const TrainOptions& opt);

// Signals (train.preempt_signals names) that request a checkpoint-and-exit at the next step boundary.
void install_preemption_handlers(const std::string& signals = "TERM,USR1,USR2");

}  // namespace tern
