// Checkpoint files (format in docs/checkpoint_format.md): magic, version, JSON metadata, a LibTorch archive with the
// model, optimizer and RNG states, and an XXH64 checksum over everything before it. Saves are atomic (temporary
// name, fsync, rename) and a `latest` pointer is updated last.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace tern {

constexpr uint32_t kCheckpointVersion = 1;

struct CheckpointData {
  nlohmann::json meta;  // step, epoch, config, hashes, schedule state, versions, ...
  std::string archive;  // serialized torch::serialize::OutputArchive
};

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
