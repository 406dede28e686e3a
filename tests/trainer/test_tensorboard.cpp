#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "test_util.h"
#include "trainer/tensorboard.h"

namespace tern {

// The CRC-32C check value (RFC 3720's test vectors: "123456789" and 32 zero bytes) and TFRecord's masking.
TEST(TensorBoard, Crc32c) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const uint32_t c = crc32c("123456789", 9);
  EXPECT_EQ(masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xA282EAD8u);
}

// The file frames each event as a TFRecord whose checksums hold; tests/cli/tensorboard.py reads it with TensorBoard.
TEST(TensorBoard, RecordsAreFramed) {
  test::TempDir d;
  std::string path;
  {
    EventWriter w(d.file("tb"), 0);
    w.scalar("train/loss", 5, 2.5);
    w.flush();
    path = w.path();
  }
  EXPECT_NE(std::filesystem::path(path).filename().string().find("events.out.tfevents."), std::string::npos);
  std::ifstream f(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t pos = 0, records = 0;
  while (pos < bytes.size()) {
    ASSERT_LE(pos + 12, bytes.size());
    uint64_t len;
    uint32_t len_crc, data_crc;
    std::memcpy(&len, bytes.data() + pos, 8);
    std::memcpy(&len_crc, bytes.data() + pos + 8, 4);
    EXPECT_EQ(len_crc, masked_crc32c(bytes.data() + pos, 8));
    ASSERT_LE(pos + 12 + len + 4, bytes.size());
    std::memcpy(&data_crc, bytes.data() + pos + 12 + len, 4);
    EXPECT_EQ(data_crc, masked_crc32c(bytes.data() + pos + 12, len));
    pos += 12 + len + 4, ++records;
  }
  EXPECT_EQ(records, 3u);  // file version, session start, one scalar
  EXPECT_NE(bytes.find("brain.Event:2"), std::string::npos);
  EXPECT_NE(bytes.find("train/loss"), std::string::npos);
  // An unwritable directory is an error naming the file.
  test::write_lines(d.file("file"), {"x"});
  EXPECT_THROW(EventWriter(d.file("file") + "/tb", 0), std::exception);
}

}  // namespace tern
