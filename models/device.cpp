#include "models/device.h"

#include "core/errors.h"

namespace tern {

DeviceKind resolve_device_kind(const std::string& choice, const std::string& key) {
  const bool visible = torch::cuda::is_available();
  if (choice == "auto") return visible ? DeviceKind::kCuda : DeviceKind::kCpu;
  if (choice == "cpu") return DeviceKind::kCpu;
  if (choice == "cuda") {
    if (!visible) throw ConfigError(key + " is cuda but no CUDA GPU is visible (use auto or cpu)");
    return DeviceKind::kCuda;
  }
  throw ConfigError(key + " must be auto, cpu or cuda (got " + choice + ")");
}

torch::Device rank_device(DeviceKind kind, int local_rank) {
  if (kind == DeviceKind::kCpu) return torch::Device(torch::kCPU);
  const int n = static_cast<int>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(n > 1 ? local_rank % n : 0));
}

}  // namespace tern
