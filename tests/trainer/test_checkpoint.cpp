#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "test_util.h"
#include "trainer/checkpoint.h"

namespace tern {

namespace {
CheckpointData sample() {
  CheckpointData d;
  d.meta = {{"step", 42}, {"note", "ünïcode"}};
  d.archive = std::string(100000, 'x') + "tail";
  return d;
}
}  // namespace

TEST(Checkpoint, RoundTrip) {
  test::TempDir d;
  write_checkpoint(d.file("a.tern"), sample());
  CheckpointData r = read_checkpoint(d.file("a.tern"));
  EXPECT_EQ(r.meta["step"], 42);
  EXPECT_EQ(r.archive, sample().archive);
  write_latest(d.path.string(), "a.tern");
  EXPECT_EQ(latest_checkpoint(d.path.string()), d.file("a.tern"));
}

TEST(Checkpoint, MetadataRoundTripsAndNamesBadKeys) {
  CheckpointMeta m;
  m.step = 7, m.config_yaml = "model: {}\n", m.vocab["tgt"] = {60, "abc"};
  EXPECT_FALSE(to_json(m).contains("validation_pending"));  // written only when a validation is pending
  m.validation_pending = "final";
  const nlohmann::json j = to_json(m);
  const CheckpointMeta back = checkpoint_meta(j, "c.tern");
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.validation_pending, "final");
  nlohmann::json bad = j;
  bad["validation_pending"] = "later";
  EXPECT_EQ(test::error_of([&] { checkpoint_meta(bad, "c.tern"); }),
            "c.tern: metadata key 'validation_pending' must be step or final (got 'later')");
  bad["validation_pending"] = true;
  EXPECT_EQ(test::error_of([&] { checkpoint_meta(bad, "c.tern"); }),
            "c.tern: metadata key 'validation_pending' must be a string");
  bad.erase("step");
  EXPECT_EQ(test::error_of([&] { checkpoint_meta(bad, "c.tern"); }), "c.tern: metadata key 'step' is missing");
}

// train.keep_best's keys: the step's validation score and the kept list (the best first) round-trip; written only when
// there is something to write; a malformed list is named.
TEST(Checkpoint, KeptBestRoundTripsAndNamesBadLists) {
  CheckpointMeta m;
  m.step = 30, m.config_yaml = "model: {}\n", m.vocab["tgt"] = {60, "abc"};
  EXPECT_FALSE(to_json(m).contains("valid_score"));
  EXPECT_FALSE(to_json(m).contains("best_checkpoints"));
  m.valid_score = 12.5, m.best_checkpoints = {{20, 14.0}, {30, 12.5}};
  const nlohmann::json j = to_json(m);
  const CheckpointMeta back = checkpoint_meta(j, "c.tern");
  ASSERT_TRUE(back.valid_score.has_value());
  EXPECT_EQ(*back.valid_score, 12.5);
  ASSERT_EQ(back.best_checkpoints.size(), 2U);
  EXPECT_EQ(back.best_checkpoints[0].step, 20);
  EXPECT_EQ(back.best_checkpoints[0].score, 14.0);
  EXPECT_EQ(back.best_checkpoints[1].step, 30);
  for (const char* list : {R"([{"step": 0, "score": 1.0}])", R"([{"step": 20}])", R"({"step": 20, "score": 1})",
                           R"([{"step": "20", "score": 1.0}])"}) {
    nlohmann::json bad = j;
    bad["best_checkpoints"] = nlohmann::json::parse(list);
    EXPECT_EQ(test::error_of([&] { checkpoint_meta(bad, "c.tern"); }),
              "c.tern: metadata key 'best_checkpoints' must be a list of {step >= 1, score} (got " +
                  bad["best_checkpoints"].dump() + ")")
        << list;
  }
  nlohmann::json bad = j;
  bad["valid_score"] = "high";
  EXPECT_EQ(test::error_of([&] { checkpoint_meta(bad, "c.tern"); }),
            "c.tern: metadata key 'valid_score' must be a number (got \"high\")");
}

TEST(Checkpoint, TruncatedAndCorruptedAreRejected) {
  test::TempDir d;
  write_checkpoint(d.file("a.tern"), sample());
  std::filesystem::copy_file(d.file("a.tern"), d.file("b.tern"));
  std::filesystem::resize_file(d.file("a.tern"), 5000);
  EXPECT_NE(test::error_of([&] { read_checkpoint(d.file("a.tern")); }).find("truncated"), std::string::npos);
  {
    std::fstream f(d.file("b.tern"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3000);
    f.put('y');
  }
  std::string e = test::error_of([&] { read_checkpoint(d.file("b.tern")); });
  EXPECT_NE(e.find("checksum mismatch"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  test::write_lines(d.file("c.tern"), {"not a checkpoint at all, just text"});
  EXPECT_NE(test::error_of([&] { read_checkpoint(d.file("c.tern")); }).find("not a tern checkpoint: it is a text file"),
            std::string::npos);
  {
    std::ofstream(d.file("d.tern"), std::ios::binary) << std::string("\x89HDF\r\n\x1a\n\0\0\0\0\0\0\0\0\0\0\0\0", 20);
    std::ofstream(d.file("e.tern"), std::ios::binary)
        << std::string("BINARY\0\xff\xfe\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", 20);
  }
  EXPECT_NE(test::error_of([&] { read_checkpoint(d.file("d.tern")); }).find("it is an HDF5 file"), std::string::npos);
  EXPECT_NE(test::error_of([&] { read_checkpoint(d.file("e.tern")); }).find("bad magic"), std::string::npos);
}

TEST(Checkpoint, UnwritableDirectoryKeepsPreviousFile) {
  if (geteuid() == 0) {
    // root ignores directory permissions: use a path whose parent is a file instead.
    test::TempDir d;
    test::write_lines(d.file("file"), {"x"});
    EXPECT_NE(test::error_of([&] { write_checkpoint(d.file("file") + "/a.tern", sample()); }).find("cannot write"),
              std::string::npos);
    return;
  }
  test::TempDir d;
  write_checkpoint(d.file("a.tern"), sample());
  chmod(d.path.c_str(), 0500);
  std::string e = test::error_of([&] { write_checkpoint(d.file("a.tern"), CheckpointData{}); });
  chmod(d.path.c_str(), 0700);
  EXPECT_NE(e.find("previous file is intact"), std::string::npos);
  EXPECT_EQ(read_checkpoint(d.file("a.tern")).meta["step"], 42);
}

TEST(Checkpoint, FullDiskKeepsPreviousFile) {
  // /dev/full returns ENOSPC on write: the temporary file cannot be written and the old checkpoint survives.
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "/dev/full is not available";
  test::TempDir d;
  write_checkpoint(d.file("a.tern"), sample());
  std::filesystem::create_symlink("/dev/full", d.file("a.tern.tmp-" + std::to_string(getpid())));
  std::string e = test::error_of([&] { write_checkpoint(d.file("a.tern"), CheckpointData{}); });
  EXPECT_NE(e.find("No space left on device"), std::string::npos) << e;
  EXPECT_EQ(read_checkpoint(d.file("a.tern")).meta["step"], 42);
}

}  // namespace tern
