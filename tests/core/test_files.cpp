// check_outputs: an output that is an input (by any name), another output, a directory, or in a missing directory
// is refused before any work; write_file_atomic writes devices and pipes in place and keeps symbolic links; an
// AtomicFile replaces its path only on commit().
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "core/errors.h"
#include "core/files.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace tern;

namespace {

std::string touch(const std::string& path) {
  std::ofstream(path) << "x\n";
  return path;
}

}  // namespace

TEST(Files, CheckOutputsRefusesAnInputByAnyName) {
  test::TempDir d;
  const std::string in = touch(d.file("in.txt"));
  fs::create_symlink(in, d.file("link.txt"));
  fs::create_hard_link(in, d.file("hard.txt"));
  const std::string dotted = (d.path / "." / "in.txt").string();
  for (const std::string& out : {in, d.file("link.txt"), d.file("hard.txt"), dotted}) {
    for (const bool overwrite : {false, true}) {  // --overwrite never replaces an input
      const std::string e = test::error_of([&] { check_outputs({{"-o", out}}, {{"-i", in}}, overwrite); });
      EXPECT_NE(e.find("-o is also the input of -i"), std::string::npos) << out << ": " << e;
    }
  }
  EXPECT_NO_THROW(check_outputs({{"-o", d.file("new.txt")}}, {{"-i", in}, {"--ref", ""}, {"-i", "-"}}, false));
}

TEST(Files, CheckOutputsReplacesAnExistingFileOnlyWithOverwrite) {
  test::TempDir d;
  const std::string old = touch(d.file("old.txt"));
  const std::string e = test::error_of([&] { check_outputs({{"-o", old}}, {}, false); });
  EXPECT_NE(e.find("old.txt: -o: output exists; pass --overwrite to replace it (nothing was computed)"),
            std::string::npos)
      << e;
  EXPECT_NO_THROW(check_outputs({{"-o", old}}, {}, true));
  // The other checks come first: a directory is refused with or without --overwrite.
  EXPECT_NE(test::error_of([&] {
              check_outputs({{"--json", d.path.string()}}, {}, true);
            }).find("--json is a directory"),
            std::string::npos);
}

TEST(Files, CheckOutputsRefusesTwoOutputsOfOneFile) {
  test::TempDir d;
  const std::string a = d.file("a.json"), same = (d.path / "sub" / ".." / "a.json").string();
  fs::create_directory(d.file("sub"));
  const std::string e = test::error_of([&] { check_outputs({{"--hyp-out", a}, {"--json", same}}, {}, false); });
  EXPECT_NE(e.find("--hyp-out and --json name the same file"), std::string::npos) << e;
  EXPECT_NO_THROW(check_outputs({{"--hyp-out", a}, {"--json", d.file("b.json")}, {"--x", ""}, {"--y", ""}}, {}, false));
}

TEST(Files, CheckOutputsRefusesDirectoriesAndMissingDirectories) {
  test::TempDir d;
  EXPECT_NE(test::error_of([&] {
              check_outputs({{"--json", d.path.string()}}, {}, false);
            }).find("--json is a directory"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              check_outputs({{"--json", d.file("no/x.json")}}, {}, false);
            }).find("does not exist"),
            std::string::npos);
  EXPECT_THROW(check_outputs({{"--json", d.file("no/x.json")}}, {}, false), IoError);
}

TEST(Files, DevicesAreWrittenInPlaceAndLinksStay) {
  test::TempDir d;
  // A device (here /dev/null) is written through, not replaced by a regular file in /dev.
  EXPECT_NO_THROW(check_outputs({{"--json", "/dev/null"}}, {{"-i", "/dev/null"}}, false));
  write_file_atomic("/dev/null", "rows\n");
  EXPECT_FALSE(fs::is_regular_file("/dev/null"));
  // A named pipe gets the content.
  const std::string fifo = d.file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo);
    got.assign(std::istreambuf_iterator<char>(in), {});
  });
  write_file_atomic(fifo, "through the pipe\n");
  reader.join();
  EXPECT_EQ(got, "through the pipe\n");
  // Through a symbolic link the target is replaced and the link stays a link.
  const std::string target = touch(d.file("target.txt"));
  fs::create_symlink(target, d.file("link.txt"));
  write_file_atomic(d.file("link.txt"), "new\n");
  EXPECT_TRUE(fs::is_symlink(d.file("link.txt")));
  EXPECT_EQ(test::read_lines(target), std::vector<std::string>{"new"});
}

TEST(Files, AFailedWriteSaysWhetherAPreviousFileIsIntact) {
  test::TempDir d;
  // A file in a missing directory: there was none before.
  const std::string fresh = test::error_of([&] { write_file_atomic(d.file("missing") + "/a.txt", "x"); });
  EXPECT_NE(fresh.find("nothing was written"), std::string::npos) << fresh;
  EXPECT_EQ(fresh.find("previous file"), std::string::npos) << fresh;
}

// AtomicFile streams into a temporary: nothing at the path (or the previous file, intact) until commit(); without
// commit() (an exception on the way) the temporary is removed and the previous file stays.
TEST(Files, AtomicFileReplacesThePathOnlyOnCommit) {
  test::TempDir d;
  const std::string path = touch(d.file("out.txt"));  // "x\n", the previous file
  std::string big(200000, 'a');                       // beyond the 64 KiB buffer: written out before commit()
  {
    AtomicFile f(path);
    std::ostream out(&f);
    out << big << "\n";
    out.flush();
    EXPECT_EQ(test::read_lines(path), std::vector<std::string>{"x"});
    EXPECT_EQ(fs::file_size(temporary_name(path)), big.size() + 1);
  }  // destroyed without commit()
  EXPECT_EQ(test::read_lines(path), std::vector<std::string>{"x"});
  EXPECT_FALSE(fs::exists(temporary_name(path)));
  {
    AtomicFile f(path);
    std::ostream out(&f);
    out << "a\n" << big << "\n";
    f.commit();
  }
  EXPECT_EQ(test::read_lines(path), (std::vector<std::string>{"a", big}));
  EXPECT_FALSE(fs::exists(temporary_name(path)));
  // A device is written in place; a full one fails at commit(), naming the file.
  AtomicFile null("/dev/null");
  null.sputn("rows\n", 5);
  EXPECT_NO_THROW(null.commit());
  if (fs::exists("/dev/full")) {
    AtomicFile full("/dev/full");
    full.sputn(big.data(), static_cast<std::streamsize>(big.size()));
    const std::string e = test::error_of([&] { full.commit(); });
    EXPECT_NE(e.find("/dev/full: write failed"), std::string::npos) << e;
  }
}
