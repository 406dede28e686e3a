// Work spread over threads with results taken in input order: the output of a parallel run is the output of a
// sequential one.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tern {

// The cores this process may run on (its CPU affinity, which SLURM and taskset restrict), at least 1.
int usable_cores();
// The number of threads `requested` means: 0 is every usable core.
int resolve_threads(int requested);

// Calls work(i) for every i in [0, n) on `threads` threads that take the next i as they finish (1 thread, or n <= 1:
// in order in this thread). The first exception stops the others taking more and is rethrown here.
void parallel_for(int64_t n, int64_t threads, const std::function<void(int64_t)>& work);

// Calls `work` on every item `next` produces, in `threads` worker threads (1: in this thread), and hands the results
// to `sink` in this thread, in the order the items came. At most 2 * threads + 2 items are in flight (bounded memory).
// An exception from `work` reaches the caller when its item's turn comes (earlier items are sunk first), as in a
// sequential run; one from `next` or `sink` stops the workers and propagates.
template <typename In, typename Out>
void ordered_map(int threads, const std::function<bool(In&)>& next, const std::function<Out(In&)>& work,
                 const std::function<void(Out&)>& sink) {
  if (threads <= 1) {
    In in;
    while (next(in)) {
      Out out = work(in);
      sink(out);
    }
    return;
  }
  struct Slot {
    In in;
    std::optional<Out> out;
    std::exception_ptr error;
    bool claimed = false, done = false;
  };
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Slot>> window;  // items in input order, oldest first
  bool stop = false;
  auto worker = [&] {
    std::unique_lock<std::mutex> lock(m);
    while (true) {
      std::shared_ptr<Slot> slot;
      cv.wait(lock, [&] {
        for (auto& s : window)
          if (!s->claimed && !stop) {
            slot = s;
            return true;
          }
        return stop;
      });
      if (!slot) return;
      slot->claimed = true;
      lock.unlock();
      try {
        slot->out.emplace(work(slot->in));
      } catch (...) {
        slot->error = std::current_exception();
      }
      lock.lock();
      slot->done = true;
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  struct Joiner {  // stops and joins the workers however this function ends
    std::mutex& m;
    std::condition_variable& cv;
    bool& stop;
    std::vector<std::thread>& pool;
    ~Joiner() {
      {
        std::lock_guard<std::mutex> lock(m);
        stop = true;
      }
      cv.notify_all();
      for (auto& t : pool) t.join();
    }
  } joiner{m, cv, stop, pool};
  for (int i = 0; i < threads; ++i) pool.emplace_back(worker);
  const size_t limit = 2 * static_cast<size_t>(threads) + 2;
  bool more = true;
  while (true) {
    // Fill the window, then sink the oldest item once it is done.
    while (more && window.size() < limit) {
      auto slot = std::make_shared<Slot>();
      if (!(more = next(slot->in))) break;
      std::lock_guard<std::mutex> lock(m);
      window.push_back(std::move(slot));
      cv.notify_all();
    }
    std::shared_ptr<Slot> front;
    {
      std::unique_lock<std::mutex> lock(m);
      if (window.empty()) return;
      cv.wait(lock, [&] { return window.front()->done; });
      front = window.front();
      window.pop_front();
    }
    if (front->error) std::rethrow_exception(front->error);
    sink(*front->out);
  }
}

}  // namespace tern
