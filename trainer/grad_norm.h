// Gradient clipping that stays on the device. LibTorch's clip_grad_norm_ returns the norm as a double, which waits
// for the GPU to finish the step; here the norm stays a tensor, so the trainer reads it together with the loss in
// the one host synchronisation of a step.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace tern {

// Scales the gradients of `params` (those that have one) by min(1, max_norm / (norm + 1e-6)), as torch's
// clip_grad_norm_ does; max_norm = infinity only measures. Returns the global L2 norm before clipping: a 0-dim fp32
// tensor on the gradients' device; NaN or inf when a gradient is not finite (the caller then skips the step, as the
// scaled gradients are garbage too).
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace tern
