#include "translation/score.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <istream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "data/text.h"

namespace tern {

std::string score_files(const std::string& hypotheses_file, const std::vector<std::string>& reference_files,
                        const ScoreOptions& opt, std::istream& in) {
  opt.validate();
  const bool from_stdin = hypotheses_file.empty() || hypotheses_file == "-";
  std::vector<std::string> hyps =
      from_stdin ? read_utf8_lines(in, "stdin") : read_utf8_file(hypotheses_file, "hypotheses");
  if (hyps.empty())  // as sacreBLEU: "Test set contains no sentence" (a score of 0 would hide a failed translation)
    throw DataError(fmt::format("{}: no hypotheses (the input is empty); there is nothing to score",
                                from_stdin ? "stdin" : hypotheses_file));
  std::vector<std::vector<std::string>> refs;
  for (const auto& r : reference_files) {
    refs.push_back(read_utf8_file(r, "reference file"));
    if (refs.back().size() != hyps.size())
      throw DataError(fmt::format(
          "{} has {} lines but there are {} hypotheses (in {}): every reference file needs one line per hypothesis", r,
          refs.back().size(), hyps.size(), from_stdin ? "stdin" : hypotheses_file));
  }
  return score_report(hyps, refs, opt);
}
namespace {

struct Line {
  std::string name, signature, score, verbose;  // score already at `width` decimals
};

// Score.format(): "NAME|SIGNATURE = SCORE[ VERBOSE]".
std::string text(const Line& l) {
  return l.name + "|" + l.signature + " = " + l.score + (l.verbose.empty() ? "" : " " + l.verbose);
}

// Score.format(is_json=True): name, score, signature, verbose_score, then each signature field; indent 1.
std::string json(const Line& l) {
  nlohmann::ordered_json j;
  j["name"] = l.name;
  j["score"] = std::stod(l.score);
  j["signature"] = l.signature;
  if (!l.verbose.empty()) j["verbose_score"] = l.verbose;
  size_t start = 0;
  while (start <= l.signature.size()) {
    size_t bar = l.signature.find('|', start);
    std::string field = l.signature.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    size_t colon = field.find(':');
    j[field.substr(0, colon)] = field.substr(colon + 1);
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return j.dump(1, ' ', false);
}

Line bleu_line(const std::vector<std::string>& h, const std::vector<std::vector<std::string>>& r, const BleuOptions& o,
               int width) {
  BleuScore s = corpus_bleu(h, r, o);
  std::string full = s.format(width);  // "BLEU = 12.3 45.6/... (BP = ...)"
  std::string score = fmt::format("{:.{}f}", s.score, width);
  return {"BLEU", s.signature, score, full.substr(7 + score.size() + 1)};
}

Line chrf_line(const std::vector<std::string>& h, const std::vector<std::vector<std::string>>& r, const ChrfOptions& o,
               int width) {
  ChrfScore s = corpus_chrf(h, r, o);
  return {s.name, s.signature, fmt::format("{:.{}f}", s.score, width), ""};
}

}  // namespace

void ScoreOptions::validate() const {
  if (metrics.empty()) throw ConfigError("score needs at least one metric (bleu, chrf)");
  for (size_t i = 0; i < metrics.size(); ++i) {
    if (metrics[i] != "bleu" && metrics[i] != "chrf")
      throw ConfigError("score metric must be bleu or chrf (got " + metrics[i] + ")");
    if (std::find(metrics.begin(), metrics.begin() + i, metrics[i]) != metrics.begin() + i)
      throw ConfigError("score metric " + metrics[i] + " is given twice");
  }
  if (sentence_level && metrics.size() > 1)
    throw ConfigError(fmt::format("sentence-level scoring takes one metric (got {})", fmt::join(metrics, ", ")));
  if (width < 0 || width > 16) throw ConfigError(fmt::format("score width must be between 0 and 16 (got {})", width));
  if (format != "json" && format != "text") throw ConfigError("score format must be json or text (got " + format + ")");
  if (bleu.smooth != "exp" && bleu.smooth != "none" && bleu.smooth != "floor" && bleu.smooth != "add-k")
    throw ConfigError("--smooth-method must be exp, none, floor or add-k (got " + bleu.smooth + ")");
  if (!(std::isnan(bleu.smooth_value) || (bleu.smooth_value >= 0 && std::isfinite(bleu.smooth_value))))
    throw ConfigError(fmt::format("--smooth-value must be a finite number >= 0 (got {})", bleu.smooth_value));
  chrf.validate();
}

std::string score_report(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                         const ScoreOptions& opt) {
  opt.validate();
  std::string out;
  if (opt.sentence_level) {
    BleuOptions bleu = opt.bleu;
    bleu.effective_order = true;
    check_reference_streams(hyps.size(), refs, opt.metrics[0] == "bleu" ? "BLEU" : "chrF");
    std::vector<std::vector<std::string>> one(refs.size(), std::vector<std::string>(1));
    for (size_t i = 0; i < hyps.size(); ++i) {
      for (size_t r = 0; r < refs.size(); ++r) one[r][0] = refs[r][i];
      Line l = opt.metrics[0] == "bleu" ? bleu_line({hyps[i]}, one, bleu, opt.width)
                                        : chrf_line({hyps[i]}, one, opt.chrf, opt.width);
      out += text(l) + "\n";
    }
    return out;
  }
  std::vector<std::string> names = opt.metrics;
  std::sort(names.begin(), names.end());  // sacreBLEU prints its metrics sorted by name
  std::vector<Line> lines;
  for (const auto& m : names)
    lines.push_back(m == "bleu" ? bleu_line(hyps, refs, opt.bleu, opt.width)
                                : chrf_line(hyps, refs, opt.chrf, opt.width));
  if (opt.format == "json") {
    if (lines.size() == 1) return json(lines[0]) + "\n";
    out = "[\n";
    for (size_t i = 0; i < lines.size(); ++i) out += json(lines[i]) + (i + 1 < lines.size() ? ",\n" : "\n");
    return out + "]\n";
  }
  // Several metrics: aligned on " = " as sacreBLEU does.
  size_t w = 0;
  for (const auto& l : lines) w = std::max(w, l.name.size() + 1 + l.signature.size());
  for (const auto& l : lines) {
    std::string t = text(l);
    out += std::string(w - (l.name.size() + 1 + l.signature.size()), ' ') + t + "\n";
  }
  return out;
}

}  // namespace tern
