#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/log.h"

namespace tern {

Progress::Progress(std::string label, uint64_t total, std::string unit, double log_every_s, bool enabled)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      log_every_s_(log_every_s),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() {
  if (!finished_ && tty_ && enabled_) std::fputc('\n', stderr);
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(uint64_t done, const std::string& extra) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  if (since < (tty_ ? 0.2 : log_every_s_)) return;
  last_ = now;
  draw(false, extra);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  draw(true, extra);
}

void Progress::draw(bool final_line, const std::string& extra) {
  if (!enabled_) return;
  double el = elapsed_s();
  double rate = el > 0 ? done_ / el : 0.0;
  std::string pct, bar;
  if (total_ > 0) {
    double f = std::min(1.0, static_cast<double>(done_) / total_);
    int w = 30, fill = static_cast<int>(f * w);
    bar = "[" + std::string(fill, '#') + std::string(w - fill, '.') + "] ";
    pct = fmt::format("{:5.1f}% ", 100 * f);
  }
  std::string counts = total_ > 0 ? fmt::format("{}/{} {}", done_, total_, unit_) : fmt::format("{} {}", done_, unit_);
  std::string line = fmt::format("{}: {}{}{} ({:.0f} {}/s, {:.0f}s){}{}", label_, bar, pct, counts, rate, unit_, el,
                                 extra.empty() ? "" : " ", extra);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
  } else {
    log_line(line);
  }
}

}  // namespace tern
