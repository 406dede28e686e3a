#include "translation/score.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <istream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include <unicode/uchar.h>

#include "core/errors.h"
#include "core/log.h"
#include "data/text.h"

namespace tern {

namespace {

// Python's str.rstrip(): trailing whitespace (py_space) removed.
std::string rstrip(const std::string& s) {
  if (s.empty() || (static_cast<unsigned char>(s.back()) < 0x80 && !py_space(static_cast<char32_t>(s.back()))))
    return s;  // the common case, without decoding
  return utf8_encode(py_rstrip(utf8_decode(s)));
}

// Python's s.split(sep, maxsplit) (maxsplit < 0: at every separator).
std::vector<std::string> split_on(const std::string& s, char sep, int64_t maxsplit = -1) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t at;
       (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) && (at = s.find(sep, start)) != std::string::npos;
       start = at + 1)
    out.push_back(s.substr(start, at - start));
  out.push_back(s.substr(start));
  return out;
}

// stdin as sacreBLEU reads it: each line's tab-separated fields are the systems' hypotheses (the first line says how
// many; its fields keep their trailing whitespace, as in sacreBLEU, the later lines' do not).
std::vector<ScoredSystem> stdin_systems(std::istream& in, bool paired) {
  const std::vector<std::string> lines = read_utf8_lines(in, "stdin");
  if (lines.empty()) throw DataError("stdin: no hypotheses (the input is empty); there is nothing to score");
  std::vector<ScoredSystem> systems;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> fields = split_on(rstrip(lines[i]), '\t');
    if (i == 0) systems.resize(fields.size());
    if (fields.size() != systems.size())
      throw DataError(fmt::format(
          "stdin:{}: {} tab-separated hypotheses, but line 1 has {}: every line holds one hypothesis per system (as "
          "sacreBLEU reads stdin, a line loses its trailing whitespace first, so an empty hypothesis in the last "
          "column loses its tab too; give each system as a file: -i A B ...)",
          i + 1, fields.size(), systems.size()));
    for (size_t s = 0; s < fields.size(); ++s) systems[s].lines.push_back(i == 0 ? fields[s] : rstrip(fields[s]));
  }
  if (systems.size() == 1) {
    systems[0].name = "stdin";
  } else {  // sacreBLEU's names: System 1..n, or Baseline then System 1..n-1 in a paired test
    for (size_t s = 0; s < systems.size(); ++s)
      systems[s].name = paired ? (s == 0 ? "Baseline" : fmt::format("System {}", s)) : fmt::format("System {}", s + 1);
  }
  return systems;
}

std::vector<std::string> read_stripped(const std::string& path, const std::string& what) {
  std::vector<std::string> lines = read_utf8_file(path, what);
  for (auto& l : lines) l = rstrip(l);
  return lines;
}

}  // namespace

void set_language_pair(ScoreOptions& opt, const std::string& pair, bool tokenize_given) {
  const size_t dash = pair.find('-');
  const size_t next = dash == std::string::npos ? dash : pair.find('-', dash + 1);
  const std::string target =
      dash == std::string::npos ? "" : pair.substr(dash + 1, next == std::string::npos ? next : next - dash - 1);
  if (target.empty())  // sacreBLEU takes pair.split('-')[1]
    throw ConfigError("--language-pair must be SOURCE-TARGET, e.g. en-de (got '" + pair + "')");
  if (std::find(opt.metrics.begin(), opt.metrics.end(), "bleu") == opt.metrics.end()) return;
  static const std::vector<std::tuple<std::string, std::string, std::string>> kTokenizers{
      {"zh", "zh", "Chinese"}, {"ja", "ja-mecab", "Japanese"}, {"ko", "ko-mecab", "Korean"}};
  for (const auto& [lang, tokenizer, name] : kTokenizers) {
    if (target != lang) continue;
    if (!tokenize_given)
      opt.bleu.tokenize = tokenizer;
    else if (opt.bleu.tokenize != tokenizer)
      logf("warning: consider using the '{}' or 'spm' tokenizer for {} (--language-pair {}).", tokenizer, name, pair);
  }
}

std::string score_files(const std::vector<std::string>& hypothesis_files,
                        const std::vector<std::string>& reference_files, const ScoreOptions& opt, std::istream& in) {
  opt.validate();
  const bool paired = !opt.paired.empty();
  std::vector<ScoredSystem> systems;
  if (hypothesis_files.size() <= 1 && (hypothesis_files.empty() || hypothesis_files[0] == "-")) {
    systems = stdin_systems(in, paired);
  } else {
    for (const auto& f : hypothesis_files) {
      if (f == "-") throw ConfigError("score: stdin (-) cannot be one of several systems; give each system as a file");
      if (paired && f == hypothesis_files[0] && !systems.empty()) {  // as sacreBLEU
        if (!opt.quiet) logf("note: ignoring {} as it was also given as the baseline", f);
        continue;
      }
      for (const auto& s : systems)
        if (s.name == f)
          throw ConfigError("score: system " + f + " is given twice (each system needs a file of its own)");
      systems.push_back({f, read_stripped(f, "hypotheses")});
    }
    if (paired) systems[0].name = "Baseline: " + systems[0].name;
  }
  // As sacreBLEU ("Test set contains no sentence"): a score of 0 would hide a failed translation.
  for (const auto& s : systems)
    if (s.lines.empty())
      throw DataError(fmt::format("{}: no hypotheses (the input is empty); there is nothing to score", s.name));
  if (opt.num_refs > 1 && reference_files.size() > 1)
    throw ConfigError(fmt::format(
        "--num-refs {} reads tab-separated references from one file, but {} reference files are given: give one "
        "file, or several files without --num-refs",
        opt.num_refs, reference_files.size()));
  std::vector<std::vector<std::string>> refs;
  for (const auto& r : reference_files) {
    std::vector<std::string> lines = read_stripped(r, "reference file");
    if (opt.num_refs > 1) {
      refs.assign(static_cast<size_t>(opt.num_refs), {});
      for (size_t i = 0; i < lines.size(); ++i) {
        std::vector<std::string> fields = split_on(lines[i], '\t', opt.num_refs - 1);
        if (static_cast<int64_t>(fields.size()) != opt.num_refs)
          throw DataError(fmt::format("{}:{}: {} tab-separated reference(s), but --num-refs is {}", r, i + 1,
                                      fields.size(), opt.num_refs));
        for (size_t k = 0; k < fields.size(); ++k) refs[k].push_back(std::move(fields[k]));
      }
    } else {
      refs.push_back(std::move(lines));
    }
    for (const auto& s : systems)
      if (refs.back().size() != s.lines.size())
        throw DataError(fmt::format(
            "{} has {} lines but there are {} hypotheses (in {}): every reference file needs one line per hypothesis",
            r, refs.back().size(), s.lines.size(), s.name));
  }
  return score_report(systems, refs, opt);
}

namespace {

// A metric's score of one system, as sacreBLEU's Score.format prints it.
struct Line {
  std::string name, signature, score, verbose;  // score already at `width` decimals
  std::string mean, ci;                         // with --confidence (and a mean above 0), at `width` decimals
  std::string value() const { return mean.empty() ? score : score + " (μ = " + mean + " ± " + ci + ")"; }
};

// Signature.format(short=True): each key by its abbreviation (the base class's and the metric's own).
std::string short_signature(const std::string& metric, const std::string& signature) {
  static const std::map<std::string, std::string> kBase{{"version", "v"}, {"nrefs", "#"}, {"bs", "bs"},
                                                        {"ar", "ar"},     {"seed", "rs"}, {"case", "c"}};
  static const std::map<std::string, std::string> kBleu{{"eff", "e"}, {"tok", "tok"}, {"smooth", "s"}};
  static const std::map<std::string, std::string> kChrf{{"eff", "e"}, {"nc", "nc"}, {"nw", "nw"}, {"space", "s"}};
  static const std::map<std::string, std::string> kTer{{"tok", "t"}, {"norm", "nr"}, {"punct", "pn"}, {"asian", "as"}};
  const auto& own = metric == "BLEU" ? kBleu : metric == "TER" ? kTer : kChrf;
  std::string out;
  for (const auto& field : split_on(signature, '|')) {
    const size_t colon = field.find(':');
    const std::string key = field.substr(0, colon);
    auto it = own.find(key);
    if (it == own.end()) it = kBase.find(key);
    out += (out.empty() ? "" : "|") + (it == kBase.end() ? key : it->second) + field.substr(colon);
  }
  return out;
}

std::string signature_of(const Line& l, const ScoreOptions& o) {
  return o.short_signature ? short_signature(l.name, l.signature) : l.signature;
}

// Score.format(): "NAME|SIGNATURE = SCORE[ (μ = MEAN ± CI)][ VERBOSE]", or just the score (and its interval) with
// --score-only.
std::string text(const Line& l, const ScoreOptions& o) {
  if (o.score_only) return l.value();
  return l.name + "|" + signature_of(l, o) + " = " + l.value() + (l.verbose.empty() ? "" : " " + l.verbose);
}

// Score.format(is_json=True): name, score, signature, the confidence, verbose_score, then each signature field;
// indent 1. --score-only prints the text's score (sacreBLEU tests it first).
std::string json(const Line& l, const ScoreOptions& o) {
  if (o.score_only) return l.value();
  nlohmann::ordered_json j;
  j["name"] = l.name;
  j["score"] = std::stod(l.score);
  j["signature"] = l.signature;
  if (!l.mean.empty()) {
    j["confidence_mean"] = std::stod(l.mean);
    j["confidence_var"] = std::stod(l.ci);
    j["confidence"] = "μ = " + l.mean + " ± " + l.ci;
  }
  if (!l.verbose.empty()) j["verbose_score"] = l.verbose;
  for (const auto& field : split_on(l.signature, '|')) {
    const size_t colon = field.find(':');
    j[field.substr(0, colon)] = field.substr(colon + 1);
  }
  return j.dump(1, ' ', false);
}

std::string fixed(double v, int width) { return fmt::format("{:.{}f}", v, width); }

// The line of metric m ("bleu", "chrf", "ter") from its statistics of one system, against `nrefs` references.
Line metric_line(const std::string& m, const MetricStatistics& st, size_t nrefs, const ScoreOptions& o) {
  const std::vector<NpFloat> sums = st.sums();
  if (m == "bleu") {
    BleuScore s = bleu_from_statistics(sums, nrefs, o.bleu);
    std::string full = s.format(o.width);  // "BLEU = 12.3 45.6/... (BP = ...)"
    std::string score = fixed(s.score, o.width);
    return {"BLEU", s.signature, score, full.substr(7 + score.size() + 1), "", ""};
  }
  if (m == "chrf") {
    ChrfScore s = chrf_from_statistics(sums, nrefs, o.chrf);
    return {s.name, s.signature, fixed(s.score, o.width), "", "", ""};
  }
  TerScore s = ter_from_statistics(sums, nrefs, o.ter);
  return {"TER", s.signature, fixed(s.score, o.width), "", "", ""};
}

std::vector<std::vector<double>> as_doubles(const std::vector<std::vector<int64_t>>& v) {
  std::vector<std::vector<double>> out;
  out.reserve(v.size());
  for (const auto& row : v) out.emplace_back(row.begin(), row.end());
  return out;
}

// Inserts the resampling fields after nrefs, as sacreBLEU's Signature orders them: nrefs, bs, ar, seed, ...
std::string with_resampling(const std::string& signature, const std::string& fields) {
  size_t bar = signature.find('|');
  return signature.substr(0, bar) + "|" + fields + signature.substr(bar);
}

// Columns on a terminal, as tabulate measures them when the wcwidth module is installed (as with sacreBLEU's pip
// install): East Asian wide and full-width characters take two, combining marks and format characters none (Unicode
// data from ICU; wcwidth's own tables may be of another Unicode version).
size_t text_width(const std::string& s) {
  size_t w = 0;
  for (char32_t c : utf8_decode(s)) {
    const auto ea = u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_EAST_ASIAN_WIDTH);
    const auto cat = u_charType(static_cast<UChar32>(c));
    if (c != 0xAD && (cat == U_NON_SPACING_MARK || cat == U_ENCLOSING_MARK || cat == U_FORMAT_CHAR)) continue;
    w += ea == U_EA_WIDE || ea == U_EA_FULLWIDTH ? 2 : 1;
  }
  return w;
}

// Python's f"{s:^{w}}" (the extra space on the right) and f"{s:>{w}}".
std::string center(const std::string& s, size_t w) {
  size_t n = text_width(s), pad = w > n ? w - n : 0;
  return std::string(pad / 2, ' ') + s + std::string(pad - pad / 2, ' ');
}
std::string right(const std::string& s, size_t w) {
  size_t n = text_width(s);
  return std::string(w > n ? w - n : 0, ' ') + s;
}

// tabulate(..., tablefmt="fancy_grid", colalign=("right",), stralign="center", numalign="center"): the first
// column right-aligned, the others centred; a column as wide as its widest line or its header plus 2.
std::string fancy_grid(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(headers.size());
  for (size_t c = 0; c < headers.size(); ++c) {
    w[c] = text_width(headers[c]) + 2;
    for (const auto& row : rows)
      for (const auto& line : split_on(row[c], '\n')) w[c] = std::max(w[c], text_width(line));
  }
  auto rule = [&](const char* left, const char* fill, const char* mid, const char* end) {
    std::string out = left;
    for (size_t c = 0; c < w.size(); ++c) {
      for (size_t i = 0; i < w[c] + 2; ++i) out += fill;
      out += c + 1 < w.size() ? mid : end;
    }
    return out + "\n";
  };
  auto row_text = [&](const std::vector<std::string>& cells) {
    std::vector<std::vector<std::string>> lines;
    size_t height = 1;
    for (const auto& c : cells) height = std::max(height, (lines.emplace_back(split_on(c, '\n'))).size());
    std::string out;
    for (size_t l = 0; l < height; ++l) {
      out += "│";
      for (size_t c = 0; c < cells.size(); ++c) {
        const std::string cell = l < lines[c].size() ? lines[c][l] : "";
        out += " " + (c == 0 ? right(cell, w[c]) : center(cell, w[c])) + " │";
      }
      out += "\n";
    }
    return out;
  };
  std::string out = rule("╒", "═", "╤", "╕") + row_text(headers) + rule("╞", "═", "╪", "╡");
  for (size_t r = 0; r < rows.size(); ++r)
    out += row_text(rows[r]) + (r + 1 < rows.size() ? rule("├", "─", "┼", "┤") : rule("╘", "═", "╧", "╛"));
  return out;
}

// tabulate(..., tablefmt="latex_booktabs", same alignment): cells padded to the column widths fancy_grid uses (one
// line each), then LaTeX's special characters escaped as tabulate escapes them.
std::string latex_booktabs(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  static const std::map<char, std::string> kEscapes{{'&', "\\&"},
                                                    {'%', "\\%"},
                                                    {'$', "\\$"},
                                                    {'#', "\\#"},
                                                    {'_', "\\_"},
                                                    {'^', "\\^{}"},
                                                    {'{', "\\{"},
                                                    {'}', "\\}"},
                                                    {'~', "\\textasciitilde{}"},
                                                    {'\\', "\\textbackslash{}"},
                                                    {'<', "\\ensuremath{<}"},
                                                    {'>', "\\ensuremath{>}"}};
  std::vector<size_t> w(headers.size());
  for (size_t c = 0; c < headers.size(); ++c) {
    w[c] = text_width(headers[c]) + 2;
    for (const auto& row : rows) w[c] = std::max(w[c], text_width(row[c]));
  }
  auto row_text = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string padded = " " + (c == 0 ? right(cells[c], w[c]) : center(cells[c], w[c])) + " ";
      for (char ch : padded) {
        auto it = kEscapes.find(ch);
        out += it == kEscapes.end() ? std::string(1, ch) : it->second;
      }
      out += c + 1 < cells.size() ? "&" : "\\\\\n";
    }
    return out;
  };
  std::string out = "\\begin{tabular}{r" + std::string(headers.size() - 1, 'c') + "}\n\\toprule\n";
  out += row_text(headers) + "\\midrule\n";
  for (const auto& row : rows) out += row_text(row);
  return out + "\\bottomrule\n\\end{tabular}\n";
}

// print_results_table's table of several systems in the format asked for.
std::string table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows,
                  const ScoreOptions& opt) {
  return opt.format == "latex" ? latex_booktabs(headers, rows) : fancy_grid(headers, rows);
}

std::string signatures_block(const std::vector<std::pair<std::string, std::string>>& sigs, const ScoreOptions& opt) {
  std::string out = "-----------------\nMetric signatures\n-----------------\n";
  for (const auto& [name, sig] : sigs)
    out += fmt::format(" - {:<10} {}\n", name, opt.short_signature ? short_signature(name, sig) : sig);
  return out;
}

// print_results_table's explanation of a paired test.
std::string paired_explanation(const ScoreOptions& opt, const std::string& baseline) {
  const bool bs = opt.paired == "bs";
  const std::string msg =
      fmt::format("Paired {} test with {} {}", bs ? "bootstrap resampling" : "approximate randomization",
                  bs ? opt.paired_bs_n : opt.paired_ar_n, bs ? "resampling trials" : "trials");
  const std::string rule(msg.size(), '-');
  std::string out = rule + "\n" + msg + "\n" + rule + "\n";
  out += " - Each system is pairwise compared to " + baseline + ".\n";
  out += bs ? "   Actual system score / bootstrap estimated true mean / 95% CI are provided for each metric.\n"
            : "   Actual system score is provided for each metric.\n";
  out += "\n";
  out +=
      " - Null hypothesis: the system and the baseline translations are essentially\n"
      "   generated by the same underlying process. For a given system and the baseline,\n"
      "   the p-value is roughly the probability of the absolute score difference (delta)\n"
      "   or higher occurring due to chance, under the assumption that the null hypothesis is correct.\n\n"
      " - Assuming a significance threshold of 0.05, the null hypothesis can be rejected\n"
      "   for p-values < 0.05 (marked with \"*\"). This means that the delta is unlikely to be attributed\n"
      "   to chance, hence the system is significantly \"different\" than the baseline.\n"
      "   Otherwise, the p-values are highlighted in red.\n\n"
      " - NOTE: Significance does not tell whether a system is \"better\" than the baseline but rather\n"
      "   emphasizes the \"difference\" of the systems in terms of the replicability of the delta.\n\n";
  return out;
}

// Python's json.dumps of a float or None.
nlohmann::ordered_json number_or_null(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

// Several systems, no paired test: each metric's score per system (metrics sorted by name, as sacreBLEU).
std::string systems_table(const std::vector<ScoredSystem>& systems, const std::vector<std::vector<std::string>>& refs,
                          const ScoreOptions& opt) {
  std::vector<std::string> names = opt.metrics;
  std::sort(names.begin(), names.end());
  std::vector<std::string> headers{"System"};
  std::vector<std::pair<std::string, std::string>> sigs;
  std::vector<std::vector<std::string>> rows(systems.size());
  for (size_t s = 0; s < systems.size(); ++s) rows[s].push_back(systems[s].name);
  for (const auto& m : names) {
    for (size_t s = 0; s < systems.size(); ++s) {
      Line l = metric_line(m, metric_statistics(m, systems[s].lines, refs, opt), refs.size(), opt);
      if (s == 0) headers.push_back(l.name), sigs.emplace_back(l.name, l.signature);
      rows[s].push_back(l.score);
    }
  }
  if (opt.format == "json") {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& row : rows) {
      nlohmann::ordered_json v;
      v["system"] = row[0];
      for (size_t c = 1; c < row.size(); ++c) v[headers[c]] = row[c];
      out.push_back(v);
    }
    return out.dump(4, ' ', true) + "\n";
  }
  return table(headers, rows, opt) + "\n" + signatures_block(sigs, opt);
}

// Several systems compared to the first by a paired test (metrics in the order given, as sacreBLEU).
std::string paired_table(const std::vector<ScoredSystem>& systems, const std::vector<std::vector<std::string>>& refs,
                         const ScoreOptions& opt) {
  const bool bs = opt.paired == "bs";
  const int64_t n = bs ? opt.paired_bs_n : opt.paired_ar_n;
  std::vector<std::vector<MetricStatistics>> stats(systems.size());
  for (size_t s = 0; s < systems.size(); ++s)
    for (const auto& m : opt.metrics) stats[s].push_back(metric_statistics(m, systems[s].lines, refs, opt));
  auto results =
      paired_test(stats, bs ? PairedTest::kBootstrap : PairedTest::kRandomization, n, static_cast<uint64_t>(opt.seed));
  // sacreBLEU's p-value counts the trials whose difference *exceeds* the real one, so a system no trial can tell
  // from the baseline gets the smallest p-value there is, marked significant: say so where it happens.
  for (size_t s = 1; s < systems.size(); ++s)
    if (systems[s].lines == systems[0].lines)
      logf(
          "note: {} is line for line the same as the baseline {}: its p-values ({:.4f}) are sacreBLEU's floor "
          "1/(trials+1), not evidence of a difference",
          systems[s].name, systems[0].name, 1.0 / static_cast<double>(n + 1));
  std::vector<std::string> names{"System"};
  std::vector<std::pair<std::string, std::string>> sigs;
  for (size_t m = 0; m < opt.metrics.size(); ++m) {
    Line l = metric_line(opt.metrics[m], stats[0][m], refs.size(), opt);
    names.push_back(l.name);
    sigs.emplace_back(l.name, with_resampling(l.signature, fmt::format("{}:{}|seed:{}", opt.paired, n, opt.seed)));
  }
  const std::string& baseline = systems[0].name;  // "Baseline: FILE" or "Baseline" (stdin), as score_files names it
  if (opt.format == "json") {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (size_t s = 0; s < systems.size(); ++s) {
      nlohmann::ordered_json v;
      v["system"] = systems[s].name;
      for (size_t m = 0; m < opt.metrics.size(); ++m) {
        const auto& r = results[s][m];
        nlohmann::ordered_json cell;
        cell["score"] = r.score;
        cell["p_value"] = number_or_null(r.p_value);
        cell["mean"] = number_or_null(r.mean ? std::optional<double>(r.mean->v) : std::nullopt);
        cell["ci"] = number_or_null(r.ci ? std::optional<double>(r.ci->v) : std::nullopt);
        v[names[m + 1]] = cell;
      }
      out.push_back(v);
    }
    return out.dump(4, ' ', true) + "\n";
  }
  std::vector<std::vector<std::string>> rows(systems.size());
  for (size_t s = 0; s < systems.size(); ++s) {
    rows[s].push_back(systems[s].name);
    for (size_t m = 0; m < opt.metrics.size(); ++m) {
      const auto& r = results[s][m];
      std::string cell = fixed(r.score, opt.width);
      if (r.mean) cell += " (" + fixed(r.mean->v, opt.width) + " ± " + fixed(r.ci->v, opt.width) + ")";
      if (r.p_value)  // on a line of its own in text, after a space in LaTeX
        cell += fmt::format("{}(p = {:.4f}){}", opt.format == "latex" ? " " : "\n", *r.p_value,
                            *r.p_value > 0.05 ? "" : "*");
      rows[s].push_back(cell);
    }
  }
  std::vector<std::string> headers = names;
  if (bs)
    for (size_t c = 1; c < headers.size(); ++c) headers[c] += " (μ ± 95% CI)";
  // sacreBLEU names the baseline in its explanation only when its label starts with "Baseline:" (files): with
  // systems from stdin it prints "compared to ." (kept).
  const std::string named = baseline.rfind("Baseline:", 0) == 0 ? baseline : "";
  return table(headers, rows, opt) + "\n" + paired_explanation(opt, named) + signatures_block(sigs, opt);
}

}  // namespace

MetricStatistics metric_statistics(const std::string& metric, const std::vector<std::string>& h,
                                   const std::vector<std::vector<std::string>>& r, const ScoreOptions& o) {
  if (metric == "bleu")
    return {"BLEU", as_doubles(bleu_statistics(h, r, o.bleu)),
            [bleu = o.bleu](const std::vector<NpFloat>& st) { return NpFloat(bleu_score_of(st, bleu)); }};
  if (metric == "chrf")
    return {o.chrf.name(), as_doubles(chrf_statistics(h, r, o.chrf)),
            [chrf = o.chrf](const std::vector<NpFloat>& st) { return chrf_score_of(st, chrf); }};
  if (metric != "ter") throw ConfigError("score metric must be bleu, chrf or ter (got " + metric + ")");
  return {"TER", ter_statistics(h, r, o.ter), [](const std::vector<NpFloat>& st) { return ter_score_of(st); }};
}

void ScoreOptions::validate() const {
  if (metrics.empty()) throw ConfigError("score needs at least one metric (bleu, chrf, ter)");
  for (size_t i = 0; i < metrics.size(); ++i) {
    if (metrics[i] != "bleu" && metrics[i] != "chrf" && metrics[i] != "ter")
      throw ConfigError("score metric must be bleu, chrf or ter (got " + metrics[i] + ")");
    if (std::find(metrics.begin(), metrics.begin() + i, metrics[i]) != metrics.begin() + i)
      throw ConfigError("score metric " + metrics[i] + " is given twice");
  }
  if (sentence_level && metrics.size() > 1)
    throw ConfigError(fmt::format("sentence-level scoring takes one metric (got {})", fmt::join(metrics, ", ")));
  if (width < 0 || width > 16) throw ConfigError(fmt::format("score width must be between 0 and 16 (got {})", width));
  if (format != "json" && format != "text" && format != "latex")
    throw ConfigError("score format must be json, text or latex (got " + format + ")");
  if (num_refs < 1 || num_refs > 10000)
    throw ConfigError(fmt::format("--num-refs must be between 1 and 10,000 (got {})", num_refs));
  if (bleu.smooth != "exp" && bleu.smooth != "none" && bleu.smooth != "floor" && bleu.smooth != "add-k")
    throw ConfigError("--smooth-method must be exp, none, floor or add-k (got " + bleu.smooth + ")");
  if (!(std::isnan(bleu.smooth_value) || (bleu.smooth_value >= 0 && std::isfinite(bleu.smooth_value))))
    throw ConfigError(fmt::format("--smooth-value must be a finite number >= 0 (got {})", bleu.smooth_value));
  chrf.validate();
  if (!paired.empty() && paired != "bs" && paired != "ar")
    throw ConfigError("the paired test must be bs (--paired-bs) or ar (--paired-ar) (got " + paired + ")");
  if (sentence_level && (confidence || !paired.empty()))
    throw ConfigError("statistical tests (--confidence, --paired-bs, --paired-ar) are not available at sentence level");
  if (confidence && !paired.empty())
    throw ConfigError("--confidence is for one system; a paired test (--paired-" + paired +
                      ") already gives each system's confidence interval with bootstrap resampling");
  // The resampling holds one segment index per resample and segment: bound the count, not the segments.
  for (const auto& [flag, value] : {std::pair<const char*, int64_t>{"--confidence-n", confidence_n},
                                    {"--paired-bs-n", paired_bs_n},
                                    {"--paired-ar-n", paired_ar_n}})
    if (value < 1 || value > 1000000)
      throw ConfigError(fmt::format("{} must be between 1 and 1,000,000 (got {})", flag, value));
  if (seed < 1)
    throw ConfigError(
        fmt::format("--seed must be at least 1 (got {}; sacreBLEU's paired tests draw an unreproducible "
                    "seed when SACREBLEU_SEED is 0)",
                    seed));
}

std::string score_report(const std::vector<ScoredSystem>& systems, const std::vector<std::vector<std::string>>& refs,
                         const ScoreOptions& opt) {
  opt.validate();
  if (systems.empty()) throw ConfigError("score needs a system's hypotheses");
  if (systems.size() > 1 && opt.sentence_level)
    throw ConfigError(fmt::format("sentence-level scoring takes one system (got {})", systems.size()));
  if (systems.size() > 1 && opt.confidence)
    throw ConfigError(
        fmt::format("--confidence is for one system (got {}): compare several with --paired-bs or "
                    "--paired-ar, which give each system's confidence interval too",
                    systems.size()));
  if (systems.size() == 1 && !opt.paired.empty())
    throw ConfigError("--paired-" + opt.paired + " compares systems with the first: give several with -i A B ...");
  for (const auto& s : systems) check_reference_streams(s.lines.size(), refs, "score");
  // A resampling test holds a segment index (or a coin) for every resample and segment.
  const int64_t draws = opt.confidence       ? opt.confidence_n
                        : opt.paired == "bs" ? opt.paired_bs_n
                        : opt.paired == "ar" ? opt.paired_ar_n
                                             : 0;
  constexpr int64_t kMaxDraws = 500'000'000;
  if (draws > kMaxDraws / static_cast<int64_t>(systems[0].lines.size()))
    throw ConfigError(
        fmt::format("{} resamples of {} segments are {} draws, more than the {} a test may hold in memory: "
                    "use fewer resamples (--confidence-n, --paired-bs-n, --paired-ar-n)",
                    draws, systems[0].lines.size(), draws * static_cast<int64_t>(systems[0].lines.size()), kMaxDraws));
  if (!opt.force && !opt.sentence_level &&
      std::find(opt.metrics.begin(), opt.metrics.end(), "bleu") != opt.metrics.end())
    for (const auto& s : systems) {  // sacreBLEU's check for output left tokenized
      const auto n = std::count_if(s.lines.begin(), s.lines.end(), [](const std::string& l) {
        return l.size() >= 2 && l.compare(l.size() - 2, 2, " .") == 0;
      });
      if (n >= 100)
        logf(
            "warning: {}: {} of its {} lines end in a tokenized period (' .'): the output looks tokenized, which "
            "lowers BLEU (score detokenized text; --force silences this)",
            s.name, n, s.lines.size());
    }
  if (systems.size() > 1)
    return opt.paired.empty() ? systems_table(systems, refs, opt) : paired_table(systems, refs, opt);
  const std::vector<std::string>& hyps = systems[0].lines;
  std::string out;
  if (opt.sentence_level) {
    ScoreOptions sentence = opt;
    sentence.bleu.effective_order = true;
    std::vector<std::vector<std::string>> one(refs.size(), std::vector<std::string>(1));
    for (size_t i = 0; i < hyps.size(); ++i) {
      for (size_t r = 0; r < refs.size(); ++r) one[r][0] = refs[r][i];
      const std::string& m = opt.metrics[0];
      Line l = metric_line(m, metric_statistics(m, {hyps[i]}, one, sentence), refs.size(), sentence);
      out += text(l, opt) + "\n";
    }
    return out;
  }
  std::vector<std::string> names = opt.metrics;
  std::sort(names.begin(), names.end());  // sacreBLEU prints its metrics sorted by name
  std::vector<Line> lines;
  for (const auto& m : names) {
    const MetricStatistics st = metric_statistics(m, hyps, refs, opt);
    Line l = metric_line(m, st, refs.size(), opt);
    if (opt.confidence && opt.confidence_n > 1) {  // Metric.corpus_score resamples (and signs) only from 2 on
      l.signature = with_resampling(l.signature, fmt::format("bs:{}|seed:{}", opt.confidence_n, opt.seed));
      Confidence c = bootstrap_confidence(st, opt.confidence_n, static_cast<uint64_t>(opt.seed));
      if (c.mean.v > 0) l.mean = fixed(c.mean.v, opt.width), l.ci = fixed(c.half_width.v, opt.width);
    }
    lines.push_back(l);
  }
  if (opt.format == "json") {
    if (lines.size() == 1) return json(lines[0], opt) + "\n";
    out = "[\n";
    for (size_t i = 0; i < lines.size(); ++i) out += json(lines[i], opt) + (i + 1 < lines.size() ? ",\n" : "\n");
    return out + "]\n";
  }
  if (lines.size() == 1) return text(lines[0], opt) + "\n";
  // print_single_results: lines aligned on their first '=' (code points). A line without one (--score-only without an
  // interval) is printed at once; then sacreBLEU pairs the positions found with the lines from the first, all of
  // them (zip(lens, results)): with such a line the pairs shift and the last lines are dropped. Kept as it prints.
  std::vector<std::string> texts;
  std::vector<size_t> lens;
  for (const auto& l : lines) {
    texts.push_back(text(l, opt));
    const std::u32string u = utf8_decode(texts.back());
    const size_t at = u.find(U'=');
    if (at == std::u32string::npos || at == 0)
      out += texts.back() + "\n";
    else
      lens.push_back(at - 1);
  }
  const size_t w = lens.empty() ? 0 : *std::max_element(lens.begin(), lens.end());
  for (size_t i = 0; i < lens.size(); ++i) {  // f'{left:>{w}}{right}' with left = line[:len]
    const size_t left = std::min(lens[i], utf8_decode(texts[i]).size());
    out += std::string(w - left, ' ') + texts[i] + "\n";
  }
  return out;
}

}  // namespace tern
