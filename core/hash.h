// Content hashes (XXH64) used to identify vocabularies, configs and corpora, and to checksum files.
#pragma once
#include <cstdint>
#include <string>

namespace tern {

uint64_t hash_bytes(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t hash_string(const std::string& s) { return hash_bytes(s.data(), s.size()); }
// Streams the file; throws IoError when it cannot be read.
uint64_t hash_file(const std::string& path);
// 16 lower-case hex digits.
std::string hex64(uint64_t h);

}  // namespace tern
