#include "trainer/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "data/text.h"

namespace fs = std::filesystem;

namespace tern {
namespace {

constexpr size_t kHeaderBytes = kCheckpointMagic.size() + 4 + 8;  // magic, version, metadata length

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// `s` with control and non-ASCII bytes as \xNN, cut to 80 characters: safe to print.
std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s.substr(0, 80))
    out += (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  return out + (s.size() > 80 ? "..." : "");
}

}  // namespace

void write_checkpoint(const std::string& path, const CheckpointData& data) {
  std::string meta = data.meta.dump();
  std::string out;
  out.reserve(data.archive.size() + meta.size() + 64);
  out.append(kCheckpointMagic);
  put<uint32_t>(out, kCheckpointVersion);
  put<uint64_t>(out, meta.size());
  out += meta;
  put<uint64_t>(out, data.archive.size());
  out += data.archive;
  put<uint64_t>(out, hash_bytes(out.data(), out.size()));
  try {
    write_file_atomic(path, out);
  } catch (const IoError& e) {
    throw CheckpointError(e.what());
  }
}

namespace {
// The checkpoints of run directory `run` to name in a hint: "run/best.tern (the best validation) or
// run/ckpt_stepN.tern (the newest)", or "" when it holds none (or cannot be read).
std::string run_checkpoints(const fs::path& run) {
  std::vector<std::string> names;
  std::error_code ec;
  try {
    if (fs::exists(run / "best.tern", ec)) names.push_back((run / "best.tern").string() + " (the best validation)");
    const std::string latest = latest_checkpoint(run.string());
    const auto steps = step_checkpoints(run.string());
    const std::string newest = !latest.empty() && fs::exists(latest, ec) ? latest : steps.empty() ? "" : steps.back();
    if (!newest.empty()) names.push_back(newest + " (the newest)");
  } catch (const std::exception&) {  // an unreadable directory or pointer: no hint
  }
  return fmt::format("{}", fmt::join(names, " or "));
}
}  // namespace

CheckpointData read_checkpoint(const std::string& path) {
  // A run directory given where a checkpoint goes: name the checkpoints meant.
  if (std::error_code ec; fs::is_directory(path, ec))
    if (const std::string names = run_checkpoints(path); !names.empty())
      throw CheckpointError(
          fmt::format("{}: is a run directory, not a checkpoint; HINT: give a checkpoint of the run: {}", path, names));
  const std::string hint = "; HINT: resume from an older checkpoint in the same directory (see its `latest` file)";
  auto fail = [&](const std::string& what) { throw CheckpointError(path + ": " + what + hint); };
  // The header first: a file that is not a checkpoint is refused before it is read whole.
  std::string buf;
  try {
    buf = read_file_head(path, kHeaderBytes, "checkpoint");
  } catch (const IoError& e) {
    throw CheckpointError(e.what());
  }
  if (buf.size() < kHeaderBytes || buf.compare(0, kCheckpointMagic.size(), kCheckpointMagic) != 0) {
    // Another kind of file given in a checkpoint's place is named, without the hint about older checkpoints.
    const FileKind kind = file_kind(buf);
    if (kind == FileKind::kHdf5)
      throw CheckpointError(path + ": not a tern checkpoint: it is an HDF5 file (a corpus goes in --data)");
    if (kind == FileKind::kText) {
      const std::string names =
          fs::path(path).filename() == "latest" ? run_checkpoints(fs::path(path).parent_path()) : "";
      if (!names.empty())  // the run's pointer to its newest checkpoint
        throw CheckpointError(fmt::format(
            "{}: is a run's `latest` pointer, not a checkpoint; HINT: give a checkpoint of the run: {}", path, names));
      throw CheckpointError(path + ": not a tern checkpoint: it is a text file");
    }
    fail("not a tern checkpoint (bad magic number or too short)");
  }
  try {
    buf = read_file_bounded(path, UINT64_MAX, "checkpoint");
  } catch (const IoError& e) {
    throw CheckpointError(e.what());
  }
  if (buf.size() < kHeaderBytes + 8 + 8) fail("truncated checkpoint");
  size_t pos = kCheckpointMagic.size();
  auto get = [&](auto& v) {
    if (pos + sizeof v > buf.size()) fail("truncated checkpoint");
    std::memcpy(&v, buf.data() + pos, sizeof v);
    pos += sizeof v;
  };
  uint32_t version = 0;
  uint64_t meta_len = 0, blob_len = 0, stored = 0;
  get(version);
  if (version != kCheckpointVersion)
    throw CheckpointError(fmt::format("{}: checkpoint format version {} is not supported (this tern reads version {})",
                                      path, version, kCheckpointVersion));
  get(meta_len);
  if (meta_len > buf.size() - pos) fail("truncated checkpoint (metadata cut short)");
  std::string meta = buf.substr(pos, meta_len);
  pos += meta_len;
  get(blob_len);
  if (blob_len > buf.size() - pos || buf.size() - pos - blob_len != 8)
    fail(fmt::format("truncated or padded checkpoint ({} bytes, expected {})", buf.size(), pos + blob_len + 8));
  CheckpointData d;
  d.archive = buf.substr(pos, blob_len);
  pos += blob_len;
  size_t body = pos;
  get(stored);
  uint64_t actual = hash_bytes(buf.data(), body);
  if (stored != actual)
    fail("checksum mismatch (stored " + hex64(stored) + ", computed " + hex64(actual) + "): the file is corrupted");
  try {
    d.meta = nlohmann::json::parse(meta);
  } catch (const std::exception& e) {
    fail(std::string("metadata is not valid JSON: ") + e.what());
  }
  return d;
}

nlohmann::json to_json(const CheckpointMeta& m) {
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& [side, v] : m.vocab) vocab[side] = {{"size", v.size}, {"hash", v.hash}};
  nlohmann::json j = {{"step", m.step},
                      {"epoch", m.epoch},
                      {"batch_in_epoch", m.batch_in_epoch},
                      {"bad_steps", m.bad_steps},
                      {"loss_scaler", m.loss_scaler},
                      {"world_size", m.world_size},
                      {"num_shards", m.num_shards},
                      {"config_yaml", m.config_yaml},
                      {"corpus_identity", m.corpus_identity},
                      {"vocab", vocab},
                      {"corpus_kind", m.corpus_kind},
                      {"corpus_max_tokens", m.corpus_max_tokens},
                      {"tern_version", m.tern_version},
                      {"torch_version", m.torch_version}};
  if (!m.averaged_from.empty()) j["averaged_from"] = m.averaged_from;
  if (!m.run_id.empty()) j["run_id"] = m.run_id;
  if (!m.initialized_from.empty()) j["initialized_from"] = m.initialized_from;
  if (!m.validation_pending.empty()) j["validation_pending"] = m.validation_pending;
  if (m.valid_score) j["valid_score"] = *m.valid_score;
  if (!m.best_checkpoints.empty()) {
    j["best_checkpoints"] = nlohmann::json::array();
    for (const auto& b : m.best_checkpoints) j["best_checkpoints"].push_back({{"step", b.step}, {"score", b.score}});
  }
  j.update(m.schedule);
  return j;
}

CheckpointMeta checkpoint_meta(const nlohmann::json& j, const std::string& path) {
  auto fail = [&](const std::string& key, const std::string& rule) {
    throw CheckpointError(fmt::format("{}: metadata key '{}' {}", path, key, rule));
  };
  auto integer = [&](const char* key, int64_t& out, bool required) {
    if (!j.contains(key)) {
      if (required) fail(key, "is missing");
      return;
    }
    if (!j[key].is_number_integer()) fail(key, "must be an integer (got " + j[key].dump() + ")");
    out = j[key].get<int64_t>();
  };
  auto text = [&](const char* key, std::string& out) {
    if (!j.contains(key) || !j[key].is_string()) fail(key, "must be a string");
    out = j[key].get<std::string>();
  };
  if (!j.is_object()) throw CheckpointError(path + ": metadata is not a JSON object");
  CheckpointMeta m;
  integer("step", m.step, true), integer("epoch", m.epoch, true), integer("batch_in_epoch", m.batch_in_epoch, true);
  integer("bad_steps", m.bad_steps, true), integer("world_size", m.world_size, true);
  integer("num_shards", m.num_shards, false), integer("corpus_max_tokens", m.corpus_max_tokens, false);
  text("config_yaml", m.config_yaml);
  if (j.contains("corpus_identity")) text("corpus_identity", m.corpus_identity);
  if (j.contains("corpus_kind")) text("corpus_kind", m.corpus_kind);
  if (j.contains("tern_version")) text("tern_version", m.tern_version);
  if (j.contains("torch_version")) text("torch_version", m.torch_version);
  if (j.contains("run_id")) text("run_id", m.run_id);
  if (j.contains("initialized_from")) text("initialized_from", m.initialized_from);
  if (!j.contains("vocab") || !j["vocab"].is_object()) fail("vocab", "must be an object of sides");
  for (const auto& [side, v] : j["vocab"].items()) {
    if (!v.is_object() || !v.contains("size") || !v["size"].is_number_integer() || !v.contains("hash") ||
        !v["hash"].is_string())
      fail("vocab." + side, "must hold an integer size and a string hash");
    m.vocab[side] = {v["size"].get<int64_t>(), v["hash"].get<std::string>()};
  }
  if (j.contains("validation_pending")) {
    text("validation_pending", m.validation_pending);
    if (m.validation_pending != "step" && m.validation_pending != "final")
      fail("validation_pending", "must be step or final (got '" + m.validation_pending + "')");
  }
  if (j.contains("valid_score")) {
    if (!j["valid_score"].is_number()) fail("valid_score", "must be a number (got " + j["valid_score"].dump() + ")");
    m.valid_score = j["valid_score"].get<double>();
  }
  if (j.contains("best_checkpoints")) {
    const auto& list = j["best_checkpoints"];
    auto entry_ok = [](const nlohmann::json& b) {
      return b.is_object() && b.contains("step") && b["step"].is_number_integer() && b["step"].get<int64_t>() >= 1 &&
             b.contains("score") && b["score"].is_number();
    };
    if (!list.is_array() || !std::all_of(list.begin(), list.end(), entry_ok))
      fail("best_checkpoints", "must be a list of {step >= 1, score} (got " + list.dump() + ")");
    for (const auto& b : list) m.best_checkpoints.push_back({b["step"].get<int64_t>(), b["score"].get<double>()});
  }
  if (j.contains("loss_scaler")) m.loss_scaler = j["loss_scaler"];
  if (j.contains("averaged_from")) {
    if (!j["averaged_from"].is_array()) fail("averaged_from", "must be a list of file names");
    for (const auto& f : j["averaged_from"]) {
      if (!f.is_string()) fail("averaged_from", "must be a list of file names");
      m.averaged_from.push_back(f.get<std::string>());
    }
  }
  // The schedule's state (TrainingSchedule::save) sits at the top level; its load says which key is missing.
  for (const char* key : {"valid_metric", "best_valid_score", "best_valid_loss", "validations_without_improvement",
                          "plateau_scale", "bad_validations"})
    if (j.contains(key)) m.schedule[key] = j[key];
  return m;
}

void write_latest(const std::string& dir, const std::string& file_name) {
  write_file_atomic((fs::path(dir) / "latest").string(), file_name + "\n");
}

std::string step_checkpoint_name(int64_t step) { return fmt::format("ckpt_step{:08d}.tern", step); }

int64_t step_of_checkpoint_name(const std::string& n) {
  const std::string prefix = "ckpt_step", suffix = ".tern";
  if (n.size() <= prefix.size() + suffix.size() || n.rfind(prefix, 0) != 0 ||
      n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  const std::string digits = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

std::vector<std::string> step_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const int64_t step = step_of_checkpoint_name(e.path().filename().string());
    if (step >= 0 && e.is_regular_file()) found.emplace_back(step, e.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::string latest_checkpoint(const std::string& dir) {
  const fs::path file = fs::path(dir) / "latest";
  if (!fs::exists(file)) return "";
  std::string text;
  try {
    text = read_file_bounded(file.string(), 4096, "`latest` pointer");
  } catch (const IoError& e) {
    throw CheckpointError(std::string(e.what()) +
                          "; HINT: delete it and resume with --resume auto (tern then takes "
                          "the newest valid checkpoint)");
  }
  const std::string name = text.substr(0, text.find('\n'));
  const bool plain = name.size() > 5 && name.size() <= 255 && name.compare(name.size() - 5, 5, ".tern") == 0 &&
                     std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '/'; });
  if (!plain)
    throw CheckpointError(
        fmt::format("{}: does not name a checkpoint of this directory (it holds '{}'; expected a "
                    "name like ckpt_step00000100.tern); HINT: delete it and resume with --resume auto "
                    "(tern then takes the newest valid checkpoint)",
                    file.string(), escaped(text)));
  return (fs::path(dir) / name).string();
}

}  // namespace tern
