#include <gtest/gtest.h>

#include <filesystem>

#include "distributed/heartbeat.h"
#include "test_util.h"

namespace tern {
namespace {

Heartbeat beat(int rank, int64_t step, const char* phase, const char* waiting_in, double time) {
  Heartbeat hb;
  hb.rank = rank, hb.host = "node" + std::to_string(rank), hb.pid = 100 + rank, hb.step = step, hb.phase = phase;
  hb.waiting_in = waiting_in, hb.call = 40 + rank, hb.waiting_s = *waiting_in ? 12 : 0, hb.time = time;
  return hb;
}

TEST(Heartbeat, NamesStoppedBusyAndWaitingRanks) {
  test::TempDir tmp;
  const std::string dir = tmp.path.string();
  const double now = 1.8e9;
  ASSERT_TRUE(write_heartbeat(dir, beat(0, 57, "gradient all-reduce", "all-reduce", now - 0.5)));
  ASSERT_TRUE(write_heartbeat(dir, beat(1, 56, "data", "", now - 0.8)));
  ASSERT_TRUE(write_heartbeat(dir, beat(2, 57, "backward", "", now - 30)));
  // rank 3 never wrote one
  const std::string text = describe_ranks(dir, 4, now, 3.0);
  EXPECT_NE(text.find("rank 0 (node0 pid 100): step 57, phase gradient all-reduce: waiting in all-reduce #40 for 12 s"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("rank 1 (node1 pid 101): step 56, phase data: BUSY outside collectives (after 41 collectives)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("rank 2 (node2 pid 102): step 57, phase backward: STOPPED: last heartbeat 30 s ago"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("rank 3: no heartbeat in " + dir), std::string::npos) << text;
  // A rewrite replaces the file whole.
  ASSERT_TRUE(write_heartbeat(dir, beat(2, 58, "forward", "", now)));
  EXPECT_NE(describe_ranks(dir, 4, now, 3.0).find("rank 2 (node2 pid 102): step 58, phase forward: BUSY"),
            std::string::npos);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 3)
      << "no temporary files left";
}

// The verdict line: stopped ranks first; with every rank alive and waiting on two hosts, the network, naming the
// host the describing rank cannot reach.
TEST(Heartbeat, VerdictNamesStoppedRanksOrTheUnreachableHost) {
  test::TempDir tmp;
  const std::string dir = tmp.path.string();
  const double now = 1.8e9;
  for (int r = 0; r < 4; ++r) {
    Heartbeat hb = beat(r, 9, "gradient all-reduce", "all-reduce", now - 0.5);
    hb.host = r < 2 ? "hostA" : "hostB";
    ASSERT_TRUE(write_heartbeat(dir, hb));
  }
  std::string text = describe_ranks(dir, 4, now, 3.0, 1);
  EXPECT_NE(text.find("=> every rank is alive and waits in a collective: the network between the hosts stopped "
                      "carrying data"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("from rank 1 on host hostA, host hostB (ranks 2, 3) stopped answering"), std::string::npos)
      << text;
  Heartbeat late = beat(3, 9, "backward", "", now - 20);
  late.host = "hostB";
  ASSERT_TRUE(write_heartbeat(dir, late));
  text = describe_ranks(dir, 4, now, 3.0, 0);
  EXPECT_NE(text.find("=> rank(s) 3 stopped answering"), std::string::npos) << text;
  ASSERT_TRUE(write_heartbeat(dir, beat(3, 9, "backward", "", now)));
  EXPECT_NE(describe_ranks(dir, 4, now, 3.0, 0).find("=> rank(s) 3 are alive but outside collectives"),
            std::string::npos);
}

TEST(Heartbeat, UnwritableDirectoryIsNotAnError) {
  EXPECT_FALSE(write_heartbeat("/nonexistent/tern/heartbeat", beat(0, 1, "data", "", 0)));
}

}  // namespace
}  // namespace tern
