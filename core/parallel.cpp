#include "core/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>

namespace tern {

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int resolve_threads(int requested) { return requested > 0 ? requested : usable_cores(); }

void parallel_for(int64_t n, int64_t threads, const std::function<void(int64_t)>& work) {
  if (threads <= 1 || n <= 1) {
    for (int64_t i = 0; i < n; ++i) work(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < std::min(threads, n); ++t)
    pool.emplace_back([&] {
      try {
        for (int64_t i = next++; i < n; i = next++) work(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n;
      }
    });
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace tern
