// Progress for long work: a redrawn bar on a terminal, a log line every `log_every_s` seconds otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace tern {

class Progress {
 public:
  // total == 0 means unknown; unit names what is counted ("lines", "steps").
  Progress(std::string label, uint64_t total, std::string unit, double log_every_s = 10.0, bool enabled = true);
  ~Progress();
  void update(uint64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double elapsed_s() const;

 private:
  void draw(bool final_line, const std::string& extra);
  std::string label_, unit_;
  uint64_t total_, done_ = 0;
  double log_every_s_;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace tern
