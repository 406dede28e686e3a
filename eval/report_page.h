// The building blocks of `tern report`'s pages: HTML escaping, numbers, inline SVG line charts, HTML and Markdown
// tables, attention heatmaps, and the page's style and self-check script. Plain text in, text out.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace tern::page {

std::string esc(const std::string& s);                       // HTML-escaped: & < > "
std::string num(const nlohmann::json& v, int decimals = 2);  // a number with `decimals` digits, "–" for none
std::string tick(double v);                                  // an axis label: 3 significant digits, or 1.0e+05

// One line of a chart.
struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (step, value)
  bool dots = false;
};

// A line chart as inline SVG (series without points are left out; "" when none has any); log_y plots log10 of
// positive values.
std::string chart(const std::string& title, const std::vector<Series>& all, bool log_y = false);
// An HTML table of escaped cells, of CSS class `cls`.
std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
                  const std::string& cls);
std::string md_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows);
// A sample translation's attention ({"source": [...], "output": [...], "attention": [[...], ...]}) as a table of shaded
// cells: rows are output pieces, columns source pieces.
std::string heatmap(const nlohmann::json& sample);

extern const char* const kReportStyle;  // the pages' <style> element
// The page checks itself once drawn: every chart has a visible polyline; errors are recorded on <body>.
extern const char* const kReportCheck;

}  // namespace tern::page
