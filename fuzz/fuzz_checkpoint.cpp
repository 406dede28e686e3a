// Fuzzes the checkpoint reader: any byte string is either a verified checkpoint or a CheckpointError.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/errors.h"
#include "trainer/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/tern_fuzz_ckpt_" + std::to_string(getpid()) + ".tern";
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    tern::read_checkpoint(path);
  } catch (const tern::CheckpointError&) {
  }
  return 0;
}
