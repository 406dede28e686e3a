// Typed errors thrown by library code. Only program mains catch them, print one message and pick the exit code.
// Messages name the file, key or record, the rule and the value found.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace tern {

// Exit codes of `tern` (docs/exit_codes.md is the contract). Each error type below has exactly one.
constexpr int kExitOk = 0, kExitUnexpected = 1, kExitConfig = 2, kExitDistributed = 3, kExitData = 4,
              kExitCheckpoint = 5, kExitTraining = 6, kExitIo = 7, kExitPreempted = 75;

// Base of every error a user can act on.
class Error : public std::runtime_error {
 public:
  Error(std::string kind, int exit_code, const std::string& what)
      : std::runtime_error(what), kind_(std::move(kind)), exit_code_(exit_code) {}
  // "config", "data", "checkpoint", ... printed as "<kind> error: <what>".
  const std::string& kind() const { return kind_; }
  // The process exit code for this kind of error.
  int exit_code() const { return exit_code_; }

 private:
  std::string kind_;
  int exit_code_;
};

// A config key, command-line option or environment variable breaks a rule.
struct ConfigError : Error {
  explicit ConfigError(const std::string& w) : Error("config", kExitConfig, w) {}
};
// A corpus or text input is missing, corrupted or inconsistent.
struct DataError : Error {
  explicit DataError(const std::string& w) : Error("data", kExitData, w) {}
};
// A checkpoint is unreadable, corrupted or incompatible, or cannot be written.
struct CheckpointError : Error {
  explicit CheckpointError(const std::string& w) : Error("checkpoint", kExitCheckpoint, w) {}
};
struct DistributedError : Error {
  explicit DistributedError(const std::string& w) : Error("distributed", kExitDistributed, w) {}
};
struct TrainingError : Error {
  explicit TrainingError(const std::string& w) : Error("training", kExitTraining, w) {}
};
// A file or directory cannot be created, written or read, an output exists already, or a run directory is in use.
struct IoError : Error {
  explicit IoError(const std::string& w) : Error("file", kExitIo, w) {}
};

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `key`, or "" when none is reasonably close.
std::string nearest(const std::string& key, const std::vector<std::string>& candidates);

}  // namespace tern
