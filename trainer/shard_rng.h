// Random streams per data shard: dropout of shard s draws from a generator seeded by (train.seed, s) and carried in
// checkpoints per shard, so a shard draws the same numbers whichever rank trains it, and a run resumes exactly on
// another number of ranks (each holding data.shards / ranks shards).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tern {

class ShardRng {
 public:
  // Streams for `shards` (global shard ids, this rank's); the CPU generator, and the CUDA one of `device` when it is
  // a GPU. Shard s starts from seed + 7919 * s.
  ShardRng(uint64_t seed, std::vector<int64_t> shards, torch::Device device);

  // While alive, the default generators draw from local shard `i`'s stream; on destruction its state is kept.
  class Scope {
   public:
    Scope(ShardRng& rng, size_t i);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ShardRng& rng_;
    size_t i_;
  };

  size_t size() const { return shards_.size(); }
  int64_t shard(size_t i) const { return shards_[i]; }
  // Generator states as bytes (cuda: "" on a CPU), for checkpoints.
  std::string cpu_state(size_t i) const { return cpu_[i]; }
  std::string cuda_state(size_t i) const { return cuda_[i]; }
  void set_states(size_t i, const torch::Tensor& cpu, const torch::Tensor& cuda);  // cuda may be undefined

 private:
  std::vector<int64_t> shards_;
  torch::Device device_;
  std::vector<std::string> cpu_, cuda_;
};

// A tensor's bytes (on the host), and bytes as a uint8 tensor (how checkpoints store RNG states and vocabularies).
std::string tensor_bytes(const torch::Tensor& t);
torch::Tensor bytes_tensor(const std::string& s);
// A generator's state as bytes, and back.
std::string rng_state(at::Generator gen);
void set_rng_state(at::Generator gen, const torch::Tensor& state);

}  // namespace tern
