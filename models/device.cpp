#include "models/device.h"

#include "core/errors.h"

namespace tern {

DeviceKind resolve_device_kind(DeviceRequest request, const std::string& key) {
  const bool visible = torch::cuda::is_available();
  switch (request) {
    case DeviceRequest::kAuto:
      return visible ? DeviceKind::kCuda : DeviceKind::kCpu;
    case DeviceRequest::kCpu:
      return DeviceKind::kCpu;
    case DeviceRequest::kCuda:
      if (!visible) throw ConfigError(key + " is cuda but no CUDA GPU is visible (use auto or cpu)");
      return DeviceKind::kCuda;
  }
  throw ConfigError(key + ": unknown device request");
}

torch::Device rank_device(DeviceKind kind, int local_rank) {
  if (kind == DeviceKind::kCpu) return torch::Device(torch::kCPU);
  // device_count() is a c10::DeviceIndex (a signed char), never negative.
  const int n = static_cast<unsigned char>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(n > 1 ? local_rank % n : 0));
}

}  // namespace tern
