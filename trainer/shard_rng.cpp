#include "trainer/shard_rng.h"

#include <mutex>

namespace tern {

std::string tensor_bytes(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kCPU);
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

torch::Tensor bytes_tensor(const std::string& s) {
  return torch::from_blob(const_cast<char*>(s.data()), {static_cast<int64_t>(s.size())}, torch::kUInt8).clone();
}

std::string rng_state(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return tensor_bytes(gen.get_state());
}

void set_rng_state(at::Generator gen, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state.to(torch::kCPU));
}

ShardRng::ShardRng(uint64_t seed, std::vector<int64_t> shards, torch::Device device)
    : shards_(std::move(shards)), device_(device) {
  for (int64_t s : shards_) {
    torch::manual_seed(seed + 7919 * static_cast<uint64_t>(s));  // the CPU and every CUDA generator
    cpu_.push_back(rng_state(at::detail::getDefaultCPUGenerator()));
    cuda_.push_back(device_.is_cuda() ? rng_state(at::globalContext().defaultGenerator(device_)) : std::string());
  }
}

void ShardRng::set_states(size_t i, const torch::Tensor& cpu, const torch::Tensor& cuda) {
  cpu_.at(i) = tensor_bytes(cpu);
  if (device_.is_cuda() && cuda.defined()) cuda_.at(i) = tensor_bytes(cuda);
}

ShardRng::Scope::Scope(ShardRng& rng, size_t i) : rng_(rng), i_(i) {
  set_rng_state(at::detail::getDefaultCPUGenerator(), bytes_tensor(rng_.cpu_[i_]));
  if (rng_.device_.is_cuda())
    set_rng_state(at::globalContext().defaultGenerator(rng_.device_), bytes_tensor(rng_.cuda_[i_]));
}

ShardRng::Scope::~Scope() {
  rng_.cpu_[i_] = rng_state(at::detail::getDefaultCPUGenerator());
  if (rng_.device_.is_cuda()) rng_.cuda_[i_] = rng_state(at::globalContext().defaultGenerator(rng_.device_));
}

}  // namespace tern
