#include "core/parallel.h"

#include <sched.h>

#include <algorithm>

namespace tern {

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int resolve_threads(int requested) { return requested > 0 ? requested : usable_cores(); }

}  // namespace tern
