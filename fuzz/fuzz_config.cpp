// Fuzzes the YAML config loader: any text either parses into a valid Config or throws ConfigError.
#include <cstdint>
#include <string>

#include "core/errors.h"
#include "trainer/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    tern::Config c = tern::parse_config(text, "fuzz.yaml");
    tern::parse_config(tern::to_yaml(c), "resolved");  // what we write must read back
  } catch (const tern::ConfigError&) {
  }
  return 0;
}
