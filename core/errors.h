// Typed errors thrown by library code. Only program mains catch them, print one message and pick the exit code.
// Messages name the file, key or record, the rule and the value found.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace tern {

// Base of every error a user can act on.
class Error : public std::runtime_error {
 public:
  Error(std::string kind, const std::string& what) : std::runtime_error(what), kind_(std::move(kind)) {}
  // "config", "data", "checkpoint", ... printed as "<kind> error: <what>".
  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
};

struct ConfigError : Error {
  explicit ConfigError(const std::string& w) : Error("config", w) {}
};
struct DataError : Error {
  explicit DataError(const std::string& w) : Error("data", w) {}
};
struct CheckpointError : Error {
  explicit CheckpointError(const std::string& w) : Error("checkpoint", w) {}
};
struct DistributedError : Error {
  explicit DistributedError(const std::string& w) : Error("distributed", w) {}
};
struct TrainingError : Error {
  explicit TrainingError(const std::string& w) : Error("training", w) {}
};
struct IoError : Error {
  explicit IoError(const std::string& w) : Error("io", w) {}
};

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `key`, or "" when none is reasonably close.
std::string nearest(const std::string& key, const std::vector<std::string>& candidates);

}  // namespace tern
