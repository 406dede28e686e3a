#include "trainer/metrics.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "core/errors.h"
#include "core/files.h"

namespace tern {
namespace {

template <typename T>
void put(nlohmann::json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

template <typename T>
std::optional<T> get(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) return std::nullopt;
  const auto& v = j[key];
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw DataError(fmt::format("{}: {} must be a string (got {})", where, key, v.dump()));
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer())
      throw DataError(fmt::format("{}: {} must be an integer (got {})", where, key, v.dump()));
  } else if (!v.is_number()) {  // NaN and infinity are written as null: a diverged loss stays readable
    if (v.is_null()) return std::numeric_limits<T>::quiet_NaN();
    throw DataError(fmt::format("{}: {} must be a number (got {})", where, key, v.dump()));
  }
  return v.get<T>();
}

}  // namespace

nlohmann::json to_json(const MetricsRow& r) {
  nlohmann::json j = {{"v", kMetricsVersion},
                      {"kind", r.kind == MetricsKind::kTrain ? "train" : "valid"},
                      {"step", r.step},
                      {"epoch", r.epoch}};
  put(j, "train_loss", r.train_loss), put(j, "train_ppl", r.train_ppl), put(j, "lr", r.lr);
  put(j, "grad_norm", r.grad_norm), put(j, "loss_scale", r.loss_scale), put(j, "skipped_steps", r.skipped_steps);
  put(j, "tokens_per_s", r.tokens_per_s), put(j, "train_align", r.train_align);
  if (const auto& b = r.step_ms)
    j["step_ms"] = {{"data", b->data},
                    {"forward", b->forward},
                    {"backward", b->backward},
                    {"communication", b->communication},
                    {"optimizer", b->optimizer}};
  put(j, "valid_loss", r.valid_loss), put(j, "valid_ppl", r.valid_ppl);
  put(j, "valid_bleu", r.valid_bleu), put(j, "valid_bleu_signature", r.valid_bleu_signature);
  put(j, "valid_chrf", r.valid_chrf), put(j, "valid_chrf_signature", r.valid_chrf_signature);
  j["elapsed_s"] = r.elapsed_s;
  return j;
}

MetricsRow metrics_row(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw DataError(where + ": not a JSON object (metrics lines are written by tern train)");
  const int64_t version = get<int64_t>(j, "v", where).value_or(0);
  if (version < 0 || version > kMetricsVersion)
    throw DataError(fmt::format("{}: metrics row version {} is newer than this tern reads ({}); use a newer tern",
                                where, version, kMetricsVersion));
  MetricsRow r;
  const std::string kind = j.contains("kind") && j["kind"].is_string() ? j["kind"].get<std::string>() : "";
  if (version >= 1 && kind != "train" && kind != "valid")
    throw DataError(fmt::format("{}: kind must be train or valid (got {})", where,
                                j.contains("kind") ? j["kind"].dump() : "nothing"));
  r.kind = kind == "valid" || (kind.empty() && j.contains("valid_loss")) ? MetricsKind::kValid : MetricsKind::kTrain;
  const auto step = get<int64_t>(j, "step", where);
  if (!step) throw DataError(where + ": a metrics row needs its step");
  r.step = *step;
  r.epoch = get<int64_t>(j, "epoch", where).value_or(0);
  r.elapsed_s = get<double>(j, "elapsed_s", where).value_or(0);
  r.train_loss = get<double>(j, "train_loss", where), r.train_ppl = get<double>(j, "train_ppl", where);
  r.lr = get<double>(j, "lr", where), r.grad_norm = get<double>(j, "grad_norm", where);
  r.loss_scale = get<double>(j, "loss_scale", where), r.skipped_steps = get<int64_t>(j, "skipped_steps", where);
  r.tokens_per_s = get<double>(j, "tokens_per_s", where), r.train_align = get<double>(j, "train_align", where);
  if (j.contains("step_ms")) {
    const auto& b = j["step_ms"];
    if (!b.is_object())
      throw DataError(fmt::format("{}: step_ms must be an object of phases (got {})", where, b.dump()));
    const std::string w = where + ": step_ms";
    r.step_ms = StepBreakdown{get<double>(b, "data", w).value_or(0), get<double>(b, "forward", w).value_or(0),
                              get<double>(b, "backward", w).value_or(0), get<double>(b, "communication", w).value_or(0),
                              get<double>(b, "optimizer", w).value_or(0)};
  }
  r.valid_loss = get<double>(j, "valid_loss", where), r.valid_ppl = get<double>(j, "valid_ppl", where);
  r.valid_bleu = get<double>(j, "valid_bleu", where), r.valid_chrf = get<double>(j, "valid_chrf", where);
  r.valid_bleu_signature = get<std::string>(j, "valid_bleu_signature", where);
  r.valid_chrf_signature = get<std::string>(j, "valid_chrf_signature", where);
  return r;
}

MetricsFile read_metrics(const std::string& path) {
  MetricsFile out;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return out;
  regular_file_size(path, "metrics file");  // a device or a pipe in its place would never end
  std::ifstream in(path);
  if (!in) return out;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = fmt::format("{}:{}", path, i + 1);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number such as 1e999
      if (i + 1 < lines.size() || e.id != 101)      // 101: unexpected end of input, as a kill mid-write leaves it
        throw DataError(where +
                        ": not a JSON object of finite numbers (metrics lines are written by tern train): " + e.what());
      out.cut_last_line = true;
      break;
    }
    out.rows.push_back(metrics_row(j, where));
  }
  return out;
}

}  // namespace tern
