// parallel_for: every index once, whatever the threads; one thread runs in order and stops at an exception; a
// worker's exception reaches the caller. ordered_map: results in input order.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "core/parallel.h"

using namespace tern;

TEST(Parallel, ParallelForCallsEveryIndexOnce) {
  for (int64_t threads : {1, 3, 8}) {
    std::vector<std::atomic<int>> calls(100);
    parallel_for(100, threads, [&](int64_t i) { ++calls[static_cast<size_t>(i)]; });
    for (const auto& c : calls) EXPECT_EQ(c.load(), 1) << threads << " threads";
  }
  std::vector<int64_t> order;
  parallel_for(5, 1, [&](int64_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  const auto fail_at_3 = [](int64_t i) {
    if (i == 3) throw std::runtime_error("item 3");
  };
  EXPECT_THROW(parallel_for(1000, 4, fail_at_3), std::runtime_error);
  order.clear();
  EXPECT_THROW(parallel_for(10, 1,
                            [&](int64_t i) {
                              fail_at_3(i);
                              order.push_back(i);
                            }),
               std::runtime_error);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2})) << "one thread stops at the exception";
}

TEST(Parallel, OrderedMapKeepsInputOrder) {
  int next_item = 0;
  std::vector<int> out;
  ordered_map<int, int>(
      3, [&](int& in) { return next_item < 50 ? (in = next_item++, true) : false; }, [](int& in) { return in * in; },
      [&](int& r) { out.push_back(r); });
  ASSERT_EQ(out.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(out[static_cast<size_t>(i)], i * i);
}
