#include "eval/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/corpus.h"
#include "data/text.h"
#include "eval/evaluate.h"
#include "eval/report_page.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/metrics.h"
#include "translation/score.h"

namespace fs = std::filesystem;

namespace tern {
namespace {

using json = nlohmann::json;
using namespace page;  // NOLINT(google-build-using-namespace): the page's building blocks, used throughout

// A file of the run directory: a regular file of at most 256 MiB (IoError naming it otherwise: a device or a pipe in
// its place would never end).
std::string read_text(const fs::path& p, const std::string& what) {
  return read_file_bounded(p.string(), uint64_t{256} << 20, what);
}

// One metric of metrics.jsonl as a chart's line: the steps where it is recorded and finite.
using Field = std::optional<double> MetricsRow::*;
Series series(const std::vector<MetricsRow>& metrics, Field field, const std::string& name, const std::string& color,
              bool dots = false) {
  Series s{name, color, {}, dots};
  for (const auto& m : metrics)
    if (const auto& v = m.*field; v && std::isfinite(*v)) s.points.emplace_back(static_cast<double>(m.step), *v);
  return s;
}

// Everything the report shows, read from the run directory once.
struct RunData {
  std::string config;               // config.yaml
  json env = json::object();        // environment.json
  std::vector<MetricsRow> metrics;  // metrics.jsonl
  json ckpts = json::array();       // per checkpoint file: step, size, check status, valid loss at its step
  json evals = json::array();       // tern evaluate results saved in the directory
  json baselines = json::array();   // tern ngram results saved in the directory
  json summary = json::object();    // steps, time, tokens/s, best validation loss
  json corpus = json::object();     // the training corpus: paths and prepare's filter statistics, or why not
};

// A path a result recorded as it was given, from where that command ran (its `working_dir`, when recorded): relative
// paths are found from there, or else from here (a run directory moved with its files).
std::string recorded_path(const std::string& path, const std::string& working_dir) {
  if (path.empty() || working_dir.empty() || fs::path(path).is_absolute()) return path;
  std::error_code ec;
  const fs::path there = fs::path(working_dir) / path;
  return fs::exists(there, ec) ? there.string() : path;
}

// The corpus of the run's config, as prepare recorded it (filtering, and held-out sentences also in train); the
// config's relative paths start from `working_dir` (environment.json's).
json read_corpus(const std::string& config_text, const std::string& config_path, const std::string& working_dir) {
  try {
    const Config cfg = parse_config(config_text, config_path);
    std::vector<std::string> paths;
    for (const auto& p : cfg.data.corpus) paths.push_back(recorded_path(p, working_dir));
    const CorpusReader corpus(paths);  // the parts agree
    json parts = json::array();        // each part's own statistics (its held-out overlap is with its own train only)
    for (const auto& text : corpus.part_attrs("filter_stats"))
      parts.push_back(json::parse(text, nullptr, /*allow_exceptions=*/false));
    if (parts.size() == 1) return {{"paths", cfg.data.corpus}, {"filter_stats", parts[0]}};
    json out = {{"paths", cfg.data.corpus}, {"filter_stats_parts", parts}};
    if (!cfg.data.weights.empty()) out["weights"] = cfg.data.weights;  // data.weights: each part's upsampling
    return out;
  } catch (const std::exception& e) {  // moved or deleted since: the report says so instead of failing
    return {{"unavailable", e.what()}};
  }
}

// Checkpoints, verified; their validation loss is the one logged at their step.
json read_checkpoints(const fs::path& dir, const std::vector<MetricsRow>& metrics) {
  std::map<int64_t, double> valid_at;
  for (const auto& m : metrics)
    if (m.valid_loss) valid_at[m.step] = *m.valid_loss;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tern") files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  json ckpts = json::array();
  for (const auto& f : files) {
    json c = {{"file", f}, {"bytes", static_cast<int64_t>(fs::file_size(dir / f))}};
    try {
      CheckpointData d = read_checkpoint((dir / f).string());
      c["step"] = checkpoint_meta(d.meta, (dir / f).string()).step;
      c["status"] = "ok";
      auto it = valid_at.find(c["step"].get<int64_t>());
      if (it != valid_at.end()) c["valid_loss"] = it->second, c["valid_ppl"] = std::exp(it->second);
    } catch (const CheckpointError& e) {
      c["status"] = std::string("unreadable: ") + e.what();
    }
    ckpts.push_back(c);
  }
  return ckpts;
}

// Whether j[key] exists with the type `is` checks (json::is_number, ...).
bool has(const json& j, const char* key, bool (json::*is)() const noexcept) {
  return j.is_object() && j.contains(key) && (j[key].*is)();
}

// "" when `j` has the fields, of their types, that the report reads from a `tern evaluate --json` result (else what
// is wrong), so that an edited or foreign file is skipped with a warning instead of read wrongly.
std::string evaluation_problem(const json& j) {
  if (!has(j, "checkpoint", &json::is_string)) return "checkpoint is not a string";
  if (!has(j, "perplexity", &json::is_object) || !has(j["perplexity"], "ppl_per_token", &json::is_number))
    return "perplexity.ppl_per_token is not a number";
  for (const char* key : {"split", "hypotheses_file", "corpus", "working_dir"})
    if (j.contains(key) && !j[key].is_string()) return fmt::format("{} is not a string", key);
  if (j.contains("sentences") && !(j["sentences"].is_number_integer() && j["sentences"].get<int64_t>() >= 0))
    return "sentences is not a count";
  if (j.contains("bleu") || j.contains("chrf") || j.contains("translation")) {
    if (!has(j, "translation", &json::is_object) || !has(j["translation"], "sentences_per_s", &json::is_number) ||
        (j["translation"].contains("reference") && !j["translation"]["reference"].is_string()))
      return "translation is not an object with sentences_per_s (a number) and reference (a string)";
    for (const char* m : {"bleu", "chrf"}) {
      if (!has(j, m, &json::is_object) || !has(j[m], "score", &json::is_number) ||
          !has(j[m], "signature", &json::is_string))
        return fmt::format("{} is not an object with score (a number) and signature (a string)", m);
      if (j[m].contains("confidence") && !has(j[m]["confidence"], "ci", &json::is_number))
        return fmt::format("{}.confidence.ci is not a number", m);
    }
    if (!has(j["chrf"], "name", &json::is_string)) return "chrf.name is not a string";
  }
  if (j.contains("corpus_parts") &&
      (!j["corpus_parts"].is_array() ||
       !std::all_of(j["corpus_parts"].begin(), j["corpus_parts"].end(), [](const json& p) { return p.is_string(); })))
    return "corpus_parts is not a list of paths";
  if (j.contains("samples")) {
    if (!j["samples"].is_array()) return "samples is not a list";
    for (const auto& s : j["samples"]) {
      if (!has(s, "source", &json::is_array) || !has(s, "output", &json::is_array) ||
          !has(s, "attention", &json::is_array) || s["attention"].size() < s["output"].size())
        return "a sample lacks source, output or attention (one row a output piece)";
      for (const auto& piece : s["source"])
        if (!piece.is_string()) return "a sample's source piece is not a string";
      for (const auto& piece : s["output"])
        if (!piece.is_string()) return "a sample's output piece is not a string";
      for (const auto& row : s["attention"])
        if (!row.is_array() || !std::all_of(row.begin(), row.end(), [](const json& w) { return w.is_number(); }))
          return "a sample's attention row is not a list of numbers";
    }
  }
  return "";
}

std::string baseline_problem(const json& j) {
  if (!has(j, "order", &json::is_number_integer)) return "order is not an integer";
  if (!has(j, "smoothing", &json::is_string)) return "smoothing is not a string";
  for (const char* key : {"ppl", "bits_per_token", "ppl_excluding_oov"})
    if (j.contains(key) && !j[key].is_number()) return fmt::format("{} is not a number", key);
  return has(j, "ppl", &json::is_number) ? "" : "ppl is not a number";
}

// Evaluation results and n-gram baselines saved in the run directory (other JSON files are not ours; ours with fields
// of other types are skipped with a warning).
void read_results(const fs::path& dir, json& evals, json& baselines) {
  std::vector<fs::path> jsons;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json" && e.path().filename() != "environment.json") jsons.push_back(e.path());
  std::sort(jsons.begin(), jsons.end());
  for (const auto& p : jsons) {
    json j;
    try {
      j = json::parse(read_text(p, "JSON result"), nullptr, /*allow_exceptions=*/false);
    } catch (const IoError& e) {
      log_line(fmt::format("report: skipped: {}", e.what()));
      continue;
    }
    if (!j.is_object()) continue;
    j["file"] = p.filename().string();
    const bool eval = j.contains("checkpoint") && j.contains("perplexity"),
               ngram = j.contains("smoothing") && j.contains("ppl");
    const std::string problem = eval ? evaluation_problem(j) : ngram ? baseline_problem(j) : "";
    if (!problem.empty())
      log_line(fmt::format("report: {}: skipped: it reads like a tern {} result but {}", p.string(),
                           eval ? "evaluate" : "ngram", problem));
    else if (eval)
      evals.push_back(j);
    else if (ngram)
      baselines.push_back(j);
  }
}

RunData read_run(const fs::path& dir) {
  RunData r;
  if (fs::exists(dir / "config.yaml")) r.config = read_text(dir / "config.yaml", "run config");
  if (fs::exists(dir / "environment.json")) {
    try {
      r.env = json::parse(read_text(dir / "environment.json", "run environment"));
    } catch (const json::exception& e) {
      throw DataError((dir / "environment.json").string() + ": not JSON: " + e.what());
    }
  }
  MetricsFile mf = read_metrics((dir / "metrics.jsonl").string());
  if (mf.cut_last_line)
    log_line(fmt::format("report: {}: skipping a truncated last line", (dir / "metrics.jsonl").string()));
  r.metrics = std::move(mf.rows);
  r.ckpts = read_checkpoints(dir, r.metrics);
  if (!r.config.empty())
    r.corpus = read_corpus(r.config, (dir / "config.yaml").string(),
                           has(r.env, "working_dir", &json::is_string) ? r.env["working_dir"].get<std::string>() : "");
  read_results(dir, r.evals, r.baselines);
  double best_valid = 1e300, best_bleu = -1;
  for (const auto& m : r.metrics) {
    if (m.valid_loss) best_valid = std::min(best_valid, *m.valid_loss);
    if (m.valid_bleu) best_bleu = std::max(best_bleu, *m.valid_bleu);
    r.summary["steps"] = m.step;
    if (m.tokens_per_s) r.summary["tokens_per_s"] = *m.tokens_per_s;
    r.summary["elapsed_s"] = m.elapsed_s;
  }
  if (best_valid < 1e300) r.summary["best_valid_loss"] = best_valid, r.summary["best_valid_ppl"] = std::exp(best_valid);
  if (best_bleu >= 0) r.summary["best_valid_bleu"] = best_bleu;
  return r;
}

// report.json: the run's data and its curves.
json report_json(const RunData& r, const std::string& run_dir) {
  json data = {
      {"format", "tern-report"}, {"format_version", 1},    {"run_dir", run_dir},     {"config_yaml", r.config},
      {"environment", r.env},    {"checkpoints", r.ckpts}, {"evaluations", r.evals}, {"ngram_baselines", r.baselines},
      {"summary", r.summary},    {"corpus", r.corpus}};
  const std::pair<const char*, Field> fields[] = {{"train_loss", &MetricsRow::train_loss},
                                                  {"valid_loss", &MetricsRow::valid_loss},
                                                  {"valid_bleu", &MetricsRow::valid_bleu},
                                                  {"valid_chrf", &MetricsRow::valid_chrf},
                                                  {"lr", &MetricsRow::lr},
                                                  {"grad_norm", &MetricsRow::grad_norm},
                                                  {"loss_scale", &MetricsRow::loss_scale},
                                                  {"tokens_per_s", &MetricsRow::tokens_per_s}};
  for (const auto& [key, field] : fields) data["series"][key] = series(r.metrics, field, key, "").points;
  return data;
}

// The tables shared by the HTML and the Markdown report.
struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
};
struct Tables {
  Table ckpts, evals, baselines, corpus;
};

// A BLEU or chrF cell: the score, and half its 95% bootstrap interval where the evaluation has one.
std::string score_cell(const json& e, const char* metric) {
  if (!e.contains(metric)) return "–";
  const json& m = e[metric];
  return m.contains("confidence") ? num(m["score"]) + " ± " + num(m["confidence"]["ci"]) : num(m["score"]);
}

// How an evaluation searched, from its "translation" block: "beam 5, early-stop, int8, shortlist runs/lex.bin, lm
// runs/lm/best.tern x 0.1, reranked (1 + 1 x runs/r2l/best.tern)" (the options that change translations, files as
// given; "–" when it did not translate).
std::string search_cell(const json& e) {
  if (!e.contains("translation") || !e["translation"].is_object()) return "–";
  const json& t = e["translation"];
  const auto number = [&](const char* key) { return t.contains(key) && t[key].is_number() ? t[key].get<double>() : 0; };
  const auto flag = [&](const char* key) { return t.contains(key) && t[key].is_boolean() && t[key].get<bool>(); };
  const auto file = [&](const char* key) {
    return t.contains(key) && t[key].is_string() ? t[key].get<std::string>() : "";
  };
  std::string s = fmt::format("beam {:g}", number("beam"));
  if (flag("early_stop")) s += ", early-stop";
  if (number("min_len") > 0) s += fmt::format(", min-len {:g}", number("min_len"));
  if (number("no_repeat_ngram_size") > 0) s += fmt::format(", no-repeat {:g}", number("no_repeat_ngram_size"));
  if (flag("int8")) s += ", int8";
  if (!file("shortlist").empty()) s += ", shortlist " + file("shortlist");
  if (!file("lm").empty()) s += fmt::format(", lm {} x {:g}", file("lm"), number("lm_weight"));
  if (t.contains("rescore") && t["rescore"].is_array() && !t["rescore"].empty()) {  // weights: the searcher's first
    const json none = json::array();
    const json& w = t.contains("rescore_weights") && t["rescore_weights"].is_array() ? t["rescore_weights"] : none;
    const auto weight = [&](size_t m) { return m < w.size() && w[m].is_number() ? w[m].get<double>() : 1.0; };
    s += fmt::format(", reranked ({:g}", weight(0));
    for (size_t m = 0; m < t["rescore"].size(); ++m)
      s += fmt::format(" + {:g} x {}", weight(m + 1),
                       t["rescore"][m].is_string() ? t["rescore"][m].get<std::string>() : "?");
    s += ")";
  }
  return s;
}

Tables make_tables(const RunData& r) {
  Tables t;
  std::map<std::string, json> eval_by_ckpt;
  for (const auto& e : r.evals) eval_by_ckpt[fs::path(e["checkpoint"].get<std::string>()).filename().string()] = e;
  t.ckpts.head = {"checkpoint", "step", "MB", "file check", "valid PPL", "test PPL", "BLEU", "chrF"};
  for (const auto& c : r.ckpts) {
    auto it = eval_by_ckpt.find(c["file"].get<std::string>());
    json e = it == eval_by_ckpt.end() ? json::object() : it->second;
    t.ckpts.rows.push_back({c["file"], c.contains("step") ? std::to_string(c["step"].get<int64_t>()) : "–",
                            fmt::format("{:.1f}", c["bytes"].get<double>() / 1e6), c["status"],
                            c.contains("valid_ppl") ? num(c["valid_ppl"]) : "–",
                            e.contains("perplexity") ? num(e["perplexity"]["ppl_per_token"]) : "–",
                            score_cell(e, "bleu"), score_cell(e, "chrf")});
  }
  t.corpus.head = {
      "split",     "lines",      "kept",       "dropped empty",          "dropped long",        "dropped ratio",
      "truncated", "tokens src", "tokens tgt", "also in train (source)", "also in train (pair)"};
  auto stats_rows = [&](const json& stats, const std::string& part) {
    if (!stats.is_object()) return;
    for (const auto& [split, s] : stats.items()) {
      std::vector<std::string> row{split + part};
      for (const char* k : {"lines", "kept", "dropped_empty", "dropped_long", "dropped_ratio", "truncated",
                            "tokens_src", "tokens_tgt", "in_train_src", "in_train_pair"})
        row.push_back(s.is_object() && s.contains(k) ? s[k].dump() : "–");
      t.corpus.rows.push_back(row);
    }
  };
  if (r.corpus.contains("filter_stats")) stats_rows(r.corpus["filter_stats"], "");
  if (r.corpus.contains("filter_stats_parts"))
    for (size_t k = 0; k < r.corpus["filter_stats_parts"].size(); ++k)
      stats_rows(r.corpus["filter_stats_parts"][k],
                 r.corpus.contains("weights") && k < r.corpus["weights"].size()
                     ? fmt::format(" (part {}, x{} in training)", k + 1, r.corpus["weights"][k].get<int64_t>())
                     : fmt::format(" (part {})", k + 1));
  t.evals.head = {"result",   "checkpoint", "split", "sentences", "PPL/token",
                  "PPL/word", "BLEU",       "chrF",  "search",    "sentences/s"};
  for (const auto& e : r.evals)
    t.evals.rows.push_back({e["file"], e["checkpoint"], e.value("split", ""), std::to_string(e.value("sentences", 0)),
                            num(e["perplexity"]["ppl_per_token"]), num(e["perplexity"].value("ppl_per_word", json())),
                            score_cell(e, "bleu"), score_cell(e, "chrf"), search_cell(e),
                            e.contains("translation") ? num(e["translation"]["sentences_per_s"], 1) : "–"});
  t.baselines.head = {"model", "PPL/token", "bits/token", "PPL without OOVs"};
  if (r.baselines.empty()) return t;
  for (const auto& e : r.evals)
    if (!e.contains("bleu"))
      t.baselines.rows.push_back({"LSTM (" + e["file"].get<std::string>() + ")", num(e["perplexity"]["ppl_per_token"]),
                                  num(e["perplexity"].value("cross_entropy_bits_per_token", json()), 3), "–"});
  for (const auto& b : r.baselines)
    t.baselines.rows.push_back({fmt::format("{}-gram {} ({})", b["order"].get<int>(), b["smoothing"].get<std::string>(),
                                            b["file"].get<std::string>()),
                                num(b["ppl"]), num(b.value("bits_per_token", json()), 3),
                                num(b.value("ppl_excluding_oov", json()))});
  std::sort(t.baselines.rows.begin(), t.baselines.rows.end(),
            [](const auto& a, const auto& b) { return std::stod(a[1]) < std::stod(b[1]); });
  return t;
}

std::string html_curves(const std::vector<MetricsRow>& metrics) {
  std::string h = "<h2>Training curves</h2><div class=\"charts\">\n";
  h += chart("loss (nats/token)", {series(metrics, &MetricsRow::train_loss, "train", "#1f77b4"),
                                   series(metrics, &MetricsRow::valid_loss, "valid", "#d62728", true)});
  h += chart("perplexity (log scale)",
             {series(metrics, &MetricsRow::train_ppl, "train", "#1f77b4"),
              series(metrics, &MetricsRow::valid_ppl, "valid", "#d62728", true)},
             true);
  if (std::any_of(metrics.begin(), metrics.end(), [](const MetricsRow& m) { return m.valid_bleu.has_value(); }))
    h += chart("validation BLEU and chrF (train.valid_metric)",
               {series(metrics, &MetricsRow::valid_bleu, "BLEU", "#d62728", true),
                series(metrics, &MetricsRow::valid_chrf, "chrF", "#17becf", true)});
  h += chart("learning rate", {series(metrics, &MetricsRow::lr, "lr", "#2ca02c")});
  h += chart("gradient norm (before clipping)", {series(metrics, &MetricsRow::grad_norm, "grad norm", "#9467bd")});
  Series scale = series(metrics, &MetricsRow::loss_scale, "loss scale", "#8c564b");
  if (std::any_of(scale.points.begin(), scale.points.end(), [](const auto& p) { return p.second != 1.0; }))
    h += chart("loss scale (log scale)", {scale}, true);
  h += chart("tokens/s (source + target)", {series(metrics, &MetricsRow::tokens_per_s, "tokens/s", "#ff7f0e")});
  h += "</div>\n";
  if (metrics.empty()) h += "<p class=\"note\">metrics.jsonl is missing or empty: no curves.</p>\n";
  return h;
}

std::string html_report(const RunData& r, const Tables& t, const std::string& run_dir) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tern report: " + esc(run_dir) +
      "</title>\n" + kReportStyle + kReportCheck + "</head><body>\n";
  h += "<h1>tern report: " + esc(run_dir) + "</h1>\n<p class=\"note\">";
  if (r.summary.contains("steps")) h += fmt::format("{} steps", r.summary["steps"].get<int64_t>());
  if (r.summary.contains("elapsed_s")) h += fmt::format(" in {:.1f} min", r.summary["elapsed_s"].get<double>() / 60);
  if (r.summary.contains("best_valid_loss"))
    h += fmt::format("; best validation loss {:.4f} nats/token (perplexity {:.2f})",
                     r.summary["best_valid_loss"].get<double>(), r.summary["best_valid_ppl"].get<double>());
  if (r.summary.contains("best_valid_bleu"))
    h += fmt::format("; best validation BLEU {:.2f}", r.summary["best_valid_bleu"].get<double>());
  h += ". Perplexities are per token with one end-of-sentence token per sentence counted: PPL = 2<sup>H</sup>, H "
       "the cross-entropy in bits (docs/evaluation.md).</p>\n";
  h += html_curves(r.metrics);
  h += "<h2>Checkpoints</h2>\n" + table(t.ckpts.head, t.ckpts.rows, "ckpts");
  h += "<h2>Corpus</h2>\n";
  if (r.corpus.contains("paths"))
    h += "<p class=\"note\">" +
         esc(fmt::format("{}", fmt::join(r.corpus["paths"].get<std::vector<std::string>>(), ", "))) +
         ", as tern prepare filtered it; held-out sentences that also occur in train make their scores "
         "optimistic.</p>\n" +
         table(t.corpus.head, t.corpus.rows, "corpus");
  else
    h += "<p class=\"note\">" + esc(r.corpus.value("unavailable", std::string("no config.yaml"))) + "</p>\n";
  if (!t.evals.rows.empty()) {
    h += "<h2>Evaluations</h2>\n<p class=\"note\">BLEU and chrF ± half their 95% bootstrap interval (1,000 "
         "resamples of the test sentences, as sacreBLEU --confidence): differences within it may be the luck of the "
         "test set; <code>tern score REF -i A B --paired-bs</code> tests them.</p>\n" +
         table(t.evals.head, t.evals.rows, "evals");
    for (const auto& e : r.evals)
      if (e.contains("bleu"))
        h += "<p class=\"note\">" + esc(e["file"].get<std::string>()) + ": BLEU " +
             esc(e["bleu"]["signature"].get<std::string>()) +
             (e.contains("chrf") ? "; " + esc(e["chrf"]["name"].get<std::string>()) + " " +
                                       esc(e["chrf"]["signature"].get<std::string>())
                                 : "") +
             "</p>\n";
  }
  if (!r.baselines.empty())
    h += "<h2>Language model against n-gram baselines</h2>\n<p class=\"note\">Same test text and tokens; one "
         "&lt;/s&gt; per sentence counted.</p>\n" +
         table(t.baselines.head, t.baselines.rows, "baselines");
  for (const auto& e : r.evals)
    if (e.contains("samples") && !e["samples"].empty()) {
      h += "<h2>Sample translations and attention (" + esc(e["file"].get<std::string>()) + ", greedy)</h2>\n";
      for (const auto& s : e["samples"]) {
        std::string out;
        for (const auto& p : s["output"]) out += p.get<std::string>() + " ";
        h += "<p class=\"note\">" + esc(out) + "</p>\n" + heatmap(s);
      }
      break;
    }
  std::vector<std::vector<std::string>> envrow;
  for (const auto& [k, v] : r.env.items()) envrow.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});
  h += "<h2>Environment</h2>\n" +
       (envrow.empty() ? std::string("<p class=\"note\">no environment.json (written by tern train from 0.1 on)</p>\n")
                       : table({"key", "value"}, envrow, "env"));
  return h + "<h2>Configuration</h2>\n<pre>" + esc(r.config) + "</pre>\n</body></html>\n";
}

std::string markdown_report(const RunData& r, const Tables& t, const std::string& run_dir) {
  std::string md = "# tern report: " + run_dir + "\n\n";
  if (r.summary.contains("best_valid_loss"))
    md += fmt::format("Best validation loss {:.4f} nats/token (perplexity {:.2f}) after {} steps.\n\n",
                      r.summary["best_valid_loss"].get<double>(), r.summary["best_valid_ppl"].get<double>(),
                      r.summary.value("steps", 0));
  md += "## Checkpoints\n\n" + md_table(t.ckpts.head, t.ckpts.rows);
  if (!t.corpus.rows.empty()) md += "\n## Corpus\n\n" + md_table(t.corpus.head, t.corpus.rows);
  if (!t.evals.rows.empty()) md += "\n## Evaluations\n\n" + md_table(t.evals.head, t.evals.rows);
  if (!r.baselines.empty())
    md += "\n## Language model against n-gram baselines\n\n" + md_table(t.baselines.head, t.baselines.rows);
  return md;
}

// Report files in `out_dir` that are not an earlier tern report's (its report.json, a JSON object with "run_dir" and
// "series", says the three are), which writing the report would replace: "" when there are none.
std::string foreign_report_file(const fs::path& out_dir) {
  std::error_code ec;
  const fs::path j = out_dir / "report.json";
  if (fs::exists(j, ec)) {
    json prior;
    try {
      prior = json::parse(read_text(j, "report"), nullptr, /*allow_exceptions=*/false);
    } catch (const IoError&) {  // a device or a pipe by that name: not ours
      return j.string();
    }
    if (prior.is_object() &&
        ((prior.contains("run_dir") && prior.contains("series")) || prior.value("format", "") == "tern-comparison"))
      return "";
    return j.string();
  }
  for (const char* name : {"report.html", "report.md"})
    if (fs::exists(out_dir / name, ec)) return (out_dir / name).string();
  return "";
}

// ------------------------------------------------------------------------------- several runs side by side

constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct ComparedRun {
  std::string dir, label;  // as given; its name (the path where two runs share a name)
  RunData data;
  std::map<std::string, std::string> config;  // the resolved config's values (empty: no readable config.yaml)
};

// One run's evaluation that was compared or could not be, and why.
struct ComparedEval {
  size_t run = 0;
  json eval;         // the evaluation JSON (with "file")
  std::string skip;  // why it takes no part in the paired tests ("" : it does)
  std::string split, tokenize, refs_key;
  std::vector<std::string> hyps, refs;
  MetricStatistics bleu;  // of hyps against refs (with `tokenize`): checked against the JSON, then resampled
};

std::string tokenizer_of(const std::string& signature) {
  const size_t at = signature.find("tok:");
  return at == std::string::npos ? "13a" : signature.substr(at + 4, signature.find('|', at) - at - 4);
}

// Reads an evaluation's translations and references back, as `tern evaluate` scored them: its --hyp-out file and
// its references (the --ref file aligned to the split, or the corpus targets). It takes part in the paired tests only
// if they give the BLEU it recorded (the files have not changed since).
ComparedEval compared_eval(size_t run, const json& e) {
  ComparedEval c{run, e, "", e.value("split", ""), "", "", {}, {}, {}};
  auto skipped = [&](std::string why) {
    c.skip = std::move(why);
    return c;
  };
  try {
    if (!e.contains("hypotheses_file")) return skipped("no translations kept (evaluate without --hyp-out)");
    const std::string from = e.value("working_dir", std::string());  // evaluate's; older results: none
    const std::string hyp_file = recorded_path(e["hypotheses_file"].get<std::string>(), from);
    if (!fs::exists(hyp_file))
      return skipped(hyp_file + (from.empty() ? ": not found from here (evaluate recorded the path as it was given: "
                                                "run tern report from the directory evaluate ran in)"
                                              : ": not found, from here or from " + from + " where evaluate ran"));
    std::vector<std::string> parts = e.contains("corpus_parts")
                                         ? e["corpus_parts"].get<std::vector<std::string>>()
                                         : std::vector<std::string>{e.value("corpus", std::string())};
    for (auto& p : parts) p = recorded_path(p, from);
    std::string ref = e["translation"].value("reference", std::string());
    if (ref != kCorpusTargetsReference) ref = recorded_path(ref, from);
    c.hyps = read_utf8_file(hyp_file, "hypotheses file");
    c.refs =
        scored_references(parts, c.split, e.value("sentences", int64_t{0}), ref == kCorpusTargetsReference ? "" : ref);
    c.tokenize = tokenizer_of(e["bleu"]["signature"].get<std::string>());
    if (c.hyps.size() != c.refs.size())
      return skipped(fmt::format("{} has {} lines for {} sentences", hyp_file, c.hyps.size(), c.refs.size()));
    ScoreOptions scoring;
    scoring.bleu.tokenize = c.tokenize;
    c.bleu = metric_statistics("bleu", c.hyps, {c.refs}, scoring);
    const double bleu = c.bleu.corpus_score();
    if (std::abs(bleu - e["bleu"]["score"].get<double>()) > 1e-6)
      return skipped(fmt::format("{} and its references give BLEU {:.4f}, not the {:.4f} recorded: changed since",
                                 hyp_file, bleu, e["bleu"]["score"].get<double>()));
    std::string joined;
    for (const auto& r : c.refs) joined += r + "\n";
    c.refs_key = c.split + "|" + c.tokenize + "|" + hex64(hash_string(joined));
  } catch (const std::exception& ex) {
    return skipped(ex.what());
  }
  return c;
}

// Paired bootstrap resampling (sacreBLEU --paired-bs: 1,000 resamples, seed 12345) of every group of evaluations
// with the same references, each against the group's first (the first run's): BLEU and chrF, with p-values.
json paired_tests(const std::vector<ComparedRun>& runs, const std::vector<ComparedEval>& evals) {
  std::map<std::string, std::vector<const ComparedEval*>> groups;
  std::vector<std::string> order;
  for (const auto& c : evals)
    if (c.skip.empty()) {
      if (!groups.count(c.refs_key)) order.push_back(c.refs_key);
      groups[c.refs_key].push_back(&c);
    }
  json out = json::array();
  for (const auto& key : order) {
    const auto& g = groups[key];  // two or more: compare_runs set aside the evaluations alone on their references
    const ScoreOptions chrf;      // the default chrF2, as evaluate scores it
    std::vector<std::vector<MetricStatistics>> systems;
    for (const auto* c : g) systems.push_back({c->bleu, metric_statistics("chrf", c->hyps, {c->refs}, chrf)});
    const auto results = paired_test(systems, PairedTest::kBootstrap, 1000, 12345);
    json group = {{"split", g[0]->split},
                  {"sentences", g[0]->refs.size()},
                  {"reference", g[0]->eval["translation"].value("reference", std::string())},
                  {"tokenize", g[0]->tokenize},
                  {"test", "paired bootstrap resampling, 1000 resamples, seed 12345 (sacreBLEU --paired-bs)"},
                  {"systems", json::array()}};
    for (size_t k = 0; k < g.size(); ++k) {
      json sys = {{"run", runs[g[k]->run].label}, {"file", g[k]->eval["file"]}};
      for (size_t m = 0; m < 2; ++m) {
        const PairedResult& r = results[k][m];
        json v = {{"score", r.score}};
        if (r.mean) v["mean"] = r.mean->v, v["ci"] = r.ci->v;
        if (r.p_value) v["p_value"] = *r.p_value;
        sys[m == 0 ? "bleu" : "chrf"] = v;
      }
      group["systems"].push_back(sys);
    }
    out.push_back(group);
  }
  return out;
}

// The config values that differ between the runs (train.run_dir always does), with "–" where a run has none.
json config_differences(const std::vector<ComparedRun>& runs) {
  std::map<std::string, bool> keys;
  for (const auto& r : runs)
    for (const auto& [k, v] : r.config) keys[k] = true;
  json diff = json::object();
  for (const auto& [k, unused] : keys) {
    if (k == "train.run_dir") continue;
    std::vector<std::string> values;
    for (const auto& r : runs) values.push_back(r.config.count(k) ? r.config.at(k) : "–");
    if (std::adjacent_find(values.begin(), values.end(), std::not_equal_to<>()) != values.end()) diff[k] = values;
  }
  return diff;
}

struct Comparison {
  std::vector<ComparedRun> runs;
  std::vector<ComparedEval> evals;
  json differences, tests;
  Table summary, config, evaluations, skipped;
  std::vector<Table> paired;  // one per group of evaluations with the same references
};

std::string p_cell(const json& v) {
  if (!v.contains("p_value")) return "(baseline)";
  const double p = v["p_value"].get<double>();
  return fmt::format("{:.4f}{}", p, p < 0.05 ? " *" : "");
}

Comparison compare_runs(const std::vector<std::string>& dirs) {
  Comparison c;
  std::map<std::string, int> names;
  for (const auto& d : dirs) ++names[fs::path(d).lexically_normal().filename().string()];
  for (const auto& d : dirs) {
    ComparedRun r{d, fs::path(d).lexically_normal().filename().string(), read_run(d), {}};
    if (r.label.empty() || names[r.label] > 1) r.label = d;
    try {
      if (!r.data.config.empty())
        for (const auto& [k, v] : config_values(parse_config(r.data.config, (fs::path(d) / "config.yaml").string())))
          r.config[k] = v;
    } catch (const std::exception& e) {
      log_line(
          fmt::format("report: {}: its config.yaml does not parse ({}); its settings are not compared", d, e.what()));
    }
    c.runs.push_back(std::move(r));
  }
  for (size_t i = 0; i < c.runs.size(); ++i)
    for (const auto& e : c.runs[i].data.evals)
      if (e.contains("bleu")) c.evals.push_back(compared_eval(i, e));
  std::map<std::string, int> same_refs;
  for (const auto& e : c.evals)
    if (e.skip.empty()) ++same_refs[e.refs_key];
  for (auto& e : c.evals)
    if (e.skip.empty() && same_refs[e.refs_key] == 1)
      e.skip = "no evaluation of another run has the same references (split, reference text and BLEU tokenizer)";
  c.differences = config_differences(c.runs);
  c.tests = paired_tests(c.runs, c.evals);

  c.summary.head = {"run",      "directory",       "steps",          "minutes",
                    "tokens/s", "best valid loss", "best valid PPL", "best valid BLEU"};
  for (const auto& r : c.runs) {
    const json& s = r.data.summary;
    c.summary.rows.push_back({r.label, r.dir, s.contains("steps") ? s["steps"].dump() : "–",
                              s.contains("elapsed_s") ? num(s["elapsed_s"].get<double>() / 60, 1) : "–",
                              s.contains("tokens_per_s") ? num(s["tokens_per_s"], 0) : "–",
                              num(s.value("best_valid_loss", json()), 4), num(s.value("best_valid_ppl", json())),
                              num(s.value("best_valid_bleu", json()))});
  }
  c.config.head = {"setting"};
  for (const auto& r : c.runs) c.config.head.push_back(r.label);
  for (const auto& [k, values] : c.differences.items()) {
    std::vector<std::string> row{k};
    for (const auto& v : values) row.push_back(v.get<std::string>());
    c.config.rows.push_back(row);
  }
  c.evaluations.head = {"run", "result", "checkpoint", "split", "sentences", "PPL/token", "BLEU", "chrF", "search"};
  c.skipped.head = {"run", "result", "not in the paired tests because"};
  for (const auto& e : c.evals) {
    const json& j = e.eval;
    c.evaluations.rows.push_back({c.runs[e.run].label, j["file"], j.value("checkpoint", ""), e.split,
                                  std::to_string(j.value("sentences", 0)), num(j["perplexity"]["ppl_per_token"]),
                                  score_cell(j, "bleu"), score_cell(j, "chrf"), search_cell(j)});
    if (!e.skip.empty()) c.skipped.rows.push_back({c.runs[e.run].label, j["file"], e.skip});
  }
  for (const auto& g : c.tests) {
    Table t;
    t.head = {"run", "result", "BLEU", "BLEU mean ± 95% CI", "p", "chrF", "chrF mean ± 95% CI", "p"};
    for (const auto& sys : g["systems"]) {
      std::vector<std::string> row{sys["run"], sys["file"]};
      for (const char* m : {"bleu", "chrf"}) {
        const json& v = sys[m];
        row.push_back(num(v["score"]));
        row.push_back(v.contains("mean") ? num(v["mean"]) + " ± " + num(v["ci"]) : "–");
        row.push_back(p_cell(v));
      }
      t.rows.push_back(row);
    }
    c.paired.push_back(t);
  }
  return c;
}

json comparison_json(const Comparison& c) {
  json runs = json::array();
  for (const auto& r : c.runs) {
    json curves;
    for (const auto& [key, field] : {std::pair<const char*, Field>{"train_loss", &MetricsRow::train_loss},
                                     {"valid_loss", &MetricsRow::valid_loss},
                                     {"valid_bleu", &MetricsRow::valid_bleu},
                                     {"valid_chrf", &MetricsRow::valid_chrf}})
      curves[key] = series(r.data.metrics, field, key, "").points;
    runs.push_back({{"run", r.label},
                    {"run_dir", r.dir},
                    {"summary", r.data.summary},
                    {"series", curves},
                    {"evaluations", r.data.evals}});
  }
  json skipped = json::array();
  for (const auto& e : c.evals)
    if (!e.skip.empty()) skipped.push_back({{"run", c.runs[e.run].label}, {"file", e.eval["file"]}, {"why", e.skip}});
  return {{"format", "tern-comparison"},         {"format_version", 1},     {"runs", runs},
          {"config_differences", c.differences}, {"paired_tests", c.tests}, {"not_compared", skipped}};
}

std::string comparison_html(const Comparison& c) {
  std::vector<std::string> labels;
  for (const auto& r : c.runs) labels.push_back(r.label);
  const std::string title = fmt::format("tern comparison: {}", fmt::join(labels, ", "));
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) +
                  "</title>\n" + kReportStyle + kReportCheck + "</head><body>\n<h1>" + esc(title) + "</h1>\n";
  h += "<h2>Runs</h2>\n" + table(c.summary.head, c.summary.rows, "runs");
  h += "<h2>Settings that differ</h2>\n";
  h +=
      c.config.rows.empty()
          ? "<p class=\"note\">Every resolved setting is the same (train.run_dir aside).</p>\n"
          : "<p class=\"note\">The resolved configs (config.yaml of each run); every other setting is the same.</p>\n" +
                table(c.config.head, c.config.rows, "config");
  auto per_run = [&](Field field, bool dots) {
    std::vector<Series> all;
    for (size_t i = 0; i < c.runs.size(); ++i)
      all.push_back(series(c.runs[i].data.metrics, field, c.runs[i].label, kPalette[i % 10], dots));
    return all;
  };
  h += "<h2>Curves</h2><div class=\"charts\">\n";
  h += chart("validation loss (nats/token)", per_run(&MetricsRow::valid_loss, true));
  h += chart("validation BLEU", per_run(&MetricsRow::valid_bleu, true));
  h += chart("training loss (nats/token)", per_run(&MetricsRow::train_loss, false));
  h += chart("tokens/s (source + target)", per_run(&MetricsRow::tokens_per_s, false));
  h += "</div>\n";
  if (!c.evaluations.rows.empty())
    h += "<h2>Evaluations</h2>\n<p class=\"note\">BLEU and chrF ± half their 95% bootstrap interval.</p>\n" +
         table(c.evaluations.head, c.evaluations.rows, "evals");
  for (size_t g = 0; g < c.paired.size(); ++g) {
    const json& t = c.tests[g];
    h += fmt::format(
        "<h2>Paired significance: {} split, {} sentences</h2>\n<p class=\"note\">{}; each against the first "
        "(the baseline), on the same references ({}, BLEU tok:{}). * p &lt; 0.05: the difference is unlikely to be "
        "the luck of the test set.</p>\n",
        esc(t["split"].get<std::string>()), t["sentences"].get<size_t>(), esc(t["test"].get<std::string>()),
        esc(t["reference"].get<std::string>()), esc(t["tokenize"].get<std::string>()));
    h += table(c.paired[g].head, c.paired[g].rows, "paired");
  }
  if (!c.skipped.rows.empty())
    h += "<h2>Not in the paired tests</h2>\n" + table(c.skipped.head, c.skipped.rows, "skipped");
  return h + "</body></html>\n";
}

std::string comparison_markdown(const Comparison& c) {
  std::string md = "# tern comparison\n\n## Runs\n\n" + md_table(c.summary.head, c.summary.rows);
  if (!c.config.rows.empty()) md += "\n## Settings that differ\n\n" + md_table(c.config.head, c.config.rows);
  if (!c.evaluations.rows.empty()) md += "\n## Evaluations\n\n" + md_table(c.evaluations.head, c.evaluations.rows);
  for (size_t g = 0; g < c.paired.size(); ++g)
    md += fmt::format("\n## Paired bootstrap: {} split ({} sentences), against {}\n\n",
                      c.tests[g]["split"].get<std::string>(), c.tests[g]["sentences"].get<size_t>(),
                      c.paired[g].rows[0][0]) +
          md_table(c.paired[g].head, c.paired[g].rows);
  if (!c.skipped.rows.empty()) md += "\n## Not in the paired tests\n\n" + md_table(c.skipped.head, c.skipped.rows);
  return md;
}
}  // namespace

ReportFiles write_report(const ReportOptions& opt) {
  if (opt.run_dirs.empty()) throw ConfigError("report: give the run directory (train.run_dir) of a tern train run");
  for (const auto& d : opt.run_dirs) {
    const fs::path dir(d);
    if (!fs::is_directory(dir)) throw DataError(d + ": not a directory");
    if (!fs::exists(dir / "config.yaml") && !fs::exists(dir / "metrics.jsonl"))
      throw DataError(d +
                      ": not a tern run directory (no config.yaml or metrics.jsonl); HINT: give the "
                      "train.run_dir of a `tern train` run");
  }
  const bool compare = opt.run_dirs.size() > 1;
  if (compare && opt.out_dir.empty())
    throw ConfigError(fmt::format("report: comparing {} runs needs --out DIR (where report.html, .json and .md go)",
                                  opt.run_dirs.size()));
  for (size_t i = 0; i < opt.run_dirs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (fs::equivalent(opt.run_dirs[i], opt.run_dirs[j]))
        throw ConfigError(fmt::format("report: {} and {} are the same run directory (runs {} and {})", opt.run_dirs[j],
                                      opt.run_dirs[i], j + 1, i + 1));
  const fs::path out_dir = opt.out_dir.empty() ? fs::path(opt.run_dirs[0]) / "report" : fs::path(opt.out_dir);
  // Before the runs are read (their checkpoints are verified whole): a refusal costs nothing.
  if (const std::string foreign = foreign_report_file(out_dir); !foreign.empty() && !opt.overwrite)
    throw IoError(fmt::format(
        "{}: --out: output exists and is not an earlier tern report; pass --overwrite to replace it, or choose "
        "another --out (nothing was written)",
        foreign));
  std::string html, markdown;
  json data;
  if (compare) {
    const Comparison c = compare_runs(opt.run_dirs);
    html = comparison_html(c), markdown = comparison_markdown(c), data = comparison_json(c);
  } else {
    const RunData run = read_run(opt.run_dirs[0]);
    const Tables tables = make_tables(run);
    html = html_report(run, tables, opt.run_dirs[0]), markdown = markdown_report(run, tables, opt.run_dirs[0]);
    data = report_json(run, opt.run_dirs[0]);
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw IoError(out_dir.string() + ": cannot create the report directory: " + ec.message());
  ReportFiles files{(out_dir / "report.html").string(), (out_dir / "report.json").string(),
                    (out_dir / "report.md").string(), std::move(data)};
  write_file_atomic(files.html, html);
  write_file_atomic(files.json, files.data.dump(1) + "\n");
  write_file_atomic(files.markdown, markdown);
  return files;
}

}  // namespace tern
