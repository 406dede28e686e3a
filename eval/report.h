// `tern report`: what happened in a run directory (or several, compared), as one self-contained HTML page (inline CSS
// and SVG, one inline script that only checks the page drew; no external scripts, fonts or images), report.json for
// machines and report.md for logs. Reads config.yaml, environment.json, metrics.jsonl, the checkpoints (verified) and
// every evaluation JSON in the directory (`tern evaluate --json`, `tern ngram -f json` output saved there).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tern {

struct ReportOptions {
  // One run directory: its report. Several: one page comparing them (their settings that differ, curves side by
  // side, evaluations, and paired bootstrap tests of evaluations on the same references against the first run's).
  std::vector<std::string> run_dirs;
  std::string out_dir;     // "" : RUN_DIR/report (required for several runs)
  bool overwrite = false;  // replace report.* files in out_dir that are not an earlier tern report
};

struct ReportFiles {
  std::string html, json, markdown;  // paths written
  nlohmann::json data;               // what report.json holds
};

// Throws DataError naming the file and line for an unreadable run directory or a corrupt metrics line.
ReportFiles write_report(const ReportOptions& opt);

}  // namespace tern
