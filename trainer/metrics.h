// metrics.jsonl, one typed row per line: written by `tern train` (run_dir.cpp), read by `tern report` and by a
// resume that cuts rows past its step. Rows carry the format version; a reader refuses a newer one.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tern {

// 1: rows with "v" and "kind". Rows without "v" (tern before version 1) have the same keys and read as version 0.
constexpr int kMetricsVersion = 1;

enum class MetricsKind { kTrain, kValid };

// Milliseconds per step by phase, averaged over a logging interval.
struct StepBreakdown {
  double data = 0, forward = 0, backward = 0, communication = 0, optimizer = 0;
};

struct MetricsRow {
  MetricsKind kind = MetricsKind::kTrain;
  int64_t step = 0;
  int64_t epoch = 0;     // 1-based epoch the step belongs to
  double elapsed_s = 0;  // wall time since this job started
  // train rows: means over the train.log_every steps since the last row
  std::optional<double> train_loss, train_ppl, grad_norm, loss_scale, tokens_per_s;
  std::optional<StepBreakdown> step_ms;
  std::optional<int64_t> skipped_steps;
  std::optional<double> train_align;  // guided alignment: the alignment cost per target token (unweighted)
  std::optional<double> lr;           // train rows, and validations during training
  // valid rows: the loss always; BLEU and chrF (sacreBLEU-exact, with their signatures) when validation translates
  // (train.valid_metric bleu or chrf)
  std::optional<double> valid_loss, valid_ppl, valid_bleu, valid_chrf;
  std::optional<std::string> valid_bleu_signature, valid_chrf_signature;
};

nlohmann::json to_json(const MetricsRow& row);
// Reads one parsed line; throws DataError naming `where` (file:line), the key and the rule.
MetricsRow metrics_row(const nlohmann::json& j, const std::string& where);

struct MetricsFile {
  std::vector<MetricsRow> rows;
  bool cut_last_line = false;  // the last line did not parse (a job killed mid-write); it was skipped
};
// Reads `path` (no file: no rows). A line that does not parse is a DataError unless it is the last one.
MetricsFile read_metrics(const std::string& path);

}  // namespace tern
