#include "eval/report_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace tern::page {

using json = nlohmann::json;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string num(const json& v, int decimals) {
  if (!v.is_number()) return "–";
  return fmt::format("{:.{}f}", v.get<double>(), decimals);
}

std::string tick(double v) {
  double a = std::abs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) return fmt::format("{:.1e}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

std::string chart(const std::string& title, const std::vector<Series>& all, bool log_y) {
  std::vector<Series> ss;
  for (const auto& s : all)
    if (!s.points.empty()) ss.push_back(s);
  if (ss.empty()) return "";
  const double W = 520, L = 60, R = 12, B = 36;
  // The legend goes between the title and the plot, in as many rows as it needs (many runs compared).
  std::vector<std::pair<double, double>> legend_at;  // per series: x, y
  double lx = L;
  int rows = 1;
  for (const auto& s : ss) {
    const double width = 24 + 7.0 * static_cast<double>(s.name.size());
    if (lx > L && lx + width > W - R) lx = L, ++rows;
    legend_at.emplace_back(lx, 8 + 14.0 * rows);
    lx += width;
  }
  const double T = 26 + 14.0 * rows, H = T + 212;  // the plot keeps its 176 px
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto fy = [&](double v) { return log_y ? std::log10(std::max(v, 1e-300)) : v; };
  for (const auto& s : ss)
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, fy(y)), y1 = std::max(y1, fy(y));
    }
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) {  // a constant: centre it
    double half = log_y ? 0.5 : std::max(std::abs(y0) * 0.5, 1e-12);
    y0 -= half, y1 += half;
  }
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return T + (1 - (fy(y) - y0) / (y1 - y0)) * (H - T - B); };
  std::string o = fmt::format(
      "<svg class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "aria-label=\"{}\">",
      W, H, W, H, esc(title));
  o += fmt::format("<text x=\"{}\" y=\"16\" class=\"title\">{}</text>", L, esc(title));
  o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"frame\"/>", L, T, W - L - R, H - T - B);
  for (int i = 0; i <= 4; ++i) {
    double yv = y0 + (y1 - y0) * i / 4, yy = T + (1 - static_cast<double>(i) / 4) * (H - T - B);
    o += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/>", L, W - R, yy, yy);
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" class=\"ytick\">{}</text>", L - 4, yy + 4,
                     tick(log_y ? std::pow(10.0, yv) : yv));
    double xv = x0 + (x1 - x0) * i / 4;
    o += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"xtick\">{:.0f}</text>", px(xv), H - B + 14, xv);
  }
  o += fmt::format("<text x=\"{}\" y=\"{}\" class=\"xtick\">step</text>", (L + W - R) / 2, H - 4);
  for (size_t k = 0; k < ss.size(); ++k) {
    const Series& s = ss[k];
    std::string pts;
    for (const auto& [x, y] : s.points) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    o += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"/>", pts, s.color);
    if (s.dots)
      for (const auto& [x, y] : s.points)
        o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>", px(x), py(y), s.color);
    const auto [legend_x, legend_y] = legend_at[k];
    o += fmt::format("<rect x=\"{:.0f}\" y=\"{:.0f}\" width=\"10\" height=\"3\" fill=\"{}\"/>", legend_x, legend_y,
                     s.color);
    o += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\" class=\"legend\">{}</text>", legend_x + 14, legend_y + 5,
                     esc(s.name));
  }
  return o + "</svg>\n";
}

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
                  const std::string& cls) {
  std::string o = "<table class=\"" + cls + "\"><thead><tr>";
  for (const auto& h : head) o += "<th>" + esc(h) + "</th>";
  o += "</tr></thead><tbody>";
  for (const auto& r : rows) {
    o += "<tr>";
    for (const auto& c : r) o += "<td>" + esc(c) + "</td>";
    o += "</tr>";
  }
  return o + "</tbody></table>\n";
}

std::string md_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::string o = "|";
  for (const auto& h : head) o += " " + h + " |";
  o += "\n|";
  for (size_t i = 0; i < head.size(); ++i) o += " --- |";
  o += "\n";
  for (const auto& r : rows) {
    o += "|";
    for (const auto& c : r) o += " " + c + " |";
    o += "\n";
  }
  return o;
}

std::string heatmap(const json& sample) {
  std::string o = "<table class=\"attn\"><tr><th></th>";
  for (const auto& s : sample["source"]) o += "<th class=\"src\">" + esc(s.get<std::string>()) + "</th>";
  o += "</tr>";
  for (size_t t = 0; t < sample["output"].size(); ++t) {
    o += "<tr><th>" + esc(sample["output"][t].get<std::string>()) + "</th>";
    for (const auto& w : sample["attention"][t]) {
      double a = std::clamp(w.get<double>(), 0.0, 1.0);
      o += fmt::format("<td style=\"background:rgba(31,119,180,{:.3f})\" title=\"{:.3f}\"></td>", a, a);
    }
    o += "</tr>";
  }
  return o + "</table>\n";
}

const char* const kReportStyle = R"(<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1180px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}.charts{display:flex;flex-wrap:wrap;gap:8px}
svg.chart{border:1px solid #eee;background:#fff}.frame{fill:none;stroke:#999}.grid{stroke:#eee}
.title{font-size:13px;font-weight:bold}.ytick{font-size:10px;text-anchor:end}.xtick{font-size:10px;text-anchor:middle}
.legend{font-size:11px}table.attn td{width:18px;height:18px;padding:0}table.attn th{font-size:11px;font-weight:normal}
table.attn th.src{writing-mode:vertical-rl;height:70px}pre{background:#f7f7f7;padding:8px;font-size:12px}
.note{color:#555;font-size:13px}
</style>
)";

const char* const kReportCheck = R"(<script>
window.addEventListener('error',function(e){document.body.dataset.errors=(document.body.dataset.errors||'')+e.message+';'});
window.addEventListener('load',function(){var c=document.querySelectorAll('svg.chart'),ok=0;
c.forEach(function(s){var p=s.querySelector('polyline');if(p&&p.getBBox().width>0)ok++;});
document.body.dataset.charts=c.length;document.body.dataset.drawn=ok;
document.body.dataset.tables=document.querySelectorAll('table').length;});
</script>
)";

}  // namespace tern::page
