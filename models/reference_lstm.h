// The LSTM equations written out, as the reference the fused LibTorch/cuDNN path is tested against.
// Gate order and weight layout follow torch::nn::LSTM: W_ih (4H, I) = [W_i; W_f; W_g; W_o].
#pragma once
#include <torch/torch.h>

namespace tern {

// x (B, I), h (B, H), c (B, H) -> (h', c')
//   i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
//   f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
//   g = tanh   (W_ig x + b_ig + W_hg h + b_hg)      candidate cell
//   o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
//   c' = f * c + i * g;   h' = o * tanh(c')
std::pair<torch::Tensor, torch::Tensor> reference_lstm_cell(const torch::Tensor& x, const torch::Tensor& h,
                                                            const torch::Tensor& c, const torch::Tensor& w_ih,
                                                            const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                                                            const torch::Tensor& b_hh);

// A multi-layer unidirectional LSTM over time using the weights of `lstm`. x (B, T, I) -> (B, T, H)
torch::Tensor reference_lstm(torch::nn::LSTM& lstm, const torch::Tensor& x);

}  // namespace tern
