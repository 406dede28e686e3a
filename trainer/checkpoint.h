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
  nlohmann::json meta;             // step, epoch, config, hashes, schedule state, versions, ...
  std::string archive;             // serialized torch::serialize::OutputArchive
};

// Writes `path` atomically; on failure (unwritable directory, full disk) throws CheckpointError and leaves any
// previous file at `path` untouched.
void write_checkpoint(const std::string& path, const CheckpointData& data);
// Reads and verifies magic, version and checksum; throws CheckpointError naming the file and what is wrong.
CheckpointData read_checkpoint(const std::string& path);
// Atomically writes `dir/latest` = file name of the newest checkpoint.
void write_latest(const std::string& dir, const std::string& file_name);
// The checkpoint `dir/latest` points to, or "" when there is none.
std::string latest_checkpoint(const std::string& dir);
// Writes `content` to `path` atomically (temporary file, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& content);
// Removes the temporary files that interrupted write_file_atomic calls left in `dir`; returns their paths.
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

}  // namespace tern
