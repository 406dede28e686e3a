// Where tensors live, decided once: `auto | cpu | cuda` (train.device, evaluate and translate) resolves to a device
// kind at the boundary, and each rank takes the GPU of its node-local rank. Every command uses these two functions.
#pragma once
#include <torch/torch.h>

#include <string>

#include "models/config.h"

namespace tern {

enum class DeviceKind { kCpu, kCuda };

// "auto" (CUDA when a GPU is visible), "cpu" or "cuda"; "cuda" without a visible GPU, or another word, is a
// ConfigError naming `key`.
DeviceKind resolve_device_kind(DeviceRequest request, const std::string& key);
// The device of the rank with node-local rank `local_rank`: CUDA device local_rank % (visible GPUs), or the CPU.
torch::Device rank_device(DeviceKind kind, int local_rank = 0);

}  // namespace tern
