// Checkpoint files (format in docs/checkpoint_format.md): magic, version, JSON metadata, a LibTorch archive with the
// model, optimizer and RNG states, and an XXH64 checksum over everything before it. Saves are atomic (temporary
// name, fsync, rename) and a `latest` pointer is updated last.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tern {

constexpr uint32_t kCheckpointVersion = 1;

struct CheckpointData {
  nlohmann::json meta;  // step, epoch, config, hashes, schedule state, versions, ...
  std::string archive;  // serialized torch::serialize::OutputArchive
};

// What a training checkpoint's metadata holds, typed (the JSON keys are those of docs/checkpoint_format.md).
struct VocabStamp {
  int64_t size = 0;
  std::string hash;
};
struct CheckpointMeta {
  int64_t step = 0;   // optimizer steps taken
  int64_t epoch = 0;  // the position to continue from: epoch and batch within it
  int64_t batch_in_epoch = 0;
  int64_t bad_steps = 0;    // non-finite steps skipped so far
  int64_t world_size = 1;   // ranks of the job that wrote it (per-rank RNG streams)
  int64_t num_shards = 0;   // data shards of the run (0: not recorded, older tern: one per rank)
  std::string config_yaml;  // the resolved config
  std::string corpus_identity, corpus_kind;
  std::map<std::string, VocabStamp> vocab;  // per side
  int64_t corpus_max_tokens = 0;            // prepare's --max-tokens (translate's default source cap); 0: unknown
  nlohmann::json loss_scaler;               // LossScaler::state()
  nlohmann::json schedule = nlohmann::json::object();  // TrainingSchedule::save() keys, stored at the top level
  std::string tern_version = TERN_VERSION;
  std::string torch_version;               // the LibTorch that wrote it (set by the writer, which links LibTorch)
  std::vector<std::string> averaged_from;  // `tern average`: the inputs (such a file has no optimizer state)
  // Made when a run starts fresh and kept by every resume: the checkpoints of one run share it ("" in files of tern
  // before it). `tern average` refuses checkpoints of two runs.
  std::string run_id;
  // A run started by train.init_from: the checkpoint it started from, that checkpoint's run and step ("path (run
  // <id>, step N)"), kept by every resume ("" otherwise).
  std::string initialized_from;
  // Saved when a pre-emption signal came at (or during) a validation: the validation of this step has not run, and
  // a resume runs it first, so that the schedule, best.tern and early stopping are those of an uninterrupted run.
  // "step": the validation of a training step; "final": the one at the end of training; "": none.
  std::string validation_pending;
  // The score of the validation at this checkpoint's step (train.valid_metric's), when one ran there.
  std::optional<double> valid_score;
  // train.keep_best: the run's best validated step checkpoints when this one was written, the best first (their
  // steps and scores; `tern average --best N` reads the newest checkpoint's). Empty without keep_best.
  struct Scored {
    int64_t step = 0;
    double score = 0;
  };
  std::vector<Scored> best_checkpoints;
};
nlohmann::json to_json(const CheckpointMeta& m);
// Reads the metadata of checkpoint `path`; a missing or mistyped key is a CheckpointError naming it.
CheckpointMeta checkpoint_meta(const nlohmann::json& meta, const std::string& path);

// Writes `path` atomically; on failure (unwritable directory, full disk) throws CheckpointError and leaves any
// previous file at `path` untouched.
void write_checkpoint(const std::string& path, const CheckpointData& data);
// Reads and verifies magic, version and checksum; throws CheckpointError naming the file and what is wrong.
CheckpointData read_checkpoint(const std::string& path);
// Atomically writes `dir/latest` = file name of the newest checkpoint.
void write_latest(const std::string& dir, const std::string& file_name);
// The checkpoint `dir/latest` points to, or "" when there is none. A `latest` that does not name a checkpoint file
// in `dir` (garbage, a path elsewhere) is a CheckpointError that shows its content escaped.
std::string latest_checkpoint(const std::string& dir);
// File name of the step checkpoint of `step` (ckpt_step00000042.tern), and the step of such a name (-1 otherwise).
std::string step_checkpoint_name(int64_t step);
int64_t step_of_checkpoint_name(const std::string& file_name);
// The step checkpoints in `dir` (ckpt_stepN.tern), sorted by step, oldest first.
std::vector<std::string> step_checkpoints(const std::string& dir);

}  // namespace tern
