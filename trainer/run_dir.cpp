#include "trainer/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "core/errors.h"
#include "core/files.h"
#include "core/log.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace fs = std::filesystem;

namespace tern {
RunDirectory::RunDirectory(const std::string& path, const std::string& key) : path_(path) {
  std::error_code ec;
  used_before_ = fs::exists(fs::path(path) / "lock", ec);
  fs::create_directories(path, ec);
  if (ec || !fs::is_directory(path) || access(path.c_str(), W_OK) != 0)
    throw IoError(fmt::format("{}: cannot create or write the run directory ({}){}", path, key,
                              ec ? " (" + ec.message() + ")" : ""));
}

RunDirectory::~RunDirectory() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
}

void RunDirectory::lock() {
  const std::string file = (fs::path(path_) / "lock").string();
  lock_fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw IoError(fmt::format("{}: cannot create the run directory lock ({})", file, std::strerror(errno)));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[512] = {0};
    const ssize_t n = ::pread(lock_fd_, buf, sizeof(buf) - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "an unknown process";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS) {  // a file system without locks (some NFS mounts)
      logf("warning: {}: this file system does not support locks ({}); nothing stops a second job from using {}", file,
           std::strerror(err), path_);
      return;
    }
    if (err != EWOULDBLOCK)
      throw IoError(fmt::format("{}: cannot lock the run directory ({})", file, std::strerror(err)));
    throw IoError(
        fmt::format("{}: the run directory is in use by another tern job ({}); HINT: wait for it to end or "
                    "stop it, or choose another train.run_dir (the lock is released when its process ends)",
                    path_, holder));
  }
  const std::string me = fmt::format("pid {} on host {}, since {}\n", ::getpid(), host_name(), utc_timestamp());
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
    throw IoError(fmt::format("{}: cannot write the run directory lock ({})", file, std::strerror(errno)));
}

namespace {

// tern's own config.yaml, as this or an older tern wrote it (0.10000000000000001 for 0.1): the same resolved config,
// with no comment that replacing it would lose.
bool is_resolved_config(const std::string& text, const std::string& resolved_yaml) {
  if (text == resolved_yaml) return true;
  if (text.find('#') != std::string::npos) return false;
  try {
    return to_yaml(parse_config(text, "config.yaml")) == resolved_yaml;
  } catch (const ConfigError&) {
    return false;
  }
}

}  // namespace

void RunDirectory::check_fresh_start(const std::string& config_file, const std::string& resolved_yaml) {
  const fs::path dir(path_);
  const std::string config = (dir / "config.yaml").string();
  std::string refusal;
  if (!config_file.empty() && same_file(config_file, config) &&
      !is_resolved_config(read_file_bounded(config, 64 << 20, "config"), resolved_yaml))
    refusal = fmt::format(
        "{}: the config given is train.run_dir's config.yaml, where a run writes its resolved config (every key, "
        "no comments): starting would replace your file; move it out of the run directory (e.g. mv {} my.yaml) "
        "or choose another train.run_dir (nothing was written)",
        config_file, config_file);
  // The files a run replaces at the top of its directory (trainer.cpp; checkpoints are resume_target's concern;
  // train.log is appended to, so a scheduler's log of that name is kept).
  for (const char* name : {"config.yaml", "environment.json", "metrics.jsonl", "valid.hyp", "valid.ref"})
    if (refusal.empty() && !used_before_ && fs::exists(dir / name))
      refusal = fmt::format(
          "{} holds {}, a file that a run writes, but no tern run has used this directory (it has no lock file): "
          "training would replace that file; choose another train.run_dir, such as {} (nothing was written)",
          path_, name, (dir / "run").string());
  if (refusal.empty()) return;
  if (!used_before_ && lock_fd_ >= 0) {  // leave the directory as it was: the next job must not take it for a run's
    ::close(lock_fd_);
    lock_fd_ = -1;
    std::error_code ec;
    fs::remove(dir / "lock", ec);
  }
  throw IoError(refusal);
}

std::string RunDirectory::resume_target(const std::string& requested, std::string& note) const {
  note.clear();
  const auto steps = step_checkpoints(path_);
  const bool has_best = fs::exists(fs::path(path_) / "best.tern");
  const bool has_latest = fs::exists(fs::path(path_) / "latest");
  if (requested.empty()) {
    if (!steps.empty() || has_best || has_latest)
      throw IoError(fmt::format(
          "{} already holds checkpoints ({}); resume with --resume auto or choose another "
          "train.run_dir (nothing was overwritten)",
          path_, steps.empty() ? (has_best ? "best.tern" : "latest") : fs::path(steps.back()).filename().string()));
    return "";
  }
  if (requested != "auto") return requested;
  const std::string latest = latest_checkpoint(path_);
  if (!latest.empty() && fs::exists(latest)) return latest;
  // No usable `latest`: the newest step checkpoint that reads back intact.
  const std::string why =
      latest.empty() ? "there is no `latest` pointer" : "`latest` names " + latest + ", which does not exist";
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    try {
      read_checkpoint(*it);
    } catch (const CheckpointError& e) {
      logf("not resuming from {}: {}", *it, e.what());
      continue;
    }
    note = fmt::format("{} in {}: resuming from the newest valid step checkpoint {}", why, path_, *it);
    return *it;
  }
  if (!steps.empty() || has_best)
    throw CheckpointError(
        fmt::format("{}: {} and no step checkpoint reads back intact{}; HINT: resume from a checkpoint "
                    "by path (--resume FILE) or choose another train.run_dir",
                    path_, why, has_best ? " (best.tern is there: --resume " + path_ + "/best.tern)" : ""));
  if (!latest.empty())
    throw CheckpointError(
        fmt::format("{}: {} and there is no checkpoint in the directory; HINT: delete `latest` to "
                    "start afresh",
                    path_, why));
  return "";
}

void RunDirectory::prune(int64_t keep_last, const std::string& newest, const std::vector<int64_t>& kept) const {
  auto steps = step_checkpoints(path_);
  std::reverse(steps.begin(), steps.end());  // newest step first
  const fs::path keep = fs::path(newest).filename();
  int64_t others = keep_last - 1;  // kept besides `newest`: the files of the highest steps
  for (const auto& s : steps) {
    const fs::path file = fs::path(s).filename();
    if (file == keep) continue;
    if (others > 0) {
      --others;
      continue;
    }
    if (std::find(kept.begin(), kept.end(), step_of_checkpoint_name(file.string())) != kept.end()) continue;
    std::error_code ec;
    fs::remove(s, ec);
  }
}

int64_t RunDirectory::open_metrics(int64_t resumed_step) {
  const fs::path file = fs::path(path_) / "metrics.jsonl";
  int64_t dropped = 0;
  if (fs::exists(file)) {
    std::ifstream in(file);
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      nlohmann::json row;
      try {
        row = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {  // cut by a kill mid-write, or damaged (a number such as 1e999)
        ++dropped;
        continue;
      }
      if (!row.is_object() || !row.contains("step") || !row["step"].is_number_integer() ||
          row["step"].get<int64_t>() > resumed_step) {
        ++dropped;
        continue;
      }
      kept += line + "\n";
    }
    if (dropped > 0) write_file_atomic(file.string(), kept);
  }
  metrics_.open(file, std::ios::app);
  if (!metrics_) throw IoError(file.string() + ": cannot open for appending");
  return dropped;
}

void RunDirectory::append_metrics(const MetricsRow& row) {
  metrics_ << to_json(row).dump() << "\n";
  metrics_.flush();
  if (!metrics_) throw IoError(path_ + "/metrics.jsonl: write failed (disk full?)");
}

}  // namespace tern
